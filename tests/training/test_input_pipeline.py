import keras
import numpy as np

from keras_bert import inputs as model_inputs
from training.core import input_pipeline

RNG = np.random.default_rng(7)


def _features(lengths, sequence_length=40):
    num = len(lengths)
    token_ids = np.zeros((num, sequence_length), "int32")
    padding_mask = np.zeros((num, sequence_length), "int32")
    for row, length in enumerate(lengths):
        token_ids[row, :length] = row + 1  # the row id, to identify examples
        padding_mask[row, :length] = 1
    return {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
            "padding_mask": padding_mask}


def test_bucket_boundaries():
    assert input_pipeline.bucket_boundaries(128) == [8, 16, 24, 32, 48, 64, 96, 129]
    assert input_pipeline.bucket_boundaries(20) == [8, 16, 21]


def test_training_batches_are_trimmed_and_cover_every_example():
    lengths = RNG.integers(2, 41, size=96)
    features = _features(lengths)
    labels = np.arange(96, dtype="int32")
    dataset = input_pipeline.training_dataset(features, labels, batch_size=8, seed=1)
    seen = []
    for batch_features, batch_labels in dataset.take(12):  # one pass: 96 / 8
        mask = batch_features["padding_mask"].numpy()
        assert mask.shape[0] == 8
        assert mask.shape[1] == mask.sum(axis=1).max()  # trimmed to the longest member
        rows = batch_features["token_ids"].numpy()[:, 0] - 1
        np.testing.assert_array_equal(rows, batch_labels.numpy())
        spread = lengths[rows].max() - lengths[rows].min()
        assert spread < 17  # grouped by length, not drawn at random
        seen.extend(rows.tolist())
    # Buckets hold back partial batches, so a pass can spill into the next; most
    # examples are still seen once in the first pass.
    assert len(set(seen)) > 80


def test_per_token_labels_are_trimmed_with_the_features():
    lengths = RNG.integers(2, 10, size=16)
    features = _features(lengths, sequence_length=12)
    labels = np.where(features["padding_mask"] == 1, 1, -100).astype("int32")
    batch_features, batch_labels = next(iter(
        input_pipeline.training_dataset(features, labels, batch_size=4)))
    assert batch_labels.shape == batch_features["token_ids"].shape
    np.testing.assert_array_equal(batch_labels.numpy() == 1,
                                  batch_features["padding_mask"].numpy() == 1)


def test_tpu_batches_are_padded_to_bucket_boundaries():
    features = _features(RNG.integers(2, 41, size=64))
    dataset = input_pipeline.training_dataset(
        features, np.zeros(64, "int32"), batch_size=4, pad_to_bucket_boundary=True)
    for batch_features, _ in dataset.take(10):
        assert batch_features["token_ids"].shape[1] in (8, 16, 24, 32, 40)


class Echo(keras.Model):
    """Returns each row's id (first token) and the per-token ids, as a model would."""

    def call(self, inputs):
        token_ids = keras.ops.cast(inputs["token_ids"], "float32")
        return {"row": token_ids[:, :1], "tokens": token_ids}


def test_predict_restores_input_order_and_pads_sequence_outputs():
    lengths = RNG.integers(1, 30, size=50)
    features = _features(lengths, sequence_length=32)
    outputs = model_inputs.predict(Echo(), features, batch_size=8, sequence_outputs=True)
    np.testing.assert_array_equal(outputs["row"][:, 0], np.arange(1, 51))
    assert outputs["tokens"].shape == (50, lengths.max())
    for row, length in enumerate(lengths):
        np.testing.assert_array_equal(outputs["tokens"][row, :length], row + 1)
        np.testing.assert_array_equal(outputs["tokens"][row, length:], 0)


def test_length_sorted_batches_round_to_multiples_of_eight():
    batches = model_inputs.length_sorted_batches(np.array([3, 30, 9, 17, 12]), 2)
    assert [sorted(b.tolist()) for b, _ in batches] == [[0, 2], [3, 4], [1]]
    assert [length for _, length in batches] == [16, 24, 30]
