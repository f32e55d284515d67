"""Stops training at the first non-finite loss, saying which checkpoint is kept.

`keras.callbacks.TerminateOnNaN` only sets `stop_training`: the epoch still
ends, so epoch-end callbacks (a backup, a model selection) run on the broken
weights and may save them. `FiniteLossGuard` raises instead, before any later
callback of the same step runs, so the last checkpoint written stays the last
good one, and the error says which one that is.

    guard = FiniteLossGuard(kept=lambda: "model.keras from step 40")
    model.fit(..., callbacks=[guard, ...])  # the guard first
"""

import math

import keras
import numpy as np


class NonFiniteLossError(ValueError):
    """Training produced a NaN or infinite loss (or weights)."""


class FiniteLossGuard(keras.callbacks.Callback):
    """Raises `NonFiniteLossError` at the first step whose loss is NaN or infinite.

    Put it first in the callback list: callbacks after it do not see the
    failing step.

    Args:
        kept: callable or None. Returns a sentence on what is kept on disk
            (the last good checkpoint), added to the message.
    """

    def __init__(self, kept=None):
        super().__init__()
        self.kept = kept

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        value = float(loss)
        if not math.isfinite(value):
            step = int(self.model.optimizer.iterations.numpy())
            raise NonFiniteLossError(failure_message(step, f"the loss is {value}", self.kept))

    def on_epoch_end(self, epoch, logs=None):
        # The loss of a step is computed before its update, so a finite last loss does
        # not prove finite weights: the update itself can overflow. Checked once per
        # epoch (a backup interval), before the callbacks after this one save anything.
        optimizer = self.model.optimizer
        variables = list(self.model.weights) + list(getattr(optimizer, "variables", []))
        for variable in variables:
            if not np.isfinite(np.asarray(variable)).all():
                step = int(optimizer.iterations.numpy())
                name = getattr(variable, "path", None) or variable.name
                raise NonFiniteLossError(
                    failure_message(step, f"the weights are not finite after this step ({name})",
                                    self.kept)
                )


def failure_message(step, what, kept=None):
    """`Training stopped at step N: <what>. <what is kept>`."""
    message = (
        f"Training stopped at step {step}: {what} (a too high --learning_rate, or bad "
        "labels or inputs, can cause this)."
    )
    if kept is not None:
        message += " " + kept()
    return message
