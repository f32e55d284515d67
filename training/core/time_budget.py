"""Training to a step count or a wall-clock deadline, with a learning rate that fits either.

`WarmupLinearDecay` (see `training.core.optimization`) needs the number of steps
up front; with only a deadline it is not known until the speed of a step is.
`RevisableWarmupLinearDecay` keeps its total step count in a variable that
`TrainingBudget` revises from the measured speed as training runs, so the
rate still warms up over the first `warmup_proportion` of the run and
reaches `end_learning_rate` at the deadline.

Under `MultiWorkerMirroredStrategy` every decision (stop now, the revised
total) is agreed between the workers through a collective, so that no worker
stops or changes its learning rate alone.
"""

import time

import keras
from absl import logging

from keras_bert.layers import validation


@keras.saving.register_keras_serializable(package="keras_bert")
class RevisableWarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup then linear decay over a total step count that may change.

    `lr(step) = peak * (s + (1 - s) * (step + 1) / warmup)` (`s = warmup_start`) during the first
    `warmup = max(1, round(warmup_proportion * total_steps))` steps, then a
    linear fall to `end_learning_rate` at `total_steps` (over the last
    `decay_proportion` of the steps, holding the peak before). With the default
    `decay_proportion=1.0`, the shape of
    `training.core.optimization.WarmupLinearDecay`, with `total_steps` a variable.

    Args:
        peak_learning_rate: float. The rate at the end of warmup.
        total_steps: int. Initial total number of steps.
        warmup_proportion: float in [0, 1). Fraction of the steps of warmup.
            Defaults to `0.1`.
        end_learning_rate: float. Defaults to `0.0`.
        decay_proportion: float in (0, 1]. The decay takes the last `decay_proportion` of
            `total_steps` (never part of the warmup) and the rate holds at its peak before it.
            Defaults to `1.0`: decay from the end of warmup, BERT's schedule.
        warmup_start: float in [0, 1). The rate at the first step, as a fraction of the
            peak. Defaults to `0.0`. Cramming's budget triangle is `warmup_start=0.25,
            warmup_proportion=0.75, decay_proportion=0.25`.

    Create it in the model's `strategy.scope()`: `total_steps` becomes a
    variable there; change it with `revise(total_steps)`.
    """

    def __init__(self, peak_learning_rate, total_steps, warmup_proportion=0.1,
                 end_learning_rate=0.0, decay_proportion=1.0, warmup_start=0.0):
        validation.check_positive_float("peak_learning_rate", peak_learning_rate)
        validation.check_positive_int("total_steps", total_steps)
        validation.check_rate("warmup_proportion", warmup_proportion)
        if not 0.0 <= end_learning_rate <= peak_learning_rate:
            raise ValueError(
                f"`end_learning_rate` ({end_learning_rate}) must be in "
                f"[0, `peak_learning_rate` ({peak_learning_rate})]."
            )
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_proportion = float(warmup_proportion)
        self.end_learning_rate = float(end_learning_rate)
        if not 0.0 < decay_proportion <= 1.0:
            raise ValueError(f"`decay_proportion` ({decay_proportion}) must be in (0, 1].")
        self.decay_proportion = float(decay_proportion)
        validation.check_rate("warmup_start", warmup_start)
        self.warmup_start = float(warmup_start)
        self.initial_total_steps = int(total_steps)
        self.total_steps = keras.Variable(
            float(total_steps),
            dtype="float32",
            trainable=False,
            aggregation="only_first_replica",
            name="schedule_total_steps",
        )

    def revise(self, total_steps):
        """Sets the total step count (a float is fine)."""
        self.total_steps.assign(max(1.0, float(total_steps)))

    def __call__(self, step):
        from keras import ops

        step = ops.cast(step, "float32") + 1.0  # The first update is step 0.
        total = ops.convert_to_tensor(self.total_steps)
        warmup = ops.maximum(ops.round(total * self.warmup_proportion), 1.0)
        peak = self.peak_learning_rate
        end = self.end_learning_rate
        start = self.warmup_start
        warmup_rate = peak * (start + (1.0 - start) * step / warmup)
        # The decay takes the last `decay_proportion` of the steps (never part of the warmup);
        # the rate holds at its peak in between.
        decay_start = ops.maximum(warmup, total * (1.0 - self.decay_proportion))
        progress = ops.clip(
            (step - decay_start) / ops.maximum(total - decay_start, 1.0), 0.0, 1.0)
        decay_rate = peak + (end - peak) * progress
        return ops.where(step <= warmup, warmup_rate, decay_rate)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.initial_total_steps,
            "warmup_proportion": self.warmup_proportion,
            "end_learning_rate": self.end_learning_rate,
            "warmup_start": self.warmup_start,
            "decay_proportion": self.decay_proportion,
        }


def agree(strategy, value, reduce_op):
    """`value` reduced over the workers of a multi-worker strategy ("MIN" or "MAX").

    Every worker must call this at the same point. Other strategies run in
    one process: `value` is returned as it is.
    """
    import numpy as np
    import tensorflow as tf

    reductions = {"MIN": np.min, "MAX": np.max}
    if reduce_op not in reductions:
        raise ValueError(f"`reduce_op` must be one of {sorted(reductions)}, received {reduce_op!r}.")
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return value
    # tf.distribute reduces only by SUM and MEAN: gather every replica's value instead.
    per_replica = strategy.experimental_distribute_values_from_function(
        lambda _: tf.constant([value], tf.float64)
    )
    gathered = strategy.gather(per_replica, axis=0)  # (num_replicas,)
    return float(reductions[reduce_op](np.asarray(gathered)))


class TrainingBudget(keras.callbacks.Callback):
    """Stops at `train_steps` optimizer steps or at `deadline`, and paces the schedule.

    The step counter is the optimizer's, so a resumed run stops at the same
    step as an uninterrupted one. With a deadline, the speed of the steps
    since `revise_after` is measured and the schedule's total revised to the
    number of steps that fit before the deadline (at most `train_steps`).

    Args:
        train_steps: int or None. Stop when the optimizer has taken this many
            steps.
        deadline: float or None. `time.time()` at which to stop.
        schedule: `RevisableWarmupLinearDecay` or None. Revised when there
            is a deadline.
        strategy: the `tf.distribute.Strategy` (workers agree on decisions).
        revise_after: int. Steps before the first speed measurement (the
            first ones include tracing). Defaults to `3`.
        revise_every: int. Steps between revisions. Defaults to `10`.
    """

    def __init__(self, train_steps, deadline, schedule, strategy, revise_after=3,
                 revise_every=10):
        super().__init__()
        if train_steps is None and deadline is None:
            raise ValueError("A `train_steps` or a `deadline` is required.")
        self.train_steps = train_steps
        self.deadline = deadline
        self.schedule = schedule
        self.strategy = strategy
        self.revise_after = revise_after
        self.revise_every = revise_every
        self.stopped_by_deadline = False
        self._steps_this_run = 0
        self._clock_start = None
        self._clock_start_step = None

    def _step(self):
        return int(self.model.optimizer.iterations.numpy())

    def on_train_begin(self, logs=None):
        self._steps_this_run = 0
        step = self._step()
        if self.train_steps is not None and step >= self.train_steps:
            logging.info("Already at step %d of %d: nothing to train.", step, self.train_steps)
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        self._steps_this_run += 1
        step = self._step()
        if self.train_steps is not None and step >= self.train_steps:
            self.model.stop_training = True
            return
        if self.deadline is None:
            return
        now = time.time()
        if agree(self.strategy, float(now >= self.deadline), "MAX") > 0:
            logging.info("Deadline reached at step %d: stopping.", step)
            self.stopped_by_deadline = True
            self.model.stop_training = True
            return
        if self._steps_this_run == self.revise_after:
            self._clock_start, self._clock_start_step = now, step
        elif (
            self._clock_start is not None
            and (self._steps_this_run - self.revise_after) % self.revise_every == 0
        ):
            seconds_per_step = (now - self._clock_start) / (step - self._clock_start_step)
            total = step + (self.deadline - now) / seconds_per_step
            if self.train_steps is not None:
                total = min(total, self.train_steps)
            total = agree(self.strategy, total, "MIN")
            if self.schedule is not None:
                self.schedule.revise(total)
            logging.log_every_n_seconds(
                logging.INFO, "%.2f s/step: about %d steps fit before the deadline.", 60,
                seconds_per_step, int(total),
            )
