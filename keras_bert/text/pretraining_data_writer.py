"""Writes pretraining examples as sharded TFRecords (the library behind create_pretraining_data).

The command line is `python -m keras_bert.text.create_pretraining_data`.
"""

import contextlib
import json
import os

from keras_bert.utils.atomic import atomic_file


def shard_path(out_dir, shard, num_shards):
    return os.path.join(out_dir, f"pretraining-{shard:05d}-of-{num_shards:05d}.tfrecord")


def tokenize_documents(tokenizer, documents, batch_size, progress=None):
    """Token ids of every line of every document (same nesting)."""
    lines = [line for document in documents for line in document]
    ids = []
    for start in range(0, len(lines), batch_size):
        batch = lines[start : start + batch_size]
        ids.extend(tokenizer.tokenize(batch).to_list())
        if progress is not None:
            progress.update(len(batch))
    tokenized = []
    position = 0
    for document in documents:
        tokenized.append(ids[position : position + len(document)])
        position += len(document)
    return tokenized


def write_pretraining_data(
    corpus_paths,
    tokenizer,
    out_dir,
    corpus_format="auto",
    max_seq_length=128,
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
    """Tokenizes the corpora and writes the example shards; returns the number of examples."""
    import tensorflow as tf
    from tqdm import tqdm

    from keras_bert.text.corpus import read_documents
    from keras_bert.text.pretraining_dataset import serialize_example
    from keras_bert.text.pretraining_example_builder import PretrainingExampleBuilder

    if num_shards < 1:
        raise ValueError(f"`num_shards` must be positive, received {num_shards}.")
    if dupe_factor < 1:
        raise ValueError(f"`dupe_factor` must be positive, received {dupe_factor}.")
    documents = []
    for path in corpus_paths:
        documents.extend(read_documents(path, corpus_format))
    num_lines = sum(len(document) for document in documents)
    with tqdm(total=num_lines, desc="tokenizing", unit="line", disable=not show_progress) as bar:
        tokenized = tokenize_documents(tokenizer, documents, batch_size, bar)

    vocabulary = tokenizer.get_vocabulary()
    builder = PretrainingExampleBuilder(
        vocabulary_size=len(vocabulary),
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
        mask_token_id=tokenizer.mask_token_id,
        special_token_ids=tokenizer.special_token_ids,
        max_seq_length=max_seq_length,
        max_predictions_per_seq=max_predictions_per_seq,
        masked_lm_prob=masked_lm_prob,
        short_seq_prob=short_seq_prob,
        whole_word_masking=whole_word_masking,
        continuation_token_ids=[i for i, t in enumerate(vocabulary) if t.startswith("##")],
        seed=seed,
    )

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
        "max_seq_length": max_seq_length,
        "max_predictions_per_seq": max_predictions_per_seq,
        "num_shards": num_shards,
    }
    with atomic_file(os.path.join(out_dir, "metadata.json")) as temporary:
        with open(temporary, "w", encoding="utf-8") as metadata_file:
            json.dump(metadata, metadata_file, indent=2)
    return num_examples
