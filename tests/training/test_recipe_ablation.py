"""`training.recipe_ablation`: the table from evaluation logs, and its flag errors."""

import json
import os
import subprocess
import sys

from training import recipe_ablation

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
RECORDS = [
    {"step": 100, "mlm_accuracy": 0.05, "nsp_accuracy": 0.51},
    {"step": 200, "mlm_accuracy": 0.12, "nsp_accuracy": 0.58},
    {"step": 300, "mlm_accuracy": 0.18, "nsp_accuracy": 0.63},
    {"step": 400, "mlm_accuracy": 0.22, "nsp_accuracy": 0.59},
]


def test_summary_counts_steps_to_the_first_evaluation_at_the_target():
    row = recipe_ablation.summarize(RECORDS, [200, 400], 0.60)
    assert row == {
        "steps_to_nsp_target": 300,
        "mlm_accuracy_at_200": 0.12, "nsp_accuracy_at_200": 0.58,
        "mlm_accuracy_at_400": 0.22, "nsp_accuracy_at_400": 0.59,
    }
    never = recipe_ablation.summarize(RECORDS, [500], 0.70)
    assert never["steps_to_nsp_target"] is None and never["mlm_accuracy_at_500"] is None


def test_markdown_table():
    rows = [
        dict(variant="a", description="budget", **recipe_ablation.summarize(RECORDS, [400], 0.6)),
        dict(variant="b", description="bert", **recipe_ablation.summarize(RECORDS, [400], 0.9)),
    ]
    table = recipe_ablation.markdown_table(rows, [400], 0.6, 400).splitlines()
    assert table[0] == ("| variant (400 steps each) | steps to next-sentence >= 0.60 | "
                        "MLM acc. at 400 | NSP acc. at 400 |")
    assert table[2] == "| budget | 300 | 0.220 | 0.590 |"
    assert table[3] == "| bert | not within 400 | 0.220 | 0.590 |"


def test_every_variant_is_one_set_of_pretrain_flags():
    assert list(recipe_ablation.VARIANTS)[:2] == ["budget", "bert"]
    flags = [tuple(value[1]) for value in recipe_ablation.VARIANTS.values()]
    assert len(set(flags)) == len(flags)  # No two rows train the same thing.


def _finished_run(run_dir, records, flags=None):
    (run_dir / "logs").mkdir(parents=True)
    with open(run_dir / "logs" / "eval_log.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    (run_dir / "metrics.json").write_text(json.dumps({"train": {"steps": 400, "seconds": 9.0}}))
    if flags is not None:
        (run_dir / recipe_ablation.FLAGS_FILE).write_text(json.dumps(flags))


def test_reads_finished_runs_and_writes_the_table(tmp_path):
    # Finished run directories are read, not trained again, and the table lists every
    # finished variant, in the variants' order, whichever the call asks for.
    _finished_run(tmp_path / "out" / "budget", RECORDS)
    bert_records = [dict(r, nsp_accuracy=0.5) for r in RECORDS]
    _finished_run(tmp_path / "out" / "bert", bert_records, ["--recipe=bert", "--batch_size=16"])
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the\n")
    result = subprocess.run(
        [sys.executable, "-m", "training.recipe_ablation", f"--corpus={corpus}",
         f"--eval_corpus={corpus}", f"--vocab={vocab}", "--variants=budget",
         "--train_steps=400", "--report_steps=200,400", f"--out={tmp_path / 'out'}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        "| the budget recipe (`--recipe=budget`, the default) | 300 | 0.120 | 0.580 | 0.220 "
        "| 0.590 |"
    ) in result.stdout
    with open(tmp_path / "out" / "ablation.json") as f:
        results = json.load(f)
    assert [row["variant"] for row in results["rows"]] == ["budget", "bert"]
    assert results["rows"][0]["steps_to_nsp_target"] == 300
    assert results["rows"][0]["flags"] == recipe_ablation.VARIANTS["budget"][1]
    assert results["rows"][1]["steps_to_nsp_target"] is None
    assert results["rows"][1]["flags"] == ["--recipe=bert", "--batch_size=16"]
    assert results["machine"].startswith("CPU: ")
    table = (tmp_path / "out" / "ablation.md").read_text()
    assert table.count("\n") == 4
    assert "| BERT's original recipe (`--recipe=bert`) |" in table


def test_flag_errors(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the\n")
    for args, message in [
        (["--variants=budget,nope"], "`--variants` ('budget,nope'): unknown ['nope']"),
        (["--report_steps=650"], "`--report_steps` ('650'): each must be a multiple of"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "training.recipe_ablation", f"--corpus={corpus}",
             f"--eval_corpus={corpus}", f"--out={tmp_path / 'out'}", *args],
            cwd=REPO, capture_output=True, text=True, timeout=300,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        )
        assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
