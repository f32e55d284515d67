"""Sequence classification (and regression) on the pooled [CLS] output."""

import keras
from keras import ops

from keras_bert.inputs import INPUT_NAMES
from keras_bert.inputs import trim_to_longest
from keras_bert.layers import validation


@keras.saving.register_keras_serializable(package="keras_bert")
class BertClassifier(keras.Model):
    """A `BertEncoder` with a dropout + dense head on `pooled_output`.

    Classifies single sentences or sentence pairs (pairs are packed into one
    sequence with `segment_ids`), into `num_classes` classes, or regresses
    one value when `num_classes=1`. The head runs in float32 under mixed
    precision so that logits and losses keep their range.

    Only the `[CLS]` output is used, so the model first drops the trailing
    positions that are padding in every sequence of the batch: a batch of
    short sentences padded to 128 tokens costs what its longest sentence
    costs, with exactly the same logits. (Under XLA, `jit_compile=True`,
    shapes must be static and the batch is used as it comes; bucket
    sequences by length in the input pipeline instead.)

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
            for name in INPUT_NAMES
        }
        pooled_output = encoder(_TrimPadding(name="trim_padding")(inputs))["pooled_output"]
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


def _in_xla_context():
    """Whether the graph being built will be compiled by XLA (static shapes only)."""
    try:
        import tensorflow as tf
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover - the TensorFlow backend is required.
        return True
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


@keras.saving.register_keras_serializable(package="keras_bert")
class _TrimPadding(keras.layers.Layer):
    """Cuts `token_ids`, `segment_ids`, `padding_mask` after the batch's last real token.

    `(batch_size, sequence_length)` -> `(batch_size, length)`, `length` being
    one past the last position where any sequence has `padding_mask` 1 (at
    least 1). The positions dropped are padding everywhere: no query attends
    to them, so every kept position, `[CLS]` included, computes the same
    values. Under XLA the inputs pass unchanged.
    """

    def call(self, inputs):
        if _in_xla_context():
            return inputs
        padding_mask = inputs["padding_mask"]
        # (batch_size, sequence_length): 1-based position of each real token, else 0.
        positions = ops.cast(padding_mask != 0, "int32") * ops.arange(
            1, ops.shape(padding_mask)[1] + 1, dtype="int32"
        )
        # Not `trim_to_longest`'s default (the most real tokens of a row): one past the last
        # real position keeps every real token of a mask with holes, and at least one position.
        length = ops.maximum(ops.max(positions), 1)
        return trim_to_longest({name: inputs[name] for name in INPUT_NAMES}, length)

    def compute_output_spec(self, inputs):
        return {
            name: keras.KerasTensor((inputs[name].shape[0], None), dtype=inputs[name].dtype)
            for name in INPUT_NAMES
        }
