"""The benchmark: per-file fresh processes, percentiles, speed-ups, JSON and PNG."""

import json
import os

import pytest

from export import benchmark
from keras_bert.utils import cpu
from tests.export import task_tflite


def test_benchmark_writes_json_and_chart(converted, tmp_path):
    files = [converted["none"][0], converted["dynamic"][0], converted["text"][0]]
    out = str(tmp_path / "bench")
    report = benchmark.run(
        files, out=out, lengths=(8, 32), threads=(1,), runs=3, warmup=1, padded_tokens=8,
        names=["float32", "dynamic", "text"], log=lambda message: None,
    )
    with open(out + ".json", encoding="utf-8") as f:
        assert json.load(f)["files"][0]["name"] == "float32"
    with open(out + ".png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    float_entry, dynamic_entry, text_entry = report["files"]
    assert float_entry["size_bytes"] == os.path.getsize(files[0])
    assert float_entry["peak_rss_bytes"] > float_entry["baseline_rss_bytes"] > 0
    # Token-id files: two exact lengths and the padded case; the string file: two lengths.
    cases = [(row["length"], row["real_tokens"]) for row in float_entry["latency"]]
    assert cases == [(8, 8), (32, 32), (32, 8)]
    assert [(row["length"], row["real_tokens"]) for row in text_entry["latency"]] == [
        (8, 8), (32, 32)
    ]
    for row in float_entry["latency"]:
        assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
    assert float_entry["p50_speedup_vs_first"]["1threads_32"] == 1.0
    assert dynamic_entry["p50_speedup_vs_first"]["1threads_8"] > 0
    assert float_entry["p50_speedup_exact_vs_padded"]["1threads"] > 0
    assert "p50_speedup_exact_vs_padded" not in text_entry


def test_benchmark_rejects_bad_arguments(converted, tmp_path):
    with pytest.raises(ValueError, match=r"`files` is empty"):
        benchmark.run([], out=str(tmp_path / "b"))
    with pytest.raises(ValueError, match=r"is not a file"):
        benchmark.run([str(tmp_path / "missing.tflite")], out=str(tmp_path / "b"))
    with pytest.raises(ValueError, match=r"`padded_tokens` \(64\) within them"):
        benchmark.run([converted["none"][0]], out=str(tmp_path / "b"), lengths=(8, 32),
                      padded_tokens=64)


def test_token_id_feeds_are_filler_words_between_cls_and_sep(converted):
    """The timed inputs come from the classifier's preprocessor: `[CLS]`, `real - 2` filler
    words, `[SEP]`, then padding to the length."""
    path = converted["none"][0]
    feeds = benchmark.pack_token_id_feeds(path, lengths=(8, 32), padded_tokens=8)
    assert sorted({key.rsplit("_", 2)[0] for key in feeds}) == ["32_32", "8_32", "8_8"]
    with open(path[: -len(".tflite")] + ".manifest.json", encoding="utf-8") as f:
        special = json.load(f)["special_token_ids"]
    token_ids, mask = feeds["8_32_token_ids"][0], feeds["8_32_padding_mask"][0]
    assert token_ids.shape == (32,)
    assert token_ids[0] == special["cls"] and token_ids[7] == special["sep"]
    assert len(set(token_ids[1:7].tolist())) == 1  # one filler word, one token each
    assert (token_ids[8:] == special["pad"]).all()
    assert mask.tolist() == [1] * 8 + [0] * 24
    assert not feeds["32_32_segment_ids"].any()


# === Files of every task ===


@pytest.fixture(scope="module")
def task_files(tmp_path_factory):
    """Tiny embedding and fixed-length (48) QA files with their manifests (a token-tagging
    file takes inputs as the embedding file does: the benchmark ignores the outputs)."""
    directory = str(tmp_path_factory.mktemp("task_tflite"))
    return {
        task: task_tflite.write_task_tflite(directory, task, sequence_length=48)
        for task in ("text_embedding", "qa")
    }


def test_benchmark_times_every_task_and_names_the_cpu(task_files, tmp_path):
    files = [task_files["text_embedding"], task_files["qa"]]
    lines = []
    report = benchmark.run(
        files, out=str(tmp_path / "bench"), lengths=(8, 32), threads=(1,), runs=2, warmup=1,
        padded_tokens=8, names=["embedding", "qa"], log=lines.append,
    )
    # The output starts with the CPU, its int8 features and what they mean for int8 files.
    cpu_info = cpu.read_cpu_info()
    assert lines[0] == cpu.describe(cpu_info) == report["machine"]["cpu_line"]
    assert lines[0].startswith("CPU: ") and "; int8 features: " in lines[0]
    assert benchmark._table(report).splitlines()[0] == lines[0]
    machine = report["machine"]
    assert machine["int8_features"] == cpu_info["features"]
    assert machine["int8_summary"] == cpu.INT8_GROUPS[machine["int8_group"]]
    embedding, qa = report["files"]
    assert [(row["length"], row["real_tokens"]) for row in embedding["latency"]] == [
        (8, 8), (32, 32), (32, 8)
    ]
    assert embedding["fixed_length"] is None and embedding["skipped_lengths"] == []
    assert embedding["p50_speedup_exact_vs_padded"]["1threads"] > 0
    assert (embedding["task"], qa["task"]) == ("text_embedding", "qa")
    # The fixed-length QA file: its own length only, full and with 8 real tokens padded to it.
    assert [(row["length"], row["real_tokens"]) for row in qa["latency"]] == [(48, 48), (48, 8)]
    assert qa["fixed_length"] == 48 and qa["skipped_lengths"] == [8, 32]
    assert "fixed input length 48" in qa["note"] and "[8, 32] skipped" in qa["note"]
    assert "p50_speedup_exact_vs_padded" not in qa
    assert qa["p50_speedup_vs_first"] == {"1threads_8": None, "1threads_32": None}
    for row in qa["latency"]:
        assert 0 < row["p50_ms"] <= row["p99_ms"]


def test_fixed_length_feeds_are_padded_to_the_file_length(task_files):
    """QA's inputs are `ids`, `mask`, `segment_ids` of shape (1, 48): the feeds are packed to
    48 whatever `lengths` say."""
    path = task_files["qa"]
    assert benchmark.token_id_fixed_length(path, {}) == 48
    feeds = benchmark.pack_token_id_feeds(path, lengths=(8, 32), padded_tokens=8)
    assert sorted({key.rsplit("_", 2)[0] for key in feeds}) == ["48_48", "8_48"]
    token_ids, mask = feeds["8_48_token_ids"][0], feeds["8_48_padding_mask"][0]
    assert token_ids.shape == (48,) and token_ids[0] == 101 and token_ids[7] == 102
    assert mask.tolist() == [1] * 8 + [0] * 40
    assert benchmark.token_id_fixed_length(task_files["text_embedding"], {}) is None


def test_a_vocabulary_that_is_not_the_manifests_is_one_line(converted, tmp_path):
    """The vocabulary beside the file is checked against the manifest's SHA-256 before any
    timing: another one would pack other ids. One line, exit 2, nothing written."""
    import shutil  # pylint: disable=import-outside-toplevel
    import subprocess  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel

    path, _ = converted["none"]
    stem = os.path.splitext(path)[0]
    copy = str(tmp_path / "model.tflite")
    shutil.copy(path, copy)
    shutil.copy(stem + ".manifest.json", str(tmp_path / "model.manifest.json"))
    with open(stem + ".vocab.txt", encoding="utf-8") as f:
        vocabulary = f.read().splitlines()
    # The vocabulary the manifest names, beside the copy, but another one.
    with open(stem + ".manifest.json", encoding="utf-8") as f:
        vocabulary_name = json.load(f)["vocab"]
    with open(tmp_path / vocabulary_name, "w", encoding="utf-8") as f:
        f.write("\n".join(reversed(vocabulary)) + "\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run(
        [sys.executable, "-m", "export.benchmark", copy, f"--out={tmp_path / 'bench'}",
         "--runs=1", "--lengths=16", "--threads=1"],
        cwd=root, capture_output=True, text=True, check=False,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert vocabulary_name in last and "vocab_sha256" in last
    assert not os.path.exists(tmp_path / "bench.json")
