"""Runs a fine-tuned model directory on texts: one output line per input.

Examples:

    # Classification: prints "label<TAB>probability" per text.
    python -m training.predict --model_dir=/tmp/sst2 "a gorgeous film" "a dull mess"
    printf 'a gorgeous film\\na dull mess\\n' | python -m training.predict --model_dir=/tmp/sst2

    # Sentence pairs: the two texts of a line separated by a tab.
    printf 'a man sleeps\\tsomeone rests\\n' | python -m training.predict --model_dir=/tmp/nli

    # Every class's probability, as JSON lines:
    python -m training.predict --model_dir=/tmp/sst2 --format=json "a gorgeous film"

    # QA: "question<TAB>context" per line; prints "answer<TAB>probability".
    printf 'Who lives in Oslo?\\tAnna lives in Oslo.\\n' | python -m training.predict --model_dir=/tmp/qa

    # Token classification: words split at white space; prints "word/tag(probability)".
    python -m training.predict --model_dir=/tmp/ner "Anna works at Acme in Oslo ."

Inputs are the positional arguments, or the lines of stdin when there are none
(blank lines skipped). The probability of a regression output is omitted.
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app, flags  # noqa: E402

from keras_bert.utils import cli  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A directory written by training.finetune.", required=True)
flags.DEFINE_enum(
    "format",
    "tsv",
    ["tsv", "json"],
    "tsv: 'label<TAB>probability' (classification, QA) or 'word/tag(probability) ...' "
    "(tokens); "
    "json: one JSON object per input with all details.",
)
flags.DEFINE_integer("batch_size", 64, "Inference batch size.")
flags.register_validator("batch_size", lambda value: value >= 1, "must be positive.")


def _check_flags(argv):
    """The checks of the flags that read the disk (before stdin is read)."""
    del argv  # the texts
    cli.check_paths(directories=["model_dir"])


def read_inputs(argv, stdin=None):
    """The texts to run on: positional arguments, else non-blank stdin lines."""
    if argv:
        return list(argv)
    stdin = sys.stdin if stdin is None else stdin
    return [line.rstrip("\r\n") for line in stdin if line.strip()]


def predict_lines(model_dir, lines, batch_size=64):
    """One result dict per input line, decoded by the model directory's task.

    Args:
        model_dir: `keras_bert.models.ModelDir`.
        lines: list of str. Texts (`text<TAB>pair` for pair classifiers,
            `question<TAB>context` for QA).
        batch_size: int.
    """
    return model_dir.load_task().predict_texts(model_dir, lines, batch_size)


def format_result(task, result, output_format):
    """One output line: the JSON object, or the task's `--format=tsv` line.

    Args:
        task: `keras_bert.tasks.Task`.
        result: dict. One of `predict_lines`' results.
        output_format: `"tsv"` or `"json"`.
    """
    if output_format == "json":
        return json.dumps(result, ensure_ascii=False)
    return task.format_result(result)


def main(argv):
    from keras_bert.models import load_model_dir

    lines = read_inputs(argv[1:])
    if not lines:
        raise app.UsageError("No input: pass texts as arguments or on stdin.")
    model_dir = load_model_dir(FLAGS.model_dir)
    task = model_dir.load_task()
    for result in task.predict_texts(model_dir, lines, FLAGS.batch_size):
        print(format_result(task, result, FLAGS.format))


if __name__ == "__main__":
    cli.run(main, flag_for={"path": "model_dir"}, input_flags=["model_dir"], check=_check_flags)
