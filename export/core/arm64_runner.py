"""Runs a token-id `.tflite` file on a batch of examples; the half of `export.check_arm64` that
runs inside the emulated arm64 root file system.

It needs only NumPy and `ai_edge_litert` (the arm64 rootfs has nothing else), so it uses argparse,
not absl, and imports from this project only `keras_bert/inputs.py` (the input names; it needs
NumPy alone), which `export.check_arm64` copies beside it into the rootfs. `export.check_arm64`
imports `run_model` for the x86 side, so both CPUs run the very same code.

    python arm64_runner.py --model=model.tflite --inputs=inputs.npz --output=logits.npz

`inputs.npz` holds int32 arrays `token_ids`, `segment_ids`, `padding_mask` of shape
`(num_examples, sequence_length)` and `lengths` of shape `(num_examples,)`: the real length of each
example. Each example is fed alone, with batch size 1, cut to its real length when the file takes
any length, or padded to the file's fixed length (a question-answering file's). A signature may
name its inputs as other clients do (`ids`, `mask`, `segment_ids`: `INPUT_ALIASES`). `logits.npz`
gets `logits`, float32 `(num_examples, num_labels)`, and `info`, a JSON string (versions,
machine, signature, the number of nodes XNNPACK runs, timing).

With `--all_outputs` it gets every output of the signature instead (for question answering's
start and end logits, per-token logits, embeddings): `values_<i>` and `shapes_<i>` for the i-th
name of `info["output_names"]` (`stack_ragged`'s arrays: one example's output may be as long as
its input).
"""

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

from keras_bert.inputs import INPUT_NAMES

# Input names of other exporters and clients -> ours. LiteRT's `BertQuestionAnswerer` looks for
# `ids`, `mask` and `segment_ids` when the metadata names no tensors; TF Hub and Hugging Face
# files use the others.
INPUT_ALIASES = {
    "ids": "token_ids",
    "input_ids": "token_ids",
    "input_word_ids": "token_ids",
    "mask": "padding_mask",
    "input_mask": "padding_mask",
    "attention_mask": "padding_mask",
    "input_type_ids": "segment_ids",
    "token_type_ids": "segment_ids",
}


def input_role(name):
    """Which of `INPUT_NAMES` a signature input named `name` takes, or None."""
    return name if name in INPUT_NAMES else INPUT_ALIASES.get(name)


def _interpreter_class():
    from ai_edge_litert import interpreter  # pylint: disable=import-outside-toplevel

    return interpreter.Interpreter


def _versions():
    versions = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "ai_edge_litert": importlib.metadata.version("ai-edge-litert"),
    }
    if os.path.isfile("/etc/debian_version"):
        with open("/etc/debian_version", encoding="utf-8") as f:
            versions["debian"] = f.read().strip()
    return versions


def _tensor_dtypes(interpreter):
    """Counts of the file's tensors by dtype: int8 weights mark a quantized file."""
    counts = {}
    for detail in interpreter.get_tensor_details():
        name = np.dtype(detail["dtype"]).name
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def _delegated_nodes(interpreter):
    """Nodes run by a delegate: the Python interpreter applies only XNNPACK by default, which
    needs cpuinfo to recognise the CPU. None when the private API that tells is missing."""
    try:
        return sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())
    except (AttributeError, KeyError, RuntimeError, ValueError):
        return None


def fixed_length(input_details):
    """The one length a signature's inputs take, or None when they take any (`-1`).

    Args:
        input_details: dict name -> detail with `shape_signature` (a signature runner's
            `get_input_details()`, or a manifest's `inputs`).
    """
    lengths = {int(detail["shape_signature"][-1]) for detail in input_details.values()}
    if len(lengths) != 1:
        raise ValueError(f"The inputs disagree on their length: {sorted(lengths)}.")
    length = lengths.pop()
    return length if length > 0 else None


def _example_inputs(inputs, index, input_details):
    """The inputs of example `index`, shaped `(1, length)` for the signature."""
    length = int(inputs["lengths"][index])
    feed = {}
    for name, detail in input_details.items():
        fixed_length = int(detail["shape_signature"][-1])
        row = inputs[input_role(name)][index, :length]
        if fixed_length > 0:
            if length > fixed_length:
                raise ValueError(
                    f"Example {index} has {length} tokens but input `{name}` of the model takes "
                    f"exactly {fixed_length}; tokenize with a smaller `--sequence_length`."
                )
            row = np.pad(row, (0, fixed_length - length))
        feed[name] = row[np.newaxis, :].astype(detail["dtype"])
    return feed


def _pick_signature(interpreter, model_path, signature_key):
    signatures = interpreter.get_signature_list()
    if signature_key is None:
        if len(signatures) == 1:
            return next(iter(signatures))
        if "serving_default" in signatures:
            return "serving_default"
        raise ValueError(
            f"{model_path} has signatures {sorted(signatures)}; pass `signature_key`."
        )
    if signature_key not in signatures:
        raise ValueError(
            f"`signature_key` ({signature_key!r}) is not a signature of {model_path}; it has "
            f"{sorted(signatures)}."
        )
    return signature_key


def signature_inputs(model_path, signature_key=None):
    """The input names of a signature, read without allocating (custom ops need no kernels)."""
    interpreter = _interpreter_class()(model_path=model_path)
    signature_key = _pick_signature(interpreter, model_path, signature_key)
    return list(interpreter.get_signature_list()[signature_key]["inputs"])


def _signature_runner(model_path, num_threads, signature_key):
    interpreter = _interpreter_class()(model_path=model_path, num_threads=num_threads)
    signature_key = _pick_signature(interpreter, model_path, signature_key)
    runner = interpreter.get_signature_runner(signature_key)
    input_details = runner.get_input_details()
    unknown = sorted(name for name in input_details if input_role(name) is None)
    if unknown:
        raise ValueError(
            f"Signature {signature_key!r} of {model_path} takes inputs {unknown}; this runner "
            f"feeds only {list(INPUT_NAMES)} (or their aliases {sorted(INPUT_ALIASES)}): "
            "token-id files, not string-input files."
        )
    return interpreter, signature_key, runner


def signature_input_details(model_path, signature_key=None):
    """`{name: {"dtype", "shape_signature"}}` of a token-id signature's inputs."""
    _, _, runner = _signature_runner(model_path, None, signature_key)
    return {
        name: {
            "dtype": np.dtype(d["dtype"]).name,
            "shape_signature": [int(s) for s in d["shape_signature"]],
        }
        for name, d in runner.get_input_details().items()
    }


def run_model_outputs(model_path, inputs, num_threads=1, signature_key=None):
    """Every output of the signature for every example of `inputs`, one example per call.

    Args:
        model_path: str. A `.tflite` file whose signature takes some of `token_ids`,
            `segment_ids`, `padding_mask` (or their `INPUT_ALIASES`), int32 `(1, length)`.
        inputs: mapping with int32 arrays `token_ids`, `segment_ids`, `padding_mask` of shape
            `(num_examples, sequence_length)` and `lengths` of shape `(num_examples,)`.
        num_threads: int. Interpreter threads.
        signature_key: str or None. As for `run_model`.

    Returns:
        `(outputs, info)`: dict output name -> list (per example) of float32 arrays without the
        batch axis (e.g. `(num_labels,)`, `(length,)` or `(length, num_tags)`, where `length`
        is the fed length: the real length, or the file's fixed length), and a dict as
        `run_model`'s with `output_names`, `outputs` (dtype and shape signature of each) and
        `fed_lengths`.
    """
    interpreter, signature_key, runner = _signature_runner(
        model_path, num_threads, signature_key
    )
    input_details = runner.get_input_details()
    output_details = runner.get_output_details()
    output_names = sorted(output_details)
    num_examples = len(inputs["lengths"])
    outputs = {name: [] for name in output_names}
    fed_lengths = []
    start = time.perf_counter()
    for index in range(num_examples):
        feed = _example_inputs(inputs, index, input_details)
        fed_lengths.append(int(next(iter(feed.values())).shape[1]))
        results = runner(**feed)
        for name in output_names:
            value = np.asarray(results[name], np.float32)
            outputs[name].append(value[0] if value.ndim and value.shape[0] == 1 else value)
    seconds = time.perf_counter() - start

    def describe(details):
        return {
            name: {
                "dtype": np.dtype(d["dtype"]).name,
                "shape_signature": [int(s) for s in d["shape_signature"]],
            }
            for name, d in details.items()
        }

    info = {
        "versions": _versions(),
        "signature": signature_key,
        "inputs": describe(input_details),
        "outputs": describe(output_details),
        "output_names": output_names,
        "tensor_dtypes": _tensor_dtypes(interpreter),
        "xnnpack_nodes": _delegated_nodes(interpreter),
        "num_threads": num_threads,
        "num_examples": num_examples,
        "fed_lengths": fed_lengths,
        "inference_seconds": seconds,
    }
    return outputs, info


def run_model(
    model_path, inputs, num_threads=1, signature_key=None, output_name="logits"
):
    """Runs every example of `inputs` through the `.tflite` file `model_path`.

    Args:
        model_path: str. A `.tflite` file whose signature takes some of `token_ids`,
            `segment_ids`, `padding_mask` (int32 `(1, sequence_length)`).
        inputs: mapping with int32 arrays `token_ids`, `segment_ids`, `padding_mask` of shape
            `(num_examples, sequence_length)` and `lengths` of shape `(num_examples,)`.
        num_threads: int. Interpreter threads.
        signature_key: str or None. The signature to run; `None` picks the only one, or
            `serving_default` when there are several.
        output_name: str. The signature output to return; a signature with one output returns
            that one whatever its name.

    Returns:
        `(logits, info)`: float32 array of shape `(num_examples, num_labels)` and a dict of
        versions, signature details and timing.
    """
    outputs, info = run_model_outputs(model_path, inputs, num_threads, signature_key)
    output_names = info["output_names"]
    if output_name not in output_names:
        if len(output_names) != 1:
            raise ValueError(
                f"Signature {info['signature']!r} of {model_path} has outputs {output_names} "
                f"and no {output_name!r}."
            )
        output_name = output_names[0]
    info = {
        key: value for key, value in info.items()
        if key not in ("outputs", "output_names", "fed_lengths")
    }
    info["output"] = output_name
    logits = [value.reshape(-1) for value in outputs[output_name]]
    if not logits:
        return np.zeros((0, 0), np.float32), info
    return np.stack(logits), info


def stack_ragged(arrays):
    """Per-example arrays of one rank as `(values, shapes)`, for an `.npz`.

    Returns:
        `values`: float32 `(num_examples, *largest_shape)`, NaN where an example is shorter;
        `shapes`: int64 `(num_examples, rank)`.
    """
    arrays = [np.asarray(a, np.float32) for a in arrays]
    if not arrays:
        return np.zeros((0,), np.float32), np.zeros((0, 0), np.int64)
    shapes = np.array([a.shape for a in arrays], np.int64).reshape(len(arrays), -1)
    values = np.full((len(arrays), *shapes.max(axis=0)), np.nan, np.float32)
    for row, array in zip(values, arrays):
        row[tuple(slice(0, n) for n in array.shape)] = array
    return values, shapes


def unstack_ragged(values, shapes):
    """The per-example arrays that `stack_ragged` stacked."""
    return [
        np.asarray(row[tuple(slice(0, int(n)) for n in shape)], np.float32)
        for row, shape in zip(values, shapes)
    ]


def pack_outputs(outputs, info):
    """`run_model_outputs`'s result as the arrays of an `.npz` (see the module doc)."""
    arrays = {"info": np.array(json.dumps(info))}
    for index, name in enumerate(info["output_names"]):
        arrays[f"values_{index}"], arrays[f"shapes_{index}"] = stack_ragged(outputs[name])
    return arrays


def unpack_outputs(arrays):
    """`(outputs, info)` from the arrays `pack_outputs` made (an open `.npz` or a dict)."""
    info = json.loads(str(arrays["info"]))
    outputs = {
        name: unstack_ragged(arrays[f"values_{index}"], arrays[f"shapes_{index}"])
        for index, name in enumerate(info["output_names"])
    }
    return outputs, info


def save_npz_atomically(path, **arrays):
    """`np.savez` to a temporary file beside `path`, then renames it over `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp_", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def load_inputs(path):
    """The arrays of an inputs `.npz`, checked for names and shapes."""
    with np.load(path, allow_pickle=False) as data:
        inputs = {name: data[name] for name in data.files}
    missing = [n for n in INPUT_NAMES + ("lengths",) if n not in inputs]
    if missing:
        raise ValueError(f"{path} lacks arrays {missing}.")
    num_examples = len(inputs["lengths"])
    for name in INPUT_NAMES:
        if inputs[name].ndim != 2 or inputs[name].shape[0] != num_examples:
            raise ValueError(
                f"`{name}` in {path} has shape {inputs[name].shape}; expected "
                f"({num_examples}, sequence_length)."
            )
    return inputs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="The .tflite file to run.")
    parser.add_argument("--inputs", required=True, help="The inputs .npz (see module doc).")
    parser.add_argument("--output", required=True, help="Where to write the logits .npz.")
    parser.add_argument("--num_threads", type=int, default=1, help="Interpreter threads.")
    parser.add_argument("--signature", default=None, help="Signature key; default: the only one.")
    parser.add_argument("--output_name", default="logits", help="Signature output to return.")
    parser.add_argument(
        "--all_outputs", action="store_true",
        help="Write every output of the signature (values_<i>, shapes_<i>), not only one.",
    )
    args = parser.parse_args(argv)
    if args.all_outputs:
        outputs, info = run_model_outputs(
            args.model, load_inputs(args.inputs), num_threads=args.num_threads,
            signature_key=args.signature,
        )
        save_npz_atomically(args.output, **pack_outputs(outputs, info))
        return
    logits, info = run_model(
        args.model,
        load_inputs(args.inputs),
        num_threads=args.num_threads,
        signature_key=args.signature,
        output_name=args.output_name,
    )
    save_npz_atomically(args.output, logits=logits, info=np.array(json.dumps(info)))


if __name__ == "__main__":
    sys.exit(main())
