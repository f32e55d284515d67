"""Full-integer (int8) quantization of the token-id model, naive and selective.

Naive full-integer quantization of BERT loses accuracy: a few channels of the residual stream
(LayerNorm outputs, feed-forward outputs, residual additions) carry activations tens of times
larger than the rest, so one int8 scale per tensor leaves the ordinary channels a handful of levels
(Bondarenko et al., "Understanding and Overcoming the Challenges of Efficient Transformer
Quantization", 2021).

Measured on MiniLM fine-tuned on SST-2 (agreement with the float model on 400 held-out texts):
naive 93.8%; ranking single ops by their own (local) quantization error from the quantization
debugger and keeping the worst 83 in float: 96.8%; only the matrix multiplications in int8: 96.5%;
the same plus the feed-forward output layers in float: 99.0%. The damage is spread over every
instance of a few roles, so ops are chosen by role and layer, by the end-to-end error they cause.

The selective scheme: ops are grouped by their role in the encoder (attention projections,
attention scores, feed-forward input and output layers, layer norms, residual additions,
embeddings, head) and layer. Starting from the naive model, it keeps in float, one at a time, the
role whose float version most reduces the logit error against the float model on held-out
calibration text (never the evaluation file), until agreement and logit error both meet their
targets. Then it puts back into int8, layer by layer and the matrix multiplications first, every
part of the chosen roles that the targets can spare.
The TFLite quantization debugger's calibrated model and `denylisted_nodes` do the requantizing.

What "kept in float" means is the `fallback`: `dynamic` (the default) keeps only the activations
of those ops float and still stores their weights in int8 (`flatbuffer.quantize_float_weights`):
their fully connected layers then run dynamically quantized, in int8 arithmetic with a range
measured per call, which is what outlier activations need. Every weight of the file is int8 and
every fully connected layer computes in int8. `float` keeps them wholly float32 (weights too).
The search measures the model it will ship, so it accounts for the fallback's own error.
"""

import collections
import re
import time

import numpy as np
import tensorflow as tf

from export.core import flatbuffer
from export.core import litert
from keras_bert.inputs import INPUT_NAMES
from keras_bert.inputs import trim_to_longest

# The quantization debugger (used here for its calibrated model and `denylisted_nodes`) wants
# examples of one fixed shape: calibration texts cut to this many real tokens, no padding.
DEBUG_LENGTH = 24


def calibration_examples(packed):
    """Dicts of int32 `(1, length)` arrays, each example cut to its real length."""
    return [
        trim_to_longest({name: packed[name][i:i + 1] for name in INPUT_NAMES})
        for i in range(len(packed["padding_mask"]))
    ]


def _representative_dataset(examples):
    def generate():
        for example in examples:
            yield dict(example)

    return generate


def _debug_dataset(examples, input_order):
    def generate():
        for example in examples:
            yield [example[name] for name in input_order]

    return generate


def _input_order(content):
    """Input names in the interpreter's tensor order (the debugger feeds by position)."""
    interpreter = litert.make_interpreter(model_content=content)
    details = sorted(interpreter.get_input_details(), key=lambda detail: detail["index"])
    names = []
    for detail in details:
        matches = [name for name in INPUT_NAMES if name in detail["name"]]
        if len(matches) != 1:
            raise ValueError(f"Cannot tell which input the tensor {detail['name']!r} is.")
        names.append(matches[0])
    return names


def int8_converter(saved_model_path, calibration):
    """A converter for full-integer quantization calibrated on `calibration` examples.

    Inputs stay int32 token ids and the logits float32; every op that has an int8 kernel is
    quantized, the others (none in this model) would stay float.
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_path)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative_dataset(calibration)
    return converter


ROLES = (
    "embeddings", "attention_projections", "attention_scores", "layer_norm", "residual",
    "ffn_intermediate", "ffn_output", "head",
)
_NOT_COMPUTE = frozenset(("QUANTIZE", "DEQUANTIZE"))


def op_role(op_name, tensor_name):
    """`(role, layer)` of an op of the encoder, from its type and output tensor name.

    The names are those of `keras_bert`'s layers (`transformer_layer_3/self_attention_layer/...`,
    `feedforward_output_dense`, `self_attention_layer_norm`, ...); `layer` is the block index,
    or -1 outside the blocks.
    """
    match = re.search(r"transformer_layer_(\d+)", tensor_name)
    layer = int(match.group(1)) if match else -1
    if "layer_norm" in tensor_name:
        return "layer_norm", layer
    if "feedforward_output" in tensor_name:
        return "ffn_output", layer
    if "feedforward_intermediate" in tensor_name or op_name == "GELU":
        return "ffn_intermediate", layer
    if "self_attention_layer" in tensor_name:
        if op_name in ("BATCH_MATMUL", "SOFTMAX", "SELECT_V2"):
            return "attention_scores", layer
        return "attention_projections", layer
    if layer >= 0:
        return "residual", layer
    if "embeddings" in tensor_name:
        return "embeddings", layer
    return "head", layer


def op_groups(content):
    """`{(role, layer): [output tensor names]}` of the quantizable ops of a `.tflite` model."""
    summary = flatbuffer.operator_outputs(content)
    groups = collections.defaultdict(list)
    for op_name, tensor_name in summary:
        if op_name in _NOT_COMPUTE:
            continue
        groups[op_role(op_name, tensor_name)].append(tensor_name)
    return dict(groups)


def _logits(content, examples):
    interpreter = litert.make_interpreter(model_content=content)
    runner = interpreter.get_signature_runner()
    return np.stack([np.asarray(runner(**example)["logits"])[0] for example in examples])


# Roles whose ops carry most of the multiply-accumulates come back into int8 first.
_RESTORE_ORDER = (
    "ffn_intermediate", "ffn_output", "attention_projections", "attention_scores", "head",
    "embeddings", "residual", "layer_norm",
)


FALLBACKS = ("dynamic", "float")


def quantize_int8(saved_model_path, float_model, calibration, validation,
                  target_agreement=0.995, mse_budget=0.002, max_float_roles=None,
                  fallback="dynamic", log=print):
    """Naive and selective full-integer models of the token-id SavedModel.

    Args:
        saved_model_path: str. The token-id SavedModel.
        float_model: bytes. Its float32 `.tflite` (the reference on `validation`).
        calibration: list of example dicts (int32 `(1, length)`): calibration text.
        validation: list of example dicts: held-out calibration text to choose with.
        target_agreement: float. Keep ops in float until this fraction of `validation`
            agrees with the float model...
        mse_budget: float. ...and the mean squared logit difference to the float model on
            `validation` is at most this (agreement on a few hundred texts alone is too coarse:
            a model can keep it while its logits drift).
        max_float_roles: int or None. Keep at most this many roles in float.
        fallback: str. `dynamic`: the ops kept in float get int8 weights (dynamic-range
            quantization); `float`: they stay float32.
        log: callable taking a str.

    Returns:
        dict: `naive` and `selective` (bytes), `float_groups` (the `role/layer` groups kept in
        float), `denylisted_nodes`, `search` (per step: the groups tried, agreement and logit
        error), `seconds`.
    """
    if fallback not in FALLBACKS:
        raise ValueError(f"`fallback` must be one of {FALLBACKS}, received {fallback!r}.")
    start = time.time()
    reference = _logits(float_model, validation)
    reference_labels = reference.argmax(axis=1)
    converter = int8_converter(saved_model_path, calibration)
    debug_set = debug_examples_from(calibration)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_dataset=_debug_dataset(debug_set, _input_order(float_model)),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(),
    )
    naive = debugger.get_nondebug_quantized_model()
    groups = op_groups(naive)
    cache = {}

    def evaluate(kept):
        """(agreement, logit mse, model) with the groups `kept` in float."""
        key = tuple(sorted(kept))
        if key not in cache:
            nodes = [name for group in key for name in groups[group]]
            debugger.options = tf.lite.experimental.QuantizationDebugOptions(
                denylisted_nodes=nodes or None
            )
            content = debugger.get_nondebug_quantized_model() if nodes else naive
            if fallback == "dynamic":
                content = flatbuffer.quantize_float_weights(content)
            logits = _logits(content, validation)
            cache[key] = (float(np.mean(logits.argmax(axis=1) == reference_labels)),
                          float(np.mean((logits - reference) ** 2)), content)
        return cache[key]

    def describe(kept):
        return [f"{role}/{layer}" for role, layer in sorted(kept)]

    roles = {role: [g for g in groups if g[0] == role] for role in ROLES}
    kept = []
    agreement, error, _ = evaluate(kept)
    search = [{"step": "naive", "float_groups": [], "agreement": agreement, "logit_mse": error}]
    log(f"int8: naive agreement {agreement:.4f} on {len(validation)} held-out texts")
    def good_enough(agreement, error):
        return agreement >= target_agreement and error <= mse_budget

    # 1. Whole roles (every layer) into float, the one that most reduces the logit error first.
    num_roles = 0
    while not good_enough(agreement, error) and (max_float_roles is None
                                                 or num_roles < max_float_roles):
        num_roles += 1
        candidates = [role for role in ROLES if roles[role] and roles[role][0] not in kept]
        if not candidates:
            break
        scored = []
        for role in candidates:
            trial_agreement, trial_error, _ = evaluate(kept + roles[role])
            scored.append((trial_error, -trial_agreement, role))
            log(f"int8:   + {role} in float -> agreement {trial_agreement:.4f}, "
                f"logit mse {trial_error:.4f}")
        _, _, best = min(scored)
        kept = kept + roles[best]
        agreement, error, _ = evaluate(kept)
        search.append({"step": f"role {best} in float", "float_groups": describe(kept),
                       "agreement": agreement, "logit_mse": error})
        log(f"int8: {best} in float -> agreement {agreement:.4f}")
    # 2. Back into int8, one layer at a time (the matrix multiplications first), whatever the
    # targets can spare.
    if good_enough(agreement, error):
        for group in sorted(kept, key=lambda g: (_RESTORE_ORDER.index(g[0]), -g[1])):
            trial = [g for g in kept if g != group]
            trial_agreement, trial_error, _ = evaluate(trial)
            if good_enough(trial_agreement, trial_error):
                kept, agreement, error = trial, trial_agreement, trial_error
                search.append({"step": f"{group[0]}/{group[1]} back to int8",
                               "float_groups": describe(kept), "agreement": agreement,
                               "logit_mse": error})
                log(f"int8: {group[0]}/{group[1]} back to int8 -> agreement {agreement:.4f}")
    _, _, selective = evaluate(kept)
    return {
        "naive": naive,
        "selective": selective,
        "float_groups": describe(kept),
        "denylisted_nodes": [name for group in sorted(kept) for name in groups[group]],
        "search": search,
        "seconds": time.time() - start,
    }


def debug_examples_from(calibration, length=DEBUG_LENGTH, count=64):
    """`debug_examples` of calibration example dicts."""
    chosen = [example for example in calibration
              if example["token_ids"].shape[1] >= length][:count]
    if len(chosen) < 8:
        raise ValueError(
            f"Only {len(chosen)} calibration texts have {length} tokens or more; the "
            "quantization debugger needs longer calibration text."
        )
    return [
        {name: value.copy() for name, value in trim_to_longest(
            {name: example[name] for name in INPUT_NAMES}, length).items()}
        for example in chosen
    ]
