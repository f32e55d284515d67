"""LiteRT files of every task: question answering, token classification, sentence embeddings.

Each task's tiny random model directory (2 blocks, hidden 64, the first 3,000 MiniLM tokens, in
the `training.finetune` layout) is converted once per module by `export.tflite.convert` with its
metadata, and checked number for number against Keras; the command line's bad input is checked
in fresh processes. The real all-MiniLM-L6-v2 embedding file is checked against the reference
`sentence_embedding` of `../shared/golden/minilm_reference.npz`.
"""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_bert
from export import tflite
from export.core import clients
from export.core import evaluation
from export.core import litert
from export.core import metadata
from keras_bert.models import model_dir as model_dir_lib
from keras_bert.tasks import get_task
from keras_bert.tasks import question_answering
from keras_bert.tasks import token_classification
from keras_bert.text import BertTokenizer
from keras_bert.text.bert_tokenizer import read_vocabulary
from tests.export.model_dirs import TINY_VOCABULARY_SIZE
from tests.test_case import shared_path

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
CONLL_DEV = os.path.join(REPOSITORY, "tests", "data", "conll_tiny", "dev.txt")
CONLL_TRAIN = os.path.join(REPOSITORY, "tests", "data", "conll_tiny", "train.txt")
SQUAD_DEV = shared_path("data", "squad", "dev-v1.1-2articles.json")
SST2_TEST = shared_path("data", "sst2", "test.tsv")
MINILM = shared_path("models", "all-MiniLM-L6-v2")
GOLDEN = shared_path("golden", "minilm_reference.npz")
GOLDEN_TEXTS = shared_path("golden", "minilm_reference_texts.json")
# BertQuestionAnswerer packs 384 tokens: the QA model directory's windows are that long.
QA_SEQUENCE_LENGTH = metadata.QUESTION_ANSWERER_SEQUENCE_LENGTH
QA_EVAL_LIMIT = 12


def write_task_model_dir(directory, task_name, labels=(), sequence_length=64, seed=0,
                         **settings):
    """A tiny random model directory of `task_name` in the `training.finetune` layout."""
    keras.utils.set_random_seed(seed)
    vocabulary = read_vocabulary(shared_path("models", "all-MiniLM-L6-v2", "vocab.txt"))
    encoder = keras_bert.BertEncoder(
        vocabulary_size=TINY_VOCABULARY_SIZE, num_layers=2, num_heads=2, hidden_dim=64,
        intermediate_dim=256, max_sequence_length=max(sequence_length, 64), dropout=0.0,
        initializer_range=0.1,
    )
    task = get_task(task_name)(sequence_length=sequence_length, **settings)
    model = task.build_model(encoder, list(labels))
    config = {"task": task_name, model_dir_lib.SEQUENCE_LENGTH_KEY: sequence_length,
              "init": "random", **task.inference_config()}
    tokenizer = BertTokenizer(vocabulary[:TINY_VOCABULARY_SIZE], lower_case=True)
    model_dir_lib.write_assets(directory, task_name, list(labels), tokenizer, config)
    model_dir_lib.save_model(model, os.path.join(directory, model_dir_lib.MODEL_FILE))
    model_dir_lib.write_json(os.path.join(directory, model_dir_lib.METRICS_FILE), {})
    return directory


def _quiet(message):
    del message


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory):
    directory = write_task_model_dir(
        str(tmp_path_factory.mktemp("qa_dir")), "qa", sequence_length=QA_SEQUENCE_LENGTH,
        doc_stride=128, max_query_length=32,
    )
    out = str(tmp_path_factory.mktemp("qa") / "qa.tflite")
    report = tflite.convert(directory, out, eval_path=SQUAD_DEV, eval_limit=QA_EVAL_LIMIT,
                            log=_quiet)
    return directory, out, report


@pytest.fixture(scope="module")
def tagger_file(tmp_path_factory):
    tags = token_classification.tag_list(token_classification.read_conll(CONLL_TRAIN))
    directory = write_task_model_dir(str(tmp_path_factory.mktemp("ner_dir")),
                                     "token_classification", labels=tags)
    out = str(tmp_path_factory.mktemp("ner") / "ner.tflite")
    report = tflite.convert(directory, out, quantize="none", eval_path=CONLL_DEV, log=_quiet)
    return directory, out, report


@pytest.fixture(scope="module")
def embedder_dir(tmp_path_factory):
    return write_task_model_dir(str(tmp_path_factory.mktemp("embedder_dir")), "text_embedding")


# === Question answering ===


def test_qa_file_has_the_fixed_inputs_and_order_of_bert_question_answerer(qa_file):
    _, path, report = qa_file
    assert report["passed"] and report["task"] == "qa"
    manifest = litert.read_manifest(path)
    assert manifest["fixed_sequence_length"] is True
    assert manifest["input_order"] == ["token_ids", "padding_mask", "segment_ids"]
    assert manifest["output_order"] == ["end_logits", "start_logits"]
    for detail in manifest["inputs"].values():
        assert detail == {"dtype": "int32", "shape_signature": [1, QA_SEQUENCE_LENGTH]}
    # Clients without signatures see the tensors in that order, the outputs named as such.
    interpreter = litert.make_interpreter(path)
    assert [d["name"] for d in interpreter.get_output_details()] == ["end_logits",
                                                                     "start_logits"]
    assert [d["name"].replace("serving_default_", "") for d in interpreter.get_input_details()] == [
        "token_ids:0", "padding_mask:0", "segment_ids:0"]


def test_qa_file_gives_the_keras_logits_and_answers(qa_file):
    directory, path, report = qa_file
    assert report["agreement_name"] == "answer agreement"
    assert report["agreement"] == 1.0 and report["num_examples"] == QA_EVAL_LIMIT
    assert report["num_windows"] >= QA_EVAL_LIMIT
    assert report["max_abs_diff"] < 1e-4
    assert report["exact_match"] == report["keras_exact_match"]
    # Independently of the report: the file's logits on the windows of three questions decode
    # to the answers `training.predict`'s code finds with the Keras model.
    info = model_dir_lib.load_model_dir(directory)
    examples = question_answering.read_squad(SQUAD_DEV)[:3]
    features = question_answering.preprocess(info.preprocessor, examples)
    outputs = litert.LiteRTModel(path).outputs_from_packed(features.inputs)
    answers = question_answering.predict_answers(
        examples, features, outputs["start_logits"], outputs["end_logits"])
    task = info.load_task()
    expected = task.predict(info.model, question_answering.Data(examples, features))
    assert {k: a.text for k, a in answers.items()} == {k: a.text for k, a in expected.items()}


def test_qa_metadata_names_the_tensors_bert_question_answerer_finds(qa_file):
    _, path, _ = qa_file
    found = metadata.read(path)
    assert [entry["name"] for entry in found["inputs"]] == ["ids", "mask", "segment_ids"]
    assert [entry["name"] for entry in found["outputs"]] == ["end_logits", "start_logits"]
    assert found["input_process_units"][0]["type"] == "BertTokenizerOptions"
    assert found["name"] == "qa_dir0" and found["license"] == "Apache-2.0"
    assert litert.read_manifest(path)["metadata"] == found


def test_qa_model_of_another_length_needs_nometadata(tmp_path):
    directory = write_task_model_dir(str(tmp_path / "short_qa"), "qa", sequence_length=64,
                                     doc_stride=32, max_query_length=16)
    out = str(tmp_path / "short_qa.tflite")
    with pytest.raises(ValueError, match=r"`add_metadata`: BertQuestionAnswerer packs exactly "
                                         r"384 tokens.*--nometadata"):
        tflite.convert(directory, out, log=_quiet)
    assert not os.path.exists(out)
    report = tflite.convert(directory, out, add_metadata=False, quantize="dynamic",
                            log=_quiet)
    assert report["metadata"] is False and litert.read_manifest(out)["metadata"] is None
    assert litert.read_manifest(out)["inputs"]["token_ids"]["shape_signature"] == [1, 64]
    assert np.isfinite(report["max_abs_diff"]) and report["agreement"] is not None


# === Token classification ===


def test_tagger_file_gives_the_keras_tags(tagger_file):
    directory, path, report = tagger_file
    assert report["passed"] and report["quantize"] == "none"
    assert report["agreement_name"] == "tag agreement" and report["agreement"] == 1.0
    assert report["num_words"] > 100 and report["max_abs_diff"] < 1e-4
    assert report["entity_f1"] == report["keras_entity_f1"]
    manifest = litert.read_manifest(path)
    info = model_dir_lib.load_model_dir(directory, load_model=False)
    assert manifest["outputs"]["logits"]["shape_signature"] == [1, -1, len(info.labels)]
    assert manifest["inputs"]["token_ids"]["shape_signature"] == [1, -1]
    found = metadata.read(path)
    assert [entry["name"] for entry in found["outputs"]] == ["logits"]
    assert "labels.txt" in found["zip_files"] and "vocab.txt" in found["zip_files"]


# === Sentence embeddings ===


def test_embedding_file_matches_keras_with_and_without_the_tokenizer(embedder_dir, tmp_path):
    out = str(tmp_path / "embedder.tflite")
    report = tflite.convert(embedder_dir, out, eval_path=SST2_TEST, eval_limit=20, log=_quiet)
    assert report["passed"] and report["agreement_name"] == "min cosine"
    assert report["min_cosine"] > 0.99999 and report["max_abs_diff"] < 1e-4
    manifest = litert.read_manifest(out)
    assert manifest["outputs"] == {"embedding": {"dtype": "float32", "shape_signature": [1, 64]}}
    assert manifest["pooling"] == "mean" and manifest["normalize"] is True
    assert [entry["name"] for entry in metadata.read(out)["outputs"]] == ["embedding"]
    # The string file: text in, the same embedding out; no metadata (the clients cannot run it).
    text_out = str(tmp_path / "embedder_text.tflite")
    report = tflite.convert(embedder_dir, text_out, string_input=True, log=_quiet)
    assert report["passed"] and report["metadata"] is False and report["min_cosine"] > 0.99999
    texts = list(evaluation.DEFAULT_TEXTS)
    np.testing.assert_allclose(litert.LiteRTModel(text_out).outputs(texts)["embedding"],
                               litert.LiteRTModel(out).outputs(texts)["embedding"], atol=1e-5)


def test_metadata_does_not_change_the_numbers(converted, tiny_model_dir, tmp_path):
    path, _ = converted["none"]
    assert litert.read_manifest(path)["metadata"]["inputs"][0]["name"] in ("ids", "mask",
                                                                         "segment_ids")
    bare = str(tmp_path / "bare.tflite")
    report = tflite.convert(tiny_model_dir, bare, add_metadata=False, eval_limit=2, log=_quiet)
    assert report["metadata"] is False
    with pytest.raises(ValueError, match=r"has no TFLite Model Metadata"):
        metadata.read(bare)
    assert os.path.getsize(path) > os.path.getsize(bare)
    texts = list(evaluation.DEFAULT_TEXTS)
    with_metadata = litert.LiteRTClassifier(path).logits(texts)
    without = litert.LiteRTClassifier(bare).logits(texts)
    np.testing.assert_array_equal(with_metadata, without)


@pytest.mark.parametrize("quantize,min_cosine", [
    ("none", 0.9999),
    # About 35 s more (measured: golden min cosine 0.9982; 0.9940 with Keras on SST-2 test).
    pytest.param("dynamic", 0.99, marks=pytest.mark.slow),
])
def test_minilm_embedding_file_matches_the_reference(quantize, min_cosine, tmp_path):
    """all-MiniLM-L6-v2 from its checkpoint (`--init`), against sentence-transformers'
    `sentence_embedding` of the golden file, fed the golden token ids (float32 measured:
    min cosine 1 - 5e-13; about 30 s), and through MediaPipe's `TextEmbedder`, which
    tokenizes the golden texts itself from the file's metadata. The golden file was made at
    64 tokens (`max_length`), so the file is exported at that length."""
    out = str(tmp_path / f"minilm_{quantize}.tflite")
    with open(GOLDEN_TEXTS, encoding="utf-8") as f:
        golden_texts = json.load(f)
    report = tflite.convert_checkpoint(MINILM, out, quantize=quantize, eval_limit=3,
                                       sequence_length=golden_texts["max_length"], log=_quiet)
    manifest = litert.read_manifest(out)
    assert manifest["source_checkpoint"] == os.path.abspath(MINILM)
    assert metadata.read(out)["name"] == "all-MiniLM-L6-v2"
    assert report["passed"]
    golden = np.load(GOLDEN)
    model = litert.LiteRTModel(out, num_threads=2)
    packed = {"token_ids": golden["input_ids"], "segment_ids": golden["token_type_ids"],
              "padding_mask": golden["attention_mask"]}
    embeddings = model.outputs_from_packed(packed)["embedding"]
    cosines = evaluation.cosine_similarities(embeddings, golden["sentence_embedding"])
    assert cosines.min() >= min_cosine, cosines
    # The Android client: the single texts (the golden rows of pairs have no one-text form).
    singles = golden_texts["singles"]
    result = clients.run_client(
        "mediapipe", {"model": out, "task": "text_embedder", "texts": singles})
    client_embeddings = np.array([item["embedding"] for item in result["results"]])
    client_cosines = evaluation.cosine_similarities(
        client_embeddings, golden["sentence_embedding"][: len(singles)])
    assert client_cosines.min() >= min_cosine, client_cosines


# === Bad input ===


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "export.tflite", *args], cwd=REPOSITORY, capture_output=True,
        text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), check=False,
    )


def _assert_one_line(result, *patterns):
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    for pattern in patterns:
        assert pattern in lines[-1], lines[-1]


def test_model_dir_of_an_unknown_task_is_one_line(tiny_model_dir, tmp_path):
    directory = str(tmp_path / "unknown_task")
    shutil.copytree(tiny_model_dir, directory)
    label_map = os.path.join(directory, model_dir_lib.LABEL_MAP_FILE)
    with open(label_map, encoding="utf-8") as f:
        content = json.load(f)
    content["task"] = "summarization"
    with open(label_map, "w", encoding="utf-8") as f:
        json.dump(content, f)
    out = str(tmp_path / "unknown.tflite")
    result = _run(f"--model_dir={directory}", f"--out={out}")
    _assert_one_line(result, "`--model_dir`", "label_map.json", "summarization")
    assert not os.path.exists(out)


def test_text_embedding_without_init_is_one_line(tmp_path):
    out = str(tmp_path / "embedder.tflite")
    result = _run("--task=text_embedding", f"--out={out}")
    _assert_one_line(result, "`--task`", "--init")
    assert not os.path.exists(out)


def test_task_flags_that_do_not_fit_the_task_are_one_line(qa_file, tmp_path):
    directory, _, _ = qa_file
    out = str(tmp_path / "qa.tflite")
    result = _run(f"--model_dir={directory}", f"--out={out}", "--string_input")
    _assert_one_line(result, "`--string_input`", "a qa file takes token ids")
    result = _run(f"--model_dir={directory}", f"--out={out}", "--quantize=int8",
                  f"--calibration_data={SST2_TEST}")
    _assert_one_line(result, "`--quantize`", "for classification")
    assert not os.path.exists(out)
