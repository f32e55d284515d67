"""Import of Hugging Face BERT checkpoints (`config.json` + `model.safetensors`).

Only safetensors are read; PyTorch pickles (`pytorch_model.bin`) are refused,
because unpickling runs arbitrary code.
"""

import json
import os

import numpy as np

from keras_bert.checkpoints.weight_layout import CheckpointError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PICKLE_FILES = ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")

# Hugging Face `hidden_act` -> our `activation`.
_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "gelu_fast": "gelu_approximate",
    "relu": "relu",
}


def name_map(num_layers):
    """Encoder weight path -> (layout, Hugging Face tensor names), prefix-free."""
    table = {
        "embeddings/token_embedding": ("same", ["embeddings.word_embeddings.weight"]),
        "embeddings/segment_embedding": ("same", ["embeddings.token_type_embeddings.weight"]),
        "embeddings/position_embeddings": ("same", ["embeddings.position_embeddings.weight"]),
        "embeddings/embeddings_layer_norm/gamma": ("same", ["embeddings.LayerNorm.weight"]),
        "embeddings/embeddings_layer_norm/beta": ("same", ["embeddings.LayerNorm.bias"]),
        "pooler_dense/kernel": ("same", ["pooler.dense.weight"]),
        "pooler_dense/bias": ("same", ["pooler.dense.bias"]),
    }
    for i in range(num_layers):
        ours = f"transformer_layer_{i}"
        theirs = f"encoder.layer.{i}"
        attention = f"{theirs}.attention"
        table.update(
            {
                f"{ours}/self_attention_layer/output_kernel": (
                    "heads_output_kernel",
                    [f"{attention}.output.dense.weight"],
                ),
                f"{ours}/self_attention_layer/output_bias": (
                    "same",
                    [f"{attention}.output.dense.bias"],
                ),
                f"{ours}/self_attention_layer_norm/gamma": (
                    "same",
                    [f"{attention}.output.LayerNorm.weight"],
                ),
                f"{ours}/self_attention_layer_norm/beta": (
                    "same",
                    [f"{attention}.output.LayerNorm.bias"],
                ),
                f"{ours}/feedforward_intermediate_dense/kernel": (
                    "same",
                    [f"{theirs}.intermediate.dense.weight"],
                ),
                f"{ours}/feedforward_intermediate_dense/bias": (
                    "same",
                    [f"{theirs}.intermediate.dense.bias"],
                ),
                f"{ours}/feedforward_output_dense/kernel": ("same", [f"{theirs}.output.dense.weight"]),
                f"{ours}/feedforward_output_dense/bias": ("same", [f"{theirs}.output.dense.bias"]),
                f"{ours}/feedforward_layer_norm/gamma": ("same", [f"{theirs}.output.LayerNorm.weight"]),
                f"{ours}/feedforward_layer_norm/beta": ("same", [f"{theirs}.output.LayerNorm.bias"]),
            }
        )
        for projection in ("query", "key", "value"):
            table[f"{ours}/self_attention_layer/{projection}_kernel"] = (
                "heads_kernel",
                [f"{attention}.self.{projection}.weight"],
            )
            table[f"{ours}/self_attention_layer/{projection}_bias"] = (
                "heads_bias",
                [f"{attention}.self.{projection}.bias"],
            )
    return table


# Pretraining heads: our head weight name -> Hugging Face tensor name.
HEAD_NAME_MAP = {
    "mlm_transform_dense/kernel": "cls.predictions.transform.dense.weight",
    "mlm_transform_dense/bias": "cls.predictions.transform.dense.bias",
    "mlm_layer_norm/gamma": "cls.predictions.transform.LayerNorm.weight",
    "mlm_layer_norm/beta": "cls.predictions.transform.LayerNorm.bias",
    "mlm_output_bias": "cls.predictions.bias",
    "nsp_dense/kernel": "cls.seq_relationship.weight",
    "nsp_dense/bias": "cls.seq_relationship.bias",
}


def is_checkpoint(path):
    return os.path.isfile(os.path.join(path, CONFIG_FILE)) and (
        os.path.isfile(os.path.join(path, WEIGHTS_FILE))
        or any(os.path.isfile(os.path.join(path, f)) for f in PICKLE_FILES)
    )


def read_config(path):
    """Reads `config.json` into `BertEncoder` constructor arguments."""
    config_path = os.path.join(path, CONFIG_FILE)
    try:
        with open(config_path, encoding="utf-8") as f:
            hf_config = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"Cannot read {config_path}: {error}") from error
    if not isinstance(hf_config, dict):
        raise CheckpointError(f"{config_path} must hold a JSON object.")
    model_type = hf_config.get("model_type", "bert")
    if model_type != "bert":
        raise CheckpointError(
            f"{config_path} has `model_type` {model_type!r}; only 'bert' is supported."
        )
    position_type = hf_config.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise CheckpointError(
            f"{config_path} has `position_embedding_type` {position_type!r}; "
            "only 'absolute' is supported."
        )
    return _encoder_config(hf_config, config_path, layer_norm_key="layer_norm_eps")


def _encoder_config(source, config_path, layer_norm_key):
    """Converts BERT config keys (shared by HF and Google) to ours."""
    required = (
        "vocab_size",
        "num_hidden_layers",
        "num_attention_heads",
        "hidden_size",
        "intermediate_size",
    )
    missing = [key for key in required if key not in source]
    if missing:
        raise CheckpointError(f"{config_path} lacks required keys {missing}.")
    hidden_act = source.get("hidden_act", "gelu")
    if hidden_act not in _ACTIVATIONS:
        raise CheckpointError(
            f"{config_path} has `hidden_act` {hidden_act!r}; supported: {sorted(_ACTIVATIONS)}."
        )
    return {
        "vocabulary_size": source["vocab_size"],
        "num_layers": source["num_hidden_layers"],
        "num_heads": source["num_attention_heads"],
        "hidden_dim": source["hidden_size"],
        "intermediate_dim": source["intermediate_size"],
        "dropout": source.get("hidden_dropout_prob", 0.1),
        "attention_dropout": source.get("attention_probs_dropout_prob", 0.1),
        "max_sequence_length": source.get("max_position_embeddings", 512),
        "num_segments": source.get("type_vocab_size", 2),
        "activation": _ACTIVATIONS[hidden_act],
        "layer_norm_epsilon": source.get(layer_norm_key, 1e-12),
        "initializer_range": source.get("initializer_range", 0.02),
    }


class TensorReader:
    """Reads tensors from `model.safetensors`, kernels as `(input_dim, output_dim)`."""

    def __init__(self, path):
        weights_path = os.path.join(path, WEIGHTS_FILE)
        if not os.path.isfile(weights_path):
            pickles = [f for f in PICKLE_FILES if os.path.isfile(os.path.join(path, f))]
            raise CheckpointError(
                f"{path} has no {WEIGHTS_FILE} (found {pickles}). Pickled "
                "checkpoints are never loaded because unpickling can run "
                "arbitrary code; convert the weights to safetensors first."
            )
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            self._tensors = load_file(weights_path)
        except (SafetensorError, OSError, ValueError) as error:
            raise CheckpointError(
                f"{weights_path} is not a readable safetensors file: {error}"
            ) from error
        self.path = weights_path
        # BertForPreTraining and friends prefix the encoder with "bert.".
        self._prefix = ""
        if "bert.embeddings.word_embeddings.weight" in self._tensors:
            self._prefix = "bert."

    def names(self):
        return set(self._tensors)

    def read(self, name, prefixed=True):
        key = (self._prefix + name) if prefixed else name
        array = self._tensors.get(key)
        if array is None:
            return None
        # PyTorch `Linear` stores (output_dim, input_dim).
        if name.endswith(".weight") and array.ndim == 2 and "embeddings" not in name:
            array = array.T
        return array

    def read_heads(self):
        """Our head weight name -> array, for the heads present."""
        heads = {}
        for ours, theirs in HEAD_NAME_MAP.items():
            array = self.read(theirs, prefixed=False)
            if array is not None:
                heads[ours] = array
        return heads
