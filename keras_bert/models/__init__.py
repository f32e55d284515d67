"""Trainable task models built on `BertEncoder`."""

from keras_bert.models.bert_classifier import BertClassifier

__all__ = ["BertClassifier"]
