"""The same classifier architecture built from keras-hub's `BertBackbone`, for latency comparisons.

    python -m export.keras_hub_reference --model_dir=/tmp/minilm_sst2 \\
        --out=exported/keras_hub_dynamic.tflite --quantize=dynamic

Builds `keras_hub.models.BertBackbone` with the shape of `--model_dir`'s encoder (vocabulary,
layers, heads, widths, positions, segments) and a dense head on its pooled output, exports and
converts it exactly as `export.tflite` converts the project's model (same `(1, length)` token-id
signature, `ExportArchive`, builtin ops, same quantization settings), and writes a manifest beside
it so that `export.benchmark` times both in one run. The weights are random: only the graph and
the kernels matter for latency and size (int8 calibration runs on random token ids).
"""

import json
import os
import tempfile

import numpy as np
from absl import flags

from export.core import evaluation
from export.core import flatbuffer
from export.core import graphs
from keras_bert.inputs import INPUT_NAMES
from keras_bert.models import model_dir as model_dir_lib
from keras_bert.utils import cli
FLAGS = flags.FLAGS


def define_flags():
    """Defines the command-line flags (only when run as a program, so that the modules of
    `export/` can be imported together)."""
    flags.DEFINE_string(
        "model_dir", None, "Fine-tuned model directory whose shape to copy.", required=True
    )
    flags.DEFINE_string("out", None, "The `.tflite` file to write.", required=True)
    flags.DEFINE_enum(
        "quantize", "dynamic", ("none", "float16", "dynamic", "int8"),
        "Quantization, as in export.tflite (int8: naive full-integer on random token ids).",
    )




def _check_flags(argv):
    """The checks of the flags that read the disk."""
    del argv  # no positional arguments
    cli.check_paths(directories=["model_dir"])


def keras_hub_classifier(encoder_config, num_classes):
    """A functional `BertBackbone` + dense head taking the project's three inputs."""
    import keras  # pylint: disable=import-outside-toplevel
    import keras_hub  # pylint: disable=import-outside-toplevel

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=encoder_config["vocabulary_size"],
        num_layers=encoder_config["num_layers"],
        num_heads=encoder_config["num_heads"],
        hidden_dim=encoder_config["hidden_dim"],
        intermediate_dim=encoder_config["intermediate_dim"],
        dropout=0.0,
        max_sequence_length=encoder_config["max_sequence_length"],
        num_segments=encoder_config["num_segments"],
    )
    inputs = {
        name: keras.Input(shape=(None,), dtype="int32", name=name) for name in INPUT_NAMES
    }
    pooled = backbone(inputs)["pooled_output"]
    logits = keras.layers.Dense(num_classes, name="logits")(pooled)
    return keras.Model(inputs, logits)


def write_reference(model_dir, out, quantize="dynamic"):
    """Writes the keras-hub `.tflite` file and its manifest; returns the manifest."""
    import keras  # pylint: disable=import-outside-toplevel

    from export import tflite  # pylint: disable=import-outside-toplevel

    info = model_dir_lib.load_model_dir(model_dir, load_model=False)
    graphs.check_exported_task(info)
    if info.task != "classification":
        raise ValueError(
            f"{model_dir}: a {info.task!r} model directory; the keras-hub reference is a "
            "classifier (keras-hub's `BertBackbone` with our classification head)."
        )
    encoder_config = info.load_model().encoder.get_config()
    model = keras_hub_classifier(encoder_config, len(info.labels))
    out = os.path.abspath(out)
    with tempfile.TemporaryDirectory(prefix="keras_hub_reference-") as scratch:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "serving_default",
            lambda inputs: {"logits": model(inputs, training=False)},
            input_signature=[graphs.token_id_signature(batch_size=1)],
        )
        archive.write_out(scratch, verbose=False)
        if quantize == "int8":
            rng = np.random.default_rng(0)
            examples = []
            for length in rng.integers(8, info.sequence_length, size=64):
                ids = rng.integers(1000, encoder_config["vocabulary_size"], size=(1, length))
                examples.append({"token_ids": ids.astype(np.int32),
                                 "segment_ids": np.zeros((1, length), np.int32),
                                 "padding_mask": np.ones((1, length), np.int32)})
            from export.core import quantization  # pylint: disable=import-outside-toplevel

            content = quantization.int8_converter(scratch, examples).convert()
        else:
            content = tflite.convert_saved_model(scratch, quantize, False)
    summary = flatbuffer.inspect_model(content)
    flatbuffer.check_deployable(summary)
    evaluation.write_bytes(out, content)
    return tflite.write_manifest(
        out, info, quantize, False, summary,
        {"reference": "keras_hub.models.BertBackbone, random weights"},
    )


def main(argv):
    del argv
    manifest = write_reference(FLAGS.model_dir, FLAGS.out, FLAGS.quantize)
    print(json.dumps({key: manifest[key] for key in ("file", "size_bytes", "ops")}, indent=2))


if __name__ == "__main__":
    define_flags()
    cli.run(main, input_flags=["model_dir"], check=_check_flags)
