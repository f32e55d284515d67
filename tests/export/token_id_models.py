"""Small token-id `.tflite` files for export tests, made the way the exporter will make them.

A two-block, two-head transformer classifier over a 1,000-token vocabulary, functional with
int32 inputs `token_ids`, `segment_ids`, `padding_mask` of shape `(None,)` (any length), saved
with `model.export` and converted with `tf.lite.TFLiteConverter.from_saved_model`: float32 and
dynamic-range int8.
"""

import os

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_bert.inputs import INPUT_NAMES

VOCABULARY_SIZE = 1000


def token_id_classifier(
    seed=0, vocabulary_size=VOCABULARY_SIZE, hidden_dim=128, num_heads=2, num_layers=2
):
    """A randomly initialised transformer classifier returning `{"logits": (batch_size, 2)}`.

    Built from `keras.layers` and `keras.ops` rather than `keras_bert.BertEncoder`, so that the
    check's tests do not depend on the library's own TFLite conversion: token and segment
    embeddings, `num_layers` post-LN blocks of multi-head self-attention with an additive
    padding mask and an exact-GELU feed-forward, a tanh pooler on the first token.
    `vocabulary_size=30522, hidden_dim=384, num_heads=12, num_layers=6` is MiniLM's shape.
    """
    keras.utils.set_random_seed(seed)
    head_dim = hidden_dim // num_heads
    inputs = {
        name: keras.Input(shape=(None,), dtype="int32", name=name)
        for name in INPUT_NAMES
    }
    x = keras.layers.Embedding(vocabulary_size, hidden_dim)(inputs["token_ids"])
    x = x + keras.layers.Embedding(2, hidden_dim)(inputs["segment_ids"])
    x = keras.layers.LayerNormalization()(x)
    # (batch_size, sequence_length) -> (batch_size, 1, 1, sequence_length): added to the scores.
    bias = (1.0 - ops.cast(inputs["padding_mask"], "float32")) * -10000.0
    mask_bias = ops.expand_dims(ops.expand_dims(bias, 1), 1)
    for _ in range(num_layers):
        # (batch_size, sequence_length, hidden_dim) -> (B, S, num_heads, head_dim)
        query, key, value = (
            keras.layers.Reshape((-1, num_heads, head_dim))(keras.layers.Dense(hidden_dim)(x))
            for _ in range(3)
        )
        # (B, num_heads, S, S)
        scores = ops.einsum("bsnh,btnh->bnst", query, key) / float(np.sqrt(head_dim))
        weights = ops.softmax(scores + mask_bias, axis=-1)
        attended = keras.layers.Reshape((-1, hidden_dim))(
            ops.einsum("bnst,btnh->bsnh", weights, value)
        )
        x = keras.layers.LayerNormalization()(x + keras.layers.Dense(hidden_dim)(attended))
        hidden = keras.layers.Dense(4 * hidden_dim, activation="gelu")(x)
        x = keras.layers.LayerNormalization()(x + keras.layers.Dense(hidden_dim)(hidden))
    pooled = keras.layers.Dense(hidden_dim, activation="tanh")(x[:, 0, :])
    logits = keras.layers.Dense(2, name="logits")(pooled)
    return keras.Model(inputs, {"logits": logits}, name="tiny_classifier")


def write_token_id_tflite(directory, seed=0, **model_kwargs):
    """Writes `float32.tflite` and `dynamic_int8.tflite` into `directory`; returns their paths.

    `model_kwargs` go to `token_id_classifier`.
    """
    model = token_id_classifier(seed, **model_kwargs)
    saved_model = os.path.join(directory, "saved_model")
    model.export(saved_model, verbose=False)
    paths = {}
    for name, quantize in (("float32", False), ("dynamic_int8", True)):
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        path = os.path.join(directory, f"{name}.tflite")
        with open(path, "wb") as f:
            f.write(converter.convert())
        paths[name] = path
    return paths


def write_string_input_tflite(path):
    """Writes a builtin-ops-only `.tflite` whose signature takes `text`, string `(batch_size,)`."""

    class Echo(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            return {"text_out": tf.reshape(text, [-1, 1])}

    module = Echo()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.serve.get_concrete_function()], module
    )
    with open(path, "wb") as f:
        f.write(converter.convert())
    return path


def random_token_inputs(num_examples, sequence_length=32, seed=0):
    """Random packed examples `[CLS] ... [SEP] [PAD]...` with lengths 3..sequence_length."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, sequence_length + 1, size=num_examples).astype("int32")
    token_ids = rng.integers(
        5, VOCABULARY_SIZE, size=(num_examples, sequence_length)
    ).astype("int32")
    positions = np.arange(sequence_length)[np.newaxis, :]
    padding_mask = (positions < lengths[:, np.newaxis]).astype("int32")
    token_ids[:, 0] = 2
    token_ids[np.arange(num_examples), lengths - 1] = 3
    token_ids *= padding_mask
    return {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": padding_mask,
        "lengths": lengths,
    }
