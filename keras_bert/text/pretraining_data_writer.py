"""Writes pretraining examples as sharded TFRecords (the library behind create_pretraining_data).

The command line is `python -m keras_bert.text.create_pretraining_data`.
"""

import contextlib
import os

from keras_bert.utils.atomic import atomic_file, write_json


def shard_path(out_dir, shard, num_shards):
    return os.path.join(out_dir, f"pretraining-{shard:05d}-of-{num_shards:05d}.tfrecord")


def write_pretraining_data(
    corpus_paths,
    tokenizer,
    out_dir,
    corpus_format="auto",
    sequence_length=128,
    max_predictions_per_seq=20,
    masked_lm_prob=0.15,
    short_seq_prob=0.1,
    dupe_factor=1,
    whole_word_masking=False,
    num_shards=1,
    seed=12345,
    batch_size=1024,
    show_progress=True,
):
    """Tokenizes the corpora and writes the example shards; returns the number of examples.

    Lines are tokenized, and the pairs of `PretrainingExampleBuilder` packed and masked, by
    one `PretrainerPreprocessor` (`sequence_length`, `max_predictions_per_seq`,
    `masked_lm_prob` as its `mask_rate`, `whole_word_masking`).
    """
    import tensorflow as tf
    from tqdm import tqdm

    from keras_bert.text.corpus import read_documents
    from keras_bert.text.pretrainer_preprocessor import PretrainerPreprocessor
    from keras_bert.text.pretraining_dataset import serialize_example
    from keras_bert.text.pretraining_example_builder import PretrainingExampleBuilder

    if num_shards < 1:
        raise ValueError(f"`num_shards` must be positive, received {num_shards}.")
    if dupe_factor < 1:
        raise ValueError(f"`dupe_factor` must be positive, received {dupe_factor}.")
    preprocessor = PretrainerPreprocessor(
        tokenizer,
        sequence_length=sequence_length,
        max_predictions_per_seq=max_predictions_per_seq,
        mask_rate=masked_lm_prob,
        whole_word_masking=whole_word_masking,
    )
    builder = PretrainingExampleBuilder(preprocessor, short_seq_prob=short_seq_prob, seed=seed)
    documents = []
    for path in corpus_paths:
        documents.extend(read_documents(path, corpus_format))
    num_lines = sum(len(document) for document in documents)
    with tqdm(total=num_lines, desc="tokenizing", unit="line", disable=not show_progress) as bar:
        tokenized = preprocessor.tokenize_documents(documents, batch_size, bar)

    num_examples = 0
    # Every shard is renamed into place only when all of them are written.
    with contextlib.ExitStack() as shards:
        writers = [
            tf.io.TFRecordWriter(
                shards.enter_context(atomic_file(shard_path(out_dir, shard, num_shards)))
            )
            for shard in range(num_shards)
        ]
        num_documents = sum(1 for document in tokenized if any(document))
        with tqdm(total=dupe_factor * num_documents, desc="writing", unit="doc",
                  disable=not show_progress) as bar:
            for _ in range(dupe_factor):
                for example in builder.build(tokenized, on_document=lambda: bar.update(1)):
                    writers[num_examples % num_shards].write(serialize_example(example))
                    num_examples += 1
        for writer in writers:
            writer.close()
    metadata = {
        "num_examples": num_examples,
        "max_seq_length": sequence_length,
        "max_predictions_per_seq": max_predictions_per_seq,
        "num_shards": num_shards,
    }
    write_json(os.path.join(out_dir, "metadata.json"), metadata, indent=2)
    return num_examples
