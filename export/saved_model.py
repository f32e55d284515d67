"""Exports a model directory of any task as a TF Serving SavedModel: text in, predictions out.

    python -m export.saved_model --model_dir=/tmp/minilm_sst2 --out=/tmp/serving/sst2

    # An explicit version, verified on SST-2 test sentences before it is published.
    python -m export.saved_model --model_dir=/tmp/minilm_sst2 --out=/tmp/serving/sst2 \\
        --version=3 --eval=../shared/data/sst2/test.tsv

    # Question answering, verified on SQuAD questions; token tagging, on a CoNLL file.
    python -m export.saved_model --model_dir=/tmp/squad --out=/tmp/serving/qa \\
        --eval=../shared/data/squad/dev-v1.1-2articles.json
    python -m export.saved_model --model_dir=/tmp/ner --out=/tmp/serving/ner --eval=dev.conll

    # Sentence embeddings straight from a checkpoint (no fine-tuning).
    python -m export.saved_model --init=../shared/models/all-MiniLM-L6-v2 \\
        --task=text_embedding --out=/tmp/serving/minilm [--pooling=cls] [--nonormalize]

writes `OUT/<version>/` (the next free version, 1 in an empty `OUT`), the layout
`tensorflow_model_server --model_base_path=OUT` watches. The version is built in a hidden
temporary directory beside it, verified, and renamed into place: a crash or a failed check never
leaves a half-written version for the server to load.

Signatures (the task's `keras_bert.tasks.ServingSpec`; the tokenizer and packer run inside the
graph: tensorflow-text ops `FastBertNormalize`, `FastWordpieceTokenizeWithOffsets` and, for
texts that spell a special token, `ByteSplitByOffsets`; `vocab.txt` is kept under `assets/`):
- classification `serving_default`: `text` (string, `(batch_size,)`), plus `text_pair` for pair
  tasks -> `logits` (float32, `(batch_size, num_classes)`), `probabilities` (softmax), `label`
  (int64 class index) and `label_name` (string). Regression: `logits` and `score`.
- qa `serving_default`: `question`, `context` (string, `(batch_size,)`) -> `answer` (string: the
  context's characters `[start, end)`), `score` (float32, start + end logit; -inf without an
  answer), `probability` (float32, P(start) * P(end)), `start`, `end` (int32 character offsets
  into the context, in Unicode code points as Python indexes str; `end` exclusive; -1 without
  an answer). Every window of the context (`doc_stride` apart) is run and decoded in the graph
  as `training.predict` does (`keras_bert.tasks.question_answering.decode_answers`).
- token_classification `serving_default`: `text` -> `words` (string `(batch_size, max_words)`:
  the text cut at white space, as `training.predict` cuts it, padded with ""), `num_words`
  (int32 `(batch_size,)`), `tags` (string `(batch_size, max_words)`, "" past `num_words`) and
  `scores` (float32 `(batch_size, max_words)`: the tag's probability). Dense outputs, as TF
  Serving's REST API needs.
- text_embedding `serving_default`: `text` -> `embedding` (float32 `(batch_size, hidden_dim)`).
- `predict_token_ids`: int32 `token_ids`, `segment_ids`, `padding_mask` of shape
  `(batch_size, sequence_length)` -> the model's outputs: classification the same outputs as
  `serving_default`, qa `start_logits` and `end_logits` (`(batch_size, sequence_length)`, one row
  per window), token_classification `logits` (`(batch_size, sequence_length, num_tags)`),
  text_embedding `embedding`.

Verification, each in a fresh process: `saved_model_cli show --all`, `saved_model_cli run` on
`predict_token_ids` (its outputs must match the Keras model's within `--max_abs_diff`), and
`tf.saved_model.load` in a Python that imports only `tensorflow` and `tensorflow_text` (the ops
TF Serving links) calling `serving_default`, whose outputs the task compares with
`training.predict`'s (`ServingSpec.check`: classification logits and labels, QA answers and
spans, tags per word, embeddings). `--eval` is in the task's data format: a TSV of the
fine-tuning columns (classification, text_embedding), a SQuAD v1.1 JSON (qa), a CoNLL file
(token_classification).

Loading any signature imports the whole graph, so every loader needs tensorflow-text's ops
registered; the stock `saved_model_cli` script registers none, and `saved_model_cli run` is
therefore started as

    python -c "import sys, tensorflow_text; from tensorflow.python.tools.saved_model_cli \\
        import main; sys.argv[0] = 'saved_model_cli'; sys.exit(main())" run --dir OUT/1 \\
        --tag_set serve --signature_def predict_token_ids \\
        --input_exprs 'token_ids=[[101,2307,102]];segment_ids=[[0,0,0]];padding_mask=[[1,1,1]]'

`--notext_signature` writes a SavedModel without the tokenizer (`serving_default` then takes
token ids), which the stock `saved_model_cli` and a server without tensorflow-text can load.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf
from absl import flags

from export.core import evaluation
from export.core import graphs
from keras_bert.inputs import INPUT_NAMES
from keras_bert.models import model_dir as model_dir_lib
from keras_bert.utils import cli
FLAGS = flags.FLAGS


def define_flags():
    """Defines the command-line flags (only when run as a program, so that the modules of
    `export/` can be imported together)."""
    flags.DEFINE_string(
        "model_dir", None, "Fine-tuned model directory written by `training.finetune` (or "
        "--init=CHECKPOINT --task=text_embedding instead).",
    )
    graphs.define_init_flags()
    flags.DEFINE_string(
        "out", None, "Model base path: the version is written to OUT/<version>/.", required=True
    )
    flags.DEFINE_integer(
        "version", None, "Version number (a positive int). Default: one more than the highest "
        "version already in --out (1 in an empty directory)."
    )
    flags.DEFINE_bool(
        "overwrite", False, "Replace an existing OUT/<version>/ (atomically) instead of failing."
    )
    flags.DEFINE_string(
        "eval", None, "Data to verify the export on, in the task's format: a TSV of the "
        "fine-tuning columns (classification, text_embedding), SQuAD v1.1 JSON (qa), CoNLL "
        "(token_classification). Default: a few built-in texts."
    )
    flags.DEFINE_integer(
        "eval_limit", None, "Verify on at most this many rows of --eval."
    )
    flags.DEFINE_float(
        "max_abs_diff", 1e-4, "Largest |logit difference| against the Keras model allowed."
    )
    flags.DEFINE_bool(
        "verify", True, "Run the fresh-process checks before publishing the version."
    )
    flags.DEFINE_string(
        "report", None, "Also write the verification report (JSON) to this path."
    )
    flags.DEFINE_bool(
        "text_signature", True,
        "serving_default takes text (tokenizer in the graph: the server must link "
        "tensorflow-text's ops). --notext_signature: serving_default takes token ids and the "
        "SavedModel needs no tensorflow-text op.",
    )
    flags.register_validator(
        "version", lambda value: value is None or value >= 1, "must be a positive int."
    )


def _check_flags(argv):
    """The checks of the flags that read the disk (before anything is written to --out)."""
    del argv  # no positional arguments
    cli.check_paths(directories=["model_dir"], files=["eval"])
    graphs.check_init_flags()
    if os.path.exists(FLAGS.out) and not os.path.isdir(FLAGS.out):
        raise cli.FlagError("out", FLAGS.out, "is a file, not a directory.")


# The flag behind each argument of `export_saved_model` that its errors name.
_FLAG_FOR = {
    "model_dir": "model_dir", "out": "out", "version": "version", "overwrite": "overwrite",
    "eval_path": "eval", "eval_limit": "eval_limit", "max_abs_diff": "max_abs_diff",
}



SERVING_DEFAULT = "serving_default"
TOKEN_ID_SIGNATURE = "predict_token_ids"



def _serving_module(model, info, serving, text_signature=True):
    """A `tf.Module` holding the model, the vocabulary asset and the signatures.

    The text signature runs the model directory's preprocessor (`info.preprocessor`) in the
    graph and ends in the task's `serving.text_signature_outputs`; the token-id signature ends
    in `serving.outputs` (`keras_bert.tasks.ServingSpec`). Without `text_signature`,
    `serving_default` is the token-id signature and the graph has no tensorflow-text op.
    """
    preprocessor = info.preprocessor
    labels = info.labels
    module = tf.Module()
    module.vocabulary = tf.saved_model.Asset(info.vocabulary_path)

    @tf.function(input_signature=[graphs.token_id_signature()])
    def predict_token_ids(inputs):
        return serving.outputs(model(inputs, training=False), labels)

    @tf.function(input_signature=[graphs.serving_text_signature(serving)])
    def serve_text(texts):
        return serving.text_signature_outputs(model, preprocessor, labels, texts)

    @tf.function(input_signature=[])
    def vocabulary_file():
        return {"vocabulary_file": module.vocabulary.asset_path}

    if text_signature:
        module.serve_text = serve_text
    module.predict_token_ids = predict_token_ids
    module.vocabulary_file = vocabulary_file
    signatures = {
        SERVING_DEFAULT: (serve_text if text_signature else predict_token_ids
                          ).get_concrete_function(),
        TOKEN_ID_SIGNATURE: predict_token_ids.get_concrete_function(),
    }
    # The tf.Variables the traced functions read must be tracked by the saved object: neither
    # a Keras 3 model attribute nor its `model.variables` (Keras wrappers) makes them so, and
    # the SavedModel then loads in TF2 but reads missing variables in TF1-style loaders (TF
    # Serving, `saved_model_cli run`). keras.export tracks them the same way.
    captured = {}
    for function in signatures.values():
        for variable in function.variables:
            captured[id(variable)] = variable
    module.captured_variables = list(captured.values())
    return module, signatures


def next_version(out):
    """One more than the highest numeric version directory in `out` (1 if none)."""
    if not os.path.isdir(out):
        return 1
    versions = [int(name) for name in os.listdir(out) if re.fullmatch(r"\d+", name)]
    return max(versions, default=0) + 1


def export_saved_model(model_dir, out, version=None, overwrite=False, eval_path=None,
                       eval_limit=None, verify=True, max_abs_diff=1e-4, text_signature=True):
    """Writes the serving SavedModel of `model_dir` to `out/<version>/`, atomically.

    Args:
        model_dir: str. Fine-tuned model directory (see `keras_bert.models.model_dir`).
        out: str. The model base path.
        version: int or None. None: `next_version(out)`.
        overwrite: bool. Replace an existing version instead of raising.
        eval_path: str or None. Data to verify on, in the task's format (`ServingSpec.
            read_inputs`: a TSV of texts, SQuAD JSON, CoNLL); None: built-in texts.
        eval_limit: int or None. Verify on at most this many rows.
        verify: bool. Run the fresh-process checks before publishing.
        max_abs_diff: float. Largest |difference| of the token-id outputs (logits,
            embeddings) from the Keras model's allowed in verification.
        text_signature: bool. Whether `serving_default` takes text (tokenizer in the graph);
            without it, `serving_default` takes token ids and the SavedModel needs no
            tensorflow-text op (for servers built without them).

    Returns:
        dict: `path` (the version directory), `version`, and `verification` (or None).

    Raises:
        ValueError: bad arguments, an existing version without `overwrite`, or a failed check
            (then nothing is published).
    """
    info = model_dir_lib.load_model_dir(model_dir, load_model=False)
    serving = graphs.check_exported_task(info).serving
    out = os.path.abspath(os.fspath(out))
    if version is None:
        version = next_version(out)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"`version` must be a positive int, received {version!r}.")
    final_path = os.path.join(out, str(version))
    if os.path.exists(final_path) and not overwrite:
        raise ValueError(
            f"Version directory {final_path} already exists; pass a new `version` or `overwrite`."
        )
    model = info.load_model()
    module, signatures = _serving_module(model, info, serving, text_signature)

    os.makedirs(out, exist_ok=True)
    # A leading dot and no digits-only name: TF Serving ignores the directory while it is built.
    staging = tempfile.mkdtemp(prefix=f".tmp-version-{version}-", dir=out)
    try:
        saved_model_path = os.path.join(staging, "saved_model")
        tf.saved_model.save(module, saved_model_path, signatures=signatures)
        verification = None
        if verify:
            inputs = serving.read_inputs(info, eval_path, eval_limit)
            verification = verify_saved_model(
                saved_model_path, info, serving, inputs, max_abs_diff, text_signature
            )
            if not verification["passed"]:
                raise ValueError(
                    "The SavedModel failed verification; nothing was published:\n"
                    + json.dumps(verification, indent=2)
                )
        _publish(saved_model_path, final_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if verification is not None:
        verification["path"] = final_path
    return {"path": final_path, "version": version, "verification": verification}


def _publish(source, destination):
    """Renames `source` to `destination`, replacing an existing one only once it is complete."""
    if not os.path.exists(destination):
        os.rename(source, destination)
        return
    retired = tempfile.mkdtemp(prefix=f".{os.path.basename(destination)}.retired-",
                               dir=os.path.dirname(destination))
    os.rmdir(retired)
    os.rename(destination, retired)
    os.rename(source, destination)
    shutil.rmtree(retired, ignore_errors=True)


# === Verification in fresh processes ===

# Runs in a Python that imports only tensorflow and tensorflow_text, like TF Serving's binary
# links only TensorFlow's and tensorflow-text's kernels.
_LOAD_AND_SERVE = r"""
import json, os, sys
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry
path, inputs_path, outputs_path = sys.argv[1:4]
# The ops of the graph that core TensorFlow does not register: what a server must link besides.
proto = saved_model_pb2.SavedModel()
with open(os.path.join(path, "saved_model.pb"), "rb") as f:
    proto.ParseFromString(f.read())
op_types = set()
for meta_graph in proto.meta_graphs:
    op_types.update(node.op for node in meta_graph.graph_def.node)
    for function in meta_graph.graph_def.library.function:
        op_types.update(node.op for node in function.node_def)
non_core = sorted(op for op in op_types if op_def_registry.get(op) is None)
import tensorflow_text  # noqa: F401  registers FastBertNormalize and the WordPiece ops
with open(inputs_path, encoding="utf-8") as f:
    inputs = json.load(f)
loaded = tf.saved_model.load(path, tags=["serve"])
serve = loaded.signatures["serving_default"]
# Requests of at most 32 inputs, as a client would send them (a QA context may make several
# windows each); outputs with a second axis that varies by request (words) are padded.
chunks = []
num_inputs = len(next(iter(inputs.values())))
for first in range(0, num_inputs, 32):
    feed = {name: tf.constant(values[first:first + 32], tf.string)
            for name, values in inputs.items()}
    chunks.append({name: value.numpy() for name, value in serve(**feed).items()})
outputs = {}
for name in chunks[0] if chunks else ():
    values = [chunk[name] for chunk in chunks]
    if values[0].ndim > 1:
        width = max(value.shape[1] for value in values)
        fill = b"" if values[0].dtype == object else 0
        values = [np.pad(value, [(0, 0), (0, width - value.shape[1])] + [(0, 0)] * (value.ndim - 2),
                         constant_values=fill) for value in values]
    value = np.concatenate(values)
    if value.dtype == object:  # strings: UTF-8 bytes -> str
        value = np.vectorize(lambda b: b.decode("utf-8"), otypes=[str])(value) if value.size \
            else value.astype(str)
    outputs["output_" + name] = value
project = sorted(m for m in sys.modules if m.split(".")[0] in ("keras_bert", "export", "training"))
np.savez(outputs_path, **outputs,
         project_modules=np.array(project, dtype=str), non_core_ops=np.array(non_core, dtype=str))
"""


def _run(command, what):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise ValueError(f"{what} failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def _saved_model_cli(with_text_ops=False):
    """The `saved_model_cli` command line, optionally with tensorflow-text's ops registered.

    `saved_model_cli run` imports the whole graph, whose text signature needs tensorflow-text's
    ops, and the console script imports no op libraries; the same `main` is then started from a
    Python that has imported `tensorflow_text` first, as a model server links those ops.
    """
    if with_text_ops:
        return [sys.executable, "-c", _SAVED_MODEL_CLI_WITH_TEXT_OPS]
    candidate = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    return [candidate] if os.path.isfile(candidate) else ["saved_model_cli"]


_SAVED_MODEL_CLI_WITH_TEXT_OPS = (
    "import sys; import tensorflow_text; "
    "from tensorflow.python.tools.saved_model_cli import main; "
    "sys.argv[0] = 'saved_model_cli'; sys.exit(main())"
)


def verify_saved_model(path, info, serving, inputs, max_abs_diff=1e-4, text_signature=True):
    """Checks a written SavedModel in fresh processes, the way TF Serving loads it.

    Args:
        path: str. The SavedModel directory.
        info: `keras_bert.models.ModelDir`.
        serving: the task's `keras_bert.tasks.ServingSpec`.
        inputs: dict of lists of str, named by `serving.text_inputs` (`serving.read_inputs`).
        max_abs_diff: float. Largest |difference| of the token-id outputs from the Keras
            model's allowed (and the task's tolerance for the text outputs).
        text_signature: bool. Whether `serving_default` takes text; if not, the token-id
            signature is run with the stock `saved_model_cli` (no tensorflow-text loaded) and
            there is no text check.

    Returns:
        dict: per check, its figures, and `passed`.
    """
    first_input = inputs[serving.text_inputs[0]]
    report = {"path": path, "num_texts": len(first_input), "max_abs_diff_allowed": max_abs_diff}
    with tempfile.TemporaryDirectory(prefix="saved_model_check-") as scratch:
        # 1. saved_model_cli show: both signatures with the contract's names.
        shown = _run(_saved_model_cli() + ["show", "--dir", path, "--all"], "saved_model_cli show")
        needles = [f"signature_def['{SERVING_DEFAULT}']", f"signature_def['{TOKEN_ID_SIGNATURE}']",
                   "inputs['token_ids']"]
        needles += [f"outputs['{name}']" for name in serving.numeric_outputs]
        if text_signature:
            needles += [f"inputs['{name}']" for name in serving.text_inputs]
        missing = [needle for needle in needles if needle not in shown]
        report["saved_model_cli_show"] = {"missing": missing, "passed": not missing}

        # 2. saved_model_cli run on the token-id signature, on the first inputs.
        count = min(len(first_input), 8)
        packed = info.preprocessor(*[inputs[name][:count] for name in serving.text_inputs])
        packed = {name: np.asarray(packed[name], np.int32) for name in INPUT_NAMES}
        expected = serving.outputs(info.load_model()(packed, training=False), info.labels)
        arguments = []
        for name in INPUT_NAMES:
            array_path = os.path.join(scratch, f"{name}.npy")
            np.save(array_path, packed[name])
            arguments.append(f"{name}={array_path}")
        cli_out = os.path.join(scratch, "cli")
        _run(
            _saved_model_cli(with_text_ops=text_signature) + [
                "run", "--dir", path, "--tag_set", "serve",
                "--signature_def", TOKEN_ID_SIGNATURE, "--inputs", ";".join(arguments),
                "--outdir", cli_out, "--overwrite",
            ],
            "saved_model_cli run",
        )
        report["saved_model_cli_run"] = _compare_outputs(
            {name: np.load(os.path.join(cli_out, f"{name}.npy"))
             for name in serving.numeric_outputs},
            {name: np.asarray(expected[name]) for name in serving.numeric_outputs},
            max_abs_diff,
        )

        # 3. tf.saved_model.load with only tensorflow and tensorflow_text, on the strings; the
        # task compares the outputs with what `training.predict` computes.
        if text_signature:
            inputs_path = os.path.join(scratch, "inputs.json")
            with open(inputs_path, "w", encoding="utf-8") as f:
                json.dump({name: list(inputs[name]) for name in serving.text_inputs}, f)
            outputs_path = os.path.join(scratch, "outputs.npz")
            _run([sys.executable, "-c", _LOAD_AND_SERVE, path, inputs_path, outputs_path],
                 "Loading with tensorflow and tensorflow_text only")
            with np.load(outputs_path) as loaded:
                outputs = {key[len("output_"):]: loaded[key] for key in loaded.files
                           if key.startswith("output_")}
                project_modules = loaded["project_modules"].tolist()
                non_core_ops = loaded["non_core_ops"].tolist()
            served = serving.check(info, inputs, outputs, max_abs_diff)
            served["project_modules_imported"] = project_modules
            served["ops_outside_core_tensorflow"] = non_core_ops
            served["passed"] = bool(served["passed"] and not project_modules)
            report["serving_default_fresh_process"] = served
    checks = ["saved_model_cli_show", "saved_model_cli_run"]
    if text_signature:
        checks.append("serving_default_fresh_process")
    report["passed"] = all(report[key]["passed"] for key in checks)
    return report


def _compare_outputs(outputs, expected, max_abs_diff):
    """The largest |difference| of each output from the expected one, and whether all pass."""
    report, passed = {}, True
    for name, value in expected.items():
        value = np.asarray(value, np.float32)
        actual = np.asarray(outputs[name], np.float32)
        if actual.shape != value.shape:
            report[name] = {"error": f"shape {actual.shape}, expected {value.shape}"}
            passed = False
            continue
        diff = float(np.abs(actual - value).max()) if value.size else 0.0
        report[name] = {"max_abs_diff": diff}
        passed = passed and diff <= max_abs_diff
    if len(expected) == 1:  # one output: its figures at the top, as reports have shown them
        report.update(report.pop(next(iter(expected))))
    report["passed"] = bool(passed)
    return report


def main(argv):
    del argv
    with graphs.model_dir_from_flags() as model_dir:
        result = export_saved_model(
            model_dir, FLAGS.out, version=FLAGS.version, overwrite=FLAGS.overwrite,
            eval_path=FLAGS.eval, eval_limit=FLAGS.eval_limit, verify=FLAGS.verify,
            max_abs_diff=FLAGS.max_abs_diff, text_signature=FLAGS.text_signature,
        )
    if FLAGS.report:
        evaluation.write_json(FLAGS.report, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    define_flags()
    cli.run(main, flag_for=_FLAG_FOR, input_flags=("model_dir", "eval", "init"),
            check=_check_flags)
