"""Reads what a `.tflite` flatbuffer contains: its ops, custom ops, tensor types, variables.

Used to fail a conversion loudly when the file would not run on stock LiteRT (Select TF "Flex"
ops or unexpected custom ops) or would ship without its weights (variable ops left by some Keras 3
export paths: the file then reads uninitialised variables and returns NaN or zeros).
"""

import collections

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

# Ops that read or write resource variables: a converted inference model must have none.
VARIABLE_OPS = frozenset(
    ("VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE", "HASHTABLE_IMPORT")
)
_BUILTIN_NAMES = {
    value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}
_TYPE_NAMES = {
    value: name for name, value in vars(schema.TensorType).items() if not name.startswith("_")
}
# Ops whose output type says whether the computation itself ran in integer arithmetic.
_NON_COMPUTE_OPS = frozenset(("QUANTIZE", "DEQUANTIZE"))


class ConversionError(ValueError):
    """A converted file that must not ship: non-builtin ops, variables, NaN outputs."""


def _op_name(code):
    if code.CustomCode() is not None:
        return code.CustomCode().decode("utf-8")
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    return _BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}")


def _is_custom(code):
    return code.CustomCode() is not None


def inspect_model(content):
    """Summarises a `.tflite` flatbuffer.

    Args:
        content: bytes. The model.

    Returns:
        dict: `ops` ({name: count} over all subgraphs), `custom_ops` (sorted names),
        `flex_ops` (custom ops of the Select TF ops delegate), `variable_ops`,
        `num_subgraphs`, `tensor_types` ({type: count}), `compute_ops` and
        `integer_compute_ops` (ops other than QUANTIZE/DEQUANTIZE, and those of them whose first
        output is int8/int16), `fully_connected_weights_by_type` (weight elements of the
        fully connected layers, i.e. their multiply-accumulates per token, by weight type: how
        much of the arithmetic is quantized), `resource_tensors`.
    """
    model = schema.Model.GetRootAs(bytearray(content), 0)
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    names = [_op_name(code) for code in codes]
    custom = sorted({names[i] for i, code in enumerate(codes) if _is_custom(code)})
    ops = collections.Counter()
    types = collections.Counter()
    compute_ops = integer_ops = resource_tensors = 0
    float_op_types = collections.Counter()
    # Multiply-accumulates per token of the fully connected layers, by weight type.
    fc_macs = collections.Counter()
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        tensor_types = []
        for t in range(subgraph.TensorsLength()):
            type_name = _TYPE_NAMES.get(subgraph.Tensors(t).Type(), "UNKNOWN")
            tensor_types.append(type_name)
            types[type_name] += 1
            resource_tensors += type_name == "RESOURCE"
        for o in range(subgraph.OperatorsLength()):
            operator = subgraph.Operators(o)
            name = names[operator.OpcodeIndex()]
            ops[name] += 1
            if name == "FULLY_CONNECTED" and operator.InputsLength() > 1:
                weight = subgraph.Tensors(operator.Inputs(1))
                fc_macs[tensor_types[operator.Inputs(1)]] += int(np.prod(weight.ShapeAsNumpy()))
            if name in _NON_COMPUTE_OPS or operator.OutputsLength() == 0:
                continue
            output = operator.Outputs(0)
            output_type = tensor_types[output] if output >= 0 else "NONE"
            if output_type in ("FLOAT32", "FLOAT16", "INT8", "INT16"):
                compute_ops += 1
                if output_type in ("INT8", "INT16"):
                    integer_ops += 1
                else:
                    float_op_types[name] += 1
    return {
        "ops": dict(sorted(ops.items())),
        "custom_ops": custom,
        "flex_ops": [name for name in custom if name.startswith("Flex")],
        "variable_ops": sorted(VARIABLE_OPS & set(ops)),
        "num_subgraphs": model.SubgraphsLength(),
        "tensor_types": dict(sorted(types.items())),
        "compute_ops": compute_ops,
        "integer_compute_ops": integer_ops,
        "float_compute_ops_by_type": dict(sorted(float_op_types.items())),
        "resource_tensors": resource_tensors,
        "fully_connected_weights_by_type": dict(sorted(fc_macs.items())),
    }


def operator_outputs(content):
    """`[(op name, first output tensor name)]` of the main subgraph's operators, in order."""
    model = schema.Model.GetRootAs(bytearray(content), 0)
    names = [_op_name(model.OperatorCodes(i)) for i in range(model.OperatorCodesLength())]
    subgraph = model.Subgraphs(0)
    outputs = []
    for o in range(subgraph.OperatorsLength()):
        operator = subgraph.Operators(o)
        if operator.OutputsLength() == 0 or operator.Outputs(0) < 0:
            continue
        tensor = subgraph.Tensors(operator.Outputs(0))
        outputs.append((names[operator.OpcodeIndex()], tensor.Name().decode("utf-8")))
    return outputs


def check_deployable(summary, allowed_custom_ops=()):
    """Raises `ConversionError` if the file needs Flex or unexpected custom ops, or has variables.

    Args:
        summary: the dict of `inspect_model`.
        allowed_custom_ops: names of custom ops the runtime registers (tensorflow-text's).
    """
    if summary["flex_ops"]:
        raise ConversionError(
            f"The converted model needs Select TF (Flex) ops {summary['flex_ops']}, which stock "
            "LiteRT cannot run."
        )
    unexpected = sorted(set(summary["custom_ops"]) - set(allowed_custom_ops))
    if unexpected:
        raise ConversionError(
            f"The converted model has custom ops {unexpected} outside the allowed "
            f"{sorted(allowed_custom_ops)}: stock LiteRT cannot run it."
        )
    if summary["variable_ops"] or summary["resource_tensors"]:
        raise ConversionError(
            f"The converted model still has variable ops {summary['variable_ops']} "
            f"({summary['resource_tensors']} resource tensors): its weights were not frozen "
            "into the file, which would return NaN or garbage."
        )
