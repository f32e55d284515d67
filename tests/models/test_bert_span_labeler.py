import keras
import numpy as np
import pytest

from keras_bert import BertEncoder
from keras_bert.models import BertSpanLabeler
from tests.test_case import to_numpy

TINY = dict(vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
RNG = np.random.default_rng(5)


def _inputs(batch_size=4, length=7):
    padding_mask = np.ones((batch_size, length), "int32")
    padding_mask[0, 5:] = 0
    return {
        "token_ids": RNG.integers(1, 40, size=(batch_size, length)).astype("int32"),
        "segment_ids": np.zeros((batch_size, length), "int32"),
        "padding_mask": padding_mask,
    }


def test_outputs_mask_padding_and_survive_keras_round_trip(tmp_path):
    labeler = BertSpanLabeler(BertEncoder(**TINY))
    inputs = _inputs()
    outputs = labeler(inputs)
    assert sorted(outputs) == ["end_logits", "start_logits"]
    for name in outputs:
        value = to_numpy(outputs[name])
        assert value.shape == (4, 7) and value.dtype == np.float32
        assert np.all(value[0, 5:] < -1e8) and np.all(np.abs(value[0, :5]) < 100)
    path = str(tmp_path / "labeler.keras")
    labeler.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(restored, BertSpanLabeler)
    for name in outputs:
        np.testing.assert_array_equal(to_numpy(outputs[name]), to_numpy(restored(inputs)[name]))
    assert restored.get_config() == labeler.get_config()


def test_learns_to_point_at_a_marked_token():
    # The answer span starts at the token 7 and ends at the token 9.
    inputs = _inputs(batch_size=64, length=8)
    inputs["padding_mask"][:] = 1
    starts = RNG.integers(1, 4, size=64)
    ends = starts + RNG.integers(0, 3, size=64)
    for row, (start, end) in enumerate(zip(starts, ends)):
        inputs["token_ids"][row] = RNG.integers(10, 40, size=8)
        inputs["token_ids"][row, start] = 7
        inputs["token_ids"][row, end] = 9 if end != start else 7
    encoder = BertEncoder(**dict(TINY, dropout=0.0))
    encoder.pooler_dense.trainable = False  # unused by the span head
    labeler = BertSpanLabeler(encoder)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    labeler.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss={"start_logits": loss, "end_logits": loss},
    )
    labeler.fit(inputs, {"start_logits": starts, "end_logits": ends}, batch_size=16,
                epochs=25, verbose=0)
    outputs = labeler.predict(inputs, verbose=0)
    assert np.mean(np.argmax(outputs["start_logits"], -1) == starts) > 0.9
    assert np.mean(np.argmax(outputs["end_logits"], -1) == ends) > 0.9


def test_mixed_precision_outputs_are_float32():
    labeler = BertSpanLabeler(BertEncoder(**dict(TINY, dtype="mixed_bfloat16")))
    outputs = labeler(_inputs())
    for value in outputs.values():
        assert keras.backend.standardize_dtype(value.dtype) == "float32"


def test_invalid_arguments():
    with pytest.raises(ValueError, match=r"`initializer_range` must be a positive number, received 0"):
        BertSpanLabeler(BertEncoder(**TINY), initializer_range=0)
