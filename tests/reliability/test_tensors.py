"""Bad tensors into the encoder: each gets a clear error naming the input, or a safe result."""

import re

import numpy as np
import pytest
import tensorflow as tf

import keras_bert
from tests.test_case import to_numpy

VOCABULARY_SIZE = 50
MAX_LENGTH = 8


@pytest.fixture(scope="module")
def encoder():
    return keras_bert.BertEncoder(
        vocabulary_size=VOCABULARY_SIZE, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=MAX_LENGTH, dropout=0.0,
    )


def inputs(token_ids, segment_ids=None, padding_mask=None):
    token_ids = np.asarray(token_ids)
    return {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids) if segment_ids is None else np.asarray(segment_ids),
        "padding_mask": np.ones_like(token_ids) if padding_mask is None else np.asarray(padding_mask),
    }


@pytest.mark.parametrize(
    "batch, message",
    [
        (inputs([[1, 2, 50]]), r"`token_ids` must be in \[0, 50\) \(`vocabulary_size` is 50\), "
                               r"received values from 1 to 50"),
        (inputs([[1, -1, 3]]), r"`token_ids` must be in \[0, 50\).*received values from -1 to 3"),
        (inputs([[1, 2, 3]], segment_ids=[[0, 2, 0]]),
         r"`segment_ids` must be in \[0, 2\) \(`num_segments` is 2\), received values from 0 to 2"),
        (inputs(np.ones((1, 9), "int32")),
         r"`token_ids` has sequence length 9, longer than `max_sequence_length` \(8\)"),
        (inputs(np.ones((1, 3), "float32")), r"`token_ids` must be an integer tensor, received dtype float32"),
        ({**inputs([[1, 2, 3]]), "padding_mask": np.ones((1, 3), "float32")},
         r"`padding_mask` must be an integer tensor, received dtype float32"),
    ],
    ids=["token_id_too_large", "token_id_negative", "segment_id_too_large", "too_long",
         "float_token_ids", "float_padding_mask"],
)
def test_eager_call_rejects_bad_tensors(encoder, batch, message):
    with pytest.raises(ValueError, match=message):
        encoder(batch)


@pytest.mark.parametrize("shape", [(3,), (1, 3, 2)], ids=["rank_1", "rank_3"])
def test_wrong_rank_is_rejected(encoder, shape):
    with pytest.raises(
        ValueError,
        match=r"`token_ids` must have shape \(batch_size, sequence_length\), received shape " + re.escape(str(shape)),
    ):
        encoder(inputs(np.ones(shape, "int32")))


@pytest.mark.parametrize(
    "batch, predict_error, message",
    [
        (inputs([[1, 2, 50]]), tf.errors.InvalidArgumentError,
         r"`token_ids` must be in \[0, 50\) \(`vocabulary_size` is 50\)"),
        (inputs([[1, 2, 3]], segment_ids=[[0, 2, 0]]), tf.errors.InvalidArgumentError,
         r"`segment_ids` must be in \[0, 2\) \(`num_segments` is 2\)"),
        # `predict` traces with the batch's static length: the length check raises then.
        (inputs(np.ones((1, 9), "int32")), ValueError,
         r"`token_ids` has (a )?sequence length (9, )?longer than `max_sequence_length` \(8\)"),
    ],
    ids=["token_id_too_large", "segment_id_too_large", "too_long"],
)
def test_predict_and_graphs_assert_before_the_gather(encoder, batch, predict_error, message):
    # Inside a graph of unknown shapes an error is an InvalidArgumentError; the check runs
    # before the embedding gather, which would fail obscurely on CPU and return zeros on GPU.
    with pytest.raises(predict_error, match=message):
        encoder.predict(batch, verbose=0)
    serve = tf.function(
        lambda t, s, m: encoder({"token_ids": t, "segment_ids": s, "padding_mask": m}),
        input_signature=[tf.TensorSpec((None, None), tf.int32)] * 3,
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        serve(*(tf.constant(batch[name], tf.int32) for name in ("token_ids", "segment_ids", "padding_mask")))


def test_valid_ids_at_the_limits_pass(encoder):
    batch = inputs([[0, VOCABULARY_SIZE - 1] + [1] * (MAX_LENGTH - 2)], segment_ids=[[0, 1] * 4])
    eager = to_numpy(encoder(batch)["pooled_output"])
    predicted = encoder.predict(batch, verbose=0)["pooled_output"]
    np.testing.assert_allclose(predicted, eager, atol=1e-6)


def test_all_zero_padding_mask_gives_finite_outputs(encoder):
    # Documented safe behaviour: a row with no real token attends uniformly; outputs are
    # finite (never NaN) though meaningless.
    batch = inputs([[1, 2, 3, 4], [5, 6, 7, 8]], padding_mask=[[0, 0, 0, 0], [1, 1, 0, 0]])
    outputs = encoder(batch)
    for tensor in [outputs["sequence_output"], outputs["pooled_output"], *outputs["encoder_outputs"]]:
        assert np.isfinite(to_numpy(tensor)).all()
    # The other row is unaffected by the empty one.
    alone = to_numpy(encoder(inputs([[5, 6, 7, 8]], padding_mask=[[1, 1, 0, 0]]))["pooled_output"])
    np.testing.assert_allclose(to_numpy(outputs["pooled_output"])[1:], alone, atol=1e-5)


def test_batch_size_zero_gives_empty_outputs(encoder):
    outputs = encoder(inputs(np.zeros((0, 5), "int32")))
    assert tuple(outputs["sequence_output"].shape) == (0, 5, 16)
    assert tuple(outputs["pooled_output"].shape) == (0, 16)
    assert all(tuple(t.shape) == (0, 5, 16) for t in outputs["encoder_outputs"])
