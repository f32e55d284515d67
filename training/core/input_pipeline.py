"""Length-bucketed batches, so that short texts do not pay for the longest one.

Examples are held packed at the full `sequence_length` (numpy int32 arrays of
shape `(num_examples, sequence_length)`, as `BertTokenizer.pack` returns them);
every batch is cut to the longest real sequence it holds:

- `training_dataset`: shuffled, repeated forever, examples grouped by length
  with `tf.data.Dataset.bucket_by_sequence_length`, each batch trimmed to
  its longest member (or padded to its bucket boundary on TPUs, which
  compile one program per shape).
- inference batches are sorted by length instead: `keras_bert.inputs.predict`.

On SST-2 (mean 13 tokens, longest 66) this trains on ~15-token batches instead
of 128-token ones.
"""

import numpy as np

from keras_bert.inputs import INPUT_NAMES
from keras_bert.inputs import sequence_lengths
from keras_bert.inputs import trim_to_longest


def bucket_boundaries(sequence_length):
    """Length bucket edges up to `sequence_length`: 8, 16, 24, 32, 48, 64, 96, 128, ..."""
    edges = [8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]
    return [edge for edge in edges if edge < sequence_length] + [sequence_length + 1]


def training_dataset(features, labels, batch_size, seed=0, pad_to_bucket_boundary=False):
    """An endless, shuffled `tf.data.Dataset` of length-bucketed `(features, labels)` batches.

    Args:
        features: dict of int32 arrays `(num_examples, sequence_length)`:
            `token_ids`, `segment_ids`, `padding_mask`.
        labels: array `(num_examples,)` or `(num_examples, 1)` (one target per
            example), `(num_examples, sequence_length)` (one per token; cut with
            the features), or a dict of such arrays.
        batch_size: int. Global batch size.
        seed: int. Shuffle seed; every pass over the data is shuffled anew.
        pad_to_bucket_boundary: bool. Pad every batch to its bucket's upper
            edge (a fixed set of shapes) instead of to its longest member.

    Returns:
        A `tf.data.Dataset` of `(features, labels)`; feature tensors have shape
        `(batch_size, batch_length)`.
    """
    import tensorflow as tf

    features = {name: np.asarray(features[name], np.int32) for name in INPUT_NAMES}
    sequence_length = features["token_ids"].shape[1]
    num_examples = features["token_ids"].shape[0]
    lengths = sequence_lengths(features)
    is_per_token = _per_token_structure(labels, sequence_length)
    boundaries = bucket_boundaries(sequence_length)

    dataset = tf.data.Dataset.from_tensor_slices((features, labels, lengths))
    dataset = dataset.shuffle(num_examples, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.repeat()
    # Elements all have the full length; buckets only decide which examples
    # share a batch, and each batch is trimmed afterwards.
    dataset = dataset.bucket_by_sequence_length(
        element_length_func=lambda features, labels, length: length,
        bucket_boundaries=boundaries[:-1],
        bucket_batch_sizes=[batch_size] * len(boundaries),
        no_padding=True,
        drop_remainder=True,
    )

    def trim(features, labels, lengths):
        if pad_to_bucket_boundary:
            longest = tf.reduce_max(lengths)
            edges = tf.constant(boundaries, tf.int32)
            index = tf.searchsorted(edges, [longest], side="right")[0]
            batch_length = tf.minimum(edges[index], sequence_length)
        else:
            batch_length = tf.reduce_max(lengths)
        features = trim_to_longest(features, batch_length)
        labels = tf.nest.map_structure(
            lambda value, per_token: value[:, :batch_length] if per_token else value,
            labels,
            is_per_token,
        )
        return features, labels

    dataset = dataset.map(trim, num_parallel_calls=tf.data.AUTOTUNE)
    from training.core.distribution import distribute_dataset_options

    return dataset.with_options(distribute_dataset_options()).prefetch(tf.data.AUTOTUNE)


def _per_token_structure(labels, sequence_length):
    """Whether each label array (in the structure of `labels`) has a token axis."""
    import tensorflow as tf

    return tf.nest.map_structure(
        lambda value: np.ndim(value) == 2 and np.shape(value)[1] == sequence_length
        and sequence_length > 1,
        labels,
    )
