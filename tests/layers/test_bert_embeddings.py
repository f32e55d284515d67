import math

import numpy as np
import pytest

from keras_bert.layers.bert_embeddings import BertEmbeddings, sinusoidal_position_encoding
from tests.test_case import run_layer_test, to_numpy

RNG = np.random.default_rng(0)
TOKEN_IDS = RNG.integers(0, 50, size=(2, 7)).astype("int32")
SEGMENT_IDS = RNG.integers(0, 2, size=(2, 7)).astype("int32")


def test_layer_basics_learned():
    run_layer_test(
        BertEmbeddings,
        {"vocabulary_size": 50, "hidden_dim": 16, "max_sequence_length": 12},
        (TOKEN_IDS, SEGMENT_IDS),
        expected_output_shape=(2, 7, 16),
        # token + segment + position tables, layer norm gamma + beta.
        expected_num_trainable_weights=5,
        expected_num_params=50 * 16 + 2 * 16 + 12 * 16 + 2 * 16,
    )


def test_layer_basics_sinusoidal_with_projection():
    run_layer_test(
        BertEmbeddings,
        {
            "vocabulary_size": 50,
            "hidden_dim": 16,
            "embedding_dim": 8,
            "position_embedding": "sinusoidal",
        },
        (TOKEN_IDS, SEGMENT_IDS),
        expected_output_shape=(2, 7, 16),
        expected_num_trainable_weights=6,
        expected_num_params=50 * 8 + 2 * 8 + 2 * 8 + 8 * 16 + 16,
    )


def test_sum_of_embeddings_before_layer_norm():
    layer = BertEmbeddings(vocabulary_size=50, hidden_dim=16, dropout=0.0)
    outputs = to_numpy(layer(TOKEN_IDS, SEGMENT_IDS))
    tokens = to_numpy(layer.token_embedding.embeddings)[TOKEN_IDS]
    segments = to_numpy(layer.segment_embedding.embeddings)[SEGMENT_IDS]
    positions = to_numpy(layer.position_embeddings)[:7][None]
    summed = tokens + segments + positions
    mean = summed.mean(-1, keepdims=True)
    variance = summed.var(-1, keepdims=True)
    expected = (summed - mean) / np.sqrt(variance + 1e-12)
    gamma = to_numpy(layer.embeddings_layer_norm.gamma)
    beta = to_numpy(layer.embeddings_layer_norm.beta)
    np.testing.assert_allclose(outputs, expected * gamma + beta, atol=1e-5)


def test_sinusoidal_encoding_matches_formula():
    encoding = to_numpy(sinusoidal_position_encoding(10, 6))
    for position in range(10):
        for i in range(3):
            angle = position / (10000 ** (2 * i / 6))
            assert math.isclose(encoding[position, 2 * i], math.sin(angle), abs_tol=1e-5)
            assert math.isclose(encoding[position, 2 * i + 1], math.cos(angle), abs_tol=1e-5)


def test_missing_segment_ids_means_segment_zero():
    layer = BertEmbeddings(vocabulary_size=50, hidden_dim=16, dropout=0.0)
    np.testing.assert_array_equal(
        to_numpy(layer(TOKEN_IDS)), to_numpy(layer(TOKEN_IDS, np.zeros_like(TOKEN_IDS)))
    )


def test_sequence_longer_than_position_table_is_rejected():
    layer = BertEmbeddings(vocabulary_size=50, hidden_dim=16, max_sequence_length=4)
    with pytest.raises(ValueError, match=r"sequence length 7, longer than `max_sequence_length` \(4\)"):
        layer(TOKEN_IDS, SEGMENT_IDS)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"vocabulary_size": 0}, r"`vocabulary_size` must be a positive integer, received 0"),
        ({"hidden_dim": -3}, r"`hidden_dim` must be a positive integer, received -3"),
        ({"embedding_dim": 32}, r"`embedding_dim` \(32\) must not exceed `hidden_dim` \(16\)"),
        ({"position_embedding": "rotary"}, r"`position_embedding` must be one of"),
        ({"dropout": 1.5}, r"`dropout` must be a number in \[0, 1\), received 1.5"),
    ],
)
def test_invalid_arguments(kwargs, message):
    arguments = dict({"vocabulary_size": 50, "hidden_dim": 16}, **kwargs)
    with pytest.raises(ValueError, match=message):
        BertEmbeddings(**arguments)
