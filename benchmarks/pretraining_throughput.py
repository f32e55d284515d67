"""Pretraining-step throughput: keras_bert's train step vs Hugging Face `BertForPreTraining`.

Both sides train masked LM + next sentence prediction, float32, on the same synthetic batches
(every token real, `--num_predictions` masked positions per sequence, random NSP labels),
with AdamW (weight decay 0.01, global gradient norm clipped to 1.0) and the same dropout:

* keras_bert: exactly the train step of `training.pretrain` (`GlobalGradientTrainStep` on
  `BertPretrainer`, `global_gradients.create_optimizer`), run by `model.fit` on an in-memory
  repeated `tf.data` of the batches, in this process;
* Hugging Face: `transformers.BertForPreTraining` of the same shape on PyTorch (loss from
  `labels` and `next_sentence_label`, `clip_grad_norm_`, `torch.optim.AdamW`), in a
  long-lived `.venv-torch` process (`benchmarks/hf_pretraining_worker.py`;
  `scripts/setup_torch.sh` creates the virtualenv), with `torch.set_num_threads` = the
  cores TensorFlow uses.

The two sides take turns: one warm-up round (not counted), then `--rounds` rounds of
`--steps` steps each, the order alternating every round, so load from other work hits both
alike. A round is the wall time from the start of the side's first step to the end of its
last: inside one `model.fit` for keras_bert (whose set-up and tear-down a pretraining run
pays once, not per step), the worker's own loop for Hugging Face. Reports each side's
examples/s per round, their medians and the ratio of medians (keras_bert / Hugging Face), and
writes them with the machine and the versions to a JSON file.

Examples:

    # The issue's configuration (bert_mini, batch 32, 128 tokens; 8-12 minutes on 2 busy cores):
    scripts/setup_torch.sh
    flock /tmp/keras_bert_heavy.lock python -m benchmarks.pretraining_throughput

    # A smaller vocabulary, and an encoder variant (BertEncoder arguments as JSON):
    python -m benchmarks.pretraining_throughput --vocabulary_size=8000
    python -m benchmarks.pretraining_throughput \
        --encoder_overrides='{"norm_first": true, "dropout": 0.0}'

    # Seconds: the whole pipeline on bert_tiny, one round of one step.
    python -m benchmarks.pretraining_throughput --preset=bert_tiny --batch_size=2 \
        --sequence_length=16 --num_predictions=2 --rounds=1 --steps=1 --out=/tmp/t.json
"""

import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from absl import flags

from keras_bert.utils import cli
from training.core import recipes

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPOSITORY = Path(__file__).resolve().parents[1]
WORKER = REPOSITORY / "benchmarks" / "hf_pretraining_worker.py"
DEFAULT_TORCH_VENV = REPOSITORY / ".venv-torch"

# training.pretrain's default recipe: AdamW, its moments and epsilon, decoupled weight decay,
# global norm clipping. A constant rate (pretrain's peak): the schedule costs nothing per step.
OPTIMIZER = {
    name: recipes.RECIPES[recipes.DEFAULT_RECIPE][name]
    for name in ("learning_rate", "beta_1", "beta_2", "epsilon", "weight_decay", "clipnorm")
}
# Distinct batches each side cycles through (both restart at batch 0 every round).
NUM_BATCHES = 4
# Ids 0-4 stand for [PAD], [UNK], [CLS], [SEP], [MASK]; words are drawn from the rest.
CLS_ID, SEP_ID, MASK_ID, FIRST_WORD_ID = 2, 3, 4, 5
IGNORED_LABEL = -100  # Hugging Face's "no masked-LM target here".
# keras_bert activation -> the `hidden_act` of transformers' BertConfig that computes it.
HF_ACTIVATIONS = {"gelu": "gelu", "gelu_approximate": "gelu_new", "relu": "relu"}
# Overrides the Hugging Face side follows (BertConfig has the same knob); others are ours only.
MIRRORED_ENCODER_KEYS = (
    "vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim", "dropout",
    "attention_dropout", "max_sequence_length", "num_segments", "activation",
    "layer_norm_epsilon", "initializer_range", "dtype",
)

FLAGS = flags.FLAGS


def define_flags():
    """Defines the command-line flags (only when run as a program, so that tests and other
    apps can import this module without their flags clashing)."""
    flags.DEFINE_enum(
        "preset", "bert_mini", recipes.PRESET_NAMES, "Encoder shape (a `BertEncoder` preset)."
    )
    flags.DEFINE_integer("batch_size", 32, "Sequences per training step.")
    flags.DEFINE_integer("sequence_length", 128, "Tokens per sequence, all real (no padding).")
    flags.DEFINE_integer("vocabulary_size", 30522, "Vocabulary size of both models.")
    flags.DEFINE_integer("num_predictions", 20, "Masked-LM predictions per sequence.")
    flags.DEFINE_integer("rounds", 7, "Timed rounds (after one warm-up round), sides interleaved.")
    flags.DEFINE_integer("steps", 5, "Training steps per side and round.")
    flags.DEFINE_string(
        "encoder_overrides", "{}",
        "JSON object of `BertEncoder` constructor arguments applied to the preset, e.g. "
        "'{\"norm_first\": true, \"dropout\": 0.0}'. The Hugging Face side follows the shape, "
        "dropout, activation and layer-norm epsilon; it has no counterpart for the others.",
    )
    flags.DEFINE_string(
        "pretrainer_overrides", "{}",
        "JSON object of extra `BertPretrainer` arguments (besides the encoder), e.g. "
        "'{\"nsp_loss_weight\": 1.0}'.",
    )
    flags.DEFINE_integer(
        "num_threads", None,
        "Threads of both sides: TensorFlow's intra-op threads and `torch.set_num_threads`. "
        "Default: TensorFlow's default (every core) and os.cpu_count() for torch.",
    )
    flags.DEFINE_integer("seed", 0, "Seed of the batches and of both models' initialisation.")
    flags.DEFINE_string(
        "torch_venv", str(DEFAULT_TORCH_VENV),
        "The virtualenv with torch and transformers (made by scripts/setup_torch.sh).",
    )
    flags.DEFINE_string("machine", None, "Machine name in the default --out. Default: from the CPU.")
    flags.DEFINE_string(
        "out", None,
        "JSON result file. Default: benchmarks/results/pretraining_throughput-<machine>.json.",
    )

    for _name in ("batch_size", "sequence_length", "num_predictions", "rounds", "steps"):
        flags.register_validator(_name, lambda value: value >= 1, "must be positive.")
    flags.register_validator(
        "vocabulary_size", lambda value: value > FIRST_WORD_ID,
        f"must be more than {FIRST_WORD_ID} (ids 0-{FIRST_WORD_ID - 1} are special tokens).",
    )
    flags.register_validator(
        "num_threads", lambda value: value is None or value >= 1, "must be positive."
    )

    @flags.multi_flags_validator(["num_predictions", "sequence_length"])
    def _predictions_fit(values):
        # [CLS] and two [SEP] are never masked.
        if values["num_predictions"] > values["sequence_length"] - 3:
            raise cli.FlagError(
                "num_predictions", values["num_predictions"],
                f"must be at most `--sequence_length` - 3 ({values['sequence_length'] - 3}): "
                "[CLS] and the two [SEP] are never masked.",
            )
        return True


# === Batches ===


def synthetic_batches(
    num_batches, batch_size, sequence_length, vocabulary_size, num_predictions, seed=0
):
    """Fixed pretraining batches for both sides, built with numpy.

    Each sequence is `[CLS] A [SEP] B [SEP]` with random word ids (ids from
    `FIRST_WORD_ID`), every position real, segment A of random length.
    `num_predictions` distinct positions (never [CLS] or [SEP]) are masked as
    BERT does: 80% become [MASK], 10% a random word, 10% stay.

    Args:
        num_batches: int. Number of batches.
        batch_size: int. Sequences per batch.
        sequence_length: int. Tokens per sequence, at least `num_predictions + 3`.
        vocabulary_size: int. More than `FIRST_WORD_ID`.
        num_predictions: int. Masked positions per sequence.
        seed: int. Defaults to `0`.

    Returns:
        A dict of numpy arrays over `num_examples = num_batches * batch_size`
        sequences, batch `i` being rows `[i * batch_size, (i + 1) * batch_size)`:
            token_ids, segment_ids, padding_mask: int32 `(num_examples, sequence_length)`
                (the model inputs; padding_mask all ones).
            masked_positions: int32 `(num_examples, num_predictions)`, ascending.
            masked_ids: int32 `(num_examples, num_predictions)`, the original ids there.
            masked_weights: float32 `(num_examples, num_predictions)`, all ones.
            next_sentence_label: int32 `(num_examples,)`, 0 (B follows A) or 1 (random B),
                the convention of both keras_bert and Hugging Face.
            mlm_labels: int32 `(num_examples, sequence_length)`: Hugging Face's `labels`,
                the original id at masked positions and `IGNORED_LABEL` (-100) elsewhere.
    """
    import numpy as np

    for name, value in (("num_batches", num_batches), ("batch_size", batch_size),
                        ("num_predictions", num_predictions)):
        if value < 1:
            raise ValueError(f"`{name}` must be positive, received {value}.")
    if sequence_length < num_predictions + 3:
        raise ValueError(
            f"`sequence_length` ({sequence_length}) must be at least `num_predictions` + 3 "
            f"({num_predictions + 3})."
        )
    if vocabulary_size <= FIRST_WORD_ID:
        raise ValueError(
            f"`vocabulary_size` ({vocabulary_size}) must be more than {FIRST_WORD_ID}."
        )
    rng = np.random.default_rng(seed)
    num_examples = num_batches * batch_size
    original = rng.integers(
        FIRST_WORD_ID, vocabulary_size, (num_examples, sequence_length), dtype=np.int32
    )
    # The last [SEP] closes B; the first closes A, leaving B at least one word.
    first_sep = rng.integers(2, sequence_length - 2, num_examples)
    rows = np.arange(num_examples)
    original[:, 0] = CLS_ID
    original[:, -1] = SEP_ID
    original[rows, first_sep] = SEP_ID
    positions = np.arange(sequence_length)
    segment_ids = (positions[None, :] > first_sep[:, None]).astype(np.int32)

    # Random scores with the special positions last: the top `num_predictions` are words.
    scores = rng.random((num_examples, sequence_length))
    scores[original < FIRST_WORD_ID] = -1.0
    masked_positions = np.sort(
        np.argsort(-scores, axis=1)[:, :num_predictions], axis=1
    ).astype(np.int32)
    masked_ids = np.take_along_axis(original, masked_positions, axis=1)

    token_ids = original.copy()
    choice = rng.random((num_examples, num_predictions))
    replacement = np.where(
        choice < 0.8,
        MASK_ID,
        np.where(
            choice < 0.9,
            rng.integers(FIRST_WORD_ID, vocabulary_size, choice.shape, dtype=np.int32),
            masked_ids,
        ),
    ).astype(np.int32)
    np.put_along_axis(token_ids, masked_positions, replacement, axis=1)

    mlm_labels = np.full((num_examples, sequence_length), IGNORED_LABEL, np.int32)
    np.put_along_axis(mlm_labels, masked_positions, masked_ids, axis=1)
    return {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": np.ones_like(token_ids),
        "masked_positions": masked_positions,
        "masked_ids": masked_ids,
        "masked_weights": np.ones(masked_ids.shape, np.float32),
        "next_sentence_label": rng.integers(0, 2, num_examples, dtype=np.int32),
        "mlm_labels": mlm_labels,
    }


def examples_per_second(seconds, steps, batch_size):
    """Throughput of `steps` steps of `batch_size` sequences that took `seconds`."""
    return steps * batch_size / seconds


# === keras_bert ===


class KerasBertSide:
    """training.pretrain's train step on `BertPretrainer`, timed `steps` at a time.

    Args:
        batches: dict of numpy arrays, as `synthetic_batches` returns.
        batch_size: int. Rows of `batches` per step.
        encoder_config: dict. `BertEncoder` arguments (`encoder_config_of`).
        pretrainer_overrides: dict. `BertPretrainer` arguments besides `encoder`.
            Defaults to `{}`.
        seed: int. Initialisation and dropout seed. Defaults to `0`.
    """

    def __init__(self, batches, batch_size, encoder_config, pretrainer_overrides=None, seed=0):
        import keras
        import tensorflow as tf

        from keras_bert.bert_encoder import BertEncoder
        from keras_bert.models.bert_pretrainer import BertPretrainer
        from training.core import global_gradients

        class TrainablePretrainer(global_gradients.GlobalGradientTrainStep, BertPretrainer):
            """`BertPretrainer` with the global-gradient train step, as training.pretrain."""

        pretrainer_overrides = dict(pretrainer_overrides or {})
        check_pretrainer_overrides(pretrainer_overrides)
        keras.utils.set_random_seed(seed)
        model = TrainablePretrainer(BertEncoder(**encoder_config), **pretrainer_overrides)
        optimizer = global_gradients.create_optimizer(
            model,
            "adamw",
            OPTIMIZER["learning_rate"],
            weight_decay=OPTIMIZER["weight_decay"],
            beta_1=OPTIMIZER["beta_1"],
            beta_2=OPTIMIZER["beta_2"],
            epsilon=OPTIMIZER["epsilon"],
            global_clipnorm=OPTIMIZER["clipnorm"],
        )
        model.compile(optimizer=optimizer)
        self.model = model
        self.encoder_config = model.encoder.get_config()
        self.batch_size = batch_size
        self.fit_seconds = []

        num_batches = len(batches["token_ids"]) // batch_size

        def batched(name):
            value = batches[name][: num_batches * batch_size]
            return value.reshape((num_batches, batch_size) + value.shape[1:])

        inputs = {name: batched(name) for name in
                  ("token_ids", "segment_ids", "padding_mask", "masked_positions")}
        labels = {name: batched(name) for name in
                  ("masked_ids", "masked_weights", "next_sentence_label")}
        # Whole batches as elements: the pipeline only hands over tensors in memory.
        self.dataset = tf.data.Dataset.from_tensor_slices((inputs, labels)).repeat()

    def run(self, steps):
        """Wall seconds of `steps` consecutive steps of one `model.fit` (from batch 0).

        From the start of the first step to the end of the last, as in a long
        `fit` of training.pretrain: without `fit`'s set-up and tear-down, which
        that `fit` pays once per run. (The tear-down deletes the `tf.data`
        iterator, which waits for the autotuner's next wake-up: up to 10.24 s
        once the autotuner's period has grown, whatever the steps took.) The
        `fit` call's own wall time is kept in `fit_seconds`.
        """
        span = _step_span()
        start = time.perf_counter()
        self.model.fit(
            self.dataset, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0,
            callbacks=[span],
        )
        self.fit_seconds.append(time.perf_counter() - start)
        return span.seconds


def _step_span():
    """A Keras callback whose `seconds` span the first training step's start to the last's end."""
    import keras

    class StepSpan(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.first_begin = self.last_end = None

        def on_train_batch_begin(self, batch, logs=None):
            if self.first_begin is None:
                self.first_begin = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.last_end = time.perf_counter()

        @property
        def seconds(self):
            return self.last_end - self.first_begin

    return StepSpan()


def encoder_config_of(preset, vocabulary_size, overrides):
    """Every float32 `BertEncoder` argument of `preset` with `overrides` applied.

    Arguments the preset leaves out have the constructor's defaults;
    `attention_dropout` is resolved (`None` means `dropout`). Raises
    ValueError naming the first unknown or invalid argument.
    """
    from keras_bert.bert_encoder import BertEncoder
    from keras_bert.bert_encoder import validate_config

    overrides = dict(overrides)
    dtype = overrides.pop("dtype", "float32")
    if dtype != "float32":
        raise ValueError(f"`dtype` must be float32 in this benchmark, received {dtype!r}.")
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(BertEncoder.__init__).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    config = dict(defaults, **BertEncoder.preset_config(
        preset, **dict(overrides, vocabulary_size=vocabulary_size, dtype="float32")
    ))
    if config["attention_dropout"] is None:
        config["attention_dropout"] = config["dropout"]
    checked = inspect.signature(validate_config).parameters
    validate_config(**{name: value for name, value in config.items() if name in checked})
    return config


def check_pretrainer_overrides(overrides):
    """Raises ValueError for a key that is not a `BertPretrainer` argument."""
    from keras_bert.models.bert_pretrainer import BertPretrainer

    parameters = inspect.signature(BertPretrainer.__init__).parameters
    known = sorted(name for name, parameter in parameters.items()
                   if name not in ("self", "encoder")
                   and parameter.kind is not inspect.Parameter.VAR_KEYWORD)
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ValueError(f"Unknown `BertPretrainer` arguments {unknown}; known: {known}.")


# === Hugging Face ===


def hf_config(encoder_config):
    """`transformers.BertConfig` arguments of the same shape, dropout and activation."""
    activation = encoder_config["activation"]
    if activation not in HF_ACTIVATIONS:
        raise ValueError(
            f"`activation` ({activation!r}) has no Hugging Face counterpart; use one of "
            f"{sorted(HF_ACTIVATIONS)}."
        )
    return {
        "vocab_size": encoder_config["vocabulary_size"],
        "hidden_size": encoder_config["hidden_dim"],
        "num_hidden_layers": encoder_config["num_layers"],
        "num_attention_heads": encoder_config["num_heads"],
        "intermediate_size": encoder_config["intermediate_dim"],
        "max_position_embeddings": encoder_config["max_sequence_length"],
        "type_vocab_size": encoder_config["num_segments"],
        "hidden_act": HF_ACTIVATIONS[activation],
        "hidden_dropout_prob": encoder_config["dropout"],
        "attention_probs_dropout_prob": encoder_config["attention_dropout"],
        "layer_norm_eps": encoder_config["layer_norm_epsilon"],
        "initializer_range": encoder_config["initializer_range"],
    }


def torch_python(venv):
    """The Python of the torch virtualenv `venv`; FlagError if it is not there."""
    python = Path(venv) / "bin" / "python"
    if not python.is_file():
        raise cli.FlagError(
            "torch_venv", str(venv), "has no bin/python: run scripts/setup_torch.sh."
        )
    return str(python)


class HuggingFaceSide:
    """`BertForPreTraining` training in a `.venv-torch` process, timed `steps` at a time.

    Args:
        python: string. The torch virtualenv's Python (`torch_python`).
        batches_path: string. An `.npz` of `synthetic_batches`' arrays.
        settings: dict. What `benchmarks/hf_pretraining_worker.py` reads.
        scratch: string. A directory for the settings file and the worker's stderr.
    """

    def __init__(self, python, batches_path, settings, scratch):
        settings_path = os.path.join(scratch, "hf_settings.json")
        with open(settings_path, "w", encoding="utf-8") as f:
            json.dump(settings, f)
        self._stderr_path = os.path.join(scratch, "hf_worker.stderr")
        self._stderr = open(self._stderr_path, "w", encoding="utf-8")
        # The worker's own packages only: nothing of this environment leaks into it.
        env = {key: value for key, value in os.environ.items()
               if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        self._process = subprocess.Popen(
            [python, str(WORKER), settings_path, batches_path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            text=True, env=env, cwd=scratch,
        )
        self.info = self._receive()
        if not self.info.get("ready"):
            self._fail(f"unexpected first message {self.info}")

    def run(self, steps):
        """Seconds the worker took for `steps` steps (from batch 0)."""
        self._process.stdin.write(json.dumps({"run": steps}) + "\n")
        self._process.stdin.flush()
        return float(self._receive()["seconds"])

    def close(self):
        if self._process.poll() is None:
            try:
                self._process.stdin.write(json.dumps({"quit": True}) + "\n")
                self._process.stdin.close()
                self._process.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _receive(self):
        line = self._process.stdout.readline()
        if not line:
            self._fail("it ended without an answer")
        return json.loads(line)

    def _fail(self, what):
        self._process.kill()
        self._process.wait()
        self._stderr.flush()
        with open(self._stderr_path, encoding="utf-8") as f:
            tail = "\n".join(f.read().strip().splitlines()[-15:])
        raise RuntimeError(
            f"The Hugging Face worker failed ({what}; exit status "
            f"{self._process.returncode}):\n{tail}"
        )


# === Timing ===


def interleaved_rounds(sides, rounds, steps, log=None):
    """One warm-up round, then `rounds` rounds of `steps` steps per side, order alternating.

    Args:
        sides: dict of name -> object with `run(steps)` returning seconds.
        rounds: int. Timed rounds.
        steps: int. Steps per side and round.
        log: callable taking a line, or None.

    Returns:
        (warm-up seconds per side, list of round seconds per side), two dicts by name.
    """
    names = list(sides)
    warmup = {name: sides[name].run(steps) for name in names}
    if log:
        log("warm-up: " + ", ".join(f"{name} {warmup[name]:.1f} s" for name in names))
    seconds = {name: [] for name in names}
    for index in range(rounds):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            seconds[name].append(sides[name].run(steps))
        if log:
            log(f"round {index + 1}/{rounds}: " + ", ".join(
                f"{name} {seconds[name][-1]:.2f} s" for name in names))
    return warmup, seconds


def summary(seconds, steps, batch_size):
    """Per-round and median examples/s of a side's round seconds."""
    throughput = [examples_per_second(s, steps, batch_size) for s in seconds]
    return {
        "round_seconds": seconds,
        "round_examples_per_second": throughput,
        "median_examples_per_second": statistics.median(throughput),
        "best_examples_per_second": max(throughput),
    }


# === Main ===


def _json_object_flag(name):
    text = FLAGS[name].value
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise cli.FlagError(name, text, f"is not JSON ({error.msg}).") from error
    if not isinstance(value, dict):
        raise cli.FlagError(name, text, "must be a JSON object.")
    return value


def main(argv):
    from absl import app

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    encoder_overrides = _json_object_flag("encoder_overrides")
    pretrainer_overrides = _json_object_flag("pretrainer_overrides")

    import numpy as np
    import tensorflow as tf
    from absl import logging

    from benchmarks import environment

    # Before TensorFlow starts: threads, and CPU only (the torch wheel is the CPU one).
    if FLAGS.num_threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.num_threads)
    tf.config.set_visible_devices([], "GPU")
    num_threads = FLAGS.num_threads or os.cpu_count()
    logging.set_verbosity(logging.ERROR)
    tf.get_logger().setLevel("ERROR")

    with cli.flag_context("encoder_overrides"):
        encoder_config = encoder_config_of(FLAGS.preset, FLAGS.vocabulary_size, encoder_overrides)
        hf = hf_config(encoder_config)
    if FLAGS.sequence_length > encoder_config["max_sequence_length"]:
        raise cli.FlagError(
            "sequence_length", FLAGS.sequence_length,
            f"exceeds the encoder's `max_sequence_length` "
            f"({encoder_config['max_sequence_length']}).",
        )
    with cli.flag_context("pretrainer_overrides"):
        check_pretrainer_overrides(pretrainer_overrides)
    python = torch_python(FLAGS.torch_venv)

    def log(message):
        print(message, flush=True)

    machine = environment.machine()
    machine_name = FLAGS.machine or environment.default_machine_name(machine)
    log(f"CPU: {machine['cpu']}, {machine['logical_cpus']} logical CPUs "
        f"({'/'.join(machine['instruction_sets'])}), {machine['memory_gb']} GB, "
        f"{machine['system']}" + (f"; GPUs {machine['gpus']} not used (CPU against CPU)"
                                  if machine["gpus"] else ""))
    started = time.time()
    load_before = environment.load_average()

    batches = synthetic_batches(
        NUM_BATCHES, FLAGS.batch_size, FLAGS.sequence_length, FLAGS.vocabulary_size,
        FLAGS.num_predictions, seed=FLAGS.seed,
    )
    with tempfile.TemporaryDirectory(prefix="pretraining_throughput-") as scratch:
        batches_path = os.path.join(scratch, "batches.npz")
        np.savez(batches_path, **batches)
        worker_settings = dict(
            OPTIMIZER, config=hf, batch_size=FLAGS.batch_size, num_threads=num_threads,
            seed=FLAGS.seed,
        )
        with HuggingFaceSide(python, batches_path, worker_settings, scratch) as hugging_face:
            with cli.flag_context("pretrainer_overrides"):
                keras_bert_side = KerasBertSide(
                    batches, FLAGS.batch_size, encoder_config, pretrainer_overrides,
                    seed=FLAGS.seed,
                )
            versions = dict(
                environment.versions(), torch=hugging_face.info["torch"],
                transformers=hugging_face.info["transformers"],
            )
            log(f"TensorFlow {versions['tensorflow']}, Keras {versions['keras']}, "
                f"torch {versions['torch']}, transformers {versions['transformers']}; "
                f"threads: TensorFlow intra-op "
                f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default (all cores)'}"
                f", torch {hugging_face.info['num_threads']}")
            parameters = {
                "keras_bert": int(keras_bert_side.model.count_params()),
                "hugging_face": int(hugging_face.info["parameters"]),
            }
            log(f"{FLAGS.preset}, vocabulary {FLAGS.vocabulary_size}, batch {FLAGS.batch_size}, "
                f"length {FLAGS.sequence_length}, {FLAGS.num_predictions} predictions, float32; "
                f"parameters keras_bert {parameters['keras_bert']:,}, "
                f"Hugging Face {parameters['hugging_face']:,}")
            sides = {"keras_bert": keras_bert_side, "hugging_face": hugging_face}
            warmup, seconds = interleaved_rounds(sides, FLAGS.rounds, FLAGS.steps, log=log)

    results = {name: summary(seconds[name], FLAGS.steps, FLAGS.batch_size) for name in sides}
    for name in sides:
        results[name]["warmup_seconds"] = warmup[name]
    # The `fit` calls' whole wall time, set-up and tear-down included (not counted).
    results["keras_bert"]["round_fit_call_seconds"] = keras_bert_side.fit_seconds[1:]
    ratio = (results["keras_bert"]["median_examples_per_second"]
             / results["hugging_face"]["median_examples_per_second"])
    not_mirrored = sorted(set(encoder_overrides) - set(MIRRORED_ENCODER_KEYS)) + sorted(
        pretrainer_overrides)
    report = {
        "machine_name": machine_name,
        "machine": machine,
        "versions": versions,
        "command": "python -m benchmarks.pretraining_throughput " + " ".join(sys.argv[1:]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "duration_s": time.time() - started,
        "load_average_before": load_before,
        "load_average_after": environment.load_average(),
        "settings": {
            "preset": FLAGS.preset,
            "batch_size": FLAGS.batch_size,
            "sequence_length": FLAGS.sequence_length,
            "vocabulary_size": FLAGS.vocabulary_size,
            "num_predictions": FLAGS.num_predictions,
            "rounds": FLAGS.rounds,
            "steps": FLAGS.steps,
            "num_batches": NUM_BATCHES,
            "dtype": "float32",
            "num_threads": num_threads,
            "seed": FLAGS.seed,
            "optimizer": dict(OPTIMIZER, name="AdamW"),
            "encoder_overrides": encoder_overrides,
            "pretrainer_overrides": pretrainer_overrides,
            "keras_bert_encoder": keras_bert_side.encoder_config,
            "hugging_face_config": hf,
            "hugging_face_attention": hugging_face.info.get("attention"),
            "not_mirrored_by_hugging_face": not_mirrored,
        },
        "parameters": parameters,
        "results": results,
        "ratio_of_medians": ratio,
    }
    out = Path(FLAGS.out or REPOSITORY / "benchmarks" / "results"
               / f"pretraining_throughput-{machine_name}.json")
    from keras_bert.utils.atomic import write_json

    write_json(str(out), report, indent=1)
    for name, label in (("keras_bert", "keras_bert"), ("hugging_face", "Hugging Face")):
        entry = results[name]
        log(f"{label}: median {entry['median_examples_per_second']:.1f} examples/s; rounds "
            + ", ".join(f"{value:.1f}" for value in entry["round_examples_per_second"]))
    log(f"Wrote {out}")
    log(f"keras_bert / HF examples/s ratio of medians: {ratio:.2f}x")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
