"""Bad command lines: one line on stderr naming the flag and its value, exit 2, no traceback.

Each case runs an app as a user does (`python -m ...` from the repository root) and fails
before any model is built or any output is written: seconds each, mostly TensorFlow's import.
The line is the last of stderr (TensorFlow's C++ start-up lines come before it).
"""

import os
import re
import subprocess
import sys

from tests.test_case import shared_path

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
VOCAB = shared_path("models", "all-MiniLM-L6-v2", "vocab.txt")
TOPICS_TRAIN = os.path.join(REPO, "tests", "data", "topics", "train.tsv")


def run_module(module, *args):
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
        timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
    )


def error_line(result):
    """The one error line of a failed run (after checking that there is exactly one)."""
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"\w+Error: ", line)]
    assert len(errors) == 1 and errors[0] == lines[-1], result.stderr[-3000:]
    return errors[0]


def assert_names(line, flag, value):
    assert f"`{flag}` ({value!r})" in line, line


def test_predict_missing_model_dir(tmp_path):
    missing = str(tmp_path / "MISSING")
    line = error_line(run_module("training.predict", f"--model_dir={missing}", "x"))
    assert_names(line, "--model_dir", missing)
    assert line.endswith("not a directory.")


def test_pretrain_missing_corpus(tmp_path):
    missing, out = str(tmp_path / "MISSING"), tmp_path / "out"
    result = run_module("training.pretrain", f"--corpus={missing}", "--preset=bert_tiny",
                        "--train_steps=1", f"--model_dir={out}")
    line = error_line(result)
    # The message of test_pretrain.py::test_flag_errors, now without the traceback.
    assert f"`--corpus` file '{missing}' does not exist." in line
    assert not out.exists()


def _finetune(tmp_path, *args):
    return run_module("training.finetune", "--init=bert_tiny", f"--vocab={VOCAB}",
                      f"--model_dir={tmp_path / 'out'}", *args)


def test_finetune_negative_learning_rate(tmp_path):
    line = error_line(_finetune(tmp_path, f"--train={TOPICS_TRAIN}", "--learning_rate=-1"))
    assert_names(line, "--learning_rate", -1.0)
    assert "must be positive" in line
    assert not (tmp_path / "out").exists()


def test_finetune_missing_train_file(tmp_path):
    missing = str(tmp_path / "MISSING.tsv")
    line = error_line(_finetune(tmp_path, f"--train={missing}"))
    assert_names(line, "--train", missing)
    assert not (tmp_path / "out").exists()


def test_finetune_malformed_train_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\ngood film\t1\nno label here\n")
    line = error_line(_finetune(tmp_path, f"--train={bad}"))
    assert_names(line, "--train", str(bad))
    assert "bad.tsv:3: expected 2 TSV columns (sentence, label), found 1" in line
    assert not (tmp_path / "out").exists()


def test_finetune_deprecated_flag_is_named_as_typed(tmp_path):
    result = _finetune(tmp_path, f"--train={TOPICS_TRAIN}", "--max_seq_length=2")
    line = error_line(result)
    assert_names(line, "--max_seq_length", 2)
    assert "must be >= 3" in line


def test_saved_model_missing_model_dir(tmp_path):
    missing, out = str(tmp_path / "MISSING"), tmp_path / "serving"
    line = error_line(run_module("export.saved_model", f"--model_dir={missing}", f"--out={out}"))
    assert_names(line, "--model_dir", missing)
    assert not out.exists()


def test_tflite_missing_model_dir(tmp_path):
    missing, out = str(tmp_path / "MISSING"), tmp_path / "model.tflite"
    line = error_line(run_module("export.tflite", f"--model_dir={missing}", f"--out={out}"))
    assert_names(line, "--model_dir", missing)
    assert not out.exists()


def test_tflite_int8_without_calibration_data(tiny_model_dir, tmp_path):
    out = tmp_path / "model.tflite"
    line = error_line(run_module("export.tflite", f"--model_dir={tiny_model_dir}",
                                 f"--out={out}", "--quantize=int8"))
    assert "`--calibration_data`" in line and "`--quantize=int8`" in line
    assert os.listdir(tmp_path) == []


# === absl's own errors and the traceback behind --verbosity (training.predict starts fast) ===


def test_unknown_and_missing_flags_are_one_line(tmp_path):
    line = error_line(run_module("training.predict", f"--model_dir={tmp_path}", "--no_such_flag=1",
                                 "x"))
    assert "no_such_flag" in line
    line = error_line(run_module("training.predict", "x"))
    assert "`--model_dir`" in line and "required" in line
    line = error_line(run_module("training.predict", f"--model_dir={tmp_path}",
                                 "--batch_size=0", "x"))
    assert_names(line, "--batch_size", 0)


def test_verbosity_shows_the_traceback(tmp_path):
    missing = str(tmp_path / "MISSING")
    result = run_module("training.predict", f"--model_dir={missing}", "--verbosity=1", "x")
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert_names(result.stderr.strip().splitlines()[-1], "--model_dir", missing)
