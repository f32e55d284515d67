"""The model's dict inputs: their names, their real lengths, and cutting them to the longest.

Every task model takes the same three int32 tensors of shape `(batch_size, sequence_length)`,
named by `INPUT_NAMES`; this module is the only place that spells the tuple, and the only
place that cuts padding off a batch (`trim_to_longest`).

- `INPUT_NAMES`: `("token_ids", "segment_ids", "padding_mask")`.
- `PRETRAINER_INPUT_NAMES`: those and `masked_positions`, what `BertPretrainer` takes.
- `IGNORED_LABEL`: the per-token target that losses and metrics skip (-100).
- `sequence_lengths(inputs)`: real tokens per example, from `padding_mask`.
- `trim_to_longest(inputs)`: the batch cut to its longest real sequence (numpy or tensors).
- `length_sorted_batches(lengths, batch_size)`: batches of similar length for inference.
- `predict(model, inputs)`: a model run over all examples in length-sorted batches.
"""

import numpy as np

INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")
# `BertPretrainer`'s inputs: the same, and the positions of the masked tokens.
PRETRAINER_INPUT_NAMES = (*INPUT_NAMES, "masked_positions")
# Per-token targets of positions that carry no label (special tokens, later word pieces,
# padding): `BertTokenClassifier`'s loss and metrics ignore them.
IGNORED_LABEL = -100
_LENGTH_QUANTUM = 8


def sequence_lengths(inputs):
    """int32 `(batch_size,)`: real tokens per example, from `padding_mask` (numpy)."""
    return np.asarray(inputs["padding_mask"]).sum(axis=1).astype(np.int32)


def trim_to_longest(inputs, length=None):
    """`inputs` cut to `(batch_size, length)`, by default the batch's longest real sequence.

    Works on numpy arrays and on TensorFlow tensors (in graphs too): the logits at real
    positions do not depend on padding, and short batches do not pay for the full length.

    Args:
        inputs: dict with at least the `INPUT_NAMES`, each `(batch_size, sequence_length)`.
            Other entries with the same two leading axes are cut too.
        length: int, scalar tensor or None. The length to cut to; `None` uses the longest
            real sequence of the batch.

    Returns:
        A dict with the same keys, each `(batch_size, length)`.
    """
    if length is None:
        if isinstance(inputs["padding_mask"], np.ndarray):
            lengths = sequence_lengths(inputs)
            length = int(lengths.max()) if lengths.size else 0
        else:
            import tensorflow as tf  # pylint: disable=import-outside-toplevel

            length = tf.reduce_max(tf.reduce_sum(inputs["padding_mask"], axis=1))
    return {name: value[:, :length] for name, value in inputs.items()}


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


def predict(model, inputs, batch_size=128, sequence_outputs=False):
    """Runs `model` on all examples in length-sorted batches; outputs in input order.

    Batches of equal padded length go to one `model.predict` call, so the
    model's strategy (if any) splits them across replicas.

    Args:
        model: a Keras model taking the dict of `INPUT_NAMES`.
        inputs: dict of int32 arrays `(num_examples, sequence_length)`.
        batch_size: int. Batch size.
        sequence_outputs: bool. Whether every output has a sequence axis
            (shape `(batch_size, batch_length, ...)`, e.g. span or tag
            logits) rather than one row per example (class logits).

    Returns:
        The model's output structure of numpy arrays with `num_examples` rows.
        Sequence outputs are padded with zeros to the longest example.
    """
    import keras  # pylint: disable=import-outside-toplevel

    inputs = {name: np.asarray(inputs[name], np.int32) for name in INPUT_NAMES}
    num_examples = inputs["token_ids"].shape[0]
    lengths = sequence_lengths(inputs)
    longest = int(lengths.max()) if num_examples else 0
    groups = {}
    for indices, padded_length in length_sorted_batches(lengths, batch_size):
        groups.setdefault(padded_length, []).append(indices)
    results = None
    for padded_length, index_lists in sorted(groups.items()):
        indices = np.concatenate(index_lists)
        batch = trim_to_longest(
            {name: value[indices] for name, value in inputs.items()}, padded_length
        )
        outputs = keras.tree.map_structure(
            np.asarray, model.predict(batch, batch_size=batch_size, verbose=0)
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
