"""Length-bucketed batches, so that short texts do not pay for the longest one.

Examples are held packed at the full `max_seq_length` (numpy int32 arrays of
shape `(num_examples, max_seq_length)`, as `BertTokenizer.pack` returns them);
every batch is cut to the longest real sequence it holds:

- `training_dataset`: shuffled, repeated forever, examples grouped by length
  with `tf.data.Dataset.bucket_by_sequence_length`, each batch trimmed to
  its longest member (or padded to its bucket boundary on TPUs, which
  compile one program per shape).
- `predict`: examples sorted by length, batched, each batch padded only to a
  multiple of 8 tokens; outputs are returned in the original order.

On SST-2 (mean 13 tokens, longest 66) this trains on ~15-token batches instead
of 128-token ones.
"""

import numpy as np

FEATURE_NAMES = ("token_ids", "segment_ids", "padding_mask")
# Token positions of the ignored label in per-token targets (see BertTokenClassifier).
IGNORED_LABEL = -100
_LENGTH_QUANTUM = 8


def sequence_lengths(features):
    """int32 `(num_examples,)`: real tokens per example, from `padding_mask`."""
    return np.asarray(features["padding_mask"]).sum(axis=1).astype(np.int32)


def bucket_boundaries(max_seq_length):
    """Length bucket edges up to `max_seq_length`: 8, 16, 24, 32, 48, 64, 96, 128, ..."""
    edges = [8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]
    return [edge for edge in edges if edge < max_seq_length] + [max_seq_length + 1]


def training_dataset(features, labels, batch_size, seed=0, pad_to_bucket_boundary=False):
    """An endless, shuffled `tf.data.Dataset` of length-bucketed `(features, labels)` batches.

    Args:
        features: dict of int32 arrays `(num_examples, max_seq_length)`:
            `token_ids`, `segment_ids`, `padding_mask`.
        labels: array `(num_examples,)` or `(num_examples, 1)` (one target per
            example), `(num_examples, max_seq_length)` (one per token; cut with
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

    features = {name: np.asarray(features[name], np.int32) for name in FEATURE_NAMES}
    max_seq_length = features["token_ids"].shape[1]
    num_examples = features["token_ids"].shape[0]
    lengths = sequence_lengths(features)
    is_per_token = _per_token_structure(labels, max_seq_length)
    boundaries = bucket_boundaries(max_seq_length)

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
            batch_length = tf.minimum(edges[index], max_seq_length)
        else:
            batch_length = tf.reduce_max(lengths)
        features = {name: value[:, :batch_length] for name, value in features.items()}
        labels = tf.nest.map_structure(
            lambda value, per_token: value[:, :batch_length] if per_token else value,
            labels,
            is_per_token,
        )
        return features, labels

    dataset = dataset.map(trim, num_parallel_calls=tf.data.AUTOTUNE)
    from training.distribution import distribute_dataset_options

    return dataset.with_options(distribute_dataset_options()).prefetch(tf.data.AUTOTUNE)


def _per_token_structure(labels, max_seq_length):
    """Whether each label array (in the structure of `labels`) has a token axis."""
    import tensorflow as tf

    return tf.nest.map_structure(
        lambda value: np.ndim(value) == 2 and np.shape(value)[1] == max_seq_length
        and max_seq_length > 1,
        labels,
    )


def length_sorted_batches(lengths, batch_size):
    """Index batches over examples sorted by length, and each batch's padded length.

    Returns:
        A list of `(indices, padded_length)`: `indices` int array, the padded
        length the longest member rounded up to a multiple of 8 (fewer shapes,
        fewer retracings) but never past the longest example.
    """
    lengths = np.asarray(lengths)
    order = np.argsort(lengths, kind="stable")
    longest = int(lengths.max()) if lengths.size else 0
    batches = []
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch_longest = int(lengths[indices].max())
        padded = -(-batch_longest // _LENGTH_QUANTUM) * _LENGTH_QUANTUM
        batches.append((indices, min(padded, longest)))
    return batches


def predict(model, features, batch_size=128, sequence_outputs=False):
    """Runs `model` on all examples in length-sorted batches; outputs in input order.

    Batches of equal padded length go to one `model.predict` call, so the
    model's strategy (if any) splits them across replicas.

    Args:
        model: a Keras model taking the dict of `FEATURE_NAMES`.
        features: dict of int32 arrays `(num_examples, max_seq_length)`.
        batch_size: int. Batch size.
        sequence_outputs: bool. Whether every output has a sequence axis
            (shape `(batch_size, batch_length, ...)`, e.g. span or tag
            logits) rather than one row per example (class logits).

    Returns:
        The model's output structure of numpy arrays with `num_examples` rows.
        Sequence outputs are padded with zeros to the longest example.
    """
    import keras

    features = {name: np.asarray(features[name], np.int32) for name in FEATURE_NAMES}
    num_examples = features["token_ids"].shape[0]
    lengths = sequence_lengths(features)
    longest = int(lengths.max()) if num_examples else 0
    groups = {}
    for indices, padded_length in length_sorted_batches(lengths, batch_size):
        groups.setdefault(padded_length, []).append(indices)
    results = None
    for padded_length, index_lists in sorted(groups.items()):
        indices = np.concatenate(index_lists)
        inputs = {name: value[indices, :padded_length] for name, value in features.items()}
        outputs = keras.tree.map_structure(
            np.asarray, model.predict(inputs, batch_size=batch_size, verbose=0)
        )
        if results is None:
            results = keras.tree.map_structure(
                lambda value: np.zeros(
                    (num_examples, longest) + value.shape[2:]
                    if sequence_outputs
                    else (num_examples,) + value.shape[1:],
                    value.dtype,
                ),
                outputs,
            )

        def scatter(result, value):
            if sequence_outputs:
                result[indices, :padded_length] = value
            else:
                result[indices] = value

        keras.tree.map_structure(scatter, results, outputs)
    return results
