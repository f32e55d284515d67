"""Benchmark batches: full-length synthetic sequences and real SST-2 sentences.

Both kinds are plain numpy dicts of int32 arrays `token_ids`, `segment_ids`,
`padding_mask` of shape `(num_batches * batch_size, sequence_length)` and
int32 `labels`, generated once and fed identically to every model.
"""

from pathlib import Path

import numpy as np

from keras_bert.inputs import INPUT_NAMES

SHARED = Path(__file__).resolve().parents[2] / "shared"
DEFAULT_SST2 = str(SHARED / "data" / "sst2" / "train.tsv")
DEFAULT_VOCABULARY = str(SHARED / "models" / "all-MiniLM-L6-v2")


def full_length_batches(num_examples, sequence_length, vocabulary_size, seed=0):
    """Random token ids with no padding: every position is real.

    Two segments of equal length, token ids drawn from the upper part of the
    vocabulary (where WordPiece keeps whole words), labels 0 or 1.
    """
    rng = np.random.default_rng(seed)
    low = min(1000, vocabulary_size - 1)
    token_ids = rng.integers(low, vocabulary_size, size=(num_examples, sequence_length))
    segment_ids = np.zeros((num_examples, sequence_length), "int32")
    segment_ids[:, sequence_length // 2 :] = 1
    inputs = {
        "token_ids": token_ids.astype("int32"),
        "segment_ids": segment_ids,
        "padding_mask": np.ones((num_examples, sequence_length), "int32"),
    }
    return inputs, rng.integers(0, 2, size=(num_examples,)).astype("int32")


def read_sst2(path):
    """Sentences and labels of an SST-2 `sentence<TAB>label` file with a header (read by
    `keras_bert.tasks.classification.read_examples`, the project's one TSV reader)."""
    from keras_bert.tasks.classification import read_examples  # pylint: disable=import-outside-toplevel

    examples = read_examples(path, "sentence", None, "label", "tsv")
    return examples.texts, np.asarray([int(label) for label in examples.labels], "int32")


def sst2_batches(path, vocabulary_path, num_examples, sequence_length, seed=0):
    """`num_examples` SST-2 sentences drawn at random, tokenized and padded.

    Args:
        path: string. An SST-2 TSV file.
        vocabulary_path: string. A checkpoint directory or `vocab.txt` for
            `keras_bert.load_tokenizer`.
        num_examples: int.
        sequence_length: int. Every example is packed as `[CLS] A [SEP]` and
            padded (or truncated) to this length.

    Returns:
        The inputs dict and the labels.
    """
    from keras_bert.text import load_tokenizer

    sentences, labels = read_sst2(path)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(sentences), size=num_examples, replace=num_examples > len(sentences))
    tokenizer = load_tokenizer(vocabulary_path)
    packed = tokenizer.pack([sentences[i] for i in chosen], sequence_length=sequence_length)
    inputs = {name: np.asarray(packed[name], "int32") for name in INPUT_NAMES}
    return inputs, labels[chosen]


def real_lengths(inputs):
    """Per example, the number of real (unpadded) tokens."""
    return inputs["padding_mask"].sum(axis=1)
