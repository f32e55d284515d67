"""Step timing of `model.fit` and `model.predict`, interleaved between models."""

import statistics
import time

import keras


class StepTimer(keras.callbacks.Callback):
    """Records the wall time of every training and prediction batch.

    On CPU a step's tensors are ready when the step function returns, so the
    time between `on_*_batch_begin` and `on_*_batch_end` is the step.
    """

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = None

    def _begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def _end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)

    on_train_batch_begin = _begin
    on_train_batch_end = _end
    on_predict_batch_begin = _begin
    on_predict_batch_end = _end


def slice_examples(inputs, labels, start, stop):
    return {name: value[start:stop] for name, value in inputs.items()}, labels[start:stop]


def fit_steps(model, inputs, labels, batch_size):
    """Seconds of each `fit` step over `inputs` (one epoch, in order)."""
    timer = StepTimer()
    model.fit(
        inputs, labels, batch_size=batch_size, epochs=1, shuffle=False, verbose=0, callbacks=[timer]
    )
    return timer.seconds


def predict_steps(model, inputs, batch_size):
    """Seconds of each `predict` step over `inputs`."""
    timer = StepTimer()
    model.predict(inputs, batch_size=batch_size, verbose=0, callbacks=[timer])
    return timer.seconds


def interleaved(runs, rounds):
    """Runs every callable once per round, alternating the order each round.

    Args:
        runs: dict of name -> callable(round_index) returning a list of step
            seconds.
        rounds: int.

    Returns:
        dict of name -> list of all step seconds.
    """
    names = list(runs)
    seconds = {name: [] for name in names}
    for round_index in range(rounds):
        # ABBA order: neither model always runs right after the other.
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            seconds[name].extend(runs[name](round_index))
    return seconds


def summarize(seconds, batch_size):
    """Median and best step time and the sequences per second they give."""
    median = statistics.median(seconds)
    best = min(seconds)
    return {
        "steps": len(seconds),
        "median_step_s": median,
        "min_step_s": best,
        "sequences_per_s": batch_size / median,
        "sequences_per_s_best": batch_size / best,
    }
