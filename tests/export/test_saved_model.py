"""The TF Serving export: layout, atomic versions, and numbers checked in fresh processes."""

import os

import numpy as np
import pytest
import tensorflow as tf

from export.core import evaluation
from keras_bert.models import model_dir as model_dir_lib
from export import saved_model
from tests.export.conftest import SST2_TEST


@pytest.fixture(scope="module")
def exported(tiny_model_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("serving"))
    result = saved_model.export_saved_model(
        tiny_model_dir, out, eval_path=SST2_TEST, eval_limit=24
    )
    return out, result


def test_writes_version_1_and_verifies_in_fresh_processes(exported):
    out, result = exported
    assert result["path"] == os.path.join(out, "1") and result["version"] == 1
    # Only the version directory: no staging directory is left behind.
    assert os.listdir(out) == ["1"]
    assert os.path.isfile(os.path.join(out, "1", "saved_model.pb"))
    assert os.path.isfile(os.path.join(out, "1", "assets", "vocab.txt"))
    verification = result["verification"]
    assert verification["passed"]
    assert verification["saved_model_cli_show"]["missing"] == []
    assert verification["saved_model_cli_run"]["max_abs_diff"] < 1e-4
    served = verification["serving_default_fresh_process"]
    assert served["max_abs_diff"] < 1e-4 and served["label_agreement"] == 1.0
    assert served["project_modules_imported"] == []
    # The text signature's tokenizer: tensorflow-text ops a model server must link.
    assert {"FastBertNormalize", "FastWordpieceTokenizeWithOffsets"} <= set(
        served["ops_outside_core_tensorflow"])


def test_both_signatures_match_keras(exported, tiny_model_dir):
    out, _ = exported
    info = model_dir_lib.load_model_dir(tiny_model_dir)
    model, preprocessor = info.model, info.preprocessor
    texts, _, _ = evaluation.read_tsv(SST2_TEST, info, limit=16)
    expected = evaluation.keras_logits(model, preprocessor, texts)
    loaded = tf.saved_model.load(os.path.join(out, "1"))
    assert set(loaded.signatures) == {"serving_default", "predict_token_ids"}

    served = loaded.signatures["serving_default"](text=tf.constant(texts))
    assert set(served) == {"logits", "probabilities", "label", "label_name"}
    assert served["label"].dtype == tf.int64 and served["label"].shape == (16,)
    np.testing.assert_allclose(served["logits"].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(served["probabilities"].numpy().sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(served["label"].numpy(), expected.argmax(axis=1))
    assert [x.decode() for x in served["label_name"].numpy()] == [
        info.labels[i] for i in expected.argmax(axis=1)
    ]

    packed = preprocessor.pack_numpy(texts)
    by_ids = loaded.signatures["predict_token_ids"](
        **{name: tf.constant(value) for name, value in packed.items()}
    )
    np.testing.assert_allclose(by_ids["logits"].numpy(), expected, atol=1e-5)


def test_next_version_and_existing_versions(exported, tiny_model_dir):
    out, _ = exported
    assert saved_model.next_version(out) == 2
    with pytest.raises(ValueError, match=r"Version directory .*/1 already exists"):
        saved_model.export_saved_model(tiny_model_dir, out, version=1, verify=False)
    with pytest.raises(ValueError, match=r"`version` must be a positive int, received 0"):
        saved_model.export_saved_model(tiny_model_dir, out, version=0, verify=False)


def test_failed_verification_publishes_nothing(tiny_model_dir, tmp_path, monkeypatch):
    def failing_verification(*args, **kwargs):
        return {"passed": False, "why": "test"}

    monkeypatch.setattr(saved_model, "verify_saved_model", failing_verification)
    out = str(tmp_path / "serving")
    with pytest.raises(ValueError, match="failed verification; nothing was published"):
        saved_model.export_saved_model(tiny_model_dir, out)
    assert os.listdir(out) == []


def test_overwrite_replaces_a_version_atomically(exported, tiny_model_dir):
    out, _ = exported
    before = os.stat(os.path.join(out, "1", "saved_model.pb")).st_mtime_ns
    result = saved_model.export_saved_model(tiny_model_dir, out, version=1, overwrite=True,
                                            verify=False)
    assert result["verification"] is None
    assert os.stat(os.path.join(out, "1", "saved_model.pb")).st_mtime_ns > before
    assert sorted(os.listdir(out)) == ["1"]


def test_token_id_only_saved_model_runs_in_the_stock_saved_model_cli(tiny_model_dir, tmp_path):
    result = saved_model.export_saved_model(
        tiny_model_dir, str(tmp_path / "serving"), eval_path=SST2_TEST, eval_limit=8,
        text_signature=False,
    )
    verification = result["verification"]
    assert verification["passed"] and "serving_default_fresh_process" not in verification
    assert verification["saved_model_cli_run"]["max_abs_diff"] < 1e-4
    loaded = tf.saved_model.load(result["path"])
    assert set(loaded.signatures["serving_default"].structured_input_signature[1]) == {
        "token_ids", "segment_ids", "padding_mask"}
