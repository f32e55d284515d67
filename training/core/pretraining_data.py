"""Pretraining inputs: TFRecords of `create_pretraining_data`, or a raw corpus on the fly.

For a raw corpus the lines are tokenized once by a `PretrainerPreprocessor`
(the tokenizer's graph ops, in batches); `tf.data` then draws examples from a
seeded `PretrainingExampleBuilder` pass after pass (it chooses the sentence
pairs, the preprocessor packs and masks them), so every pass over the corpus
has new sentence pairs and new masks (dynamic masking). The same corpus,
settings and seed give the same stream of batches.

Every dataset yields `(inputs, labels)` as `keras_bert.text.load_pretraining_dataset`
does: inputs `token_ids`, `segment_ids`, `padding_mask`, `masked_positions`;
labels `masked_ids`, `masked_weights`, `next_sentence_label`.
"""

import glob
import json
import os

import numpy as np

from keras_bert.inputs import INPUT_NAMES
from keras_bert.inputs import PRETRAINER_INPUT_NAMES

# Seed of the evaluation examples built from a raw corpus: `training.pretrain` and
# `training.nsp_baseline` build the same pairs from the same file.
DEFAULT_EVAL_SEED = 12345


class CorpusExamples:
    """Tokenized documents of corpus files and the settings to build examples from them.

    Args:
        paths: list of str. Corpus files (see `keras_bert.text.read_documents`).
        tokenizer: `keras_bert.text.BertTokenizer`.
        corpus_format: str. `"auto"`, `"lines"` or `"wikitext"`.
        sequence_length: int. Length of the packed sequences.
        max_predictions_per_seq: int. Most masked tokens per sequence.
        masked_lm_prob: float. Fraction of tokens masked.
        short_seq_prob: float. Probability of a shorter target length.
        whole_word_masking: bool. Whether to mask whole words.
    """

    def __init__(self, paths, tokenizer, corpus_format="auto", sequence_length=128,
                 max_predictions_per_seq=20, masked_lm_prob=0.15, short_seq_prob=0.1,
                 whole_word_masking=False):
        from keras_bert.text.corpus import read_documents
        from keras_bert.text.pretrainer_preprocessor import PretrainerPreprocessor

        for path in paths:
            if not os.path.isfile(path):
                raise ValueError(f"Corpus file {path!r} does not exist.")
        documents = []
        for path in paths:
            documents.extend(read_documents(path, corpus_format))
        self.preprocessor = PretrainerPreprocessor(
            tokenizer,
            sequence_length=sequence_length,
            max_predictions_per_seq=max_predictions_per_seq,
            mask_rate=masked_lm_prob,
            whole_word_masking=whole_word_masking,
        )
        self.documents = self.preprocessor.tokenize_documents(documents, batch_size=1024)
        self.num_documents = sum(1 for document in self.documents if any(document))
        if self.num_documents < 2:
            raise ValueError(
                f"The corpus {paths} has {self.num_documents} non-empty document(s); "
                "next-sentence pairs need at least 2."
            )
        self.num_tokens = sum(len(line) for document in self.documents for line in document)
        self.short_seq_prob = short_seq_prob

    def builder(self, seed):
        from keras_bert.text.pretraining_example_builder import PretrainingExampleBuilder

        return PretrainingExampleBuilder(
            self.preprocessor, short_seq_prob=self.short_seq_prob, seed=seed
        )

    def examples(self, seed, num_passes=None):
        """Yields example dicts pass after pass (forever with `num_passes=None`)."""
        builder = self.builder(seed)
        done = 0
        while num_passes is None or done < num_passes:
            yield from builder.build(self.documents)
            done += 1

    def arrays(self, seed, num_passes=1):
        """`(inputs, labels)` dicts of numpy arrays of `num_passes` passes."""
        examples = list(self.examples(seed, num_passes))
        return _stack(examples)

    def dataset(self, batch_size, seed, shuffle_buffer=4096):
        """An endless `tf.data.Dataset` of `(inputs, labels)` batches of `batch_size`."""
        import tensorflow as tf

        sequence_length = self.preprocessor.sequence_length
        max_predictions = self.preprocessor.max_predictions_per_seq
        predictions = tf.TensorSpec([max_predictions], tf.int32)
        signature = (
            {
                name: tf.TensorSpec([sequence_length], tf.int32) for name in INPUT_NAMES
            } | {"masked_positions": predictions},
            {
                "masked_ids": predictions,
                "masked_weights": tf.TensorSpec([max_predictions], tf.float32),
                "next_sentence_label": tf.TensorSpec([], tf.int32),
            },
        )

        def generate():
            for example in self.examples(seed):
                yield _split(example)

        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
        # Examples of one document come out together: mix them across documents.
        if shuffle_buffer:
            dataset = dataset.shuffle(shuffle_buffer, seed=seed)
        return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def _split(example):
    inputs = {name: example[name].astype(np.int32) for name in PRETRAINER_INPUT_NAMES}
    labels = {
        "masked_ids": example["masked_ids"].astype(np.int32),
        "masked_weights": example["masked_weights"].astype(np.float32),
        "next_sentence_label": np.int32(example["next_sentence_label"]),
    }
    return inputs, labels


def _stack(examples):
    from keras_bert.text.pretrainer_preprocessor import PRETRAINER_LABEL_NAMES

    if not examples:
        raise ValueError("No examples were built: is the corpus empty?")
    pairs = [_split(example) for example in examples]
    inputs = {name: np.stack([p[0][name] for p in pairs]) for name in PRETRAINER_INPUT_NAMES}
    labels = {name: np.stack([p[1][name] for p in pairs]) for name in PRETRAINER_LABEL_NAMES}
    return inputs, labels


def records_metadata(file_pattern):
    """`metadata.json` next to the TFRecords of `file_pattern` (or `{}`)."""
    files = sorted(glob.glob(file_pattern))
    if not files:
        raise ValueError(f"No TFRecord files match {file_pattern!r}.")
    path = os.path.join(os.path.dirname(files[0]), "metadata.json")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def records_dataset(file_pattern, batch_size, seed, sequence_length, max_predictions_per_seq,
                    training=True):
    """Batches from pretraining TFRecords: shuffled and endless for training."""
    from keras_bert.text import load_pretraining_dataset

    records_metadata(file_pattern)  # Fails early when nothing matches.
    return load_pretraining_dataset(
        file_pattern,
        sequence_length=sequence_length,
        max_predictions_per_seq=max_predictions_per_seq,
        batch_size=batch_size,
        shuffle=training,
        repeat=training,
        seed=seed,
        drop_remainder=training,
    )
