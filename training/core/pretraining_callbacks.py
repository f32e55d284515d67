"""Callbacks of `training.pretrain`: resumable backups and the training log.

`StepBackup` is `keras.callbacks.BackupAndRestore` with an epoch of
`steps_per_epoch` steps as the unit of backup: a run killed at any moment and
started again resumes from the end of its last finished epoch, with the
optimizer's step counter where it was, and never redoes a finished epoch.

`TrainingLog` averages the metrics over windows of `every` steps (exact
per-step values with `every=1`) and writes them to `train_log.jsonl`,
TensorBoard and the absl log.

`PeriodicEvaluation` evaluates the model on fixed examples every `every`
steps and writes the results to `eval_log.jsonl` (the learning curve on
held-out text, by step).
"""

import json
import os
import time

import keras
from absl import logging

from keras_bert.utils.atomic import atomic_file, write_json

LOG_FILE = "train_log.jsonl"
EVAL_LOG_FILE = "eval_log.jsonl"


class StepBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` at every epoch end, atomic, written by the chief only.

    Keras's callback writes the weights file in place (a kill during the
    write leaves a corrupted backup) and, resuming, trusts the epoch in its
    metadata file, written after the weights. Here both files are written
    under temporary names and renamed into place, and the epoch to resume at
    is taken from the restored optimizer step (`iterations //
    steps_per_epoch`), so weights and position cannot disagree. Under
    `MultiWorkerMirroredStrategy` only the chief writes; every worker reads
    the chief's backup (`backup_dir` must be on storage all workers see).

    Args:
        backup_dir: string. Directory of the backup.
        steps_per_epoch: int. Steps of one `fit` epoch.
        is_chief: bool. Whether this process writes the backup.
    """

    def __init__(self, backup_dir, steps_per_epoch, is_chief=True):
        # The program deletes the backup once its outputs are written.
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)
        self.steps_per_epoch = steps_per_epoch
        self.is_chief = is_chief
        self.restored_step = 0

    def _load_model(self):
        super()._load_model()
        self.restored_step = int(self.model.optimizer.iterations.numpy())
        if self.restored_step:
            epoch = self.restored_step // self.steps_per_epoch
            self.model._initial_epoch = epoch
            logging.info(
                "Resumed from the backup in %s at step %d (epoch %d).",
                self.backup_dir, self.restored_step, epoch,
            )

    def _save_model(self):
        if not self.is_chief:
            return
        with atomic_file(self._weights_path, suffix=".weights.h5") as temporary:
            self.model.save_weights(temporary, overwrite=True)
        metadata = {
            "epoch": self._current_epoch,
            "step": int(self.model.optimizer.iterations.numpy()),
        }
        write_json(self._training_metadata_path, metadata)


def read_backup_step(backup_dir):
    """The step of the backup in `backup_dir` according to its metadata, else 0."""
    path = os.path.join(backup_dir, "training_metadata.json")
    try:
        with open(path, encoding="utf-8") as f:
            return int(json.load(f).get("step", 0))
    except (OSError, ValueError):
        return 0


class TrainingLog(keras.callbacks.Callback):
    """Window-averaged metrics every `every` steps to a JSON-lines file, TensorBoard and absl.

    Resets the model's metrics at the start of each window, so the values
    in the logs (and on the progress bar) are averages over the current
    window.

    Args:
        every: int. Steps per window.
        global_batch_size: int. Examples per step (for throughput).
        log_dir: string or None. Directory of `train_log.jsonl` and the
            TensorBoard `train/` events; `None` writes neither (non-chief
            workers).
        schedule: a `LearningRateSchedule` or None, to log the rate.
    """

    def __init__(self, every, global_batch_size, log_dir=None, schedule=None):
        super().__init__()
        self.every = max(1, int(every))
        self.global_batch_size = global_batch_size
        self.log_dir = log_dir
        self.schedule = schedule
        self.records = []
        self._writer = None
        self._window_start = None

    def on_train_begin(self, logs=None):
        if self.log_dir is not None:
            import tensorflow as tf

            os.makedirs(self.log_dir, exist_ok=True)
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "train"))

    def _step(self):
        return int(self.model.optimizer.iterations.numpy())

    def on_train_batch_begin(self, batch, logs=None):
        if self._window_start is None or self._step() % self.every == 0:
            self.model.reset_metrics()
            self._window_start = (time.time(), self._step())

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        if step % self.every:
            return
        started, start_step = self._window_start
        seconds = time.time() - started
        record = {"step": step}
        # Read in the cross-replica context: totals and counts summed over all
        # replicas, where the step's `logs` average the replicas' own values.
        results = self.model.get_metrics_result()
        record.update({k: float(v) for k, v in results.items()})
        if self.schedule is not None:
            record["learning_rate"] = float(self.schedule(step - 1))
        record["examples_per_second"] = (
            (step - start_step) * self.global_batch_size / seconds if seconds > 0 else 0.0
        )
        record["time"] = time.time()
        self.records.append(record)
        if self.log_dir is not None:
            with open(os.path.join(self.log_dir, LOG_FILE), "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            with self._writer.as_default(step=step):
                for name, value in record.items():
                    if name not in ("step", "time"):
                        write_scalar(name, value)
        logging.info(
            "step %d: %s", step,
            ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k not in ("step", "time")),
        )

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()


class PeriodicEvaluation(keras.callbacks.Callback):
    """Evaluates on fixed examples every `every` steps; logs to `eval_log.jsonl`.

    Runs after `TrainingLog` in the callback list, at steps that are multiples
    of its window (`every` must be one), so that the evaluation, which resets
    the shared metrics, falls between two training windows.

    Args:
        every: int. Steps between evaluations.
        inputs: dict of arrays, the model's inputs.
        labels: dict of arrays, the `BertPretrainer` labels.
        batch_size: int. Evaluation batch size.
        log_dir: string or None. Directory of `eval_log.jsonl`; `None`
            writes nothing (non-chief workers).
    """

    def __init__(self, every, inputs, labels, batch_size, log_dir=None):
        super().__init__()
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"`every` must be a positive int, received {every!r}.")
        self.every = every
        self.inputs = inputs
        self.labels = labels
        self.batch_size = batch_size
        self.log_dir = log_dir
        self.records = []

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every:
            return
        started = time.time()
        results = self.model.evaluate(
            self.inputs, self.labels, batch_size=self.batch_size, verbose=0, return_dict=True
        )
        record = {"step": step, **{name: float(value) for name, value in results.items()}}
        record["seconds"] = round(time.time() - started, 2)
        self.records.append(record)
        if self.log_dir is not None:
            os.makedirs(self.log_dir, exist_ok=True)
            with open(os.path.join(self.log_dir, EVAL_LOG_FILE), "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        logging.info(
            "evaluation at step %d: %s", step,
            ", ".join(f"{k} {v:.4g}" for k, v in results.items()),
        )
        # The next training window starts from fresh metrics.
        self.model.reset_metrics()


def write_scalar(name, value):
    """A TensorBoard scalar to the default writer, without the tensorboard package.

    `tf.summary.scalar` lives in the tensorboard package, which TensorFlow no
    longer installs; the core `tf.summary.write` op with the scalars
    plugin's metadata writes the same event.
    """
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    )
    tf.summary.write(name, tf.constant(value, tf.float32), metadata=metadata)
