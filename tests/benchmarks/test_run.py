"""`python -m benchmarks.run --smoke`: the whole benchmark pipeline in seconds."""

import json
import os
import subprocess
import sys

from benchmarks import flops

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def test_flop_counts_of_bert_small():
    # Per block at B=16, S=128: 4 projections 4 * 2*2048*512*512, scores and
    # context 2 * 2*16*128*128*512, feed-forward 2 * 2*2048*512*2048.
    block = 4 * 2 * 2048 * 512 * 512 + 2 * 2 * 16 * 128 * 128 * 512 + 2 * 2 * 2048 * 512 * 2048
    assert flops.block_forward_flops(16, 128, 512, 2048) == block
    head = 2 * 16 * 512 * 512 + 2 * 16 * 512 * 2
    assert flops.classifier_forward_flops(16, 128, 4, 512, 2048, 2) == 4 * block + head
    # Only the [CLS] query in the last block: keys and values still cover all positions.
    cls_block = 2 * 2 * 2048 * 512 * 512 + 2 * 2 * 16 * 512 * 512 + 2 * 2 * 16 * 128 * 512 + 2 * 2 * 16 * 512 * 2048
    assert flops.classifier_forward_flops(16, 128, 4, 512, 2048, 2, 1) == 3 * block + cls_block + head
    assert flops.training_flops(10) == 30


def test_smoke_run_writes_json_markdown_and_chart(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", f"--output_dir={tmp_path}", "--machine=ci"],
        cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    with open(tmp_path / "ci.json") as f:
        results = json.load(f)
    assert results["settings"]["smoke"] is True
    assert {r["model"] for r in results["runs"]} == {"keras_bert", "keras_hub"}
    assert {r["mode"] for r in results["runs"]} == {"train", "predict"}
    assert {r["data"] for r in results["runs"]} == {"full", "sst2"}
    assert all(r["sequences_per_s"] > 0 for r in results["runs"])
    assert results["peak"]["float32"]["best"]["gflops"] > 0
    assert all("fraction_of_peak" in r for r in results["runs"] if r["data"] == "full")
    assert len(results["ratios"]) == 4
    markdown = (tmp_path / "BENCHMARKS.md").read_text()
    for heading in ("#### Targets", "#### Training throughput", "#### Inference throughput", "#### Matmul peak"):
        assert heading in markdown
    for fact in (results["versions"]["tensorflow"], results["versions"]["keras_hub"], "bert_tiny", "batch 2"):
        assert fact in markdown
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return  # The chart is skipped without matplotlib; the tables are not.
    assert (tmp_path / "ci.png").stat().st_size > 1000
