import numpy as np
import pytest

from keras_bert.layers.transformer_block import TransformerBlock
from tests.test_case import run_layer_test, to_numpy

RNG = np.random.default_rng(2)
INPUTS = RNG.normal(size=(2, 5, 16)).astype("float32")
PADDING_MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], "int32")
# attention: 8 weights; 2 layer norms x 2; 2 dense x 2.
NUM_WEIGHTS = 8 + 4 + 4
NUM_PARAMS = (16 * 48 + 48 + 16 * 16 + 16) + 2 * 32 + (16 * 32 + 32) + (32 * 16 + 16)


@pytest.mark.parametrize("norm_first", [False, True])
def test_layer_basics(norm_first):
    run_layer_test(
        TransformerBlock,
        {"num_heads": 4, "intermediate_dim": 32, "norm_first": norm_first},
        (INPUTS,),
        call_kwargs={"padding_mask": PADDING_MASK},
        expected_output_shape=(2, 5, 16),
        expected_num_trainable_weights=NUM_WEIGHTS,
        expected_num_params=NUM_PARAMS,
    )


def _layer_norm(x, layer):
    mean = x.mean(-1, keepdims=True)
    variance = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + layer.epsilon) * to_numpy(layer.gamma) + to_numpy(
        layer.beta
    )


def _gelu(x, approximate):
    if approximate:
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    from math import erf

    return 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2)))


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["gelu", "gelu_approximate"])
def test_matches_reference_formula(norm_first, activation):
    block = TransformerBlock(
        num_heads=4,
        intermediate_dim=32,
        dropout=0.0,
        attention_dropout=0.0,
        norm_first=norm_first,
        activation=activation,
    )
    outputs = to_numpy(block(INPUTS, padding_mask=PADDING_MASK))

    attention = lambda x: to_numpy(block.self_attention_layer(x, padding_mask=PADDING_MASK))  # noqa: E731
    inner = block.feedforward_intermediate_dense
    outer = block.feedforward_output_dense

    def feedforward(x):
        hidden = _gelu(x @ to_numpy(inner.kernel) + to_numpy(inner.bias), activation != "gelu")
        return hidden @ to_numpy(outer.kernel) + to_numpy(outer.bias)

    x = INPUTS
    if norm_first:
        x = x + attention(_layer_norm(x, block.self_attention_layer_norm))
        x = x + feedforward(_layer_norm(x, block.feedforward_layer_norm))
    else:
        x = _layer_norm(x + attention(x), block.self_attention_layer_norm)
        x = _layer_norm(x + feedforward(x), block.feedforward_layer_norm)
    np.testing.assert_allclose(outputs, x, atol=1e-4)


def test_exact_and_approximate_gelu_differ():
    exact = TransformerBlock(num_heads=4, intermediate_dim=32, activation="gelu")
    approximate = TransformerBlock(num_heads=4, intermediate_dim=32, activation="gelu_approximate")
    exact(INPUTS)
    approximate(INPUTS)
    approximate.set_weights(exact.get_weights())
    difference = np.abs(to_numpy(exact(INPUTS)) - to_numpy(approximate(INPUTS))).max()
    assert 0 < difference < 1e-2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"intermediate_dim": 0}, r"`intermediate_dim` must be a positive integer, received 0"),
        ({"activation": "swish"}, r"`activation` must be one of \('gelu', 'gelu_approximate', 'relu'\), received 'swish'"),
        ({"norm_first": "yes"}, r"`norm_first` must be a bool, received 'yes'"),
        ({"layer_norm_epsilon": 0}, r"`layer_norm_epsilon` must be a positive number, received 0"),
        ({"use_dot_product_attention": True}, r"`use_dot_product_attention=True` needs `attention_dropout=0`"),
        ({"use_dot_product_attention": "no"}, r"`use_dot_product_attention` must be a bool, received 'no'"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TransformerBlock(**dict({"num_heads": 4, "intermediate_dim": 32}, **kwargs))


@pytest.mark.parametrize("norm_first", [False, True])
def test_split_first_token_matches_full_block(norm_first):
    block = TransformerBlock(
        num_heads=4, intermediate_dim=32, dropout=0.0, attention_dropout=0.0, norm_first=norm_first
    )
    full = to_numpy(block(INPUTS, padding_mask=PADDING_MASK))
    first, rest = block(INPUTS, padding_mask=PADDING_MASK, split_first_token=True)
    np.testing.assert_allclose(to_numpy(first), full[:, :1], atol=1e-6)
    np.testing.assert_allclose(to_numpy(rest), full[:, 1:], atol=1e-6)


def test_split_first_token_of_a_single_position():
    block = TransformerBlock(num_heads=4, intermediate_dim=32, dropout=0.0, attention_dropout=0.0)
    first, rest = block(INPUTS[:, :1], split_first_token=True)
    assert tuple(first.shape) == (2, 1, 16) and tuple(rest.shape) == (2, 0, 16)
    np.testing.assert_allclose(to_numpy(first), to_numpy(block(INPUTS[:, :1])), atol=1e-6)


def test_layer_basics_with_dot_product_attention():
    run_layer_test(
        TransformerBlock,
        {"num_heads": 4, "intermediate_dim": 32, "attention_dropout": 0.0, "use_dot_product_attention": True},
        (INPUTS,),
        call_kwargs={"padding_mask": PADDING_MASK},
        expected_output_shape=(2, 5, 16),
        expected_num_trainable_weights=NUM_WEIGHTS,
        expected_num_params=NUM_PARAMS,
    )


def test_dot_product_attention_matches_explicit_block():
    explicit = TransformerBlock(num_heads=4, intermediate_dim=32, dropout=0.0, attention_dropout=0.0)
    fused = TransformerBlock(
        num_heads=4, intermediate_dim=32, dropout=0.0, attention_dropout=0.0, use_dot_product_attention=True
    )
    explicit(INPUTS)
    fused(INPUTS)
    fused.set_weights(explicit.get_weights())
    np.testing.assert_allclose(
        to_numpy(explicit(INPUTS, padding_mask=PADDING_MASK)),
        to_numpy(fused(INPUTS, padding_mask=PADDING_MASK)),
        atol=1e-5,
    )
