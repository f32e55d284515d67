"""A NaN or infinite loss stops training with a clear message and keeps the last good model."""

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.test_case import shared_path

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
VOCAB = shared_path("models", "all-MiniLM-L6-v2", "vocab.txt")


def test_guard_raises_at_the_first_non_finite_loss_before_later_callbacks():
    from training.core.finite_loss import FiniteLossGuard, NonFiniteLossError

    class Recorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.steps = []
            self.epoch_ends = 0

        def on_train_batch_end(self, batch, logs=None):
            self.steps.append(batch + 1)

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_ends += 1

    # A real model whose targets overflow float32 once squared: the loss of the
    # third batch is infinite.
    x = np.ones((8, 2), "float32")
    y = np.zeros((8, 1), "float32")
    y[4:6] = 1e30
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    recorder = Recorder()
    guard = FiniteLossGuard(kept=lambda: "Kept: the checkpoint of step 2.")
    with pytest.raises(NonFiniteLossError, match=r"Training stopped at step 3: the loss is inf .*Kept: "
                                                 r"the checkpoint of step 2\."):
        model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0,
                  callbacks=[guard, recorder])
    assert recorder.steps == [1, 2] and recorder.epoch_ends == 0
    assert issubclass(NonFiniteLossError, ValueError)


def test_finetune_stops_on_an_infinite_loss_and_keeps_the_last_good_model(tmp_path):
    # Regression targets of 1e30 overflow the squared error: the batch holding one has an
    # infinite loss. Eight good rows come first; with shuffling seeded, the run meets the
    # bad rows after --dev evaluations of good weights have saved model.keras.
    rows = ["sentence\tscore"] + [f"good text {i}\t{(i % 4) / 4:.2f}" for i in range(48)]
    rows += [f"bad text {i}\t1e30" for i in range(4)]
    train = tmp_path / "train.tsv"
    train.write_text("\n".join(rows) + "\n")
    dev = tmp_path / "dev.tsv"
    dev.write_text("\n".join(rows[:17]) + "\n")
    model_dir = tmp_path / "model_dir"
    result = subprocess.run(
        [sys.executable, "-m", "training.finetune", "--init=bert_tiny", f"--vocab={VOCAB}",
         f"--train={train}", f"--dev={dev}", "--regression", "--label_column=score",
         f"--model_dir={model_dir}", "--batch_size=4", "--eval_every_steps=1",
         "--early_stopping_patience=0", "--max_train_steps=13", "--sequence_length=16"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
    )
    assert result.returncode != 0
    stderr = result.stderr
    assert "NonFiniteLossError: Training stopped at step" in stderr, stderr[-3000:]
    failed_step = int(stderr.split("Training stopped at step ")[1].split(":")[0])
    assert "the loss is inf" in stderr or "the loss is nan" in stderr
    assert failed_step > 1, "the seed should put a bad row after the first step"
    kept_step = int(stderr.split("keeps model.keras from step ")[1].split(" ")[0])
    assert kept_step < failed_step
    assert not (model_dir / "metrics.json").exists()

    from keras_bert.models import load_model_dir

    loaded = load_model_dir(str(model_dir))
    assert all(np.isfinite(w).all() for w in loaded.model.get_weights())
    packed = loaded.tokenizer.pack(["good text 1", "bad text 2"], sequence_length=16)
    outputs = np.asarray(loaded.model(packed))
    assert np.isfinite(outputs).all() and all(math.isfinite(v) for v in outputs.ravel())


def test_pretrain_stops_when_training_diverges_and_keeps_the_last_finite_backup(tmp_path):
    # A learning rate of 1e4 (warmed up over the first steps) makes the loss grow by
    # orders of magnitude each step until it is NaN; backups are written every 2 steps.
    import h5py

    with open(shared_path("data", "wikitext2", "valid.txt"), encoding="utf-8") as f:
        corpus_lines = f.readlines()[:300]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(corpus_lines), encoding="utf-8")
    config = tmp_path / "tiny.json"
    config.write_text('{"num_layers": 2, "hidden_dim": 32, "num_heads": 2, '
                      '"intermediate_dim": 64, "max_sequence_length": 64}')
    model_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "training.pretrain", "--progress_bar=false", f"--config={config}",
         f"--corpus={corpus}", "--vocabulary_size=400", "--train_steps=12",
         f"--model_dir={model_dir}", "--sequence_length=32", "--max_predictions_per_seq=5",
         "--batch_size=8",
         "--checkpoint_every_steps=2", "--log_every_steps=1", "--learning_rate=1e4",
         "--warmup_proportion=0.9", "--clipnorm=0"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
    )
    assert result.returncode != 0
    stderr = result.stderr
    assert "NonFiniteLossError: Training stopped at step" in stderr, stderr[-3000:]
    failed_step = int(stderr.split("Training stopped at step ")[1].split(":")[0])
    kept_step = int(stderr.split("keeps the weights of step ")[1].split(";")[0])
    assert 2 <= kept_step < failed_step
    # The backup on disk is the one the message names, and every weight in it is finite.
    backup = model_dir / "backup"
    with open(backup / "training_metadata.json", encoding="utf-8") as f:
        assert json.load(f)["step"] == kept_step
    arrays = []
    with h5py.File(backup / "latest.weights.h5", "r") as weights:
        weights.visititems(
            lambda name, item: arrays.append(item[()]) if isinstance(item, h5py.Dataset) else None
        )
    assert arrays and all(np.isfinite(a).all() for a in arrays if np.asarray(a).dtype.kind == "f")
    assert not (model_dir / "pretrainer.keras").exists()
    assert not (model_dir / "metrics.json").exists()
