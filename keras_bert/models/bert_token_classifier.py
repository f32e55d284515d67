"""Per-token classification (e.g. named entities) on the encoder's sequence output."""

import keras

from keras_bert.inputs import INPUT_NAMES
from keras_bert.layers import validation


@keras.saving.register_keras_serializable(package="keras_bert")
class BertTokenClassifier(keras.Model):
    """A `BertEncoder` with a dropout + dense head on every position.

    Gives each WordPiece position `num_classes` logits (e.g. BIO entity tags).
    Outputs at padding positions are not meaningful; the training labels of
    padding positions, and of word pieces after the first of each word, are
    set to an ignored class (`-100` with
    `keras.losses.SparseCategoricalCrossentropy(ignore_class=-100)`), so the
    loss sees one label per word. The head runs in float32 under mixed
    precision.

    Args:
        encoder: `keras_bert.BertEncoder`.
        num_classes: int. Number of tags.
        dropout: float. Dropout rate before the output layer. Defaults to `0.1`.
        initializer_range: float. Standard deviation of the output kernel
            initialiser. Defaults to `0.02`.

    Inputs: the encoder's dict of int32 tensors `token_ids`, `segment_ids`,
    `padding_mask`, each `(batch_size, sequence_length)`.

    Outputs: float32 `logits` of shape
    `(batch_size, sequence_length, num_classes)` (unnormalised).

    Example:
    >>> encoder = BertEncoder.from_preset("bert_tiny")
    >>> tagger = BertTokenClassifier(encoder, num_classes=9)
    >>> tagger.compile(
    ...     optimizer="adam",
    ...     loss=keras.losses.SparseCategoricalCrossentropy(
    ...         from_logits=True, ignore_class=-100))

    Reference: Devlin et al., "BERT", 2018, section 5.3 (CoNLL-2003 NER:
    the first sub-token of each word is classified).
    """

    def __init__(self, encoder, num_classes, dropout=0.1, initializer_range=0.02, **kwargs):
        validation.check_positive_int("num_classes", num_classes)
        validation.check_rate("dropout", dropout)
        validation.check_positive_float("initializer_range", initializer_range)

        # === Layers ===
        head_dropout = keras.layers.Dropout(dropout, name="token_classifier_dropout")
        output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range),
            dtype="float32",
            name="logits",
        )

        # === Functional Model ===
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in INPUT_NAMES
        }
        sequence_output = encoder(inputs)["sequence_output"]
        # (batch_size, sequence_length, hidden_dim) -> (..., num_classes)
        logits = output_dense(head_dropout(sequence_output))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.encoder = encoder
        self.num_classes = num_classes
        self.dropout = dropout
        self.initializer_range = initializer_range

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "num_classes": self.num_classes,
            "dropout": self.dropout,
            "initializer_range": self.initializer_range,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("encoder"), dict):
            config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
