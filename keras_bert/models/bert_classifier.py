"""Sequence classification (and regression) on the pooled [CLS] output."""

import keras

from keras_bert.layers import validation


@keras.saving.register_keras_serializable(package="keras_bert")
class BertClassifier(keras.Model):
    """A `BertEncoder` with a dropout + dense head on `pooled_output`.

    Classifies single sentences or sentence pairs (pairs are packed into one
    sequence with `segment_ids`), into `num_classes` classes, or regresses
    one value when `num_classes=1`. The head runs in float32 under mixed
    precision so that logits and losses keep their range.

    Args:
        encoder: `keras_bert.BertEncoder`.
        num_classes: int. Number of classes; `1` for regression.
        dropout: float. Dropout rate before the output layer. Defaults to `0.1`.
        initializer_range: float. Standard deviation of the output kernel
            initialiser. Defaults to `0.02`.

    Inputs: the encoder's dict of int32 tensors `token_ids`, `segment_ids`,
    `padding_mask`, each `(batch_size, sequence_length)`.

    Outputs: `logits` of shape `(batch_size, num_classes)` (unnormalised).

    Example:
    >>> encoder = BertEncoder.from_preset("bert_tiny")
    >>> classifier = BertClassifier(encoder, num_classes=3)
    >>> classifier.compile(
    ...     optimizer="adam",
    ...     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    """

    def __init__(self, encoder, num_classes, dropout=0.1, initializer_range=0.02, **kwargs):
        validation.check_positive_int("num_classes", num_classes)
        validation.check_rate("dropout", dropout)
        validation.check_positive_float("initializer_range", initializer_range)

        # === Layers ===
        head_dropout = keras.layers.Dropout(dropout, name="classifier_dropout")
        output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range),
            dtype="float32",
            name="logits",
        )

        # === Functional Model ===
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in ("token_ids", "segment_ids", "padding_mask")
        }
        pooled_output = encoder(inputs)["pooled_output"]
        logits = output_dense(head_dropout(pooled_output))
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
