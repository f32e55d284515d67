"""Reads what a `.tflite` flatbuffer contains: its ops, custom ops, tensor types, variables.

Used to fail a conversion loudly when the file would not run on stock LiteRT (Select TF "Flex"
ops or unexpected custom ops) or would ship without its weights (variable ops left by some Keras 3
export paths: the file then reads uninitialised variables and returns NaN or zeros).
"""

import collections

import flatbuffers
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
        output is int8/int16), `fully_connected_macs_by_arithmetic` (weight elements of the
        fully connected layers, i.e. their multiply-accumulates per token, by how they are
        computed: `int8` with calibrated int8 inputs, `dynamic_int8` with float inputs quantized
        per call and int8 weights, `float`: how much of the arithmetic is quantized),
        `int8_weight_fraction` (of the elements of the float and integer constants, those in
        int8),
        `resource_tensors`.
    """
    model = schema.Model.GetRootAs(bytearray(content), 0)
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    names = [_op_name(code) for code in codes]
    custom = sorted({names[i] for i, code in enumerate(codes) if _is_custom(code)})
    ops = collections.Counter()
    types = collections.Counter()
    compute_ops = integer_ops = resource_tensors = 0
    float_op_types = collections.Counter()
    # Multiply-accumulates per token of the fully connected layers, by arithmetic.
    fc_arithmetic = collections.Counter()
    constants = collections.Counter()  # Elements of constant tensors, by type.
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        tensor_types = []
        for t in range(subgraph.TensorsLength()):
            type_name = _TYPE_NAMES.get(subgraph.Tensors(t).Type(), "UNKNOWN")
            tensor_types.append(type_name)
            types[type_name] += 1
            resource_tensors += type_name == "RESOURCE"
            buffer = subgraph.Tensors(t).Buffer()
            if buffer and model.Buffers(buffer).DataLength():
                constants[type_name] += int(np.prod(subgraph.Tensors(t).ShapeAsNumpy()))
        for o in range(subgraph.OperatorsLength()):
            operator = subgraph.Operators(o)
            name = names[operator.OpcodeIndex()]
            ops[name] += 1
            if name == "FULLY_CONNECTED" and operator.InputsLength() > 1:
                weight = subgraph.Tensors(operator.Inputs(1))
                macs = int(np.prod(weight.ShapeAsNumpy()))
                if tensor_types[operator.Inputs(0)] == "INT8":
                    fc_arithmetic["int8"] += macs
                elif tensor_types[operator.Inputs(1)] == "INT8":
                    fc_arithmetic["dynamic_int8"] += macs
                else:
                    fc_arithmetic["float"] += macs
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
        "fully_connected_macs_by_arithmetic": dict(sorted(fc_arithmetic.items())),
        "int8_weight_fraction": constants["INT8"] / max(1, sum(
            constants[name] for name in ("INT8", "FLOAT32", "FLOAT16"))),
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


def _opcode_index(model, builtin, version):
    """Index of `builtin`'s operator code in `model` (a `ModelT`), added if missing; its version
    is raised to at least `version`."""
    for index, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            code.version = max(code.version, version)
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
    code.version = version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _constant(model, subgraph, index):
    """The float32 array of constant tensor `index`, or None if it is not a float32 constant."""
    tensor = subgraph.tensors[index]
    if tensor.type != schema.TensorType.FLOAT32 or not tensor.buffer:
        return None
    data = model.buffers[tensor.buffer].data
    if data is None or len(data) == 0:
        return None
    return np.frombuffer(np.asarray(data, dtype=np.uint8).tobytes(), np.float32).reshape(
        tensor.shape)


def _set_int8(tensor, buffer, scale):
    """Makes `tensor` (a `TensorT`) an int8 constant in `buffer` with per-row (or one) `scale`."""
    tensor.type = schema.TensorType.INT8
    tensor.quantization = schema.QuantizationParametersT()
    tensor.quantization.scale = [float(s) for s in scale]
    tensor.quantization.zeroPoint = [0] * len(scale)
    tensor.quantization.quantizedDimension = 0
    tensor.buffer = buffer


def _add_buffer(model, quantized):
    """Index of a new buffer holding the int8 array `quantized`."""
    buffer = schema.BufferT()
    buffer.data = quantized.reshape(-1).view(np.uint8)
    model.buffers.append(buffer)
    return len(model.buffers) - 1


def _symmetric_int8(values, per_row):
    """`(int8 values, scales)`: symmetric quantization, one scale per row or for all."""
    peak = np.abs(values).max(axis=tuple(range(1, values.ndim))) if per_row else np.array(
        [np.abs(values).max()])
    scale = np.maximum(peak / 127.0, np.finfo(np.float32).tiny).astype(np.float32)
    divisor = scale.reshape(-1, *([1] * (values.ndim - 1))) if per_row else scale[0]
    return np.clip(np.round(values / divisor), -127, 127).astype(np.int8), scale


def quantize_float_weights(content, min_elements=1024):
    """Gives the float layers of a selectively quantized model int8 weights, as dynamic-range
    quantization does.

    In a full-integer model whose sensitive ops were kept in float, those ops still carry
    float32 weights. This stores them in int8 too: fully connected layers with float inputs get
    per-output-channel int8 weights (LiteRT then runs them as dynamically quantized layers: the
    input is quantized per call with its own range, and the product is computed in int8), and
    float embedding tables read by GATHER become int8 tables (one scale) followed by a
    DEQUANTIZE of the gathered rows. Fully connected layers that already compute in int8 and
    small constants are left as they are.

    Args:
        content: bytes. A `.tflite` model.
        min_elements: int. Constants with fewer elements stay float.

    Returns:
        bytes: the model with those weights in int8.
    """
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(bytearray(content), 0))
    builtin = {index: max(code.builtinCode, code.deprecatedBuiltinCode)
               for index, code in enumerate(model.operatorCodes)}
    fully_connected = schema.BuiltinOperator.FULLY_CONNECTED
    gather = schema.BuiltinOperator.GATHER
    # What reads each constant buffer: (op, input position, whether the op's first input is
    # float), once per reading. A buffer is quantized only when every reader is a float fully
    # connected layer's weight (the converter shares identical constants between layers) or when
    # one GATHER alone reads it as its table.
    readers = collections.defaultdict(list)
    for subgraph in model.subgraphs:
        for operator in subgraph.operators:
            op = builtin[operator.opcodeIndex]
            float_input = (len(operator.inputs) > 0 and operator.inputs[0] >= 0 and
                           subgraph.tensors[operator.inputs[0]].type == schema.TensorType.FLOAT32)
            for position, index in enumerate(operator.inputs):
                if index >= 0 and subgraph.tensors[index].buffer:
                    readers[subgraph.tensors[index].buffer].append((op, position, float_input))

    def read_only_as_weights(buffer):
        return all(use == (fully_connected, 1, True) for use in readers[buffer])

    def read_only_as_table(buffer):
        return len(readers[buffer]) == 1 and readers[buffer][0][:2] == (gather, 0)

    quantized_buffers = {}  # Old float buffer -> (new int8 buffer, scales).
    new_buffers = set()
    hybrid_layers = table_lookups = 0
    for subgraph in model.subgraphs:
        operators = []
        for operator in subgraph.operators:
            operators.append(operator)
            op = builtin[operator.opcodeIndex]
            if op == fully_connected and len(operator.inputs) > 1:
                weight = subgraph.tensors[operator.inputs[1]]
                if weight.buffer not in new_buffers:  # Else: a tensor another layer also reads.
                    values = _constant(model, subgraph, operator.inputs[1])
                    if (values is None or values.ndim != 2 or values.size < min_elements
                            or not read_only_as_weights(weight.buffer)):
                        continue
                    if weight.buffer not in quantized_buffers:
                        quantized, scale = _symmetric_int8(values, per_row=True)
                        quantized_buffers[weight.buffer] = (_add_buffer(model, quantized), scale)
                        model.buffers[weight.buffer].data = None
                    new_buffer, scale = quantized_buffers[weight.buffer]
                    _set_int8(weight, new_buffer, scale)
                    new_buffers.add(new_buffer)
                options = operator.builtinOptions or schema.FullyConnectedOptionsT()
                options.asymmetricQuantizeInputs = True
                operator.builtinOptions = options
                operator.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
                hybrid_layers += 1
            elif op == gather:
                table, output = operator.inputs[0], operator.outputs[0]
                values = _constant(model, subgraph, table)
                if (values is None or values.size < min_elements
                        or not read_only_as_table(subgraph.tensors[table].buffer)):
                    continue
                quantized, scale = _symmetric_int8(values, per_row=False)
                model.buffers[subgraph.tensors[table].buffer].data = None
                _set_int8(subgraph.tensors[table], _add_buffer(model, quantized), scale)
                # GATHER copies int8 rows (one scale); a DEQUANTIZE makes them float again.
                float_output = subgraph.tensors[output]
                gathered = schema.TensorT()
                gathered.name = bytes(float_output.name or b"") + b"_int8"
                gathered.shape = float_output.shape
                gathered.shapeSignature = float_output.shapeSignature
                _set_int8(gathered, 0, scale)
                subgraph.tensors.append(gathered)
                operator.outputs = [len(subgraph.tensors) - 1]
                dequantize = schema.OperatorT()
                dequantize.opcodeIndex = _opcode_index(model, schema.BuiltinOperator.DEQUANTIZE, 2)
                dequantize.inputs = [len(subgraph.tensors) - 1]
                dequantize.outputs = [output]
                operators.append(dequantize)
                table_lookups += 1
        subgraph.operators = operators
    if not hybrid_layers and not table_lookups:
        return content
    if hybrid_layers:
        # Version 12: hybrid (float input, int8 per-channel weights) with asymmetric input
        # quantization, as the converter writes it for dynamic-range models.
        _opcode_index(model, fully_connected, 12)
    if table_lookups:
        _opcode_index(model, gather, 2)  # int8 tables.
    builder = flatbuffers.Builder(len(content) // 2 + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def order_signature_tensors(content, input_order=None, output_order=None):
    """Puts the first subgraph's inputs and outputs in the given order of signature names, and
    names each output tensor after its signature output.

    Clients that find tensors by position (the LiteRT Task Library without metadata:
    `BertQuestionAnswerer` takes the inputs as ids, mask, segment ids and the outputs as end,
    start logits) or by tensor name (metadata writers) then read the right ones; the converter
    orders inputs by first use in the graph and names the outputs `StatefulPartitionedCall:N`.
    The graph itself is not changed: only the order of the subgraph's input and output lists
    and the output tensors' names.

    Args:
        content: bytes. A `.tflite` model with one signature.
        input_order: sequence of str or None. Signature input names, in the order wanted
            (None: keep the order).
        output_order: sequence of str or None. Signature output names, likewise.

    Returns:
        bytes: the model with its inputs and outputs in that order.

    Raises:
        ValueError: the names are not those of the signature.
    """
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(bytearray(content), 0))
    if len(model.signatureDefs or []) != 1:
        raise ValueError(f"Expected one signature, found {len(model.signatureDefs or [])}.")
    signature = model.signatureDefs[0]
    subgraph = model.subgraphs[signature.subgraphIndex]

    def indices(maps, order, what):
        by_name = {tensor_map.name.decode("utf-8"): tensor_map.tensorIndex for tensor_map in maps}
        if sorted(order) != sorted(by_name):
            raise ValueError(f"`{what}` ({list(order)}) must name the signature's {what[:-6]}s "
                             f"{sorted(by_name)}.")
        return [by_name[name] for name in order]

    if input_order is not None:
        subgraph.inputs = indices(signature.inputs, input_order, "input_order")
    names = {tensor_map.tensorIndex: tensor_map.name for tensor_map in signature.outputs}
    if output_order is not None:
        subgraph.outputs = indices(signature.outputs, output_order, "output_order")
    for index in subgraph.outputs:
        subgraph.tensors[index].name = names[index]
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
