import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from training.core import distribution

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def test_one_device_strategy():
    strategy = distribution.create_strategy("one_device")
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
    assert strategy.num_replicas_in_sync == 1
    assert distribution.is_chief(strategy)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "horovod"}, r"`strategy` must be one of .*received 'horovod'"),
        ({"name": "one_device", "num_cpu_devices": 2}, r"`num_cpu_devices` \(2\) only applies"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        distribution.create_strategy(**kwargs)


def test_is_chief_from_tf_config(monkeypatch):
    def chief(cluster, task_type, index):
        monkeypatch.setenv(
            "TF_CONFIG",
            json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}}),
        )
        return distribution.is_chief()

    workers = {"worker": ["a:1", "b:1"]}
    assert chief(workers, "worker", 0)
    assert not chief(workers, "worker", 1)
    assert chief(dict(workers, chief=["c:1"]), "chief", 0)
    assert not chief(dict(workers, chief=["c:1"]), "worker", 0)
    monkeypatch.delenv("TF_CONFIG")
    assert distribution.is_chief()


def test_mirrored_over_logical_cpus_in_a_fresh_process():
    # Logical devices must be configured before TensorFlow starts: a new process.
    code = (
        "from training.core import distribution\n"
        "s = distribution.create_strategy('mirrored', num_cpu_devices=2)\n"
        "import tensorflow as tf\n"
        "print(s.num_replicas_in_sync, len(tf.config.list_logical_devices('CPU')))\n"
        "print(s.reduce('SUM', s.run(lambda: tf.constant(1.0)), axis=None).numpy())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["2", "2", "2.0"]
