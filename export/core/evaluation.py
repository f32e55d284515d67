"""Evaluation data, reference (Keras) predictions and parity figures shared by the exporters.

Classification evaluation files are GLUE-style TSVs with a header row naming the fine-tuning
columns (`text_column`, `pair_column`, `label_column` of `finetune_config.json`, e.g. `sentence`
and `label` for SST-2), read by `keras_bert.tasks.classification.read_examples`.

What an exported file is checked on differs per task, and lives in one place: `TASK_PARITY`
maps each exported task's name to a `TaskParity` that reads its evaluation file (a TSV for
classification and embeddings, SQuAD v1.1 JSON for question answering, CoNLL for token
classification), packs it with the task's preprocessor, and compares a file's outputs with the
Keras model's (logits, answers, tags, cosines), giving one `agreement` figure the exporters
hold against their threshold.
"""

import dataclasses
import os

import numpy as np

from keras_bert.inputs import INPUT_NAMES
from keras_bert.inputs import trim_to_longest
from keras_bert.models.model_dir import LABEL_MAP_FILE
from keras_bert.tasks import classification
from keras_bert.tasks import question_answering
from keras_bert.tasks import token_classification
from keras_bert.tasks.task import CHECK_TEXTS
from keras_bert.utils import atomic
from keras_bert.utils.atomic import atomic_file

# Sentences used when no --eval file is given: ordinary text, accents, a literal special
# token, punctuation runs, an empty string and an over-long word (the tasks' own list).
DEFAULT_TEXTS = CHECK_TEXTS


def read_tsv(path, info, limit=None, require_labels=True):
    """Texts, second texts and label indices of an evaluation TSV.

    Args:
        path: str. A TSV with a header row.
        info: `keras_bert.models.ModelDir`: names the columns and the labels.
        limit: int or None. Keep at most this many rows.
        require_labels: bool. Whether the label column must be present.

    Returns:
        `(texts, texts_pair, labels)`: lists of str (`texts_pair` None for single-text tasks)
        and an int32 array of class indices (float32 values for regression), or None without
        labels.

    Raises:
        ValueError: naming the file (and the line) of a missing column, a malformed row or a
            label the model does not know.
    """
    if not os.path.isfile(path):
        raise ValueError(f"Evaluation file {path!r} does not exist.")
    columns = classification.read_columns(path, "tsv")
    needed = [info.text_column] + ([info.pair_column] if info.is_pair_task else [])
    if require_labels:
        needed.append(info.label_column)
    missing = [column for column in needed if column not in columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {missing}; its header is {columns}.")
    examples = classification.read_examples(
        path, info.text_column, info.pair_column if info.is_pair_task else None,
        info.label_column, input_format="tsv", require_labels=require_labels,
    )
    examples = _first(examples, limit)
    labels = None
    if examples.labels is not None:
        labels = _label_indices(examples, info)
    return examples.texts, examples.pairs, labels


def _first(examples, limit):
    """`examples` cut to its first `limit` rows (all with `limit=None`)."""
    if limit is None:
        return examples
    return classification.Examples(
        path=examples.path,
        texts=examples.texts[:limit],
        pairs=None if examples.pairs is None else examples.pairs[:limit],
        labels=None if examples.labels is None else examples.labels[:limit],
        line_numbers=examples.line_numbers[:limit],
    )


def _label_indices(examples, info):
    if info.regression:
        return classification.encode_labels(examples, [], regression=True)[:, 0]
    index = {name: i for i, name in enumerate(info.labels)}
    unknown = sorted(set(examples.labels) - set(index))
    if unknown:
        line = examples.line_numbers[examples.labels.index(unknown[0])]
        raise ValueError(
            f"{examples.path} has labels {unknown[:5]} not in the model's labels "
            f"{info.labels} (line {line} has {unknown[0]!r})."
        )
    return np.asarray([index[value] for value in examples.labels], np.int32)


def read_texts(info, path=None, limit=None):
    """`(texts, texts_pair)` of a TSV, or `DEFAULT_TEXTS` (paired with themselves) without one."""
    if path is not None:
        texts, texts_pair, _ = read_tsv(path, info, limit, require_labels=False)
        return texts, texts_pair
    texts = list(DEFAULT_TEXTS)[:limit]
    return texts, (list(reversed(texts)) if info.is_pair_task else None)


def keras_logits(model, preprocessor, texts, texts_pair=None, batch_size=64):
    """The Keras model's float32 logits `(N, C)`, packed by the task's preprocessor.

    Each batch is cut to its longest row (`keras_bert.inputs.trim_to_longest`): padding does
    not change the logits.
    """
    outputs = []
    for start in range(0, len(texts), batch_size):
        batch = preprocessor.pack_numpy(
            texts[start:start + batch_size],
            None if texts_pair is None else texts_pair[start:start + batch_size],
        )
        outputs.append(np.asarray(model(trim_to_longest(batch), training=False), np.float32))
    return np.concatenate(outputs, axis=0)


# === Parity figures ===


def predicted_labels(logits, single_logit_is_binary=False):
    """Class indices `(N,)` of float logits `(N, C)`: the argmax.

    With `single_logit_is_binary`, one logit per example is read as a binary classifier's
    (label 1 when > 0) instead of the argmax of one column (always 0).
    """
    logits = np.asarray(logits)
    if single_logit_is_binary and logits.shape[1] == 1:
        return (logits[:, 0] > 0).astype(np.int64)
    return np.argmax(logits, axis=-1)


def compare(logits, reference, labels=None, regression=False, dtype=np.float32,
            single_logit_is_binary=False):
    """Parity figures of `logits` against `reference` logits, both float `(N, C)`.

    The one comparison of the exporters and checkers; each report picks its figures from it
    (`keras_parity`, `export.saved_model`, `export.check_arm64`).

    Args:
        logits: float array `(N, C)`: the outputs checked.
        reference: float array `(N, C)`: the outputs they should match.
        labels: int array `(N,)` of class indices (float targets for regression), or None.
        regression: bool. Compare regression outputs: no labels to agree on.
        dtype: the numpy float type the differences are computed in.
        single_logit_is_binary: bool. See `predicted_labels`.

    Returns:
        dict: `num_examples`, `max_abs_diff`, `mean_abs_diff`, `max_abs_diff_example` (the
        row of the largest difference), `finite` (whether every logit is finite),
        `label_agreement` (None for regression) and `num_label_disagreements`; with `labels`,
        `accuracy` and `reference_accuracy` (classification) or `mse` and `reference_mse`
        (regression).
    """
    logits = np.asarray(logits, dtype)
    reference = np.asarray(reference, dtype)
    if logits.shape != reference.shape:
        raise ValueError(f"Logits of shape {logits.shape} do not match the reference's "
                         f"{reference.shape}.")
    diff = np.abs(logits - reference)
    result = {
        "num_examples": int(len(logits)),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "max_abs_diff_example": int(np.argmax(diff.max(axis=1))) if diff.size else 0,
        "finite": bool(np.all(np.isfinite(logits))),
    }
    if regression:
        result.update(label_agreement=None, num_label_disagreements=None)
        if labels is not None:
            result["mse"] = float(np.mean((logits[:, 0] - labels) ** 2))
            result["reference_mse"] = float(np.mean((reference[:, 0] - labels) ** 2))
        return result
    predicted = predicted_labels(logits, single_logit_is_binary)
    expected = predicted_labels(reference, single_logit_is_binary)
    result["label_agreement"] = float(np.mean(predicted == expected))
    result["num_label_disagreements"] = int(np.sum(predicted != expected))
    if labels is not None:
        result["accuracy"] = float(np.mean(predicted == labels))
        result["reference_accuracy"] = float(np.mean(expected == labels))
    return result


def keras_parity(logits, reference, labels=None, regression=False):
    """The parity report's figures of `logits` against the Keras model's `reference` logits.

    Returns:
        dict: `num_examples`, `max_abs_diff`, `mean_abs_diff`, `finite`, `label_agreement`
        (None for regression); with `labels`, `accuracy` and `keras_accuracy`, or for
        regression `mse` and `keras_mse`.
    """
    figures = compare(logits, reference, labels, regression)
    result = {key: figures[key] for key in
              ("num_examples", "max_abs_diff", "mean_abs_diff", "finite", "label_agreement")}
    if labels is not None:
        if regression:
            result.update(mse=figures["mse"], keras_mse=figures["reference_mse"])
        else:
            result.update(accuracy=figures["accuracy"],
                          keras_accuracy=figures["reference_accuracy"])
    return result


# === Per-task parity ===

# Questions used when no --eval file is given to a question-answering export: the answer is
# in the first context, and the second is long enough for several windows of a short model.
DEFAULT_QUESTIONS = (
    ("Where is the Eiffel Tower?",
     "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. "
     "It is named after the engineer Gustave Eiffel, whose company designed and built it."),
    ("Who designed the tower?",
     "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. "
     "It is named after the engineer Gustave Eiffel, whose company designed and built it. "
     + "Locally nicknamed La dame de fer, it was constructed from 1887 to 1889 as the "
     "centrepiece of the 1889 World's Fair. " * 4),
    ("Café?", ""),
)


@dataclasses.dataclass
class EvalSet:
    """The examples of a parity run, packed by the task's preprocessor.

    Attributes:
        source: str. The evaluation file (absolute), or `"built-in texts"`.
        num_examples: int. Sentences, texts or questions.
        inputs: dict of int32 arrays `(num_rows, sequence_length)`: one row per model call
            (a text, a sentence, a question's window).
        texts, texts_pair: list of str or None. The texts (classification, embeddings), for
            files that take text.
        labels: array or None. Classification labels.
        examples: list or None. Question answering: `question_answering.Example`s; token
            classification: `token_classification.Sentence`s.
        features: the task's `Features` (question answering, token classification), or None.
    """

    source: str
    num_examples: int
    inputs: dict
    texts: list = None
    texts_pair: list = None
    labels: object = None
    examples: list = None
    features: object = None


def named_outputs(outputs, output_names):
    """A model's outputs as a dict: a dict keeps the `output_names` entries, a single tensor
    is named `output_names[0]`."""
    if isinstance(outputs, dict):
        missing = [name for name in output_names if name not in outputs]
        if missing:
            raise ValueError(f"The model's outputs {sorted(outputs)} lack {missing}.")
        return {name: outputs[name] for name in output_names}
    return {output_names[0]: outputs}


def _pad_sequence_axis(value, length):
    """`value` `(N, S, ...)` padded with zeros (or cut) to `(N, length, ...)`."""
    if value.shape[1] >= length:
        return value[:, :length]
    return np.pad(value, [(0, 0), (0, length - value.shape[1])] + [(0, 0)] * (value.ndim - 2))


def _real_positions(values, padding_mask):
    """The entries of `(N, S, ...)` arrays at real positions, flattened."""
    length = padding_mask.shape[1]
    mask = padding_mask.astype(bool)
    return [_pad_sequence_axis(value, length)[mask].reshape(-1) for value in values]


def _differences(file_values, reference_values):
    """`max_abs_diff`, `mean_abs_diff`, `finite` of flat float arrays (paired)."""
    ours = np.concatenate([np.asarray(v, np.float64).reshape(-1) for v in file_values])
    theirs = np.concatenate([np.asarray(v, np.float64).reshape(-1) for v in reference_values])
    diff = np.abs(ours - theirs)
    return {
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "finite": bool(np.all(np.isfinite(ours))),
    }


class TaskParity:
    """How an exported file of one task is checked against its Keras model.

    Attributes:
        task: str. The task's registry name.
        metadata_kind: str. The TFLite Model Metadata kind (`export.core.metadata.populate`).
        output_names: tuple of str. The file's outputs, in the order written (clients that
            read outputs by position expect this order).
        input_order: tuple of str or None. The file's inputs, in the order written (None: the
            converter's order; clients with metadata find the inputs by name).
        fixed_sequence_length: bool. Inputs of exactly the model's `sequence_length` (else any
            length up to it).
        sequence_outputs: bool. Whether the outputs have a sequence axis
            `(batch_size, sequence_length, ...)`.
        agreement_name: str. What `agreement` measures, for reports.
        string_input: bool. Whether a file with the tokenizer inside (`text` input) is made.
        columns: tuple of `(key, header)`: task figures the report shows besides agreement
            and differences; fractions.
    """

    task = None
    metadata_kind = None
    output_names = ("logits",)
    input_order = None
    fixed_sequence_length = False
    sequence_outputs = False
    agreement_name = "agreement"
    string_input = False
    columns = ()

    def read(self, info, path=None, limit=None):
        """The `EvalSet` of `path` (default: built-in examples), first `limit` examples."""
        raise NotImplementedError

    def compare(self, outputs, reference, eval_set, info):
        """Figures of a file's `outputs` against the Keras `reference` (dicts of arrays with
        one row per `eval_set.inputs` row): `agreement`, `max_abs_diff`, `mean_abs_diff`,
        `finite`, and the task's `columns`."""
        raise NotImplementedError

    def metadata_labels(self, info):
        """Class or tag names for the metadata's label file, or None."""
        del info
        return None

    def keras_outputs(self, model, eval_set, batch_size=64):
        """The Keras model's float32 outputs on `eval_set.inputs`: dict of arrays with one row
        per input row, sequence outputs at the packed length (zeros past each batch's longest
        real row, which do not count in any comparison)."""
        inputs = {name: np.asarray(eval_set.inputs[name], np.int32) for name in INPUT_NAMES}
        length = inputs["token_ids"].shape[1]
        rows = []
        for start in range(0, len(inputs["token_ids"]), batch_size):
            batch = {name: value[start:start + batch_size] for name, value in inputs.items()}
            if not self.fixed_sequence_length:
                batch = trim_to_longest(batch)
            outputs = named_outputs(model(batch, training=False), self.output_names)
            outputs = {name: np.asarray(value, np.float32) for name, value in outputs.items()}
            if self.sequence_outputs:
                outputs = {name: _pad_sequence_axis(value, length)
                           for name, value in outputs.items()}
            rows.append(outputs)
        return {name: np.concatenate([row[name] for row in rows]) for name in self.output_names}


class ClassificationParity(TaskParity):
    """Classifiers (single texts, pairs, regression): logits; label agreement (none for
    regression), accuracy on a labelled TSV."""

    task = classification.ClassificationTask.name
    metadata_kind = "classifier"
    agreement_name = "label agreement"
    string_input = True
    columns = (("accuracy", "accuracy"),)

    def read(self, info, path=None, limit=None):
        if path:
            texts, texts_pair, labels = read_tsv(path, info, limit)
        else:
            (texts, texts_pair), labels = read_texts(info, None, limit), None
        return EvalSet(
            source=os.path.abspath(path) if path else "built-in texts", num_examples=len(texts),
            inputs=info.preprocessor.pack_numpy(texts, texts_pair), texts=texts,
            texts_pair=texts_pair, labels=labels,
        )

    def compare(self, outputs, reference, eval_set, info):
        figures = keras_parity(outputs["logits"], reference["logits"], eval_set.labels,
                               info.regression)
        figures["agreement"] = figures["label_agreement"]
        return figures

    def metadata_labels(self, info):
        return None if info.regression else info.labels


class QuestionAnsweringParity(TaskParity):
    """Span labelers: start and end logits at the model's fixed window length, in the input
    order (ids, mask, segment ids) and output order (end, start) of the LiteRT Task Library's
    `BertQuestionAnswerer`; answer agreement over the questions (best span over all windows),
    exact match and F1 against the references of a SQuAD v1.1 `--eval` file."""

    task = question_answering.QuestionAnsweringTask.name
    metadata_kind = "question_answerer"
    output_names = ("end_logits", "start_logits")
    input_order = ("token_ids", "padding_mask", "segment_ids")
    fixed_sequence_length = True
    sequence_outputs = True
    agreement_name = "answer agreement"
    columns = (("exact_match", "exact match"), ("f1", "F1"))

    def read(self, info, path=None, limit=None):
        if path:
            examples = question_answering.read_squad(path)[:limit]
        else:
            pairs = list(DEFAULT_QUESTIONS)[:limit]
            examples = info.load_task().read_texts(info.preprocessor, pairs).examples
        features = question_answering.preprocess(info.preprocessor, examples)
        return EvalSet(
            source=os.path.abspath(path) if path else "built-in texts",
            num_examples=len(examples), inputs=features.inputs, examples=examples,
            features=features,
        )

    def compare(self, outputs, reference, eval_set, info):
        mask = np.asarray(eval_set.inputs["padding_mask"])
        figures = _differences(
            _real_positions([outputs["start_logits"], outputs["end_logits"]], mask),
            _real_positions([reference["start_logits"], reference["end_logits"]], mask),
        )
        task = info.load_task()

        def answers(logits):
            length = mask.shape[1]
            return question_answering.predict_answers(
                eval_set.examples, eval_set.features,
                _pad_sequence_axis(logits["start_logits"], length),
                _pad_sequence_axis(logits["end_logits"], length), task.max_answer_length,
            )

        ours, theirs = answers(outputs), answers(reference)
        same = [ours[e.qas_id].text == theirs[e.qas_id].text for e in eval_set.examples]
        figures.update(
            num_examples=len(eval_set.examples),
            num_windows=int(len(mask)),
            agreement=float(np.mean(same)) if same else 1.0,
            num_disagreements=int(len(same) - sum(same)),
        )
        if any(example.answers for example in eval_set.examples):
            mine = question_answering.squad_metrics(eval_set.examples, ours)
            keras = question_answering.squad_metrics(eval_set.examples, theirs)
            figures.update(exact_match=mine["exact_match"], f1=mine["f1"],
                           keras_exact_match=keras["exact_match"], keras_f1=keras["f1"])
        return figures


class TokenClassificationParity(TaskParity):
    """Taggers: logits `(1, length, num_tags)`; agreement of the words' tags (each word's
    first piece), entity F1 against the tags of a CoNLL `--eval` file."""

    task = token_classification.TokenClassificationTask.name
    metadata_kind = "tagger"
    sequence_outputs = True
    agreement_name = "tag agreement"
    columns = (("entity_f1", "entity F1"),)

    def read(self, info, path=None, limit=None):
        if path:
            sentences = token_classification.read_conll(path)[:limit]
        else:
            sentences = [
                token_classification.Sentence(text.split(), None, 0)
                for text in DEFAULT_TEXTS if text.split()
            ][:limit]
        features = token_classification.preprocess(info.preprocessor, sentences)
        return EvalSet(
            source=os.path.abspath(path) if path else "built-in texts",
            num_examples=len(sentences), inputs=features.inputs, examples=sentences,
            features=features,
        )

    def compare(self, outputs, reference, eval_set, info):
        mask = np.asarray(eval_set.inputs["padding_mask"])
        figures = _differences(_real_positions([outputs["logits"]], mask),
                               _real_positions([reference["logits"]], mask))
        length = mask.shape[1]
        ours, _ = token_classification.predict_tags(
            eval_set.features, _pad_sequence_axis(outputs["logits"], length), info.labels)
        theirs, _ = token_classification.predict_tags(
            eval_set.features, _pad_sequence_axis(reference["logits"], length), info.labels)
        same = [a == b for mine, keras in zip(ours, theirs) for a, b in zip(mine, keras)]
        figures.update(
            num_examples=len(eval_set.examples),
            num_words=len(same),
            agreement=float(np.mean(same)) if same else 1.0,
            num_disagreements=int(len(same) - sum(same)),
        )
        gold = [sentence.tags for sentence in eval_set.examples]
        if all(tags is not None for tags in gold) and gold:
            figures["entity_f1"] = token_classification.entity_metrics(gold, ours)["f1"]
            figures["keras_entity_f1"] = token_classification.entity_metrics(gold, theirs)["f1"]
        return figures

    def metadata_labels(self, info):
        return info.labels


class TextEmbeddingParity(TaskParity):
    """Sentence embedders: `embedding` `(1, hidden_dim)`; agreement is the lowest cosine
    similarity with the Keras embedding over the texts of a TSV (`--eval`) or built-in ones."""

    task = "text_embedding"
    metadata_kind = "embedder"
    output_names = ("embedding",)
    agreement_name = "min cosine"
    string_input = True
    columns = (("mean_cosine", "mean cosine"),)

    def read(self, info, path=None, limit=None):
        texts = read_sentences(path, info, limit) if path else list(DEFAULT_TEXTS)[:limit]
        return EvalSet(
            source=os.path.abspath(path) if path else "built-in texts", num_examples=len(texts),
            inputs=info.preprocessor.pack_numpy(texts, None), texts=texts,
        )

    def compare(self, outputs, reference, eval_set, info):
        ours = np.asarray(outputs["embedding"], np.float64)
        theirs = np.asarray(reference["embedding"], np.float64)
        figures = _differences([ours], [theirs])
        cosines = cosine_similarities(ours, theirs)
        figures.update(
            num_examples=len(cosines),
            agreement=float(cosines.min()) if cosines.size else 1.0,
            min_cosine=float(cosines.min()) if cosines.size else 1.0,
            mean_cosine=float(cosines.mean()) if cosines.size else 1.0,
            min_cosine_example=int(np.argmin(cosines)) if cosines.size else 0,
        )
        return figures


def cosine_similarities(a, b):
    """Row-wise cosine similarity `(N,)` of float arrays `(N, D)` (0 for a zero row)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.sum(a * b, axis=1) / np.maximum(norms, np.finfo(np.float64).tiny)


def read_sentences(path, info, limit=None):
    """The texts of a TSV with a header row: the model directory's `text_column` if the header
    has it, else `sentence`, else `text`, else the first column."""
    columns = classification.read_columns(path, "tsv")
    preferred = [info.text_column, "sentence", "text", columns[0] if columns else None]
    column = next((name for name in preferred if name and name in columns), None)
    if column is None:
        raise ValueError(f"{path} has no columns.")
    examples = classification.read_examples(path, column, None, "label", input_format="tsv",
                                            require_labels=False)
    return list(examples.texts[:limit])


# The exported tasks: name (as `label_map.json` spells it) -> how its files are checked.
TASK_PARITY = {
    parity.task: parity
    for parity in (ClassificationParity(), QuestionAnsweringParity(),
                   TokenClassificationParity(), TextEmbeddingParity())
}


def task_parity(info):
    """The `TaskParity` of a model directory's task.

    Raises:
        ValueError: naming `label_map.json` and the task when its files are not exported.
    """
    if info.task not in TASK_PARITY:
        raise ValueError(
            f"{os.path.join(info.path, LABEL_MAP_FILE)}: task {info.task!r} is not exported "
            f"to .tflite; the exported tasks are {sorted(TASK_PARITY)}."
        )
    return TASK_PARITY[info.task]


def write_bytes(path, content):
    """Writes `content` to `path` atomically, readable by all (like a normal file)."""
    with atomic_file(path) as temporary:
        with open(temporary, "wb") as f:
            f.write(content)


def write_json(path, content):
    """Writes `content` as indented JSON, atomically."""
    atomic.write_json(path, content, indent=2, sort_keys=False, default=_json_default)


def write_text(path, text):
    """Writes `text` to `path` atomically."""
    with atomic_file(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Cannot write {type(value).__name__} as JSON.")
