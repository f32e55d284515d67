"""Text pipeline: WordPiece tokenizer, packer, masking and pretraining data.

- `BertTokenizer`, `load_tokenizer(path)`: reference-exact BERT WordPiece on tensorflow-text.
- `BertPacker`: `[CLS] A [SEP] B [SEP]` packing with longest-first truncation.
- `MaskedLMMasker`: seeded masked-LM masking (optionally whole words).
- `TextClassifierPreprocessor`: sentences or pairs -> `BertClassifier` inputs.
- `SpanLabelerPreprocessor`: question + context -> windowed `BertSpanLabeler` inputs.
- `TokenClassifierPreprocessor`: words -> `BertTokenClassifier` inputs, first-piece labels.
- `PretrainerPreprocessor`: segment pairs -> packed, masked `BertPretrainer` inputs and targets.
- `PretrainingExampleBuilder`: next-sentence pairs from documents, packed and masked by it.
- `load_pretraining_dataset`: the TFRecords of `create_pretraining_data` as a `tf.data.Dataset`.
- `read_documents`: corpus files (blank-line documents, or WikiText) as documents of lines.

Command lines: `python -m keras_bert.text.build_vocab`, `python -m
keras_bert.text.create_pretraining_data`.
"""

from keras_bert.text.bert_packer import BertPacker
from keras_bert.text.bert_tokenizer import BertTokenizer
from keras_bert.text.bert_tokenizer import load_tokenizer
from keras_bert.text.corpus import read_documents
from keras_bert.text.masked_lm_masker import MaskedLMMasker
from keras_bert.text.pretrainer_preprocessor import PretrainerPreprocessor
from keras_bert.text.pretraining_dataset import load_pretraining_dataset
from keras_bert.text.pretraining_example_builder import PretrainingExampleBuilder
from keras_bert.text.span_labeler_preprocessor import SpanLabelerPreprocessor
from keras_bert.text.text_classifier_preprocessor import TextClassifierPreprocessor
from keras_bert.text.token_classifier_preprocessor import TokenClassifierPreprocessor

__all__ = [
    "BertPacker",
    "BertTokenizer",
    "MaskedLMMasker",
    "PretrainerPreprocessor",
    "PretrainingExampleBuilder",
    "SpanLabelerPreprocessor",
    "TextClassifierPreprocessor",
    "TokenClassifierPreprocessor",
    "load_pretraining_dataset",
    "load_tokenizer",
    "read_documents",
]
