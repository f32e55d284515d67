"""The benchmark: per-file fresh processes, percentiles, speed-ups, JSON and PNG."""

import json
import os

import pytest

from export import benchmark


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
