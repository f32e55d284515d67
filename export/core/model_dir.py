"""Reads the model directory that `training.finetune` writes, for the exporters.

The layout (the contract between fine-tuning and export) is read and checked by the library's
`keras_bert.models.load_model_dir`; this module adds what exporting needs on top of it: the
columns of the evaluation files, the vocabulary file and its SHA-256, and a check that the task
is one the exporters handle (sentence or pair classification, or regression).

    DIR/model.keras                       a `keras_bert.models.BertClassifier`
    DIR/label_map.json                    {"task": "classification", "labels", "regression"}
    DIR/tokenizer/vocab.txt               the WordPiece vocabulary
    DIR/tokenizer/tokenizer_config.json   {"do_lower_case": true, ...}
    DIR/finetune_config.json              {"task", "max_seq_length", "text_column",
                                           "pair_column", "label_column", "init", ...}
    DIR/metrics.json
"""

import dataclasses
import hashlib
import os

from keras_bert.models import model_dir as library_model_dir

MODEL_FILE = library_model_dir.MODEL_FILE
TOKENIZER_DIR = library_model_dir.TOKENIZER_DIR
VOCABULARY_FILE = os.path.join(TOKENIZER_DIR, library_model_dir.VOCABULARY_FILE)
FINETUNE_CONFIG_FILE = library_model_dir.FINETUNE_CONFIG_FILE
LABEL_MAP_FILE = library_model_dir.LABEL_MAP_FILE


@dataclasses.dataclass(frozen=True)
class ModelDir:
    """What the exporters need from a fine-tuned model directory.

    Attributes:
        path: str. The directory (absolute).
        labels: list of str. Class names, index = class id (empty for regression).
        regression: bool. Whether the model regresses one value instead of classifying.
        task: str. `label_map.json`'s task (`"classification"`).
        max_seq_length: int. Packed length used in fine-tuning; the exporters' maximum.
        text_column: str. The TSV column of the first text.
        pair_column: str or None. The TSV column of the second text, for pair tasks.
        label_column: str. The TSV column of the label.
        lower_case: bool. The tokenizer's lower-casing.
        vocabulary_path: str. `tokenizer/vocab.txt`.
        vocabulary_sha256: str. Hex SHA-256 of the vocabulary file's bytes.
        tokenizer: `keras_bert.text.BertTokenizer`, with the saved settings.
    """

    path: str
    labels: list
    regression: bool
    task: str
    max_seq_length: int
    text_column: str
    pair_column: object
    label_column: str
    lower_case: bool
    vocabulary_path: str
    vocabulary_sha256: str
    tokenizer: object = dataclasses.field(repr=False, compare=False)

    @property
    def model_path(self):
        return os.path.join(self.path, MODEL_FILE)

    @property
    def tokenizer_path(self):
        return os.path.join(self.path, TOKENIZER_DIR)

    @property
    def is_pair_task(self):
        return self.pair_column is not None

    @property
    def num_outputs(self):
        return 1 if self.regression else len(self.labels)

    def load_model(self):
        """The `BertClassifier`, loaded with `safe_mode=True`, checked against the labels."""
        # `keras_bert.models` alone does not register `BertEncoder`, which the saved
        # classifier's config names: import it too.
        # pylint: disable=import-outside-toplevel,unused-import
        import keras_bert.bert_encoder  # noqa: F401
        import keras_bert.models  # noqa: F401

        from keras_bert.models.model_dir import load_keras_file

        model = load_keras_file(self.model_path)
        names = sorted(model.inputs) if isinstance(model.inputs, dict) else sorted(
            tensor.name.split(":")[0] for tensor in model.inputs)
        expected = sorted(("token_ids", "segment_ids", "padding_mask"))
        if names != expected:
            raise ValueError(f"{self.model_path} takes inputs {names}; expected {expected}.")
        outputs = int(model.outputs[0].shape[-1])
        if outputs != self.num_outputs:
            raise ValueError(
                f"{self.model_path} has {outputs} outputs but {LABEL_MAP_FILE} implies "
                f"{self.num_outputs}."
            )
        return model

    def load_tokenizer(self):
        """The tokenizer of `tokenizer/` (read once, with its saved settings)."""
        return self.tokenizer


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_model_dir(path):
    """Reads and checks a fine-tuned model directory (the model itself loads on demand).

    Args:
        path: str. The `--model_dir` written by `training.finetune`.

    Returns:
        A `ModelDir`.

    Raises:
        ValueError: naming the missing or malformed file or field, or a task the exporters do
            not handle.
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.isdir(path):
        raise ValueError(f"`model_dir` ({path!r}) is not a directory.")
    for name in (MODEL_FILE, VOCABULARY_FILE):
        if not os.path.isfile(os.path.join(path, name)):
            raise ValueError(f"Model directory file {os.path.join(path, name)} is missing.")
    loaded = library_model_dir.load_model_dir(path, load_model=False)
    config_path = os.path.join(path, FINETUNE_CONFIG_FILE)
    if loaded.task != "classification":
        raise ValueError(
            f"{os.path.join(path, LABEL_MAP_FILE)}: task {loaded.task!r} is not exported; the "
            "exporters handle `classification` (sentences, pairs, regression)."
        )
    if not loaded.regression and not loaded.labels:
        raise ValueError(
            f"`labels` in {os.path.join(path, LABEL_MAP_FILE)} must be a non-empty list of "
            f"strings, found {loaded.labels!r}."
        )
    max_seq_length = loaded.config["max_seq_length"]
    if isinstance(max_seq_length, bool) or not isinstance(max_seq_length, int) or (
            max_seq_length < 3):
        raise ValueError(
            f"`max_seq_length` in {config_path} must be an int >= 3, found {max_seq_length!r}."
        )
    if "text_column" not in loaded.config:
        raise ValueError(f"{config_path} has no 'text_column'.")
    vocabulary_path = os.path.join(path, VOCABULARY_FILE)
    return ModelDir(
        path=path,
        labels=loaded.labels,
        regression=loaded.regression,
        task=loaded.task,
        max_seq_length=max_seq_length,
        text_column=loaded.config["text_column"],
        pair_column=loaded.config.get("pair_column"),
        label_column=loaded.config.get("label_column", "label"),
        lower_case=bool(loaded.tokenizer.lower_case),
        vocabulary_path=vocabulary_path,
        vocabulary_sha256=file_sha256(vocabulary_path),
        tokenizer=loaded.tokenizer,
    )
