"""SIGKILL exports and training at random moments: what remains loads, or is absent.

Every artifact is written under a temporary name and renamed into place, so a killed
process leaves the old artifact, the new one, or none, never a broken one. The default run
kills each command once at a random moment; the slow run 20 times each (`pytest -m slow`).
The random seed is in every failure message.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.test_case import shared_path

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
VOCAB = shared_path("models", "all-MiniLM-L6-v2", "vocab.txt")
SST2_TEST = shared_path("data", "sst2", "test.tsv")
TOPICS = os.path.join(REPO, "tests", "data", "topics")


def run_and_kill(args, delay):
    """Starts `python -m args...`, SIGKILLs its process group after `delay` s; True if killed."""
    process = subprocess.Popen(
        [sys.executable, "-m", *args], cwd=REPO, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
    )
    try:
        process.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True


def check_tflite(out_dir, context):
    from export.core import litert

    path = os.path.join(out_dir, "model.tflite")
    if not os.path.exists(path):
        return "absent"
    # The vocabulary the manifest beside the file names (and whose SHA-256 it records).
    classifier = litert.LiteRTClassifier(path)
    logits = classifier.logits(["a fine film"])
    assert logits.shape == (1, 2) and np.isfinite(logits).all(), context
    return "loads"


def check_saved_model(out_dir, context):
    import tensorflow as tf

    version = os.path.join(out_dir, "1")
    if not os.path.exists(version):
        return "absent"
    loaded = tf.saved_model.load(version)
    logits = loaded.signatures["serving_default"](text=tf.constant(["a fine film"]))["logits"]
    assert logits.shape == (1, 2) and np.isfinite(logits.numpy()).all(), context
    return "loads"


def check_finetune(model_dir, context):
    from keras_bert.models.model_dir import load_keras_file

    for name in ("label_map.json", "finetune_config.json", "metrics.json"):
        path = os.path.join(model_dir, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                assert isinstance(json.load(f), dict), context
    path = os.path.join(model_dir, "model.keras")
    if not os.path.exists(path):
        return "absent"
    model = load_keras_file(path)
    inputs = {name: np.ones((1, 4), "int32") for name in ("token_ids", "segment_ids", "padding_mask")}
    assert np.isfinite(np.asarray(model(inputs))).all(), context
    return "loads"


def commands(tiny_model_dir, out):
    return {
        "export.tflite": (
            ["export.tflite", f"--model_dir={tiny_model_dir}", f"--out={out}/model.tflite",
             f"--eval={SST2_TEST}", "--eval_limit=8"], check_tflite, 25.0),
        "export.saved_model": (
            ["export.saved_model", f"--model_dir={tiny_model_dir}", f"--out={out}",
             "--verify=false"], check_saved_model, 20.0),
        "training.finetune": (
            ["training.finetune", "--init=bert_tiny", f"--vocab={VOCAB}",
             f"--train={TOPICS}/train.tsv", f"--dev={TOPICS}/dev.tsv", f"--model_dir={out}",
             "--max_train_steps=6", "--eval_every_steps=2", "--batch_size=8",
             "--sequence_length=32"], check_finetune, 30.0),
    }


def kill_at_random_moments(name, tiny_model_dir, tmp_path, iterations):
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    outcomes = []
    for i in range(iterations):
        out = str(tmp_path / f"{name}_{i}")
        args, check, longest = commands(tiny_model_dir, out)[name]
        delay = rng.uniform(2.0, longest)
        killed = run_and_kill(args, delay)
        context = f"{name}, seed {seed}, iteration {i}, killed after {delay:.1f} s"
        outcomes.append((killed, check(out, context)))
    return outcomes


@pytest.mark.parametrize("name", ["export.tflite", "export.saved_model", "training.finetune"])
def test_sigkill_leaves_a_loadable_artifact_or_none(name, tiny_model_dir, tmp_path):
    outcomes = kill_at_random_moments(name, tiny_model_dir, tmp_path, iterations=1)
    assert len(outcomes) == 1 and outcomes[0][1] in ("absent", "loads")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["export.tflite", "export.saved_model", "training.finetune"])
def test_sigkill_twenty_times(name, tiny_model_dir, tmp_path):
    outcomes = kill_at_random_moments(name, tiny_model_dir, tmp_path, iterations=20)
    assert len(outcomes) == 20 and {state for _, state in outcomes} <= {"absent", "loads"}
    # The moments spread over the whole run: some kills land before the artifact exists.
    assert any(killed for killed, _ in outcomes)
