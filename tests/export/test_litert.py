"""The LiteRT runtime wrapper: interpreter fallbacks, token-id and string models."""

import builtins
import os
import shutil

import numpy as np
import pytest

from export.core import litert


def test_prefers_ai_edge_litert():
    module, name = litert.interpreter_module()
    assert name == "ai_edge_litert" and hasattr(module, "Interpreter")


def test_falls_back_to_tflite_runtime_then_tf_lite(monkeypatch, converted):
    real_import = builtins.__import__

    def without(*missing):
        def fake_import(name, *args, **kwargs):
            if name.split(".")[0] in missing:
                raise ImportError(f"No module named {name!r}")
            return real_import(name, *args, **kwargs)

        return fake_import

    monkeypatch.setattr(builtins, "__import__", without("ai_edge_litert", "tflite_runtime"))
    module, name = litert.interpreter_module()
    assert name == "tf.lite"
    # The fallback still runs the token-id model.
    path, _ = converted["none"]
    classifier = litert.LiteRTClassifier(path)
    assert classifier.logits(["a fine film"]).shape == (1, 2)


def test_token_id_prediction_from_packed_and_texts(converted):
    path, _ = converted["none"]
    classifier = litert.LiteRTClassifier(path, num_threads=1)
    assert not classifier.is_string_model
    result = classifier.predict_texts(["a fine film", "dull"])
    assert result["logits"].shape == (2, 2)
    np.testing.assert_allclose(result["probabilities"].sum(axis=1), 1.0, rtol=1e-6)
    assert result["label_name"] == [str(i) for i in result["label"]]
    packed = classifier.tokenizer.pack(["a fine film"], sequence_length=128)
    from_packed = classifier.logits_from_packed({k: np.asarray(v) for k, v in packed.items()})
    np.testing.assert_allclose(from_packed, result["logits"][:1], rtol=1e-6)


def test_string_model_without_a_manifest_is_detected(converted, tmp_path):
    path, _ = converted["text"]
    bare = str(tmp_path / "bare.tflite")
    shutil.copyfile(path, bare)
    classifier = litert.LiteRTClassifier(bare)
    assert classifier.is_string_model and classifier.labels is None
    assert classifier.logits(["a fine film"]).shape == (1, 2)


def test_token_id_model_without_vocabulary_is_an_error(converted, tmp_path):
    path, _ = converted["none"]
    bare = str(tmp_path / "bare.tflite")
    shutil.copyfile(path, bare)
    with pytest.raises(ValueError, match=r"has no manifest naming its vocabulary"):
        litert.LiteRTClassifier(bare).logits(["text"])
    with pytest.raises(ValueError, match=r"is not a file"):
        litert.LiteRTClassifier(os.path.join(str(tmp_path), "missing.tflite"))
