"""LAMB, the global-gradient train step (micro-batches) and its optimizers."""

import keras
import numpy as np
import pytest

from keras_bert import BertEncoder
from keras_bert.models import BertPretrainer
from tests.test_case import to_numpy
from training.core import global_gradients
from training.core.lamb import Lamb

TINY = dict(
    vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16, dropout=0.0
)


class TrainablePretrainer(global_gradients.GlobalGradientTrainStep, BertPretrainer):
    pass


def _lamb_reference(weights, gradients, steps, learning_rate, weight_decay, adapt, epsilon=1e-6):
    beta_1, beta_2 = 0.9, 0.999
    w = weights.astype("float64")
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(gradients[:steps], start=1):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        update = (m / (1 - beta_1**t)) / (np.sqrt(v / (1 - beta_2**t)) + epsilon)
        if adapt:
            update = update + weight_decay * w
            ratio = np.linalg.norm(w) / np.linalg.norm(update)
            update = ratio * update
        w = w - learning_rate * update
    return w


def test_lamb_matches_the_algorithm_and_skips_exempt_variables():
    rng = np.random.default_rng(0)
    kernel = keras.Variable(rng.normal(size=(3, 4)).astype("float32"), name="kernel")
    bias = keras.Variable(rng.normal(size=(4,)).astype("float32"), name="bias")
    optimizer = Lamb(learning_rate=0.01, weight_decay=0.1)
    optimizer.exclude_from_weight_decay(var_list=[bias])
    kernel_gradients = [rng.normal(size=(3, 4)) for _ in range(3)]
    bias_gradients = [rng.normal(size=(4,)) for _ in range(3)]
    expected_kernel = _lamb_reference(to_numpy(kernel), kernel_gradients, 3, 0.01, 0.1, True)
    expected_bias = _lamb_reference(to_numpy(bias), bias_gradients, 3, 0.01, 0.1, False)
    for kernel_gradient, bias_gradient in zip(kernel_gradients, bias_gradients):
        optimizer.apply(
            [kernel_gradient.astype("float32"), bias_gradient.astype("float32")], [kernel, bias]
        )
    np.testing.assert_allclose(to_numpy(kernel), expected_kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(bias), expected_bias, rtol=1e-5, atol=1e-6)
    restored = Lamb.from_config(optimizer.get_config())
    assert (restored.beta_1, restored.beta_2, restored.epsilon) == (0.9, 0.999, 1e-6)


def test_lamb_argument_errors():
    with pytest.raises(ValueError, match=r"`beta_1` must be in \[0, 1\), received 1.0"):
        Lamb(beta_1=1.0)
    with pytest.raises(ValueError, match=r"`epsilon` must be positive, received 0"):
        Lamb(epsilon=0)


def test_create_optimizer_exempts_biases_and_norms():
    model = TrainablePretrainer(BertEncoder(**TINY))
    for name in ("adamw", "lamb"):
        optimizer = global_gradients.create_optimizer(model, name, 1e-3)
        assert isinstance(optimizer, global_gradients.PreReducedGradients)
        optimizer.build(model.trainable_variables)
        decayed = {v.path for v in model.trainable_variables if optimizer._use_weight_decay(v)}
        assert "masked_lm_head/mlm_transform_dense/kernel" in decayed
        assert "masked_lm_head/mlm_output_bias" not in decayed
        assert "masked_lm_head/mlm_layer_norm/gamma" not in decayed
    wrapped = global_gradients.create_optimizer(model, "adamw", 1e-3, loss_scaling=True)
    assert isinstance(wrapped, keras.optimizers.LossScaleOptimizer)
    with pytest.raises(ValueError, match=r"`optimizer` must be one of \('adamw', 'lamb'\)"):
        global_gradients.create_optimizer(model, "sgd", 1e-3)
    with pytest.raises(ValueError, match=r"`weight_decay` must be >= 0, received -1"):
        global_gradients.create_optimizer(model, "adamw", 1e-3, weight_decay=-1)


def _data(batch_size=8, length=10, num_predictions=3):
    rng = np.random.default_rng(1)
    inputs = {
        "token_ids": rng.integers(5, 40, size=(batch_size, length)).astype("int32"),
        "segment_ids": np.zeros((batch_size, length), "int32"),
        "padding_mask": np.ones((batch_size, length), "int32"),
        "masked_positions": rng.integers(1, length, size=(batch_size, num_predictions)).astype(
            "int32"
        ),
    }
    labels = {
        "masked_ids": rng.integers(5, 40, size=(batch_size, num_predictions)).astype("int32"),
        # As many predictions in every example: each micro-batch's loss is then
        # normalised like the whole batch's, and the updates must agree.
        "masked_weights": np.ones((batch_size, num_predictions), "float32"),
        "next_sentence_label": rng.integers(0, 2, size=(batch_size,)).astype("int32"),
    }
    return inputs, labels


def _train(accumulation_steps, name="adamw", clipnorm=None, steps=2):
    keras.utils.set_random_seed(3)
    model = TrainablePretrainer(BertEncoder(**TINY))
    model.gradient_accumulation_steps = accumulation_steps
    model.compile(
        optimizer=global_gradients.create_optimizer(model, name, 1e-2, global_clipnorm=clipnorm)
    )
    inputs, labels = _data()
    history = model.fit(inputs, labels, batch_size=8, epochs=steps, shuffle=False, verbose=0)
    return model, history


@pytest.mark.parametrize("name, clipnorm", [("adamw", None), ("lamb", 0.05)])
def test_micro_batches_give_the_update_of_the_whole_batch(name, clipnorm):
    whole, whole_history = _train(1, name, clipnorm)
    micro, micro_history = _train(2, name, clipnorm)
    assert int(micro.optimizer.iterations.numpy()) == 2  # One update per batch.
    np.testing.assert_allclose(
        whole_history.history["loss"], micro_history.history["loss"], rtol=1e-5
    )
    for a, b in zip(whole.get_weights(), micro.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_batch_not_divisible_into_micro_batches_fails():
    with pytest.raises(Exception, match="divisible by `gradient_accumulation_steps`"):
        _train(3, steps=1)


def test_train_step_refuses_an_optimizer_that_all_reduces_itself():
    model = TrainablePretrainer(BertEncoder(**TINY))
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    inputs, labels = _data()
    with pytest.raises(ValueError, match=r"needs an optimizer from .*create_optimizer"):
        model.fit(inputs, labels, batch_size=8, epochs=1, verbose=0)
