"""Checkpoint import: parity with the reference outputs, and clear errors."""

import json
import os
import shutil

import keras
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import keras_bert
from keras_bert import BertEncoder
from keras_bert.checkpoints import CheckpointError, read_checkpoint, save_encoder
from tests.test_case import shared_path, to_numpy

HF_DIR = shared_path("models", "all-MiniLM-L6-v2")
GOOGLE_DIR = shared_path("models", "all-MiniLM-L6-v2-google-ckpt")
GOLDEN = shared_path("golden", "minilm_reference.npz")


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(GOLDEN))


@pytest.fixture(scope="module")
def hf_encoder():
    return keras_bert.load_encoder(HF_DIR)


def _run(encoder, golden, length=None):
    inputs = {
        "token_ids": golden["input_ids"],
        "segment_ids": golden["token_type_ids"],
        "padding_mask": golden["attention_mask"],
    }
    if length is not None:
        inputs = {k: v[:, :length] for k, v in inputs.items()}
    return keras.tree.map_structure(to_numpy, encoder(inputs))


def _assert_matches_reference(encoder, golden):
    outputs = _run(encoder, golden)
    real = golden["attention_mask"].astype(bool)
    assert len(outputs["encoder_outputs"]) == golden["hidden_states"].shape[0] == 7
    for layer, (ours, theirs) in enumerate(zip(outputs["encoder_outputs"], golden["hidden_states"])):
        difference = np.abs(ours[real] - theirs[real]).max()
        assert difference <= 1e-4, f"hidden state {layer}: max |diff| {difference}"
    difference = np.abs(outputs["sequence_output"][real] - golden["sequence_output"][real]).max()
    assert difference <= 1e-4, f"sequence_output: max |diff| {difference}"
    difference = np.abs(outputs["pooled_output"] - golden["pooled_output"]).max()
    assert difference <= 1e-4, f"pooled_output: max |diff| {difference}"


def test_hugging_face_checkpoint_matches_reference(hf_encoder, golden):
    assert isinstance(hf_encoder, BertEncoder)
    assert hf_encoder.num_layers == 6 and hf_encoder.hidden_dim == 384
    _assert_matches_reference(hf_encoder, golden)


def test_google_checkpoint_matches_reference(golden):
    encoder = keras_bert.load_encoder(GOOGLE_DIR)
    assert isinstance(encoder, BertEncoder)
    _assert_matches_reference(encoder, golden)


def test_sentence_embedding_matches_reference(hf_encoder, golden):
    outputs = _run(hf_encoder, golden)
    mask = golden["attention_mask"][..., None].astype("float32")
    mean = (outputs["sequence_output"] * mask).sum(1) / mask.sum(1)
    mean /= np.linalg.norm(mean, axis=-1, keepdims=True)
    np.testing.assert_allclose(mean, golden["sentence_embedding"], atol=1e-5)


def test_padding_to_a_longer_length_keeps_real_positions(hf_encoder, golden):
    # Rows 2..5 are short single sentences; pad them from their own length to 64.
    real_lengths = golden["attention_mask"].sum(1)
    row = int(np.argmin(real_lengths))
    length = int(real_lengths[row])
    short = {
        "token_ids": golden["input_ids"][row : row + 1, :length],
        "segment_ids": golden["token_type_ids"][row : row + 1, :length],
        "padding_mask": golden["attention_mask"][row : row + 1, :length],
    }
    padded = {k: golden[n][row : row + 1] for k, n in (
        ("token_ids", "input_ids"), ("segment_ids", "token_type_ids"), ("padding_mask", "attention_mask"))}
    a = keras.tree.map_structure(to_numpy, hf_encoder(short))
    b = keras.tree.map_structure(to_numpy, hf_encoder(padded))
    for x, y in zip(a["encoder_outputs"], b["encoder_outputs"]):
        assert np.abs(x - y[:, :length]).max() <= 1e-5
    assert np.abs(a["pooled_output"] - b["pooled_output"]).max() <= 1e-5


def test_overrides_change_behaviour_not_weights(golden):
    encoder = keras_bert.load_encoder(HF_DIR, dropout=0.0)
    assert encoder.dropout == 0.0
    _assert_matches_reference(encoder, golden)


def test_native_format_round_trip(hf_encoder, golden, tmp_path):
    path = str(tmp_path / "native")
    save_encoder(hf_encoder, path)
    assert sorted(os.listdir(path)) == ["encoder.weights.h5", "encoder_config.json"]
    restored = keras_bert.load_encoder(path)
    a, b = _run(hf_encoder, golden, 16), _run(restored, golden, 16)
    np.testing.assert_array_equal(a["sequence_output"], b["sequence_output"])
    # Saving again over an existing directory replaces it whole.
    save_encoder(hf_encoder, path)
    assert sorted(os.listdir(path)) == ["encoder.weights.h5", "encoder_config.json"]


def test_keras_file_is_loaded_safely(tmp_path):
    encoder = BertEncoder.from_preset("bert_tiny", vocabulary_size=50)
    path = str(tmp_path / "tiny.keras")
    encoder.save(path)
    restored = keras_bert.load_encoder(path)
    assert isinstance(restored, BertEncoder)


def test_google_checkpoint_without_heads_reports_none():
    checkpoint = read_checkpoint(GOOGLE_DIR)
    assert checkpoint.format == "google"
    assert checkpoint.head_weights == {}


def test_hugging_face_pretraining_heads_are_read(tmp_path):
    directory = tmp_path / "with_heads"
    shutil.copytree(HF_DIR, directory)
    tensors = load_file(str(directory / "model.safetensors"))
    tensors = {"bert." + k: v for k, v in tensors.items()}
    rng = np.random.default_rng(0)
    tensors["cls.predictions.transform.dense.weight"] = rng.normal(size=(384, 384)).astype("float32")
    tensors["cls.predictions.bias"] = rng.normal(size=(30522,)).astype("float32")
    tensors["cls.seq_relationship.weight"] = rng.normal(size=(2, 384)).astype("float32")
    save_file(tensors, str(directory / "model.safetensors"))
    checkpoint = read_checkpoint(str(directory))
    assert checkpoint.format == "huggingface"
    np.testing.assert_array_equal(
        checkpoint.head_weights["mlm_transform_dense/kernel"],
        tensors["cls.predictions.transform.dense.weight"].T,
    )
    assert checkpoint.head_weights["nsp_dense/kernel"].shape == (384, 2)
    assert checkpoint.head_weights["mlm_output_bias"].shape == (30522,)


def _copy_with_config(source, destination, config_name, **changes):
    shutil.copytree(source, destination)
    with open(os.path.join(destination, config_name)) as f:
        config = json.load(f)
    config.update(changes)
    with open(os.path.join(destination, config_name), "w") as f:
        json.dump(config, f)
    return str(destination)


def test_shape_mismatch_names_variable_and_both_shapes(tmp_path):
    path = _copy_with_config(GOOGLE_DIR, tmp_path / "bad", "bert_config.json", intermediate_size=1024)
    with pytest.raises(
        CheckpointError,
        match=r"'bert/encoder/layer_0/intermediate/dense/kernel' has shape \(384, 1536\), "
        r"but the model config needs \(384, 1024\)",
    ):
        keras_bert.load_encoder(path)


def test_vocabulary_mismatch_is_reported(tmp_path):
    path = _copy_with_config(HF_DIR, tmp_path / "bad", "config.json", vocab_size=30000)
    with pytest.raises(CheckpointError, match=r"'embeddings.word_embeddings.weight' has shape \(30522, 384\)"):
        keras_bert.load_encoder(path)


def test_missing_weights_are_listed(tmp_path):
    directory = tmp_path / "missing"
    shutil.copytree(HF_DIR, directory)
    tensors = load_file(str(directory / "model.safetensors"))
    del tensors["encoder.layer.3.output.dense.weight"]
    save_file(tensors, str(directory / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing 1 weights .*encoder\.layer\.3\.output\.dense\.weight"):
        keras_bert.load_encoder(str(directory))


def test_pickle_checkpoints_are_refused(tmp_path):
    directory = tmp_path / "pickled"
    directory.mkdir()
    shutil.copy(os.path.join(HF_DIR, "config.json"), directory)
    (directory / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(CheckpointError, match=r"Pickled checkpoints are never loaded"):
        keras_bert.load_encoder(str(directory))


def test_corrupted_safetensors_is_not_a_checkpoint(tmp_path):
    directory = tmp_path / "corrupt"
    directory.mkdir()
    shutil.copy(os.path.join(HF_DIR, "config.json"), directory)
    (directory / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match=r"is not a readable safetensors file"):
        keras_bert.load_encoder(str(directory))


def test_truncated_google_checkpoint(tmp_path):
    directory = tmp_path / "truncated"
    shutil.copytree(GOOGLE_DIR, directory)
    data = directory / "bert_model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"Cannot read variable .* \(truncated or corrupted"):
        keras_bert.load_encoder(str(directory))


def test_paths_that_are_not_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match=r"does not exist"):
        keras_bert.load_encoder(str(tmp_path / "nowhere"))
    with pytest.raises(CheckpointError, match=r"is not a checkpoint directory"):
        keras_bert.load_encoder(str(tmp_path))
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    with pytest.raises(CheckpointError, match=r"is a file, not a checkpoint"):
        keras_bert.load_encoder(str(text_file))
    assert issubclass(CheckpointError, ValueError)


def test_keras_file_with_a_lambda_layer_is_refused(tmp_path):
    # A Lambda layer carries Python bytecode; safe_mode must refuse to run it.
    inputs = keras.Input(shape=(4,))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    path = str(tmp_path / "lambda.keras")
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(CheckpointError, match=r"(?s)Cannot load Keras model file .*lambda.keras.*safe_mode"):
        keras_bert.load_encoder(path)
