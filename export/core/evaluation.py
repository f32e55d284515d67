"""Evaluation data, reference (Keras) predictions and parity figures shared by the exporters.

Evaluation files are GLUE-style TSVs with a header row naming the fine-tuning columns
(`text_column`, `pair_column`, `label_column` of `finetune_config.json`, e.g. `sentence` and
`label` for SST-2), read by `keras_bert.tasks.classification.read_examples`.
"""

import json
import os

import numpy as np

from keras_bert.inputs import trim_to_longest
from keras_bert.tasks import classification
from keras_bert.utils.atomic import atomic_file

# Sentences used when no --eval file is given: ordinary text, accents, a literal special
# token, punctuation runs, an empty string and an over-long word.
DEFAULT_TEXTS = (
    "it 's a charming and often affecting journey .",
    "Unflinchingly bleak and desperate.",
    "Café crème, naïve résumé — déjà vu!",
    "the [MASK] was [SEP] dull",
    "",
    "supercalifragilistic" * 6 + " indeed",
)


def read_tsv(path, info, limit=None, require_labels=True):
    """Texts, second texts and label indices of an evaluation TSV.

    Args:
        path: str. A TSV with a header row.
        info: `keras_bert.models.ModelDir`: names the columns and the labels.
        limit: int or None. Keep at most this many rows.
        require_labels: bool. Whether the label column must be present.

    Returns:
        `(texts, texts_pair, labels)`: lists of str (`texts_pair` None for single-text tasks)
        and an int32 array of class indices (float32 values for regression), or None without
        labels.

    Raises:
        ValueError: naming the file (and the line) of a missing column, a malformed row or a
            label the model does not know.
    """
    if not os.path.isfile(path):
        raise ValueError(f"Evaluation file {path!r} does not exist.")
    columns = classification.read_columns(path, "tsv")
    needed = [info.text_column] + ([info.pair_column] if info.is_pair_task else [])
    if require_labels:
        needed.append(info.label_column)
    missing = [column for column in needed if column not in columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {missing}; its header is {columns}.")
    examples = classification.read_examples(
        path, info.text_column, info.pair_column if info.is_pair_task else None,
        info.label_column, input_format="tsv", require_labels=require_labels,
    )
    examples = _first(examples, limit)
    labels = None
    if examples.labels is not None:
        labels = _label_indices(examples, info)
    return examples.texts, examples.pairs, labels


def _first(examples, limit):
    """`examples` cut to its first `limit` rows (all with `limit=None`)."""
    if limit is None:
        return examples
    return classification.Examples(
        path=examples.path,
        texts=examples.texts[:limit],
        pairs=None if examples.pairs is None else examples.pairs[:limit],
        labels=None if examples.labels is None else examples.labels[:limit],
        line_numbers=examples.line_numbers[:limit],
    )


def _label_indices(examples, info):
    if info.regression:
        return classification.encode_labels(examples, [], regression=True)[:, 0]
    index = {name: i for i, name in enumerate(info.labels)}
    unknown = sorted(set(examples.labels) - set(index))
    if unknown:
        line = examples.line_numbers[examples.labels.index(unknown[0])]
        raise ValueError(
            f"{examples.path} has labels {unknown[:5]} not in the model's labels "
            f"{info.labels} (line {line} has {unknown[0]!r})."
        )
    return np.asarray([index[value] for value in examples.labels], np.int32)


def read_texts(info, path=None, limit=None):
    """`(texts, texts_pair)` of a TSV, or `DEFAULT_TEXTS` (paired with themselves) without one."""
    if path is not None:
        texts, texts_pair, _ = read_tsv(path, info, limit, require_labels=False)
        return texts, texts_pair
    texts = list(DEFAULT_TEXTS)[:limit]
    return texts, (list(reversed(texts)) if info.is_pair_task else None)


def keras_logits(model, preprocessor, texts, texts_pair=None, batch_size=64):
    """The Keras model's float32 logits `(N, C)`, packed by the task's preprocessor.

    Each batch is cut to its longest row (`keras_bert.inputs.trim_to_longest`): padding does
    not change the logits.
    """
    outputs = []
    for start in range(0, len(texts), batch_size):
        batch = preprocessor.pack_numpy(
            texts[start:start + batch_size],
            None if texts_pair is None else texts_pair[start:start + batch_size],
        )
        outputs.append(np.asarray(model(trim_to_longest(batch), training=False), np.float32))
    return np.concatenate(outputs, axis=0)


# === Parity figures ===


def predicted_labels(logits, single_logit_is_binary=False):
    """Class indices `(N,)` of float logits `(N, C)`: the argmax.

    With `single_logit_is_binary`, one logit per example is read as a binary classifier's
    (label 1 when > 0) instead of the argmax of one column (always 0).
    """
    logits = np.asarray(logits)
    if single_logit_is_binary and logits.shape[1] == 1:
        return (logits[:, 0] > 0).astype(np.int64)
    return np.argmax(logits, axis=-1)


def compare(logits, reference, labels=None, regression=False, dtype=np.float32,
            single_logit_is_binary=False):
    """Parity figures of `logits` against `reference` logits, both float `(N, C)`.

    The one comparison of the exporters and checkers; each report picks its figures from it
    (`keras_parity`, `export.saved_model`, `export.check_arm64`).

    Args:
        logits: float array `(N, C)`: the outputs checked.
        reference: float array `(N, C)`: the outputs they should match.
        labels: int array `(N,)` of class indices (float targets for regression), or None.
        regression: bool. Compare regression outputs: no labels to agree on.
        dtype: the numpy float type the differences are computed in.
        single_logit_is_binary: bool. See `predicted_labels`.

    Returns:
        dict: `num_examples`, `max_abs_diff`, `mean_abs_diff`, `max_abs_diff_example` (the
        row of the largest difference), `finite` (whether every logit is finite),
        `label_agreement` (None for regression) and `num_label_disagreements`; with `labels`,
        `accuracy` and `reference_accuracy` (classification) or `mse` and `reference_mse`
        (regression).
    """
    logits = np.asarray(logits, dtype)
    reference = np.asarray(reference, dtype)
    if logits.shape != reference.shape:
        raise ValueError(f"Logits of shape {logits.shape} do not match the reference's "
                         f"{reference.shape}.")
    diff = np.abs(logits - reference)
    result = {
        "num_examples": int(len(logits)),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "max_abs_diff_example": int(np.argmax(diff.max(axis=1))) if diff.size else 0,
        "finite": bool(np.all(np.isfinite(logits))),
    }
    if regression:
        result.update(label_agreement=None, num_label_disagreements=None)
        if labels is not None:
            result["mse"] = float(np.mean((logits[:, 0] - labels) ** 2))
            result["reference_mse"] = float(np.mean((reference[:, 0] - labels) ** 2))
        return result
    predicted = predicted_labels(logits, single_logit_is_binary)
    expected = predicted_labels(reference, single_logit_is_binary)
    result["label_agreement"] = float(np.mean(predicted == expected))
    result["num_label_disagreements"] = int(np.sum(predicted != expected))
    if labels is not None:
        result["accuracy"] = float(np.mean(predicted == labels))
        result["reference_accuracy"] = float(np.mean(expected == labels))
    return result


def keras_parity(logits, reference, labels=None, regression=False):
    """The parity report's figures of `logits` against the Keras model's `reference` logits.

    Returns:
        dict: `num_examples`, `max_abs_diff`, `mean_abs_diff`, `finite`, `label_agreement`
        (None for regression); with `labels`, `accuracy` and `keras_accuracy`, or for
        regression `mse` and `keras_mse`.
    """
    figures = compare(logits, reference, labels, regression)
    result = {key: figures[key] for key in
              ("num_examples", "max_abs_diff", "mean_abs_diff", "finite", "label_agreement")}
    if labels is not None:
        if regression:
            result.update(mse=figures["mse"], keras_mse=figures["reference_mse"])
        else:
            result.update(accuracy=figures["accuracy"],
                          keras_accuracy=figures["reference_accuracy"])
    return result


def write_bytes(path, content):
    """Writes `content` to `path` atomically, readable by all (like a normal file)."""
    with atomic_file(path) as temporary:
        with open(temporary, "wb") as f:
            f.write(content)


def write_json(path, content):
    """Writes `content` as indented JSON, atomically."""
    with atomic_file(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(content, f, indent=2, sort_keys=False, default=_json_default)
            f.write("\n")


def write_text(path, text):
    """Writes `text` to `path` atomically."""
    with atomic_file(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Cannot write {type(value).__name__} as JSON.")
