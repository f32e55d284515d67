"""Pretrains BERT (masked LM + next sentence) from a corpus or from TFRecords.

Examples:

    # 10 minutes of bert_mini on a CPU, an 8k vocabulary learned from the corpus,
    # examples built on the fly, then evaluated on another file:
    python -m training.pretrain --preset=bert_mini \
        --corpus=../shared/data/wikitext2/valid.txt \
        --eval_corpus=../shared/data/wikitext2/test.txt \
        --vocabulary_size=8000 --max_minutes=10 --model_dir=/tmp/bert_mini

    # From TFRecords of `keras_bert.text.create_pretraining_data`, a fixed number of
    # steps, bfloat16 compute, a checkpoint every 1000 steps (a killed run started
    # again with the same command resumes there):
    python -m training.pretrain --config=my_bert.json --vocab=vocab.txt \
        --train_records='/data/pretraining/*.tfrecord' --train_steps=100000 \
        --batch_size=256 --learning_rate=1e-4 --mixed_precision=mixed_bfloat16 \
        --checkpoint_every_steps=1000 --model_dir=/tmp/bert

    # Continue from a Google checkpoint (encoder and cls/ heads), LAMB, batch 4096
    # as 8 accumulated micro-batches:
    python -m training.pretrain --init_checkpoint=uncased_L-12_H-768_A-12 \
        --train_records=... --optimizer=lamb --batch_size=4096 \
        --gradient_accumulation_steps=8 --learning_rate=1.76e-3 --model_dir=...

    # Many devices: all local GPUs; the CPU split in two (to test replica code);
    # every worker of a cluster described by TF_CONFIG; a Cloud TPU:
    python -m training.pretrain ... --strategy=mirrored
    python -m training.pretrain ... --strategy=mirrored --num_cpu_devices=2
    TF_CONFIG='{"cluster": {"worker": ["host1:2222", "host2:2222"]},
                "task": {"type": "worker", "index": 0}}' \
        python -m training.pretrain ... --strategy=multi_worker
    python -m training.pretrain ... --strategy=tpu --tpu=my-tpu \
        --mixed_precision=mixed_bfloat16

See training/PRETRAINING.md for commands at scale and the batch-size and
learning-rate rule. Writes to --model_dir: vocab.txt (when learned),
pretrain_config.json, logs/ (train_log.jsonl and TensorBoard events),
backup/ (while training), pretrainer.keras (a float32 `BertPretrainer`),
encoder/ (the encoder as `keras_bert.load_encoder` reads it, with vocab.txt)
and metrics.json (mlm_accuracy, nsp_accuracy, ... on --eval_corpus).
"""

import gc
import hashlib
import json
import math
import os
import shutil
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app, flags, logging  # noqa: E402

from keras_bert.utils import cli  # noqa: E402
from training.core.distribution import STRATEGIES  # noqa: E402
from training.core import recipes  # noqa: E402
from training.core.pretraining_data import DEFAULT_EVAL_SEED  # noqa: E402

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "pretrain_config.json"
METRICS_FILE = "metrics.json"
MODEL_FILE = "pretrainer.keras"
ENCODER_DIR = "encoder"
BACKUP_DIR = "backup"
LOG_DIR = "logs"

FLAGS = flags.FLAGS

# === Model ===
flags.DEFINE_enum(
    "preset", None, recipes.PRESET_NAMES,
    "Start from a randomly initialised encoder of this published shape. One of --preset, "
    "--config and --init_checkpoint is required.",
)
flags.DEFINE_string(
    "config", None,
    "JSON file of BertEncoder arguments (num_layers, hidden_dim, ...; unknown keys are "
    "errors); vocabulary_size defaults to the vocabulary's size.",
)
flags.DEFINE_string(
    "init_checkpoint", None,
    "Continue from a checkpoint: a pretrainer.keras (or a --model_dir of this program), "
    "a Google BERT directory (encoder and cls/ heads), a Hugging Face directory, or a "
    "keras_bert encoder directory (heads then start random).",
)

# === Recipe: every knob's default comes from --recipe; a flag given overrides it ===
flags.DEFINE_enum(
    "recipe", recipes.DEFAULT_RECIPE, sorted(recipes.RECIPES),
    "Defaults of the knobs below: `budget` (pre-LN, no biases, no dropout, initializer range "
    "0.05, 30% masking, a next-sentence head also on the segment means at weight 0.25, AdamW "
    "(0.9, 0.98) at 2e-3, 6% warmup; from the budget recipes and "
    "measured by step: README) or `bert` (Devlin et al. 2018, for reproducing the paper). "
    "Each knob given as a flag overrides its recipe's value.",
)
for _name in recipes.ARCHITECTURE_KNOBS:
    _define = (flags.DEFINE_bool if isinstance(recipes.RECIPES["bert"][_name], bool)
               else flags.DEFINE_float)
    _define(
        _name, None,
        recipes.KNOBS[_name] + " Default: the recipe's (from the checkpoint with "
        "--init_checkpoint).",
    )
for _name in ("dropout", "masked_lm_prob", "nsp_loss_weight", "learning_rate", "beta_1",
              "beta_2", "epsilon", "weight_decay", "clipnorm", "warmup_proportion",
              "decay_proportion"):
    flags.DEFINE_float(_name, None, recipes.KNOBS[_name] + " Default: the recipe's.")
flags.DEFINE_enum(
    "schedule", None, recipes.SCHEDULES,
    "Learning-rate schedule. warmup_linear_decay: linear warmup over --warmup_proportion of "
    "the steps, then linear decay to --end_learning_rate over the last --decay_proportion "
    "(BERT's). budget_triangle: from 25% of the peak, up to it at 75% of the steps (or of "
    "--max_minutes), then down to --end_learning_rate (Cramming). Default: the recipe's.",
)

# === Data ===
flags.DEFINE_multi_string(
    "corpus", None,
    "Raw training text (repeat the flag or separate files with commas): tokenized once, "
    "examples built on the fly (new pairs and masks every pass). Blank-line-separated "
    "documents, or WikiText. Exclusive with --train_records.",
)
flags.DEFINE_string(
    "train_records", None,
    "Glob of pretraining TFRecords written by keras_bert.text.create_pretraining_data.",
)
flags.DEFINE_multi_string("eval_corpus", None, "Raw evaluation text (examples built once, seeded).")
flags.DEFINE_string("eval_records", None, "Glob of evaluation TFRecords.")
flags.DEFINE_string(
    "vocab", None,
    "vocab.txt (or a directory holding one). Default: the --init_checkpoint's, else "
    "--model_dir/vocab.txt if it exists, else learned from --corpus (--vocabulary_size).",
)
flags.DEFINE_integer("vocabulary_size", 30522, "Size of a vocabulary learned from --corpus.")
cli.define_deprecated_alias("vocab_size", "vocabulary_size")
flags.DEFINE_bool("lower_case", True, "Whether a learned vocabulary is uncased.")
flags.DEFINE_enum("corpus_format", "auto", ["auto", "lines", "wikitext"], "Corpus format.")
flags.DEFINE_integer("sequence_length", 128, "Length of the packed sequences.")
cli.define_deprecated_alias("max_seq_length", "sequence_length")
flags.DEFINE_integer(
    "max_predictions_per_seq", None,
    "Most masked tokens per sequence. Default: ceil(--sequence_length * --masked_lm_prob) "
    "(20 for 128 tokens at 15%).",
)
flags.DEFINE_float(
    "eval_masked_lm_prob", 0.15,
    "Fraction of tokens masked in the examples of --eval_corpus (BERT's 15% whatever the "
    "recipe, so that masked-LM accuracies compare across recipes).",
)
flags.DEFINE_float("short_seq_prob", 0.1, "Probability of a shorter target sequence.")
flags.DEFINE_bool("whole_word_masking", False, "Mask all pieces of a word together.")

# === Optimisation ===
flags.DEFINE_enum("optimizer", "adamw", ["adamw", "lamb"], "AdamW or LAMB.")
flags.DEFINE_float("end_learning_rate", 0.0, "Learning rate at the last step.")
flags.DEFINE_integer(
    "batch_size", 32,
    "Global batch size of one optimizer step (all replicas and micro-batches together).",
)
flags.DEFINE_integer(
    "gradient_accumulation_steps", 1,
    "Split each replica's batch into this many micro-batches run one after the other "
    "(same update, less memory).",
)
flags.DEFINE_integer("train_steps", None, "Optimizer steps to train (or until --max_minutes).")
flags.DEFINE_float(
    "max_minutes", None,
    "Stop training when this much wall time has passed since the start of the program "
    "(then evaluate). The learning rate decays to its end value at that time.",
)
flags.DEFINE_integer("seed", 0, "Seed of initialisation, dropout and the training examples.")
flags.DEFINE_integer(
    "eval_seed", DEFAULT_EVAL_SEED, "Seed of the evaluation examples built from --eval_corpus."
)

# === Checkpoints, logs, evaluation ===
flags.DEFINE_string("model_dir", None, "Output directory.", required=True)
flags.DEFINE_bool(
    "overwrite",
    False,
    "Train again into a --model_dir that already holds a finished model (pretrainer.keras); "
    "its outputs are replaced when the new run ends. Without it such a directory is refused. "
    "A directory with only a backup/ is an interrupted run and is always resumed.",
)
flags.DEFINE_integer(
    "checkpoint_every_steps", 1000,
    "Back up the training state every this many steps (one Keras epoch); a killed run "
    "started again with the same command resumes from the last backup.",
)
flags.DEFINE_integer(
    "log_every_steps", 50,
    "Average metrics over this many steps and log them (train_log.jsonl, TensorBoard).",
)
flags.DEFINE_integer("eval_batch_size", 64, "Global batch size of the evaluation.")
flags.DEFINE_integer(
    "eval_every_steps", None,
    "Also evaluate on --eval_corpus every this many steps (a multiple of --log_every_steps), "
    "into logs/eval_log.jsonl: the learning curve on held-out text.",
)
flags.DEFINE_bool("progress_bar", True, "Show Keras's progress bar (chief only).")

# === Devices and precision ===
flags.DEFINE_enum(
    "strategy", "one_device", STRATEGIES,
    "one_device; mirrored (all local GPUs, or --num_cpu_devices logical CPUs); "
    "multi_worker (the cluster of TF_CONFIG); tpu (--tpu).",
)
flags.DEFINE_integer(
    "num_cpu_devices", None,
    "With --strategy=mirrored: split the CPU into this many logical devices (tests, laptops).",
)
flags.DEFINE_string("tpu", None, "With --strategy=tpu: TPU name or grpc:// address ('' = local).")
flags.DEFINE_enum(
    "mixed_precision", "auto", PRECISIONS,
    "Compute dtype; variables stay float32. mixed_float16 adds dynamic loss scaling. auto: "
    "mixed_bfloat16 where every device computes bfloat16 natively (TPUs, NVIDIA GPUs of "
    "compute capability 8.0 and up, CPUs with AVX512_BF16 or AMX), else float32.",
)
flags.DEFINE_bool("jit_compile", False, "Compile the train step with XLA.")

# === Flag checks that need no I/O, at parsing (the others: `_check_flags`) ===
for _name, _check, _message in (
    ("learning_rate", lambda value: value > 0, "must be positive."),
    ("nsp_loss_weight", lambda value: value > 0, "must be positive."),
    ("initializer_range", lambda value: value > 0, "must be positive."),
    ("weight_decay", lambda value: value >= 0, "must be >= 0."),
    ("clipnorm", lambda value: value >= 0, "must be >= 0."),
    ("epsilon", lambda value: value > 0, "must be positive."),
    ("beta_1", lambda value: 0 <= value < 1, "must be in [0, 1)."),
    ("beta_2", lambda value: 0 <= value < 1, "must be in [0, 1)."),
    ("masked_lm_prob", lambda value: 0 < value < 1, "must be in (0, 1)."),
    ("eval_masked_lm_prob", lambda value: 0 < value < 1, "must be in (0, 1)."),
    ("warmup_proportion", lambda value: 0 <= value < 1, "must be in [0, 1)."),
    ("decay_proportion", lambda value: 0 < value <= 1, "must be in (0, 1]."),
):
    flags.register_validator(
        _name, lambda value, check=_check: value is None or check(value), _message
    )


def _knobs():
    """Every recipe knob's value: the flag's where given, else --recipe's."""
    return recipes.resolve(FLAGS.recipe, {name: getattr(FLAGS, name) for name in recipes.KNOBS})


def _check_flags():
    sources = [name for name in ("preset", "config", "init_checkpoint") if getattr(FLAGS, name)]
    if len(sources) != 1:
        raise ValueError(
            f"Pass exactly one of `--preset`, `--config` and `--init_checkpoint`; received "
            f"{sources or 'none'}."
        )
    if bool(FLAGS.corpus) == bool(FLAGS.train_records):
        raise ValueError("Pass exactly one of `--corpus` and `--train_records`.")
    if FLAGS.eval_corpus and FLAGS.eval_records:
        raise ValueError("Pass at most one of `--eval_corpus` and `--eval_records`.")
    if FLAGS.train_steps is None and FLAGS.max_minutes is None:
        raise ValueError("Pass `--train_steps`, `--max_minutes` or both.")
    for name in ("train_steps", "batch_size", "gradient_accumulation_steps",
                 "checkpoint_every_steps", "log_every_steps", "eval_batch_size",
                 "sequence_length", "max_predictions_per_seq", "vocabulary_size"):
        value = getattr(FLAGS, name)
        if value is not None and value < 1:
            raise ValueError(f"`--{cli.typed_name(name)}` must be positive, received {value}.")
    if FLAGS.max_minutes is not None and not FLAGS.max_minutes > 0:
        raise ValueError(f"`--max_minutes` must be positive, received {FLAGS.max_minutes}.")
    if FLAGS.sequence_length < 5:
        raise ValueError(
            f"`--{cli.typed_name('sequence_length')}` must be at least 5, received "
            f"{FLAGS.sequence_length}."
        )
    if FLAGS.eval_every_steps is not None:
        if not FLAGS.eval_corpus:
            raise ValueError("`--eval_every_steps` needs `--eval_corpus`.")
        if FLAGS.eval_every_steps < 1 or FLAGS.eval_every_steps % FLAGS.log_every_steps:
            raise cli.FlagError(
                "eval_every_steps", FLAGS.eval_every_steps,
                f"must be a positive multiple of --log_every_steps ({FLAGS.log_every_steps}).",
            )
    if FLAGS.num_cpu_devices is not None and FLAGS.strategy != "mirrored":
        raise ValueError("`--num_cpu_devices` only applies to `--strategy=mirrored`.")
    if FLAGS.tpu is not None and FLAGS.strategy != "tpu":
        raise ValueError("`--tpu` only applies to `--strategy=tpu`.")
    if FLAGS.dropout is not None and not 0.0 <= FLAGS.dropout < 1.0:
        raise ValueError(f"`--dropout` must be in [0, 1), received {FLAGS.dropout}.")
    knobs = _knobs()
    if not 0 <= FLAGS.end_learning_rate <= knobs["learning_rate"]:
        raise cli.FlagError(
            "end_learning_rate", FLAGS.end_learning_rate,
            f"must be in [0, the learning rate ({knobs['learning_rate']})].",
        )
    if knobs["schedule"] == "budget_triangle":
        for name in ("warmup_proportion", "decay_proportion"):
            if getattr(FLAGS, name) is not None:
                raise cli.FlagError(
                    name, getattr(FLAGS, name),
                    "does not apply to --schedule=budget_triangle (its shape is fixed).",
                )
    if FLAGS.init_checkpoint:
        for name in recipes.ARCHITECTURE_KNOBS:
            if getattr(FLAGS, name) is not None:
                raise cli.FlagError(
                    name, getattr(FLAGS, name),
                    "applies only to a new model: with --init_checkpoint the checkpoint's "
                    "architecture and weights are used.",
                )
    if FLAGS.config and not os.path.isfile(FLAGS.config):
        raise ValueError(f"`--config` ({FLAGS.config!r}) is not a file.")
    for name in ("corpus", "eval_corpus"):
        for path in _paths(getattr(FLAGS, name)):
            if not os.path.isfile(path):
                raise ValueError(f"`--{name}` file {path!r} does not exist.")
    _check_model_dir(FLAGS.model_dir, FLAGS.overwrite)


def _check_model_dir(model_dir, overwrite):
    """Refuses a --model_dir that holds a finished run, unless `overwrite`."""
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise cli.FlagError("model_dir", model_dir, "is a file, not a directory.")
    if not overwrite and os.path.exists(os.path.join(model_dir, MODEL_FILE)):
        raise cli.FlagError(
            "model_dir", model_dir,
            f"already holds a finished model ({MODEL_FILE}); pass `--overwrite` to train "
            "again into it, or choose another directory.",
        )


def _paths(values):
    return [path for value in values or [] for path in value.split(",") if path]


# === Vocabulary ===


def _vocabulary(model_dir, chief):
    """The vocabulary and whether it is lower-cased, learning it from --corpus if needed."""
    from keras_bert.text.bert_tokenizer import read_vocabulary
    from keras_bert.text.wordpiece_vocabulary import learn_vocabulary, write_vocabulary

    source = FLAGS.vocab
    if source is None and FLAGS.init_checkpoint:
        directory = FLAGS.init_checkpoint
        if os.path.isfile(directory):
            directory = os.path.dirname(directory)
        for candidate in (directory, os.path.join(directory, ENCODER_DIR)):
            if os.path.isfile(os.path.join(candidate, VOCAB_FILE)):
                source = candidate
                break
    learned_path = os.path.join(model_dir, VOCAB_FILE)
    if source is None and os.path.isfile(learned_path):
        logging.info("Using the vocabulary learned before: %s", learned_path)
        source = learned_path
    if source is not None:
        from keras_bert.text import load_tokenizer

        tokenizer = load_tokenizer(source)
        return tokenizer.get_vocabulary(), tokenizer.lower_case
    if not FLAGS.corpus:
        raise ValueError("`--vocab` is required with `--train_records`.")
    started = time.time()
    vocabulary = learn_vocabulary(
        _paths(FLAGS.corpus), FLAGS.vocabulary_size, lower_case=FLAGS.lower_case,
        show_progress=False,
    )
    logging.info(
        "Learned a vocabulary of %d tokens from %s in %.0f s.",
        len(vocabulary), FLAGS.corpus, time.time() - started,
    )
    if chief:
        write_vocabulary(vocabulary, learned_path)
    # Read back what was written so that every run uses the file's exact tokens.
    if os.path.isfile(learned_path):
        vocabulary = read_vocabulary(learned_path)
    return vocabulary, FLAGS.lower_case


# === Model ===


def _encoder_overrides(policy, knobs):
    return {"dtype": policy, "dropout": knobs["dropout"], "attention_dropout": knobs["dropout"]}


def _build_model(model_cls, vocabulary_size, policy, knobs):
    """The pretrainer of --preset, --config or --init_checkpoint (inside the strategy scope)."""
    from keras_bert.bert_encoder import BertEncoder

    overrides = _encoder_overrides(policy, knobs)
    architecture = {name: knobs[name] for name in recipes.ENCODER_KNOBS}
    heads = {name: knobs[name] for name in recipes.HEAD_KNOBS}
    if FLAGS.init_checkpoint:
        path = FLAGS.init_checkpoint
        if os.path.isdir(path) and os.path.isfile(os.path.join(path, MODEL_FILE)):
            path = os.path.join(path, MODEL_FILE)
        model = model_cls.from_checkpoint(path, **overrides)
        logging.info(
            "Initialised from %s (%s).", path,
            "encoder and heads" if model.heads_from_checkpoint else "encoder; heads random",
        )
    elif FLAGS.preset:
        config = BertEncoder.preset_config(
            FLAGS.preset, vocabulary_size=vocabulary_size, **architecture, **overrides
        )
        model = model_cls(BertEncoder(**config), **heads)
    else:
        with open(FLAGS.config, encoding="utf-8") as f:
            config = json.load(f)
        if not isinstance(config, dict):
            raise ValueError(f"`--config` ({FLAGS.config!r}) must hold a JSON object.")
        config.setdefault("vocabulary_size", vocabulary_size)
        for name, value in architecture.items():
            # The file's value wins over the recipe's; a flag given wins over both.
            if getattr(FLAGS, name) is not None:
                config[name] = value
            else:
                config.setdefault(name, value)
        config.update(overrides)
        model = model_cls(BertEncoder(**config), **heads)
    model.nsp_loss_weight = float(knobs["nsp_loss_weight"])
    encoder = model.encoder
    if encoder.vocabulary_size != vocabulary_size:
        raise ValueError(
            f"The model's `vocabulary_size` ({encoder.vocabulary_size}) differs from the "
            f"vocabulary's size ({vocabulary_size})."
        )
    if FLAGS.sequence_length > encoder.max_sequence_length:
        raise ValueError(
            f"`--{cli.typed_name('sequence_length')}` ({FLAGS.sequence_length}) exceeds the "
            f"model's `max_sequence_length` ({encoder.max_sequence_length})."
        )
    return model


def _create_optimizer(model, knobs, total_steps, policy):
    """The learning-rate schedule and the optimizer of the knobs (inside the strategy scope)."""
    from training.core import global_gradients, time_budget

    schedule = time_budget.RevisableWarmupLinearDecay(
        knobs["learning_rate"], total_steps,
        end_learning_rate=FLAGS.end_learning_rate, **recipes.schedule_arguments(knobs),
    )
    optimizer = global_gradients.create_optimizer(
        model,
        FLAGS.optimizer,
        schedule,
        weight_decay=knobs["weight_decay"],
        beta_1=knobs["beta_1"],
        beta_2=knobs["beta_2"],
        epsilon=knobs["epsilon"],
        global_clipnorm=knobs["clipnorm"] or None,
        loss_scaling=policy == "mixed_float16",
    )
    return schedule, optimizer


def float32_copy(model):
    """The same `BertPretrainer` computing in float32, outside any strategy, uncompiled."""
    from keras_bert import BertEncoder
    from keras_bert.models.bert_pretrainer import BertPretrainer

    encoder_config = dict(model.encoder.get_config(), dtype="float32")
    copy = BertPretrainer(BertEncoder.from_config(encoder_config), **model.head_config())
    copy.set_weights(model.get_weights())
    return copy


def weights_fingerprint(model):
    """sha256 of every weight's bytes, in order: equal only for identical weights."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()


def native_bfloat16(strategy_name):
    """Whether this process's devices compute bfloat16 natively.

    TPUs do; NVIDIA GPUs from compute capability 8.0 (A100, H100, ...); CPUs
    with the AVX512_BF16 or AMX-BF16 instructions (on Linux, read from
    /proc/cpuinfo). Elsewhere bfloat16 is emulated and slower than float32.
    """
    import tensorflow as tf

    if strategy_name == "tpu":
        return True
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return all(
            tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)))
            >= (8, 0)
            for gpu in gpus
        )
    from keras_bert.utils import cpu

    return bool(set(cpu.read_cpu_info()["features"]) & {"avx512_bf16", "amx_bf16"})


# === Outputs ===


def _write_json(path, value):
    from keras_bert.utils.atomic import write_json

    write_json(path, value, indent=2, sort_keys=True)


def _save_outputs(model, vocabulary, lower_case, model_dir):
    from keras_bert.checkpoints import save_encoder
    from keras_bert.text.wordpiece_vocabulary import write_vocabulary
    from keras_bert.utils.atomic import atomic_file

    final = float32_copy(model)
    with atomic_file(os.path.join(model_dir, MODEL_FILE), suffix=".keras") as temporary:
        final.save(temporary)
    encoder_dir = os.path.join(model_dir, ENCODER_DIR)
    save_encoder(final.encoder, encoder_dir)
    write_vocabulary(vocabulary, os.path.join(encoder_dir, VOCAB_FILE))
    _write_json(
        os.path.join(encoder_dir, "tokenizer_config.json"), {"do_lower_case": lower_case}
    )


# `pretrain_config.json` keeps the keys it was first written with.
_CONFIG_KEYS = {"vocabulary_size": "vocab_size", "sequence_length": "max_seq_length"}


def _flag_values():
    names = [
        "preset", "config", "init_checkpoint", "recipe", "corpus", "train_records",
        "eval_corpus", "eval_records", "vocab", "vocabulary_size", "lower_case", "corpus_format",
        "sequence_length", "eval_masked_lm_prob", "short_seq_prob",
        "whole_word_masking", "optimizer", "end_learning_rate",
        "batch_size", "gradient_accumulation_steps", "train_steps", "max_minutes", "seed",
        "eval_seed", "checkpoint_every_steps", "log_every_steps", "eval_batch_size",
        "strategy", "num_cpu_devices", "tpu", "mixed_precision", "jit_compile",
        "eval_every_steps",
    ]
    values = {_CONFIG_KEYS.get(name, name): getattr(FLAGS, name) for name in names}
    # Every knob as the run used it (the recipe's value or the flag's).
    knobs = _knobs()
    values.update(knobs)
    values["max_predictions_per_seq"] = _max_predictions(knobs)
    return values


def _max_predictions(knobs):
    if FLAGS.max_predictions_per_seq is not None:
        return FLAGS.max_predictions_per_seq
    return recipes.max_predictions(FLAGS.sequence_length, knobs["masked_lm_prob"])


# === Main ===


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    started = time.time()
    _check_flags()
    deadline = started + 60.0 * FLAGS.max_minutes if FLAGS.max_minutes else None

    from training.core import distribution

    # Devices first: logical CPU devices and TPUs must be set up before TF starts.
    strategy = distribution.create_strategy(
        FLAGS.strategy, num_cpu_devices=FLAGS.num_cpu_devices, tpu_address=FLAGS.tpu
    )
    import keras

    from keras_bert.models.bert_pretrainer import BertPretrainer
    from keras_bert.text.bert_tokenizer import BertTokenizer
    from training.core import finite_loss, global_gradients, pretraining_callbacks, pretraining_data
    from training.core import time_budget

    class TrainablePretrainer(global_gradients.GlobalGradientTrainStep, BertPretrainer):
        """`BertPretrainer` with the global-gradient train step (not saved as such)."""

    keras.utils.set_random_seed(FLAGS.seed)
    chief = distribution.is_chief(strategy)
    model_dir = FLAGS.model_dir
    num_replicas = strategy.num_replicas_in_sync
    divisor = num_replicas * FLAGS.gradient_accumulation_steps
    if FLAGS.batch_size % divisor:
        raise ValueError(
            f"`--batch_size` ({FLAGS.batch_size}) must be divisible by the number of replicas "
            f"({num_replicas}) times `--gradient_accumulation_steps` "
            f"({FLAGS.gradient_accumulation_steps})."
        )
    if chief:
        os.makedirs(model_dir, exist_ok=True)
        _write_json(os.path.join(model_dir, CONFIG_FILE), _flag_values())

    # === Data ===
    vocabulary, lower_case = _vocabulary(model_dir, chief)
    tokenizer = BertTokenizer(vocabulary, lower_case=lower_case)
    backup_dir = os.path.join(model_dir, BACKUP_DIR)
    resumed_step = pretraining_callbacks.read_backup_step(backup_dir)
    # A resumed run draws other examples than the start of the interrupted one.
    data_seed = FLAGS.seed + resumed_step
    knobs = _knobs()
    sequence_length, max_predictions = FLAGS.sequence_length, _max_predictions(knobs)
    if FLAGS.corpus:
        corpus = pretraining_data.CorpusExamples(
            _paths(FLAGS.corpus), tokenizer, FLAGS.corpus_format, sequence_length,
            max_predictions, knobs["masked_lm_prob"], FLAGS.short_seq_prob,
            FLAGS.whole_word_masking,
        )
        logging.info(
            "Corpus: %d documents, %d tokens.", corpus.num_documents, corpus.num_tokens
        )
        # A generator has no files to shard: workers split it by examples.
        train_dataset = corpus.dataset(FLAGS.batch_size, data_seed).with_options(
            distribution.distribute_dataset_options()
        )
    else:
        metadata = pretraining_data.records_metadata(FLAGS.train_records)
        sequence_length = metadata.get("max_seq_length", sequence_length)
        max_predictions = metadata.get("max_predictions_per_seq", max_predictions)
        train_dataset = pretraining_data.records_dataset(
            FLAGS.train_records, FLAGS.batch_size, data_seed, sequence_length, max_predictions
        )

    # === Model ===
    policy = FLAGS.mixed_precision
    if policy == "auto":
        # Workers agree, so that a cluster never mixes precisions.
        native = time_budget.agree(strategy, float(native_bfloat16(FLAGS.strategy)), "MIN")
        policy = "mixed_bfloat16" if native else "float32"
        logging.info("--mixed_precision=auto: %s.", policy)
    initial_total = FLAGS.train_steps or 10_000
    with strategy.scope():
        model = _build_model(TrainablePretrainer, len(vocabulary), policy, knobs)
        model.gradient_accumulation_steps = FLAGS.gradient_accumulation_steps
        schedule, optimizer = _create_optimizer(model, knobs, initial_total, policy)
        model.compile(optimizer=optimizer, jit_compile=FLAGS.jit_compile)
    logging.info(
        "%s: %d parameters, %s, %d replica(s), batch %d (%d per replica%s), %s.",
        FLAGS.preset or FLAGS.config or FLAGS.init_checkpoint, model.count_params(),
        policy, num_replicas, FLAGS.batch_size, FLAGS.batch_size // num_replicas,
        f" in {FLAGS.gradient_accumulation_steps} micro-batches"
        if FLAGS.gradient_accumulation_steps > 1 else "",
        FLAGS.optimizer,
    )

    # === Training ===
    steps_per_epoch = FLAGS.checkpoint_every_steps
    step_cap = FLAGS.train_steps or 10**9
    epochs = math.ceil(step_cap / steps_per_epoch)
    backup = pretraining_callbacks.StepBackup(backup_dir, steps_per_epoch, is_chief=chief)
    budget = time_budget.TrainingBudget(FLAGS.train_steps, deadline, schedule, strategy)
    log = pretraining_callbacks.TrainingLog(
        FLAGS.log_every_steps, FLAGS.batch_size,
        os.path.join(model_dir, LOG_DIR) if chief else None, schedule,
    )

    def kept():
        step = pretraining_callbacks.read_backup_step(backup_dir)
        if not step:
            return "No backup was written yet (one is written every --checkpoint_every_steps)."
        return (
            f"{backup_dir} keeps the weights of step {step}; the same command resumes from "
            "there (consider a lower --learning_rate)."
        )

    def eval_arrays():
        """The --eval_corpus examples, at BERT's masking rate whatever the recipe's (so that
        accuracies compare)."""
        eval_corpus = pretraining_data.CorpusExamples(
            _paths(FLAGS.eval_corpus), tokenizer, FLAGS.corpus_format, sequence_length,
            recipes.max_predictions(sequence_length, FLAGS.eval_masked_lm_prob),
            FLAGS.eval_masked_lm_prob, FLAGS.short_seq_prob, FLAGS.whole_word_masking,
        )
        return eval_corpus.arrays(FLAGS.eval_seed)

    # Built before training only for the periodic evaluation: a --max_minutes budget is
    # otherwise all training.
    periodic_eval_arrays = eval_arrays() if FLAGS.eval_every_steps else None
    callbacks = [
        # First: the backup never saves the weights of a step with a non-finite loss.
        finite_loss.FiniteLossGuard(kept=kept),
        # Then the backup: the others read its step.
        backup, budget, log,
    ]
    if FLAGS.eval_every_steps:
        callbacks.append(pretraining_callbacks.PeriodicEvaluation(
            FLAGS.eval_every_steps, *periodic_eval_arrays, FLAGS.eval_batch_size,
            os.path.join(model_dir, LOG_DIR) if chief else None,
        ))
    train_started = time.time()
    model.fit(
        train_dataset,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        shuffle=False,  # The datasets shuffle themselves.
        verbose=1 if (chief and FLAGS.progress_bar) else 0,
    )
    train_seconds = time.time() - train_started
    steps = int(model.optimizer.iterations.numpy())
    steps_this_run = steps - backup.restored_step
    fingerprint = weights_fingerprint(model)
    print(f"Trained to step {steps} ({steps_this_run} this run) in {train_seconds:.0f} s; "
          f"final weights sha256: {fingerprint}", flush=True)

    # === Evaluation ===
    metrics = {}
    eval_source = None
    if FLAGS.eval_corpus:
        eval_source = _paths(FLAGS.eval_corpus)
        eval_inputs, eval_labels = periodic_eval_arrays or eval_arrays()
        metrics["eval_examples"] = int(len(eval_labels["next_sentence_label"]))
        results = model.evaluate(
            eval_inputs, eval_labels, batch_size=FLAGS.eval_batch_size, verbose=0,
            return_dict=True,
        )
    elif FLAGS.eval_records:
        eval_source = FLAGS.eval_records
        eval_dataset = pretraining_data.records_dataset(
            FLAGS.eval_records, FLAGS.eval_batch_size, FLAGS.eval_seed, sequence_length,
            max_predictions, training=False,
        )
        results = model.evaluate(eval_dataset, verbose=0, return_dict=True)
    if eval_source is not None:
        metrics.update({name: float(value) for name, value in results.items()})
        metrics["eval_data"] = eval_source

    # === Outputs ===
    metrics["train"] = {
        "steps": steps,
        "steps_this_run": steps_this_run,
        "resumed_from_step": backup.restored_step,
        "seconds": round(train_seconds, 1),
        "examples_per_second": round(steps_this_run * FLAGS.batch_size / train_seconds, 2)
        if train_seconds > 0 else None,
        "stopped_by_deadline": budget.stopped_by_deadline,
        "batch_size": FLAGS.batch_size,
        "num_replicas": num_replicas,
        "strategy": FLAGS.strategy,
        "mixed_precision": policy,
        "final_weights_sha256": fingerprint,
    }
    if log.records:
        last = log.records[-1]
        metrics["train"].update(
            {f"last_{k}": v for k, v in last.items() if k not in ("step", "time")}
        )
    metrics["total_seconds"] = round(time.time() - started, 1)
    if chief:
        _save_outputs(model, vocabulary, lower_case, model_dir)
        _write_json(os.path.join(model_dir, METRICS_FILE), metrics)
        # Only now: a run killed before its outputs were written resumes at its end.
        shutil.rmtree(backup_dir, ignore_errors=True)
    summary = {k: v for k, v in metrics.items() if isinstance(v, float)}
    print("metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(summary.items())),
          flush=True)
    print(f"Wrote {model_dir}" if chief else "Done (not the chief: nothing written).",
          flush=True)
    # Finalise the generator's iterators while Python still runs (else TF warns at exit).
    del model, train_dataset
    gc.collect()


if __name__ == "__main__":
    cli.run(
        main, flag_for={"peak_learning_rate": "learning_rate"},
        input_flags=("corpus", "eval_corpus", "train_records", "eval_records", "vocab", "config",
                     "init_checkpoint"),
    )
