import keras
import numpy as np
import pytest

from keras_bert import BertEncoder
from keras_bert.models import BertTokenClassifier
from tests.test_case import to_numpy

TINY = dict(vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
RNG = np.random.default_rng(6)


def _inputs(batch_size=4, length=6):
    return {
        "token_ids": RNG.integers(1, 40, size=(batch_size, length)).astype("int32"),
        "segment_ids": np.zeros((batch_size, length), "int32"),
        "padding_mask": np.ones((batch_size, length), "int32"),
    }


def test_output_shape_and_keras_round_trip(tmp_path):
    tagger = BertTokenClassifier(BertEncoder(**TINY), num_classes=5)
    inputs = _inputs()
    logits = to_numpy(tagger(inputs))
    assert logits.shape == (4, 6, 5)
    path = str(tmp_path / "tagger.keras")
    tagger.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(restored, BertTokenClassifier)
    assert restored.num_classes == 5
    np.testing.assert_array_equal(logits, to_numpy(restored(inputs)))


def test_ignored_positions_do_not_count():
    # Tag = 1 on token 7, else 0; positions labelled -100 carry a wrong label
    # that the loss must ignore.
    inputs = _inputs(batch_size=64, length=6)
    tags = np.where(inputs["token_ids"] == 7, 1, 0).astype("int32")
    targets = tags.copy()
    ignored = RNG.random(targets.shape) < 0.3
    targets[ignored] = -100
    encoder = BertEncoder(**dict(TINY, dropout=0.0))
    encoder.pooler_dense.trainable = False  # unused by the token head
    tagger = BertTokenClassifier(encoder, num_classes=2, dropout=0.0)
    tagger.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100),
    )
    history = tagger.fit(inputs, targets, batch_size=16, epochs=20, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    predictions = np.argmax(tagger.predict(inputs, verbose=0), axis=-1)
    assert np.mean(predictions[~ignored] == tags[~ignored]) > 0.97


def test_mixed_precision_logits_are_float32():
    tagger = BertTokenClassifier(BertEncoder(**dict(TINY, dtype="mixed_float16")), num_classes=3)
    assert keras.backend.standardize_dtype(tagger(_inputs()).dtype) == "float32"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": 0}, r"`num_classes` must be a positive integer, received 0"),
        ({"num_classes": 2, "dropout": -0.1}, r"`dropout` must be a number in \[0, 1\), received -0.1"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BertTokenClassifier(BertEncoder(**TINY), **kwargs)
