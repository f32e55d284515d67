"""Converts a fine-tuned classifier to a LiteRT (`.tflite`) file, with a parity report.

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

The token-id file's signature `serving_default` takes int32 `token_ids`, `segment_ids`,
`padding_mask` of shape `(1, length)`, any length up to the model directory's `sequence_length`
(the manifest's `max_seq_length`; the interpreter resizes per call), and returns float32 `logits`
`(1, num_classes)`; it uses TFLite builtin ops only. The string file takes `text` (string,
`(1,)`; plus `text_pair` for pair tasks) and returns `logits`; besides builtins it uses
tensorflow-text's custom ops `FastBertNormalize`, `FastWordpieceTokenizeWithOffsets` and
`TFText>ByteSplitByOffsets`.

Conversion goes through `keras.export.ExportArchive` (a SavedModel with the weights frozen in)
and `tf.lite.TFLiteConverter.from_saved_model`, restricted to builtin ops, and then fails if the
file has Select TF (Flex) ops, custom ops other than tensorflow-text's, or variable ops.

Beside `FILE` it writes `<stem>.manifest.json` (vocabulary and its SHA-256, lower-casing,
lengths, signature, quantization, ops, size), `<stem>.vocab.txt`, and the parity report
`FILE.parity.json` and `FILE.parity.md`: max |logit difference| against the Keras model, label
agreement, and accuracy on `--eval`. The exit status is 1 when agreement is under
`--min_agreement`.
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
from export.core import quantization
from keras_bert.models import model_dir as model_dir_lib
from keras_bert.utils import cli

QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")
FLAGS = flags.FLAGS


def define_flags():
    """Defines the command-line flags (only when run as a program, so that the modules of
    `export/` can be imported together)."""
    flags.DEFINE_string(
        "model_dir", None, "Fine-tuned model directory written by `training.finetune`.",
        required=True,
    )
    flags.DEFINE_string("out", None, "The `.tflite` file to write.", required=True)
    flags.DEFINE_enum(
        "quantize", "none", QUANTIZE_MODES,
        "none: float32. float16: float16 weights. dynamic: int8 weights, float activations "
        "(dynamic-range). int8: full-integer, calibrated on --calibration_data, with the op roles "
        "that cost most accuracy keeping float activations (see --int8_fallback; "
        "--int8_mode=naive quantizes every op).",
    )
    flags.DEFINE_bool(
        "string_input", False,
        "Put the tokenizer and packer inside the file: it takes `text` (string) instead of token "
        "ids, and needs tensorflow-text's TFLite kernels registered.",
    )
    flags.DEFINE_string(
        "eval", None, "Labelled TSV (the fine-tuning columns) for the parity report. Default: a "
        "few built-in sentences, without accuracy.",
    )
    flags.DEFINE_integer("eval_limit", None, "Use at most this many --eval rows.")
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
        "min_agreement", 0.99, "Fail (exit 1) when label agreement with Keras falls under this."
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


# The flag behind each argument of `convert` that its errors name.
_FLAG_FOR = {
    "model_dir": "model_dir", "out": "out", "quantize": "quantize",
    "string_input": "string_input", "eval_path": "eval", "calibration_path": "calibration_data",
    "int8_mode": "int8_mode", "int8_fallback": "int8_fallback",
}


# === Building the file ===


def _write_saved_model(model, info, path, string_input):
    """The single-example SavedModel the converter reads, via `keras.export.ExportArchive`."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    if string_input:
        preprocessor = info.preprocessor
        specs = graphs.text_signature(info.is_pair_task, batch_size=1)
        if info.is_pair_task:

            def serve(text, text_pair):
                inputs = graphs.text_inputs(preprocessor, text, text_pair, batch_size=1)
                return {"logits": model(inputs, training=False)}

        else:

            def serve(text):
                inputs = graphs.text_inputs(preprocessor, text, batch_size=1)
                return {"logits": model(inputs, training=False)}

        signature = list(specs.values())
    else:

        def serve(inputs):
            # A static batch of 1 lets the converter lower every mask reshape to a builtin.
            return {"logits": model(inputs, training=False)}

        signature = [graphs.token_id_signature(batch_size=1)]
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

    def describe(details):
        return {
            name: {
                "dtype": np.dtype(detail["dtype"]).name,
                "shape_signature": [int(x) for x in detail["shape_signature"]],
            }
            for name, detail in sorted(details.items())
        }

    return {
        "signature": list(interpreter.get_signature_list())[0],
        "inputs": describe(runner.get_input_details()),
        "outputs": describe(runner.get_output_details()),
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
        "min_seq_length": 3 if info.is_pair_task else 2,
        "sequence_lengths": (
            "texts are packed to at most max_seq_length tokens inside the file" if string_input
            else "any length from min_seq_length to max_seq_length; resize the inputs per call"
        ),
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


def file_logits(path, info, texts, texts_pair, num_threads=2, string_input=False):
    """Float32 logits `(N, C)` of a `.tflite` file, one example per call at its own length."""
    classifier = litert.LiteRTClassifier(
        path, num_threads=num_threads, vocabulary=info.vocabulary_path, labels=info.labels,
        sequence_length=info.sequence_length, custom_ops=string_input,
    )
    if string_input:
        return classifier.logits(texts, texts_pair)
    return classifier.logits_from_packed(info.preprocessor.pack_numpy(texts, texts_pair))


def _markdown(report):
    lines = [
        f"# Parity: {report['file']}",
        "",
        f"Evaluation: `{report['eval_file']}` ({report['num_examples']} examples); reference: "
        f"the Keras model (accuracy {_percent(report.get('keras_accuracy'))}). Threshold: label "
        f"agreement >= {_percent(report['min_agreement'])}.",
        "",
        "| variant | file size | accuracy | label agreement | max abs diff | mean abs diff |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for variant in report["variants"]:
        lines.append(
            f"| {variant['name']} | {variant['size_bytes'] / 1e6:.1f} MB | "
            f"{_percent(variant.get('accuracy'))} | {_percent(variant.get('label_agreement'))} | "
            f"{variant['max_abs_diff']:.3g} | {variant['mean_abs_diff']:.3g} |"
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


# === Entry point ===


def convert(model_dir, out, quantize="none", string_input=False, eval_path=None,
            eval_limit=None, calibration_path=None, calibration_size=300, validation_size=400,
            int8_mode="selective", int8_target_agreement=0.995, int8_mse_budget=0.002,
            int8_max_float_roles=None, int8_fallback="dynamic",
            min_agreement=0.99, num_threads=2, log=print):
    """Converts `model_dir` to `out` and writes the manifest and parity report beside it.

    Args:
        model_dir: str. Fine-tuned model directory (see `keras_bert.models.model_dir`).
        out: str. The `.tflite` path.
        quantize: str. One of `QUANTIZE_MODES`.
        string_input: bool. Tokenizer and packer inside the file.
        eval_path: str or None. Labelled TSV for the parity report.
        eval_limit: int or None. Use at most this many evaluation rows.
        calibration_path: str or None. Text for int8 calibration (required for int8).
        calibration_size, validation_size: int. Calibration rows and held-out rows.
        int8_mode: str. `selective` or `naive`.
        int8_target_agreement: float. Selective int8's held-out agreement target.
        int8_mse_budget: float. Selective int8's held-out mean squared logit difference target.
        int8_max_float_roles: int or None. Selective int8 keeps at most this many op roles
            (see `export.core.quantization.ROLES`) in float.
        int8_fallback: str. Selective int8: `dynamic` gives the ops kept out of full-integer
            int8 weights (dynamic-range), `float` keeps them float32.
        min_agreement: float. The parity threshold.
        num_threads: int. Interpreter threads for the parity run.
        log: callable taking a str.

    Returns:
        The parity report (dict); `report["passed"]` says whether agreement met the threshold.

    Raises:
        ValueError: bad arguments or inputs.
        export.core.flatbuffer.ConversionError: the file would not run on stock LiteRT, still has
            variable ops, or returns non-finite logits. Nothing is written then.
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
    graphs.check_exported_task(info)
    out = os.path.abspath(os.fspath(out))
    if not out.endswith(".tflite"):
        raise ValueError(f"`out` ({out!r}) must end with .tflite.")
    started = time.time()
    model = info.load_model()
    if eval_path:
        texts, texts_pair, labels = evaluation.read_tsv(eval_path, info, eval_limit)
    else:
        texts, texts_pair = evaluation.read_texts(info, None, eval_limit)
        labels = None
    reference = evaluation.keras_logits(model, info.preprocessor, texts, texts_pair)
    allowed_custom = litert.TFTEXT_CUSTOM_OPS if string_input else ()

    candidates = {}  # name -> bytes: the shipped file first, comparisons after.
    int8_details = None
    with tempfile.TemporaryDirectory(prefix="tflite_export-") as scratch:
        saved_model_path = os.path.join(scratch, "saved_model")
        _write_saved_model(model, info, saved_model_path, string_input)
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
        for content in candidates.values():
            flatbuffer.check_deployable(flatbuffer.inspect_model(content), allowed_custom)

        variants = []
        for name, content in candidates.items():
            path = os.path.join(scratch, f"{name}.tflite")
            with open(path, "wb") as f:
                f.write(content)
            logits = file_logits(path, info, texts, texts_pair, num_threads, string_input)
            metrics = evaluation.keras_parity(logits, reference, labels, info.regression)
            if name == shipped_name and not metrics["finite"]:
                raise flatbuffer.ConversionError(
                    f"The converted model returns non-finite logits on {eval_path or 'the'} "
                    "texts; nothing was written."
                )
            variants.append({"name": name, "size_bytes": len(content), **metrics})
        shipped = candidates[shipped_name]
        evaluation.write_bytes(out, shipped)

    summary = flatbuffer.inspect_model(shipped)
    extra = {"string_input": string_input}
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
    agreement = main_metrics.get("label_agreement")
    passed = bool(main_metrics["finite"] and (agreement is None or agreement >= min_agreement))
    report = {
        "file": out,
        "quantize": quantize,
        "string_input": string_input,
        "eval_file": os.path.abspath(eval_path) if eval_path else None,
        "num_examples": len(texts),
        "accuracy": main_metrics.get("accuracy"),
        "keras_accuracy": main_metrics.get("keras_accuracy"),
        "label_agreement": agreement,
        "max_abs_diff": main_metrics["max_abs_diff"],
        "mean_abs_diff": main_metrics["mean_abs_diff"],
        "size_bytes": main_metrics["size_bytes"],
        "min_agreement": min_agreement,
        "passed": passed,
        "variants": variants,
        "int8": int8_details,
        "seconds": time.time() - started,
    }
    evaluation.write_json(out + ".parity.json", report)
    evaluation.write_text(out + ".parity.md", _markdown(report))
    return report


def main(argv):
    del argv
    report = convert(
        FLAGS.model_dir, FLAGS.out, quantize=FLAGS.quantize,
        string_input=FLAGS.string_input, eval_path=FLAGS.eval, eval_limit=FLAGS.eval_limit,
        calibration_path=FLAGS.calibration_data, calibration_size=FLAGS.calibration_size,
        validation_size=FLAGS.validation_size, int8_mode=FLAGS.int8_mode,
        int8_target_agreement=FLAGS.int8_target_agreement, int8_mse_budget=FLAGS.int8_mse_budget,
        int8_max_float_roles=FLAGS.int8_max_float_roles, int8_fallback=FLAGS.int8_fallback,
        min_agreement=FLAGS.min_agreement,
        num_threads=FLAGS.num_threads,
    )
    print(open(report["file"] + ".parity.md", encoding="utf-8").read())
    if not report["passed"]:
        print(
            f"FAIL: label agreement {report['label_agreement']} is under --min_agreement "
            f"{report['min_agreement']}.", file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    define_flags()
    cli.run(
        main, flag_for=_FLAG_FOR, input_flags=("model_dir", "eval", "calibration_data"),
        check=_check_flags,
    )
