import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_bert.layers.multi_head_self_attention import MultiHeadSelfAttention, sequence_shape
from tests.test_case import run_layer_test, to_numpy

RNG = np.random.default_rng(1)
INPUTS = RNG.normal(size=(2, 6, 16)).astype("float32")
PADDING_MASK = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], "int32")


def reference_attention(layer, x, mask):
    """Plain numpy multi-head attention with separate Q, K, V projections."""
    kernels = [to_numpy(getattr(layer, f"{p}_kernel")) for p in ("query", "key", "value")]
    biases = [to_numpy(getattr(layer, f"{p}_bias")) for p in ("query", "key", "value")]
    _, num_heads, head_dim = kernels[0].shape  # (D, N, H)
    hidden_dim = num_heads * head_dim
    heads = []
    for n in range(num_heads):
        q, k, v = (x @ kernel[:, n] + bias[n] for kernel, bias in zip(kernels, biases))
        scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(head_dim)
        scores = np.where(mask[:, None, :] > 0, scores, -np.inf)
        scores = scores - scores.max(-1, keepdims=True)
        weights = np.exp(scores)
        weights /= weights.sum(-1, keepdims=True)
        heads.append(weights @ v)
    concatenated = np.concatenate(heads, axis=-1)  # (B, S, N*H)
    output_kernel = to_numpy(layer.output_kernel).reshape(hidden_dim, -1)
    return concatenated @ output_kernel + to_numpy(layer.output_bias)


def test_layer_basics():
    run_layer_test(
        MultiHeadSelfAttention,
        {"num_heads": 4},
        (INPUTS,),
        call_kwargs={"padding_mask": PADDING_MASK},
        expected_output_shape=(2, 6, 16),
        expected_num_trainable_weights=8,
        expected_num_params=16 * 3 * 16 + 3 * 16 + 16 * 16 + 16,
    )


def test_matches_reference_attention():
    layer = MultiHeadSelfAttention(num_heads=4, attention_dropout=0.0)
    outputs = to_numpy(layer(INPUTS, padding_mask=PADDING_MASK))
    expected = reference_attention(layer, INPUTS, PADDING_MASK)
    np.testing.assert_allclose(outputs, expected, atol=1e-5)


def test_padding_does_not_change_real_positions():
    layer = MultiHeadSelfAttention(num_heads=2, attention_dropout=0.0)
    short = INPUTS[:1, :3]
    padded = np.concatenate([short, RNG.normal(size=(1, 5, 16)).astype("float32")], axis=1)
    mask = np.array([[1, 1, 1, 0, 0, 0, 0, 0]], "int32")
    np.testing.assert_allclose(
        to_numpy(layer(padded, padding_mask=mask))[:, :3],
        to_numpy(layer(short, padding_mask=np.ones((1, 3), "int32"))),
        atol=1e-6,
    )


def test_full_attention_mask_combines_with_padding_mask():
    layer = MultiHeadSelfAttention(num_heads=2, attention_dropout=0.0)
    causal = np.tril(np.ones((6, 6), "int32"))[None].repeat(2, axis=0)
    _, probabilities = layer(
        INPUTS, padding_mask=PADDING_MASK, attention_mask=causal, return_attention_scores=True
    )
    probabilities = to_numpy(probabilities)
    assert probabilities.shape == (2, 2, 6, 6)
    allowed = (causal[:, None] * PADDING_MASK[:, None, None, :]) > 0
    assert np.all(probabilities[~np.broadcast_to(allowed, probabilities.shape)] == 0)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-6)


@pytest.mark.parametrize("policy", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_all_padding_row_gives_no_nan(policy):
    layer = MultiHeadSelfAttention(num_heads=4, dtype=policy)
    mask = np.zeros((2, 6), "int32")
    outputs, probabilities = layer(
        INPUTS, padding_mask=mask, return_attention_scores=True
    )
    assert np.all(np.isfinite(to_numpy(keras.ops.cast(outputs, "float32"))))
    assert np.all(np.isfinite(to_numpy(keras.ops.cast(probabilities, "float32"))))


def test_softmax_runs_in_float32_under_mixed_precision():
    # Scores this large overflow float16's exp; computed in float32 the
    # softmax stays finite and sums to one.
    layer = MultiHeadSelfAttention(num_heads=2, dtype="mixed_float16")
    layer.build(INPUTS.shape)
    layer.query_kernel.assign(np.full(layer.query_kernel.shape, 0.3, "float32"))
    layer.key_kernel.assign(np.full(layer.key_kernel.shape, 0.3, "float32"))
    _, probabilities = layer(np.abs(INPUTS), return_attention_scores=True)
    probabilities = to_numpy(keras.ops.cast(probabilities, "float32"))
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-2)


def test_hidden_dim_not_divisible_by_heads():
    layer = MultiHeadSelfAttention(num_heads=5)
    with pytest.raises(ValueError, match=r"`hidden_dim` \(16\) must be divisible by `num_heads` \(5\)"):
        layer(INPUTS)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": 0}, r"`num_heads` must be a positive integer, received 0"),
        ({"num_heads": 2, "attention_dropout": -0.1}, r"`attention_dropout` must be a number in \[0, 1\)"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiHeadSelfAttention(**kwargs)


def _copy_weights(source, target, inputs):
    target(inputs)
    target.set_weights(source.get_weights())


def test_layer_basics_with_dot_product_attention():
    run_layer_test(
        MultiHeadSelfAttention,
        {"num_heads": 4, "attention_dropout": 0.0, "use_dot_product_attention": True},
        (INPUTS,),
        call_kwargs={"padding_mask": PADDING_MASK},
        expected_output_shape=(2, 6, 16),
        expected_num_trainable_weights=8,
    )


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_dot_product_attention_matches_explicit_attention(policy):
    explicit = MultiHeadSelfAttention(num_heads=4, attention_dropout=0.0, dtype=policy)
    fused = MultiHeadSelfAttention(
        num_heads=4, attention_dropout=0.0, use_dot_product_attention=True, dtype=policy
    )
    explicit(INPUTS)
    _copy_weights(explicit, fused, INPUTS)
    causal = np.tril(np.ones((6, 6), "int32"))[None].repeat(2, axis=0)
    for kwargs in ({}, {"padding_mask": PADDING_MASK}, {"attention_mask": causal}):
        a = to_numpy(keras.ops.cast(explicit(INPUTS, **kwargs), "float32"))
        b = to_numpy(keras.ops.cast(fused(INPUTS, **kwargs), "float32"))
        np.testing.assert_allclose(a, b, atol=1e-5 if policy == "float32" else 2e-2)


def test_dot_product_attention_gradients_match():
    explicit = MultiHeadSelfAttention(num_heads=4, attention_dropout=0.0)
    fused = MultiHeadSelfAttention(num_heads=4, attention_dropout=0.0, use_dot_product_attention=True)
    explicit(INPUTS)
    _copy_weights(explicit, fused, INPUTS)
    import tensorflow as tf

    gradients = []
    for layer in (explicit, fused):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(INPUTS, padding_mask=PADDING_MASK) ** 2)
        gradients.append([to_numpy(g) for g in tape.gradient(loss, layer.trainable_weights)])
    for a, b in zip(*gradients):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_dot_product_attention_needs_no_attention_dropout():
    with pytest.raises(ValueError, match=r"`use_dot_product_attention=True` needs `attention_dropout=0`.*0.1"):
        MultiHeadSelfAttention(num_heads=4, use_dot_product_attention=True)
    with pytest.raises(ValueError, match=r"`use_dot_product_attention` must be a bool, received 1"):
        MultiHeadSelfAttention(num_heads=4, attention_dropout=0.0, use_dot_product_attention=1)


@pytest.mark.parametrize("use_dot_product_attention", [False, True])
def test_split_first_token_matches_full_attention(use_dot_product_attention):
    layer = MultiHeadSelfAttention(
        num_heads=4, attention_dropout=0.0, use_dot_product_attention=use_dot_product_attention
    )
    causal = np.tril(np.ones((6, 6), "int32"))[None].repeat(2, axis=0)
    for kwargs in ({"padding_mask": PADDING_MASK}, {"padding_mask": PADDING_MASK, "attention_mask": causal}):
        full = to_numpy(layer(INPUTS, **kwargs))
        first, rest = layer(INPUTS, split_first_token=True, **kwargs)
        assert tuple(first.shape) == (2, 1, 16) and tuple(rest.shape) == (2, 5, 16)
        np.testing.assert_allclose(to_numpy(first), full[:, :1], atol=1e-6)
        np.testing.assert_allclose(to_numpy(rest), full[:, 1:], atol=1e-6)


def test_split_first_token_symbolic_shapes_and_scores_conflict():
    layer = MultiHeadSelfAttention(num_heads=4)
    first, rest = layer(keras.Input((6, 16)), split_first_token=True)
    assert first.shape == (None, 1, 16) and rest.shape == (None, 5, 16)
    with pytest.raises(ValueError, match=r"`return_attention_scores=True` cannot be combined"):
        layer(INPUTS, split_first_token=True, return_attention_scores=True)


def test_sequence_shape_is_constant_only_for_a_static_batch():
    assert sequence_shape(1, 7, 4, 8) == (1, -1, 4, 8)
    dynamic_batch = tf.constant(3)
    shape = sequence_shape(dynamic_batch, 7, 32)
    assert shape[0] is dynamic_batch and shape[1:] == (7, 32)
    # An empty batch cannot infer a -1 dimension: the full shape is kept.
    assert sequence_shape(0, 7, 32) == (0, 7, 32)
    empty = ops.reshape(ops.zeros((0, 32)), sequence_shape(0, 7, 32))
    assert tuple(empty.shape) == (0, 7, 32)
