"""The fine-tuned model directory: what `training.finetune` writes, read back in one call.

Layout of a model directory (a contract: export and serving code read it):

    model.keras            the task model (`BertClassifier`, `BertSpanLabeler` or
                           `BertTokenClassifier`), float32 compute, no optimizer;
                           inputs: dict of int32 `token_ids`, `segment_ids`,
                           `padding_mask`, each `(batch_size, sequence_length)`.
    label_map.json         {"task": "classification", "labels": ["0", "1"],
                           "regression": false}; token_classification: the tag
                           names in index order; qa: {"task": "qa"}.
    tokenizer/vocab.txt    the WordPiece vocabulary, and
    tokenizer/tokenizer_config.json   {"do_lower_case": true, ...}: enough for
                           `keras_bert.load_tokenizer(dir + "/tokenizer")` to
                           reproduce the training tokenization exactly.
    finetune_config.json   what inference needs: task, max_seq_length,
                           text_column, pair_column, label_column, init, ...
    metrics.json           evaluation results.

Example:
>>> from keras_bert.models import load_model_dir
>>> model_dir = load_model_dir("/tmp/sst2_model")
>>> inputs = model_dir.tokenizer.pack(["a fine film"], max_length=model_dir.max_seq_length)
>>> logits = model_dir.model(inputs)            # (1, len(model_dir.labels))
"""

import dataclasses
import json
import os

from keras_bert.utils.atomic import atomic_file

MODEL_FILE = "model.keras"
LABEL_MAP_FILE = "label_map.json"
TOKENIZER_DIR = "tokenizer"
VOCABULARY_FILE = "vocab.txt"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
FINETUNE_CONFIG_FILE = "finetune_config.json"
METRICS_FILE = "metrics.json"

TASKS = ("classification", "qa", "token_classification")


@dataclasses.dataclass
class ModelDir:
    """A model directory read by `load_model_dir`.

    Attributes:
        path: str. The directory.
        model: the task `keras.Model`, or `None` when not loaded.
        tokenizer: `keras_bert.text.BertTokenizer`.
        label_map: dict. The contents of `label_map.json`.
        config: dict. The contents of `finetune_config.json`.
    """

    path: str
    model: object
    tokenizer: object
    label_map: dict
    config: dict

    @property
    def task(self):
        """`"classification"`, `"qa"` or `"token_classification"`."""
        return self.label_map["task"]

    @property
    def labels(self):
        """Class or tag names in index order (empty for qa and regression)."""
        return list(self.label_map.get("labels", []))

    @property
    def regression(self):
        return bool(self.label_map.get("regression", False))

    @property
    def max_seq_length(self):
        return int(self.config["max_seq_length"])


def load_model_dir(path, load_model=True):
    """Reads a model directory written by `training.finetune`.

    Args:
        path: str. The model directory.
        load_model: bool. Whether to load `model.keras` (with
            `safe_mode=True`). Defaults to `True`.

    Returns:
        A `ModelDir`.

    Raises:
        ValueError: a file is missing or malformed, or the label map does not
            fit the model's output size.
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise ValueError(f"`path` ({path!r}) is not a directory.")
    label_map = read_label_map(path)
    config = read_json(os.path.join(path, FINETUNE_CONFIG_FILE))
    for key in ("task", "max_seq_length"):
        if key not in config:
            raise ValueError(f"{os.path.join(path, FINETUNE_CONFIG_FILE)} has no {key!r}.")
    if config["task"] != label_map["task"]:
        raise ValueError(
            f"{path}: {FINETUNE_CONFIG_FILE} says task {config['task']!r} but "
            f"{LABEL_MAP_FILE} says {label_map['task']!r}."
        )
    tokenizer = load_tokenizer_assets(os.path.join(path, TOKENIZER_DIR))
    model = None
    if load_model:
        model = _load_task_model(os.path.join(path, MODEL_FILE))
        _check_model_fits_labels(model, label_map, path)
    return ModelDir(path=path, model=model, tokenizer=tokenizer, label_map=label_map, config=config)


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
    with atomic_file(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as json_file:
            json.dump(value, json_file, indent=2, sort_keys=True, ensure_ascii=False)
            json_file.write("\n")


def read_label_map(path):
    """The validated contents of `label_map.json` in model directory `path`."""
    file_path = os.path.join(path, LABEL_MAP_FILE)
    label_map = read_json(file_path)
    task = label_map.get("task")
    if task not in TASKS:
        raise ValueError(f"{file_path}: `task` must be one of {TASKS}, found {task!r}.")
    if task != "qa":
        labels = label_map.get("labels")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ValueError(f"{file_path}: `labels` must be a list of strings.")
        if len(set(labels)) != len(labels):
            raise ValueError(f"{file_path}: `labels` has duplicates: {labels}.")
    return label_map


def make_label_map(task, labels=None, regression=False):
    """The `label_map.json` contents for a task.

    Args:
        task: str. One of `TASKS`.
        labels: list of str. Class names (classification) or tags
            (token_classification) in index order; empty for regression.
        regression: bool. Classification with one real-valued output.
    """
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {TASKS}, received {task!r}.")
    if task == "qa":
        return {"task": "qa"}
    labels = [str(label) for label in (labels or [])]
    if not regression and not labels:
        raise ValueError(f"`labels` must not be empty for task {task!r}.")
    label_map = {"task": task, "labels": labels}
    if task == "classification":
        label_map["regression"] = bool(regression)
    return label_map


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


def _load_task_model(path):
    import keras_bert.models  # noqa: F401  (registers the task model classes)

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


def _check_model_fits_labels(model, label_map, path):
    task = label_map["task"]
    if task == "qa":
        return
    num_outputs = int(model.num_classes)
    expected = 1 if label_map.get("regression") else len(label_map["labels"])
    if num_outputs != expected:
        raise ValueError(
            f"{path}: the model has {num_outputs} outputs but {LABEL_MAP_FILE} "
            f"implies {expected}."
        )
