"""Evaluation data and reference (Keras) predictions shared by the exporters.

Evaluation files are GLUE-style TSVs with a header row naming the fine-tuning columns
(`text_column`, `pair_column`, `label_column` of `finetune_config.json`, e.g. `sentence` and
`label` for SST-2).
"""

import csv
import json
import os

import numpy as np

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
        info: `export.core.model_dir.ModelDir`: names the columns and the labels.
        limit: int or None. Read at most this many rows.
        require_labels: bool. Whether the label column must be present.

    Returns:
        `(texts, texts_pair, labels)`: lists of str (`texts_pair` None for single-text tasks)
        and an int32 array of class indices (float32 values for regression), or None without
        labels.
    """
    if not os.path.isfile(path):
        raise ValueError(f"Evaluation file {path!r} does not exist.")
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        columns = reader.fieldnames or []
        needed = [info.text_column] + ([info.pair_column] if info.is_pair_task else [])
        if require_labels:
            needed.append(info.label_column)
        missing = [column for column in needed if column not in columns]
        if missing:
            raise ValueError(f"{path} lacks the columns {missing}; its header is {columns}.")
        has_labels = info.label_column in columns
        texts, texts_pair, raw_labels = [], [], []
        for row in reader:
            if limit is not None and len(texts) >= limit:
                break
            texts.append(row[info.text_column] or "")
            if info.is_pair_task:
                texts_pair.append(row[info.pair_column] or "")
            if has_labels:
                raw_labels.append(row[info.label_column])
    if not texts:
        raise ValueError(f"{path} has no rows.")
    labels = None
    if has_labels:
        labels = _label_indices(raw_labels, info, path)
    return texts, (texts_pair if info.is_pair_task else None), labels


def _label_indices(raw_labels, info, path):
    if info.regression:
        return np.asarray([float(value) for value in raw_labels], np.float32)
    index = {name: i for i, name in enumerate(info.labels)}
    unknown = sorted(set(raw_labels) - set(index))
    if unknown:
        raise ValueError(
            f"{path} has labels {unknown[:5]} not in the model's labels {info.labels}."
        )
    return np.asarray([index[value] for value in raw_labels], np.int32)


def read_texts(info, path=None, limit=None):
    """`(texts, texts_pair)` of a TSV, or `DEFAULT_TEXTS` (paired with themselves) without one."""
    if path is not None:
        texts, texts_pair, _ = read_tsv(path, info, limit, require_labels=False)
        return texts, texts_pair
    texts = list(DEFAULT_TEXTS)[:limit]
    return texts, (list(reversed(texts)) if info.is_pair_task else None)


def pack(tokenizer, info, texts, texts_pair=None, max_length=None):
    """Int32 numpy arrays `token_ids`, `segment_ids`, `padding_mask` `(N, max_seq_length)`."""
    packed = tokenizer.pack(texts, texts_pair, max_length=max_length or info.max_seq_length)
    return {name: np.asarray(value, np.int32) for name, value in packed.items()}


def keras_logits(model, tokenizer, info, texts, texts_pair=None, batch_size=64):
    """The Keras model's float32 logits `(N, C)`, packed as in fine-tuning."""
    outputs = []
    for start in range(0, len(texts), batch_size):
        batch = pack(
            tokenizer, info, texts[start:start + batch_size],
            None if texts_pair is None else texts_pair[start:start + batch_size],
        )
        # Cut to the batch's longest row: padding does not change the logits.
        length = int(batch["padding_mask"].sum(axis=1).max())
        batch = {name: value[:, :length] for name, value in batch.items()}
        outputs.append(np.asarray(model(batch, training=False), np.float32))
    return np.concatenate(outputs, axis=0)


def compare(logits, reference, labels=None, regression=False):
    """Parity figures of `logits` against `reference` logits (both `(N, C)`)."""
    logits = np.asarray(logits, np.float32)
    reference = np.asarray(reference, np.float32)
    diff = np.abs(logits - reference)
    result = {
        "num_examples": int(len(logits)),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "finite": bool(np.all(np.isfinite(logits))),
    }
    if regression:
        result["label_agreement"] = None
        if labels is not None:
            result["mse"] = float(np.mean((logits[:, 0] - labels) ** 2))
            result["keras_mse"] = float(np.mean((reference[:, 0] - labels) ** 2))
        return result
    predicted = np.argmax(logits, axis=-1)
    expected = np.argmax(reference, axis=-1)
    result["label_agreement"] = float(np.mean(predicted == expected))
    if labels is not None:
        result["accuracy"] = float(np.mean(predicted == labels))
        result["keras_accuracy"] = float(np.mean(expected == labels))
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
