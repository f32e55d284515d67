"""Converts a fine-tuned model (any task) or a sentence embedder to LiteRT (`.tflite`), with
TFLite Model Metadata and a parity report.

    # float32, then dynamic-range int8 (int8 weights, float activations), checked on SST-2.
    python -m export.tflite --model_dir=/tmp/minilm_sst2 --out=exported/model.tflite \\
        --quantize=none --eval=../shared/data/sst2/test.tsv
    python -m export.tflite --model_dir=/tmp/minilm_sst2 --out=exported/model_dynamic.tflite \\
        --quantize=dynamic --eval=../shared/data/sst2/test.tsv

    # Full-integer int8, calibrated on training text; the op roles that cost most accuracy keep
    # float activations with int8 weights (see export/core/quantization.py); the report also shows
    # naive full int8.
    python -m export.tflite --model_dir=/tmp/minilm_sst2 --out=exported/model_int8.tflite \\
        --quantize=int8 --calibration_data=../shared/data/sst2/train.tsv \\
        --eval=../shared/data/sst2/test.tsv

    # One file from text to logits: tokenizer and packer inside (tensorflow-text kernels).
    python -m export.tflite --model_dir=/tmp/minilm_sst2 --out=exported/model_text.tflite \\
        --quantize=dynamic --string_input --eval=../shared/data/sst2/test.tsv

    # Question answering (a SQuAD v1.1 --eval) and token classification (a CoNLL --eval).
    python -m export.tflite --model_dir=/tmp/minilm_squad --out=exported/qa.tflite \\
        --eval=../shared/data/squad/dev-v1.1-2articles.json
    python -m export.tflite --model_dir=/tmp/minilm_ner --out=exported/ner.tflite --eval=dev.conll

    # Sentence embeddings straight from a checkpoint (mean pooling, L2-normalised).
    python -m export.tflite --init=../shared/models/all-MiniLM-L6-v2 --task=text_embedding \\
        --out=exported/minilm_embedding.tflite --eval=../shared/data/sst2/test.tsv

The token-id file's signature `serving_default` takes int32 `token_ids`, `segment_ids`,
`padding_mask` of shape `(1, length)`, any length up to the model directory's `sequence_length`
(the manifest's `max_seq_length`; the interpreter resizes per call), and uses TFLite builtin ops
only. It returns, per task:

| task | outputs |
|---|---|
| classification | `logits` `(1, num_classes)` (`(1, 1)` for regression) |
| qa | `end_logits`, `start_logits` `(1, sequence_length)` (fixed-length inputs, below) |
| token_classification | `logits` `(1, length, num_tags)` |
| text_embedding | `embedding` `(1, hidden_dim)` |

A question-answering file takes inputs of FIXED shape `(1, sequence_length)`, in the order
`token_ids`, `padding_mask`, `segment_ids` (ids, mask, segment ids), and returns its outputs in the
order above: what the LiteRT Task Library's `BertQuestionAnswerer` takes.

Every token-id file carries TFLite Model Metadata (`export.core.metadata`, `--nometadata` to
leave it out): name, description, version, author, license, the BertTokenizer process unit with
the vocabulary as an associated file, the label file of classifiers and taggers, and the QA and
embedding output descriptions, which MediaPipe Tasks (`TextClassifier`, `TextEmbedder`) and the
LiteRT Task Library (`BertNLClassifier`, `BertQuestionAnswerer`) read instead of app code. The
metadata does not change the graph: the file returns the same numbers with and without it.

The string file (`--string_input`, classification and embeddings) takes `text` (string, `(1,)`;
plus `text_pair` for pair tasks) and returns the same outputs; besides builtins it uses
tensorflow-text's custom ops `FastBertNormalize`, `FastWordpieceTokenizeWithOffsets` and
`TFText>ByteSplitByOffsets`. It carries no metadata: the task libraries cannot run it.

Conversion goes through `keras.export.ExportArchive` (a SavedModel with the weights frozen in)
and `tf.lite.TFLiteConverter.from_saved_model`, restricted to builtin ops, and then fails if the
file has Select TF (Flex) ops, custom ops other than tensorflow-text's, or variable ops.

Beside `FILE` it writes `<stem>.manifest.json` (task, vocabulary and its SHA-256, lower-casing,
lengths, signature, quantization, ops, size, the metadata), `<stem>.vocab.txt`, and the parity
report `FILE.parity.json` and `FILE.parity.md`, per task (`export.core.evaluation.TASK_PARITY`):
max |difference| of the outputs against the Keras model on `--eval`, and an agreement figure:
labels (and accuracy) for classifiers, answers (and exact match, F1) for question answering,
word tags (and entity F1) for token classification, the lowest cosine similarity for
embeddings. The exit status is 1 when agreement is under `--min_agreement`.
"""

import datetime
import hashlib
import importlib.metadata
import os
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import flags

from export.core import evaluation
from export.core import flatbuffer
from export.core import graphs
from export.core import litert
from export.core import metadata
from export.core import quantization
from keras_bert.inputs import INPUT_NAMES
from keras_bert.models import model_dir as model_dir_lib
from keras_bert.tasks import text_embedding
from keras_bert.utils import cli

QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")
# The model directory tasks whose file may hold the tokenizer (`--string_input`) and may be
# calibrated to full-integer int8: the others' clients feed token ids, and calibration reads
# classification TSVs.
INT8_TASKS = ("classification",)
EMBEDDING_TASK = text_embedding.TextEmbeddingTask.name
# The metadata written by default (`--model_version`, `--model_author`, `--model_license`).
DEFAULT_MODEL_VERSION = "1"
DEFAULT_MODEL_AUTHOR = "keras-bert"
DEFAULT_MODEL_LICENSE = "Apache-2.0"
FLAGS = flags.FLAGS


def define_flags():
    """Defines the command-line flags (only when run as a program, so that the modules of
    `export/` can be imported together)."""
    flags.DEFINE_string(
        "model_dir", None, "Fine-tuned model directory written by `training.finetune` "
        "(classification, qa, token_classification), or by "
        "`keras_bert.tasks.text_embedding.write_model_dir`. Or give --init and --task.",
    )
    # --init, --task, --pooling, --normalize, --sequence_length: shared with export.saved_model.
    graphs.define_init_flags()
    flags.DEFINE_string("out", None, "The `.tflite` file to write.", required=True)
    flags.DEFINE_enum(
        "quantize", "none", QUANTIZE_MODES,
        "none: float32. float16: float16 weights. dynamic: int8 weights, float activations "
        "(dynamic-range). int8 (classification only): full-integer, calibrated on "
        "--calibration_data, with the op roles that cost most accuracy keeping float "
        "activations (see --int8_fallback; --int8_mode=naive quantizes every op).",
    )
    flags.DEFINE_bool(
        "string_input", False,
        "Classification and text_embedding: put the tokenizer and packer inside the file: it "
        "takes `text` (string) instead of token ids, needs tensorflow-text's TFLite kernels "
        "registered, and carries no metadata.",
    )
    flags.DEFINE_bool(
        "metadata", True,
        "Write TFLite Model Metadata into the token-id file (tokenizer, vocabulary, labels, "
        "names), which MediaPipe Tasks and the LiteRT Task Library read; --nometadata leaves it "
        "out.",
    )
    flags.DEFINE_string(
        "model_name", None, "Metadata: the model's name. Default: the model directory's (or "
        "checkpoint's) folder name.",
    )
    flags.DEFINE_string(
        "model_description", None, "Metadata: what the model does. Default: the task, labels "
        "and source, in one sentence.",
    )
    flags.DEFINE_string("model_version", DEFAULT_MODEL_VERSION, "Metadata: the model's version.")
    flags.DEFINE_string("model_author", DEFAULT_MODEL_AUTHOR, "Metadata: the model's author.")
    flags.DEFINE_string(
        "model_license", DEFAULT_MODEL_LICENSE, "Metadata: the model's license."
    )
    flags.DEFINE_string(
        "eval", None, "Evaluation file for the parity report: classification: a labelled TSV "
        "(the fine-tuning columns); qa: SQuAD v1.1 JSON; token_classification: CoNLL; "
        "text_embedding: a TSV of sentences. Default: a few built-in texts, without accuracy.",
    )
    flags.DEFINE_integer("eval_limit", None, "Use at most this many --eval examples.")
    flags.DEFINE_string(
        "calibration_data", None, "TSV of real text (e.g. the training data) to calibrate int8 on. "
        "Required for --quantize=int8.",
    )
    flags.DEFINE_integer(
        "calibration_size", 300, "Calibration texts (the first rows of --calibration_data)."
    )
    flags.DEFINE_integer(
        "validation_size", 400, "Held-out --calibration_data texts (after the calibration rows) on "
        "which the selective int8 search measures agreement with the float model.",
    )
    flags.DEFINE_enum(
        "int8_mode", "selective", ("selective", "naive"), "Full-integer scheme for --quantize=int8."
    )
    flags.DEFINE_float(
        "int8_target_agreement", 0.995,
        "Selective int8 keeps op roles in float until this fraction of held-out --calibration_data "
        "texts agrees with the float model.",
    )
    flags.DEFINE_float(
        "int8_mse_budget", 0.002,
        "Selective int8 also keeps the mean squared logit difference to the float model on the "
        "held-out texts under this.",
    )
    flags.DEFINE_enum(
        "int8_fallback", "dynamic", quantization.FALLBACKS,
        "Selective int8: what the ops kept out of full-integer get. dynamic: int8 weights, "
        "activations quantized per call (dynamic-range), so every weight is int8; float: float32.",
    )
    flags.DEFINE_integer(
        "int8_max_float_roles", None,
        "Selective int8 keeps at most this many op roles (attention projections, layer norms, "
        "feed-forward output, ...) in float. Default: as many as the target needs.",
    )
    flags.DEFINE_float(
        "min_agreement", 0.99, "Fail (exit 1) when the parity report's agreement with Keras "
        "falls under this: labels (classification), answers (qa), word tags "
        "(token_classification), or the lowest cosine similarity (text_embedding).",
    )
    flags.DEFINE_integer("num_threads", 2, "Interpreter threads for the parity run.")
    flags.register_validator(
        "out", lambda value: value is None or value.endswith(".tflite"), "must end with .tflite."
    )
    flags.register_multi_flags_validator(
        ["quantize", "calibration_data", "string_input"], _check_int8_flags
    )


def _check_int8_flags(values):
    if values["quantize"] != "int8":
        return True
    if values["string_input"]:
        raise cli.FlagError(
            "quantize", "int8",
            "is for the token-id model (calibration runs the converter's interpreter, which has "
            "no tensorflow-text kernels): use `none`, `float16` or `dynamic` with "
            "`--string_input`.",
        )
    if not values["calibration_data"]:
        raise cli.FlagError(
            "calibration_data", None,
            "required with `--quantize=int8`: a TSV of real text (e.g. the training data) to "
            "calibrate on.",
        )
    return True


def _check_flags(argv):
    """The checks of the flags that read the disk (before anything is written to --out)."""
    del argv  # no positional arguments
    cli.check_paths(directories=["model_dir"], files=["eval", "calibration_data"])
    graphs.check_init_flags()
    task = FLAGS.task
    if FLAGS.model_dir is not None:
        with cli.flag_context("model_dir"):
            info = model_dir_lib.load_model_dir(FLAGS.model_dir, load_model=False)
            task = evaluation.task_parity(info).task
    if FLAGS.quantize == "int8" and task not in INT8_TASKS:
        raise cli.FlagError(
            "quantize", "int8", f"calibrated full-integer int8 is for classification; a {task} "
            "model takes `none`, `float16` or `dynamic` (int8 weights).",
        )
    if FLAGS.string_input and not evaluation.TASK_PARITY[task].string_input:
        raise cli.FlagError(
            "string_input", True, f"a {task} file takes token ids (the task libraries tokenize; "
            "see the metadata); text-input files are made for classification and "
            f"{EMBEDDING_TASK}.",
        )


# The flag behind each argument of `convert` that its errors name.
_FLAG_FOR = {
    "model_dir": "model_dir", "out": "out", "quantize": "quantize",
    "string_input": "string_input", "eval_path": "eval", "calibration_path": "calibration_data",
    "int8_mode": "int8_mode", "int8_fallback": "int8_fallback", "init": "init",
    "pooling": "pooling", "normalize": "normalize", "sequence_length": "sequence_length",
    "add_metadata": "metadata",
}


# === Building the file ===


def _write_saved_model(model, info, parity, path, string_input):
    """The single-example SavedModel the converter reads, via `keras.export.ExportArchive`.

    Its signature returns the task's outputs (`parity.output_names`); token-id inputs are
    `(1, None)`, or `(1, sequence_length)` for tasks with a fixed length.
    """
    archive = keras.export.ExportArchive()
    archive.track(model)

    def outputs(inputs):
        return evaluation.named_outputs(model(inputs, training=False), parity.output_names)

    if string_input:
        preprocessor = info.preprocessor
        specs = graphs.text_signature(info.is_pair_task, batch_size=1)
        if info.is_pair_task:

            def serve(text, text_pair):
                return outputs(graphs.text_inputs(preprocessor, text, text_pair, batch_size=1))

        else:

            def serve(text):
                return outputs(graphs.text_inputs(preprocessor, text, batch_size=1))

        signature = list(specs.values())
    else:

        length = info.sequence_length if parity.fixed_sequence_length else None

        def serve(inputs):
            # A static batch of 1 lets the converter lower every mask reshape to a builtin.
            if length is None:
                # Clients pass `(1, n)` ids of any n: cut them as the preprocessor would.
                inputs = graphs.truncate_token_ids(
                    inputs, info.sequence_length, info.tokenizer.sep_token_id)
            return outputs(inputs)

        signature = [{name: tf.TensorSpec((1, length), tf.int32, name=name)
                      for name in INPUT_NAMES}]
    archive.add_endpoint("serving_default", serve, input_signature=signature)
    archive.write_out(path, verbose=False)


def _converter(saved_model_path, string_input):
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_path)
    # Builtins only: an op without a builtin kernel fails the conversion instead of becoming
    # a Select TF (Flex) op that stock LiteRT cannot run.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if string_input:
        converter.allow_custom_ops = True
    return converter


def convert_saved_model(saved_model_path, quantize, string_input):
    """The `.tflite` bytes of a SavedModel: builtin ops (plus custom ops for `string_input`)."""
    converter = _converter(saved_model_path, string_input)
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return run_converter(converter)


def run_converter(converter):
    """`converter.convert()`, with a failure to lower an op to a builtin as `ConversionError`."""
    try:
        return converter.convert()
    except Exception as error:  # pylint: disable=broad-except
        message = str(error)
        if "ops" in message.lower() or "op " in message.lower():
            raise flatbuffer.ConversionError(
                "The model has ops without a TFLite builtin kernel (conversion is restricted to "
                "builtins, so that the file runs on stock LiteRT without Flex):\n"
                + message[-4000:]
            ) from error
        raise


def _arrange(content, parity, string_input):
    """The file with its outputs (and, for QA, its inputs) in the task's order, the outputs
    named after the signature's (see `flatbuffer.order_signature_tensors`)."""
    return flatbuffer.order_signature_tensors(
        content, None if string_input else parity.input_order, parity.output_names
    )


def _calibration_sets(info, path, calibration_size, validation_size):
    texts, texts_pair, _ = evaluation.read_tsv(
        path, info, limit=calibration_size + validation_size, require_labels=False
    )
    if len(texts) < calibration_size + min(validation_size, 50):
        raise ValueError(
            f"--calibration_data {path} has {len(texts)} rows; need at least "
            f"{calibration_size + min(validation_size, 50)}."
        )
    packed = info.preprocessor.pack_numpy(texts, texts_pair)
    examples = quantization.calibration_examples(packed)
    return examples[:calibration_size], examples[calibration_size:]


# === Metadata ===


def default_model_info(info, source=None, name=None, description=None,
                       version=DEFAULT_MODEL_VERSION, author=DEFAULT_MODEL_AUTHOR,
                       license=DEFAULT_MODEL_LICENSE):  # pylint: disable=redefined-builtin
    """The metadata's `ModelInfo`; None fields take defaults from the model directory.

    Args:
        info: `keras_bert.models.ModelDir`.
        source: str or None. The checkpoint the directory was written from (`--init`), which
            then names the model.
        name, description, version, author, license: str or None. Default: the folder name
            of `source` or of the model directory; a sentence on the task; `"1"`;
            `"keras-bert"`; `"Apache-2.0"`.

    Returns:
        `export.core.metadata.ModelInfo`.
    """
    folder = os.path.basename(os.path.normpath(source or info.path))
    return metadata.ModelInfo(
        name=name or folder,
        description=description or _describe(info, folder),
        version=version or DEFAULT_MODEL_VERSION,
        author=author or DEFAULT_MODEL_AUTHOR,
        license=license or DEFAULT_MODEL_LICENSE,
    )


def _describe(info, folder):
    """One sentence on what the model does, for the metadata's description."""
    labels = ", ".join(info.labels[:10]) + (", ..." if len(info.labels) > 10 else "")
    if info.task == "classification":
        what = "a text pair" if info.is_pair_task else "a text"
        if info.regression:
            return f"Scores {what} (regression, one value); fine-tuned with keras-bert."
        return f"Classifies {what} into {len(info.labels)} classes ({labels}); fine-tuned with " \
               "keras-bert."
    if info.task == "qa":
        return (f"Extractive question answering: start and end logits over [CLS] question [SEP] "
                f"context [SEP] windows of {info.sequence_length} tokens; fine-tuned with "
                "keras-bert.")
    if info.task == "token_classification":
        return (f"Tags each word (on its first WordPiece) with one of {len(info.labels)} tags "
                f"({labels}); fine-tuned with keras-bert.")
    pooling = info.config.get("pooling", "mean")
    normalized = ", L2-normalised" if info.config.get("normalize", True) else ""
    return (f"Sentence embeddings of {folder} ({pooling} pooling{normalized}), exported by "
            "keras-bert.")


def _check_metadata_fits(info, parity):
    """Raises `ValueError` (naming `add_metadata`) for a model the task libraries cannot run."""
    if not info.lower_case:
        raise ValueError(
            f"`add_metadata`: {info.path} has a cased vocabulary, but TFLite Model Metadata has "
            "no casing option and its clients lower-case every text; export with --nometadata "
            "(and tokenize in the app)."
        )
    if (parity.metadata_kind == "question_answerer"
            and info.sequence_length != metadata.QUESTION_ANSWERER_SEQUENCE_LENGTH):
        raise ValueError(
            f"`add_metadata`: BertQuestionAnswerer packs exactly "
            f"{metadata.QUESTION_ANSWERER_SEQUENCE_LENGTH} tokens, but {info.path} was "
            f"fine-tuned on windows of {info.sequence_length} (finetune_config.json "
            f"max_seq_length); fine-tune with --sequence_length="
            f"{metadata.QUESTION_ANSWERER_SEQUENCE_LENGTH}, or export with --nometadata."
        )


def _metadata_summary(content):
    """What the manifest records of the file's metadata: `metadata.read`'s answer."""
    return metadata.read(content)


# === Manifest ===


def _versions():
    versions = {"python": sys.version.split()[0]}
    for package in ("tensorflow", "keras", "tensorflow-text", "ai-edge-litert"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _signature_details(path, custom_ops):
    interpreter = litert.make_interpreter(path, custom_ops=custom_ops)
    runner = interpreter.get_signature_runner()
    inputs, outputs = runner.get_input_details(), runner.get_output_details()

    def describe(details):
        return {
            name: {
                "dtype": np.dtype(detail["dtype"]).name,
                "shape_signature": [int(x) for x in detail["shape_signature"]],
            }
            for name, detail in sorted(details.items())
        }

    def order(details, tensors):
        # The subgraph's tensors (what clients without signatures see), by signature name.
        names = {detail["index"]: name for name, detail in details.items()}
        return [names[tensor["index"]] for tensor in tensors if tensor["index"] in names]

    return {
        "signature": list(interpreter.get_signature_list())[0],
        "inputs": describe(inputs),
        "outputs": describe(outputs),
        "input_order": order(inputs, interpreter.get_input_details()),
        "output_order": order(outputs, interpreter.get_output_details()),
    }


def _stem(path):
    return os.path.splitext(path)[0]


def write_manifest(path, info, quantize, string_input, summary, extra=None):
    """Writes `<stem>.manifest.json` and `<stem>.vocab.txt` beside the `.tflite` file."""
    vocabulary_name = os.path.basename(_stem(path)) + ".vocab.txt"
    with open(info.vocabulary_path, "rb") as f:
        evaluation.write_bytes(
            os.path.join(os.path.dirname(os.path.abspath(path)), vocabulary_name), f.read()
        )
    with open(path, "rb") as f:
        content = f.read()
    tokenizer = info.tokenizer
    parity = evaluation.TASK_PARITY.get(info.task, evaluation.TASK_PARITY["classification"])
    fixed = parity.fixed_sequence_length and not string_input
    if string_input:
        lengths = "texts are packed to at most max_seq_length tokens inside the file"
    elif fixed:
        lengths = "exactly max_seq_length: pad every input to it (padding_mask 0)"
    else:
        lengths = "any length from min_seq_length to max_seq_length; resize the inputs per call"
    manifest = {
        "file": os.path.basename(path),
        "size_bytes": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "task": info.task,
        "labels": info.labels,
        "regression": info.regression,
        "input_kind": "text" if string_input else "token_ids",
        "quantization": quantize,
        "vocab": vocabulary_name,
        "vocab_sha256": info.vocabulary_sha256,
        "vocabulary_size": tokenizer.vocabulary_size(),
        "lower_case": tokenizer.lower_case,
        "special_token_ids": {
            "cls": tokenizer.cls_token_id, "sep": tokenizer.sep_token_id,
            "pad": tokenizer.pad_token_id, "unk": tokenizer.unknown_token_id,
        },
        "max_seq_length": info.sequence_length,
        "min_seq_length": info.sequence_length if fixed else (3 if info.is_pair_task else 2),
        "fixed_sequence_length": fixed,
        "sequence_lengths": lengths,
        **_signature_details(path, custom_ops=string_input),
        "ops": summary["ops"],
        "custom_ops": summary["custom_ops"],
        "custom_op_registrar": (
            "tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS" if summary["custom_ops"] else None
        ),
        "integer_compute_ops": summary["integer_compute_ops"],
        "compute_ops": summary["compute_ops"],
        "source_model_dir": info.path,
        "versions": _versions(),
    }
    if extra:
        manifest.update(extra)
    evaluation.write_json(_stem(path) + ".manifest.json", manifest)
    return manifest


# === Parity ===


def file_outputs(path, info, parity, eval_set, num_threads=2, string_input=False):
    """The outputs (dict of float32 arrays, one row per `eval_set.inputs` row) of a `.tflite`
    file, one example per call: token ids at each example's own length (or the fixed length),
    or the texts for a string file."""
    model = litert.LiteRTModel(
        path, num_threads=num_threads, vocabulary=info.vocabulary_path,
        sequence_length=info.sequence_length, custom_ops=string_input,
        fixed_sequence_length=parity.fixed_sequence_length and not string_input,
    )
    if string_input:
        return model.outputs(eval_set.texts, eval_set.texts_pair)
    return model.outputs_from_packed(eval_set.inputs)


def _markdown(report, parity):
    columns = [("agreement", report["agreement_name"])] + list(parity.columns)
    cosines = {key for key, header in columns if "cosine" in header}
    keras_figures = [
        f"{header} {_percent(report.get('keras_' + key))}" for key, header in parity.columns
        if report.get("keras_" + key) is not None
    ]
    examples = f"{report['num_examples']} examples"
    if report.get("num_windows"):
        examples += f", {report['num_windows']} windows"
    lines = [
        f"# Parity: {report['file']}",
        "",
        f"Task: {report['task']}. Evaluation: `{report['eval_file'] or 'built-in texts'}` "
        f"({examples}); reference: the Keras model"
        + (f" ({', '.join(keras_figures)})" if keras_figures else "")
        + f". Threshold: {report['agreement_name']} >= "
        f"{_figure(report['min_agreement'], 'agreement' in cosines)}. "
        f"Metadata: {'yes' if report['metadata'] else 'no'}.",
        "",
        "| variant | file size | " + " | ".join(header for _, header in columns)
        + " | max abs diff | mean abs diff |",
        "|---|---:|" + "---:|" * len(columns) + "---:|---:|",
    ]
    for variant in report["variants"]:
        lines.append(
            f"| {variant['name']} | {variant['size_bytes'] / 1e6:.1f} MB | "
            + " | ".join(_figure(variant.get(key), key in cosines) for key, _ in columns)
            + f" | {variant['max_abs_diff']:.3g} | {variant['mean_abs_diff']:.3g} |"
        )
    lines += ["", f"Result: {'PASS' if report['passed'] else 'FAIL'}."]
    int8 = report.get("int8")
    if int8:
        lines += [
            "",
            f"Selective int8 ({int8['fallback']} fallback): {int8['integer_compute_ops']} of "
            f"{int8['compute_ops']} ops compute in int8; of the fully connected "
            f"multiply-accumulates, {100 * int8['int8_fully_connected_fraction']:.0f}% are "
            f"computed in int8 ({100 * int8['static_int8_fully_connected_fraction']:.0f}% with "
            "calibrated int8 inputs"
            + (", the rest quantized per call); " if int8["fallback"] == "dynamic" else "); ")
            + f"{100 * int8['int8_weight_fraction']:.0f}% of the weights are int8. "
            f"Activations kept in float: {', '.join(int8['float_groups']) or 'nothing'}.",
            "",
            "| step | held-out agreement with float | logit MSE |",
            "|---|---:|---:|",
        ] + [f"| {step['step']} | {_percent(step['agreement'])} | {step['logit_mse']:.4f} |"
             for step in int8["search"]]
    return "\n".join(lines) + "\n"


def _percent(value):
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _figure(value, cosine=False):
    """A fraction as a percentage, a cosine similarity with its digits."""
    if value is None:
        return "n/a"
    return f"{value:.6f}" if cosine else _percent(value)


# === Entry point ===


def convert(model_dir, out, quantize="none", string_input=False, eval_path=None,
            eval_limit=None, calibration_path=None, calibration_size=300, validation_size=400,
            int8_mode="selective", int8_target_agreement=0.995, int8_mse_budget=0.002,
            int8_max_float_roles=None, int8_fallback="dynamic",
            min_agreement=0.99, num_threads=2, add_metadata=True, model_info=None, source=None,
            log=print):
    """Converts `model_dir` to `out` and writes the manifest and parity report beside it.

    Args:
        model_dir: str. Model directory (see `keras_bert.models.model_dir`) of an exported task
            (`export.core.evaluation.TASK_PARITY`).
        out: str. The `.tflite` path.
        quantize: str. One of `QUANTIZE_MODES` (`int8`: classification only).
        string_input: bool. Tokenizer and packer inside the file (classification and
            text_embedding).
        eval_path: str or None. The task's evaluation file for the parity report.
        eval_limit: int or None. Use at most this many evaluation examples.
        calibration_path: str or None. Text for int8 calibration (required for int8).
        calibration_size, validation_size: int. Calibration rows and held-out rows.
        int8_mode: str. `selective` or `naive`.
        int8_target_agreement: float. Selective int8's held-out agreement target.
        int8_mse_budget: float. Selective int8's held-out mean squared logit difference target.
        int8_max_float_roles: int or None. Selective int8 keeps at most this many op roles
            (see `export.core.quantization.ROLES`) in float.
        int8_fallback: str. Selective int8: `dynamic` gives the ops kept out of full-integer
            int8 weights (dynamic-range), `float` keeps them float32.
        min_agreement: float. The parity threshold (see the report's `agreement_name`).
        num_threads: int. Interpreter threads for the parity run.
        add_metadata: bool. Write TFLite Model Metadata into a token-id file (string files
            get none).
        model_info: `export.core.metadata.ModelInfo`, or a dict of some of its fields (None
            values and missing fields take `default_model_info`'s defaults), or None.
        source: str or None. The checkpoint `model_dir` was written from (the manifest names
            it, and the default metadata name comes from it).
        log: callable taking a str.

    Returns:
        The parity report (dict); `report["passed"]` says whether agreement met the threshold.

    Raises:
        ValueError: bad arguments or inputs (a model directory of a task that is not exported
            names its `label_map.json`).
        export.core.flatbuffer.ConversionError: the file would not run on stock LiteRT, still has
            variable ops, or returns non-finite outputs. Nothing is written then.
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"`quantize` must be one of {QUANTIZE_MODES}, received {quantize!r}.")
    if int8_mode not in ("selective", "naive"):
        raise ValueError(f"`int8_mode` must be 'selective' or 'naive', received {int8_mode!r}.")
    if int8_fallback not in quantization.FALLBACKS:
        raise ValueError(f"`int8_fallback` must be one of {quantization.FALLBACKS}, received "
                         f"{int8_fallback!r}.")
    if quantize == "int8" and string_input:
        raise ValueError(
            "`quantize=int8` is for the token-id model: calibration runs the converter's "
            "interpreter, which has no tensorflow-text kernels. Use `none`, `float16` or "
            "`dynamic` with `string_input`."
        )
    if quantize == "int8" and not calibration_path:
        raise ValueError("`quantize=int8` needs `calibration_path` (--calibration_data).")
    info = model_dir_lib.load_model_dir(model_dir, load_model=False)
    parity = evaluation.task_parity(info)
    if quantize == "int8" and info.task not in INT8_TASKS:
        raise ValueError(f"`quantize=int8` is for classification; a {info.task} model takes "
                         "`none`, `float16` or `dynamic`.")
    if string_input and not parity.string_input:
        raise ValueError(f"`string_input` is for classification and {EMBEDDING_TASK}; a "
                         f"{info.task} file takes token ids.")
    out = os.path.abspath(os.fspath(out))
    if not out.endswith(".tflite"):
        raise ValueError(f"`out` ({out!r}) must end with .tflite.")
    started = time.time()
    model = info.load_model()
    eval_set = parity.read(info, eval_path, eval_limit)
    reference = parity.keras_outputs(model, eval_set)
    allowed_custom = litert.TFTEXT_CUSTOM_OPS if string_input else ()
    with_metadata = bool(add_metadata and not string_input)
    if with_metadata:
        _check_metadata_fits(info, parity)
        if not isinstance(model_info, metadata.ModelInfo):
            model_info = default_model_info(info, source, **(model_info or {}))

    candidates = {}  # name -> bytes: the shipped file first, comparisons after.
    int8_details = None
    with tempfile.TemporaryDirectory(prefix="tflite_export-") as scratch:
        saved_model_path = os.path.join(scratch, "saved_model")
        _write_saved_model(model, info, parity, saved_model_path, string_input)
        if quantize != "int8":
            candidates[quantize] = convert_saved_model(saved_model_path, quantize, string_input)
        else:
            float_model = convert_saved_model(saved_model_path, "none", False)
            calibration, validation = _calibration_sets(
                info, calibration_path, calibration_size, validation_size
            )
            if int8_mode == "naive":
                converter = quantization.int8_converter(saved_model_path, calibration)
                candidates["int8-naive"] = run_converter(converter)
            else:
                result = quantization.quantize_int8(
                    saved_model_path, float_model, calibration, validation,
                    target_agreement=int8_target_agreement, mse_budget=int8_mse_budget,
                    max_float_roles=int8_max_float_roles, fallback=int8_fallback, log=log,
                )
                candidates["int8-selective"] = result["selective"]
                candidates["int8-naive"] = result["naive"]
                int8_details = {
                    "fallback": int8_fallback,
                    "float_groups": result["float_groups"],
                    "denylisted_nodes": result["denylisted_nodes"],
                    "search": result["search"],
                    "search_seconds": result["seconds"],
                    "target_agreement": int8_target_agreement,
                    "mse_budget": int8_mse_budget,
                    "calibration_file": os.path.abspath(calibration_path),
                    "calibration_texts": len(calibration),
                    "validation_texts": len(validation),
                }
        shipped_name = next(iter(candidates))
        for name, content in candidates.items():
            flatbuffer.check_deployable(flatbuffer.inspect_model(content), allowed_custom)
            candidates[name] = _arrange(content, parity, string_input)
        if with_metadata:
            # The shipped file's final bytes: the parity run below measures what ships.
            candidates[shipped_name] = metadata.populate(
                candidates[shipped_name], kind=parity.metadata_kind, model_info=model_info,
                vocabulary_path=info.vocabulary_path, lower_case=info.lower_case,
                labels=parity.metadata_labels(info),
            )

        variants = []
        for name, content in candidates.items():
            path = os.path.join(scratch, f"{name}.tflite")
            with open(path, "wb") as f:
                f.write(content)
            outputs = file_outputs(path, info, parity, eval_set, num_threads, string_input)
            metrics = parity.compare(outputs, reference, eval_set, info)
            if name == shipped_name and not metrics["finite"]:
                raise flatbuffer.ConversionError(
                    f"The converted model returns non-finite outputs on {eval_path or 'the'} "
                    "texts; nothing was written."
                )
            variants.append({"name": name, "size_bytes": len(content), **metrics})
        shipped = candidates[shipped_name]
        evaluation.write_bytes(out, shipped)

    summary = flatbuffer.inspect_model(shipped)
    extra = {"string_input": string_input,
             "metadata": _metadata_summary(shipped) if with_metadata else None}
    if source is not None:
        extra.update(source_model_dir=None, source_checkpoint=os.path.abspath(source))
    if info.task == EMBEDDING_TASK:
        extra.update(pooling=info.config.get("pooling"), normalize=info.config.get("normalize"))
    if quantize == "int8":
        extra["int8_mode"] = int8_mode
    if int8_details:
        arithmetic = summary["fully_connected_macs_by_arithmetic"]
        total = max(1, sum(arithmetic.values()))
        int8_details.update(
            integer_compute_ops=summary["integer_compute_ops"],
            compute_ops=summary["compute_ops"],
            int8_fully_connected_fraction=(
                arithmetic.get("int8", 0) + arithmetic.get("dynamic_int8", 0)) / total,
            static_int8_fully_connected_fraction=arithmetic.get("int8", 0) / total,
            int8_weight_fraction=summary["int8_weight_fraction"],
        )
        extra["int8_float_groups"] = int8_details["float_groups"]
        extra["int8_fallback"] = int8_fallback
    write_manifest(out, info, quantize, string_input, summary, extra)

    main_metrics = variants[0]
    agreement = main_metrics.get("agreement")
    passed = bool(main_metrics["finite"] and (agreement is None or agreement >= min_agreement))
    report = {
        "file": out,
        "task": info.task,
        "quantize": quantize,
        "string_input": string_input,
        "metadata": with_metadata,
        "eval_file": os.path.abspath(eval_path) if eval_path else None,
        **{key: value for key, value in main_metrics.items() if key not in ("name",)},
        "agreement_name": parity.agreement_name,
        "agreement": agreement,
        "size_bytes": main_metrics["size_bytes"],
        "min_agreement": min_agreement,
        "passed": passed,
        "variants": variants,
        "int8": int8_details,
        "seconds": time.time() - started,
    }
    evaluation.write_json(out + ".parity.json", report)
    evaluation.write_text(out + ".parity.md", _markdown(report, parity))
    return report


def convert_checkpoint(init, out, pooling="mean", normalize=True, sequence_length=None,
                       **kwargs):
    """Exports a pretrained checkpoint as a sentence embedder (`text_embedding`) to `out`.

    The checkpoint's encoder with mean or `[CLS]` pooling (and L2 normalisation) is written to
    a temporary model directory (`keras_bert.tasks.text_embedding.write_model_dir`), which
    `convert` then exports; the manifest names the checkpoint.

    Args:
        init: str. The checkpoint (Hugging Face or Google BERT directory).
        out: str. The `.tflite` path.
        pooling: str. `"mean"` or `"cls"`.
        normalize: bool. L2-normalise the embedding.
        sequence_length: int or None. The longest input; default the task's (256, or the
            checkpoint's maximum if shorter).
        **kwargs: passed to `convert` (`quantize`, `eval_path`, `add_metadata`, ...).

    Returns:
        The parity report (see `convert`).
    """
    with tempfile.TemporaryDirectory(prefix="tflite_embedder-") as scratch:
        model_dir = text_embedding.write_model_dir(
            init, os.path.join(scratch, os.path.basename(os.path.normpath(init))),
            pooling=pooling, normalize=normalize, sequence_length=sequence_length,
        )
        return convert(model_dir, out, source=init, **kwargs)


def main(argv):
    del argv
    kwargs = dict(
        quantize=FLAGS.quantize,
        string_input=FLAGS.string_input, eval_path=FLAGS.eval, eval_limit=FLAGS.eval_limit,
        calibration_path=FLAGS.calibration_data, calibration_size=FLAGS.calibration_size,
        validation_size=FLAGS.validation_size, int8_mode=FLAGS.int8_mode,
        int8_target_agreement=FLAGS.int8_target_agreement, int8_mse_budget=FLAGS.int8_mse_budget,
        int8_max_float_roles=FLAGS.int8_max_float_roles, int8_fallback=FLAGS.int8_fallback,
        min_agreement=FLAGS.min_agreement, num_threads=FLAGS.num_threads,
        add_metadata=FLAGS.metadata,
    )
    overrides = dict(name=FLAGS.model_name, description=FLAGS.model_description,
                     version=FLAGS.model_version, author=FLAGS.model_author,
                     license=FLAGS.model_license)
    with graphs.model_dir_from_flags() as model_dir:
        report = convert(model_dir, FLAGS.out, model_info=overrides, source=FLAGS.init,
                         **kwargs)
    print(open(report["file"] + ".parity.md", encoding="utf-8").read())
    if not report["passed"]:
        print(
            f"FAIL: {report['agreement_name']} {report['agreement']} is under --min_agreement "
            f"{report['min_agreement']}.", file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    define_flags()
    cli.run(
        main, flag_for=_FLAG_FOR, input_flags=("model_dir", "init", "eval", "calibration_data"),
        check=_check_flags,
    )
