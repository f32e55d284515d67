"""End-to-end runs of `python -m training.pretrain` on a small corpus.

The fast test runs the public contract's flags (vocabulary learned from
--corpus, evaluation on --eval_corpus) with a two-layer model for a few steps
and checks every output; the slow ones continue from that run's directory and
train against a deadline.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_bert import load_encoder, load_tokenizer
from keras_bert.models import BertPretrainer
from tests.test_case import shared_path, to_numpy

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
WIKITEXT = shared_path("data", "wikitext2", "valid.txt")
TINY_CONFIG = {
    "num_layers": 2, "hidden_dim": 32, "num_heads": 2, "intermediate_dim": 64,
    "max_sequence_length": 64,
}


def run_pretrain(*args, check=True, timeout=600):
    """Runs `python -m training.pretrain` from the source tree; returns the result."""
    result = subprocess.run(
        [sys.executable, "-m", "training.pretrain", "--progress_bar=false", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
    )
    if check and result.returncode != 0:
        raise AssertionError(f"training.pretrain failed:\n{result.stderr[-4000:]}")
    return result


def write_corpora(directory, train_bytes=40_000, eval_bytes=15_000):
    """Slices of WikiText-2 (whole lines) as a training and an evaluation corpus."""
    with open(WIKITEXT, encoding="utf-8") as f:
        lines = f.readlines()
    paths = []
    slices = (("train.txt", 0, train_bytes), ("eval.txt", len(lines) // 2, eval_bytes))
    for name, start, size in slices:
        text, total = [], 0
        for line in lines[start:]:
            text.append(line)
            total += len(line.encode("utf-8"))
            if total >= size:
                break
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(text)
        paths.append(path)
    config = os.path.join(directory, "tiny.json")
    with open(config, "w", encoding="utf-8") as f:
        json.dump(TINY_CONFIG, f)
    return paths[0], paths[1], config


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_corpora(str(tmp_path_factory.mktemp("corpora")))


@pytest.fixture(scope="module")
def model_dir(data, tmp_path_factory):
    train, evaluation, config = data
    directory = str(tmp_path_factory.mktemp("pretrain"))
    result = run_pretrain(
        f"--config={config}", f"--corpus={train}", f"--eval_corpus={evaluation}",
        "--vocabulary_size=400", "--train_steps=6", f"--model_dir={directory}",
        "--sequence_length=32", "--max_predictions_per_seq=5", "--batch_size=8",
        "--checkpoint_every_steps=3", "--log_every_steps=2",
    )
    assert "final weights sha256" in result.stdout
    return directory


def test_outputs_of_a_run(model_dir):
    names = sorted(n for n in os.listdir(model_dir) if not n.startswith("."))
    assert names == [
        "encoder", "logs", "metrics.json", "pretrain_config.json", "pretrainer.keras",
        "vocab.txt",
    ]  # The backup is gone once the outputs are written.
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    for name in ("mlm_accuracy", "nsp_accuracy"):
        assert 0.0 <= metrics[name] <= 1.0
    for name in ("loss", "mlm_loss", "nsp_loss"):
        assert np.isfinite(metrics[name])
    assert metrics["eval_examples"] > 0
    assert metrics["train"]["steps"] == 6 and metrics["train"]["resumed_from_step"] == 0
    with open(os.path.join(model_dir, "logs", "train_log.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert [r["step"] for r in records] == [2, 4, 6]
    assert {"loss", "mlm_accuracy", "nsp_accuracy", "learning_rate"} <= set(records[0])
    events = os.listdir(os.path.join(model_dir, "logs", "train"))
    assert any(name.startswith("events.out.tfevents") for name in events)
    with open(os.path.join(model_dir, "vocab.txt"), encoding="utf-8") as f:
        vocabulary = f.read().split("\n")[:-1]
    assert vocabulary[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(vocabulary) <= 400
    # The config file keeps the keys it was first written with.
    with open(os.path.join(model_dir, "pretrain_config.json")) as f:
        config = json.load(f)
    assert (config["vocab_size"], config["max_seq_length"]) == (400, 32)
    assert "vocabulary_size" not in config and "sequence_length" not in config


def test_encoder_and_pretrainer_load(model_dir):
    pretrainer = keras.saving.load_model(os.path.join(model_dir, "pretrainer.keras"))
    assert isinstance(pretrainer, BertPretrainer)
    encoder_dir = os.path.join(model_dir, "encoder")
    encoder = load_encoder(encoder_dir)
    assert encoder.num_layers == 2 and encoder.hidden_dim == 32
    for a, b in zip(encoder.get_weights(), pretrainer.encoder.get_weights()):
        np.testing.assert_array_equal(a, b)
    tokenizer = load_tokenizer(encoder_dir)
    assert tokenizer.vocabulary_size() == encoder.vocabulary_size
    packed = tokenizer.pack(["the game"], ["was played"], sequence_length=16)
    inputs = {name: to_numpy(value) for name, value in packed.items()}
    assert to_numpy(encoder(inputs)["pooled_output"]).shape == (1, 32)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--corpus=x"], r"Pass exactly one of `--preset`, `--config` and `--init_checkpoint`"),
        (["--preset=bert_tiny", "--config=c.json", "--corpus=x"],
         r"Pass exactly one of .* received \['preset', 'config'\]"),
        (["--preset=bert_tiny", "--train_steps=1"],
         r"Pass exactly one of `--corpus` and `--train_records`"),
        (["--preset=bert_tiny", "--corpus=x"], r"Pass `--train_steps`, `--max_minutes` or both"),
        (["--preset=bert_tiny", "--corpus=x", "--train_steps=0"],
         r"`--train_steps` must be positive, received 0"),
        (["--preset=bert_tiny", "--corpus=/no/such/file", "--train_steps=1"],
         r"`--corpus` file '/no/such/file' does not exist"),
        (["--preset=bert_tiny", "--corpus=x", "--train_steps=1", "--num_cpu_devices=2"],
         r"`--num_cpu_devices` only applies to `--strategy=mirrored`"),
        (["--preset=bert_tiny", "--corpus=x", "--train_steps=1", "--max_minutes=-1"],
         r"`--max_minutes` must be positive, received -1.0"),
        (["--preset=bert_tiny", "--corpus=x", "--train_steps=1", "--dropout=1.5"],
         r"`--dropout` must be in \[0, 1\), received 1.5"),
    ],
)
def test_flag_errors(args, message, tmp_path):
    corpus = tmp_path / "x"
    corpus.write_text("a b\n\nc d\n")
    args = [a.replace("--corpus=x", f"--corpus={corpus}") for a in args]
    result = run_pretrain(*args, f"--model_dir={tmp_path / 'out'}", check=False, timeout=120)
    assert result.returncode != 0
    assert "ValueError" in result.stderr
    import re

    assert re.search(message, result.stderr), result.stderr[-2000:]


def test_batch_size_must_split_over_replicas_and_micro_batches(data, tmp_path):
    train, _, config = data
    result = run_pretrain(
        f"--config={config}", f"--corpus={train}", "--vocabulary_size=400", "--train_steps=1",
        "--batch_size=6", "--gradient_accumulation_steps=4", f"--model_dir={tmp_path}",
        check=False,
    )
    assert result.returncode != 0
    assert (
        "`--batch_size` (6) must be divisible by the number of replicas (1) times "
        "`--gradient_accumulation_steps` (4)" in result.stderr
    )


@pytest.mark.slow
def test_continues_from_its_own_checkpoint_and_stops_at_a_deadline(model_dir, data, tmp_path):
    train, evaluation, _ = data
    vocab = os.path.join(model_dir, "vocab.txt")
    result = run_pretrain(
        f"--init_checkpoint={model_dir}", f"--corpus={train}", f"--eval_corpus={evaluation}",
        "--max_minutes=0.5", f"--model_dir={tmp_path}", "--sequence_length=32",
        "--max_predictions_per_seq=5", "--batch_size=8", "--log_every_steps=1",
    )
    assert "encoder and heads" in result.stderr
    with open(os.path.join(tmp_path, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["train"]["stopped_by_deadline"]
    assert metrics["train"]["steps"] > 0
    # The vocabulary came with the checkpoint; none was learned.
    assert not os.path.exists(os.path.join(tmp_path, "vocab.txt"))
    with open(os.path.join(tmp_path, "encoder", "vocab.txt"), encoding="utf-8") as f, open(
        vocab, encoding="utf-8"
    ) as g:
        assert f.read() == g.read()
    # The learning rate decays towards the deadline.
    with open(os.path.join(tmp_path, "logs", "train_log.jsonl")) as f:
        rates = [json.loads(line)["learning_rate"] for line in f]
    assert rates[-1] < max(rates)
