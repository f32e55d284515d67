"""TFRecord serialization of pretraining examples and the reader that turns them into inputs."""

import tensorflow as tf

from keras_bert.inputs import INPUT_NAMES
from keras_bert.inputs import PRETRAINER_INPUT_NAMES

# Feature name -> (dtype, is a per-prediction feature) for the TFRecord examples.
_INT_SEQUENCE_FEATURES = INPUT_NAMES
_INT_PREDICTION_FEATURES = ("masked_positions", "masked_ids")


def serialize_example(example):
    """Serializes one example of `PretrainingExampleBuilder.build` as a `tf.train.Example`."""

    def int_feature(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

    features = {name: int_feature(example[name]) for name in _INT_SEQUENCE_FEATURES}
    features.update({name: int_feature(example[name]) for name in _INT_PREDICTION_FEATURES})
    features["masked_weights"] = tf.train.Feature(
        float_list=tf.train.FloatList(value=[float(v) for v in example["masked_weights"]])
    )
    features["next_sentence_label"] = int_feature([example["next_sentence_label"]])
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString(
        deterministic=True  # the same bytes in every process (map order is otherwise random)
    )


def feature_spec(sequence_length, max_predictions_per_seq):
    """The `tf.io.parse_example` spec of the pretraining TFRecords."""
    spec = {
        name: tf.io.FixedLenFeature([sequence_length], tf.int64)
        for name in _INT_SEQUENCE_FEATURES
    }
    spec.update(
        {
            name: tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64)
            for name in _INT_PREDICTION_FEATURES
        }
    )
    spec["masked_weights"] = tf.io.FixedLenFeature([max_predictions_per_seq], tf.float32)
    spec["next_sentence_label"] = tf.io.FixedLenFeature([1], tf.int64)
    return spec


def load_pretraining_dataset(
    file_pattern,
    sequence_length=128,
    max_predictions_per_seq=20,
    batch_size=32,
    shuffle=True,
    repeat=False,
    seed=0,
    drop_remainder=False,
):
    """A `tf.data.Dataset` of `(inputs, labels)` batches from pretraining TFRecords.

    Args:
        file_pattern: str or list of str. Glob(s) of the TFRecord shards.
        sequence_length: int. `--sequence_length` the shards were written with.
        max_predictions_per_seq: int. `--max_predictions_per_seq` they were written with.
        batch_size: int. Examples per batch.
        shuffle: bool. Whether to shuffle files and examples (seeded).
        repeat: bool. Whether to repeat forever.
        seed: int. Shuffle seed.
        drop_remainder: bool. Whether to drop the last partial batch.

    Returns:
        A dataset of `(inputs, labels)`. `inputs`: `token_ids`, `segment_ids`, `padding_mask`
        (int32, `(batch_size, sequence_length)`) and `masked_positions` (int32,
        `(batch_size, max_predictions_per_seq)`). `labels`: `masked_ids` (int32) and
        `masked_weights` (float32), both `(batch_size, max_predictions_per_seq)`, and
        `next_sentence_label` (int32, `(batch_size,)`).
    """
    files = tf.data.Dataset.list_files(file_pattern, shuffle=shuffle, seed=seed)
    dataset = tf.data.TFRecordDataset(files, num_parallel_reads=tf.data.AUTOTUNE)
    if repeat:
        dataset = dataset.repeat()
    if shuffle:
        dataset = dataset.shuffle(10_000, seed=seed)
    spec = feature_spec(sequence_length, max_predictions_per_seq)

    def to_inputs(serialized):
        features = tf.io.parse_example(serialized, spec)
        inputs = {
            name: tf.cast(features[name], tf.int32)
            for name in PRETRAINER_INPUT_NAMES
        }
        labels = {
            "masked_ids": tf.cast(features["masked_ids"], tf.int32),
            "masked_weights": features["masked_weights"],
            "next_sentence_label": tf.cast(features["next_sentence_label"][:, 0], tf.int32),
        }
        return inputs, labels

    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        tf.data.AUTOTUNE
    )
