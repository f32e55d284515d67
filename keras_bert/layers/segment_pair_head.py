"""A next-sentence readout of the two segments' mean representations."""

import keras
from keras import ops

from keras_bert.layers import validation


@keras.saving.register_keras_serializable(package="keras_bert")
class SegmentPairHead(keras.layers.Layer):
    """Logits from the mean final representations of a pair's two segments.

    For a sequence packed as `[CLS] A [SEP] B [SEP]` (then padding), the
    layer averages `sequence_output` over the tokens of A and over those of
    B (`[CLS]` and both `[SEP]` excluded), and scores their comparison with
    one dense layer, as sentence-pair classifiers on sentence embeddings do
    (Conneau et al. 2017; Reimers and Gurevych 2019):

        a = mean(sequence_output[A]), b = mean(sequence_output[B])
        logits = concat(a * b, |a - b|) @ kernel

    `BertPretrainer(nsp_segment_means=True)` adds these logits to those of
    BERT's head on `pooled_output`. The kernel starts at zero, so a new head
    leaves the `[CLS]` head's logits as they are; it has no bias (the
    `[CLS]` head has one). A segment without tokens averages to zeros. The
    means and logits are float32 under mixed precision.

    Args:
        num_classes: int. Number of logits. Defaults to `2` (BERT's
            next-sentence labels).
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        sequence_output: float tensor `(batch_size, sequence_length, hidden_dim)`.
        segment_ids: int tensor `(batch_size, sequence_length)`, 0 on `[CLS] A [SEP]`
            and 1 on `B [SEP]`.
        padding_mask: int or bool tensor `(batch_size, sequence_length)`, 1 on
            tokens and 0 on the padding after them.

    Returns:
        float32 logits `(batch_size, num_classes)`.

    Example:
    >>> head = SegmentPairHead()
    >>> sequence = np.ones((2, 8, 16), "float32")
    >>> segment_ids = np.array([[0, 0, 0, 1, 1, 0, 0, 0]] * 2)
    >>> padding_mask = np.array([[1, 1, 1, 1, 1, 0, 0, 0]] * 2)
    >>> head(sequence, segment_ids, padding_mask).shape
    (2, 2)
    """

    def __init__(self, num_classes=2, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        validation.check_positive_int("num_classes", num_classes)
        self.num_classes = num_classes

    def build(self, sequence_output_shape, segment_ids_shape=None, padding_mask_shape=None):
        hidden_dim = sequence_output_shape[-1]
        if hidden_dim is None:
            raise ValueError(
                "`SegmentPairHead` needs a known `hidden_dim` (the last axis of "
                f"`sequence_output`), received shape {sequence_output_shape}."
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(2 * hidden_dim, self.num_classes),
            initializer="zeros",
        )
        self.built = True

    def call(self, sequence_output, segment_ids, padding_mask):
        in_first, in_second = segment_pair_masks(segment_ids, padding_mask)
        sequence_output = ops.cast(sequence_output, "float32")
        features = segment_pair_features(
            masked_mean(sequence_output, in_first), masked_mean(sequence_output, in_second)
        )
        return ops.matmul(features, ops.cast(self.kernel, "float32"))

    def compute_output_shape(self, sequence_output_shape, *args):
        return (sequence_output_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes})
        return config


def segment_pair_masks(segment_ids, padding_mask):
    """Where segment A and segment B are in `[CLS] A [SEP] B [SEP]`, without the three specials.

    Args:
        segment_ids: int tensor `(batch_size, sequence_length)`.
        padding_mask: int or bool tensor `(batch_size, sequence_length)`.

    Returns:
        Two float32 tensors `(batch_size, sequence_length)`: 1 at A's positions
        (B's), 0 elsewhere.
    """
    is_token = ops.cast(padding_mask, "int32") > 0
    in_segment_a = ops.logical_and(is_token, ops.equal(ops.cast(segment_ids, "int32"), 0))
    # (batch_size, 1): where [CLS] A [SEP] ends, and where the whole sequence ends.
    first_end = ops.sum(ops.cast(in_segment_a, "int32"), axis=1, keepdims=True)
    length = ops.sum(ops.cast(is_token, "int32"), axis=1, keepdims=True)
    positions = ops.expand_dims(ops.arange(ops.shape(segment_ids)[1], dtype="int32"), 0)
    in_first = ops.logical_and(positions >= 1, positions < first_end - 1)
    in_second = ops.logical_and(positions >= first_end, positions < length - 1)
    return ops.cast(in_first, "float32"), ops.cast(in_second, "float32")


def masked_mean(sequence_output, mask):
    """Mean of `sequence_output` over `mask`'s positions; zeros where `mask` has none.

    Args:
        sequence_output: float tensor `(batch_size, sequence_length, hidden_dim)`.
        mask: tensor `(batch_size, sequence_length)` of 0/1 weights, in `sequence_output`'s
            dtype.

    Returns:
        Tensor `(batch_size, hidden_dim)`.
    """
    weights = ops.expand_dims(mask, -1)
    total = ops.sum(sequence_output * weights, axis=1)
    return total / ops.maximum(ops.sum(weights, axis=1), 1.0)


def segment_pair_features(first, second):
    """`concat(first * second, |first - second|)`: what `SegmentPairHead` scores.

    Args:
        first, second: tensors `(batch_size, hidden_dim)`, the two segments' means.

    Returns:
        Tensor `(batch_size, 2 * hidden_dim)`.
    """
    return ops.concatenate([first * second, ops.abs(first - second)], axis=-1)
