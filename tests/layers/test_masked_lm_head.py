import keras
import numpy as np
import pytest

from keras_bert.layers.masked_lm_head import MaskedLMHead
from tests.test_case import run_layer_test, to_numpy

RNG = np.random.default_rng(3)
VOCABULARY_SIZE = 11
INPUTS = RNG.normal(size=(2, 6, 8)).astype("float32")
MASKED_POSITIONS = np.array([[1, 4, 0], [5, 2, 2]], "int32")


def test_layer_basics_untied():
    # transform dense (2) + layer norm (2) + output table + output bias.
    run_layer_test(
        MaskedLMHead,
        {"vocabulary_size": VOCABULARY_SIZE},
        (INPUTS,),
        call_kwargs={"masked_positions": MASKED_POSITIONS},
        expected_output_shape=(2, 3, VOCABULARY_SIZE),
        expected_num_trainable_weights=6,
        expected_num_params=(8 * 8 + 8) + 2 * 8 + VOCABULARY_SIZE * 8 + VOCABULARY_SIZE,
    )


def _encoder_embedding(vocabulary_size=VOCABULARY_SIZE, table_dim=8):
    embedding = keras.layers.Embedding(vocabulary_size, table_dim)
    embedding.build((None,))
    return embedding


def _layer_norm(x, layer):
    mean = x.mean(-1, keepdims=True)
    variance = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + layer.epsilon) * to_numpy(layer.gamma) + to_numpy(
        layer.beta
    )


def _gelu(x):
    from math import erf

    return 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2)))


def test_tied_head_matches_reference_formula():
    embedding = _encoder_embedding()
    head = MaskedLMHead(VOCABULARY_SIZE, token_embedding=embedding)
    logits = to_numpy(head(INPUTS, masked_positions=MASKED_POSITIONS))
    head.mlm_output_bias.assign(RNG.normal(size=(VOCABULARY_SIZE,)).astype("float32"))
    logits = to_numpy(head(INPUTS, masked_positions=MASKED_POSITIONS))

    gathered = np.stack([INPUTS[b, MASKED_POSITIONS[b]] for b in range(2)])
    dense = head.mlm_transform_dense
    hidden = _gelu(gathered @ to_numpy(dense.kernel) + to_numpy(dense.bias))
    hidden = _layer_norm(hidden, head.mlm_layer_norm)
    expected = hidden @ to_numpy(embedding.embeddings).T + to_numpy(head.mlm_output_bias)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)


def test_tied_table_is_the_embedding_and_not_a_weight_of_the_head():
    embedding = _encoder_embedding()
    head = MaskedLMHead(VOCABULARY_SIZE, token_embedding=embedding)
    before = to_numpy(head(INPUTS, masked_positions=MASKED_POSITIONS))
    # transform kernel and bias, layer norm gamma and beta, output bias.
    assert len(head.weights) == 5
    assert all(w is not embedding.embeddings for w in head.weights)
    embedding.embeddings.assign(2.0 * embedding.embeddings)
    after = to_numpy(head(INPUTS, masked_positions=MASKED_POSITIONS))
    assert not np.allclose(before, after)
    assert "token_embedding" not in head.get_config()


def test_factorised_embedding_transform_maps_to_the_table_width():
    embedding = _encoder_embedding(table_dim=4)
    head = MaskedLMHead(VOCABULARY_SIZE, token_embedding=embedding)
    logits = head(INPUTS, masked_positions=MASKED_POSITIONS)
    assert tuple(logits.shape) == (2, 3, VOCABULARY_SIZE)
    assert tuple(head.mlm_transform_dense.kernel.shape) == (8, 4)


def test_only_masked_positions_are_scored():
    head = MaskedLMHead(VOCABULARY_SIZE, token_embedding=_encoder_embedding())
    before = to_numpy(head(INPUTS, masked_positions=MASKED_POSITIONS))
    changed = INPUTS.copy()
    for b in range(2):
        unmasked = sorted(set(range(6)) - set(MASKED_POSITIONS[b].tolist()))
        changed[b, unmasked] = 100.0
    after = to_numpy(head(changed, masked_positions=MASKED_POSITIONS))
    np.testing.assert_array_equal(before, after)


def test_mixed_precision_tied_head_computes_in_bfloat16():
    head = MaskedLMHead(
        VOCABULARY_SIZE, token_embedding=_encoder_embedding(), dtype="mixed_bfloat16"
    )
    logits = head(INPUTS, masked_positions=MASKED_POSITIONS)
    assert keras.backend.standardize_dtype(logits.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(head.mlm_output_bias.dtype) == "float32"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"vocabulary_size": 0}, r"`vocabulary_size` must be a positive integer, received 0"),
        (
            {"vocabulary_size": 5, "activation": "tanh"},
            r"`activation` must be one of \('gelu', 'gelu_approximate', 'relu'\), received 'tanh'",
        ),
        (
            {"vocabulary_size": 5, "layer_norm_epsilon": 0.0},
            r"`layer_norm_epsilon` must be a positive number, received 0.0",
        ),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MaskedLMHead(**kwargs)


def test_embedding_of_another_vocabulary_is_rejected():
    with pytest.raises(
        ValueError, match=r"`token_embedding` has 11 rows but `vocabulary_size` is 12"
    ):
        MaskedLMHead(12, token_embedding=_encoder_embedding())


def test_token_embedding_must_be_an_embedding_layer():
    with pytest.raises(ValueError, match=r"`token_embedding` must be a `keras.layers.Embedding`"):
        MaskedLMHead(VOCABULARY_SIZE, token_embedding=keras.layers.Dense(3))
