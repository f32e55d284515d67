"""`TextEmbeddingTask` and `write_model_dir`: a checkpoint's sentence embedder as a model
directory that `load_model_dir`, `training.predict` and the exporters read."""

import json
import os

import keras
import numpy as np
import pytest

import keras_bert
from keras_bert.checkpoints import save_encoder
from keras_bert.models import BertTextEmbedder
from keras_bert.models import load_model_dir
from keras_bert.tasks import TASKS
from keras_bert.tasks import TextEmbeddingTask
from keras_bert.tasks import get_task
from keras_bert.tasks import text_embedding
from keras_bert.text import TextClassifierPreprocessor
from keras_bert.text.bert_tokenizer import read_vocabulary
from tests.test_case import shared_path

VOCABULARY_SIZE = 3000


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random 2-block encoder saved as a checkpoint, with the first MiniLM tokens."""
    keras.utils.set_random_seed(0)
    path = str(tmp_path_factory.mktemp("checkpoint") / "tiny")
    encoder = keras_bert.BertEncoder(
        vocabulary_size=VOCABULARY_SIZE, num_layers=2, num_heads=2, hidden_dim=32,
        intermediate_dim=64, max_sequence_length=128,
    )
    save_encoder(encoder, path)
    vocabulary = read_vocabulary(shared_path("models", "all-MiniLM-L6-v2", "vocab.txt"))
    with open(os.path.join(path, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocabulary[:VOCABULARY_SIZE]) + "\n")
    return path


@pytest.fixture(scope="module")
def model_dir(checkpoint, tmp_path_factory):
    return text_embedding.write_model_dir(checkpoint, str(tmp_path_factory.mktemp("embedder")))


def test_registered_and_built_from_settings():
    assert TASKS["text_embedding"] is TextEmbeddingTask
    task = get_task("text_embedding").from_settings(
        {"max_seq_length": 64, "pooling": "cls", "normalize": False, "text_column": "x"})
    assert (task.sequence_length, task.pooling, task.normalize) == (64, "cls", False)
    assert TextEmbeddingTask().sequence_length == 256  # sentence-transformers' for MiniLM
    assert not TextEmbeddingTask.has_labels


def test_model_dir_layout_and_defaults(model_dir, checkpoint):
    with open(os.path.join(model_dir, "label_map.json"), encoding="utf-8") as f:
        assert json.load(f) == {"task": "text_embedding"}
    with open(os.path.join(model_dir, "finetune_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    # The encoder allows 128 tokens: the default 256 is cut to it.
    assert config == {"task": "text_embedding", "max_seq_length": 128, "pooling": "mean",
                      "normalize": True, "init": os.path.abspath(checkpoint),
                      "text_column": "sentence"}
    info = load_model_dir(model_dir)
    assert info.task == "text_embedding" and info.labels == [] and info.sequence_length == 128
    assert isinstance(info.model, BertTextEmbedder)
    assert isinstance(info.preprocessor, TextClassifierPreprocessor)
    assert info.preprocessor.sequence_length == 128


def test_predict_texts_and_format(model_dir):
    info = load_model_dir(model_dir)
    task = info.load_task()
    texts = ["a fine film", "A dull, dull film.", ""]
    results = task.predict_texts(info, texts, batch_size=2)
    embeddings = np.asarray([result["embedding"] for result in results])
    assert embeddings.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    expected = np.asarray(info.model(info.preprocessor.pack_numpy(texts)))
    np.testing.assert_allclose(embeddings, expected, atol=1e-5)
    line = task.format_result(results[0])
    np.testing.assert_allclose([float(value) for value in line.split(" ")], embeddings[0],
                               rtol=1e-5, atol=1e-6)


def test_pooling_normalize_and_length_are_recorded(checkpoint, tmp_path):
    directory = text_embedding.write_model_dir(
        checkpoint, str(tmp_path / "cls"), pooling="cls", normalize=False, sequence_length=16)
    info = load_model_dir(directory)
    assert (info.model.pooling, info.model.normalize, info.sequence_length) == ("cls", False, 16)
    task = info.load_task()
    assert (task.pooling, task.normalize) == ("cls", False)
    embedding = np.asarray(task.predict_texts(info, ["a long text " * 20])[0]["embedding"])
    assert not np.isclose(np.linalg.norm(embedding), 1.0)


def test_serving_spec(model_dir):
    info = load_model_dir(model_dir)
    serving = info.load_task().serving
    assert serving.text_inputs == ("text",) and serving.numeric_outputs == ("embedding",)
    inputs = serving.read_inputs(info, None, 3)
    assert len(inputs["text"]) == 3
    packed = info.preprocessor(inputs["text"])
    outputs = serving.text_signature_outputs(info.model, info.preprocessor, [], inputs)
    np.testing.assert_allclose(
        outputs["embedding"].numpy(), np.asarray(info.model(packed)), atol=1e-5)
    check = serving.check(info, inputs, {"embedding": outputs["embedding"].numpy()}, 1e-5)
    assert check["passed"] and check["min_cosine"] > 0.99999
    wrong = {"embedding": -outputs["embedding"].numpy()}
    assert not serving.check(info, inputs, wrong, 1e-5)["passed"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pooling": "max"}, r"`pooling` must be one of \('mean', 'cls'\), received 'max'"),
        ({"normalize": "yes"}, r"`normalize` must be a bool, received 'yes'"),
        ({"sequence_length": 2}, r"`sequence_length` must be an int >= 3, received 2"),
        ({"sequence_length": 512}, r"`sequence_length` \(512\) must not exceed the "
                                   r"checkpoint's `max_sequence_length` \(128\)"),
    ],
)
def test_bad_arguments_write_nothing(checkpoint, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        text_embedding.write_model_dir(checkpoint, str(tmp_path / "out"), **kwargs)
    assert not os.path.exists(tmp_path / "out")


def test_not_a_checkpoint_and_not_trainable(tmp_path):
    with pytest.raises(ValueError, match="not a checkpoint directory"):
        text_embedding.write_model_dir(str(tmp_path), str(tmp_path / "out"))
    with pytest.raises(ValueError, match="'text_embedding' is not fine-tuned"):
        TextEmbeddingTask().read("train.tsv", None)
