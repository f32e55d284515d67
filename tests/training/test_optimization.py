import json

import keras
import numpy as np
import pytest

from keras_bert import BertEncoder
from keras_bert.models import BertClassifier
from training.core.optimization import (
    WarmupLinearDecay,
    create_optimizer,
    decay_exempt_variables,
    linear_warmup_schedule,
)

TINY = dict(vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)


def test_schedule_warms_up_then_decays_linearly():
    schedule = WarmupLinearDecay(1.0, warmup_steps=4, total_steps=10)
    rates = [float(schedule(step)) for step in range(12)]
    np.testing.assert_allclose(
        rates, [0.25, 0.5, 0.75, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6, 0, 0, 0], atol=1e-6
    )
    assert float(linear_warmup_schedule(2.0, 100, 0.1)(9)) == pytest.approx(2.0)
    assert float(WarmupLinearDecay(1.0, 0, 4)(0)) == pytest.approx(0.75)


def test_schedule_serializes():
    schedule = WarmupLinearDecay(3e-5, 10, 100, end_learning_rate=1e-6)
    restored = keras.saving.deserialize_keras_object(
        json.loads(json.dumps(keras.saving.serialize_keras_object(schedule)))
    )
    assert isinstance(restored, WarmupLinearDecay)
    assert restored.get_config() == schedule.get_config()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(peak_learning_rate=0.0, warmup_steps=1, total_steps=2), "`peak_learning_rate`"),
        (dict(peak_learning_rate=1.0, warmup_steps=-1, total_steps=2), r"`warmup_steps` must be a non-negative integer, received -1"),
        (dict(peak_learning_rate=1.0, warmup_steps=5, total_steps=2), r"`warmup_steps` \(5\) must not exceed `total_steps` \(2\)"),
        (dict(peak_learning_rate=1.0, warmup_steps=1, total_steps=2, end_learning_rate=2.0), r"`end_learning_rate` \(2.0\)"),
    ],
)
def test_schedule_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WarmupLinearDecay(**kwargs)


def test_biases_and_layer_norms_are_exempt_from_weight_decay():
    model = BertClassifier(BertEncoder(**TINY), num_classes=2)
    exempt = {v.path for v in decay_exempt_variables(model)}
    for variable in model.trainable_variables:
        expected = variable.path.endswith("bias") or "layer_norm" in variable.path
        assert (variable.path in exempt) == expected, variable.path


def test_weight_decay_moves_only_decayed_variables():
    model = BertClassifier(BertEncoder(**TINY), num_classes=2)
    optimizer = create_optimizer(model, learning_rate=0.1, weight_decay=0.5, global_clipnorm=None)
    variables = model.trainable_variables
    for variable in variables:
        variable.assign(np.ones(variable.shape, "float32"))
    # Zero gradients: Adam's update is 0, so only weight decay can move a variable.
    optimizer.apply_gradients([(np.zeros(v.shape, "float32"), v) for v in variables])
    exempt = {v.path for v in decay_exempt_variables(model)}
    for variable in variables:
        moved = not np.allclose(keras.ops.convert_to_numpy(variable), 1.0)
        assert moved == (variable.path not in exempt), variable.path


def test_loss_scaling_wraps_the_optimizer():
    model = BertClassifier(BertEncoder(**TINY), num_classes=2)
    optimizer = create_optimizer(model, 1e-3, loss_scaling=True)
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    with pytest.raises(ValueError, match=r"`weight_decay` must be >= 0, received -1"):
        create_optimizer(model, 1e-3, weight_decay=-1)
