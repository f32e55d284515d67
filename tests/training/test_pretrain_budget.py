"""The revisable learning-rate schedule and the step/deadline budget of training.pretrain."""

import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.core.time_budget import RevisableWarmupLinearDecay, TrainingBudget


def _rates(schedule, steps):
    return np.array([float(schedule(step)) for step in steps])


def test_schedule_warms_up_then_decays_and_follows_revisions():
    schedule = RevisableWarmupLinearDecay(1e-3, total_steps=100, warmup_proportion=0.1)
    np.testing.assert_allclose(_rates(schedule, [0, 4, 9]), [1e-4, 5e-4, 1e-3], rtol=1e-5)
    np.testing.assert_allclose(_rates(schedule, [54, 99, 150]), [5e-4, 0.0, 0.0], atol=1e-9)
    schedule.revise(50)
    # Warmup is now 5 steps; the decay ends at step 50.
    np.testing.assert_allclose(_rates(schedule, [0, 4, 31, 49]), [2e-4, 1e-3, 4e-4, 0.0],
                               rtol=1e-5, atol=1e-9)
    restored = RevisableWarmupLinearDecay.from_config(schedule.get_config())
    assert restored.get_config() == schedule.get_config()


def test_schedule_holds_the_peak_until_the_decay_proportion():
    schedule = RevisableWarmupLinearDecay(1e-3, total_steps=100, warmup_proportion=0.1,
                                          decay_proportion=0.2)
    # Warmup over 10 steps, the peak until step 80, then a linear fall to 0 at step 100.
    np.testing.assert_allclose(_rates(schedule, [4, 9, 50, 79, 89, 99]),
                               [5e-4, 1e-3, 1e-3, 1e-3, 5e-4, 0.0], rtol=1e-5, atol=1e-9)
    schedule.revise(50)
    np.testing.assert_allclose(_rates(schedule, [4, 30, 39, 44, 49]),
                               [1e-3, 1e-3, 1e-3, 5e-4, 0.0], rtol=1e-5, atol=1e-9)
    # It never decays into the warmup.
    short = RevisableWarmupLinearDecay(1e-3, total_steps=10, warmup_proportion=0.5,
                                       decay_proportion=1.0)
    np.testing.assert_allclose(_rates(short, [4, 7, 9]), [1e-3, 4e-4, 0.0], rtol=1e-5, atol=1e-9)
    restored = RevisableWarmupLinearDecay.from_config(schedule.get_config())
    assert restored.get_config() == schedule.get_config()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"peak_learning_rate": 0.0, "total_steps": 10},
         r"`peak_learning_rate` must be a positive"),
        ({"peak_learning_rate": 1e-3, "total_steps": 0},
         r"`total_steps` must be a positive integer"),
        ({"peak_learning_rate": 1e-3, "total_steps": 10, "warmup_proportion": 1.0},
         r"`warmup_proportion` must be a number in \[0, 1\)"),
        ({"peak_learning_rate": 1e-3, "total_steps": 10, "end_learning_rate": 1.0},
         r"`end_learning_rate` \(1.0\) must be in \[0, `peak_learning_rate` \(0.001\)\]"),
        ({"peak_learning_rate": 1e-3, "total_steps": 10, "decay_proportion": 0.0},
         r"`decay_proportion` \(0.0\) must be in \(0, 1\]"),
    ],
)
def test_schedule_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RevisableWarmupLinearDecay(**kwargs)


def _fit(budget, steps_per_epoch=5, epochs=10):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    data = tf.data.Dataset.from_tensors((np.ones((2, 3), "float32"), np.ones((2, 1), "float32")))
    model.fit(data.repeat(), steps_per_epoch=steps_per_epoch, epochs=epochs, callbacks=[budget],
              verbose=0)
    return int(model.optimizer.iterations.numpy())


def test_stops_at_the_optimizer_step_count():
    budget = TrainingBudget(7, None, None, tf.distribute.get_strategy())
    assert _fit(budget) == 7 and not budget.stopped_by_deadline


def test_stops_at_the_deadline_and_revises_the_schedule():
    schedule = RevisableWarmupLinearDecay(1e-3, total_steps=10_000)
    expired = TrainingBudget(None, time.time(), schedule, tf.distribute.get_strategy())
    assert _fit(expired) == 1 and expired.stopped_by_deadline

    budget = TrainingBudget(
        40, time.time() + 600, schedule, tf.distribute.get_strategy(), revise_after=2,
        revise_every=5,
    )
    assert _fit(budget) == 40
    # Far from the deadline: the revised total is the step limit.
    assert float(schedule.total_steps.numpy()) == 40.0


def test_needs_a_limit():
    with pytest.raises(ValueError, match=r"A `train_steps` or a `deadline` is required"):
        TrainingBudget(None, None, None, None)
