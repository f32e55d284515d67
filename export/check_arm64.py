"""Runs token-id `.tflite` files on an emulated arm64 CPU and compares them with this x86 host.

Every file is run twice on the same inputs: here, with `ai_edge_litert`, and on arm64, inside the
Debian arm64 root file system that `scripts/setup_arm64.sh` builds (qemu-user via binfmt_misc,
Debian's arm64 Python 3.11, ai-edge-litert's aarch64 wheel). Both sides run
`export/core/arm64_runner.py`; the arm64 side runs once per file (a process start under emulation
costs seconds), with all examples passed in one `.npz`. The emulated CPU is a QEMU model
(`--arm64_cpu`, default Cortex-A76), described to LiteRT's cpuinfo through a generated
/proc/cpuinfo so that the XNNPACK delegate starts as it would on a phone; the report says how
many nodes XNNPACK ran on each side. Emulation says nothing about speed on a phone.

`--eval` is read as the task of each file's manifest (`task`) reads its data, and packed by
that task's preprocessor (tokenized with `keras_bert.load_tokenizer`):

- `classification`: a GLUE-style TSV (a header naming `sentence`, or `sentence1` and
  `sentence2`, and `label`), one input per row; logits: max |diff|, label agreement and
  accuracy on each CPU.
- `qa`: SQuAD v1.1 JSON (`read_squad`), the windows of `SpanLabelerPreprocessor`; start and end
  logits: max |diff| and agreement of the argmax over each window's real positions.
- `token_classification`: CoNLL (`read_conll`), one input per sentence; per-token logits: max
  |diff| and agreement of the tag argmax at each real position.
- `text_embedding`: a TSV with a `sentence` column; the embedding: max |diff| and the smallest
  cosine.

Each example is cut to its real length when the file takes any length, or padded to the file's
fixed length (question answering's); per-position outputs are compared over the real positions.

Per file, `report.json` and `report.md` in `--output_dir` give those numbers. The exit status
is 1 when a file misses its thresholds: float files need `--float_min_agreement`,
`--float_max_abs_diff` and, for embeddings, `--float_min_cosine`; quantized files (int8
weights) `--quantized_min_agreement`, `--quantized_max_accuracy_gap` (arm64 against x86,
classifiers only), the loose `--quantized_max_abs_diff` and `--quantized_min_cosine`.

    scripts/setup_arm64.sh    # once, as root: qemu, the arm64 rootfs and its venv (cached)

    python -m export.check_arm64 exported/model.tflite exported/model_dynamic_int8.tflite \\
        --eval=../shared/data/sst2/test.tsv --vocab=../shared/models/all-MiniLM-L6-v2

    # A question-answering file (fixed length) on the SQuAD questions.
    python -m export.check_arm64 exported/qa.tflite \\
        --eval=../shared/data/squad/dev-v1.1-2articles.json --limit=20

    # A CI-sized run: the first 50 examples.
    python -m export.check_arm64 model.tflite --eval=test.tsv --limit=50 --output_dir=/tmp/arm64

Without `--vocab`, each file is tokenized as its manifest (`<stem>.manifest.json`, written by
`export.tflite`) says: vocabulary, lower-casing, packed length (`max_seq_length`); without a
manifest, with a vocab.txt beside it. String-input files are listed in the report as not run,
with the reason (`STRING_INPUT_NOTE`): they cannot run under this emulation.
"""

import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app
from absl import flags

from export.core import arm64_runner
from export.core import evaluation
from export.core import litert
from keras_bert import tasks
from keras_bert.inputs import INPUT_NAMES
from keras_bert.inputs import sequence_lengths
from keras_bert.models.model_dir import file_sha256
from keras_bert.tasks import classification
from keras_bert.tasks import question_answering
from keras_bert.tasks import token_classification
from keras_bert.utils import cli
from keras_bert.utils import deprecation

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The MIDR fields (implementer, variant, part, revision) of QEMU's arm64 CPU models. LiteRT's
# XNNPACK delegate starts only when cpuinfo can read the CPU from /proc/cpuinfo and
# /sys/devices/system/cpu, which qemu-user 7.2 does not emulate; cpuinfo takes the instruction set
# from the auxiliary vector (qemu's, right for the model) and some kernel choices from the MIDR, so
# the MIDR must be the model's: Cortex-A76 numbers with a Cortex-A53 feature set select dot-product
# kernels the A53 lacks (SIGILL).
ARM64_CPUS = {
    "cortex-a53": (0x41, 0x0, 0xD03, 0x4),
    "cortex-a57": (0x41, 0x1, 0xD07, 0x0),
    "cortex-a72": (0x41, 0x0, 0xD08, 0x3),
    "cortex-a76": (0x41, 0x4, 0xD0B, 0x1),
    "neoverse-n1": (0x41, 0x4, 0xD0C, 0x1),
    # QEMU's "max": implementer 0 (software), part 'Q'; has SVE2, SME, I8MM and BF16.
    "max": (0x00, 0x0, 0x051, 0x0),
}

_EVAL = flags.DEFINE_string(
    "eval",
    None,
    "The examples, read as each file's task reads its data. Classification: a GLUE-style TSV, "
    "a header line naming `sentence` (or `sentence1` and `sentence2`) and `label` columns, then "
    "one tab-separated example per line with an integer label. Question answering: SQuAD v1.1 "
    "JSON. Token classification: CoNLL (word and tag per line). Sentence embeddings: a TSV with "
    "a `sentence` column.",
    required=True,
)
_VOCAB = flags.DEFINE_string(
    "vocab",
    None,
    "A vocab.txt or a checkpoint directory holding one, for every file. Default: per file, "
    "vocab.txt next to it or the vocabulary named in its manifest.",
)
_SEQUENCE_LENGTH = flags.DEFINE_integer(
    "sequence_length",
    None,
    "Tokens per example, [CLS] and [SEP] included; longer texts are truncated. Default: the "
    "manifest's `max_seq_length`, else 128.",
)
cli.define_deprecated_alias("max_length", "sequence_length")
_LIMIT = flags.DEFINE_integer(
    "limit", 0,
    "Use only the first N examples of --eval (0: all), e.g. for CI-sized runs: rows, "
    "questions (all windows of each) or sentences.",
)
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir",
    os.path.join(_REPO_ROOT, ".cache", "arm64", "report"),
    "Where to write report.json and report.md.",
)
_ROOTFS = flags.DEFINE_string(
    "rootfs",
    os.path.join(_REPO_ROOT, ".cache", "arm64", "rootfs"),
    "The arm64 root file system made by scripts/setup_arm64.sh.",
)
_ARM64_PYTHON = flags.DEFINE_string(
    "arm64_python",
    "/opt/litert/bin/python",
    "The Python of the venv inside --rootfs that has numpy and ai_edge_litert.",
)
_ARM64_CPU = flags.DEFINE_enum(
    "arm64_cpu",
    "cortex-a76",
    sorted(ARM64_CPUS),
    "The emulated CPU (QEMU model). cortex-a76: Armv8.2 with dot product, like most phones of "
    "2019-2022. max: every extension QEMU has (SVE2, SME, I8MM, BF16); under Debian 12's QEMU "
    "7.2 it gave wrong dynamic-int8 logits once SME was on, which real hardware may not share.",
)
_NUM_THREADS = flags.DEFINE_integer("num_threads", 1, "Interpreter threads, on both CPUs.")
_SIGNATURE = flags.DEFINE_string(
    "signature", None, "Signature to run; default: the only one, else `serving_default`."
)
_OUTPUT_NAME = flags.DEFINE_string(
    "output_name", "logits",
    "Signature output holding a classifier's logits (the only output if absent); the other "
    "tasks' files are compared on every output.",
)
_ARM64_TIMEOUT = flags.DEFINE_integer(
    "arm64_timeout", 3600, "Seconds one file may run under emulation before it counts as failed."
)
_FLOAT_MAX_ABS_DIFF = flags.DEFINE_float(
    "float_max_abs_diff", 1e-4, "Largest |arm64 - x86| allowed in any logit of a float file."
)
_FLOAT_MIN_AGREEMENT = flags.DEFINE_float(
    "float_min_agreement", 1.0, "Smallest fraction of equal arm64 and x86 labels, float files."
)
_QUANTIZED_MIN_AGREEMENT = flags.DEFINE_float(
    "quantized_min_agreement",
    0.995,
    "Smallest fraction of equal arm64 and x86 labels, quantized files (int8 weights).",
)
_QUANTIZED_MAX_ABS_DIFF = flags.DEFINE_float(
    "quantized_max_abs_diff",
    0.5,
    "Largest |arm64 - x86| allowed in any logit of a quantized file: a loose bound (the int8 "
    "kernels of the two CPUs differ by about 1e-2) that catches broken kernels whose labels "
    "happen to agree.",
)
_FLOAT_MIN_COSINE = flags.DEFINE_float(
    "float_min_cosine", 0.9999,
    "Smallest cosine between the arm64 and x86 embedding of any example, float files.",
)
_QUANTIZED_MIN_COSINE = flags.DEFINE_float(
    "quantized_min_cosine", 0.99,
    "Smallest cosine between the arm64 and x86 embedding of any example, quantized files.",
)
_QUANTIZED_MAX_ACCURACY_GAP = flags.DEFINE_float(
    "quantized_max_accuracy_gap",
    0.5,
    "Largest |arm64 - x86| accuracy of a quantized file, in percentage points.",
)
flags.register_validator(
    "sequence_length", lambda value: value is None or value >= 2, "must be at least 2."
)
flags.register_validator("limit", lambda value: value >= 0, "must be >= 0 (0: all).")


# === Examples ===


def read_eval_tsv(path, limit=0):
    """The examples of a GLUE-style TSV, read by `keras_bert.tasks.classification`.

    Args:
        path: str. A header line with `sentence` (or `sentence1` and `sentence2`) and `label`
            columns, then one example per line; fields separated by tabs, no quoting.
        limit: int. Keep only the first `limit` examples; 0 keeps all.

    Returns:
        `(texts, texts_pair, labels)`: lists of str (`texts_pair` is None for single-sentence
        files) and an int64 array of shape `(num_examples,)`.

    Raises:
        ValueError: naming the file and line of a missing column, a malformed row or a label
            that is not an integer.
    """
    if not os.path.isfile(path):
        raise ValueError(f"`--eval` file {path!r} does not exist.")
    header = classification.read_columns(path, "tsv")
    if "sentence" in header:
        text_column, pair_column = "sentence", None
    elif "sentence1" in header and "sentence2" in header:
        text_column, pair_column = "sentence1", "sentence2"
    else:
        raise ValueError(
            f"{path}:1: the header {header} names no `sentence` nor `sentence1` and "
            "`sentence2` column."
        )
    if "label" not in header:
        raise ValueError(f"{path}:1: the header {header} names no `label` column.")
    examples = classification.read_examples(path, text_column, pair_column, "label", "tsv")
    end = limit or None
    labels = []
    for line_number, label in zip(examples.line_numbers[:end], examples.labels[:end]):
        try:
            labels.append(int(label))
        except ValueError:
            raise ValueError(f"{path}:{line_number}: label {label!r} is not an integer.") from None
    texts_pair = None if pair_column is None else examples.pairs[:end]
    return examples.texts[:end], texts_pair, np.array(labels, np.int64)


# The task of sentence-embedding files (`export.tflite --task=text_embedding`): no fine-tuning
# task of `keras_bert.tasks`, its inputs packed as a single-sentence classifier's.
TEXT_EMBEDDING_TASK = "text_embedding"


def file_task(tflite_path):
    """The task of a `.tflite` file: its manifest's `task`, `classification` without one.

    Raises:
        ValueError: naming the file when the task is neither registered nor `text_embedding`.
    """
    task_name = (litert.read_manifest(tflite_path) or {}).get(
        "task", tasks.ClassificationTask.name
    )
    if task_name != TEXT_EMBEDDING_TASK and task_name not in tasks.TASKS:
        raise ValueError(
            f"{tflite_path}: the manifest's task {task_name!r} is not one of "
            f"{sorted([*tasks.TASKS, TEXT_EMBEDDING_TASK])}."
        )
    return task_name


def read_sentences(path, limit=0):
    """The `sentence` column of a TSV (labels, if any, ignored): the texts to embed."""
    header = classification.read_columns(path, "tsv")
    if "sentence" not in header:
        raise ValueError(f"{path}:1: the header {header} names no `sentence` column.")
    examples = classification.read_examples(
        path, "sentence", None, "label", "tsv", require_labels=False
    )
    return examples.texts[: limit or None]


def read_eval(task_name, path, limit=0):
    """The examples of `--eval` for files of `task_name`, read as that task reads its data.

    Returns:
        classification: `read_eval_tsv`'s `(texts, texts_pair, labels)`; `qa`: a list of
        `question_answering.Example`; `token_classification`: a list of
        `token_classification.Sentence`; `text_embedding`: a list of str. At most `limit`
        examples (questions, sentences) when `limit` is positive.
    """
    if task_name == tasks.ClassificationTask.name:
        return read_eval_tsv(path, limit)
    if not os.path.isfile(path):
        raise ValueError(f"`--eval` file {path!r} does not exist.")
    if task_name == tasks.QuestionAnsweringTask.name:
        examples = question_answering.read_squad(path)
    elif task_name == tasks.TokenClassificationTask.name:
        examples = token_classification.read_conll(path)
    elif task_name == TEXT_EMBEDDING_TASK:
        examples = read_sentences(path)
    else:
        raise ValueError(f"`task_name` ({task_name!r}) has no `--eval` reader here.")
    return examples[: limit or None]


# Where a manifest may name the vocabulary and its SHA-256; `export.tflite` writes `vocab` and
# `vocab_sha256` into `<stem>.manifest.json`.
_MANIFEST_VOCABULARY_KEYS = ("vocab", "vocabulary_path", "vocab_path", "vocabulary")
_MANIFEST_SHA256_KEYS = ("vocab_sha256", "vocabulary_sha256")
DEFAULT_SEQUENCE_LENGTH = 128


def _vocabulary_from_manifest(manifest_path, manifest):
    directory = os.path.dirname(manifest_path)
    for key in _MANIFEST_VOCABULARY_KEYS:
        value = manifest.get(key)
        if not isinstance(value, str):
            continue
        candidate = os.path.join(directory, value)
        if not os.path.exists(candidate):
            raise ValueError(f"{manifest_path}: `{key}` ({value!r}) does not exist.")
        vocabulary_file = (
            os.path.join(candidate, "vocab.txt") if os.path.isdir(candidate) else candidate
        )
        for sha_key in _MANIFEST_SHA256_KEYS:
            expected = manifest.get(sha_key)
            if expected and file_sha256(vocabulary_file) != expected:
                raise ValueError(
                    f"{manifest_path}: {vocabulary_file} has SHA-256 "
                    f"{file_sha256(vocabulary_file)}, not `{sha_key}` {expected}."
                )
        return candidate
    return None


def tokenizer_settings(tflite_path, vocab=None, sequence_length=None, max_length=deprecation.UNSET):
    """How to tokenize for `tflite_path`: the flags' values, else its manifest's, else defaults.

    The vocabulary is `vocab`, else the one the manifest names (an entry of
    `_MANIFEST_VOCABULARY_KEYS`, relative to the manifest, checked against its SHA-256 entry
    when there is one), else `tokenizer/vocab.txt` (the fine-tuned model directory's layout),
    `vocab.txt` or `assets/vocab.txt` beside the file. Lower-casing is the manifest's
    `lower_case` when the vocabulary came from it; `None` lets `keras_bert.load_tokenizer` decide.
    The packed length is `sequence_length`, else the manifest's `max_seq_length`, else 128.

    Args:
        tflite_path: str. The `.tflite` file.
        vocab: str or None. The `--vocab` flag's value.
        sequence_length: int or None. The `--sequence_length` flag's value.
        max_length: deprecated name of `sequence_length`.

    Returns:
        dict: `vocabulary` (a vocab.txt or a directory holding one), `lower_case` (bool or
        None), `sequence_length` (int).
    """
    sequence_length = deprecation.renamed_argument(
        "tokenizer_settings(max_length=...)", max_length, "sequence_length", sequence_length,
        unset=deprecation.UNSET,
    )
    manifest_path = litert.manifest_path(tflite_path)
    manifest = litert.read_manifest(tflite_path) or {}
    if sequence_length is None:
        sequence_length = int(manifest.get("max_seq_length") or DEFAULT_SEQUENCE_LENGTH)
    if sequence_length < 2:
        raise ValueError(f"`--sequence_length` ({sequence_length}) must be at least 2.")
    settings = {"vocabulary": None, "lower_case": None, "sequence_length": sequence_length}
    if vocab:
        if not os.path.exists(vocab):
            raise ValueError(f"`--vocab` {vocab!r} does not exist.")
        settings["vocabulary"] = vocab
        return settings
    if manifest_path:
        settings["vocabulary"] = _vocabulary_from_manifest(manifest_path, manifest)
        if settings["vocabulary"] and isinstance(manifest.get("lower_case"), bool):
            settings["lower_case"] = manifest["lower_case"]
    directory = os.path.dirname(os.path.abspath(tflite_path))
    for name in (os.path.join("tokenizer", "vocab.txt"), "vocab.txt",
                 os.path.join("assets", "vocab.txt")):
        candidate = os.path.join(directory, name)
        if settings["vocabulary"] is None and os.path.isfile(candidate):
            settings["vocabulary"] = (
                os.path.dirname(candidate) if name.startswith("tokenizer") else candidate
            )
    if settings["vocabulary"] is None:
        raise ValueError(
            f"Found no vocabulary for {tflite_path}: no manifest naming one and no vocab.txt "
            "beside it; pass `--vocab`."
        )
    return settings


def tokenize(vocabulary_path, texts, texts_pair=None, sequence_length=128, lower_case=None,
             task_name="classification"):
    """Packed int32 inputs and real lengths, from the preprocessor of the registered task
    `task_name` (the manifest's `task`; classification: `TextClassifierPreprocessor`).

    Returns:
        dict of int32 arrays: `token_ids`, `segment_ids`, `padding_mask` of shape
        `(num_examples, sequence_length)` and `lengths` of shape `(num_examples,)`.
    """
    # pylint: disable=import-outside-toplevel
    import keras_bert

    tokenizer = keras_bert.load_tokenizer(vocabulary_path, lower_case=lower_case)
    task = tasks.get_task(task_name).from_settings({"sequence_length": sequence_length})
    preprocessor = task.build_preprocessor(tokenizer)
    inputs = preprocessor.pack_numpy(texts, texts_pair)
    inputs["lengths"] = sequence_lengths(inputs)
    return inputs


# Entries of a question-answering manifest that shape its windows (as `training.finetune`'s
# flags of the same names did).
_QA_SETTINGS = ("doc_stride", "max_query_length")


def pack_examples(task_name, examples, settings, manifest=None):
    """The int32 inputs of `examples` (`read_eval`'s) packed by `task_name`'s preprocessor.

    Question answering packs each question with windows of its context
    (`SpanLabelerPreprocessor`, with the manifest's `doc_stride` and `max_query_length` when it
    has them), token classification each sentence's words (`TokenClassifierPreprocessor`),
    embeddings each sentence alone (the registered task's preprocessor, else the single-sentence
    `TextClassifierPreprocessor`); classification is `tokenize`.

    Args:
        task_name: str. The files' task.
        examples: what `read_eval(task_name, ...)` returned.
        settings: dict. `tokenizer_settings`'s `vocabulary`, `lower_case`, `sequence_length`.
        manifest: dict or None. The file's manifest.

    Returns:
        dict of int32 arrays: `token_ids`, `segment_ids`, `padding_mask` of shape
        `(num_inputs, sequence_length)` and `lengths` of shape `(num_inputs,)`.
    """
    vocabulary, lower_case = settings["vocabulary"], settings["lower_case"]
    sequence_length = settings["sequence_length"]
    if task_name == tasks.ClassificationTask.name:
        texts, texts_pair, _ = examples
        return tokenize(vocabulary, texts, texts_pair, sequence_length, lower_case)
    if task_name == TEXT_EMBEDDING_TASK:
        registered = task_name in tasks.TASKS
        return tokenize(
            vocabulary, examples, None, sequence_length, lower_case,
            task_name=task_name if registered else tasks.ClassificationTask.name,
        )
    # pylint: disable=import-outside-toplevel
    import keras_bert

    tokenizer = keras_bert.load_tokenizer(vocabulary, lower_case=lower_case)
    task_settings = {"sequence_length": sequence_length}
    if task_name == tasks.QuestionAnsweringTask.name:
        task_settings.update(
            {key: (manifest or {})[key] for key in _QA_SETTINGS if key in (manifest or {})}
        )
        task = tasks.QuestionAnsweringTask.from_settings(task_settings)
        features = question_answering.preprocess(task.build_preprocessor(tokenizer), examples)
    elif task_name == tasks.TokenClassificationTask.name:
        task = tasks.TokenClassificationTask.from_settings(task_settings)
        features = token_classification.preprocess(task.build_preprocessor(tokenizer), examples)
    else:
        raise ValueError(f"`task_name` ({task_name!r}) has no packing here.")
    inputs = {name: np.asarray(features.inputs[name], np.int32) for name in INPUT_NAMES}
    inputs["lengths"] = sequence_lengths(inputs)
    return inputs


# === Running ===


def run_on_x86(model_path, inputs, **runner_kwargs):
    """`(logits, info)` of `model_path` on this host."""
    return arm64_runner.run_model(model_path, inputs, **runner_kwargs)


def run_outputs_on_x86(model_path, inputs, num_threads=1, signature_key=None):
    """`(outputs, info)` of `model_path` on this host: `arm64_runner.run_model_outputs`."""
    return arm64_runner.run_model_outputs(
        model_path, inputs, num_threads=num_threads, signature_key=signature_key
    )


def check_rootfs(rootfs, arm64_python):
    """Raises a `ValueError` saying what to run when the arm64 set-up is missing."""
    if not os.path.isfile(os.path.join(rootfs, arm64_python.lstrip("/"))):
        raise ValueError(
            f"No arm64 Python at {arm64_python} inside `--rootfs` {rootfs!r}; run "
            "scripts/setup_arm64.sh (as root) first."
        )
    if not os.path.exists("/proc/sys/fs/binfmt_misc/qemu-aarch64"):
        raise ValueError(
            "qemu-aarch64 is not registered with binfmt_misc (after a reboot, for example); run "
            "scripts/setup_arm64.sh (as root)."
        )


def proc_cpuinfo(cpu):
    """A one-processor arm64 /proc/cpuinfo for QEMU CPU model `cpu` (a key of `ARM64_CPUS`)."""
    if cpu not in ARM64_CPUS:
        raise ValueError(f"`--arm64_cpu` ({cpu!r}) must be one of {sorted(ARM64_CPUS)}.")
    implementer, variant, part, revision = ARM64_CPUS[cpu]
    return (
        "processor\t: 0\n"
        "BogoMIPS\t: 50.00\n"
        "Features\t: fp asimd cpuid\n"
        f"CPU implementer\t: 0x{implementer:02x}\n"
        "CPU architecture: 8\n"
        f"CPU variant\t: 0x{variant:x}\n"
        f"CPU part\t: 0x{part:03x}\n"
        f"CPU revision\t: {revision}\n\n"
    )


def _prepare_cpu_files(rootfs):
    """Creates the rootfs's one-CPU sysfs lists and the /proc/cpuinfo mount point, once."""
    if os.path.ismount(os.path.join(rootfs, "proc")) or os.path.ismount(
        os.path.join(rootfs, "sys")
    ):
        raise ValueError(
            f"{rootfs}/proc or {rootfs}/sys is a mount point; unmount it: the check supplies "
            "its own /proc/cpuinfo and CPU lists."
        )
    cpu_directory = os.path.join(rootfs, "sys", "devices", "system", "cpu")
    os.makedirs(cpu_directory, exist_ok=True)
    for name in ("possible", "present"):
        with open(os.path.join(cpu_directory, name), "w", encoding="utf-8") as f:
            f.write("0\n")
    open(os.path.join(rootfs, "proc", "cpuinfo"), "a", encoding="utf-8").close()


def _chroot_command(rootfs, cpuinfo_path, cpu, argv):
    """The command that runs `argv` inside `rootfs` on QEMU CPU model `cpu`.

    `cpuinfo_path` is bind-mounted over the rootfs's /proc/cpuinfo in a private mount namespace,
    so the mount vanishes with the process. Runs as root, or through passwordless sudo; `env -i`
    sets the whole environment, which sudo would otherwise filter.
    """
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    environment = [
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8", f"QEMU_CPU={cpu}",
    ]
    script = 'mount --bind "$1" "$0/proc/cpuinfo" && shift && exec chroot "$0" "$@"'
    return prefix + ["env", "-i"] + environment + [
        "unshare", "--mount", "--propagation=private", "sh", "-c", script, rootfs, cpuinfo_path,
    ] + argv


def _copy_input_names_module(directory):
    """Puts `keras_bert/inputs.py` (NumPy only) into `directory`, for the runner's import.

    The package's `__init__.py` is left empty there: the real one names modules that need
    TensorFlow, which the arm64 rootfs does not have.
    """
    import keras_bert.inputs  # pylint: disable=import-outside-toplevel

    package = os.path.join(directory, "keras_bert")
    os.makedirs(package, exist_ok=True)
    open(os.path.join(package, "__init__.py"), "w", encoding="utf-8").close()
    shutil.copyfile(keras_bert.inputs.__file__, os.path.join(package, "inputs.py"))


def _run_runner_on_arm64(model_path, inputs, rootfs, arm64_python, cpu, timeout, runner_args):
    """Runs `arm64_runner.py` with `runner_args` on `model_path` inside the arm64 `rootfs`.

    Returns:
        `(arrays, seconds)`: the arrays of the runner's output `.npz` and the process's time.
    """
    check_rootfs(rootfs, arm64_python)
    rootfs = os.path.abspath(rootfs)
    cpuinfo = proc_cpuinfo(cpu)
    _prepare_cpu_files(rootfs)
    work = tempfile.mkdtemp(prefix="keras_bert_check_", dir=os.path.join(rootfs, "tmp"))
    try:
        model_copy = os.path.join(work, "model.tflite")
        try:
            os.link(model_path, model_copy)
        except OSError:
            shutil.copyfile(model_path, model_copy)
        shutil.copyfile(arm64_runner.__file__, os.path.join(work, "arm64_runner.py"))
        _copy_input_names_module(work)
        arm64_runner.save_npz_atomically(os.path.join(work, "inputs.npz"), **inputs)
        with open(os.path.join(work, "cpuinfo"), "w", encoding="utf-8") as f:
            f.write(cpuinfo)
        inside = "/" + os.path.relpath(work, rootfs)
        argv = [
            arm64_python,
            f"{inside}/arm64_runner.py",
            f"--model={inside}/model.tflite",
            f"--inputs={inside}/inputs.npz",
            f"--output={inside}/logits.npz",
            *runner_args,
        ]
        start = time.perf_counter()
        try:
            result = subprocess.run(
                _chroot_command(rootfs, os.path.join(work, "cpuinfo"), cpu, argv),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"The arm64 run of {model_path} took more than {timeout} s (`--arm64_timeout`)."
            ) from None
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(
                f"The arm64 run of {model_path} exited with status {result.returncode}:\n"
                f"{result.stderr[-4000:]}"
            )
        with np.load(os.path.join(work, "logits.npz"), allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        return arrays, seconds
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _runner_args(num_threads, signature_key):
    return [f"--num_threads={num_threads}"] + (
        [f"--signature={signature_key}"] if signature_key else []
    )


def run_on_arm64(
    model_path, inputs, rootfs, arm64_python="/opt/litert/bin/python", cpu="cortex-a76",
    timeout=3600, num_threads=1, signature_key=None, output_name="logits",
):
    """`(logits, info)` of `model_path` run by `arm64_runner.py` inside the arm64 `rootfs`.

    The file, the runner (with the `keras_bert/inputs.py` it imports) and the inputs are placed
    in a temporary folder under the rootfs's /tmp for the one emulated process, and removed
    afterwards. `cpu` is the QEMU CPU model
    (a key of `ARM64_CPUS`).
    """
    arrays, seconds = _run_runner_on_arm64(
        model_path, inputs, rootfs, arm64_python, cpu, timeout,
        _runner_args(num_threads, signature_key) + [f"--output_name={output_name}"],
    )
    info = json.loads(str(arrays["info"]))
    info["process_seconds"] = seconds
    info["cpu"] = cpu
    return arrays["logits"], info


def run_outputs_on_arm64(
    model_path, inputs, rootfs, arm64_python="/opt/litert/bin/python", cpu="cortex-a76",
    timeout=3600, num_threads=1, signature_key=None,
):
    """`(outputs, info)` of every output of `model_path` on arm64, as `run_on_arm64` runs it
    (`arm64_runner.run_model_outputs`' result)."""
    arrays, seconds = _run_runner_on_arm64(
        model_path, inputs, rootfs, arm64_python, cpu, timeout,
        _runner_args(num_threads, signature_key) + ["--all_outputs"],
    )
    outputs, info = arm64_runner.unpack_outputs(arrays)
    info["process_seconds"] = seconds
    info["cpu"] = cpu
    return outputs, info


# === Comparison ===


def predicted_labels(logits):
    """Argmax labels; a single logit per example is read as binary (label 1 when > 0)."""
    return evaluation.predicted_labels(logits, single_logit_is_binary=True)


def compare_logits(x86_logits, arm64_logits, labels):
    """The numbers of the report for one file (`export.core.evaluation.compare`'s figures).

    Args:
        x86_logits, arm64_logits: float arrays of shape `(num_examples, num_labels)`.
        labels: int array of shape `(num_examples,)`.

    Returns:
        dict: `num_examples`, `max_abs_diff`, `mean_abs_diff`, `max_abs_diff_example`,
        `label_agreement`, `num_label_disagreements`, `accuracy_x86`, `accuracy_arm64`,
        `accuracy_gap_points` (|arm64 - x86| in percentage points).
    """
    x86_logits = np.asarray(x86_logits, np.float64)
    arm64_logits = np.asarray(arm64_logits, np.float64)
    labels = np.asarray(labels)
    if x86_logits.shape != arm64_logits.shape:
        raise ValueError(
            f"x86 logits have shape {x86_logits.shape} but arm64 logits {arm64_logits.shape}."
        )
    if x86_logits.ndim != 2 or x86_logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"Logits of shape {x86_logits.shape} do not fit {labels.shape[0]} labels."
        )
    if labels.size and labels.max() >= max(x86_logits.shape[1], 2):
        raise ValueError(
            f"Label {int(labels.max())} is out of range for {x86_logits.shape[1]} logits."
        )
    figures = evaluation.compare(
        arm64_logits, x86_logits, labels, dtype=np.float64, single_logit_is_binary=True
    )
    return {
        "num_examples": int(labels.shape[0]),
        "max_abs_diff": figures["max_abs_diff"],
        "mean_abs_diff": figures["mean_abs_diff"],
        "max_abs_diff_example": figures["max_abs_diff_example"],
        "label_agreement": figures["label_agreement"],
        "num_label_disagreements": figures["num_label_disagreements"],
        "accuracy_x86": figures["reference_accuracy"],
        "accuracy_arm64": figures["accuracy"],
        "accuracy_gap_points": abs(figures["accuracy"] - figures["reference_accuracy"]) * 100.0,
    }


# What each kind of output is compared on (the report's `what`).
OUTPUT_KINDS = {
    "example_logits": "logits, argmax per example",
    "span_logits": "logits over positions, argmax over each input's real positions",
    "token_logits": "per-position logits, argmax at each real position",
    "embedding": "embedding, cosine per example",
}


def output_kind(task_name, output_name, shapes, fed_lengths):
    """The key of `OUTPUT_KINDS` of one output.

    Args:
        task_name: str. The file's task.
        output_name: str. The signature output.
        shapes: list of tuples. The output's shape per example, without the batch axis.
        fed_lengths: list of int. The input length fed per example.
    """
    if task_name == TEXT_EMBEDDING_TASK or "embedding" in output_name.lower():
        return "embedding"
    per_position = (
        task_name in tasks.TASKS and tasks.get_task(task_name).sequence_outputs
        and all(len(shape) >= 1 and shape[0] == n for shape, n in zip(shapes, fed_lengths))
    )
    if per_position:
        return "span_logits" if all(len(shape) == 1 for shape in shapes) else "token_logits"
    return "example_logits"


def _cosine(a, b):
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    return float(np.dot(a, b) / norms) if norms else float(np.array_equal(a, b))


def compare_output(kind, x86_values, arm64_values, lengths):
    """The figures of one output of one file, arm64 against x86.

    Per-position outputs (`span_logits`, `token_logits`) are cut to each input's real length
    first: padding positions of a fixed-length file carry no prediction.

    Args:
        kind: str. A key of `OUTPUT_KINDS`.
        x86_values, arm64_values: lists (per input) of float arrays without the batch axis.
        lengths: int array `(num_inputs,)`. Real tokens per input.

    Returns:
        dict: `what`, `num_examples`, `max_abs_diff`, `mean_abs_diff`, `max_abs_diff_example`;
        for logits `argmax_agreement`, `num_argmax` (argmaxes compared) and
        `num_argmax_disagreements`; for embeddings `min_cosine` and `min_cosine_example`.
    """
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"`kind` ({kind!r}) must be one of {sorted(OUTPUT_KINDS)}.")
    if len(x86_values) != len(arm64_values) or len(x86_values) != len(lengths):
        raise ValueError(
            f"{len(x86_values)} x86 and {len(arm64_values)} arm64 results for "
            f"{len(lengths)} inputs."
        )
    pairs = []
    for index, (x86, arm64) in enumerate(zip(x86_values, arm64_values)):
        x86, arm64 = np.asarray(x86, np.float64), np.asarray(arm64, np.float64)
        if x86.shape != arm64.shape:
            raise ValueError(
                f"Input {index}: the x86 output has shape {x86.shape} but the arm64 output "
                f"{arm64.shape}."
            )
        if kind in ("span_logits", "token_logits"):
            x86, arm64 = x86[: int(lengths[index])], arm64[: int(lengths[index])]
        pairs.append((x86, arm64))
    largest = [float(np.abs(x - a).max()) if x.size else 0.0 for x, a in pairs]
    total = sum(float(np.abs(x - a).sum()) for x, a in pairs)
    count = sum(x.size for x, _ in pairs)
    metrics = {
        "what": OUTPUT_KINDS[kind],
        "num_examples": len(pairs),
        # NaN (a broken kernel) must not hide behind max(): it makes the figure NaN.
        "max_abs_diff": float(np.max(largest)) if largest else 0.0,
        "mean_abs_diff": total / count if count else 0.0,
        "max_abs_diff_example": int(np.argmax(largest)) if largest else None,
    }
    if kind == "embedding":
        cosines = [_cosine(x.reshape(-1), a.reshape(-1)) for x, a in pairs]
        metrics["min_cosine"] = float(np.min(cosines)) if cosines else 1.0
        metrics["min_cosine_example"] = int(np.argmin(cosines)) if cosines else None
        return metrics
    if kind == "example_logits":
        x86_labels = [predicted_labels(x.reshape(1, -1)) for x, _ in pairs]
        arm64_labels = [predicted_labels(a.reshape(1, -1)) for _, a in pairs]
    elif kind == "span_logits":
        x86_labels = [np.argmax(x, keepdims=True) for x, _ in pairs if x.size]
        arm64_labels = [np.argmax(a, keepdims=True) for _, a in pairs if a.size]
    else:
        x86_labels = [np.argmax(x, axis=-1).reshape(-1) for x, _ in pairs]
        arm64_labels = [np.argmax(a, axis=-1).reshape(-1) for _, a in pairs]
    x86_labels = np.concatenate(x86_labels) if x86_labels else np.zeros(0, np.int64)
    arm64_labels = np.concatenate(arm64_labels) if arm64_labels else np.zeros(0, np.int64)
    differ = int((x86_labels != arm64_labels).sum())
    metrics["argmax_agreement"] = 1.0 - differ / len(x86_labels) if len(x86_labels) else 1.0
    metrics["num_argmax"] = int(len(x86_labels))
    metrics["num_argmax_disagreements"] = differ
    return metrics


def compare_outputs(task_name, x86_outputs, arm64_outputs, lengths, fed_lengths):
    """`compare_output` of every output of a file: `{output name: figures}`.

    Args:
        task_name: str. The file's task (decides which outputs are per position).
        x86_outputs, arm64_outputs: `run_outputs_on_x86` and `run_outputs_on_arm64`'s dicts.
        lengths: int array `(num_inputs,)`. Real tokens per input.
        fed_lengths: list of int. The length fed per input (the real or the fixed length).
    """
    if sorted(x86_outputs) != sorted(arm64_outputs):
        raise ValueError(
            f"x86 outputs {sorted(x86_outputs)} differ from arm64 outputs "
            f"{sorted(arm64_outputs)}."
        )
    figures = {}
    for name in sorted(x86_outputs):
        shapes = [np.shape(value) for value in x86_outputs[name]]
        kind = output_kind(task_name, name, shapes, fed_lengths)
        figures[name] = compare_output(kind, x86_outputs[name], arm64_outputs[name], lengths)
    return figures


def judge_outputs(figures, quantized, thresholds):
    """The thresholds that some output misses, as sentences naming it (empty: pass).

    Logits need the label-agreement and max |diff| thresholds of classifiers (an argmax stands
    for the label); embeddings the max |diff| and the cosine thresholds.
    """
    prefix = "quantized" if quantized else "float"
    min_agreement = thresholds[f"{prefix}_min_agreement"]
    max_abs_diff = thresholds[f"{prefix}_max_abs_diff"]
    min_cosine = thresholds.get(f"{prefix}_min_cosine", 0.0)
    failures = []
    for name, metrics in sorted(figures.items()):
        if "argmax_agreement" in metrics and metrics["argmax_agreement"] < min_agreement:
            failures.append(
                f"`{name}`: argmax agreement {metrics['argmax_agreement']:.4f} < {min_agreement}"
            )
        if "min_cosine" in metrics and not metrics["min_cosine"] >= min_cosine:
            failures.append(f"`{name}`: min cosine {metrics['min_cosine']:.6f} < {min_cosine}")
        if not metrics["max_abs_diff"] <= max_abs_diff:
            failures.append(f"`{name}`: max |diff| {metrics['max_abs_diff']:.3g} > {max_abs_diff}")
    return failures


def is_quantized(tensor_dtypes):
    """Whether a file has 8-bit tensors (dynamic-range or full-integer quantized weights)."""
    return any(tensor_dtypes.get(name, 0) for name in ("int8", "uint8"))


def judge(metrics, quantized, thresholds):
    """The thresholds that `metrics` misses, as sentences (empty when the file passes)."""
    failures = []
    if quantized:
        if metrics["label_agreement"] < thresholds["quantized_min_agreement"]:
            failures.append(
                f"label agreement {metrics['label_agreement']:.4f} < "
                f"{thresholds['quantized_min_agreement']}"
            )
        if metrics["accuracy_gap_points"] > thresholds["quantized_max_accuracy_gap"]:
            failures.append(
                f"accuracy gap {metrics['accuracy_gap_points']:.2f} points > "
                f"{thresholds['quantized_max_accuracy_gap']}"
            )
        if not metrics["max_abs_diff"] <= thresholds["quantized_max_abs_diff"]:
            failures.append(
                f"max |diff| {metrics['max_abs_diff']:.3g} > "
                f"{thresholds['quantized_max_abs_diff']}"
            )
    else:
        if metrics["label_agreement"] < thresholds["float_min_agreement"]:
            failures.append(
                f"label agreement {metrics['label_agreement']:.4f} < "
                f"{thresholds['float_min_agreement']}"
            )
        if not metrics["max_abs_diff"] <= thresholds["float_max_abs_diff"]:
            failures.append(
                f"max |diff| {metrics['max_abs_diff']:.3g} > {thresholds['float_max_abs_diff']}"
            )
    return failures


# === Files the check cannot run ===

# Measured 2026-11 with Debian 12's qemu-user 7.2 and ai-edge-litert 2.3.0's aarch64 wheel.
STRING_INPUT_NOTE = (
    "not run on arm64: a string-input file. Under emulation ai-edge-litert 2.3.0's aarch64 "
    "interpreter crashes (SIGSEGV in AllocateTensors) on any model with a string input, even one "
    "of builtin ops only, so tensorflow-text's kernels cannot be tried; those kernels "
    "(tensorflow_text/core/pybinds/tflite_registrar.so, aarch64 wheel) load outside TensorFlow's "
    "Python but need libtensorflow_framework.so.2 from TensorFlow's aarch64 wheel. Check the "
    "token-id file of the same model instead."
)


def skipped_entry(path, input_names, reason):
    """The report entry of a file that was not run, with the reason."""
    return {
        "path": path,
        "bytes": os.path.getsize(path),
        "sha256": file_sha256(path),
        "inputs": sorted(input_names),
        "skipped": True,
        "reason": reason,
        "passed": True,
        "failures": [],
    }


# === Report ===


def _qemu_version():
    try:
        result = subprocess.run(
            ["qemu-aarch64-static", "--version"], capture_output=True, text=True, check=False
        )
        return result.stdout.splitlines()[0] if result.stdout else None
    except OSError:
        return None


# `report.json` keeps the key its tokenizer settings were first written with.
_REPORT_TOKENIZER_KEYS = {"sequence_length": "max_length"}


def file_entry(path, tokenizer, metrics, x86_info, arm64_info, thresholds):
    """One file's entry of the report: identity, numbers, timing and verdict.

    `tokenizer` is the file's `tokenizer_settings`; the report names its packed length
    `max_length`.
    """
    quantized = is_quantized(x86_info["tensor_dtypes"])
    failures = judge(metrics, quantized, thresholds) + _xnnpack_failures(x86_info, arm64_info)
    return {
        **_identity(path, quantized, tokenizer, x86_info),
        "output": x86_info["output"],
        **metrics,
        **_runs(x86_info, arm64_info, failures),
    }


def _identity(path, quantized, tokenizer, x86_info):
    """The entry fields that say which file ran, and how it was fed."""
    return {
        "path": path,
        "bytes": os.path.getsize(path),
        "sha256": file_sha256(path),
        "kind": "quantized (int8 weights)" if quantized else "float",
        "tokenizer": {_REPORT_TOKENIZER_KEYS.get(key, key): value
                      for key, value in tokenizer.items()},
        "skipped": False,
        "signature": x86_info["signature"],
    }


def _runs(x86_info, arm64_info, failures):
    """The entry fields of the two runs (XNNPACK nodes, seconds) and the verdict."""
    return {
        "x86_xnnpack_nodes": x86_info.get("xnnpack_nodes"),
        "arm64_xnnpack_nodes": arm64_info.get("xnnpack_nodes"),
        "x86_inference_seconds": x86_info["inference_seconds"],
        "arm64_inference_seconds": arm64_info["inference_seconds"],
        "arm64_process_seconds": arm64_info.get("process_seconds"),
        "passed": not failures,
        "failures": failures,
    }


def _xnnpack_failures(x86_info, arm64_info):
    if x86_info.get("xnnpack_nodes") and arm64_info.get("xnnpack_nodes") == 0:
        # A phone runs XNNPACK's kernels: without them the arm64 numbers say little.
        return [f"XNNPACK ran {x86_info['xnnpack_nodes']} nodes on x86 but none on arm64"]
    return []


def outputs_entry(path, task_name, tokenizer, figures, x86_info, arm64_info, thresholds):
    """The report entry of a file compared on every output (`compare_outputs`' `figures`):
    question answering, token classification, embeddings."""
    quantized = is_quantized(x86_info["tensor_dtypes"])
    failures = (
        judge_outputs(figures, quantized, thresholds)
        + _xnnpack_failures(x86_info, arm64_info)
    )
    agreements = [m["argmax_agreement"] for m in figures.values() if "argmax_agreement" in m]
    cosines = [m["min_cosine"] for m in figures.values() if "min_cosine" in m]
    differences = [m["max_abs_diff"] for m in figures.values()]
    return {
        **_identity(path, quantized, tokenizer, x86_info),
        "task": task_name,
        "num_examples": x86_info["num_examples"],
        # NaN anywhere makes the largest difference NaN (np.max propagates it).
        "max_abs_diff": float(np.max(differences)) if differences else 0.0,
        "min_argmax_agreement": min(agreements) if agreements else None,
        "min_cosine": min(cosines) if cosines else None,
        "outputs": figures,
        **_runs(x86_info, arm64_info, failures),
    }


def build_report(entries, eval_path, command, x86_versions, arm64_info, thresholds):
    """The whole report as a JSON-ready dict."""
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "eval": eval_path,
        "x86": {"versions": x86_versions, "how": "ai_edge_litert on the host"},
        "arm64": arm64_info,
        "thresholds": thresholds,
        "files": entries,
        "passed": all(entry["passed"] for entry in entries),
    }


def report_markdown(report):
    """`report` as a short markdown page: one table row per file, then versions and command."""
    skipped = [e for e in report["files"] if e["skipped"]]
    lines = [
        "# arm64 (emulated) vs x86: LiteRT outputs",
        "",
        f"Examples: `{report['eval']}`; created {report['created']}. "
        f"Overall: **{'PASS' if report['passed'] else 'FAIL'}**"
        + (f" ({len(skipped)} file(s) not run, below)." if skipped else "."),
        "",
        "| file | kind | examples | max \\|diff\\| logits | label agreement | accuracy x86 | "
        "accuracy arm64 | XNNPACK nodes x86 / arm64 | result |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in report["files"]:
        if e["skipped"]:
            lines.append(
                f"| `{os.path.basename(e['path'])}` | inputs {', '.join(e['inputs'])} | "
                "- | - | - | - | - | - | not run (see below) |"
            )
            continue
        result = "pass" if e["passed"] else "FAIL: " + "; ".join(e["failures"])
        result = result.replace("|", "\\|")  # A bare | would end the table cell.
        if "outputs" in e:
            lines.append(_outputs_row(e, result))
            continue
        lines.append(
            f"| `{os.path.basename(e['path'])}` | {e['kind']} | {e['num_examples']} | "
            f"{e['max_abs_diff']:.3g} | {100 * e['label_agreement']:.2f}% "
            f"({e['num_label_disagreements']} differ) | {100 * e['accuracy_x86']:.2f}% | "
            f"{100 * e['accuracy_arm64']:.2f}% | {e['x86_xnnpack_nodes']} / "
            f"{e['arm64_xnnpack_nodes']} | {result} |"
        )
    lines += _per_output_table(report["files"])
    x86 = report["x86"]["versions"]
    arm64 = report["arm64"]
    arm64_versions = arm64.get("versions", {})
    t = report["thresholds"]
    lines += [
        "",
        f"Thresholds: float files max |diff| <= {t['float_max_abs_diff']} and label agreement "
        f">= {t['float_min_agreement']}; quantized files label agreement >= "
        f"{t['quantized_min_agreement']}, accuracy within "
        f"{t['quantized_max_accuracy_gap']} points of x86 and max |diff| <= "
        f"{t['quantized_max_abs_diff']}." + _other_tasks_thresholds(report),
        "",
        *[f"`{os.path.basename(e['path'])}`: {e['reason']}\n" for e in skipped],
        "| | machine | Python | ai-edge-litert | NumPy | Debian |",
        "|---|---|---|---|---|---|",
        f"| x86 | {x86.get('machine')} | {x86.get('python')} | {x86.get('ai_edge_litert')} | "
        f"{x86.get('numpy')} | {x86.get('debian', '')} |",
        f"| arm64 | {arm64_versions.get('machine')} | {arm64_versions.get('python')} | "
        f"{arm64_versions.get('ai_edge_litert')} | {arm64_versions.get('numpy')} | "
        f"{arm64_versions.get('debian', '')} |",
        "",
        f"arm64 ran as: {arm64.get('how')}; emulated CPU `{arm64.get('cpu')}` "
        f"({arm64.get('qemu')}).",
        "",
        "Command: `" + " ".join(report["command"]) + "`",
        "",
    ]
    return "\n".join(lines)


def _outputs_row(entry, result):
    """The main table's row of a file compared on every output."""
    agreement = []
    if entry["min_argmax_agreement"] is not None:
        differ = sum(
            m.get("num_argmax_disagreements", 0) for m in entry["outputs"].values()
        )
        agreement.append(
            f"argmax {100 * entry['min_argmax_agreement']:.2f}% ({differ} differ)"
        )
    if entry["min_cosine"] is not None:
        agreement.append(f"min cosine {entry['min_cosine']:.6f}")
    return (
        f"| `{os.path.basename(entry['path'])}` | {entry['kind']}, {entry['task']} | "
        f"{entry['num_examples']} | {entry['max_abs_diff']:.3g} | {'; '.join(agreement)} | - | "
        f"- | {entry['x86_xnnpack_nodes']} / {entry['arm64_xnnpack_nodes']} | {result} |"
    )


def _per_output_table(entries):
    """The figures of each output of the files compared on every output (none: no lines)."""
    rows = []
    for e in entries:
        for name, m in sorted(e.get("outputs", {}).items()):
            if "argmax_agreement" in m:
                agreement = (
                    f"{100 * m['argmax_agreement']:.2f}% of {m['num_argmax']} argmaxes "
                    f"({m['num_argmax_disagreements']} differ)"
                )
            else:
                agreement = f"min cosine {m['min_cosine']:.6f} (example {m['min_cosine_example']})"
            rows.append(
                f"| `{os.path.basename(e['path'])}` | `{name}` | {m['what']} | "
                f"{m['max_abs_diff']:.3g} | {agreement} |"
            )
    if not rows:
        return []
    return [
        "",
        "Per output (per-position outputs over the real positions of each input):",
        "",
        "| file | output | compared as | max \\|diff\\| | agreement |",
        "|---|---|---|---|---|",
        *rows,
    ]


def _other_tasks_thresholds(report):
    """The thresholds' sentence for the other tasks' files, when the report has any."""
    entries = [e for e in report["files"] if "outputs" in e]
    if not entries:
        return ""
    t = report["thresholds"]
    text = (
        " Other tasks: each logits output as a classifier's logits, its argmax agreement "
        "against the label agreement thresholds"
    )
    if any(e["min_cosine"] is not None for e in entries):
        text += (
            f"; embeddings min cosine >= {t.get('float_min_cosine')} (float) and "
            f">= {t.get('quantized_min_cosine')} (quantized)"
        )
    return text + "."


def write_report(report, output_dir):
    """Writes `report.json` and `report.md` into `output_dir`; returns their paths."""
    json_path = os.path.join(output_dir, "report.json")
    markdown_path = os.path.join(output_dir, "report.md")
    evaluation.write_text(json_path, json.dumps(report, indent=2) + "\n")
    evaluation.write_text(markdown_path, report_markdown(report))
    return json_path, markdown_path


# === Main ===


def _thresholds():
    return {
        "float_max_abs_diff": _FLOAT_MAX_ABS_DIFF.value,
        "float_min_agreement": _FLOAT_MIN_AGREEMENT.value,
        "quantized_min_agreement": _QUANTIZED_MIN_AGREEMENT.value,
        "quantized_max_accuracy_gap": _QUANTIZED_MAX_ACCURACY_GAP.value,
        "quantized_max_abs_diff": _QUANTIZED_MAX_ABS_DIFF.value,
        "float_min_cosine": _FLOAT_MIN_COSINE.value,
        "quantized_min_cosine": _QUANTIZED_MIN_COSINE.value,
    }


def main(argv):
    model_paths = argv[1:]
    if not model_paths:
        raise app.UsageError("Pass one or more .tflite files.")
    for path in model_paths:
        if not os.path.isfile(path):
            raise ValueError(f"The .tflite file {path!r} does not exist.")
    if _LIMIT.value < 0:
        raise ValueError(f"`--limit` ({_LIMIT.value}) must be >= 0.")
    check_rootfs(_ROOTFS.value, _ARM64_PYTHON.value)
    # Every file's inputs, tokenizer and examples first, so a bad one fails before minutes of
    # emulation.
    input_names = {
        path: arm64_runner.signature_inputs(path, _SIGNATURE.value) for path in model_paths
    }
    token_id_paths = [
        path for path in model_paths
        if all(arm64_runner.input_role(name) for name in input_names[path])
    ]
    task_names = {path: file_task(path) for path in token_id_paths}
    settings = {}
    for path in token_id_paths:
        settings[path] = tokenizer_settings(path, _VOCAB.value, _SEQUENCE_LENGTH.value)
        fixed = arm64_runner.fixed_length(
            arm64_runner.signature_input_details(path, _SIGNATURE.value)
        )
        if fixed and _SEQUENCE_LENGTH.value is None:
            # A fixed-length file (question answering's) takes inputs packed to its length.
            settings[path]["sequence_length"] = fixed
    examples = {
        task_name: read_eval(task_name, _EVAL.value, _LIMIT.value)
        for task_name in sorted(set(task_names.values()))
    }

    runner_kwargs = {
        "num_threads": _NUM_THREADS.value,
        "signature_key": _SIGNATURE.value,
    }
    arm64_kwargs = {
        "rootfs": _ROOTFS.value, "arm64_python": _ARM64_PYTHON.value, "cpu": _ARM64_CPU.value,
        "timeout": _ARM64_TIMEOUT.value, **runner_kwargs,
    }
    thresholds = _thresholds()
    tokenized = {}
    entries = []
    arm64_info = {}
    x86_versions = {}
    for path in model_paths:
        if path not in settings:
            print(f"{path}: {STRING_INPUT_NOTE}", file=sys.stderr)
            entries.append(skipped_entry(path, input_names[path], STRING_INPUT_NOTE))
            continue
        task_name = task_names[path]
        manifest = litert.read_manifest(path) or {}
        key = json.dumps(
            [task_name, settings[path], [manifest.get(k) for k in _QA_SETTINGS]], sort_keys=True
        )
        if key not in tokenized:
            tokenized[key] = pack_examples(task_name, examples[task_name], settings[path], manifest)
        inputs = tokenized[key]
        if task_name == tasks.ClassificationTask.name:
            x86_logits, x86_info = run_on_x86(
                path, inputs, output_name=_OUTPUT_NAME.value, **runner_kwargs
            )
        else:
            x86_outputs, x86_info = run_outputs_on_x86(path, inputs, **runner_kwargs)
        print(f"{path}: x86 done in {x86_info['inference_seconds']:.1f} s", file=sys.stderr)
        if task_name == tasks.ClassificationTask.name:
            arm64_logits, arm64_run = run_on_arm64(
                path, inputs, output_name=_OUTPUT_NAME.value, **arm64_kwargs
            )
        else:
            arm64_outputs, arm64_run = run_outputs_on_arm64(path, inputs, **arm64_kwargs)
        print(f"{path}: arm64 done in {arm64_run['process_seconds']:.1f} s", file=sys.stderr)
        if task_name == tasks.ClassificationTask.name:
            metrics = compare_logits(x86_logits, arm64_logits, examples[task_name][2])
            entries.append(
                file_entry(path, settings[path], metrics, x86_info, arm64_run, thresholds)
            )
        else:
            figures = compare_outputs(
                task_name, x86_outputs, arm64_outputs, inputs["lengths"], x86_info["fed_lengths"]
            )
            entries.append(outputs_entry(
                path, task_name, settings[path], figures, x86_info, arm64_run, thresholds
            ))
        x86_versions = x86_info["versions"]
        arm64_info = {
            "versions": arm64_run["versions"],
            "cpu": _ARM64_CPU.value,
            "qemu": _qemu_version(),
            "rootfs": os.path.abspath(_ROOTFS.value),
            "how": (
                f"chroot into the Debian arm64 rootfs, {_ARM64_PYTHON.value} "
                "export/core/arm64_runner.py; arm64 binaries run by qemu-user via binfmt_misc"
            ),
        }
    command = ["python", "-m", "export.check_arm64"] + argv[1:] + [
        f"--{name}={value}" for name, value in _explicit_flags()
    ]
    report = build_report(entries, _EVAL.value, command, x86_versions, arm64_info, thresholds)
    json_path, markdown_path = write_report(report, _OUTPUT_DIR.value)
    print(report_markdown(report))
    print(f"Wrote {json_path} and {markdown_path}.", file=sys.stderr)
    return 0 if report["passed"] else 1


def _explicit_flags():
    """The flags of this module set on the command line, as (name, value) pairs."""
    module_flags = flags.FLAGS.get_flags_for_module(sys.modules[__name__])
    return [(f.name, f.value) for f in module_flags if f.present]


if __name__ == "__main__":
    cli.run(main, input_flags=("eval", "vocab", "rootfs"))
