"""Sentence (pair) classification and regression: reading labelled rows and scoring predictions.

Files are TSV, CSV or JSON Lines (chosen by extension unless given), with named
columns: GLUE's `sentence<TAB>label` (SST-2), `question<TAB>sentence<TAB>label`
(QNLI), or any `--text_column` / `--pair_column` / `--label_column`. TSV is
read without quote processing, as GLUE writes it (quotes are ordinary
characters); CSV follows RFC 4180 quoting.
"""

import csv
import dataclasses
import json
import math
import os
import re

import numpy as np
from absl import logging

from keras_bert.tasks.task import CHECK_TEXTS
from keras_bert.tasks.task import ServingSpec
from keras_bert.tasks.task import Task

INPUT_FORMATS = ("tsv", "csv", "jsonl")


@dataclasses.dataclass
class Examples:
    """Rows of one file. `labels` holds raw strings, `None` when the file has none."""

    path: str
    texts: list
    pairs: list  # or None for single sentences
    labels: list  # or None
    line_numbers: list
    skipped_lines: list = dataclasses.field(default_factory=list)  # messages, with skip_bad_lines

    def __len__(self):
        return len(self.texts)


class _BadLines:
    """Raises `ValueError` at a bad line, or (with `skip`) records it and goes on."""

    def __init__(self, skip):
        self.skip = skip
        self.messages = []

    def report(self, message):
        if not self.skip:
            raise ValueError(message)
        self.messages.append(message)


# Text read with `errors="surrogateescape"` holds each byte that is not UTF-8 as one of these.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def _invalid_utf8(values):
    """Whether any of `values` (read with `errors="surrogateescape"`) held invalid UTF-8."""
    return any(_ESCAPED_BYTE.search(value) for value in values if isinstance(value, str))


def infer_format(path, input_format=None):
    """`input_format` if given, else the format named by the file extension."""
    if input_format:
        if input_format not in INPUT_FORMATS:
            raise ValueError(
                f"`input_format` must be one of {INPUT_FORMATS}, received {input_format!r}."
            )
        return input_format
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    if extension in ("tsv", "txt"):
        return "tsv"
    if extension == "csv":
        return "csv"
    if extension in ("jsonl", "json", "ndjson"):
        return "jsonl"
    raise ValueError(
        f"Cannot tell the format of {path!r} from its extension; pass `input_format` "
        f"(one of {INPUT_FORMATS})."
    )


def read_examples(
    path, text_column="sentence", pair_column=None, label_column="label",
    input_format=None, require_labels=True, skip_bad_lines=False,
):
    """Reads text, optional pair and label columns from a TSV, CSV or JSONL file.

    Args:
        path: str. The file.
        text_column: str. Column of the (first) text.
        pair_column: str or None. Column of the second text of a pair.
        label_column: str. Column of the label.
        input_format: str or None. `"tsv"`, `"csv"` or `"jsonl"`; `None`
            chooses by extension.
        require_labels: bool. Whether a missing label column is an error;
            if `False` and the column is absent, `labels` is `None`.
        skip_bad_lines: bool. Skip lines that cannot be read (wrong number of
            columns, invalid JSON or UTF-8, a missing or empty field), logging
            them and listing them in `skipped_lines`, instead of raising at
            the first. A bad header is always an error.

    Returns:
        `Examples`.

    Raises:
        ValueError: naming the file and line of the first bad row.
    """
    input_format = infer_format(path, input_format)
    if not os.path.isfile(path):
        raise ValueError(f"Input file {path!r} does not exist.")
    bad_lines = _BadLines(skip_bad_lines)
    if input_format == "jsonl":
        rows = _jsonl_rows(path, bad_lines)
        columns = None
    else:
        rows, columns = _delimited_rows(path, input_format, bad_lines)
    wanted = [text_column] + ([pair_column] if pair_column else [])
    has_labels = True
    if columns is not None:
        missing = [c for c in wanted if c not in columns]
        if label_column not in columns:
            if require_labels:
                missing.append(label_column)
            has_labels = False
        if missing:
            raise ValueError(
                f"{path}:1: no column {', '.join(map(repr, missing))} in the header; "
                f"columns are {columns}. Set --text_column/--pair_column/--label_column."
            )
    elif rows and not require_labels:
        has_labels = label_column in rows[0][1]
    texts, pairs, labels, line_numbers = [], [] if pair_column else None, [], []
    for line_number, row in rows:
        try:
            if has_labels and label_column not in row:
                raise ValueError(f"{path}:{line_number}: no {label_column!r} field.")
            text = _text_field(path, line_number, row, text_column)
            pair = _text_field(path, line_number, row, pair_column) if pair_column else None
            if has_labels:
                label = row.get(label_column)
                label = "" if label is None else str(label).strip()
                if not label:
                    raise ValueError(f"{path}:{line_number}: empty {label_column!r}.")
        except ValueError as error:
            bad_lines.report(str(error))
            continue
        texts.append(text)
        if pair_column:
            pairs.append(pair)
        if has_labels:
            labels.append(label)
        line_numbers.append(line_number)
    if bad_lines.messages:
        logging.warning(
            "%s: skipped %d bad line(s) (--skip_bad_lines); the first: %s",
            path, len(bad_lines.messages), bad_lines.messages[0],
        )
    if not texts:
        raise ValueError(f"{path}: no examples.")
    return Examples(
        path, texts, pairs, labels if has_labels else None, line_numbers, bad_lines.messages
    )


def read_columns(path, input_format=None):
    """The column names of a TSV or CSV file's header row, as `read_examples` reads them.

    Raises:
        ValueError: naming the file when it is missing, empty or its header unreadable, or
            when it is a JSON Lines file (which has no header).
    """
    input_format = infer_format(path, input_format)
    if input_format == "jsonl":
        raise ValueError(f"{path}: JSON Lines files have no header row.")
    if not os.path.isfile(path):
        raise ValueError(f"Input file {path!r} does not exist.")
    with _open_delimited(path) as f:
        _, columns = _read_header(f, path, input_format)
    return columns


def _open_delimited(path):
    # surrogateescape: invalid UTF-8 is reported with its line, not as a decoding error.
    return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _read_header(f, path, input_format):
    """`(reader, columns)`: a CSV reader of the open file `f` past its header row."""
    if input_format == "tsv":
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(f)
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError(f"{path}: empty file.") from None
    except csv.Error as error:
        raise ValueError(f"{path}:1: {error}") from error
    columns = [c.strip() for c in header]
    if _invalid_utf8(columns):
        raise ValueError(f"{path}:1: the header is not valid UTF-8.")
    return reader, columns


def _delimited_rows(path, input_format, bad_lines):
    with _open_delimited(path) as f:
        reader, columns = _read_header(f, path, input_format)
        rows = []
        line_number = reader.line_num
        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                # The reader cannot go on past a broken quote: never skipped.
                raise ValueError(f"{path}:{reader.line_num}: {error}") from error
            start_line, line_number = line_number + 1, reader.line_num
            if not values or values == [""]:
                continue  # blank line
            if len(values) != len(columns):
                bad_lines.report(
                    f"{path}:{start_line}: expected {len(columns)} {input_format.upper()} "
                    f"columns ({', '.join(columns)}), found {len(values)}."
                )
                continue
            if _invalid_utf8(values):
                bad_lines.report(f"{path}:{start_line}: not valid UTF-8.")
                continue
            rows.append((start_line, dict(zip(columns, values))))
    return rows, columns


def _jsonl_rows(path, bad_lines):
    rows = []
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            if _invalid_utf8([line]):
                bad_lines.report(f"{path}:{line_number}: not valid UTF-8.")
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                bad_lines.report(f"{path}:{line_number}: invalid JSON: {error.msg}.")
                continue
            if not isinstance(row, dict):
                bad_lines.report(f"{path}:{line_number}: expected a JSON object per line.")
                continue
            rows.append((line_number, row))
    return rows


def _text_field(path, line_number, row, column):
    if column not in row:
        raise ValueError(f"{path}:{line_number}: no {column!r} field.")
    value = row[column]
    if value is None or isinstance(value, (dict, list)):
        raise ValueError(f"{path}:{line_number}: {column!r} must be text, found {value!r}.")
    return str(value)


def label_list(labels):
    """Sorted distinct labels: numerically when all are numbers ("2" before "10")."""
    distinct = sorted(set(labels))
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return distinct


def encode_labels(examples, labels, regression=False):
    """Class indices (int32) or regression targets (float32 `(n, 1)`) of `examples`.

    Raises:
        ValueError: naming the file and line of a label outside `labels`, or
            of a regression target that is not a number.
    """
    if examples.labels is None:
        raise ValueError(f"{examples.path}: has no labels.")
    if regression:
        targets = []
        for line_number, label in zip(examples.line_numbers, examples.labels):
            try:
                value = float(label)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise ValueError(
                    f"{examples.path}:{line_number}: regression label {label!r} is not a number."
                )
            targets.append(value)
        return np.asarray(targets, np.float32)[:, None]
    index = {label: i for i, label in enumerate(labels)}
    encoded = np.empty(len(examples), np.int32)
    for i, (line_number, label) in enumerate(zip(examples.line_numbers, examples.labels)):
        if label not in index:
            raise ValueError(
                f"{examples.path}:{line_number}: label {label!r} is not one of the training "
                f"labels {labels}."
            )
        encoded[i] = index[label]
    return encoded


def classification_metrics(logits, labels, num_classes):
    """Accuracy and macro-averaged F1 of argmax predictions.

    Args:
        logits: float array `(n, num_classes)`.
        labels: int array `(n,)`.
        num_classes: int.

    Returns:
        dict: `accuracy`, `macro_f1` (mean F1 over classes present in the
        labels or the predictions), `num_examples`, and per-class `f1`.
    """
    predictions = np.argmax(logits, axis=-1)
    labels = np.asarray(labels).reshape(-1)
    per_class = {}
    f1_values = []
    for c in range(num_classes):
        true_positive = int(np.sum((predictions == c) & (labels == c)))
        predicted = int(np.sum(predictions == c))
        actual = int(np.sum(labels == c))
        if predicted == 0 and actual == 0:
            continue
        f1 = 2 * true_positive / (predicted + actual)
        per_class[c] = f1
        f1_values.append(f1)
    return {
        "accuracy": float(np.mean(predictions == labels)) if len(labels) else 0.0,
        "macro_f1": float(np.mean(f1_values)) if f1_values else 0.0,
        "num_examples": int(len(labels)),
        "per_class_f1": per_class,
    }


def regression_metrics(predictions, targets):
    """Mean squared error and Pearson and Spearman correlations."""
    predictions = np.asarray(predictions, np.float64).reshape(-1)
    targets = np.asarray(targets, np.float64).reshape(-1)

    def correlation(a, b):
        if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
            return 0.0
        return float(np.corrcoef(a, b)[0, 1])

    def ranks(values):
        order = np.argsort(values, kind="stable")
        result = np.empty(len(values))
        result[order] = np.arange(len(values))
        # Ties share their mean rank.
        for value in np.unique(values):
            tied = values == value
            result[tied] = result[tied].mean()
        return result

    return {
        "mse": float(np.mean((predictions - targets) ** 2)),
        "pearson": correlation(predictions, targets),
        "spearman": correlation(ranks(predictions), ranks(targets)),
        "num_examples": int(len(targets)),
    }


def softmax(logits):
    """Row-wise softmax of a float array `(n, num_classes)`, in float64."""
    logits = np.asarray(logits, np.float64)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


@dataclasses.dataclass
class Data:
    """A split ready for the model: packed `inputs`, `targets`, and the rows they came from."""

    examples: Examples
    inputs: dict
    targets: np.ndarray  # or None without labels

    def __len__(self):
        return len(self.examples)


class ClassificationTask(Task):
    """Sentence (pair) classification and regression: `BertClassifier` on `[CLS]`.

    Args:
        sequence_length: int. The packed length of the model's inputs. Defaults to `128`.
        text_column, pair_column, label_column: str (`pair_column` None for single texts).
            The columns (or JSON keys) of the data files.
        input_format: str or None. See `read_examples`.
        regression: bool. One real-valued output instead of classes.
        skip_bad_lines: bool. See `read_examples`.
    """

    name = "classification"
    default_sequence_length = 128
    sequence_outputs = False

    def __init__(
        self, sequence_length=128, text_column="sentence", pair_column=None,
        label_column="label", input_format=None, regression=False, skip_bad_lines=False,
    ):
        self.sequence_length = sequence_length
        self.text_column = text_column
        self.pair_column = pair_column
        self.label_column = label_column
        self.input_format = input_format
        self.regression = regression
        self.skip_bad_lines = skip_bad_lines
        self.selection_metric = "pearson" if regression else "accuracy"

    def build_preprocessor(self, tokenizer):
        """The `TextClassifierPreprocessor` packing texts (or pairs) to `sequence_length`."""
        from keras_bert.text import TextClassifierPreprocessor

        return TextClassifierPreprocessor(tokenizer, sequence_length=self.sequence_length)

    def read(self, path, tokenizer, labels=None, is_training=False):
        """Reads and packs a file; `labels` (the training labels) encode its targets."""
        examples = read_examples(
            path, self.text_column, self.pair_column, self.label_column, self.input_format,
            skip_bad_lines=self.skip_bad_lines,
        )
        inputs = self.build_preprocessor(tokenizer).pack_numpy(examples.texts, examples.pairs)
        data = Data(examples, inputs, None)
        if labels is not None:
            self.encode_targets(data, labels)
        return data

    def labels(self, train_data):
        """Class names in index order, read from the training data (none for regression)."""
        if self.regression:
            return []
        return label_list(train_data.examples.labels)

    def encode_targets(self, data, labels):
        data.targets = encode_labels(data.examples, labels, self.regression)
        return data

    def build_model(self, encoder, labels):
        from keras_bert.models import BertClassifier

        return BertClassifier(encoder, num_classes=1 if self.regression else len(labels))

    def loss(self):
        import keras

        if self.regression:
            return keras.losses.MeanSquaredError()
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def fit_metrics(self):
        import keras

        if self.regression:
            return []
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def evaluate(self, model, data, labels, batch_size=128):
        """Metrics of `model` on `data` (accuracy and macro F1, or MSE and correlations)."""
        from keras_bert.inputs import predict

        logits = predict(model, data.inputs, batch_size)
        if self.regression:
            return regression_metrics(logits[:, 0], data.targets[:, 0])
        metrics = classification_metrics(logits, data.targets, len(labels))
        metrics["per_class_f1"] = {
            labels[c]: f1 for c, f1 in metrics["per_class_f1"].items()
        }
        return metrics

    def inference_config(self):
        return {
            "text_column": self.text_column,
            "pair_column": self.pair_column,
            "label_column": self.label_column,
            "regression": self.regression,
        }

    # === Prediction and serving ===

    def predict_texts(self, model_dir, lines, batch_size=64):
        """One dict per input line: `label`, `probability`, `probabilities` (classes), or
        `value` (regression). Pair models take `text<TAB>pair` lines."""
        from keras_bert.inputs import predict

        texts, pairs = lines, None
        if self.pair_column:
            split = [split_tab_pair(line, "text<TAB>pair") for line in lines]
            texts, pairs = [a for a, _ in split], [b for _, b in split]
        inputs = model_dir.preprocessor.pack_numpy(texts, pairs)
        logits = predict(model_dir.load_model(), inputs, batch_size)
        if self.regression:
            return [{"value": float(row[0])} for row in logits]
        labels = model_dir.labels
        results = []
        for row in softmax(logits):
            best = int(np.argmax(row))
            results.append(
                {
                    "label": labels[best],
                    "probability": float(row[best]),
                    "probabilities": {label: float(p) for label, p in zip(labels, row)},
                }
            )
        return results

    def format_result(self, result):
        """`label<TAB>probability`, or the regression value."""
        if "value" in result:
            return f"{result['value']:.6g}"
        return f"{result['label']}\t{result['probability']:.4f}"

    @property
    def serving(self):
        """Text signature inputs `text` (and `text_pair`); outputs from the logits."""
        text_inputs = ("text", "text_pair") if self.pair_column else ("text",)
        return ServingSpec(
            text_inputs=text_inputs,
            outputs=self.serving_outputs,
            numeric_outputs=("logits",),
            read_inputs=self.serving_inputs,
            check=self.check_serving,
        )

    def serving_inputs(self, model_dir, path=None, limit=None):
        """`{"text": ...}` (and `"text_pair"`) of a TSV/CSV/JSONL file's fine-tuning columns,
        or `CHECK_TEXTS` (paired with themselves reversed)."""
        if path is None:
            texts = list(CHECK_TEXTS)[:limit]
            pairs = list(reversed(texts)) if self.pair_column else None
        else:
            examples = read_examples(
                path, self.text_column, self.pair_column, self.label_column,
                self.input_format, require_labels=False,
            )
            texts = examples.texts[:limit]
            pairs = None if examples.pairs is None else examples.pairs[:limit]
        inputs = {"text": texts}
        if self.pair_column:
            inputs["text_pair"] = pairs
        return inputs

    def check_serving(self, model_dir, inputs, outputs, max_abs_diff):
        """The served logits against the Keras model's on the same texts (as
        `predict_texts` packs and runs them), and the served labels against their argmax."""
        from keras_bert.inputs import predict

        packed = model_dir.preprocessor.pack_numpy(inputs["text"], inputs.get("text_pair"))
        expected = np.asarray(predict(model_dir.load_model(), packed), np.float32)
        logits = np.asarray(outputs["logits"], np.float32)
        if logits.shape != expected.shape:
            return {"passed": False,
                    "error": f"logits shape {logits.shape}, expected {expected.shape}"}
        diff = float(np.abs(logits - expected).max()) if logits.size else 0.0
        agreement = (
            float(np.mean(logits.argmax(axis=1) == expected.argmax(axis=1)))
            if len(logits) else 1.0
        )
        report = {"max_abs_diff": diff, "label_agreement": agreement,
                  "passed": bool(diff <= max_abs_diff and agreement == 1.0)}
        if not self.regression:
            report["label_output_agrees"] = bool(
                np.array_equal(outputs["label"], logits.argmax(axis=1))
            )
            report["passed"] = report["passed"] and report["label_output_agrees"]
        return report

    def serving_outputs(self, logits, labels):
        """The serving signatures' outputs, in graph ops, from float `(batch_size, C)` logits.

        Classification: `logits`, `probabilities` (softmax, `(batch_size, C)`), `label` (int64
        class index, `(batch_size,)`) and `label_name` (string, `(batch_size,)`). Regression:
        `logits` and `score` (`(batch_size,)`).
        """
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        logits = tf.cast(logits, tf.float32)
        if self.regression:
            return {"logits": logits, "score": logits[:, 0]}
        label = tf.argmax(logits, axis=-1, output_type=tf.int64)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "label": label,
            "label_name": tf.gather(tf.constant(labels, tf.string), label),
        }


def split_tab_pair(line, what):
    """`(first, second)` of a `first<TAB>second` input line; `ValueError` without a tab."""
    if "\t" not in line:
        raise ValueError(f"Expected '{what}' separated by a tab, received {line!r}.")
    first, second = line.split("\t", 1)
    return first, second
