import os
import shutil

import keras
import numpy as np
import pytest

from keras_bert import BertEncoder
from keras_bert.checkpoints import read_checkpoint
from keras_bert.models import BertPretrainer
from keras_bert.models.bert_pretrainer import HEAD_WEIGHT_NAMES
from tests.test_case import shared_path, to_numpy

TINY = dict(vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
GOOGLE_DIR = shared_path("models", "all-MiniLM-L6-v2-google-ckpt")


def _batch(batch_size=8, length=10, num_predictions=3, seed=0):
    rng = np.random.default_rng(seed)
    inputs = {
        "token_ids": rng.integers(5, 40, size=(batch_size, length)).astype("int32"),
        "segment_ids": np.zeros((batch_size, length), "int32"),
        "padding_mask": np.ones((batch_size, length), "int32"),
        "masked_positions": rng.integers(1, length, size=(batch_size, num_predictions)).astype(
            "int32"
        ),
    }
    weights = np.ones((batch_size, num_predictions), "float32")
    weights[::2, -1] = 0.0  # Padding predictions in every other example.
    labels = {
        "masked_ids": rng.integers(5, 40, size=(batch_size, num_predictions)).astype("int32"),
        "masked_weights": weights,
        "next_sentence_label": rng.integers(0, 2, size=(batch_size,)).astype("int32"),
    }
    return inputs, labels


def _log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def test_outputs_and_tied_weights():
    encoder = BertEncoder(**TINY)
    pretrainer = BertPretrainer(encoder)
    inputs, _ = _batch()
    outputs = pretrainer(inputs)
    assert tuple(outputs["mlm_logits"].shape) == (8, 3, 40)
    assert tuple(outputs["nsp_logits"].shape) == (8, 2)
    # Encoder + MLM head (transform kernel/bias, norm gamma/beta, output bias) + NSP dense.
    assert len(pretrainer.trainable_weights) == len(encoder.trainable_weights) + 5 + 2
    assert pretrainer.masked_lm_head.token_embedding is encoder.token_embedding
    before = to_numpy(outputs["mlm_logits"])
    table = encoder.token_embedding.embeddings
    table.assign(table * 3.0)
    assert not np.allclose(before, to_numpy(pretrainer(inputs)["mlm_logits"]))


def test_mixed_precision_logits_are_float32():
    pretrainer = BertPretrainer(BertEncoder(**TINY, dtype="mixed_bfloat16"))
    outputs = pretrainer(_batch()[0])
    for name in ("mlm_logits", "nsp_logits"):
        assert keras.backend.standardize_dtype(outputs[name].dtype) == "float32"


def test_loss_matches_the_formula():
    pretrainer = BertPretrainer(BertEncoder(**TINY, dropout=0.0))
    inputs, labels = _batch()
    outputs = pretrainer(inputs)
    loss = float(pretrainer.compute_loss(inputs, labels, outputs))

    mlm = _log_softmax(to_numpy(outputs["mlm_logits"]))
    mlm_ce = -np.take_along_axis(mlm, labels["masked_ids"][..., None], -1)[..., 0]
    weights = labels["masked_weights"]
    mlm_loss = (mlm_ce * weights).sum() / (weights.sum() + 1e-5)
    nsp = _log_softmax(to_numpy(outputs["nsp_logits"]))
    nsp_loss = -np.take_along_axis(nsp, labels["next_sentence_label"][:, None], -1).mean()
    np.testing.assert_allclose(loss, mlm_loss + nsp_loss, rtol=1e-5)


def test_fit_and_evaluate_report_the_metrics():
    inputs, labels = _batch(batch_size=32)
    # A learnable task: the masked id is the token at the first masked position.
    labels["masked_ids"] = np.take_along_axis(inputs["token_ids"], inputs["masked_positions"], 1)
    pretrainer = BertPretrainer(BertEncoder(**TINY, dropout=0.0))
    pretrainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = pretrainer.fit(inputs, labels, batch_size=16, epochs=20, verbose=0)
    for name in ("loss", "mlm_loss", "mlm_accuracy", "nsp_loss", "nsp_accuracy"):
        assert name in history.history
    assert history.history["mlm_accuracy"][-1] > 0.5
    assert history.history["loss"][-1] < history.history["loss"][0]
    results = pretrainer.evaluate(inputs, labels, batch_size=16, verbose=0, return_dict=True)
    assert results["mlm_accuracy"] > 0.5
    # Accuracy is weighted: padding predictions (weight 0) never count.
    correct = np.argmax(to_numpy(pretrainer(inputs)["mlm_logits"]), -1) == labels["masked_ids"]
    weights = labels["masked_weights"]
    np.testing.assert_allclose(
        results["mlm_accuracy"], (correct * weights).sum() / weights.sum(), rtol=1e-5
    )


def test_keras_file_round_trip(tmp_path):
    pretrainer = BertPretrainer(BertEncoder(**TINY))
    inputs, _ = _batch()
    expected = pretrainer(inputs)
    path = str(tmp_path / "pretrainer.keras")
    pretrainer.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(restored, BertPretrainer)
    assert restored.masked_lm_head.token_embedding is restored.encoder.token_embedding
    for name in ("mlm_logits", "nsp_logits"):
        np.testing.assert_array_equal(to_numpy(expected[name]), to_numpy(restored(inputs)[name]))
    # from_checkpoint on a .keras file, with an override that keeps the weights.
    reloaded = BertPretrainer.from_checkpoint(path, dropout=0.0)
    assert reloaded.heads_from_checkpoint and reloaded.encoder.dropout == 0.0
    np.testing.assert_array_equal(
        to_numpy(expected["mlm_logits"]), to_numpy(reloaded(inputs)["mlm_logits"])
    )


def _write_google_checkpoint(directory, heads):
    """The shared MiniLM Google checkpoint plus `heads` (cls/... tensors), as TF1 variables."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(GOOGLE_DIR, "bert_model.ckpt"))
    tensors = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    tensors.update(heads)
    with tf.Graph().as_default():
        variables = {
            name: tf.compat.v1.Variable(value, name=name) for name, value in tensors.items()
        }
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(
                session, os.path.join(directory, "bert_model.ckpt"), write_meta_graph=False
            )
    for name in ("bert_config.json", "vocab.txt"):
        shutil.copy(os.path.join(GOOGLE_DIR, name), directory)


def test_google_checkpoint_heads_are_imported(tmp_path):
    rng = np.random.default_rng(7)
    hidden, vocabulary = 384, 30522
    heads = {
        "cls/predictions/transform/dense/kernel": rng.normal(size=(hidden, hidden)),
        "cls/predictions/transform/dense/bias": rng.normal(size=(hidden,)),
        "cls/predictions/transform/LayerNorm/gamma": rng.normal(size=(hidden,)),
        "cls/predictions/transform/LayerNorm/beta": rng.normal(size=(hidden,)),
        "cls/predictions/output_bias": rng.normal(size=(vocabulary,)),
        "cls/seq_relationship/output_weights": rng.normal(size=(2, hidden)),
        "cls/seq_relationship/output_bias": rng.normal(size=(2,)),
    }
    heads = {name: value.astype("float32") for name, value in heads.items()}
    _write_google_checkpoint(str(tmp_path), heads)
    assert sorted(read_checkpoint(str(tmp_path)).head_weights) == sorted(HEAD_WEIGHT_NAMES)

    pretrainer = BertPretrainer.from_checkpoint(str(tmp_path), dropout=0.0)
    assert pretrainer.heads_from_checkpoint
    head = pretrainer.masked_lm_head
    np.testing.assert_array_equal(
        to_numpy(head.mlm_transform_dense.kernel), heads["cls/predictions/transform/dense/kernel"]
    )
    np.testing.assert_array_equal(
        to_numpy(head.mlm_layer_norm.gamma), heads["cls/predictions/transform/LayerNorm/gamma"]
    )
    np.testing.assert_array_equal(
        to_numpy(head.mlm_output_bias), heads["cls/predictions/output_bias"]
    )
    np.testing.assert_array_equal(
        to_numpy(pretrainer.nsp_dense.kernel), heads["cls/seq_relationship/output_weights"].T
    )
    # The next-sentence logits are pooled_output @ output_weights.T + output_bias.
    inputs = {
        "token_ids": np.array([[101, 7592, 103, 2088, 102, 0]], "int32"),
        "segment_ids": np.zeros((1, 6), "int32"),
        "padding_mask": np.array([[1, 1, 1, 1, 1, 0]], "int32"),
        "masked_positions": np.array([[2, 1]], "int32"),
    }
    pooled = to_numpy(
        pretrainer.encoder({k: v for k, v in inputs.items() if k != "masked_positions"})[
            "pooled_output"
        ]
    )
    expected = pooled @ heads["cls/seq_relationship/output_weights"].T + heads[
        "cls/seq_relationship/output_bias"
    ]
    np.testing.assert_allclose(
        to_numpy(pretrainer(inputs)["nsp_logits"]), expected, rtol=1e-4, atol=1e-4
    )


def test_checkpoint_without_heads_starts_them_at_random():
    pretrainer = BertPretrainer.from_checkpoint(GOOGLE_DIR)
    assert not pretrainer.heads_from_checkpoint
    assert tuple(pretrainer.masked_lm_head.mlm_output_bias.shape) == (30522,)


def test_head_weight_errors():
    pretrainer = BertPretrainer(BertEncoder(**TINY))
    weights = {
        name: np.zeros(tuple(pretrainer._head_variable(name).shape), "float32")
        for name in HEAD_WEIGHT_NAMES
    }
    with pytest.raises(ValueError, match=r"Unknown pretraining head weights \['cls/extra'\]"):
        pretrainer.load_head_weights(dict(weights, **{"cls/extra": np.zeros(1)}))
    with pytest.raises(ValueError, match=r"`head_weights` lacks \['nsp_dense/bias'\]"):
        pretrainer.load_head_weights({k: v for k, v in weights.items() if k != "nsp_dense/bias"})
    wrong = dict(weights, **{"nsp_dense/kernel": np.zeros((2, 8), "float32")})
    with pytest.raises(
        ValueError, match=r"Head weight 'nsp_dense/kernel' has shape \(2, 8\), expected \(8, 2\)"
    ):
        pretrainer.load_head_weights(wrong)
    pretrainer.load_head_weights(weights)
    assert not np.any(to_numpy(pretrainer.nsp_dense.kernel))


def test_label_and_argument_errors():
    pretrainer = BertPretrainer(BertEncoder(**TINY))
    inputs, labels = _batch()
    outputs = pretrainer(inputs)
    with pytest.raises(ValueError, match=r"labels must be a dict with keys"):
        pretrainer.compute_loss(inputs, {"masked_ids": labels["masked_ids"]}, outputs)
    with pytest.raises(ValueError, match=r"takes no `sample_weight`"):
        pretrainer.compute_loss(inputs, labels, outputs, sample_weight=np.ones(8))
    with pytest.raises(ValueError, match=r"`initializer_range` must be a positive number"):
        BertPretrainer(BertEncoder(**TINY), initializer_range=-1.0)


def test_untied_head_owns_its_table_and_round_trips(tmp_path):
    encoder = BertEncoder(**TINY)
    pretrainer = BertPretrainer(encoder, tie_embeddings=False)
    inputs, _ = _batch()
    expected = to_numpy(pretrainer(inputs)["mlm_logits"])
    head = pretrainer.masked_lm_head
    assert head.token_embedding is None
    assert tuple(head.output_embeddings.shape) == (40, 8)
    # One more weight than the tied pretrainer: the head's own (vocabulary_size, hidden_dim) table.
    assert len(pretrainer.trainable_weights) == len(encoder.trainable_weights) + 6 + 2
    path = str(tmp_path / "untied.keras")
    pretrainer.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert restored.tie_embeddings is False and restored.masked_lm_head.token_embedding is None
    np.testing.assert_array_equal(expected, to_numpy(restored(inputs)["mlm_logits"]))


def test_nsp_loss_weight_scales_the_next_sentence_loss(tmp_path):
    pretrainer = BertPretrainer(BertEncoder(**TINY, dropout=0.0))
    weighted = BertPretrainer(BertEncoder(**TINY, dropout=0.0), nsp_loss_weight=3.0)
    weighted.set_weights(pretrainer.get_weights())
    inputs, labels = _batch()
    outputs = pretrainer(inputs)
    plain = float(pretrainer.compute_loss(inputs, labels, outputs))
    heavy = float(weighted.compute_loss(inputs, labels, weighted(inputs)))
    nsp = _log_softmax(to_numpy(outputs["nsp_logits"]))
    nsp_loss = -np.take_along_axis(nsp, labels["next_sentence_label"][:, None], -1).mean()
    np.testing.assert_allclose(heavy - plain, 2.0 * nsp_loss, rtol=1e-4)
    path = str(tmp_path / "weighted.keras")
    weighted.save(path)
    assert keras.saving.load_model(path, safe_mode=True).nsp_loss_weight == 3.0


def test_segment_means_add_their_logits_to_the_cls_head(tmp_path):
    plain = BertPretrainer(BertEncoder(**TINY, dropout=0.0))
    pretrainer = BertPretrainer(BertEncoder(**TINY, dropout=0.0), nsp_segment_means=True)
    # One more weight: the segment head's (2 * hidden_dim, 2) kernel, starting at zero.
    assert len(pretrainer.trainable_weights) == len(plain.trainable_weights) + 1
    assert tuple(pretrainer.segment_pair_head.kernel.shape) == (16, 2)
    pretrainer.set_weights(plain.get_weights() + [np.zeros((16, 2), "float32")])
    inputs, _ = _batch()
    inputs["segment_ids"][:, 5:] = 1  # [CLS] A A A [SEP] B B B B [SEP]
    np.testing.assert_array_equal(
        to_numpy(plain(inputs)["nsp_logits"]), to_numpy(pretrainer(inputs)["nsp_logits"])
    )
    kernel = np.random.default_rng(3).normal(size=(16, 2)).astype("float32")
    pretrainer.segment_pair_head.kernel.assign(kernel)
    sequence = to_numpy(pretrainer.encoder(
        {name: inputs[name] for name in ("token_ids", "segment_ids", "padding_mask")}
    )["sequence_output"])
    a, b = sequence[:, 1:4].mean(1), sequence[:, 5:9].mean(1)
    expected = to_numpy(plain(inputs)["nsp_logits"]) + np.concatenate([a * b, abs(a - b)], -1) @ kernel
    outputs = pretrainer(inputs)
    np.testing.assert_allclose(to_numpy(outputs["nsp_logits"]), expected, rtol=1e-4, atol=1e-5)
    path = str(tmp_path / "segments.keras")
    pretrainer.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert restored.nsp_segment_means is True
    np.testing.assert_array_equal(
        to_numpy(outputs["nsp_logits"]), to_numpy(restored(inputs)["nsp_logits"])
    )
    # from_checkpoint with an override rebuilds the same heads.
    reloaded = BertPretrainer.from_checkpoint(path, dropout=0.0)
    assert reloaded.nsp_segment_means is True


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tie_embeddings": "yes"}, r"`tie_embeddings` must be a bool"),
        ({"nsp_loss_weight": 0.0}, r"`nsp_loss_weight` must be a positive"),
        ({"nsp_segment_means": 1}, r"`nsp_segment_means` must be a bool"),
    ],
)
def test_invalid_head_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BertPretrainer(BertEncoder(**TINY), **kwargs)
