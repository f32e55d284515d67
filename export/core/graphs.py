"""What both exporters trace, and the flags that export a model built from a checkpoint.

Text -> packed ids (the task's preprocessor) -> the model -> the task's outputs
(`task.serving`, a `keras_bert.tasks.ServingSpec`).

`define_init_flags()` and `model_dir_from_flags()` give both exporters
`--init=CHECKPOINT --task=text_embedding [--pooling=mean|cls] [--normalize|--nonormalize]`
`[--sequence_length=N]`: the model directory of a checkpoint's sentence embedder is written to
a temporary folder and exported like a fine-tuned one.

Shape legend: B = batch, S = sequence length (at most the model directory's
`sequence_length`), C = outputs.
"""

import contextlib
import os
import tempfile

import tensorflow as tf
from absl import flags

from keras_bert.inputs import INPUT_NAMES
from keras_bert.inputs import trim_to_longest
from keras_bert.models.bert_text_embedder import POOLINGS
from keras_bert.models.model_dir import LABEL_MAP_FILE
from keras_bert.tasks import TASKS
from keras_bert.tasks import text_embedding
from keras_bert.utils import cli

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
            f"exporters handle {', '.join(f'`{name}`' for name in exported)}."
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


def serving_text_signature(serving, batch_size=None):
    """String `(batch_size,)` specs named by a `ServingSpec`'s `text_inputs`, in its order."""
    return {
        name: tf.TensorSpec((batch_size,), tf.string, name=name) for name in serving.text_inputs
    }


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


def truncate_token_ids(inputs, sequence_length, sep_token_id):
    """Token-id inputs longer than `sequence_length` cut as the preprocessor cuts a text.

    The Android clients pack a text themselves and, for inputs of shape `(1, -1)`, never
    truncate it (MediaPipe Tasks clips only fixed-shape inputs): a text past the position
    embeddings would fail in the app, and one past `sequence_length` would not be the
    model's input. In the file, `[CLS] t1 ... tn [SEP]` longer than `sequence_length` keeps
    its first `sequence_length - 1` tokens and ends in `[SEP]`: exactly what the task's
    preprocessor packs for a single text (`[CLS]`, the first `sequence_length - 2` pieces,
    `[SEP]`). Inputs of at most `sequence_length` tokens pass unchanged. Builtin ops only.

    Args:
        inputs: dict of int32 `(batch_size, length)` tensors `token_ids`, `segment_ids`,
            `padding_mask`.
        sequence_length: int. The longest input the model was fine-tuned on.
        sep_token_id: int. The `[SEP]` id.

    Returns:
        dict of int32 `(batch_size, min(length, sequence_length))` tensors.
    """
    # A static slice end: no shape arithmetic in the file (a shorter input is kept whole).
    cut = {name: value[:, :sequence_length] for name, value in inputs.items()}
    # The last kept position becomes [SEP] where the input had more real tokens: the
    # position whose running count of real tokens is `sequence_length`.
    real_tokens = tf.reduce_sum(inputs["padding_mask"], axis=1, keepdims=True)
    count = tf.cumsum(cut["padding_mask"], axis=1)
    last = tf.logical_and(tf.equal(count, sequence_length), real_tokens > sequence_length)
    cut["token_ids"] = tf.where(last, tf.constant(sep_token_id, tf.int32), cut["token_ids"])
    return cut


# === Models built from a checkpoint: --init ===

# The tasks whose model directory an exporter writes from a checkpoint (`--init`).
INIT_TASKS = {text_embedding.TextEmbeddingTask.name: text_embedding.write_model_dir}


def define_init_flags(flag_values=flags.FLAGS):
    """Defines `--init`, `--task`, `--pooling`, `--normalize` and `--sequence_length`.

    `--model_dir` (defined by the exporter, not required) and `--init` are exclusive;
    `model_dir_from_flags` reads them.
    """
    flags.DEFINE_string(
        "init", None, "A pretrained checkpoint (Hugging Face or Google BERT directory) to export "
        "without fine-tuning, with --task=text_embedding: its model directory is written to a "
        "temporary folder. Exclusive with --model_dir.", flag_values=flag_values,
    )
    flags.DEFINE_string(
        "task", None,
        f"With --init: the model to build from the checkpoint ({', '.join(INIT_TASKS)}).",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "pooling", "mean", POOLINGS, "With --init --task=text_embedding: mean over the real "
        "tokens (sentence-transformers') or the [CLS] vector.", flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "normalize", True, "With --init --task=text_embedding: L2-normalise the embeddings "
        "(--nonormalize: raw pooled vectors).", flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "sequence_length", None, "With --init: the packed length (longer texts are truncated). "
        f"Default: {text_embedding.DEFAULT_SEQUENCE_LENGTH} (sentence-transformers' for "
        "all-MiniLM-L6-v2), or the checkpoint's maximum if shorter.", flag_values=flag_values,
    )


def check_init_flags(flag_values=flags.FLAGS):
    """Raises `cli.FlagError` unless exactly one of `--model_dir` and `--init` says what to
    export, and the `--init` flags fit together. Reads no file but `--model_dir`'s existence."""
    model_dir, init, task = (
        flag_values["model_dir"].value, flag_values["init"].value, flag_values["task"].value
    )
    if model_dir is not None and init is not None:
        raise cli.FlagError("init", init, "give either --model_dir or --init, not both.")
    if init is None:
        if task is not None:
            raise cli.FlagError(
                "task", task, "needs --init=CHECKPOINT (the checkpoint to build the model "
                "from); a fine-tuned --model_dir names its own task."
            )
        if model_dir is None:
            raise cli.FlagError(
                "model_dir", None, "required: a fine-tuned model directory, or "
                "--init=CHECKPOINT --task=text_embedding for sentence embeddings."
            )
        for name in ("pooling", "normalize", "sequence_length"):
            if flag_values[name].present:
                raise cli.FlagError(
                    name, flag_values[name].value, "applies only with --init (a fine-tuned "
                    "--model_dir keeps its own settings)."
                )
        return
    if task not in INIT_TASKS:
        raise cli.FlagError(
            "task", task, f"--init builds one of {sorted(INIT_TASKS)}: pass "
            "--task=text_embedding (fine-tuned tasks are exported with --model_dir)."
        )
    if not os.path.exists(init):
        raise cli.FlagError("init", init, "no such checkpoint directory or file.")
    length = flag_values["sequence_length"].value
    if length is not None and length < 3:
        raise cli.FlagError("sequence_length", length, "must be an int >= 3.")


@contextlib.contextmanager
def model_dir_from_flags(flag_values=flags.FLAGS):
    """The model directory the flags name: `--model_dir`, or one written from `--init`.

    With `--init=CHECKPOINT --task=text_embedding`, the sentence embedder's model directory
    (`keras_bert.tasks.text_embedding.write_model_dir` with `--pooling`, `--normalize` and
    `--sequence_length`) is written to a temporary folder, removed when the context exits.

    Yields:
        str. The model directory.

    Raises:
        cli.FlagError: as `check_init_flags`, or naming `--init` when the checkpoint cannot
            be read (nothing is written then).
    """
    check_init_flags(flag_values)
    if flag_values["init"].value is None:
        yield flag_values["model_dir"].value
        return
    write_model_dir = INIT_TASKS[flag_values["task"].value]
    with tempfile.TemporaryDirectory(prefix="keras_bert_init-") as scratch:
        with cli.flag_context("init", flag_values=flag_values):
            path = write_model_dir(
                flag_values["init"].value, os.path.join(scratch, "model_dir"),
                pooling=flag_values["pooling"].value, normalize=flag_values["normalize"].value,
                sequence_length=flag_values["sequence_length"].value,
            )
        yield path
