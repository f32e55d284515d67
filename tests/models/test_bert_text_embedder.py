"""`BertTextEmbedder`: pooling, normalisation, saving, TFLite builtins, and parity with
sentence-transformers' all-MiniLM-L6-v2 embeddings."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_bert
from keras_bert import BertEncoder
from keras_bert.models import BertTextEmbedder
from tests.test_case import shared_path
from tests.test_case import to_numpy

TINY = dict(vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
            dropout=0.0)
RNG = np.random.default_rng(5)


def _inputs(batch_size=4, length=7):
    inputs = {
        "token_ids": RNG.integers(1, 40, size=(batch_size, length)).astype("int32"),
        "segment_ids": np.zeros((batch_size, length), "int32"),
        "padding_mask": np.ones((batch_size, length), "int32"),
    }
    inputs["padding_mask"][1, 4:] = 0
    inputs["padding_mask"][2, 2:] = 0
    return inputs


@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize("normalize", [True, False])
def test_pools_and_normalises_like_the_formula(pooling, normalize):
    encoder = BertEncoder(**TINY)
    embedder = BertTextEmbedder(encoder, pooling=pooling, normalize=normalize)
    inputs = _inputs()
    sequence = to_numpy(encoder(inputs)["sequence_output"]).astype(np.float64)
    mask = inputs["padding_mask"][:, :, None].astype(np.float64)
    if pooling == "mean":
        expected = (sequence * mask).sum(axis=1) / mask.sum(axis=1)
    else:
        expected = sequence[:, 0]
    if normalize:
        expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    embedding = to_numpy(embedder(inputs))
    assert embedding.shape == (4, 8) and embedding.dtype == np.float32
    np.testing.assert_allclose(embedding, expected, atol=1e-5)


def test_padding_does_not_change_the_mean_embedding():
    embedder = BertTextEmbedder(BertEncoder(**dict(TINY, max_sequence_length=32)))
    inputs = _inputs()
    padded = {name: np.pad(value, [(0, 0), (0, 9)]) for name, value in inputs.items()}
    np.testing.assert_allclose(to_numpy(embedder(padded)), to_numpy(embedder(inputs)), atol=1e-6)


def test_all_padding_row_is_zero_not_nan():
    embedder = BertTextEmbedder(BertEncoder(**TINY))
    inputs = _inputs()
    inputs["padding_mask"][0] = 0
    embedding = to_numpy(embedder(inputs))
    assert np.all(np.isfinite(embedding))
    np.testing.assert_allclose(embedding[0], 0.0)


def test_config_and_keras_file_round_trip(tmp_path):
    embedder = BertTextEmbedder(BertEncoder(**TINY), pooling="cls", normalize=False)
    config = embedder.get_config()
    assert config["pooling"] == "cls" and config["normalize"] is False
    restored = BertTextEmbedder.from_config(config)
    assert restored.pooling == "cls" and restored.normalize is False
    inputs = _inputs()
    path = str(tmp_path / "embedder.keras")
    embedder.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, BertTextEmbedder) and loaded.hidden_dim == 8
    np.testing.assert_array_equal(to_numpy(loaded(inputs)), to_numpy(embedder(inputs)))


def test_mixed_precision_encoder_gives_float32_embeddings():
    embedder = BertTextEmbedder(BertEncoder(**dict(TINY, dtype="mixed_bfloat16")))
    embedding = embedder(_inputs())
    assert keras.backend.standardize_dtype(embedding.dtype) == "float32"
    np.testing.assert_allclose(np.linalg.norm(to_numpy(embedding), axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pooling": "max"}, r"`pooling` must be one of \('mean', 'cls'\), received 'max'"),
        ({"normalize": 1}, r"`normalize` must be a bool, received 1"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BertTextEmbedder(BertEncoder(**TINY), **kwargs)


def test_converts_to_tflite_builtins_with_the_same_embedding(tmp_path):
    from ai_edge_litert.interpreter import Interpreter  # pylint: disable=import-outside-toplevel

    embedder = BertTextEmbedder(BertEncoder(**TINY))
    specs = {name: tf.TensorSpec((1, None), tf.int32, name=name)
             for name in ("token_ids", "segment_ids", "padding_mask")}
    archive = keras.export.ExportArchive()
    archive.track(embedder)
    archive.add_endpoint("serving_default", lambda inputs: {"embedding": embedder(inputs)},
                         input_signature=[specs])
    archive.write_out(str(tmp_path / "saved"), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved"))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops
    interpreter = Interpreter(model_content=converter.convert())
    runner = interpreter.get_signature_runner("serving_default")
    inputs = {name: value[1:2] for name, value in _inputs().items()}
    embedding = runner(**inputs)["embedding"]
    np.testing.assert_allclose(embedding, to_numpy(embedder(inputs)), atol=1e-5)


def test_matches_sentence_transformers_on_minilm():
    """Parity with the reference `sentence_embedding` (sentence-transformers' mean pooling and
    L2 normalisation of the Hugging Face model's output) on the golden inputs."""
    golden = np.load(shared_path("golden", "minilm_reference.npz"))
    embedder = BertTextEmbedder(keras_bert.load_encoder(shared_path("models", "all-MiniLM-L6-v2")))
    embedding = to_numpy(embedder({
        "token_ids": golden["input_ids"],
        "segment_ids": golden["token_type_ids"],
        "padding_mask": golden["attention_mask"],
    }))
    reference = golden["sentence_embedding"]
    cosine = (embedding * reference).sum(axis=1) / (
        np.linalg.norm(embedding, axis=1) * np.linalg.norm(reference, axis=1))
    assert cosine.min() >= 0.9999, cosine
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, atol=1e-5)
