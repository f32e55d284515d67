"""What both exporters trace: text -> packed ids (the task's preprocessor) -> logits.

The outputs computed from the logits are the task's (`task.serving.outputs`).

Shape legend: B = batch, S = sequence length (at most the model directory's
`sequence_length`), C = outputs.
"""

import os

import tensorflow as tf

from keras_bert.inputs import INPUT_NAMES
from keras_bert.inputs import trim_to_longest
from keras_bert.models.model_dir import LABEL_MAP_FILE
from keras_bert.tasks import TASKS

TEXT_INPUT = "text"
TEXT_PAIR_INPUT = "text_pair"


def check_exported_task(model_dir):
    """The model directory's task (`keras_bert.tasks.Task`), if the exporters handle it.

    A task is exported when its module defines `serving` (`keras_bert.tasks.ServingSpec`):
    the text inputs and the outputs the signatures compute from the logits.

    Args:
        model_dir: `keras_bert.models.ModelDir`.

    Raises:
        ValueError: naming `label_map.json` and the task when the task has no `serving`.
    """
    task = model_dir.load_task()
    if task.serving is None:
        exported = [name for name, task_class in TASKS.items() if task_class.serving is not None]
        label_map = os.path.join(model_dir.path, LABEL_MAP_FILE)
        raise ValueError(
            f"{label_map}: task {model_dir.task!r} is not exported; the "
            f"exporters handle {', '.join(f'`{name}`' for name in exported)} "
            "(sentences, pairs, regression)."
        )
    return task


def token_id_signature(batch_size=None):
    """The int32 `(batch_size, None)` specs of `token_ids`, `segment_ids`, `padding_mask`."""
    return {name: tf.TensorSpec((batch_size, None), tf.int32, name=name) for name in INPUT_NAMES}


def text_signature(is_pair, batch_size=None):
    """String `(batch_size,)` specs of `text` (and `text_pair` for pair tasks)."""
    specs = {TEXT_INPUT: tf.TensorSpec((batch_size,), tf.string, name=TEXT_INPUT)}
    if is_pair:
        specs[TEXT_PAIR_INPUT] = tf.TensorSpec((batch_size,), tf.string, name=TEXT_PAIR_INPUT)
    return specs


def text_inputs(preprocessor, texts, texts_pair=None, batch_size=None):
    """The model's inputs from string tensors, inside a graph.

    The task's preprocessor packs the texts to its `sequence_length` (truncating as
    fine-tuning did); the batch is then cut to its longest packed row: the logits at real
    positions do not depend on padding, and short inputs do not pay for the full length.

    Only ops with TFLite kernels (builtins and tensorflow-text's) are used; with
    `batch_size=1` the packed tensors get a static batch axis, which the TFLite converter needs
    to lower the attention mask's `[:, None, None, :]` to a builtin.

    Args:
        preprocessor: the task's preprocessor (`keras_bert.text.TextClassifierPreprocessor`).
        texts: string `(B,)` tensor.
        texts_pair: string `(B,)` tensor or None.
        batch_size: int or None. A static batch size to declare, or None.

    Returns:
        dict of int32 `(B, S)` tensors `token_ids`, `segment_ids`, `padding_mask`.
    """
    # (B, sequence_length) -> (B, S), S = the longest real sequence of the batch.
    packed = trim_to_longest(preprocessor(texts, texts_pair))
    if batch_size is not None:
        packed = {name: tf.reshape(value, [batch_size, -1]) for name, value in packed.items()}
    return packed
