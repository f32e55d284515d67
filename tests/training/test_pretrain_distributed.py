"""`training.pretrain` across replicas, workers and a kill: real processes throughout.

- mirrored over 2 logical CPU devices gives the per-step loss of one_device;
- two `multi_worker` processes on 127.0.0.1 end with identical weights;
- a run killed with SIGKILL resumes from its last backup and ends at its step.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.training.test_pretrain import REPO, run_pretrain, write_corpora

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("corpora"))
    train, evaluation, config = write_corpora(directory)
    # One vocabulary for every run, learned once.
    model_dir = os.path.join(directory, "vocabulary_run")
    run_pretrain(
        f"--config={config}", f"--corpus={train}", "--vocabulary_size=400", "--train_steps=1",
        "--batch_size=8", "--sequence_length=32", f"--model_dir={model_dir}",
    )
    return train, evaluation, config, os.path.join(model_dir, "vocab.txt")


def _common_args(data):
    train, _, config, vocab = data
    return [
        f"--config={config}", f"--corpus={train}", f"--vocab={vocab}", "--sequence_length=32",
        "--max_predictions_per_seq=5", "--batch_size=8",
    ]


def _popen(args, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "training.pretrain", "--progress_bar=false", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", **(env or {})),
    )


def _wait(process, timeout=600):
    stdout, stderr = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise AssertionError(f"training.pretrain failed:\n{stderr[-4000:]}")
    return stdout, stderr


def _log(model_dir):
    with open(os.path.join(model_dir, "logs", "train_log.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_mirrored_gives_the_per_step_loss_of_one_device(data, tmp_path):
    # A small clipping norm clips every step: clipping must see the global gradient.
    # float32: where `--mixed_precision=auto` picks bfloat16 (a CPU with AVX512_BF16 or AMX),
    # the two splits' reduction orders round differently, by up to 2e-4 in a 2026-12-08 run;
    # the two-worker test below keeps `auto`.
    args = _common_args(data) + [
        "--train_steps=20", "--dropout=0", "--seed=3", "--log_every_steps=1", "--clipnorm=0.05",
        "--mixed_precision=float32",
    ]
    runs = {
        "one_device": ["--strategy=one_device"],
        "mirrored": ["--strategy=mirrored", "--num_cpu_devices=2"],
    }
    processes = {
        name: _popen(args + extra + [f"--model_dir={tmp_path / name}"])
        for name, extra in runs.items()
    }
    for process in processes.values():
        _wait(process)
    one_device = _log(tmp_path / "one_device")
    mirrored = _log(tmp_path / "mirrored")
    assert [r["step"] for r in one_device] == list(range(1, 21))
    assert [r["step"] for r in mirrored] == list(range(1, 21))
    with open(tmp_path / "mirrored" / "metrics.json") as f:
        assert json.load(f)["train"]["num_replicas"] == 2
    differences = [abs(a["loss"] - b["loss"]) for a, b in zip(one_device, mirrored)]
    assert max(differences) <= 1e-4, differences
    # The model learned something in those steps, so the comparison is not vacuous.
    assert one_device[-1]["loss"] < one_device[0]["loss"]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_end_with_identical_weights(data, tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    args = _common_args(data) + [
        "--strategy=multi_worker", "--train_steps=8", "--checkpoint_every_steps=4",
        "--log_every_steps=4", f"--model_dir={tmp_path / 'out'}",
        # A deadline far away: the workers still agree on it (and on the step count and
        # --mixed_precision=auto's choice) through collectives at every step.
        "--max_minutes=30",
    ]
    workers = [
        _popen(args, env={"TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}})})
        for index in range(2)
    ]
    outputs = [_wait(worker)[0] for worker in workers]
    fingerprints = [re.search(r"final weights sha256: ([0-9a-f]{64})", out).group(1)
                    for out in outputs]
    assert fingerprints[0] == fingerprints[1]
    assert "Wrote" in outputs[0] and "not the chief" in outputs[1]
    with open(tmp_path / "out" / "metrics.json") as f:
        train = json.load(f)["train"]
    assert train["num_replicas"] == 2 and train["steps"] == 8
    assert train["final_weights_sha256"] == fingerprints[0]


def test_killed_run_resumes_from_its_last_backup(data, tmp_path):
    model_dir = tmp_path / "run"
    args = _common_args(data) + [
        "--train_steps=200", "--checkpoint_every_steps=10", "--log_every_steps=1",
        f"--model_dir={model_dir}",
    ]
    metadata = model_dir / "backup" / "training_metadata.json"
    first = _popen(args)
    deadline = time.time() + 300
    while not metadata.exists():
        assert first.poll() is None, first.communicate()[1][-3000:]
        assert time.time() < deadline, "no backup was written"
        time.sleep(0.02)
    time.sleep(0.3)  # Into the next epoch.
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert first.returncode == -signal.SIGKILL
    assert not (model_dir / "metrics.json").exists(), "the run finished before the kill"
    with open(metadata) as f:
        backup_step = json.load(f)["step"]
    steps_before_kill = [r["step"] for r in _log(model_dir)]
    assert backup_step % 10 == 0 and 0 < backup_step < 200
    assert max(steps_before_kill) >= backup_step

    _, stderr = _wait(_popen(args))
    assert f"at step {backup_step} (epoch {backup_step // 10})" in stderr
    steps = [r["step"] for r in _log(model_dir)]
    resumed = steps[len(steps_before_kill):]
    # The step counter continues after the backup, with no gap, to the requested step;
    # only the unfinished epoch is trained again, never a finished one.
    assert resumed == list(range(backup_step + 1, 201))
    assert steps_before_kill == list(range(1, len(steps_before_kill) + 1))
    with open(model_dir / "metrics.json") as f:
        train = json.load(f)["train"]
    assert train["steps"] == 200
    assert train["resumed_from_step"] == backup_step
    assert train["steps_this_run"] == 200 - backup_step
    assert not (model_dir / "backup").exists()
