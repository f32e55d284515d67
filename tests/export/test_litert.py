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


def _copy_with_manifest(path, directory):
    """The `.tflite` file, its manifest and vocabulary copied to `directory` (same names)."""
    stem = os.path.splitext(path)[0]
    for suffix in (".tflite", ".manifest.json", ".vocab.txt"):
        shutil.copyfile(stem + suffix, os.path.join(directory, os.path.basename(stem) + suffix))
    return os.path.join(directory, os.path.basename(path))


def test_a_vocabulary_of_another_sha256_is_refused(converted, tmp_path):
    path = _copy_with_manifest(converted["none"][0], str(tmp_path))
    manifest = litert.read_manifest(path)
    vocabulary = os.path.join(str(tmp_path), manifest["vocab"])
    assert litert.file_sha256(vocabulary) == manifest["vocab_sha256"]
    litert.LiteRTClassifier(path)  # its own vocabulary passes
    with open(vocabulary, "a", encoding="utf-8") as f:
        f.write("extratoken\n")
    changed = litert.file_sha256(vocabulary)
    with pytest.raises(ValueError) as raised:
        litert.LiteRTClassifier(path)
    message = str(raised.value)
    assert vocabulary in message and changed in message and manifest["vocab_sha256"] in message
    # A vocabulary passed in is held to the manifest too.
    other = str(tmp_path / "other_vocab.txt")
    shutil.copyfile(vocabulary, other)
    with pytest.raises(ValueError, match=rf"Vocabulary {other} has SHA-256 {changed}, but the "
                                         rf"manifest .* records vocab_sha256 "
                                         rf"{manifest['vocab_sha256']}"):
        litert.LiteRTModel(path, vocabulary=other)


def test_model_outputs_by_name_for_texts_and_packed_ids(converted):
    path, _ = converted["none"]
    model = litert.LiteRTModel(path)
    assert model.output_names == ["logits"] and not model.fixed_sequence_length
    texts = ["a fine film", "a charming and often affecting journey"]
    outputs = model.outputs(texts)
    assert list(outputs) == ["logits"] and outputs["logits"].shape == (2, 2)
    np.testing.assert_array_equal(outputs["logits"], litert.LiteRTClassifier(path).logits(texts))


def test_stack_outputs_pads_the_sequence_axis():
    rows = [{"logits": np.ones((1, 2, 3))}, {"logits": np.ones((1, 4, 3))}]
    stacked = litert.stack_outputs(rows)["logits"]
    assert stacked.shape == (2, 4, 3) and stacked[0, 2:].sum() == 0 and stacked[1].sum() == 12


def test_a_file_whose_metadata_zip_is_cut_off_is_refused(converted, tmp_path):
    """The metadata's zip is the end of the file: a copy cut short still loads in the
    interpreter, but the task libraries would find no vocabulary."""
    path, _ = converted["none"]
    with open(path, "rb") as f:
        content = f.read()
    cut = str(tmp_path / "cut.tflite")
    with open(cut, "wb") as f:
        f.write(content[:-100])
    with pytest.raises(ValueError, match=r"cut.tflite is not a readable .tflite model .*zip of "
                                         r"its metadata's associated files is cut off"):
        litert.LiteRTModel(cut)
