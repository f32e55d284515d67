"""Slower export paths: sentence-pair models end to end, and the keras-hub reference file."""

import os

import numpy as np
import pytest

from export.core import evaluation
from export.core import flatbuffer
from export import keras_hub_reference
from export.core import litert
from keras_bert.models import model_dir as model_dir_lib
from export import saved_model
from export import tflite
from tests.export import model_dirs

PAIRS = [
    ("a man is playing a guitar .", "someone plays music .", "1"),
    ("the cat sleeps .", "a dog is running in the park .", "0"),
    ("[MASK] is here", "nobody came", "0"),
    ("Café crème " * 40, "a very long first text is truncated longest-first", "1"),
]


@pytest.fixture(scope="module")
def pair_model_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("pair_model_dir"))
    return model_dirs.write_tiny_model_dir(directory, pair_column="sentence2")


@pytest.fixture(scope="module")
def pair_tsv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "pairs.tsv"
    rows = ["sentence1\tsentence2\tlabel"] + ["\t".join(row) for row in PAIRS]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.slow
def test_pair_saved_model_takes_text_and_text_pair(pair_model_dir, pair_tsv, tmp_path):
    result = saved_model.export_saved_model(pair_model_dir, str(tmp_path / "serving"),
                                            eval_path=pair_tsv)
    assert result["verification"]["passed"]
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    loaded = tf.saved_model.load(result["path"])
    serve = loaded.signatures["serving_default"]
    assert set(serve.structured_input_signature[1]) == {"text", "text_pair"}


@pytest.mark.slow
def test_pair_string_tflite_matches_keras(pair_model_dir, pair_tsv, tmp_path):
    out = str(tmp_path / "pair_text.tflite")
    report = tflite.convert(pair_model_dir, out, string_input=True, eval_path=pair_tsv,
                            log=lambda message: None)
    assert report["passed"] and report["max_abs_diff"] < 1e-4
    info = model_dir_lib.load_model_dir(pair_model_dir)
    texts, texts_pair, _ = evaluation.read_tsv(pair_tsv, info)
    expected = evaluation.keras_logits(info.model, info.preprocessor, texts, texts_pair)
    logits = litert.LiteRTClassifier(out).logits(texts, texts_pair)
    np.testing.assert_allclose(logits, expected, atol=1e-4)


@pytest.mark.slow
def test_keras_hub_reference_converts_with_builtins(tiny_model_dir, tmp_path):
    out = str(tmp_path / "hub.tflite")
    manifest = keras_hub_reference.write_reference(tiny_model_dir, out, quantize="dynamic")
    assert manifest["size_bytes"] == os.path.getsize(out)
    with open(out, "rb") as f:
        summary = flatbuffer.inspect_model(f.read())
    assert summary["custom_ops"] == [] and summary["variable_ops"] == []
    logits = litert.LiteRTClassifier(out).logits(["a fine film"])
    assert logits.shape == (1, 2) and np.all(np.isfinite(logits))
