"""`export.check_clients`: the Android clients on our files against the Keras model.

Runs the real clients (MediaPipe Tasks, the LiteRT Task Library) in their own virtualenvs
(`scripts/setup_clients.sh`, run by `scripts/test.sh`) on the tiny classifier's files of
`conftest.converted`, with metadata as `export.tflite` writes it by default.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from export import check_clients
from keras_bert.models import model_dir as model_dir_lib
from tests.export.conftest import SST2_TEST

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _sentences(path, count, with_accent):
    """`count` SST-2 test sentences, the first with an accented word if `with_accent`."""
    with open(SST2_TEST, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    ascii_rows = [row for row in rows if row[0].isascii()][:count]
    accented = [row for row in rows if not row[0].isascii()][:1] if with_accent else []
    with open(path, "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n")
        for sentence, label in accented + ascii_rows:
            f.write(f"{sentence}\t{label}\n")
    return path


def test_classifier_files_agree_with_keras_in_both_clients(converted, tiny_model_dir, tmp_path):
    eval_path = _sentences(str(tmp_path / "eval.tsv"), 24, with_accent=False)
    files = [converted["none"][0], converted["dynamic"][0]]
    report = check_clients.check_files(files, tiny_model_dir, eval_path)
    assert [entry["quantization"] for entry in report["files"]] == ["none", "dynamic"]
    float_entry = report["files"][0]
    assert [c["client_task"] for c in float_entry["clients"]] == [
        "text_classifier", "bert_nl_classifier"]
    for client in float_entry["clients"]:
        assert client["examples"] == 24
        # ASCII sentences: the clients' tokenizer gives our ids, the file our logits.
        assert client["label_agreement"] == 1.0, client["disagreements"]
        assert client["passed"]
    # The Task Library's 0.4.4 runtime predates the dynamic-int8 op versions: reported only.
    dynamic_entry = report["files"][1]
    mediapipe, task_library = dynamic_entry["clients"]
    assert mediapipe["passed"] is not None and mediapipe["examples"] == 24
    if "unsupported" in task_library:
        assert task_library["passed"] is None
        assert "FULLY_CONNECTED" in task_library["unsupported"]
    assert report["passed"] == all(entry["passed"] for entry in report["files"])
    assert "text_classifier (mediapipe 1.2.2)" in check_clients.markdown(report)


def test_an_accent_shows_both_token_id_sequences(converted, tiny_model_dir, tmp_path):
    eval_path = _sentences(str(tmp_path / "eval.tsv"), 0, with_accent=True)
    report = check_clients.check_files([converted["none"][0]], tiny_model_dir, eval_path)
    info = model_dir_lib.load_model_dir(tiny_model_dir, load_model=False)
    tokenizer = check_clients._client_like_tokenizer(info)  # pylint: disable=protected-access
    with open(eval_path, encoding="utf-8") as f:
        text = f.read().splitlines()[1].split("\t")[0]
    ours = report["files"][0]
    # The reference strips the accent, the clients keep it: the ids differ.
    packed = info.preprocessor.pack_numpy([text])
    length = int(packed["padding_mask"][0].sum())
    assert tokenizer(text) != packed["token_ids"][0, :length].tolist()
    for client in ours["clients"]:
        for item in client["disagreements"]:
            assert item["cause"].startswith("tokenization")
            assert item["our_token_ids"] != item["client_token_ids"]


def test_command_line_report_and_errors(converted, tiny_model_dir, tmp_path):
    eval_path = _sentences(str(tmp_path / "eval.tsv"), 8, with_accent=False)
    prefix = str(tmp_path / "report")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-m", "export.check_clients", converted["none"][0],
         f"--model_dir={tiny_model_dir}", f"--eval={eval_path}", f"--report={prefix}"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with open(prefix + ".json", encoding="utf-8") as f:
        assert json.load(f)["passed"]
    assert os.path.isfile(prefix + ".md")
    # A missing file: one line naming it, exit 2, no traceback.
    missing = subprocess.run(
        [sys.executable, "-m", "export.check_clients", str(tmp_path / "missing.tflite"),
         f"--model_dir={tiny_model_dir}", f"--eval={eval_path}"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr
    assert "missing.tflite" in missing.stderr


def test_files_without_metadata_are_refused(converted, tiny_model_dir, tmp_path):
    eval_path = _sentences(str(tmp_path / "eval.tsv"), 2, with_accent=False)
    with pytest.raises(ValueError, match="no TFLite Model Metadata"):
        check_clients.check_files([converted["text"][0]], tiny_model_dir, eval_path)


def test_texts_longer_than_the_model_are_cut_as_the_preprocessor_cuts_them(
        converted, tiny_model_dir):
    """MediaPipe passes `(1, n)` ids of any n to a `(1, -1)` file (it clips only fixed-shape
    inputs); the file cuts them as the task's preprocessor does, instead of failing past the
    position embeddings."""
    from export.core import clients  # pylint: disable=import-outside-toplevel

    info = model_dir_lib.load_model_dir(tiny_model_dir, load_model=False)
    texts = ["a gorgeous film", " ".join(["wonderful film"] * 70),
             " ".join(["wonderful film"] * 400)]
    probabilities = np.array([
        [result["probabilities"][label] for label in info.labels]
        for result in info.load_task().predict_texts(info, texts)
    ])
    result = clients.run_client(
        "mediapipe", {"model": converted["none"][0], "task": "text_classifier", "texts": texts})
    logits = np.array([[{c["name"]: c["score"] for c in item["categories"]}[label]
                        for label in info.labels] for item in result["results"]])
    client_probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(client_probabilities, probabilities, atol=1e-5)
