import numpy as np
import pytest
import tensorflow as tf

from keras_bert.layers import fast_ops
from tests.test_case import to_numpy

RNG = np.random.default_rng(5)


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_dropout_keeps_the_right_fraction_and_the_mean(rate):
    x = tf.ones((1000, 1001))  # An odd number of elements.
    outputs = to_numpy(fast_ops.dropout(x, rate, tf.constant([3, 4], tf.int32)))
    kept = outputs != 0
    # 1e6 Bernoulli draws: the standard error of the fraction is < 5e-4.
    assert abs(kept.mean() - (1 - rate)) < 3e-3
    threshold = round(rate * 65536)
    np.testing.assert_allclose(outputs[kept], 65536 / (65536 - threshold), rtol=1e-6)
    assert abs(outputs.mean() - 1.0) < 5e-3


def test_dropout_is_deterministic_per_seed_and_its_gradient_is_the_mask():
    x = tf.constant(RNG.normal(size=(4, 6, 8)).astype("float32"))
    seed = tf.constant([1, 2], tf.int32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = fast_ops.dropout(x, 0.3, seed)
    gradient = to_numpy(tape.gradient(outputs, x))
    np.testing.assert_array_equal(to_numpy(outputs), to_numpy(fast_ops.dropout(x, 0.3, seed)))
    assert not np.array_equal(to_numpy(outputs), to_numpy(fast_ops.dropout(x, 0.3, seed + 1)))
    scale = 65536 / (65536 - round(0.3 * 65536))
    np.testing.assert_allclose(gradient, (to_numpy(outputs) != 0) * scale, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_dropout_layer_in_training_and_inference(dtype):
    layer = fast_ops.dropout_layer(0.25, dtype=dtype, name="dropout")
    x = np.ones((64, 64), "float32")
    np.testing.assert_array_equal(to_numpy(layer(x, training=False)), x.astype(dtype))
    first = to_numpy(tf.cast(layer(x, training=True), "float32"))
    second = to_numpy(tf.cast(layer(x, training=True), "float32"))
    assert 0.2 < (first == 0).mean() < 0.3
    assert not np.array_equal(first, second), "every call draws a new mask"
    assert layer(x, training=True).dtype == dtype
