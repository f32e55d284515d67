"""What a benchmark figure must say: the machine, the versions, the settings."""

import os
import platform
import re
import subprocess


def _cpu_info():
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name") and model in ("unknown", "", "x86_64"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return model, flags


def machine():
    """CPU model, logical CPUs, the matrix-relevant instruction sets, memory."""
    model, flags = _cpu_info()
    memory_gb = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal"):
                    memory_gb = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    interesting = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
    return {
        "gpus": _gpus(),
        "cpu": model,
        "logical_cpus": os.cpu_count(),
        "instruction_sets": [flag for flag in interesting if flag in flags],
        "memory_gb": memory_gb,
        "system": f"{platform.system()} {platform.release()}",
    }


def _gpus():
    import tensorflow as tf

    names = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        names.append(details.get("device_name", device.name))
    return names


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def default_machine_name(info):
    """A file-name-safe name, e.g. `amd-epyc-2cpu` or `nvidia-h100-80gb-hbm3-1gpu`."""
    if info["gpus"]:
        return f"{_slug(info['gpus'][0]) or 'gpu'}-{len(info['gpus'])}gpu"
    return f"{_slug(info['cpu']) or 'cpu'}-{info['logical_cpus']}cpu"


def versions():
    import keras
    import keras_hub
    import numpy
    import tensorflow as tf

    import keras_bert

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
        "numpy": numpy.__version__,
        "keras_bert": keras_bert.__version__,
        "git_commit": _git_commit(),
        # Unset, TensorFlow decides by the CPU (on an AVX2-only AMD EPYC it left oneDNN off:
        # setting 1 made the pretraining step faster), so "unset" does not mean "on".
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get(
            "TF_ENABLE_ONEDNN_OPTS", "unset (TensorFlow's default for this CPU)"
        ),
    }


def _git_commit():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+uncommitted" if dirty else "")


def load_average():
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None
