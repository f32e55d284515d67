"""Packs one or two token id segments into BERT's fixed-length model inputs."""

import keras
import tensorflow as tf


def _as_ragged(segment):
    if isinstance(segment, (list, tuple)):
        segment = tf.ragged.constant(segment, dtype=tf.int32, ragged_rank=1)
    if not isinstance(segment, tf.RaggedTensor) or segment.ragged_rank != 1:
        raise ValueError(
            "Segments must be `tf.RaggedTensor`s of shape (batch_size, None), received "
            f"{segment!r}."
        )
    return segment


def _segment_parts(segment):
    """Flat int32 values and int32 row starts and lengths of a (batch_size, None) segment."""
    row_splits = tf.cast(segment.row_splits, tf.int32)
    return tf.cast(segment.values, tf.int32), row_splits[:-1], row_splits[1:] - row_splits[:-1]


def longest_first_lengths(first_lengths, second_lengths, budget):
    """How many tokens of each segment a pair keeps, truncating longest-first.

    Matches Hugging Face tokenizers' `LongestFirst`: if the pair does not fit in `budget`, a
    segment no longer than half the budget is kept whole and the other fills the rest;
    otherwise each gets half, the longer one (the second on ties) the odd token.

    Args:
        first_lengths: int32 `Tensor` of shape `(batch_size,)`.
        second_lengths: int32 `Tensor` of shape `(batch_size,)`.
        budget: int. Tokens available to both segments together.

    Returns:
        A tuple of two int32 `Tensor`s of shape `(batch_size,)`.
    """
    shorter = tf.minimum(first_lengths, second_lengths)
    kept_shorter = tf.where(shorter <= budget // 2, shorter, budget // 2)
    kept_longer = budget - kept_shorter
    first_is_longer = first_lengths > second_lengths
    over = first_lengths + second_lengths > budget
    first = tf.where(over, tf.where(first_is_longer, kept_longer, kept_shorter), first_lengths)
    second = tf.where(over, tf.where(first_is_longer, kept_shorter, kept_longer), second_lengths)
    return first, second


@keras.saving.register_keras_serializable(package="keras_bert")
class BertPacker(keras.layers.Layer):
    """Packs token ids as `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`, truncated and padded.

    Pairs are truncated longest-first exactly as Hugging Face tokenizers do (see
    `longest_first_lengths`); a single segment is cut at the end. `segment_ids` is 0 for
    `[CLS] A [SEP]` and 1 for `B [SEP]`; `padding_mask` is 1 on real tokens.

    keras-hub's `MultiSegmentPacker` is not used: its truncation strategies (`round_robin`,
    `waterfall`) give other lengths than the reference's longest-first on pairs, and it builds
    the result with ragged ops that do not convert to TFLite builtins. This layer only uses
    gathers and selects on flat tensors.

    Args:
        sequence_length: int or None. Length of the packed sequences. `None` pads to the
            longest sequence of the batch and does not truncate. Defaults to `128`.
        cls_token_id: int. Id of `[CLS]`. Defaults to `101`.
        sep_token_id: int. Id of `[SEP]`. Defaults to `102`.
        pad_token_id: int. Id of `[PAD]`. Defaults to `0`.

    Call arguments:
        token_ids: int `tf.RaggedTensor` of shape `(batch_size, None)`: the first segments.
        token_ids_pair: optional int `tf.RaggedTensor` of shape `(batch_size, None)`: the
            second segments.

    Returns:
        dict of int32 `Tensor`s of shape `(batch_size, sequence_length)`: `token_ids`,
        `segment_ids`, `padding_mask`.

    Example:

    >>> packer = BertPacker(sequence_length=8)
    >>> packer(tf.ragged.constant([[7592, 1010]]), tf.ragged.constant([[2088]]))["token_ids"]
    <tf.Tensor: shape=(1, 8), dtype=int32,
    numpy=array([[ 101, 7592, 1010,  102, 2088,  102,    0,    0]], dtype=int32)>
    """

    def __init__(
        self,
        sequence_length=128,
        cls_token_id=101,
        sep_token_id=102,
        pad_token_id=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        if sequence_length is not None and (
            not isinstance(sequence_length, int) or sequence_length < 2
        ):
            raise ValueError(
                f"`sequence_length` must be None or an int >= 2, received {sequence_length!r}."
            )
        for name, value in (
            ("cls_token_id", cls_token_id),
            ("sep_token_id", sep_token_id),
            ("pad_token_id", pad_token_id),
        ):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative int, received {value!r}.")
        self.sequence_length = sequence_length
        self.cls_token_id = cls_token_id
        self.sep_token_id = sep_token_id
        self.pad_token_id = pad_token_id
        self.built = True

    def call(self, token_ids, token_ids_pair=None):
        is_pair = token_ids_pair is not None
        if is_pair and self.sequence_length is not None and self.sequence_length < 3:
            raise ValueError(
                f"`sequence_length` ({self.sequence_length}) must be at least 3 for pairs."
            )
        token_ids = _as_ragged(token_ids)
        if not is_pair:
            return self._pack_single(token_ids)
        token_ids_pair = _as_ragged(token_ids_pair)
        first_rows, second_rows = token_ids.shape[0], token_ids_pair.shape[0]
        if first_rows is not None and second_rows is not None and first_rows != second_rows:
            raise ValueError(
                f"`token_ids` ({first_rows} rows) and `token_ids_pair` ({second_rows} rows) "
                "must have the same batch size."
            )
        first_values, first_starts, first_lengths = _segment_parts(token_ids)
        second_values, second_starts, second_lengths = _segment_parts(token_ids_pair)
        num_special = 3
        if self.sequence_length is not None:
            first_lengths, second_lengths = longest_first_lengths(
                first_lengths, second_lengths, self.sequence_length - num_special
            )
        total_lengths = first_lengths + second_lengths + num_special
        if self.sequence_length is None:
            sequence_length = tf.reduce_max(tf.concat([total_lengths, [0]], axis=0))
        else:
            sequence_length = self.sequence_length

        # Every output token is gathered from one source vector: the first segments' tokens,
        # then the second segments', then [CLS], [SEP], [PAD].
        num_first = tf.size(first_values)
        cls_index = num_first + tf.size(second_values)
        source = tf.concat(
            [
                first_values,
                second_values,
                [self.cls_token_id, self.sep_token_id, self.pad_token_id],
            ],
            axis=0,
        )
        # Positions, shape (1, sequence_length); per-sequence quantities, (batch_size, 1).
        positions = tf.expand_dims(tf.range(sequence_length, dtype=tf.int32), 0)
        first_sep = tf.expand_dims(first_lengths, 1) + 1
        total = tf.expand_dims(total_lengths, 1)
        first_offset = tf.expand_dims(first_starts, 1) - 1
        # The second segment's token at position p is second[start + p - first_sep - 1].
        second_offset = tf.expand_dims(second_starts + num_first, 1) - first_sep - 1
        in_second = positions > first_sep
        index = positions + tf.where(in_second, second_offset, first_offset)
        is_sep = tf.logical_or(tf.equal(positions, first_sep), tf.equal(positions, total - 1))
        index = tf.where(is_sep, cls_index + 1, index)
        index = tf.where(tf.equal(positions, 0), cls_index, index)
        padding_mask = positions < total
        index = tf.where(padding_mask, index, cls_index + 2)
        return {
            "token_ids": tf.gather(source, index),
            "segment_ids": tf.cast(tf.logical_and(in_second, padding_mask), tf.int32),
            "padding_mask": tf.cast(padding_mask, tf.int32),
        }

    def _pack_single(self, token_ids):
        """`[CLS] A [SEP]`: a single segment needs no per-row shifts, so the dense work is one
        ragged-to-dense copy (which also cuts rows at the fixed width) and one scatter."""
        values, starts, lengths = _segment_parts(token_ids)
        row_splits = tf.concat([starts, tf.reduce_sum(lengths, keepdims=True)], axis=0)
        segment = tf.RaggedTensor.from_row_splits(values, row_splits, validate=False)
        if self.sequence_length is None:
            body = segment.to_tensor(default_value=self.pad_token_id)
        else:
            body = segment.to_tensor(
                default_value=self.pad_token_id, shape=[None, self.sequence_length - 2]
            )
        kept = tf.minimum(lengths, tf.shape(body)[1])
        batch_size = tf.shape(body)[0]
        token_ids = tf.concat(
            [
                tf.fill([batch_size, 1], self.cls_token_id),
                body,
                tf.fill([batch_size, 1], self.pad_token_id),
            ],
            axis=1,
        )
        token_ids = tf.tensor_scatter_nd_update(
            token_ids,
            tf.stack([tf.range(batch_size), kept + 1], axis=1),
            tf.fill([batch_size], self.sep_token_id),
        )
        padding_mask = tf.sequence_mask(kept + 2, tf.shape(token_ids)[1], dtype=tf.int32)
        return {
            "token_ids": token_ids,
            "segment_ids": tf.zeros_like(token_ids),
            "padding_mask": padding_mask,
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "cls_token_id": self.cls_token_id,
                "sep_token_id": self.sep_token_id,
                "pad_token_id": self.pad_token_id,
            }
        )
        return config
