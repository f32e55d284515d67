"""The fine-tuned model directory: what `training.finetune` writes, read back in one call.

This module is the only reader and writer of the layout; `training.finetune`, `training.predict`
and the exporters all go through it. The layout (a contract: export and serving code read it):

    model.keras            the task model (`BertClassifier`, `BertSpanLabeler`,
                           `BertTokenClassifier` or `BertTextEmbedder`), float32
                           compute, no optimizer;
                           inputs: dict of int32 `token_ids`, `segment_ids`,
                           `padding_mask`, each `(batch_size, sequence_length)`.
    label_map.json         {"task": "classification", "labels": ["0", "1"],
                           "regression": false}; token_classification: the tag
                           names in index order; qa and text_embedding (tasks
                           without labels): {"task": "qa"}.
    tokenizer/vocab.txt    the WordPiece vocabulary, and
    tokenizer/tokenizer_config.json   {"do_lower_case": true, ...}: enough for
                           `keras_bert.load_tokenizer(dir + "/tokenizer")` to
                           reproduce the training tokenization exactly.
    finetune_config.json   what inference needs: task, max_seq_length (the packed
                           length, `ModelDir.sequence_length`), text_column,
                           pair_column, label_column, init, ...
    metrics.json           evaluation results.

The task's preprocessor (the one road from text to the model's inputs) is not a file: it is
built from `tokenizer/` and `finetune_config.json` (`ModelDir.preprocessor`).

Example:
>>> from keras_bert.models import load_model_dir
>>> model_dir = load_model_dir("/tmp/sst2_model")
>>> inputs = model_dir.preprocessor(["a fine film"])
>>> logits = model_dir.model(inputs)            # (1, len(model_dir.labels))
"""

import dataclasses
import functools
import hashlib
import json
import os

from keras_bert.inputs import INPUT_NAMES
from keras_bert.utils import atomic
from keras_bert.utils.atomic import atomic_file
from keras_bert.utils import deprecation

MODEL_FILE = "model.keras"
LABEL_MAP_FILE = "label_map.json"
TOKENIZER_DIR = "tokenizer"
VOCABULARY_FILE = "vocab.txt"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
FINETUNE_CONFIG_FILE = "finetune_config.json"
METRICS_FILE = "metrics.json"
# `finetune_config.json`'s key of the packed length (the file format keeps its first name).
SEQUENCE_LENGTH_KEY = "max_seq_length"

def _task_names():
    """The registered task names (`keras_bert.tasks.TASKS`): the model directory is where a
    model meets its task, the one place under `keras_bert/models` that reads the registry."""
    from keras_bert.tasks import TASKS  # pylint: disable=import-outside-toplevel

    return tuple(TASKS)


def _has_labels(task):
    """Whether the registered `task` names classes or tags in `label_map.json` (its `Task`'s
    `has_labels`; QA and text embeddings do not)."""
    from keras_bert.tasks import TASKS  # pylint: disable=import-outside-toplevel

    return TASKS[task].has_labels


@dataclasses.dataclass
class ModelDir:
    """A model directory read by `load_model_dir`.

    Attributes:
        path: str. The directory (absolute).
        model: the task `keras.Model`, or `None` until `load_model()` (or
            `load_model_dir(..., load_model=True)`) loads it.
        tokenizer: `keras_bert.text.BertTokenizer`, with the saved settings.
        label_map: dict. The contents of `label_map.json`.
        config: dict. The contents of `finetune_config.json`.
    """

    path: str
    model: object
    tokenizer: object
    label_map: dict
    config: dict

    # === What the files say ===

    @property
    def task(self):
        """The task name: `"classification"`, `"qa"`, `"token_classification"` or
        `"text_embedding"` (a name in `keras_bert.tasks.TASKS`)."""
        return self.label_map["task"]

    @property
    def labels(self):
        """Class or tag names in index order (empty for qa and regression)."""
        return list(self.label_map.get("labels", []))

    @property
    def regression(self):
        """Whether the classifier regresses one value instead of classifying."""
        return bool(self.label_map.get("regression", False))

    @property
    def num_outputs(self):
        """Outputs of the classifier's head: 1 for regression, else one per label."""
        return 1 if self.regression else len(self.labels)

    @property
    def sequence_length(self):
        """int. The packed length of fine-tuning: the longest sequence the model is fed."""
        return int(self.config[SEQUENCE_LENGTH_KEY])

    @property
    def max_seq_length(self):
        """Deprecated name of `sequence_length` (the key of `finetune_config.json`)."""
        deprecation.warn_renamed("ModelDir.max_seq_length", "sequence_length")
        return self.sequence_length

    @property
    def text_column(self):
        """str. The column (or JSON key) of the (first) text in the data files."""
        return self.config.get("text_column")

    @property
    def pair_column(self):
        """str or None. The column of the second text, for pair tasks."""
        return self.config.get("pair_column")

    @property
    def label_column(self):
        """str. The column of the label."""
        return self.config.get("label_column", "label")

    @property
    def is_pair_task(self):
        """Whether examples are text pairs (`pair_column` is set)."""
        return bool(self.pair_column)

    @property
    def lower_case(self):
        """bool. The tokenizer's lower-casing."""
        return bool(self.tokenizer.lower_case)

    # === Files ===

    @property
    def model_path(self):
        return os.path.join(self.path, MODEL_FILE)

    @property
    def tokenizer_path(self):
        return os.path.join(self.path, TOKENIZER_DIR)

    @property
    def vocabulary_path(self):
        """str. `tokenizer/vocab.txt`."""
        return os.path.join(self.path, TOKENIZER_DIR, VOCABULARY_FILE)

    @property
    def vocabulary_sha256(self):
        """str. Hex SHA-256 of the vocabulary file's bytes."""
        return file_sha256(self.vocabulary_path)

    # === What is built from them ===

    @functools.cached_property
    def preprocessor(self):
        """The task's preprocessor: text in, the model's dict of `INPUT_NAMES` out.

        Built from the saved tokenizer and `finetune_config.json`, so it packs exactly as
        fine-tuning did (classification: `keras_bert.text.TextClassifierPreprocessor`).
        """
        return self.load_task().build_preprocessor(self.tokenizer)

    def load_task(self):
        """The `keras_bert.tasks.Task` this model was fine-tuned for, with its saved settings
        (`finetune_config.json`): it packs, predicts and serves as fine-tuning did."""
        from keras_bert.tasks import get_task  # pylint: disable=import-outside-toplevel

        return get_task(self.task).from_settings(self.config)

    def load_model(self):
        """The task model, loaded once with `safe_mode=True` and checked against the files.

        Raises:
            ValueError: naming `model.keras` when it cannot be loaded, does not take the
                `INPUT_NAMES`, or has another number of outputs than the labels imply.
        """
        if self.model is None:
            model = _load_task_model(self.model_path)
            _check_model(model, self.label_map, self.path)
            self.model = model
        return self.model


def load_model_dir(model_dir, load_model=True):
    """Reads and checks a model directory written by `training.finetune`.

    Args:
        model_dir: str. The model directory.
        load_model: bool. Whether to load `model.keras` now (with `safe_mode=True`); else
            `ModelDir.load_model()` loads it when needed. Defaults to `True`.

    Returns:
        A `ModelDir`.

    Raises:
        ValueError: naming the directory when it is none, or the missing or malformed file or
            field, or when the label map does not fit the model's output size.
    """
    path = os.path.abspath(os.fspath(model_dir))
    if not os.path.isdir(path):
        raise ValueError(f"`model_dir` ({path!r}) is not a directory.")
    for name in (MODEL_FILE, os.path.join(TOKENIZER_DIR, VOCABULARY_FILE)):
        if not os.path.isfile(os.path.join(path, name)):
            raise ValueError(f"Model directory file {os.path.join(path, name)} is missing.")
    label_map = read_label_map(path)
    config = read_finetune_config(path)
    if config["task"] != label_map["task"]:
        raise ValueError(
            f"{path}: {FINETUNE_CONFIG_FILE} says task {config['task']!r} but "
            f"{LABEL_MAP_FILE} says {label_map['task']!r}."
        )
    tokenizer = load_tokenizer_assets(os.path.join(path, TOKENIZER_DIR))
    loaded = ModelDir(path=path, model=None, tokenizer=tokenizer, label_map=label_map,
                      config=config)
    if load_model:
        loaded.load_model()
    return loaded


def read_json(path):
    """A JSON object from `path`; `ValueError` naming the file when it is not one."""
    try:
        with open(path, encoding="utf-8") as json_file:
            value = json.load(json_file)
    except FileNotFoundError as error:
        raise ValueError(f"Missing file {path}.") from error
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}: invalid JSON: {error.msg}.") from error
    if not isinstance(value, dict):
        raise ValueError(f"{path} must hold a JSON object, found {type(value).__name__}.")
    return value


def write_json(path, value):
    """Writes `value` as indented JSON, atomically (temporary file + rename)."""
    atomic.write_json(path, value, indent=2, sort_keys=True, ensure_ascii=False)


def read_label_map(path):
    """The validated contents of `label_map.json` in model directory `path`."""
    file_path = os.path.join(path, LABEL_MAP_FILE)
    label_map = read_json(file_path)
    task = label_map.get("task")
    if task not in _task_names():
        raise ValueError(f"{file_path}: `task` must be one of {_task_names()}, found {task!r}.")
    if _has_labels(task):
        labels = label_map.get("labels")
        if (
            not isinstance(labels, list)
            or not all(isinstance(x, str) for x in labels)
            or (not labels and not label_map.get("regression"))
        ):
            raise ValueError(
                f"`labels` in {file_path} must be a non-empty list of strings, found "
                f"{labels!r}."
            )
        if len(set(labels)) != len(labels):
            raise ValueError(f"{file_path}: `labels` has duplicates: {labels}.")
    return label_map


def read_finetune_config(path):
    """The validated contents of `finetune_config.json` in model directory `path`."""
    file_path = os.path.join(path, FINETUNE_CONFIG_FILE)
    config = read_json(file_path)
    for key in ("task", SEQUENCE_LENGTH_KEY):
        if key not in config:
            raise ValueError(f"{file_path} has no {key!r}.")
    sequence_length = config[SEQUENCE_LENGTH_KEY]
    if (isinstance(sequence_length, bool) or not isinstance(sequence_length, int)
            or sequence_length < 3):
        raise ValueError(
            f"`{SEQUENCE_LENGTH_KEY}` in {file_path} must be an int >= 3, found "
            f"{sequence_length!r}."
        )
    if config["task"] == "classification" and "text_column" not in config:
        raise ValueError(f"{file_path} has no 'text_column'.")
    return config


def make_label_map(task, labels=None, regression=False):
    """The `label_map.json` contents for a task.

    Args:
        task: str. A registered task name (`keras_bert.tasks.TASKS`).
        labels: list of str. Class names (classification) or tags
            (token_classification) in index order; empty for regression.
        regression: bool. Classification with one real-valued output.
    """
    if task not in _task_names():
        raise ValueError(f"`task` must be one of {_task_names()}, received {task!r}.")
    if not _has_labels(task):
        return {"task": task}
    labels = [str(label) for label in (labels or [])]
    if not regression and not labels:
        raise ValueError(f"`labels` must not be empty for task {task!r}.")
    label_map = {"task": task, "labels": labels}
    if task == "classification":
        label_map["regression"] = bool(regression)
    return label_map


def write_assets(directory, task, labels, tokenizer, config, regression=False):
    """Writes everything of a model directory but the model and the metrics.

    Args:
        directory: str. The model directory (created if missing).
        task: str. A registered task name (`keras_bert.tasks.TASKS`).
        labels: list of str. See `make_label_map`.
        tokenizer: `keras_bert.text.BertTokenizer`. Saved to `tokenizer/`.
        config: dict. The contents of `finetune_config.json`: `task`, `max_seq_length`
            (the packed length) and the task's inference settings.
        regression: bool. Classification with one real-valued output.
    """
    os.makedirs(directory, exist_ok=True)
    write_json(os.path.join(directory, LABEL_MAP_FILE), make_label_map(task, labels, regression))
    save_tokenizer_assets(tokenizer, os.path.join(directory, TOKENIZER_DIR))
    write_json(os.path.join(directory, FINETUNE_CONFIG_FILE), config)


def save_tokenizer_assets(tokenizer, directory):
    """Writes `vocab.txt` and `tokenizer_config.json` for `load_tokenizer(directory)`."""
    os.makedirs(directory, exist_ok=True)
    with atomic_file(os.path.join(directory, VOCABULARY_FILE)) as temporary:
        with open(temporary, "w", encoding="utf-8") as vocabulary_file:
            for token in tokenizer.get_vocabulary():
                vocabulary_file.write(token + "\n")
    write_json(
        os.path.join(directory, TOKENIZER_CONFIG_FILE),
        {
            "do_lower_case": tokenizer.lower_case,
            "unk_token": tokenizer.unknown_token,
            "max_input_chars_per_word": tokenizer.max_input_chars_per_word,
            "match_special_tokens": tokenizer.match_special_tokens,
            "tokenizer_class": "keras_bert.text.BertTokenizer",
        },
    )


def load_tokenizer_assets(directory):
    """The `BertTokenizer` saved by `save_tokenizer_assets`, settings included."""
    from keras_bert.text import load_tokenizer

    config = read_json(os.path.join(directory, TOKENIZER_CONFIG_FILE))
    kwargs = {}
    if "unk_token" in config:
        kwargs["unknown_token"] = config["unk_token"]
    for key in ("max_input_chars_per_word", "match_special_tokens"):
        if key in config:
            kwargs[key] = config[key]
    return load_tokenizer(directory, **kwargs)


def save_model(model, path):
    """Saves `model` as a `.keras` file atomically (temporary name + `os.replace`)."""
    with atomic_file(path, suffix=".keras") as temporary:
        model.save(temporary)


def file_sha256(path):
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_task_model(path):
    # The task model classes and the `BertEncoder` their configs name must be registered.
    import keras_bert.models  # noqa: F401  pylint: disable=import-outside-toplevel

    if not os.path.isfile(path):
        raise ValueError(f"Missing file {path}.")
    return load_keras_file(path)


def load_keras_file(path):
    """A `.keras` model loaded with `safe_mode=True` (no Python code runs), uncompiled.

    Raises:
        ValueError: naming `path` when it is not a loadable `.keras` archive
            (truncated, corrupted, or carrying code such as a `Lambda` layer).
    """
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises many types for a bad archive.
        raise ValueError(
            f"Cannot load Keras model file {path!r} (truncated or corrupted, or refused by "
            f"safe_mode): {type(error).__name__}: {error}"
        ) from error


def _input_names(model):
    if isinstance(model.inputs, dict):
        return sorted(model.inputs)
    return sorted(tensor.name.split(":")[0] for tensor in model.inputs)


def _check_model(model, label_map, path):
    """Raises `ValueError` unless `model` takes the `INPUT_NAMES` and fits the label map."""
    model_path = os.path.join(path, MODEL_FILE)
    names, expected_names = _input_names(model), sorted(INPUT_NAMES)
    if names != expected_names:
        raise ValueError(f"{model_path} takes inputs {names}; expected {expected_names}.")
    if not _has_labels(label_map["task"]):
        return
    num_outputs = int(model.num_classes)
    expected = 1 if label_map.get("regression") else len(label_map["labels"])
    if num_outputs != expected:
        raise ValueError(
            f"{path}: the model has {num_outputs} outputs but {LABEL_MAP_FILE} "
            f"implies {expected}."
        )
