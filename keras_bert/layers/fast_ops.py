"""Cheaper formulations of layer normalisation and dropout for the layers.

On CPU every TensorFlow element-wise op is one pass over memory, so the number
of ops, not arithmetic, sets the cost of these functions; each is written to
use fewer ops than the generic Keras version while computing the same thing.
"""

import keras
import tensorflow as tf

# Experiment switch (set by benchmarks.ablation A/B runs, not part of the API).
DROPOUT = "random_bits"


def dropout(x, rate, seed):
    """Inverted dropout whose mask costs half the random numbers.

    Each element is kept with probability `1 - rate` and scaled by
    `1 / (1 - rate)`, as in `keras.layers.Dropout`. The keep decision
    compares 16 random bits with a threshold, so one 32-bit Philox draw
    serves two elements and no random floats are made. `rate` is rounded to
    a multiple of 2**-16 (at most 7.6e-6 away), and the scale uses the
    rounded rate, so the expected output is exactly `x`.

    Args:
        x: float tensor with a static number of elements per example.
        rate: float in [0, 1).
        seed: int32 tensor of shape `(2,)`.

    Returns:
        A tensor like `x`.
    """
    threshold = int(round(rate * 65536))
    if threshold == 0:
        return x
    size = tf.size(x)
    # One uint32 per two elements; bitcast splits each into two uint16s.
    bits = tf.random.stateless_uniform(
        [(size + 1) // 2], seed=seed, minval=None, maxval=None, dtype=tf.uint32
    )
    halves = tf.reshape(tf.bitcast(bits, tf.uint16), [-1])[:size]
    keep = tf.reshape(halves, tf.shape(x)) >= tf.constant(threshold, tf.uint16)
    scale = tf.constant(65536.0 / (65536 - threshold), x.dtype)
    return tf.where(keep, x * scale, tf.zeros((), x.dtype))


class _Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout` (no `noise_shape`) through `dropout`."""

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        if DROPOUT == "keras":
            return super().call(inputs, training=training)
        seed = tf.cast(tf.math.floormod(self.seed_generator.next(), tf.int32.max - 1), tf.int32)
        return dropout(inputs, self.rate, seed)


def dropout_layer(rate, dtype, name):
    """A dropout layer using `dropout`."""
    return _Dropout(rate, dtype=dtype, name=name)
