"""LiteRT conversion: builtin-only token-id files, the string file, manifests, parity reports."""

import collections
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from export.core import evaluation
from export.core import flatbuffer
from export.core import litert
from export.core import metadata
from export.core import quantization
from keras_bert.models import model_dir as model_dir_lib
from export import tflite
from tests.export.conftest import EVAL_LIMIT
from tests.export.conftest import SST2_TEST
from tests.export.conftest import SST2_TRAIN

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def _keras_logits(model_dir, texts):
    info = model_dir_lib.load_model_dir(model_dir)
    return evaluation.keras_logits(info.model, info.preprocessor, texts)


def test_float32_token_id_file_matches_keras(converted):
    path, report = converted["none"]
    assert report["passed"] and report["num_examples"] == EVAL_LIMIT
    assert report["max_abs_diff"] < 1e-4
    assert report["label_agreement"] == 1.0
    assert report["accuracy"] == report["keras_accuracy"]
    with open(path + ".parity.json", encoding="utf-8") as f:
        assert json.load(f)["label_agreement"] == 1.0
    assert "| none |" in open(path + ".parity.md", encoding="utf-8").read()


def test_token_id_file_is_builtin_only_with_dynamic_length(converted, tiny_model_dir):
    path, _ = converted["none"]
    with open(path, "rb") as f:
        summary = flatbuffer.inspect_model(f.read())
    assert summary["custom_ops"] == [] and summary["variable_ops"] == []
    assert "GELU" in summary["ops"] and "SOFTMAX" in summary["ops"]
    # With the batch fixed at 1 the blocks' reshapes have constant shapes: the only shape
    # arithmetic left is the embeddings' and the padding trim's, whatever the depth (the
    # length cut, `graphs.truncate_token_ids`, adds none).
    assert summary["ops"].get("SHAPE", 0) <= 2 and summary["ops"].get("PACK", 0) <= 2
    interpreter = litert.make_interpreter(path)
    runner = interpreter.get_signature_runner()
    details = runner.get_input_details()
    assert sorted(details) == ["padding_mask", "segment_ids", "token_ids"]
    for detail in details.values():
        assert list(detail["shape_signature"]) == [1, -1]
        assert detail["dtype"] == np.int32
    assert list(runner.get_output_details()) == ["logits"]
    # The same texts at their own lengths (3 and 20 tokens) match Keras.
    texts = ["good", "a charming and often affecting journey , unflinchingly bleak and desperate"]
    classifier = litert.LiteRTClassifier(path)
    np.testing.assert_allclose(classifier.logits(texts), _keras_logits(tiny_model_dir, texts),
                               atol=1e-4)


def test_manifest_describes_the_file(converted, tiny_model_dir):
    path, _ = converted["none"]
    manifest = litert.read_manifest(path)
    info = model_dir_lib.load_model_dir(tiny_model_dir, load_model=False)
    assert manifest["size_bytes"] == os.path.getsize(path)
    assert manifest["vocab_sha256"] == info.vocabulary_sha256
    vocabulary = os.path.join(os.path.dirname(path), manifest["vocab"])
    assert model_dir_lib.file_sha256(vocabulary) == info.vocabulary_sha256
    assert manifest["lower_case"] is True
    assert manifest["max_seq_length"] == 128 and manifest["quantization"] == "none"
    assert manifest["inputs"]["token_ids"] == {"dtype": "int32", "shape_signature": [1, -1]}
    assert manifest["outputs"]["logits"]["dtype"] == "float32"
    assert manifest["custom_ops"] == [] and manifest["ops"]["FULLY_CONNECTED"] > 0


def test_token_id_file_carries_classifier_metadata(converted, tiny_model_dir):
    path, _ = converted["none"]
    found = metadata.read(path)
    assert found["name"] == os.path.basename(tiny_model_dir)
    assert (found["version"], found["author"], found["license"]) == (
        "1", "keras-bert", "Apache-2.0")
    assert "2 classes (0, 1)" in found["description"]
    assert sorted(entry["name"] for entry in found["inputs"]) == ["ids", "mask", "segment_ids"]
    assert [entry["name"] for entry in found["outputs"]] == ["probability"]
    assert sorted(found["zip_files"]) == ["labels.txt", "vocab.txt"]
    assert litert.read_manifest(path)["metadata"] == found
    # The string file has none: the task libraries cannot run it.
    assert litert.read_manifest(converted["text"][0])["metadata"] is None


def test_dynamic_range_file_is_smaller_and_close(converted, tiny_model_dir):
    path, report = converted["dynamic"]
    float_path, _ = converted["none"]
    assert os.path.getsize(path) < 0.4 * os.path.getsize(float_path)
    assert litert.read_manifest(path)["quantization"] == "dynamic"
    info = model_dir_lib.load_model_dir(tiny_model_dir, load_model=False)
    texts, _, _ = evaluation.read_tsv(SST2_TEST, info, limit=EVAL_LIMIT)
    logits = litert.LiteRTClassifier(path).logits(texts)
    expected = _keras_logits(tiny_model_dir, texts)
    error = np.abs(logits - expected).max()
    assert error == pytest.approx(report["max_abs_diff"], rel=1e-5) and error < 0.25
    # The random model has near-ties; every clear decision must survive quantization.
    margin = np.abs(expected[:, 0] - expected[:, 1])
    clear = margin > 2 * error
    assert clear.sum() >= EVAL_LIMIT // 4
    np.testing.assert_array_equal(logits[clear].argmax(1), expected[clear].argmax(1))


def test_string_file_goes_from_text_to_logits(converted, tiny_model_dir):
    path, report = converted["text"]
    assert report["passed"] and report["max_abs_diff"] < 1e-4
    manifest = litert.read_manifest(path)
    assert manifest["input_kind"] == "text"
    assert set(manifest["custom_ops"]) <= set(litert.TFTEXT_CUSTOM_OPS)
    assert {"FastBertNormalize", "FastWordpieceTokenizeWithOffsets"} <= set(manifest["custom_ops"])
    assert manifest["inputs"] == {"text": {"dtype": "bytes_", "shape_signature": [1]}} or (
        list(manifest["inputs"]) == ["text"])
    classifier = litert.LiteRTClassifier(path)
    assert classifier.is_string_model
    # Accents, a literal special token, an empty text, an over-long text (truncated at 128).
    texts = ["Café crème, naïve!", "the [MASK] was dull", "", "very " * 200]
    predictions = classifier.predict_texts(texts)
    np.testing.assert_allclose(predictions["logits"], _keras_logits(tiny_model_dir, texts),
                               atol=1e-4)
    assert predictions["label_name"] == [str(i) for i in predictions["label"]]


def test_int8_needs_calibration_and_token_ids(tiny_model_dir, tmp_path):
    out = str(tmp_path / "m.tflite")
    with pytest.raises(ValueError, match=r"needs `calibration_path`"):
        tflite.convert(tiny_model_dir, out, quantize="int8")
    with pytest.raises(ValueError, match=r"`quantize=int8` is for the token-id model"):
        tflite.convert(tiny_model_dir, out, quantize="int8", string_input=True,
                       calibration_path=SST2_TRAIN)
    with pytest.raises(ValueError, match=r"`int8_fallback` must be one of"):
        tflite.convert(tiny_model_dir, out, quantize="int8", calibration_path=SST2_TRAIN,
                       int8_fallback="int16")
    with pytest.raises(ValueError, match=r"`quantize` must be one of"):
        tflite.convert(tiny_model_dir, out, quantize="int4")
    with pytest.raises(ValueError, match=r"must end with \.tflite"):
        tflite.convert(tiny_model_dir, str(tmp_path / "m.bin"))
    assert not os.path.exists(out)


def test_selective_int8_report_shows_naive_and_selective(tiny_model_dir, tmp_path):
    out = str(tmp_path / "int8.tflite")
    report = tflite.convert(
        tiny_model_dir, out, quantize="int8", eval_path=SST2_TEST, eval_limit=EVAL_LIMIT,
        calibration_path=SST2_TRAIN, calibration_size=80, validation_size=60,
        int8_target_agreement=1.01, int8_max_float_roles=1, log=lambda message: None,
    )
    names = [variant["name"] for variant in report["variants"]]
    assert names == ["int8-selective", "int8-naive"]
    int8 = report["int8"]
    # The target cannot be met: the search stops at its one role, kept in float in every layer.
    assert [step["step"] for step in int8["search"]][0] == "naive"
    assert len(int8["search"]) == 2 and int8["search"][1]["step"].startswith("role ")
    role = int8["search"][1]["step"].split()[1]
    assert role in quantization.ROLES
    assert int8["float_groups"] and all(g.startswith(role + "/") for g in int8["float_groups"])
    assert int8["integer_compute_ops"] > 0.3 * int8["compute_ops"]
    # The default fallback gives the float ops int8 weights: every fully connected layer but
    # the small classifier computes in int8, statically calibrated or quantized per call.
    assert int8["fallback"] == "dynamic"
    assert int8["int8_fully_connected_fraction"] > 0.99 and int8["int8_weight_fraction"] > 0.95
    assert 0 < int8["static_int8_fully_connected_fraction"] <= int8["int8_fully_connected_fraction"]
    with open(out, "rb") as f:
        summary = flatbuffer.inspect_model(f.read())
    assert summary["tensor_types"].get("INT8", 0) > 0 and summary["custom_ops"] == []
    assert litert.read_manifest(out)["int8_float_groups"] == int8["float_groups"]
    assert np.isfinite(report["max_abs_diff"])
    assert "| naive |" in open(out + ".parity.md", encoding="utf-8").read()


def test_op_roles():
    assert quantization.op_role(
        "FULLY_CONNECTED", "m/bert_encoder/transformer_layer_3/feedforward_output_dense/MatMul"
    ) == ("ffn_output", 3)
    assert quantization.op_role(
        "SOFTMAX", "m/bert_encoder/transformer_layer_0_1/self_attention_layer_1/Softmax"
    ) == ("attention_scores", 0)
    assert quantization.op_role(
        "MEAN", "m/transformer_layer_2/self_attention_layer_norm/moments/mean"
    ) == ("layer_norm", 2)
    assert quantization.op_role("ADD", "m/transformer_layer_5_1/add_1") == ("residual", 5)
    assert quantization.op_role("GATHER", "m/embeddings_1/token_embedding_1/GatherV2") == (
        "embeddings", -1)
    assert quantization.op_role("TANH", "m/bert_encoder_1/pooler_dense_1/Tanh") == ("head", -1)


def test_every_fully_connected_op_of_an_exported_model_has_its_role(converted):
    """The roles come from the op names of the real exported graph: each block's two
    feed-forward layers and its attention projections, never a `residual`."""
    path, _ = converted["none"]
    with open(path, "rb") as f:
        content = f.read()
    roles = collections.Counter()
    layers = set()
    for op_name, tensor_name in flatbuffer.operator_outputs(content):
        if op_name == "FULLY_CONNECTED":
            role, layer = quantization.op_role(op_name, tensor_name)
            roles[role] += 1
            layers.add(layer)
    num_layers = len(layers - {-1})
    assert num_layers >= 1
    assert roles["ffn_intermediate"] == roles["ffn_output"] == num_layers
    # Query, key, value and output per block; the converter may fuse key and value into one.
    assert 3 * num_layers <= roles["attention_projections"] <= 4 * num_layers
    assert set(roles) == {"ffn_intermediate", "ffn_output", "attention_projections", "head"}


def test_flex_ops_fail_the_conversion(tmp_path):
    class ErfModel(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((1, None), tf.float32, name="x")])
        def serve(self, x):
            return {"y": tf.math.erf(x)}

    module = ErfModel()
    path = str(tmp_path / "erf")
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    with pytest.raises(flatbuffer.ConversionError, match=r"without a TFLite builtin kernel"):
        tflite.convert_saved_model(path, "none", False)


def test_variable_ops_fail_the_check():
    class Counter(tf.Module):
        def __init__(self):
            self.total = tf.Variable(tf.zeros((3,)))

        @tf.function(input_signature=[tf.TensorSpec((3,), tf.float32)])
        def add(self, x):
            self.total.assign_add(x)
            return self.total * 2.0

    module = Counter()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.add.get_concrete_function()], module
    )
    converter.experimental_enable_resource_variables = True
    summary = flatbuffer.inspect_model(converter.convert())
    assert "READ_VARIABLE" in summary["variable_ops"]
    with pytest.raises(flatbuffer.ConversionError, match=r"still has variable ops"):
        flatbuffer.check_deployable(summary)


def test_custom_ops_outside_the_allowed_set_fail(converted):
    path, _ = converted["text"]
    with open(path, "rb") as f:
        summary = flatbuffer.inspect_model(f.read())
    flatbuffer.check_deployable(summary, litert.TFTEXT_CUSTOM_OPS)
    with pytest.raises(flatbuffer.ConversionError, match=r"custom ops \[.*FastBertNormalize"):
        flatbuffer.check_deployable(summary)


def test_command_line_exits_non_zero_under_the_agreement_threshold(tiny_model_dir, tmp_path):
    out = str(tmp_path / "cli.tflite")
    command = [
        sys.executable, "-m", "export.tflite", f"--model_dir={tiny_model_dir}", f"--out={out}",
        "--quantize=dynamic", f"--eval={SST2_TEST}", "--eval_limit=8", "--min_agreement=1.01",
        "--model_name=sst2-tiny", "--model_version=2", "--model_license=MIT",
    ]
    result = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), check=False)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "under --min_agreement" in result.stderr
    with open(out + ".parity.json", encoding="utf-8") as f:
        report = json.load(f)
    assert report["passed"] is False and report["min_agreement"] == 1.01
    assert {"accuracy", "keras_accuracy", "label_agreement", "max_abs_diff"} <= set(report)
    found = litert.read_manifest(out)["metadata"]
    assert (found["name"], found["version"], found["license"]) == ("sst2-tiny", "2", "MIT")


def test_quantize_float_weights_matches_dynamic_range_quantization(converted, tmp_path):
    """On a float32 file, the pass that gives selective int8's float ops int8 weights does what
    the converter's dynamic-range quantization does: int8 weights for every fully connected
    layer (computed dynamically quantized) and the embedding table; the same size and nearly the
    same logits as the converter's own dynamic file."""
    float_path, _ = converted["none"]
    dynamic_path, _ = converted["dynamic"]
    with open(float_path, "rb") as f:
        float_content = f.read()
    with open(dynamic_path, "rb") as f:
        dynamic_content = f.read()
    content = flatbuffer.quantize_float_weights(float_content)
    summary = flatbuffer.inspect_model(content)
    # Every layer but the small classifier (under 1,024 weights, like the converter's cut-off).
    arithmetic = summary["fully_connected_macs_by_arithmetic"]
    assert arithmetic == flatbuffer.inspect_model(dynamic_content)[
        "fully_connected_macs_by_arithmetic"]
    assert arithmetic["dynamic_int8"] > 100 * arithmetic.get("float", 0)
    assert summary["int8_weight_fraction"] > 0.95
    assert summary["ops"]["DEQUANTIZE"] >= 1  # After the int8 token-embedding gather.
    assert len(content) < 1.05 * len(dynamic_content)  # As small as dynamic-range int8.
    # Already int8: nothing left to do.
    assert flatbuffer.quantize_float_weights(content) == content
    path = str(tmp_path / "weights_int8.tflite")
    with open(path, "wb") as f:
        f.write(content)
    rng = np.random.default_rng(0)
    feeds = []
    for length in (3, 16, 40):
        token_ids = rng.integers(1000, 3000, (1, length)).astype(np.int32)
        feeds.append({"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
                      "padding_mask": np.ones_like(token_ids)})

    def logits(model_path):
        runner = litert.make_interpreter(model_path).get_signature_runner()
        return np.stack([np.asarray(runner(**feed)["logits"])[0] for feed in feeds])

    ours, theirs, reference = logits(path), logits(dynamic_path), logits(float_path)
    assert np.all(np.isfinite(ours))
    # Both quantize the same way (per-channel symmetric layers, one-scale table), up to rounding:
    # they differ from each other by much less than either differs from float32.
    assert np.abs(ours - theirs).max() < 0.5 * np.abs(theirs - reference).max()
