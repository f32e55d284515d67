"""Checkpoint import: Hugging Face, Google TF1, and keras_bert's own format.

`load_encoder(path)` detects the format from the files in `path`:

| files in `path`                                   | format            |
|---------------------------------------------------|-------------------|
| `config.json` + `model.safetensors`               | Hugging Face      |
| `bert_config.json` + `bert_model.ckpt.index/data` | Google TF1 BERT   |
| `encoder_config.json` + `encoder.weights.h5`      | keras_bert        |
| a `*.keras` file holding a `BertEncoder`          | Keras             |
"""

import dataclasses
import json
import os

from absl import logging

from keras_bert.checkpoints import google, huggingface
from keras_bert.checkpoints.weight_layout import CheckpointError, assign_weights
from keras_bert.utils.atomic import atomic_directory

NATIVE_CONFIG_FILE = "encoder_config.json"
NATIVE_WEIGHTS_FILE = "encoder.weights.h5"

__all__ = [
    "CheckpointError",
    "ImportedCheckpoint",
    "detect_format",
    "load_encoder",
    "read_checkpoint",
    "save_encoder",
]


@dataclasses.dataclass
class ImportedCheckpoint:
    """What `read_checkpoint` found.

    Attributes:
        format: string. `"huggingface"`, `"google"`, `"keras_bert"` or `"keras"`.
        encoder: the `BertEncoder` with the checkpoint's weights.
        head_weights: dict of pretraining head weight name (e.g.
            `"mlm_transform_dense/kernel"`, `"nsp_dense/bias"`) -> numpy array,
            kernels as `(input_dim, output_dim)`; empty when the checkpoint has
            no `cls/...` weights.
    """

    format: str
    encoder: object
    head_weights: dict


def detect_format(path):
    """Returns the checkpoint format of `path`, or raises `CheckpointError`."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"Checkpoint path {path!r} does not exist.")
    if os.path.isfile(path):
        if path.endswith(".keras"):
            return "keras"
        raise CheckpointError(
            f"{path!r} is a file, not a checkpoint: pass a directory holding a "
            "Hugging Face, Google or keras_bert checkpoint, or a `.keras` file."
        )
    if os.path.isfile(os.path.join(path, NATIVE_CONFIG_FILE)):
        return "keras_bert"
    if huggingface.is_checkpoint(path):
        return "huggingface"
    if google.is_checkpoint(path):
        return "google"
    raise CheckpointError(
        f"{path!r} is not a checkpoint directory: expected `config.json` + "
        "`model.safetensors` (Hugging Face), `bert_config.json` + "
        "`bert_model.ckpt.index` (Google), or `encoder_config.json` + "
        f"`encoder.weights.h5` (keras_bert); found {sorted(os.listdir(path))[:10]}."
    )


def read_checkpoint(path, **overrides):
    """Builds a `BertEncoder` from a checkpoint and reads its head weights.

    Args:
        path: string. A checkpoint directory or `.keras` file.
        **overrides: encoder arguments that do not change weight shapes, e.g.
            `dropout=0.0` or `dtype="mixed_bfloat16"`.

    Returns:
        An `ImportedCheckpoint`.
    """
    from keras_bert.bert_encoder import BertEncoder

    path = os.fspath(path)
    checkpoint_format = detect_format(path)
    if checkpoint_format == "keras":
        return ImportedCheckpoint("keras", _load_keras_file(path), {})
    if checkpoint_format == "keras_bert":
        return ImportedCheckpoint("keras_bert", _load_native(path, overrides), {})

    module = huggingface if checkpoint_format == "huggingface" else google
    config = module.read_config(path)
    config.update(overrides)
    reader = module.TensorReader(path)
    encoder = BertEncoder(**config)
    table = module.name_map(encoder.num_layers)
    assign_weights(encoder, table, reader.read, reader.path)
    head_weights = reader.read_heads()
    if head_weights:
        logging.info(
            "Read %d pretraining head weights (cls/...) from %s.", len(head_weights), path
        )
    else:
        logging.info("Checkpoint %s has no pretraining head weights (cls/...).", path)
    return ImportedCheckpoint(checkpoint_format, encoder, head_weights)


def load_encoder(path, **overrides):
    """Loads a `BertEncoder` from any supported checkpoint.

    Args:
        path: string. A Hugging Face directory (`config.json` +
            `model.safetensors`), a Google TF1 BERT directory
            (`bert_config.json` + `bert_model.ckpt.*`), a directory written by
            `save_encoder`, or a `.keras` file holding a `BertEncoder`.
        **overrides: encoder arguments that do not change weight shapes, e.g.
            `dropout=0.0`.

    Returns:
        A `BertEncoder`.

    Raises:
        CheckpointError (a `ValueError`): the path is not a checkpoint, a
            weight is missing, or a shape does not fit the config.
    """
    return read_checkpoint(path, **overrides).encoder


def save_encoder(encoder, path):
    """Writes `encoder` to directory `path` in the format `load_encoder` reads.

    The directory is written under a temporary name and renamed into place.
    """
    with atomic_directory(path) as temporary:
        encoder.save_weights(os.path.join(temporary, NATIVE_WEIGHTS_FILE))
        config = encoder.get_config()
        with open(os.path.join(temporary, NATIVE_CONFIG_FILE), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2, sort_keys=True)


def _load_native(path, overrides):
    from keras_bert.bert_encoder import BertEncoder

    config_path = os.path.join(path, NATIVE_CONFIG_FILE)
    weights_path = os.path.join(path, NATIVE_WEIGHTS_FILE)
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"Cannot read {config_path}: {error}") from error
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path} must hold a JSON object.")
    config.update(overrides)
    encoder = BertEncoder.from_config(config)
    if not os.path.isfile(weights_path):
        raise CheckpointError(f"{path} has {NATIVE_CONFIG_FILE} but no {NATIVE_WEIGHTS_FILE}.")
    try:
        encoder.load_weights(weights_path)
    except (OSError, ValueError, KeyError) as error:
        raise CheckpointError(f"Cannot load weights from {weights_path}: {error}") from error
    return encoder


def _load_keras_file(path):
    import keras

    from keras_bert.bert_encoder import BertEncoder

    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for a bad archive.
        raise CheckpointError(f"Cannot load Keras model file {path!r}: {error}") from error
    if not isinstance(model, BertEncoder):
        raise CheckpointError(
            f"{path!r} holds a {type(model).__name__}, not a BertEncoder."
        )
    return model
