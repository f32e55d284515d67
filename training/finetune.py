"""Fine-tunes BERT for classification, extractive QA or token classification.

Examples:

    # SST-2 sentiment from MiniLM, one CPU or GPU (model selection on --dev,
    # --eval only reported):
    python -m training.finetune --task=classification \
        --init=../shared/models/all-MiniLM-L6-v2 \
        --train=../shared/data/sst2/train.tsv --dev=../shared/data/sst2/dev.tsv \
        --eval=../shared/data/sst2/test.tsv --model_dir=/tmp/sst2

    # Sentence pairs from a CSV with other column names, 3 epochs:
    python -m training.finetune --init=CKPT --train=train.csv --dev=dev.csv \
        --text_column=premise --pair_column=hypothesis --label_column=gold \
        --num_train_epochs=3 --model_dir=/tmp/nli

    # Regression (one real-valued output):
    python -m training.finetune --init=CKPT --train=stsb_train.tsv --regression \
        --text_column=sentence1 --pair_column=sentence2 --label_column=score --model_dir=/tmp/sts

    # SQuAD v1.1 extractive QA, contexts covered by windows 128 tokens apart:
    python -m training.finetune --task=qa --init=CKPT --train=train-v1.1.json \
        --eval=dev-v1.1.json --sequence_length=384 --doc_stride=128 --model_dir=/tmp/squad

    # CoNLL named entities:
    python -m training.finetune --task=token_classification --init=CKPT \
        --train=eng.train --dev=eng.testa --eval=eng.testb --model_dir=/tmp/ner

    # From scratch (a preset, randomly initialised) with a vocabulary:
    python -m training.finetune --init=bert_tiny --vocab=vocab.txt --train=... --model_dir=...

    # Many devices: all local GPUs; or the CPU split in two (to test replica code);
    # or every worker of a cluster described by TF_CONFIG; or a TPU.
    python -m training.finetune ... --strategy=mirrored
    python -m training.finetune ... --strategy=mirrored --num_cpu_devices=2
    TF_CONFIG='{"cluster": {"worker": ["host1:2222", "host2:2222"]},
                "task": {"type": "worker", "index": 0}}' \
        python -m training.finetune ... --strategy=multi_worker
    python -m training.finetune ... --strategy=tpu --tpu=my-tpu --mixed_precision=mixed_bfloat16

Writes to --model_dir (see `keras_bert.models.model_dir`): model.keras (the
model that scored best on --dev, else the last), label_map.json, tokenizer/,
finetune_config.json and metrics.json (metrics on --eval at the top level,
on --dev under "dev").
"""

import math
import os
import time

_PROGRAM_START = time.time()  # --max_minutes counts from here, imports included

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from keras_bert import tasks  # noqa: E402
from keras_bert.utils import cli  # noqa: E402

FLAGS = flags.FLAGS

# === Task and data ===
flags.DEFINE_enum(
    "task", "classification", list(tasks.TASKS),
    "The fine-tuning task (a name in the registry `keras_bert.tasks.TASKS`).",
)
flags.DEFINE_string(
    "init",
    None,
    "The starting encoder: any checkpoint keras_bert.load_encoder reads (Hugging Face "
    "directory, Google BERT directory, keras_bert directory, .keras file of a BertEncoder), "
    "or a preset name (bert_tiny ... bert_large) to train from random initialisation.",
    required=True,
)
flags.DEFINE_string(
    "vocab",
    None,
    "vocab.txt file, or a directory holding one (and tokenizer_config.json). Defaults to "
    "the --init directory. Required when --init is a preset or a .keras file.",
)
flags.DEFINE_string("train", None, "Training file.", required=True)
flags.DEFINE_string(
    "dev",
    None,
    "Development file: evaluated during training for model selection and early stopping.",
)
flags.DEFINE_string(
    "eval",
    None,
    "Evaluation file: scored once with the selected model and reported in metrics.json; "
    "never used for selection.",
)
flags.DEFINE_string("model_dir", None, "Output directory.", required=True)
flags.DEFINE_bool(
    "overwrite",
    False,
    "Replace the model of a --model_dir that already holds one (model.keras); without it "
    "such a directory is refused. The old model.keras and metrics.json are deleted first.",
)
flags.DEFINE_bool(
    "skip_bad_lines",
    False,
    "classification: skip (and count in the log) TSV/CSV/JSONL lines that cannot be read, "
    "instead of stopping at the first with its file and line number.",
)
flags.DEFINE_string(
    "text_column", "sentence", "classification: the column (or JSON key) of the text."
)
flags.DEFINE_string(
    "pair_column", None, "classification: the column of the second text of a pair, if any."
)
flags.DEFINE_string("label_column", "label", "classification: the column of the label.")
flags.DEFINE_enum(
    "input_format",
    None,
    ["tsv", "csv", "jsonl"],
    "classification: the format of the files; by default from their extension "
    "(.tsv/.txt, .csv, .jsonl/.json).",
)
flags.DEFINE_bool(
    "regression",
    False,
    "classification: labels are numbers and the model has one output, trained with "
    "mean squared error.",
)
flags.DEFINE_integer(
    "sequence_length",
    None,
    "Longest packed sequence, special tokens included. Batches are only as long as their "
    "longest member. Defaults to 128 (384 for qa).",
)
cli.define_deprecated_alias("max_seq_length", "sequence_length")
flags.DEFINE_integer("doc_stride", 128, "qa: tokens between the starts of context windows.")
flags.DEFINE_integer("max_query_length", 64, "qa: questions are cut to this many tokens.")
flags.DEFINE_integer("max_answer_length", 30, "qa: the longest answer predicted, in tokens.")

# === Optimisation ===
flags.DEFINE_integer("batch_size", 32, "Global training batch size.")
flags.DEFINE_integer("eval_batch_size", 128, "Batch size for --dev and --eval.")
flags.DEFINE_float("learning_rate", 5e-5, "Peak learning rate of AdamW.")
flags.DEFINE_float("weight_decay", 0.01, "Decoupled weight decay (not on biases and norms).")
flags.DEFINE_float("warmup_proportion", 0.1, "Fraction of the steps of linear warmup.")
flags.DEFINE_float("adam_epsilon", 1e-6, "Adam's epsilon.")
flags.DEFINE_float("clipnorm", 1.0, "Global gradient norm clipping; 0 disables it.")
flags.DEFINE_float("num_train_epochs", 3.0, "Passes over the training data (may be fractional).")
flags.DEFINE_integer(
    "max_train_steps",
    None,
    "If set, train for at most this many steps (the schedule decays over the smaller of this "
    "and --num_train_epochs).",
)
flags.DEFINE_float(
    "max_minutes",
    15.0,
    "Stop training when this much wall time has passed since the start of the program "
    "(--dev evaluations included), then select, evaluate on --eval and save as usual. The "
    "learning rate schedule is fitted to the steps the measured speed allows before then "
    "(never more than --num_train_epochs / --max_train_steps). 0 means no time limit. The "
    "default keeps a CPU run on a large set (SST-2: 60k sentences) under 20 minutes; small "
    "sets finish their epochs long before.",
)
flags.DEFINE_integer(
    "eval_every_steps",
    None,
    "Evaluate on --dev every this many steps (and at the end). Defaults to "
    "--num_dev_evaluations evaluations evenly spaced over training.",
)
flags.DEFINE_integer(
    "num_dev_evaluations", 3, "Evaluations on --dev, evenly spaced over training, when "
    "--eval_every_steps is not given; the last one ends training."
)
flags.DEFINE_integer(
    "early_stopping_patience",
    2,
    "Stop when this many --dev evaluations in a row did not improve the selection metric; "
    "0 disables early stopping.",
)
flags.DEFINE_float("dropout", None, "Encoder dropout; defaults to the checkpoint's.")
flags.DEFINE_bool(
    "freeze_token_embedding",
    False,
    "Keep the token embedding table fixed: each step then skips the dense AdamW update of "
    "its vocabulary_size x hidden_dim entries (faster on CPUs, rarely less accurate).",
)
flags.DEFINE_integer("seed", 0, "Seed for initialisation, dropout and shuffling.")
flags.DEFINE_integer("log_every_steps", 100, "Log the training loss every this many steps.")

# === Devices and precision ===
flags.DEFINE_enum(
    "strategy",
    "one_device",
    ["one_device", "mirrored", "multi_worker", "tpu"],
    "Distribution strategy: one device; all local GPUs (or --num_cpu_devices logical CPUs); "
    "the workers of TF_CONFIG; or a TPU (--tpu).",
)
flags.DEFINE_integer(
    "num_cpu_devices",
    None,
    "With --strategy=mirrored: split the CPU into this many logical devices (for testing).",
)
flags.DEFINE_string("tpu", None, "With --strategy=tpu: the TPU name or grpc:// address.")
flags.DEFINE_enum(
    "mixed_precision",
    "float32",
    ["float32", "mixed_bfloat16", "mixed_float16"],
    "Compute precision of the encoder (variables stay float32; the saved model computes "
    "in float32). mixed_float16 adds loss scaling.",
)

# === Flag checks that need no I/O (at parsing; the files are checked in `_check_flags`) ===
flags.register_validator("batch_size", lambda value: value >= 1, "must be positive.")
flags.register_validator("eval_batch_size", lambda value: value >= 1, "must be positive.")
flags.register_validator("learning_rate", lambda value: value > 0, "must be positive.")
flags.register_validator("weight_decay", lambda value: value >= 0, "must be >= 0.")
flags.register_validator(
    "warmup_proportion", lambda value: 0 <= value < 1, "must be in [0, 1)."
)
flags.register_validator("clipnorm", lambda value: value >= 0, "must be >= 0 (0 disables it).")
flags.register_validator("num_train_epochs", lambda value: value > 0, "must be positive.")
flags.register_validator(
    "max_train_steps", lambda value: value is None or value >= 1, "must be positive."
)
flags.register_validator(
    "max_minutes", lambda value: value is None or value >= 0, "must be >= 0 (0: no limit)."
)
flags.register_validator(
    "sequence_length", lambda value: value is None or value >= 3, "must be >= 3."
)
flags.register_validator("doc_stride", lambda value: value >= 1, "must be positive.")
flags.register_validator("max_query_length", lambda value: value >= 1, "must be positive.")
flags.register_validator("max_answer_length", lambda value: value >= 1, "must be positive.")
flags.register_validator(
    "dropout", lambda value: value is None or 0 <= value < 1, "must be in [0, 1)."
)
flags.register_validator(
    "num_cpu_devices", lambda value: value is None or value >= 1, "must be positive."
)


@flags.multi_flags_validator(["num_cpu_devices", "strategy"])
def _num_cpu_devices_needs_mirrored(values):
    if values["num_cpu_devices"] is not None and values["strategy"] != "mirrored":
        raise cli.FlagError(
            "num_cpu_devices", values["num_cpu_devices"], "only applies to `--strategy=mirrored`."
        )
    return True


@flags.multi_flags_validator(["regression", "skip_bad_lines", "task"])
def _classification_only(values):
    for name in ("regression", "skip_bad_lines"):
        if values[name] and values["task"] != "classification":
            raise cli.FlagError(name, None, "only applies to `--task=classification`.")
    return True


def make_task(name, sequence_length):
    """The registered task `name`, configured from the flags its constructor takes."""
    settings = FLAGS.flag_values_dict()
    settings["sequence_length"] = sequence_length
    return tasks.get_task(name).from_settings(settings)


def load_tokenizer(init, vocab):
    """The tokenizer of `--vocab`, else of the `--init` checkpoint directory."""
    import keras_bert

    source = vocab
    if source is None:
        if os.path.isdir(init) and os.path.isfile(os.path.join(init, "vocab.txt")):
            source = init
        else:
            raise ValueError(
                f"`--init` ({init!r}) has no vocab.txt: pass `--vocab` (a vocab.txt file or "
                "a directory holding one)."
            )
    return keras_bert.load_tokenizer(source)


def build_encoder(init, dtype, dropout):
    """An encoder from a checkpoint or, for a preset name, randomly initialised."""
    import keras_bert
    from keras_bert.bert_encoder import PRESETS

    overrides = {"dtype": dtype}
    if dropout is not None:
        overrides["dropout"] = dropout
    if init in PRESETS and not os.path.exists(init):
        return keras_bert.BertEncoder.from_preset(init, **overrides)
    if not os.path.exists(init):
        raise ValueError(
            f"`--init` ({init!r}) is neither a checkpoint path nor a preset "
            f"({', '.join(sorted(PRESETS))})."
        )
    if dropout is not None:
        overrides["attention_dropout"] = dropout
    return keras_bert.load_encoder(init, **overrides)


def float32_copy(model):
    """The same task model computing in float32, outside any strategy, without optimizer.

    Variables are float32 under every precision policy, so the weights carry over
    exactly; only the compute dtype of the encoder changes.
    """
    from keras_bert import BertEncoder

    encoder_config = model.encoder.get_config()
    encoder_config["dtype"] = "float32"
    config = model.get_config()
    config["encoder"] = BertEncoder.from_config(encoder_config)
    copy = type(model).from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def training_steps(num_examples, batch_size, num_train_epochs, max_train_steps):
    """Total optimizer steps: the epochs asked for, capped by `max_train_steps`."""
    steps_per_epoch = max(1, math.ceil(num_examples / batch_size))
    steps = max(1, math.ceil(num_train_epochs * steps_per_epoch))
    if max_train_steps:
        steps = min(steps, max_train_steps)
    return steps, steps_per_epoch


def _check_flags():
    """The checks of the flags that read the disk (the others run at parsing)."""
    cli.check_paths(files=["train", "dev", "eval"])
    _check_model_dir(FLAGS.model_dir, FLAGS.overwrite)


def _check_model_dir(model_dir, overwrite):
    """Refuses a --model_dir holding a model unless `overwrite`; then deletes that model."""
    from keras_bert.models import model_dir as model_dir_lib

    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise cli.FlagError("model_dir", model_dir, "is a file, not a directory.")
    model_file = os.path.join(model_dir, model_dir_lib.MODEL_FILE)
    if not os.path.exists(model_file):
        return
    if not overwrite:
        raise cli.FlagError(
            "model_dir", model_dir,
            f"already holds a model ({model_dir_lib.MODEL_FILE}); pass `--overwrite` to "
            "replace it, or choose another directory.",
        )
    # Never leave the old model beside the new run's label map and config.
    for name in (model_dir_lib.MODEL_FILE, model_dir_lib.METRICS_FILE):
        path = os.path.join(model_dir, name)
        if os.path.exists(path):
            os.remove(path)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    _check_flags()
    started = _PROGRAM_START

    from training.core import distribution

    # Devices first: logical CPU devices and TPUs must be set up before TF starts.
    strategy = distribution.create_strategy(
        FLAGS.strategy, num_cpu_devices=FLAGS.num_cpu_devices, tpu_address=FLAGS.tpu
    )
    from keras_bert.models import model_dir as model_dir_lib
    from training.core import finite_loss, input_pipeline, optimization, time_budget

    keras.utils.set_random_seed(FLAGS.seed)
    chief = distribution.is_chief(strategy)
    sequence_length = FLAGS.sequence_length or tasks.get_task(FLAGS.task).default_sequence_length
    task = make_task(FLAGS.task, sequence_length)
    tokenizer = load_tokenizer(FLAGS.init, FLAGS.vocab)

    # === Data ===
    train_data = task.read(FLAGS.train, tokenizer, is_training=True)
    labels = task.labels(train_data)
    task.encode_targets(train_data, labels)
    dev_data = task.read(FLAGS.dev, tokenizer, labels) if FLAGS.dev else None
    eval_data = task.read(FLAGS.eval, tokenizer, labels) if FLAGS.eval else None
    lengths = input_pipeline.sequence_lengths(train_data.inputs)
    num_windows = len(lengths)
    logging.info(
        "Read %d training examples (%d sequences, %.1f tokens on average, longest %d)%s%s "
        "in %.1f s.",
        len(train_data), num_windows, lengths.mean(), lengths.max(),
        f", {len(dev_data)} dev" if dev_data else "",
        f", {len(eval_data)} eval" if eval_data else "",
        time.time() - started,
    )
    if labels:
        logging.info("%d labels: %s", len(labels), labels[:20])

    total_steps, steps_per_epoch = training_steps(
        num_windows, FLAGS.batch_size, FLAGS.num_train_epochs, FLAGS.max_train_steps
    )
    logging.info(
        "Training at most %d steps of %d (%.2f epochs of %d steps)%s.",
        total_steps, FLAGS.batch_size, total_steps / steps_per_epoch, steps_per_epoch,
        f", or {FLAGS.max_minutes:g} minutes" if FLAGS.max_minutes else "",
    )

    # === Model ===
    policy = FLAGS.mixed_precision
    with strategy.scope():
        encoder = build_encoder(FLAGS.init, policy, FLAGS.dropout)
        if tokenizer.vocabulary_size() > encoder.vocabulary_size:
            raise ValueError(
                f"The vocabulary ({tokenizer.vocabulary_size()} tokens, from "
                f"{FLAGS.vocab or FLAGS.init!r}) does not fit the encoder of `--init` "
                f"({FLAGS.init!r}, `vocabulary_size` {encoder.vocabulary_size}): pass the "
                "checkpoint's own vocab.txt."
            )
        model = task.build_model(encoder, labels)
        if FLAGS.freeze_token_embedding:
            encoder.token_embedding.trainable = False
        if task.sequence_outputs:
            # Span and token heads read the sequence output: the pooler gets no gradient.
            encoder.pooler_dense.trainable = False
        if FLAGS.max_minutes:
            schedule = time_budget.RevisableWarmupLinearDecay(
                FLAGS.learning_rate, total_steps, FLAGS.warmup_proportion
            )
        else:
            schedule = optimization.linear_warmup_schedule(
                FLAGS.learning_rate, total_steps, FLAGS.warmup_proportion
            )
        optimizer = optimization.create_optimizer(
            model,
            schedule,
            weight_decay=FLAGS.weight_decay,
            epsilon=FLAGS.adam_epsilon,
            global_clipnorm=FLAGS.clipnorm or None,
            loss_scaling=policy == "mixed_float16",
        )
        model.compile(optimizer=optimizer, loss=task.loss(), metrics=task.fit_metrics())
    logging.info("Built the %s model (%s) in %.1f s.", type(model).__name__, policy,
                 time.time() - started)

    output_dir = FLAGS.model_dir
    if chief:
        model_dir_lib.write_assets(
            output_dir, task.name, labels, tokenizer,
            _finetune_config(task, sequence_length, total_steps),
            regression=getattr(task, "regression", False),
        )

    # === Training ===
    dataset = input_pipeline.training_dataset(
        train_data.inputs,
        train_data.targets,
        FLAGS.batch_size,
        seed=FLAGS.seed,
        pad_to_bucket_boundary=FLAGS.strategy == "tpu",
    )
    train_started = time.time()
    deadline = started + 60 * FLAGS.max_minutes if FLAGS.max_minutes else None
    budget = time_budget.TrainingBudget(
        total_steps, deadline, schedule if deadline else None, strategy
    )
    selection = _Selection(
        task, labels, dev_data, output_dir if chief else None, FLAGS.eval_batch_size,
        FLAGS.early_stopping_patience,
        planned_steps=lambda: _current_total_steps(schedule),
        eval_every_steps=FLAGS.eval_every_steps,
        num_evaluations=FLAGS.num_dev_evaluations,
        budget=budget,
    )
    callbacks = [
        # First: the callbacks after it never see a step with a non-finite loss.
        finite_loss.FiniteLossGuard(kept=selection.kept),
        budget,
        _Progress(FLAGS.log_every_steps, FLAGS.batch_size, schedule),
        selection,
    ]
    model.fit(
        dataset,
        epochs=1,
        steps_per_epoch=total_steps,
        callbacks=callbacks,
        shuffle=False,  # the dataset shuffles itself
        verbose=0,
    )
    selection.finish(model)
    train_seconds = time.time() - train_started
    steps_done = int(optimizer.iterations.numpy())
    logging.info("Trained %d steps in %.0f s (%.0f s of it on --dev).", steps_done,
                 train_seconds, selection.seconds)

    # === Selection and evaluation ===
    if selection.best_weights is not None:
        model.set_weights(selection.best_weights)
    final = float32_copy(model)
    if chief and selection.best_weights is None:
        model_dir_lib.save_model(final, os.path.join(output_dir, model_dir_lib.MODEL_FILE))
    metrics = {"task": task.name}
    if eval_data is not None:
        eval_started = time.time()
        metrics.update(task.evaluate(final, eval_data, labels, FLAGS.eval_batch_size))
        metrics["split"] = "eval"
        metrics["file"] = FLAGS.eval
        logging.info("Evaluated on --eval in %.1f s.", time.time() - eval_started)
    elif selection.best is not None:
        metrics.update(selection.best)
        metrics["split"] = "dev"
    if selection.best is not None:
        metrics["dev"] = dict(selection.best, file=FLAGS.dev, history=selection.history)
    metrics["train"] = {
        "num_examples": len(train_data),
        "num_sequences": num_windows,
        "steps": steps_done,
        "planned_steps": total_steps,
        "epochs": steps_done / steps_per_epoch,
        "batch_size": FLAGS.batch_size,
        "seconds": round(train_seconds, 1),
        "stopped_early": selection.stopped_early,
        "stopped_by_deadline": budget.stopped_by_deadline,
        "mixed_precision": policy,
        "strategy": FLAGS.strategy,
        "num_replicas": strategy.num_replicas_in_sync,
    }
    metrics["total_seconds"] = round(time.time() - started, 1)
    if chief:
        model_dir_lib.write_json(os.path.join(output_dir, model_dir_lib.METRICS_FILE), metrics)
    summary = {
        k: v for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    logging.info("Metrics (%s): %s", metrics.get("split"), summary)
    print(f"metrics ({metrics.get('split')}): " + ", ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()
    ))
    print(f"Wrote {output_dir}")


def _finetune_config(task, sequence_length, total_steps):
    from keras_bert.models import model_dir as model_dir_lib

    config = {
        "task": task.name,
        model_dir_lib.SEQUENCE_LENGTH_KEY: sequence_length,
        "text_column": FLAGS.text_column,
        "pair_column": FLAGS.pair_column,
        "label_column": FLAGS.label_column,
        "init": FLAGS.init,
        "training": {
            "train": FLAGS.train,
            "dev": FLAGS.dev,
            "eval": FLAGS.eval,
            "batch_size": FLAGS.batch_size,
            "learning_rate": FLAGS.learning_rate,
            "weight_decay": FLAGS.weight_decay,
            "warmup_proportion": FLAGS.warmup_proportion,
            "num_train_epochs": FLAGS.num_train_epochs,
            "max_train_steps": FLAGS.max_train_steps,
            "total_steps": total_steps,
            "mixed_precision": FLAGS.mixed_precision,
            "strategy": FLAGS.strategy,
            "seed": FLAGS.seed,
        },
    }
    config.update(task.inference_config())
    return config


def _current_total_steps(schedule):
    """The step where the schedule's decay ends (revised under a time budget)."""
    total = schedule.total_steps
    return int(round(float(total.numpy() if hasattr(total, "numpy") else total)))


class _Progress(keras.callbacks.Callback):
    """Logs loss, learning rate and throughput every `every` steps."""

    def __init__(self, every, batch_size, schedule):
        super().__init__()
        self.every = max(1, every)
        self.batch_size = batch_size
        self.schedule = schedule
        self.started = None

    def on_train_begin(self, logs=None):
        self.started = time.time()

    def on_train_batch_end(self, batch, logs=None):
        step = batch + 1
        if step % self.every == 0:
            elapsed = time.time() - self.started
            logging.info(
                "step %d/%d loss %.4f lr %.2e, %.1f examples/s, %.0f s",
                step, _current_total_steps(self.schedule),
                float((logs or {}).get("loss", float("nan"))),
                float(self.schedule(step - 1)), step * self.batch_size / elapsed, elapsed,
            )


class _Selection(keras.callbacks.Callback):
    """Evaluates on --dev during training; keeps and saves the best model; stops early.

    Evaluations fall every `eval_every_steps`, else at `num_evaluations` even
    fractions of the (possibly revised) total, and once more at the end.
    """

    def __init__(self, task, labels, dev_data, output_dir, batch_size, patience,
                 planned_steps, eval_every_steps=None, num_evaluations=3, budget=None):
        super().__init__()
        self.budget = budget
        self.deadline = getattr(budget, "deadline", None)
        self.task = task
        self.labels = labels
        self.dev_data = dev_data
        self.output_dir = output_dir
        self.batch_size = batch_size
        self.patience = patience
        self.planned_steps = planned_steps
        self.eval_every_steps = eval_every_steps
        self.num_evaluations = max(1, num_evaluations)
        self.best = None
        self.best_weights = None
        self.history = []
        self.bad_rounds = 0
        self.stopped_early = False
        self.seconds = 0.0
        self.last_evaluated_step = 0

    def _due(self, step):
        if self.eval_every_steps:
            return step % self.eval_every_steps == 0
        total = max(1, self.planned_steps())
        done = len(self.history)
        next_step = math.ceil(total * (done + 1) / self.num_evaluations)
        return step >= next_step

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if self.dev_data is None or not self._due(step):
            return
        self.evaluate(self.model, step)
        if not self.eval_every_steps and len(self.history) >= self.num_evaluations:
            self.model.stop_training = True  # the last planned evaluation ends training
        elif self.patience and self.bad_rounds >= self.patience:
            logging.info("No --dev improvement in %d evaluations: stopping.", self.bad_rounds)
            self.stopped_early = True
            self.model.stop_training = True

    def kept(self):
        """What --model_dir keeps after a failure: the model of the best --dev evaluation."""
        if self.output_dir is None:
            return "This worker writes no model."
        if self.best is None:
            return "No model was saved (model.keras is written at --dev evaluations and at the end)."
        return (
            f"--model_dir keeps model.keras from step {self.best['step']} (the best --dev "
            "evaluation before the failure)."
        )

    def finish(self, model):
        """Evaluates the final weights unless they were just evaluated."""
        step = int(model.optimizer.iterations.numpy())
        if self.dev_data is not None and step > self.last_evaluated_step:
            self.evaluate(model, step)

    def evaluate(self, model, step):
        from keras_bert.models import model_dir as model_dir_lib

        started = time.time()
        metrics = self.task.evaluate(model, self.dev_data, self.labels, self.batch_size)
        self.last_evaluated_step = step
        score = metrics[self.task.selection_metric]
        self.history.append({"step": step, self.task.selection_metric: score})
        improved = self.best is None or score > self.best[self.task.selection_metric]
        if improved:
            import numpy as np

            weights = model.get_weights()
            if not all(np.isfinite(w).all() for w in weights if w.dtype.kind == "f"):
                from training.core.finite_loss import NonFiniteLossError, failure_message

                raise NonFiniteLossError(
                    failure_message(step, "the weights are not finite", self.kept)
                )
            self.best = dict(metrics, step=step)
            self.best_weights = weights
            self.bad_rounds = 0
            if self.output_dir is not None:
                model_dir_lib.save_model(
                    float32_copy(model), os.path.join(self.output_dir, model_dir_lib.MODEL_FILE)
                )
        else:
            self.bad_rounds += 1
        seconds = time.time() - started
        self.seconds += seconds
        if self.deadline is not None:
            # Keep time for one more evaluation (of the final weights) before the deadline.
            self.budget.deadline = self.deadline - seconds
        logging.info(
            "dev at step %d: %s %.4f%s (%.0f s)", step, self.task.selection_metric, score,
            " (best)" if improved else "", time.time() - started,
        )


if __name__ == "__main__":
    cli.run(
        main, flag_for={"peak_learning_rate": "learning_rate"},
        input_flags=("train", "dev", "eval", "init", "vocab"),
    )
