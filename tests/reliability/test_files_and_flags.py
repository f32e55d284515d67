"""Bad files and flags: malformed input lines, corrupt model files, occupied output directories."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.test_case import shared_path

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
VOCAB = shared_path("models", "all-MiniLM-L6-v2", "vocab.txt")


def run_module(module, *args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
        timeout=timeout, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
    )


# === Malformed input lines ===


def test_malformed_tsv_line_names_file_and_line_and_can_be_skipped(tmp_path):
    from keras_bert.tasks import classification

    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\ngood film\t1\nno label here\nbad film\t0\nx\ty\tz\n")
    with pytest.raises(ValueError, match=r"train.tsv:3: expected 2 TSV columns \(sentence, label\), found 1"):
        classification.read_examples(str(path))
    examples = classification.read_examples(str(path), skip_bad_lines=True)
    assert examples.texts == ["good film", "bad film"] and examples.labels == ["1", "0"]
    assert examples.line_numbers == [2, 4]
    assert [m.split(": ")[0][-11:] for m in examples.skipped_lines] == ["train.tsv:3", "train.tsv:5"]


def test_invalid_utf8_line_names_file_and_line(tmp_path):
    from keras_bert.tasks import classification

    path = tmp_path / "train.tsv"
    path.write_bytes(b"sentence\tlabel\ngood\t1\nbad \xff\xfe bytes\t0\nfine\t0\n")
    with pytest.raises(ValueError, match=r"train.tsv:3: not valid UTF-8"):
        classification.read_examples(str(path))
    examples = classification.read_examples(str(path), skip_bad_lines=True)
    assert examples.texts == ["good", "fine"] and examples.line_numbers == [2, 4]


def test_bad_jsonl_lines_and_empty_labels(tmp_path):
    from keras_bert.tasks import classification

    path = tmp_path / "train.jsonl"
    path.write_text('{"sentence": "a", "label": "x"}\n{not json\n[1]\n{"sentence": "b", "label": ""}\n'
                    '{"sentence": "c", "label": "y"}\n')
    with pytest.raises(ValueError, match=r"train.jsonl:2: invalid JSON"):
        classification.read_examples(str(path))
    examples = classification.read_examples(str(path), skip_bad_lines=True)
    assert examples.texts == ["a", "c"] and len(examples.skipped_lines) == 3
    assert "train.jsonl:4: empty 'label'" in examples.skipped_lines[2]


def test_a_file_of_only_bad_lines_is_still_an_error(tmp_path):
    from keras_bert.tasks import classification

    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\nonly one column\n")
    with pytest.raises(ValueError, match=r"train.tsv: no examples"):
        classification.read_examples(str(path), skip_bad_lines=True)


def test_missing_input_file(tmp_path):
    from keras_bert.tasks import classification

    with pytest.raises(ValueError, match=r"Input file .*missing.tsv' does not exist"):
        classification.read_examples(str(tmp_path / "missing.tsv"))


# === Corrupt model files ===


def _truncated_copy(path, directory, fraction=0.5):
    target = os.path.join(str(directory), "truncated_" + os.path.basename(path))
    with open(path, "rb") as f:
        data = f.read()
    with open(target, "wb") as f:
        f.write(data[: int(len(data) * fraction)])
    return target


def _garbage_file(directory, name, size=4096):
    target = os.path.join(str(directory), name)
    with open(target, "wb") as f:
        f.write(bytes(range(256)) * (size // 256))
    return target


def test_truncated_or_corrupt_keras_file_names_the_file(tiny_model_dir, tmp_path):
    from keras_bert.models import load_model_dir
    from keras_bert.models.model_dir import load_keras_file

    source = os.path.join(tiny_model_dir, "model.keras")
    for bad in (_truncated_copy(source, tmp_path), _garbage_file(tmp_path, "garbage.keras")):
        with pytest.raises(ValueError, match=r"Cannot load Keras model file .*%s.*truncated or corrupted"
                           % os.path.basename(bad)):
            load_keras_file(bad)
    broken_dir = tmp_path / "broken_dir"
    shutil.copytree(tiny_model_dir, broken_dir)
    _truncated_copy(source, tmp_path)
    shutil.copyfile(_truncated_copy(source, tmp_path), broken_dir / "model.keras")
    with pytest.raises(ValueError, match=r"Cannot load Keras model file .*broken_dir/model.keras"):
        load_model_dir(str(broken_dir))
    with pytest.raises(ValueError, match=r"Cannot load Keras model file .*broken_dir/model.keras"):
        load_model_dir(str(broken_dir), load_model=False).load_model()


def test_truncated_keras_encoder_checkpoint_is_a_checkpoint_error(tmp_path):
    import keras_bert
    from keras_bert.checkpoints import CheckpointError

    encoder = keras_bert.BertEncoder(vocabulary_size=30, num_layers=1, num_heads=2, hidden_dim=8,
                                     intermediate_dim=16, max_sequence_length=8)
    path = str(tmp_path / "encoder.keras")
    encoder.save(path)
    bad = _truncated_copy(path, tmp_path, 0.7)
    with pytest.raises(CheckpointError, match=r"Cannot load Keras model file .*truncated_encoder.keras"):
        keras_bert.load_encoder(bad)


def test_truncated_or_corrupt_tflite_file_names_the_file(tflite_path, tmp_path):
    from export.core import litert

    for fraction in (0.0, 0.01, 0.5, 0.99):
        bad = _truncated_copy(tflite_path, tmp_path, fraction)
        with pytest.raises(ValueError, match=r"truncated_model.tflite is not a readable .tflite model"):
            litert.LiteRTClassifier(bad)
    garbage = _garbage_file(tmp_path, "garbage.tflite")
    with pytest.raises(ValueError, match=r"garbage.tflite is not a readable .tflite model"):
        litert.LiteRTClassifier(garbage, vocabulary=VOCAB)


def test_finetune_refuses_a_vocabulary_larger_than_the_checkpoint(tmp_path):
    with open(VOCAB, encoding="utf-8") as f:
        tokens = f.read().splitlines()
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(tokens + [f"extra{i}" for i in range(100)]) + "\n")
    result = run_module("training.finetune", "--init=bert_tiny", f"--vocab={vocab}",
                        f"--train={_topics_train(tmp_path)}", f"--model_dir={tmp_path / 'out'}",
                        "--max_train_steps=1")
    assert result.returncode != 0
    assert (f"The vocabulary ({len(tokens) + 100} tokens, from '{vocab}') does not fit the encoder "
            "of `--init` ('bert_tiny', `vocabulary_size` 30522)") in result.stderr
    assert not (tmp_path / "out" / "model.keras").exists()


# === Output directories that already hold a model ===


def _topics_train(tmp_path, bad_line=False):
    rows = ["sentence\tlabel"] + [f"{w} news today\t{w}" for w in ("sports", "business") * 8]
    if bad_line:
        rows.insert(3, "a line without its label")
    path = tmp_path / "train.tsv"
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def test_finetune_refuses_a_model_dir_with_a_model_unless_overwrite(tiny_model_dir, tmp_path):
    model_dir = tmp_path / "model_dir"
    shutil.copytree(tiny_model_dir, model_dir)
    before = (model_dir / "model.keras").read_bytes()
    train = _topics_train(tmp_path, bad_line=True)
    common = ["--init=bert_tiny", f"--vocab={VOCAB}", f"--train={train}", f"--model_dir={model_dir}",
              "--max_train_steps=2", "--batch_size=8", "--sequence_length=16"]
    refused = run_module("training.finetune", *common, "--skip_bad_lines")
    assert refused.returncode != 0
    assert "already holds a model (model.keras); pass `--overwrite`" in refused.stderr
    assert (model_dir / "model.keras").read_bytes() == before  # untouched

    # With --overwrite (and --skip_bad_lines for the line without a label) it trains anew.
    run = run_module("training.finetune", *common, "--skip_bad_lines", "--overwrite")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "skipped 1 bad line(s)" in run.stderr and "train.tsv:4: expected 2 TSV columns" in run.stderr
    with open(model_dir / "label_map.json") as f:
        assert json.load(f)["labels"] == ["business", "sports"]
    from keras_bert.models import load_model_dir

    assert load_model_dir(str(model_dir)).model.num_classes == 2
    with open(model_dir / "metrics.json") as f:
        assert json.load(f)["train"]["num_examples"] == 16

    # Without --skip_bad_lines the same file stops at the bad line.
    strict = run_module("training.finetune", *common, "--overwrite")
    assert strict.returncode != 0 and "train.tsv:4: expected 2 TSV columns" in strict.stderr


def test_pretrain_refuses_a_finished_model_dir_but_resumes_a_backup(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("one sentence here.\nanother one.\n\nsecond document.\nmore text.\n")
    finished = tmp_path / "finished"
    finished.mkdir()
    (finished / "pretrainer.keras").write_bytes(b"a finished run's model")
    result = run_module("training.pretrain", "--preset=bert_tiny", f"--corpus={corpus}",
                        "--train_steps=1", f"--model_dir={finished}", "--progress_bar=false",
                        timeout=120)
    assert result.returncode != 0
    assert "already holds a finished model (pretrainer.keras); pass `--overwrite`" in result.stderr

    # An interrupted run (only backup/) is resumed, never refused; --overwrite lifts the refusal.
    # In a fresh process: training.pretrain defines absl flags that other apps imported by
    # this test session (training.finetune) define too.
    interrupted = tmp_path / "interrupted"
    (interrupted / "backup").mkdir(parents=True)
    script = f"""
import pytest
from training import pretrain
pretrain._check_model_dir({str(interrupted)!r}, overwrite=False)
pretrain._check_model_dir({str(finished)!r}, overwrite=True)
with pytest.raises(ValueError, match=r"already holds a finished model"):
    pretrain._check_model_dir({str(finished)!r}, overwrite=False)
with pytest.raises(ValueError, match=r"is a file, not a directory"):
    pretrain._check_model_dir({str(corpus)!r}, overwrite=True)
print("checked")
"""
    checked = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
    )
    assert checked.returncode == 0 and checked.stdout.strip() == "checked", checked.stderr[-3000:]
