"""TFLite Model Metadata: what we write, read back, and what the Android clients make of it.

Small real files (a 2-block classifier of the tiny model directory, a span labeler at
BertQuestionAnswerer's fixed `(1, 384)`, a mean-pooling embedder) are given metadata and run
in the LiteRT interpreter and in the real clients, MediaPipe Tasks and the LiteRT Task Library,
each in its own virtualenv (`scripts/setup_clients.sh`), through `export.core.clients`.
"""

import io
import os
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_bert
from export.core import metadata
from keras_bert.inputs import INPUT_NAMES
from keras_bert.models import BertSpanLabeler
from keras_bert.models import BertTextEmbedder
from keras_bert.models import model_dir as model_dir_lib
from keras_bert.text import BertTokenizer
from keras_bert.text.bert_tokenizer import read_vocabulary
from export.core import clients
from tests.export import model_dirs
from tests.export import token_id_models
from tests.test_case import shared_path

LABELS = ["negative", "positive"]
INFO = metadata.ModelInfo(
    name="tiny_sst2", description="A tiny random SST-2 classifier.", version="3",
    author="keras-bert tests", license="Apache-2.0",
)
NUM_SENTENCES = 12
QUESTIONS = [
    ("who was the president in 1990 ?",
     "the president of the united states in 1990 was george bush , a republican ."),
    ("what color is the sky ?", "on a clear day the sky is blue and the grass is green ."),
]


def _token_id_tflite(model, directory, sequence_length=None, output_name="logits"):
    """The model's `.tflite` with `(1, sequence_length)` int32 inputs, as `export.tflite` makes
    its token-id files (a single-example SavedModel, builtin ops only); dict outputs keep their
    names, a single tensor is named `output_name`."""
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(inputs):
        outputs = model(inputs, training=False)
        return outputs if isinstance(outputs, dict) else {output_name: outputs}

    specs = {name: tf.TensorSpec((1, sequence_length), tf.int32, name=name)
             for name in INPUT_NAMES}
    archive.add_endpoint("serving_default", serve, input_signature=[specs])
    saved_model = os.path.join(directory, "saved_model")
    archive.write_out(saved_model, verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def _tiny_encoder(vocabulary_size, seed):
    keras.utils.set_random_seed(seed)
    return keras_bert.BertEncoder(
        vocabulary_size=vocabulary_size, num_layers=1, num_heads=2, hidden_dim=32,
        intermediate_dim=64, max_sequence_length=metadata.QUESTION_ANSWERER_SEQUENCE_LENGTH,
        dropout=0.0, initializer_range=0.5,
    )


def _write(path, content):
    with open(path, "wb") as f:
        f.write(content)
    return path


def _run(content, packed):
    """The file's outputs on each packed example, cut to its real length."""
    interpreter = Interpreter(model_content=content)
    runner = interpreter.get_signature_runner()
    outputs = []
    for i in range(len(packed["padding_mask"])):
        length = int(np.sum(packed["padding_mask"][i]))
        outputs.append(runner(**{
            name: np.asarray(packed[name][i:i + 1, :length], np.int32) for name in INPUT_NAMES
        }))
    return outputs


def _ascii_sentences(limit):
    texts, _ = model_dirs.read_tsv(shared_path("data", "sst2", "test.tsv"))
    return [text for text in texts if text.isascii()][:limit]


@pytest.fixture(scope="module")
def classifier_files(tiny_model_dir, tmp_path_factory):
    """The tiny classifier's `.tflite` without and with metadata, and its vocabulary."""
    directory = str(tmp_path_factory.mktemp("metadata_classifier"))
    info = model_dir_lib.load_model_dir(tiny_model_dir, load_model=False)
    plain = _token_id_tflite(info.load_model(), directory)
    vocabulary_path = os.path.join(tiny_model_dir, "tokenizer", "vocab.txt")
    populated = metadata.populate(
        plain, kind="classifier", model_info=INFO, vocabulary_path=vocabulary_path,
        lower_case=True, labels=LABELS,
    )
    return {
        "plain": plain, "populated": populated, "vocabulary_path": vocabulary_path,
        "path": _write(os.path.join(directory, "classifier.tflite"), populated),
        "preprocessor": info.preprocessor,
    }


@pytest.fixture(scope="module")
def sst2_logits(classifier_files):
    """Real SST-2 sentences (ASCII only: the clients keep accents) and our interpreter's
    logits for them, tokenized by the project's preprocessor."""
    texts = _ascii_sentences(NUM_SENTENCES)
    packed = classifier_files["preprocessor"].pack_numpy(texts)
    logits = np.concatenate(
        [outputs["logits"] for outputs in _run(classifier_files["plain"], packed)]
    )
    return texts, logits


# === Our writer and reader ===


def test_read_round_trip(classifier_files):
    content = classifier_files["populated"]
    read = metadata.read(content)
    assert (read["name"], read["description"], read["version"], read["author"],
            read["license"]) == (INFO.name, INFO.description, INFO.version, INFO.author,
                                 INFO.license)
    # A VOCABULARY file (1.0.1) and a BertTokenizer input process unit (1.1.0).
    assert read["min_parser_version"] == "1.1.0"
    # One entry per model input, in the model's order, named after the role of its tensor.
    roles = {"ids": "token_ids", "mask": "padding_mask", "segment_ids": "segment_ids"}
    interpreter = Interpreter(model_content=content)
    assert [entry["tensor"] for entry in read["inputs"]] == [
        detail["name"] for detail in interpreter.get_input_details()
    ]
    for entry in read["inputs"]:
        assert roles[entry["name"]] in entry["tensor"]
    assert sorted(entry["name"] for entry in read["inputs"]) == ["ids", "mask", "segment_ids"]
    assert read["input_process_units"] == [
        {"type": "BertTokenizerOptions", "vocab_files": ["vocab.txt"]}
    ]
    [output] = read["outputs"]
    assert (output["name"], output["signature_key"], output["associated_files"]) == (
        "probability", "logits", ["labels.txt"])
    assert sorted((f["name"], f["type"]) for f in read["associated_files"]) == [
        ("labels.txt", "TENSOR_AXIS_LABELS"), ("vocab.txt", "VOCABULARY")]
    assert read["zip_files"] == ["vocab.txt", "labels.txt"]
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        with open(classifier_files["vocabulary_path"], "rb") as f:
            assert archive.read("vocab.txt") == f.read()
        assert archive.read("labels.txt").decode("utf-8").splitlines() == LABELS
        # Stored: the clients map the files out of the model buffer, uncompressed.
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
    # The same from the path, and the same bytes again for the same inputs.
    assert metadata.read(classifier_files["path"]) == read
    assert metadata.populate(
        classifier_files["plain"], kind="classifier", model_info=INFO,
        vocabulary_path=classifier_files["vocabulary_path"], lower_case=True, labels=LABELS,
    ) == content


def test_tagger_kind_names_the_tag_file(classifier_files):
    content = metadata.populate(
        classifier_files["plain"], kind="tagger", model_info=INFO,
        vocabulary_path=classifier_files["vocabulary_path"], lower_case=True,
        labels=["O", "B-PER"],
    )
    [output] = metadata.read(content)["outputs"]
    assert (output["name"], output["associated_files"]) == ("logits", ["labels.txt"])


def test_file_still_runs_in_litert_with_the_same_logits(classifier_files, sst2_logits):
    texts, logits = sst2_logits
    packed = classifier_files["preprocessor"].pack_numpy(texts)
    with_metadata = np.concatenate(
        [outputs["logits"] for outputs in _run(classifier_files["populated"], packed)]
    )
    np.testing.assert_array_equal(with_metadata, logits)


def test_a_file_without_metadata_has_none_to_read(classifier_files):
    with pytest.raises(ValueError, match="no TFLite Model Metadata"):
        metadata.read(classifier_files["plain"])


# === The clients ===


def _scores_by_label(result):
    return np.array([
        [{c["name"]: c["score"] for c in item["categories"]}[label] for label in LABELS]
        for item in result["results"]
    ])


def test_mediapipe_text_classifier_scores_are_the_logits(classifier_files, sst2_logits):
    texts, logits = sst2_logits
    result = clients.run_client("mediapipe", {
        "model": classifier_files["path"], "task": "text_classifier", "texts": texts})
    assert result["client_version"] == "1.2.2"
    # No softmax in the file: the scores are the logits, labelled from labels.txt.
    np.testing.assert_allclose(_scores_by_label(result), logits, atol=1e-4)
    for item in result["results"]:
        assert sorted(c["index"] for c in item["categories"]) == [0, 1]


def test_bert_nl_classifier_scores_are_the_logits(classifier_files, sst2_logits):
    texts, logits = sst2_logits
    result = clients.run_client("tflite_support", {
        "model": classifier_files["path"], "task": "bert_nl_classifier", "texts": texts})
    assert result["client_version"] == "0.4.4"
    np.testing.assert_allclose(_scores_by_label(result), logits, atol=1e-4)


def test_mediapipe_text_embedder_gives_the_files_embedding(tiny_model_dir, tmp_path):
    vocabulary_path = os.path.join(tiny_model_dir, "tokenizer", "vocab.txt")
    vocabulary = read_vocabulary(vocabulary_path)
    embedder = BertTextEmbedder(_tiny_encoder(len(vocabulary), seed=1), pooling="mean")
    content = metadata.populate(
        _token_id_tflite(embedder, str(tmp_path), output_name="embedding"), kind="embedder",
        model_info=metadata.ModelInfo("tiny_embedder"), vocabulary_path=vocabulary_path,
        lower_case=True,
    )
    [output] = metadata.read(content)["outputs"]
    assert output["name"] == "embedding"
    path = _write(str(tmp_path / "embedder.tflite"), content)
    texts = _ascii_sentences(4)
    result = clients.run_client("mediapipe", {
        "model": path, "task": "text_embedder", "texts": texts})
    packed = BertTokenizer(vocabulary, lower_case=True).pack(texts, sequence_length=128)
    expected = np.concatenate(
        [outputs["embedding"] for outputs in _run(content, {
            name: np.asarray(value) for name, value in packed.items()})]
    )
    actual = np.array([item["embedding"] for item in result["results"]])
    np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_bert_question_answerer_answers_from_the_files_logits(tiny_model_dir, tmp_path):
    vocabulary_path = os.path.join(tiny_model_dir, "tokenizer", "vocab.txt")
    vocabulary = read_vocabulary(vocabulary_path)
    reader = BertSpanLabeler(_tiny_encoder(len(vocabulary), seed=2), initializer_range=1.0)
    length = metadata.QUESTION_ANSWERER_SEQUENCE_LENGTH
    plain = _token_id_tflite(reader, str(tmp_path), sequence_length=length)
    content = metadata.populate(
        plain, kind="question_answerer", model_info=metadata.ModelInfo("tiny_reader"),
        vocabulary_path=vocabulary_path, lower_case=True,
    )
    assert sorted(o["name"] for o in metadata.read(content)["outputs"]) == [
        "end_logits", "start_logits"]
    path = _write(str(tmp_path / "reader.tflite"), content)
    result = clients.run_client("tflite_support", {
        "model": path, "task": "bert_question_answerer",
        "questions": [{"question": q, "context": c} for q, c in QUESTIONS]})
    tokenizer = BertTokenizer(vocabulary, lower_case=True)
    for (question, context), item in zip(QUESTIONS, result["results"]):
        assert item["answers"], question
        best = item["answers"][0]
        assert best["text"] in context
        # The client packed `[CLS] question [SEP] context [SEP]` as we do and read the span
        # scores from the right outputs: its logit is the file's start + end logit.
        packed = tokenizer.pack([question], [context], sequence_length=length)
        interpreter = Interpreter(model_content=plain)
        outputs = interpreter.get_signature_runner()(
            **{name: np.asarray(packed[name], np.int32) for name in INPUT_NAMES})
        expected = outputs["start_logits"][0, best["start"]] + outputs["end_logits"][0,
                                                                                    best["end"]]
        np.testing.assert_allclose(best["logit"], expected, atol=1e-4)


def test_run_client_without_its_virtualenv_says_how_to_make_it(monkeypatch, tmp_path):
    monkeypatch.setattr(clients, "ROOT", str(tmp_path))
    with pytest.raises(clients.ClientError, match="scripts/setup_clients.sh"):
        clients.run_client("mediapipe", {"model": "x.tflite", "task": "text_classifier"})
    with pytest.raises(ValueError, match="`name`"):
        clients.run_client("coreml", {})


# === Bad arguments ===


@pytest.fixture(scope="module")
def string_input_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("metadata_string") / "echo.tflite")
    with open(token_id_models.write_string_input_tflite(path), "rb") as f:
        return f.read()


def _populate(content, vocabulary, **overrides):
    arguments = dict(kind="classifier", model_info=INFO, vocabulary_path=vocabulary,
                     lower_case=True, labels=LABELS)
    arguments.update(overrides)
    return metadata.populate(content, **arguments)


@pytest.mark.parametrize("overrides, message", [
    ({"kind": "regressor"}, r"`kind` \('regressor'\) must be one of"),
    ({"labels": None}, r"`labels` \(None\) must be a non-empty list"),
    ({"labels": ["a", "b", "c"]}, r"`labels` has 3 names but the output"),
    ({"labels": ["a", "b\nc"]}, r"`labels` entry"),
    ({"kind": "embedder"}, r"`labels` must be None for kind 'embedder'"),
    ({"lower_case": False}, r"`lower_case` \(False\) must be True"),
    ({"model_info": {"name": "x"}}, r"`model_info` must be a metadata.ModelInfo"),
    ({"model_info": metadata.ModelInfo(" ")}, r"`model_info.name` \(' '\) must not be empty"),
    ({"vocabulary_path": "/nonexistent/vocab.txt"}, r"`vocabulary_path` .* is not a file"),
    ({"kind": "question_answerer", "labels": None},
     r"fixed shape \(1, 384\).*has \(1, -1\)"),
])
def test_bad_arguments(classifier_files, overrides, message):
    with pytest.raises(ValueError, match=message):
        _populate(classifier_files["plain"], classifier_files["vocabulary_path"], **overrides)


def test_vocabulary_without_special_tokens(classifier_files, tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\nthe\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"`vocabulary_path` .* lacks \[CLS\] and \[SEP\]"):
        _populate(classifier_files["plain"], str(path))


def test_model_without_the_three_inputs(classifier_files, string_input_file):
    with pytest.raises(ValueError, match=r"`model_content` must take exactly three int32 "
                                         r"inputs.*\['text serving_default_text:0'\]"):
        _populate(string_input_file, classifier_files["vocabulary_path"])


def test_bytes_that_are_not_a_model(classifier_files):
    with pytest.raises(ValueError, match="`model_content` must be the bytes of a .tflite file"):
        _populate(b"PK\x03\x04 not a model", classifier_files["vocabulary_path"])


def test_model_that_already_has_metadata(classifier_files):
    with pytest.raises(ValueError, match="`model_content` already has TFLite Model Metadata"):
        _populate(classifier_files["populated"], classifier_files["vocabulary_path"])
