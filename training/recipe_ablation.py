"""What each knob of the pretraining recipe is worth, counted in optimizer steps.

Runs `python -m training.pretrain` once per variant, for the same number of steps
(`--train_steps`, default 1,000) with the same data, vocabulary and seed, and an
evaluation on `--eval_corpus` every `--eval_every_steps` steps. The variants are
the `budget` recipe (the default), BERT's original recipe, and the budget recipe
with one knob set back to BERT's value (or, for the knobs BERT and the budget
recipe share, to another published value). Writes to `--out`: one directory per variant (its
`training.pretrain` model directory), `ablation.json` and `ablation.md` (the table
the README shows): steps until next-sentence accuracy on the evaluation corpus
first reaches `--nsp_target`, and masked-LM and next-sentence accuracy at each
of `--report_steps`.

A variant whose directory already holds a finished run is read, not run again, and
`--variants` picks the variants to run: the table lists every finished variant
under `--out`, so it fills over several calls (two calls may run side by side, each
on its own variants).

Example:

    python -m training.recipe_ablation --corpus=../shared/data/wikitext2/valid.txt \\
        --eval_corpus=../shared/data/wikitext2/test.txt --out=runs/ablation
    python -m training.recipe_ablation ... --variants=budget,bert --train_steps=600
"""

import json
import os
import subprocess
import sys
import time

from absl import app, flags, logging

from keras_bert.utils import cli
from keras_bert.utils.atomic import atomic_file
from keras_bert.utils.atomic import write_json

FLAGS = flags.FLAGS

# Variant name -> (what it changes, `training.pretrain` flags).
_BUDGET = ["--recipe=budget"]
VARIANTS = {
    "budget": ("the budget recipe (`--recipe=budget`, the default)", _BUDGET),
    "bert": ("BERT's original recipe (`--recipe=bert`)", ["--recipe=bert"]),
    "init_002": (
        "budget, BERT's initializer range 0.02", _BUDGET + ["--initializer_range=0.02"]
    ),
    "lr_1e-3": ("budget, learning rate 1e-3", _BUDGET + ["--learning_rate=1e-3"]),
    "post_ln": ("budget, post-LN blocks", _BUDGET + ["--nonorm_first"]),
    "biases": ("budget, with biases", _BUDGET + ["--use_bias"]),
    "dropout": ("budget, dropout 0.1", _BUDGET + ["--dropout=0.1"]),
    "mask_15": ("budget, 15% masking", _BUDGET + ["--masked_lm_prob=0.15"]),
    "mask_40": ("budget, 40% masking", _BUDGET + ["--masked_lm_prob=0.4"]),
    "nsp_weight_4": ("budget, next-sentence loss x4", _BUDGET + ["--nsp_loss_weight=4"]),
    "cls_head": (
        "budget, BERT's next-sentence head (`[CLS]` only), weight 1",
        _BUDGET + ["--nonsp_segment_means", "--nsp_loss_weight=1"],
    ),
    "segment_weight_1": (
        "budget, next-sentence weight 1 (with the segment head)", _BUDGET + ["--nsp_loss_weight=1"]
    ),
    "betas_bert": (
        "budget, AdamW (0.9, 0.999), eps 1e-6", _BUDGET + ["--beta_2=0.999", "--epsilon=1e-6"]
    ),
    "clip_05": ("budget, clipping at 0.5", _BUDGET + ["--clipnorm=0.5"]),
    "triangle": (
        "budget, the budget-triangle schedule", _BUDGET + ["--schedule=budget_triangle"]
    ),
    "untied": ("budget, untied output embeddings", _BUDGET + ["--notie_embeddings"]),
    "no_embedding_norm": (
        "budget, no embedding layer norm", _BUDGET + ["--noembedding_layer_norm"]
    ),
}
RESULTS_FILE = "ablation.json"
TABLE_FILE = "ablation.md"
# In each variant's directory: the flags it was trained with, beside the variant's own.
FLAGS_FILE = "ablation_flags.json"


def define_flags():
    """Defines the flags (only when run as a program, so that tests can import the module)."""
    flags.DEFINE_string("corpus", None, "Training corpus (as training.pretrain).", required=True)
    flags.DEFINE_string("eval_corpus", None, "Evaluation corpus.", required=True)
    flags.DEFINE_string(
        "vocab", None,
        "vocab.txt shared by every variant. Default: learned once from --corpus "
        "(--vocabulary_size) into --out/vocab.txt.",
    )
    flags.DEFINE_integer("vocabulary_size", 8000, "Size of the vocabulary learned.")
    flags.DEFINE_string("preset", "bert_mini", "Encoder shape of every variant.")
    flags.DEFINE_integer("train_steps", 1000, "Steps of every variant.")
    flags.DEFINE_integer("eval_every_steps", 100, "Steps between evaluations.")
    flags.DEFINE_list("report_steps", ["600", "1000"], "Steps whose accuracies the table shows.")
    flags.DEFINE_float("nsp_target", 0.60, "Next-sentence accuracy the table counts steps to.")
    flags.DEFINE_list("variants", list(VARIANTS), f"Rows to run or read, of {list(VARIANTS)}.")
    flags.DEFINE_multi_string(
        "pretrain_flag", [], "Extra flag for every run, e.g. --pretrain_flag=--batch_size=16."
    )
    flags.DEFINE_string("out", None, "Output directory.", required=True)


def first_step_reaching(records, name, target):
    """The first evaluation step whose `name` is >= `target`, or None."""
    for record in sorted(records, key=lambda r: r["step"]):
        if record.get(name, -1.0) >= target:
            return record["step"]
    return None


def summarize(records, report_steps, nsp_target):
    """One table row from a run's evaluation records (`eval_log.jsonl` lines).

    Args:
        records: list of dicts with `step`, `mlm_accuracy`, `nsp_accuracy`.
        report_steps: list of ints.
        nsp_target: float.

    Returns:
        dict: `steps_to_nsp_target` (None when never reached) and, per step of
        `report_steps`, `mlm_accuracy_at_<step>` and `nsp_accuracy_at_<step>`
        (None when the run has no evaluation at that step).
    """
    by_step = {record["step"]: record for record in records}
    row = {"steps_to_nsp_target": first_step_reaching(records, "nsp_accuracy", nsp_target)}
    for step in report_steps:
        record = by_step.get(step, {})
        row[f"mlm_accuracy_at_{step}"] = record.get("mlm_accuracy")
        row[f"nsp_accuracy_at_{step}"] = record.get("nsp_accuracy")
    return row


def read_eval_log(run_dir):
    path = os.path.join(run_dir, "logs", "eval_log.jsonl")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def markdown_table(rows, report_steps, nsp_target, train_steps):
    """The README table of `rows` (dicts with `variant`, `description` and `summarize`'s keys)."""
    def number(value):
        return "" if value is None else f"{value:.3f}"

    header = [f"variant ({train_steps} steps each)",
              f"steps to next-sentence >= {nsp_target:.2f}"]
    for step in report_steps:
        header += [f"MLM acc. at {step}", f"NSP acc. at {step}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" + "---:|" * (len(header) - 1)]
    for row in rows:
        reached = row["steps_to_nsp_target"]
        cells = [row["description"],
                 f"not within {train_steps}" if reached is None else f"{reached:,}"]
        for step in report_steps:
            cells += [number(row[f"mlm_accuracy_at_{step}"]),
                      number(row[f"nsp_accuracy_at_{step}"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _check_flags():
    unknown = [name for name in FLAGS.variants if name not in VARIANTS]
    if unknown:
        raise cli.FlagError("variants", ",".join(FLAGS.variants),
                            f"unknown {unknown}; known: {list(VARIANTS)}.")
    for name in ("train_steps", "eval_every_steps", "vocabulary_size"):
        if getattr(FLAGS, name) < 1:
            raise cli.FlagError(name, getattr(FLAGS, name), "must be positive.")
    try:
        report = [int(step) for step in FLAGS.report_steps]
    except ValueError:
        raise cli.FlagError("report_steps", ",".join(FLAGS.report_steps),
                            "must be a comma-separated list of step counts.") from None
    for step in report:
        if step % FLAGS.eval_every_steps or not 0 < step <= FLAGS.train_steps:
            raise cli.FlagError(
                "report_steps", ",".join(FLAGS.report_steps),
                f"each must be a multiple of --eval_every_steps ({FLAGS.eval_every_steps}) "
                f"up to --train_steps ({FLAGS.train_steps}).",
            )
    if not 0 < FLAGS.nsp_target < 1:
        raise cli.FlagError("nsp_target", FLAGS.nsp_target, "must be in (0, 1).")
    cli.check_paths(files=["corpus", "eval_corpus"] + (["vocab"] if FLAGS.vocab else []))
    return report


def _vocabulary(out):
    if FLAGS.vocab:
        return FLAGS.vocab
    path = os.path.join(out, "vocab.txt")
    if not os.path.isfile(path):
        from keras_bert.text.wordpiece_vocabulary import learn_vocabulary, write_vocabulary

        write_vocabulary(
            learn_vocabulary([FLAGS.corpus], FLAGS.vocabulary_size, lower_case=True,
                             show_progress=False),
            path,
        )
    return path


def _run(name, vocab, run_dir):
    """Trains one variant into `run_dir` (resuming an interrupted run there)."""
    command = [
        sys.executable, "-m", "training.pretrain", f"--preset={FLAGS.preset}",
        f"--corpus={FLAGS.corpus}", f"--eval_corpus={FLAGS.eval_corpus}",
        f"--vocab={vocab}", f"--train_steps={FLAGS.train_steps}",
        f"--eval_every_steps={FLAGS.eval_every_steps}", f"--model_dir={run_dir}",
        "--noprogress_bar", *VARIANTS[name][1], *FLAGS.pretrain_flag,
    ]
    logging.info("%s: %s", name, " ".join(command[1:]))
    started = time.time()
    with open(os.path.join(os.path.dirname(run_dir), f"{name}.log"), "w") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True)
    logging.info("%s: done in %.0f s.", name, time.time() - started)


def _row(name, run_dir, report_steps):
    """The table row of the finished run in `run_dir`."""
    flags_path = os.path.join(run_dir, FLAGS_FILE)
    if os.path.isfile(flags_path):
        with open(flags_path, encoding="utf-8") as f:
            run_flags = json.load(f)
    else:  # A run placed there by hand: the variant's own flags.
        run_flags = list(VARIANTS[name][1])
    row = {"variant": name, "description": VARIANTS[name][0], "flags": run_flags}
    row.update(summarize(read_eval_log(run_dir), report_steps, FLAGS.nsp_target))
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
        train = json.load(f)["train"]
    row["steps"] = train["steps"]
    row["train_seconds"] = train["seconds"]
    return row


def _finished_rows(out, report_steps):
    """Rows of every finished variant under `out`, in `VARIANTS` order (whoever ran them)."""
    return [
        _row(name, os.path.join(out, name), report_steps) for name in VARIANTS
        if os.path.isfile(os.path.join(out, name, "metrics.json"))
    ]


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    report_steps = _check_flags()
    out = FLAGS.out
    os.makedirs(out, exist_ok=True)
    vocab = _vocabulary(out)
    for name in FLAGS.variants:
        run_dir = os.path.join(out, name)
        if not os.path.isfile(os.path.join(run_dir, "metrics.json")):
            _run(name, vocab, run_dir)
            write_json(os.path.join(run_dir, FLAGS_FILE),
                       list(VARIANTS[name][1]) + list(FLAGS.pretrain_flag))
            # The table as each run ends (a long call shows its progress).
            _write(out, _finished_rows(out, report_steps), report_steps)
    # The table keeps the rows of earlier calls: it fills over several calls.
    rows = _finished_rows(out, report_steps)
    _write(out, rows, report_steps)
    print(markdown_table(rows, report_steps, FLAGS.nsp_target, FLAGS.train_steps), end="")


def _write(out, rows, report_steps):
    from keras_bert.utils import cpu

    results = {
        "train_steps": FLAGS.train_steps, "eval_every_steps": FLAGS.eval_every_steps,
        "nsp_target": FLAGS.nsp_target, "preset": FLAGS.preset, "corpus": FLAGS.corpus,
        "eval_corpus": FLAGS.eval_corpus, "machine": cpu.describe(cpu.read_cpu_info()), "rows": rows,
    }
    write_json(os.path.join(out, RESULTS_FILE), results, indent=2)
    with atomic_file(os.path.join(out, TABLE_FILE)) as temporary:
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(markdown_table(rows, report_steps, FLAGS.nsp_target, FLAGS.train_steps))


if __name__ == "__main__":
    define_flags()
    cli.run(main, input_flags=("corpus", "eval_corpus", "vocab"))
