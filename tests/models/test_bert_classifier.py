import keras
import numpy as np
import pytest

from keras_bert import BertEncoder
from keras_bert.models import BertClassifier
from tests.test_case import to_numpy

TINY = dict(vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
RNG = np.random.default_rng(4)


def _inputs(batch_size=8, length=6):
    return {
        "token_ids": RNG.integers(1, 40, size=(batch_size, length)).astype("int32"),
        "segment_ids": np.zeros((batch_size, length), "int32"),
        "padding_mask": np.ones((batch_size, length), "int32"),
    }


def test_output_shape_and_keras_round_trip(tmp_path):
    classifier = BertClassifier(BertEncoder(**TINY), num_classes=3)
    inputs = _inputs()
    logits = to_numpy(classifier(inputs))
    assert logits.shape == (8, 3)
    path = str(tmp_path / "classifier.keras")
    classifier.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(restored, BertClassifier)
    assert isinstance(restored.encoder, BertEncoder)
    np.testing.assert_array_equal(logits, to_numpy(restored(inputs)))


def test_learns_a_separable_task():
    # Class = whether token 7 appears first: a real signal the head must learn.
    inputs = _inputs(batch_size=64)
    labels = (RNG.random(64) < 0.5).astype("int32")
    inputs["token_ids"][:, 0] = np.where(labels == 1, 7, 9)
    classifier = BertClassifier(BertEncoder(**dict(TINY, dropout=0.0)), num_classes=2, dropout=0.0)
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = classifier.fit(inputs, labels, batch_size=16, epochs=15, verbose=0)
    assert history.history["accuracy"][-1] > 0.95


def test_regression_and_mixed_precision_head_is_float32():
    encoder = BertEncoder(**dict(TINY, dtype="mixed_bfloat16"))
    regressor = BertClassifier(encoder, num_classes=1)
    outputs = regressor(_inputs())
    assert outputs.shape == (8, 1)
    assert keras.backend.standardize_dtype(outputs.dtype) == "float32"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": 0}, r"`num_classes` must be a positive integer, received 0"),
        ({"num_classes": 2, "dropout": 1.0}, r"`dropout` must be a number in \[0, 1\), received 1.0"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BertClassifier(BertEncoder(**TINY), **kwargs)


def test_padding_tail_is_trimmed_without_changing_logits():
    classifier = BertClassifier(BertEncoder(**dict(TINY, max_sequence_length=64)), num_classes=3)
    inputs = _inputs(batch_size=4, length=6)
    inputs["padding_mask"][2:, 4:] = 0  # Rows of 6 and 4 real tokens.
    padded = {
        name: np.concatenate([value, np.zeros((4, 26), "int32")], axis=1) for name, value in inputs.items()
    }
    np.testing.assert_allclose(to_numpy(classifier(padded)), to_numpy(classifier(inputs)), atol=1e-6)
    trimmed = classifier.get_layer("trim_padding")(padded)
    assert trimmed["token_ids"].shape == (4, 6)
    all_padding = {name: np.zeros((2, 5), "int32") for name in padded}
    assert classifier.get_layer("trim_padding")(all_padding)["padding_mask"].shape == (2, 1)


def test_fit_with_jit_compile_keeps_static_shapes():
    classifier = BertClassifier(BertEncoder(**TINY), num_classes=2)
    classifier.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    inputs = _inputs(batch_size=4)
    inputs["padding_mask"][:, 3:] = 0
    history = classifier.fit(inputs, np.array([0, 1, 0, 1]), epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
