"""Import of Google's original TF1 BERT checkpoints.

A directory with `bert_config.json` and `bert_model.ckpt.{index,data-*}`,
variable names as in google-research/bert (`bert/encoder/layer_0/...`).
"""

import glob
import json
import os

import numpy as np

from keras_bert.checkpoints.huggingface import _encoder_config
from keras_bert.checkpoints.weight_layout import CheckpointError

CONFIG_FILE = "bert_config.json"


def name_map(num_layers):
    """Encoder weight path -> (layout, Google variable names)."""
    table = {
        "embeddings/token_embedding": ("same", ["bert/embeddings/word_embeddings"]),
        "embeddings/segment_embedding": ("same", ["bert/embeddings/token_type_embeddings"]),
        "embeddings/position_embeddings": ("same", ["bert/embeddings/position_embeddings"]),
        "embeddings/embeddings_layer_norm/gamma": ("same", ["bert/embeddings/LayerNorm/gamma"]),
        "embeddings/embeddings_layer_norm/beta": ("same", ["bert/embeddings/LayerNorm/beta"]),
        "pooler_dense/kernel": ("same", ["bert/pooler/dense/kernel"]),
        "pooler_dense/bias": ("same", ["bert/pooler/dense/bias"]),
    }
    for i in range(num_layers):
        ours = f"transformer_layer_{i}"
        theirs = f"bert/encoder/layer_{i}"
        attention = f"{theirs}/attention"
        table.update(
            {
                f"{ours}/self_attention_layer/output_kernel": (
                    "heads_output_kernel",
                    [f"{attention}/output/dense/kernel"],
                ),
                f"{ours}/self_attention_layer/output_bias": (
                    "same",
                    [f"{attention}/output/dense/bias"],
                ),
                f"{ours}/self_attention_layer_norm/gamma": (
                    "same",
                    [f"{attention}/output/LayerNorm/gamma"],
                ),
                f"{ours}/self_attention_layer_norm/beta": (
                    "same",
                    [f"{attention}/output/LayerNorm/beta"],
                ),
                f"{ours}/feedforward_intermediate_dense/kernel": (
                    "same",
                    [f"{theirs}/intermediate/dense/kernel"],
                ),
                f"{ours}/feedforward_intermediate_dense/bias": (
                    "same",
                    [f"{theirs}/intermediate/dense/bias"],
                ),
                f"{ours}/feedforward_output_dense/kernel": ("same", [f"{theirs}/output/dense/kernel"]),
                f"{ours}/feedforward_output_dense/bias": ("same", [f"{theirs}/output/dense/bias"]),
                f"{ours}/feedforward_layer_norm/gamma": ("same", [f"{theirs}/output/LayerNorm/gamma"]),
                f"{ours}/feedforward_layer_norm/beta": ("same", [f"{theirs}/output/LayerNorm/beta"]),
            }
        )
        for projection in ("query", "key", "value"):
            table[f"{ours}/self_attention_layer/{projection}_kernel"] = (
                "heads_kernel",
                [f"{attention}/self/{projection}/kernel"],
            )
            table[f"{ours}/self_attention_layer/{projection}_bias"] = (
                "heads_bias",
                [f"{attention}/self/{projection}/bias"],
            )
    return table


# Pretraining heads: our head weight name -> Google variable name.
HEAD_NAME_MAP = {
    "mlm_transform_dense/kernel": "cls/predictions/transform/dense/kernel",
    "mlm_transform_dense/bias": "cls/predictions/transform/dense/bias",
    "mlm_layer_norm/gamma": "cls/predictions/transform/LayerNorm/gamma",
    "mlm_layer_norm/beta": "cls/predictions/transform/LayerNorm/beta",
    "mlm_output_bias": "cls/predictions/output_bias",
    # Stored as (2, hidden_dim); transposed to a (hidden_dim, 2) kernel.
    "nsp_dense/kernel": "cls/seq_relationship/output_weights",
    "nsp_dense/bias": "cls/seq_relationship/output_bias",
}


def checkpoint_prefix(path):
    """The `bert_model.ckpt`-style prefix inside directory `path`, or None."""
    preferred = os.path.join(path, "bert_model.ckpt")
    if os.path.isfile(preferred + ".index"):
        return preferred
    indexes = sorted(glob.glob(os.path.join(path, "*.index")))
    if len(indexes) == 1:
        return indexes[0][: -len(".index")]
    return None


def is_checkpoint(path):
    return os.path.isfile(os.path.join(path, CONFIG_FILE)) and checkpoint_prefix(path) is not None


def read_config(path):
    """Reads `bert_config.json` into `BertEncoder` constructor arguments."""
    config_path = os.path.join(path, CONFIG_FILE)
    try:
        with open(config_path, encoding="utf-8") as f:
            source = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"Cannot read {config_path}: {error}") from error
    if not isinstance(source, dict):
        raise CheckpointError(f"{config_path} must hold a JSON object.")
    # google-research/bert hard-codes the layer norm epsilon to 1e-12.
    return _encoder_config(source, config_path, layer_norm_key="layer_norm_eps")


class TensorReader:
    """Reads variables from a TF1 checkpoint; kernels are already `(input, output)`."""

    def __init__(self, path):
        import tensorflow as tf

        prefix = checkpoint_prefix(path)
        if prefix is None:
            raise CheckpointError(f"{path} holds no TensorFlow checkpoint (*.index file).")
        try:
            self._reader = tf.train.load_checkpoint(prefix)
            self._shapes = self._reader.get_variable_to_shape_map()
        except (tf.errors.OpError, ValueError) as error:
            raise CheckpointError(
                f"{prefix} is not a readable TensorFlow checkpoint: {error}"
            ) from error
        self.path = prefix

    def names(self):
        return set(self._shapes)

    def read(self, name):
        import tensorflow as tf

        if name not in self._shapes:
            return None
        try:
            return self._reader.get_tensor(name)
        # A truncated data file surfaces as IndexError or a TF OpError.
        except (tf.errors.OpError, IndexError, ValueError) as error:
            raise CheckpointError(
                f"Cannot read variable {name!r} from {self.path} (truncated or "
                f"corrupted checkpoint?): {error}"
            ) from error

    def read_heads(self):
        heads = {}
        for ours, theirs in HEAD_NAME_MAP.items():
            array = self.read(theirs)
            if array is not None:
                if ours == "nsp_dense/kernel":
                    array = np.transpose(array)
                heads[ours] = array
        return heads
