"""Tiny token-id `.tflite` files of every task, with manifests, for the benchmark and arm64 tests.

Shaped like the exporter's files but built here from `keras.layers`, so the tests do not depend
on `export.tflite`: a one-block transformer over the MiniLM vocabulary (30,522 tokens, hidden
size 32) with three heads, saved with `model.export` and converted with
`tf.lite.TFLiteConverter.from_saved_model` (float32, or dynamic-range int8):

- `text_embedding`: `(1, -1)` inputs -> `embedding` `(1, hidden_dim)`, mean over real tokens,
  L2-normalised;
- `token_classification`: `(1, -1)` inputs -> `logits` `(1, sequence_length, num_tags)`;
- `qa`: FIXED `(1, sequence_length)` inputs named as `BertQuestionAnswerer` looks for them
  (`ids`, `mask`, `segment_ids`) -> `start_logits`, `end_logits` `(1, sequence_length)`.

Beside each file: `<stem>.manifest.json` with the keys the benchmark and the check read (task,
vocabulary and its SHA-256, lower-casing, special token ids, lengths, input kind, signature
shapes, quantization) and `<stem>.vocab.txt`.
"""

import hashlib
import json
import os
import shutil

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tests.test_case import shared_path

VOCABULARY = shared_path("models", "all-MiniLM-L6-v2", "vocab.txt")
VOCABULARY_SIZE = 30522
HIDDEN_DIM = 32
NUM_TAGS = 5
# BertQuestionAnswerer's default input names -> ours.
QA_INPUT_NAMES = {"ids": "token_ids", "segment_ids": "segment_ids", "mask": "padding_mask"}


def _encoder(inputs, seed):
    """`(sequence_output, mask)`: one post-LN attention block over the three inputs."""
    keras.utils.set_random_seed(seed)
    x = keras.layers.Embedding(VOCABULARY_SIZE, HIDDEN_DIM)(inputs["token_ids"])
    x = x + keras.layers.Embedding(2, HIDDEN_DIM)(inputs["segment_ids"])
    x = keras.layers.LayerNormalization()(x)
    mask = ops.cast(inputs["padding_mask"], "float32")
    # (batch_size, sequence_length) -> (batch_size, 1, sequence_length): added to the scores.
    bias = ops.expand_dims((1.0 - mask) * -10000.0, 1)
    query, key, value = (keras.layers.Dense(HIDDEN_DIM)(x) for _ in range(3))
    # (batch_size, sequence_length, sequence_length)
    scores = ops.einsum("bsh,bth->bst", query, key) / float(np.sqrt(HIDDEN_DIM))
    attended = ops.einsum("bst,bth->bsh", ops.softmax(scores + bias, axis=-1), value)
    x = keras.layers.LayerNormalization()(x + keras.layers.Dense(HIDDEN_DIM)(attended))
    hidden = keras.layers.Dense(4 * HIDDEN_DIM, activation="gelu")(x)
    return keras.layers.LayerNormalization()(x + keras.layers.Dense(HIDDEN_DIM)(hidden)), mask


def task_model(task, sequence_length=None, seed=0):
    """The tiny Keras model of `task` (see the module doc); `sequence_length` fixes the QA
    model's input length."""
    if task == "qa":
        if not sequence_length:
            raise ValueError(f"`sequence_length` ({sequence_length}) is needed for `qa`.")
        named = {
            name: keras.Input(shape=(sequence_length,), dtype="int32", name=name)
            for name in QA_INPUT_NAMES
        }
        inputs = {ours: named[theirs] for theirs, ours in QA_INPUT_NAMES.items()}
    else:
        named = inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in ("token_ids", "segment_ids", "padding_mask")
        }
    sequence_output, mask = _encoder(inputs, seed)
    if task == "text_embedding":
        summed = ops.sum(sequence_output * ops.expand_dims(mask, -1), axis=1)
        mean = summed / ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1.0)
        outputs = {"embedding": mean / ops.sqrt(ops.sum(mean * mean, axis=-1, keepdims=True))}
    elif task == "token_classification":
        outputs = {"logits": keras.layers.Dense(NUM_TAGS)(sequence_output)}
    elif task == "qa":
        # (batch_size, sequence_length, 2) -> two (batch_size, sequence_length)
        spans = keras.layers.Dense(2)(sequence_output)
        outputs = {"start_logits": spans[:, :, 0], "end_logits": spans[:, :, 1]}
    else:
        raise ValueError(f"`task` ({task!r}) must be qa, token_classification or text_embedding.")
    return keras.Model(named, outputs, name=f"tiny_{task}")


def _shapes(details):
    return {
        name: {
            "dtype": np.dtype(detail["dtype"]).name,
            "shape_signature": [int(n) for n in detail["shape_signature"]],
        }
        for name, detail in sorted(details.items())
    }


def write_manifest(path, task, quantization, max_seq_length, extra=None):
    """A minimal `<stem>.manifest.json` and `<stem>.vocab.txt` beside `path`; `extra` entries
    are added to the manifest."""
    from ai_edge_litert import interpreter  # pylint: disable=import-outside-toplevel

    stem = os.path.splitext(path)[0]
    vocabulary_name = os.path.basename(stem) + ".vocab.txt"
    shutil.copyfile(VOCABULARY, os.path.join(os.path.dirname(path), vocabulary_name))
    with open(VOCABULARY, "rb") as f:
        vocabulary_sha256 = hashlib.sha256(f.read()).hexdigest()
    model = interpreter.Interpreter(model_path=path)
    runner = model.get_signature_runner()
    manifest = {
        "file": os.path.basename(path),
        "task": task,
        "input_kind": "token_ids",
        "quantization": quantization,
        "vocab": vocabulary_name,
        "vocab_sha256": vocabulary_sha256,
        "lower_case": True,
        "special_token_ids": {"cls": 101, "sep": 102, "pad": 0, "unk": 100},
        "max_seq_length": max_seq_length,
        "signature": list(model.get_signature_list())[0],
        "inputs": _shapes(runner.get_input_details()),
        "outputs": _shapes(runner.get_output_details()),
        **(extra or {}),
    }
    with open(stem + ".manifest.json", "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    return manifest


def write_task_tflite(directory, task, sequence_length=64, quantize=False, seed=0,
                      manifest_extra=None):
    """Writes `<task>[_dynamic_int8].tflite` and its manifest into `directory`; returns the path.

    `sequence_length` is the QA file's fixed length and the others' `max_seq_length`;
    `manifest_extra` goes to `write_manifest`.
    """
    model = task_model(task, sequence_length if task == "qa" else None, seed)
    name = task + ("_dynamic_int8" if quantize else "")
    saved_model = os.path.join(directory, f"{name}_saved_model")
    model.export(saved_model, verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    path = os.path.join(directory, f"{name}.tflite")
    with open(path, "wb") as f:
        f.write(converter.convert())
    shutil.rmtree(saved_model)
    write_manifest(
        path, task, "dynamic" if quantize else "none", sequence_length, manifest_extra
    )
    return path
