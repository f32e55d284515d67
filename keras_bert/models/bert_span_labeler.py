"""Extractive question answering: start and end logits over the sequence."""

import keras
from keras import ops

from keras_bert.inputs import INPUT_NAMES
from keras_bert.layers import validation

# Logit given to padding positions. Finite, so a softmax over an all-padding
# row stays defined; far below any real logit, so padding is never chosen.
_MASKED_LOGIT = -1e9


@keras.saving.register_keras_serializable(package="keras_bert")
class BertSpanLabeler(keras.Model):
    """A `BertEncoder` with a dense head giving span start and end logits.

    For SQuAD-style extractive QA the question and a window of the context are
    packed as `[CLS] question [SEP] context [SEP]`; the model scores every
    position as the first (`start_logits`) and the last (`end_logits`) token
    of the answer. Padding positions get a logit of `-1e9`. A window that
    does not contain the answer is trained to point at `[CLS]` (position 0).
    Choosing the best valid span (inside the context, end not before start,
    at most a maximum length) is left to `keras_bert.models.span_decoding`.
    The head runs in float32 under mixed precision.

    Args:
        encoder: `keras_bert.BertEncoder`.
        initializer_range: float. Standard deviation of the output kernel
            initialiser. Defaults to `0.02`.

    Inputs: the encoder's dict of int32 tensors `token_ids`, `segment_ids`,
    `padding_mask`, each `(batch_size, sequence_length)`.

    Outputs: a dict of float32 tensors of shape
    `(batch_size, sequence_length)`: `start_logits`, `end_logits`.

    Example:
    >>> encoder = BertEncoder.from_preset("bert_tiny")
    >>> reader = BertSpanLabeler(encoder)
    >>> loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    >>> reader.compile(optimizer="adam",
    ...                loss={"start_logits": loss, "end_logits": loss})

    Reference: Devlin et al., "BERT", 2018, section 4.2 (SQuAD v1.1).
    """

    def __init__(self, encoder, initializer_range=0.02, **kwargs):
        validation.check_positive_float("initializer_range", initializer_range)

        # === Layers ===
        span_dense = keras.layers.Dense(
            2,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range),
            dtype="float32",
            name="span_logits",
        )
        split = _SplitSpanLogits(dtype="float32", name="split_span_logits")

        # === Functional Model ===
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in INPUT_NAMES
        }
        sequence_output = encoder(inputs)["sequence_output"]
        # (batch_size, sequence_length, hidden_dim) -> (batch_size, sequence_length, 2)
        span_logits = span_dense(sequence_output)
        start_logits, end_logits = split(span_logits, inputs["padding_mask"])
        super().__init__(
            inputs=inputs,
            outputs={"start_logits": start_logits, "end_logits": end_logits},
            **kwargs,
        )

        # === Config ===
        self.encoder = encoder
        self.initializer_range = initializer_range

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "initializer_range": self.initializer_range,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("encoder"), dict):
            config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_bert")
class _SplitSpanLogits(keras.layers.Layer):
    """`(batch_size, sequence_length, 2)` -> two masked `(batch_size, sequence_length)`."""

    def call(self, span_logits, padding_mask):
        is_real = ops.cast(padding_mask, "bool")
        masked = ops.cast(_MASKED_LOGIT, span_logits.dtype)
        start_logits = ops.where(is_real, span_logits[:, :, 0], masked)
        end_logits = ops.where(is_real, span_logits[:, :, 1], masked)
        return start_logits, end_logits

    def compute_output_shape(self, span_logits_shape, padding_mask_shape):
        shape = tuple(span_logits_shape[:2])
        return shape, shape
