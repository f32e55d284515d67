"""The one shared helper that turns a layer or network test into a few lines.

`run_layer_test` checks, for a layer class and constructor arguments:
1. `get_config` round-trips through JSON and through
   `keras.saving.serialize_keras_object` to an equal config of the same class;
2. eager outputs have the expected shapes and dtypes, and the weight count;
3. symbolic (KerasTensor) outputs have the same shapes with a free batch axis;
4. a layer rebuilt from the config and given the same weights gives identical
   outputs;
5. one `fit` step runs, gives a finite loss and moves the trainable weights;
6. every precision policy (`mixed_float16`, `mixed_bfloat16`, `bfloat16`),
   set on the layer only, never globally, gives finite outputs of the policy's
   compute dtype.
"""

import json
import os

import keras
import numpy as np
from keras import ops

# realpath: under Bazel, __file__ is a runfiles symlink to the source tree.
SHARED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "..", "shared")
SHARED_DIR = os.path.normpath(os.environ.get("KERAS_BERT_SHARED_DIR", SHARED_DIR))

PRECISION_POLICIES = ("mixed_float16", "mixed_bfloat16", "bfloat16")


def to_numpy(value):
    """A numpy array of a tensor, variable or array."""
    return np.asarray(ops.convert_to_numpy(value))


def shared_path(*parts):
    """Path under the read-only `../shared` folder of the repository."""
    return os.path.join(SHARED_DIR, *parts)


def _float_outputs(outputs):
    return [
        t
        for t in keras.tree.flatten(outputs)
        if "float" in keras.backend.standardize_dtype(t.dtype)
    ]


def _assert_config_round_trip(layer_cls, layer):
    config = layer.get_config()
    restored_config = json.loads(json.dumps(config))
    restored = layer_cls.from_config(restored_config)
    assert type(restored) is layer_cls, f"from_config returned {type(restored)}"
    assert restored.get_config() == config

    serialized = keras.saving.serialize_keras_object(layer)
    serialized = json.loads(json.dumps(serialized))
    deserialized = keras.saving.deserialize_keras_object(serialized)
    assert type(deserialized) is layer_cls
    assert deserialized.get_config() == config
    return restored


def _symbolic(value):
    value = ops.convert_to_tensor(value)
    shape = (None,) + tuple(value.shape[1:])
    return keras.Input(batch_shape=shape, dtype=keras.backend.standardize_dtype(value.dtype))


class _SumOfMeans(keras.layers.Layer):
    """Reduces every float output to one `(batch_size, 1)` training target."""

    def call(self, outputs):
        total = 0.0
        for tensor in _float_outputs(outputs):
            tensor = ops.cast(tensor, "float32")
            axes = tuple(range(1, len(tensor.shape)))
            total = total + ops.mean(tensor, axis=axes) if axes else total + tensor
        return ops.expand_dims(total, -1)


def _call(layer, inputs, call_kwargs, training=None):
    kwargs = dict(call_kwargs or {})
    if training is not None:
        kwargs["training"] = training
    return layer(*inputs, **kwargs)


def _assert_fit_step(layer, inputs, call_kwargs):
    """Wraps `layer` in a functional model and takes one optimizer step."""
    symbolic_inputs = keras.tree.map_structure(_symbolic, list(inputs))
    symbolic_kwargs = {
        k: _symbolic(v) for k, v in (call_kwargs or {}).items() if _is_array(v)
    }
    static_kwargs = {k: v for k, v in (call_kwargs or {}).items() if not _is_array(v)}
    outputs = layer(*symbolic_inputs, **symbolic_kwargs, **static_kwargs)
    target = _SumOfMeans()(outputs)
    model = keras.Model(
        inputs=[symbolic_inputs, symbolic_kwargs], outputs=target
    )
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    before = [to_numpy(w) for w in layer.trainable_weights]
    batch_size = int(ops.shape(keras.tree.flatten(inputs)[0])[0])
    real_kwargs = {k: v for k, v in (call_kwargs or {}).items() if _is_array(v)}
    history = model.fit(
        [list(inputs), real_kwargs],
        np.ones((batch_size, 1), "float32"),
        batch_size=batch_size,
        epochs=1,
        verbose=0,
    )
    loss = history.history["loss"][0]
    assert np.isfinite(loss), f"fit step gave loss {loss}"
    after = [to_numpy(w) for w in layer.trainable_weights]
    moved = sum(not np.array_equal(a, b) for a, b in zip(before, after))
    assert moved > 0, "one fit step changed no trainable weight"


def _is_array(value):
    return isinstance(value, np.ndarray) or hasattr(value, "dtype") and hasattr(value, "shape")


def run_layer_test(
    layer_cls,
    init_kwargs,
    inputs,
    call_kwargs=None,
    expected_output_shape=None,
    expected_num_trainable_weights=None,
    expected_num_params=None,
    run_training_check=True,
    run_precision_checks=True,
):
    """Runs the standard checks on `layer_cls(**init_kwargs)`.

    Args:
        layer_cls: a `keras.layers.Layer` or `keras.Model` subclass.
        init_kwargs: dict. Constructor arguments.
        inputs: tuple of positional call arguments (numpy arrays or dicts).
        call_kwargs: dict. Keyword call arguments (arrays are treated as inputs).
        expected_output_shape: a shape tuple, or a structure of shape tuples
            matching the outputs.
        expected_num_trainable_weights: int. Number of trainable variables.
        expected_num_params: int. Total number of scalar parameters.
        run_training_check: bool. Whether to take a `fit` step.
        run_precision_checks: bool. Whether to run every precision policy.

    Returns:
        The eager outputs of the float32 layer.
    """
    inputs = tuple(inputs)
    layer = layer_cls(**init_kwargs)
    restored = _assert_config_round_trip(layer_cls, layer)

    outputs = _call(layer, inputs, call_kwargs, training=False)
    if expected_output_shape is not None:
        actual = keras.tree.map_structure(lambda t: tuple(t.shape), outputs)
        assert _shapes_equal(actual, expected_output_shape), (
            f"eager output shapes {actual} != expected {expected_output_shape}"
        )
    for tensor in _float_outputs(outputs):
        assert keras.backend.standardize_dtype(tensor.dtype) == "float32"
        assert np.all(np.isfinite(to_numpy(tensor)))
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights, (
            f"{len(layer.trainable_weights)} trainable weights, "
            f"expected {expected_num_trainable_weights}"
        )
    if expected_num_params is not None:
        assert layer.count_params() == expected_num_params, (
            f"{layer.count_params()} parameters, expected {expected_num_params}"
        )

    # Symbolic outputs: same shapes with a free batch axis.
    symbolic_inputs = keras.tree.map_structure(_symbolic, list(inputs))
    symbolic_kwargs = {
        k: (_symbolic(v) if _is_array(v) else v) for k, v in (call_kwargs or {}).items()
    }
    symbolic_outputs = layer_cls(**init_kwargs)(*symbolic_inputs, **symbolic_kwargs)
    actual = keras.tree.map_structure(lambda t: tuple(t.shape)[1:], symbolic_outputs)
    eager = keras.tree.map_structure(lambda t: tuple(t.shape)[1:], outputs)
    assert _shapes_equal(actual, eager, allow_none=True), (
        f"symbolic output shapes {actual} != eager {eager}"
    )

    # A layer rebuilt from config with the same weights computes the same thing.
    _call(restored, inputs, call_kwargs, training=False)
    restored.set_weights(layer.get_weights())
    restored_outputs = _call(restored, inputs, call_kwargs, training=False)
    for a, b in zip(keras.tree.flatten(outputs), keras.tree.flatten(restored_outputs)):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))

    if run_training_check:
        _assert_fit_step(layer_cls(**init_kwargs), inputs, call_kwargs)

    if run_precision_checks:
        for policy in PRECISION_POLICIES:
            mixed = layer_cls(**dict(init_kwargs, dtype=policy))
            mixed_outputs = _call(mixed, inputs, call_kwargs, training=False)
            compute_dtype = keras.DTypePolicy(policy).compute_dtype
            for tensor in _float_outputs(mixed_outputs):
                assert keras.backend.standardize_dtype(tensor.dtype) == compute_dtype, (
                    f"{policy}: output dtype {tensor.dtype}, expected {compute_dtype}"
                )
                assert np.all(np.isfinite(to_numpy(ops.cast(tensor, "float32")))), policy
    return outputs


def _shapes_equal(actual, expected, allow_none=False):
    actual_flat = _flatten_shapes(actual)
    expected_flat = _flatten_shapes(expected)
    if len(actual_flat) != len(expected_flat):
        return False
    for a, e in zip(actual_flat, expected_flat):
        if len(a) != len(e):
            return False
        for x, y in zip(a, e):
            if x != y and not (allow_none and (x is None or y is None)):
                return False
    return True


def _is_shape(value):
    return isinstance(value, tuple) and all(v is None or isinstance(v, int) for v in value)


def _flatten_shapes(structure):
    if _is_shape(structure):
        return [structure]
    if isinstance(structure, dict):
        return [s for key in sorted(structure) for s in _flatten_shapes(structure[key])]
    return [s for item in structure for s in _flatten_shapes(item)]
