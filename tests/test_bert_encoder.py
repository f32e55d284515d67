import json

import keras
import numpy as np
import pytest

from keras_bert import BertEncoder
from keras_bert.bert_encoder import PRESETS
from tests.test_case import run_layer_test, to_numpy

TINY = {
    "vocabulary_size": 60,
    "num_layers": 2,
    "num_heads": 2,
    "hidden_dim": 16,
    "intermediate_dim": 32,
    "max_sequence_length": 24,
}
RNG = np.random.default_rng(3)
TOKEN_IDS = RNG.integers(1, 60, size=(2, 9)).astype("int32")
INPUTS = {
    "token_ids": TOKEN_IDS,
    "segment_ids": np.array([[0] * 5 + [1] * 4, [0] * 9], "int32"),
    "padding_mask": np.array([[1] * 9, [1] * 6 + [0] * 3], "int32"),
}


def _outputs(encoder, inputs=INPUTS, **kwargs):
    return keras.tree.map_structure(to_numpy, encoder(inputs, **kwargs))


def test_network_basics():
    outputs = run_layer_test(
        BertEncoder,
        TINY,
        (INPUTS,),
        expected_output_shape={
            "sequence_output": (2, 9, 16),
            "pooled_output": (2, 16),
            "encoder_outputs": [(2, 9, 16)] * 3,
        },
    )
    assert set(outputs) == {"sequence_output", "pooled_output", "encoder_outputs"}


@pytest.mark.parametrize(
    "preset, expected_params",
    [
        # Published sizes with the pooler and a 30,522-token vocabulary.
        ("bert_base", 109_482_240),
        ("bert_large", 335_141_888),
    ],
)
def test_published_parameter_counts(preset, expected_params):
    assert BertEncoder.from_preset(preset).count_params() == expected_params


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_shapes(preset):
    config = BertEncoder.preset_config(preset)
    assert config["intermediate_dim"] == 4 * config["hidden_dim"]
    assert config["hidden_dim"] // config["num_heads"] == 64
    assert config["vocabulary_size"] == 30522


def test_from_preset_applies_overrides():
    encoder = BertEncoder.from_preset("bert_tiny", dropout=0.0, vocabulary_size=100)
    assert isinstance(encoder, BertEncoder)
    assert encoder.dropout == 0.0
    assert encoder.token_embedding.embeddings.shape == (100, 128)


def test_sequence_output_is_last_encoder_output_and_dropout_off_at_inference():
    encoder = BertEncoder(**TINY)
    first = _outputs(encoder)
    second = _outputs(encoder)
    np.testing.assert_array_equal(first["sequence_output"], first["encoder_outputs"][-1])
    np.testing.assert_array_equal(first["sequence_output"], second["sequence_output"])


def test_variable_sequence_length():
    encoder = BertEncoder(**TINY)
    for length in (1, 5, 24):
        ones = np.ones((3, length), "int32")
        outputs = _outputs(
            encoder, {"token_ids": ones, "segment_ids": 0 * ones, "padding_mask": ones}
        )
        assert outputs["sequence_output"].shape == (3, length, 16)


def test_padding_does_not_change_real_positions():
    encoder = BertEncoder(**TINY)
    short = {k: v[:1, :5] for k, v in INPUTS.items()}
    short["padding_mask"] = np.ones((1, 5), "int32")
    padded = {
        "token_ids": np.concatenate([short["token_ids"], np.full((1, 11), 7, "int32")], 1),
        "segment_ids": np.concatenate([short["segment_ids"], np.ones((1, 11), "int32")], 1),
        "padding_mask": np.concatenate([short["padding_mask"], np.zeros((1, 11), "int32")], 1),
    }
    a, b = _outputs(encoder, short), _outputs(encoder, padded)
    for x, y in zip(a["encoder_outputs"], b["encoder_outputs"]):
        np.testing.assert_allclose(x, y[:, :5], atol=1e-5)
    np.testing.assert_allclose(a["pooled_output"], b["pooled_output"], atol=1e-5)


def test_keras_file_round_trip(tmp_path):
    encoder = BertEncoder(**dict(TINY, embedding_dim=8, position_embedding="sinusoidal"))
    path = str(tmp_path / "encoder.keras")
    encoder.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(restored, BertEncoder)
    assert restored.get_config() == encoder.get_config()
    a, b = _outputs(encoder), _outputs(restored)
    for x, y in zip(keras.tree.flatten(a), keras.tree.flatten(b)):
        np.testing.assert_array_equal(x, y)


def test_pre_layer_norm_variant_runs_and_round_trips():
    encoder = BertEncoder(**dict(TINY, norm_first=True))
    assert encoder.final_layer_norm is not None
    restored = BertEncoder.from_config(json.loads(json.dumps(encoder.get_config())))
    restored.set_weights(encoder.get_weights())
    np.testing.assert_array_equal(
        _outputs(encoder)["sequence_output"], _outputs(restored)["sequence_output"]
    )


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_tracks_float32(policy):
    reference = BertEncoder(**TINY)
    mixed = BertEncoder(**dict(TINY, dtype=policy))
    mixed.set_weights(reference.get_weights())
    expected = _outputs(reference)["sequence_output"]
    actual = to_numpy(keras.ops.cast(mixed(INPUTS)["sequence_output"], "float32"))
    assert mixed.embeddings_layer.embeddings_layer_norm.compute_dtype == "float32"
    mask = INPUTS["padding_mask"].astype(bool)
    # Layer-normalised outputs have unit scale; bfloat16 keeps ~3 significant digits.
    assert np.abs(actual[mask] - expected[mask]).max() < 0.1


def test_jit_compile_matches_eager():
    encoder = BertEncoder(**TINY)
    eager = _outputs(encoder)
    import tensorflow as tf

    compiled = tf.function(lambda x: encoder(x, training=False), jit_compile=True)
    xla = keras.tree.map_structure(to_numpy, compiled(INPUTS))
    np.testing.assert_allclose(eager["sequence_output"], xla["sequence_output"], atol=1e-5)
    np.testing.assert_allclose(eager["pooled_output"], xla["pooled_output"], atol=1e-5)


def test_fit_with_jit_compile_under_mixed_bfloat16():
    encoder = BertEncoder(**dict(TINY, dtype="mixed_bfloat16"))
    inputs = {k: keras.Input(shape=(None,), dtype="int32", name=k) for k in INPUTS}
    logits = keras.layers.Dense(2, dtype="float32")(encoder(inputs)["pooled_output"])
    model = keras.Model(inputs, logits)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    history = model.fit(INPUTS, np.array([0, 1]), epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"]))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"hidden_dim": 15}, r"`hidden_dim` \(15\) must be divisible by `num_heads` \(2\)"),
        ({"num_layers": 0}, r"`num_layers` must be a positive integer, received 0"),
        ({"intermediate_dim": -1}, r"`intermediate_dim` must be a positive integer, received -1"),
        ({"vocabulary_size": 2.5}, r"`vocabulary_size` must be a positive integer, received 2.5"),
        ({"hidden_size": 16}, r"Unknown `BertEncoder` config keys: \['hidden_size'\]"),
        ({"position_embedding": "relative"}, r"`position_embedding` must be one of"),
        ({"use_dot_product_attention": True}, r"`use_dot_product_attention=True` needs `attention_dropout=0`"),
        ({"use_dot_product_attention": 1}, r"`use_dot_product_attention` must be a bool, received 1"),
    ],
)
def test_invalid_config(overrides, message):
    with pytest.raises(ValueError, match=message):
        BertEncoder.from_config(dict(TINY, **overrides))


def test_unknown_preset_and_override():
    with pytest.raises(ValueError, match=r"Unknown preset 'bert_huge'"):
        BertEncoder.from_preset("bert_huge")
    with pytest.raises(ValueError, match=r"Unknown `BertEncoder` config keys for preset 'bert_tiny': \['dropout_rate'\]"):
        BertEncoder.from_preset("bert_tiny", dropout_rate=0.0)


def test_pooled_output_is_the_pooler_on_the_first_sequence_output():
    encoder = BertEncoder(**TINY)
    outputs = _outputs(encoder)
    expected = to_numpy(encoder.pooler_dense(outputs["sequence_output"][:, 0]))
    np.testing.assert_allclose(outputs["pooled_output"], expected, atol=1e-6)


def test_pooled_output_does_not_depend_on_the_last_blocks_other_queries():
    # TensorFlow drops what the requested outputs do not depend on; a [CLS]
    # classifier must not depend on the last block's rows for positions 1...
    import tensorflow as tf

    batch_size, length = 3, 12
    rest_rows = batch_size * (length - 1)  # 33: no other dimension of TINY.
    encoder = BertEncoder(**TINY)
    spec = {k: tf.TensorSpec((batch_size, length), tf.int32) for k in INPUTS}

    def shapes_reaching(output_name):
        graph = tf.function(lambda x: encoder(x)[output_name]).get_concrete_function(spec).graph
        seen, stack, shapes = set(), list(graph.outputs), []
        while stack:
            tensor = stack.pop()
            if tensor.op.name in seen:
                continue
            seen.add(tensor.op.name)
            shapes.extend(tuple(t.shape.as_list()) for t in tensor.op.outputs if t.shape.rank)
            stack.extend(tensor.op.inputs)
        return shapes

    def has_rest_rows(shapes):
        return any(shape[0] == rest_rows or shape[:2] == [batch_size, length - 1] for shape in map(list, shapes))

    assert has_rest_rows(shapes_reaching("sequence_output"))
    assert not has_rest_rows(shapes_reaching("pooled_output"))


def test_dot_product_attention_matches_explicit_attention():
    explicit = BertEncoder(**dict(TINY, attention_dropout=0.0))
    fused = BertEncoder(**dict(TINY, attention_dropout=0.0, use_dot_product_attention=True))
    fused.set_weights(explicit.get_weights())
    assert fused.get_config()["use_dot_product_attention"] is True
    a, b = _outputs(explicit), _outputs(fused)
    mask = INPUTS["padding_mask"].astype(bool)
    np.testing.assert_allclose(a["sequence_output"][mask], b["sequence_output"][mask], atol=1e-5)
    np.testing.assert_allclose(a["pooled_output"], b["pooled_output"], atol=1e-5)


def test_fit_with_loss_scaling_and_jit_compile_under_mixed_float16():
    encoder = BertEncoder(**dict(TINY, dtype="mixed_float16"))
    inputs = {k: keras.Input(shape=(None,), dtype="int32", name=k) for k in INPUTS}
    logits = keras.layers.Dense(2, dtype="float32")(encoder(inputs)["pooled_output"])
    model = keras.Model(inputs, logits)
    # The policy is set on the encoder, not globally, so the loss scaling is explicit.
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-3))
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    before = to_numpy(encoder.token_embedding.embeddings)
    history = model.fit(INPUTS, np.array([0, 1]), epochs=3, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    assert not np.array_equal(before, to_numpy(encoder.token_embedding.embeddings))
    assert float(to_numpy(optimizer.dynamic_scale)) > 1.0


def test_bias_free_encoder_has_no_bias_weights_and_round_trips(tmp_path):
    with_bias = BertEncoder(**dict(TINY, norm_first=True))
    encoder = BertEncoder(**dict(TINY, use_bias=False, norm_first=True))
    names = [weight.path for weight in encoder.weights]
    block_biases = [n for n in names if "transformer_layer" in n and n.endswith("bias")]
    assert block_biases == []
    # 4 attention + 2 feed-forward biases per block are gone; the layer norms keep theirs.
    removed = with_bias.count_params() - encoder.count_params()
    assert removed == TINY["num_layers"] * (4 * 16 + 32 + 16)
    path = str(tmp_path / "encoder.keras")
    encoder.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert restored.use_bias is False and restored.get_config() == encoder.get_config()
    np.testing.assert_array_equal(
        _outputs(encoder)["sequence_output"], _outputs(restored)["sequence_output"]
    )


def test_bias_free_block_equals_a_block_with_zero_biases():
    with_bias = BertEncoder(**TINY)
    without = BertEncoder(**dict(TINY, use_bias=False))
    for variable in with_bias.weights:
        if "transformer_layer" in variable.path and variable.path.endswith("bias"):
            variable.assign(np.zeros(variable.shape, "float32"))
    kept = {w.path: w for w in with_bias.weights}
    for variable in without.weights:
        variable.assign(kept[variable.path])
    a = _outputs(with_bias, training=False)["sequence_output"]
    b = _outputs(without, training=False)["sequence_output"]
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_embedding_layer_norm_can_be_left_out():
    encoder = BertEncoder(**dict(TINY, embedding_layer_norm=False, norm_first=True))
    assert encoder.embeddings_layer.embeddings_layer_norm is None
    assert not any("embeddings_layer_norm" in w.path for w in encoder.weights)
    embeddings = encoder.embeddings_layer
    expected = (
        to_numpy(embeddings.token_embedding(TOKEN_IDS))
        + to_numpy(embeddings.segment_embedding(INPUTS["segment_ids"]))
        + to_numpy(embeddings.position_embeddings)[None, :9]
    )
    np.testing.assert_allclose(_outputs(encoder)["encoder_outputs"][0], expected, atol=1e-6)
    restored = BertEncoder.from_config(json.loads(json.dumps(encoder.get_config())))
    assert restored.embeddings_layer.embeddings_layer_norm is None


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"use_bias": 1}, r"`use_bias` must be a bool"),
        ({"embedding_layer_norm": "no"}, r"`embedding_layer_norm` must be a bool"),
    ],
)
def test_invalid_recipe_arguments(overrides, message):
    with pytest.raises(ValueError, match=message):
        BertEncoder(**dict(TINY, **overrides))


def test_budget_architecture_under_mixed_bfloat16_tracks_float32():
    budget = dict(TINY, norm_first=True, use_bias=False, embedding_layer_norm=False,
                  initializer_range=0.05)
    reference = BertEncoder(**budget)
    mixed = BertEncoder(**dict(budget, dtype="mixed_bfloat16"))
    mixed.set_weights(reference.get_weights())
    expected = _outputs(reference)["sequence_output"]
    actual = to_numpy(keras.ops.cast(mixed(INPUTS)["sequence_output"], "float32"))
    mask = INPUTS["padding_mask"].astype(bool)
    # The final layer norm gives unit scale; bfloat16 keeps ~3 significant digits.
    assert np.abs(actual[mask] - expected[mask]).max() < 0.1
