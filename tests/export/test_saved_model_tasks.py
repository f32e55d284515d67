"""The TF Serving export of every task: QA, token tagging and sentence embeddings.

Each SavedModel is verified in fresh processes by `export.saved_model` itself (the task's
`ServingSpec.check` against `training.predict`), and the tests check the same numbers again in
this process: the string signature's outputs against `training.predict.predict_lines`, the
token-id signature's against the Keras model's.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_bert
from export import saved_model
from keras_bert.checkpoints import save_encoder
from keras_bert.models import BertSpanLabeler
from keras_bert.models import BertTokenClassifier
from keras_bert.models import load_model_dir
from keras_bert.models import model_dir as model_dir_lib
from keras_bert.tasks import question_answering
from keras_bert.tasks import text_embedding
from keras_bert.tasks import token_classification
from keras_bert.text import BertTokenizer
from keras_bert.text.bert_tokenizer import read_vocabulary
from tests.export.model_dirs import TINY_VOCABULARY_SIZE
from tests.test_case import shared_path
from training.predict import predict_lines

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
SQUAD_TINY = os.path.join(REPO, "tests", "data", "squad_tiny", "dev.json")
CONLL_TINY = os.path.join(REPO, "tests", "data", "conll_tiny", "dev.txt")
MINILM = shared_path("models", "all-MiniLM-L6-v2")


def _tiny_encoder(seed, sequence_length):
    keras.utils.set_random_seed(seed)
    return keras_bert.BertEncoder(
        vocabulary_size=TINY_VOCABULARY_SIZE, num_layers=2, num_heads=2, hidden_dim=64,
        intermediate_dim=128, max_sequence_length=sequence_length, dropout=0.0,
        initializer_range=0.1,
    )


def _tiny_tokenizer():
    vocabulary = read_vocabulary(shared_path("models", "all-MiniLM-L6-v2", "vocab.txt"))
    return BertTokenizer(vocabulary[:TINY_VOCABULARY_SIZE], lower_case=True)


def _write_model_dir(directory, task, labels, model, config):
    """A model directory in the `training.finetune` layout, holding an untrained `model`
    (initialised wide enough that its outputs differ between tokens)."""
    config = dict(config, task=task.name, init="random")
    model_dir_lib.write_assets(directory, task.name, labels, _tiny_tokenizer(), config)
    model_dir_lib.save_model(model, os.path.join(directory, model_dir_lib.MODEL_FILE))
    model_dir_lib.write_json(os.path.join(directory, model_dir_lib.METRICS_FILE), {})
    return directory


@pytest.fixture(scope="module")
def qa_model_dir(tmp_path_factory):
    # 64-token windows 24 apart: the contexts of squad_tiny span several windows.
    config = {model_dir_lib.SEQUENCE_LENGTH_KEY: 64, "doc_stride": 24, "max_query_length": 16,
              "max_answer_length": 10}
    model = BertSpanLabeler(_tiny_encoder(1, 64), initializer_range=1.0)
    return _write_model_dir(str(tmp_path_factory.mktemp("qa")),
                            question_answering.QuestionAnsweringTask(), [], model, config)


@pytest.fixture(scope="module")
def token_model_dir(tmp_path_factory):
    labels = token_classification.tag_list(token_classification.read_conll(CONLL_TINY))
    model = BertTokenClassifier(_tiny_encoder(2, 32), num_classes=len(labels), dropout=0.0,
                                initializer_range=1.0)
    # 32 tokens: some sentences lose words (tagged "O" with probability 0).
    return _write_model_dir(str(tmp_path_factory.mktemp("ner")),
                            token_classification.TokenClassificationTask(), labels, model,
                            {model_dir_lib.SEQUENCE_LENGTH_KEY: 32})


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A random encoder saved as a checkpoint, with its vocabulary: what `--init` reads."""
    path = str(tmp_path_factory.mktemp("checkpoint") / "tiny")
    save_encoder(_tiny_encoder(3, 64), path)
    with open(os.path.join(path, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(_tiny_tokenizer().get_vocabulary()) + "\n")
    return path


def _export(model_dir, tmp_path, **kwargs):
    result = saved_model.export_saved_model(model_dir, str(tmp_path / "serving"), **kwargs)
    assert result["verification"]["passed"], json.dumps(result["verification"], indent=2)
    return result, tf.saved_model.load(result["path"])


def _decoded(values):
    return [value.decode("utf-8") for value in values.numpy().tolist()]


def test_graph_decoding_equals_the_numpy_decoding_with_ties():
    """`decode_answers` and `decode_tags` (traced into the SavedModels) pick what
    `predict_answers` and `predict_tags` pick, ties included (small integer logits)."""
    rng = np.random.default_rng(0)
    task = question_answering.QuestionAnsweringTask(sequence_length=40, doc_stride=12,
                                                    max_query_length=8, max_answer_length=5)
    preprocessor = task.build_preprocessor(_tiny_tokenizer())
    examples = question_answering.read_squad(SQUAD_TINY)[:12]
    examples.append(question_answering.Example("empty", "What?", "", [], []))
    features = question_answering.preprocess(preprocessor, examples)
    windows = preprocessor([e.question for e in examples], [e.context for e in examples])
    padding = features.inputs["padding_mask"] == 0
    start_logits = np.where(padding, -1e9, rng.integers(0, 3, padding.shape)).astype(np.float32)
    end_logits = np.where(padding, -1e9, rng.integers(0, 3, padding.shape)).astype(np.float32)
    expected = question_answering.predict_answers(examples, features, start_logits, end_logits,
                                                  max_answer_length=5)
    decoded = question_answering.decode_answers(
        windows, start_logits, end_logits, tf.constant([e.context for e in examples]), 5)
    for index, example in enumerate(examples):
        answer = expected[example.qas_id]
        assert decoded["answer"][index].numpy().decode() == answer.text
        assert (decoded["start"][index], decoded["end"][index]) == (answer.start, answer.end)
        assert decoded["score"][index] == np.float32(answer.score)
        np.testing.assert_allclose(decoded["probability"][index], answer.probability, rtol=1e-6)

    sentences = token_classification.read_conll(CONLL_TINY)
    tags = token_classification.tag_list(sentences)
    tagger = token_classification.TokenClassifierPreprocessor(_tiny_tokenizer(), 16)
    word_lists = [s.words for s in sentences]
    features = token_classification.preprocess(tagger, word_lists)
    logits = rng.integers(0, 2, (len(word_lists), 16, len(tags))).astype(np.float32)
    expected_tags, expected_scores = token_classification.predict_tags(features, logits, tags)
    words = tf.ragged.constant(word_lists)
    decoded = token_classification.decode_tags(
        words, tf.constant(tagger(words)["word_ids"]), logits, tags)
    for row, (row_tags, row_scores) in enumerate(zip(expected_tags, expected_scores)):
        count = len(row_tags)
        assert [t.decode() for t in decoded["tags"][row, :count].numpy()] == row_tags
        np.testing.assert_allclose(decoded["scores"][row, :count], row_scores, rtol=1e-6)


@pytest.fixture(scope="module")
def qa_exported(qa_model_dir, tmp_path_factory):
    return _export(qa_model_dir, tmp_path_factory.mktemp("qa_export"), eval_path=SQUAD_TINY)


def test_qa_answers_equal_training_predict_on_every_question(qa_model_dir, qa_exported):
    result, loaded = qa_exported
    served_check = result["verification"]["serving_default_fresh_process"]
    assert served_check["num_questions"] == 48 and served_check["answer_agreement"] == 1.0
    assert served_check["project_modules_imported"] == []
    assert set(loaded.signatures) == {"serving_default", "predict_token_ids"}

    examples = question_answering.read_squad(SQUAD_TINY)
    questions = [example.question for example in examples]
    contexts = [example.context for example in examples]
    served = loaded.signatures["serving_default"](
        question=tf.constant(questions), context=tf.constant(contexts))
    assert set(served) == {"answer", "score", "probability", "start", "end"}
    info = load_model_dir(qa_model_dir)
    expected = predict_lines(info, [f"{q}\t{c}" for q, c in zip(questions, contexts)])
    answers = _decoded(served["answer"])
    assert answers == [row["answer"] for row in expected]
    # The character offsets cut the answer from the context; `end` is exclusive.
    for answer, context, start, end, row in zip(
            answers, contexts, served["start"].numpy(), served["end"].numpy(), expected):
        assert (start, end) == (row["start"], row["end"]) and context[start:end] == answer
    np.testing.assert_allclose(served["score"].numpy(), [row["score"] for row in expected],
                               atol=1e-4)
    np.testing.assert_allclose(served["probability"].numpy(),
                               [row["probability"] for row in expected], atol=1e-5)
    # Several windows per context: the decoding runs over all of them.
    windows = info.preprocessor(questions, contexts)
    assert len(windows["example_index"]) > 2 * len(questions)

    by_ids = loaded.signatures["predict_token_ids"](
        **{name: windows[name] for name in ("token_ids", "segment_ids", "padding_mask")})
    logits = info.model({name: windows[name] for name in ("token_ids", "segment_ids",
                                                          "padding_mask")})
    for name in ("start_logits", "end_logits"):
        np.testing.assert_allclose(by_ids[name].numpy(), logits[name].numpy(), atol=1e-4)


def test_qa_without_an_answer_with_accents_and_long_contexts(qa_model_dir, qa_exported):
    _, loaded = qa_exported
    info = load_model_dir(qa_model_dir)
    task = info.load_task()
    # The built-in check pairs: an empty context, accents, a context of several windows.
    inputs = task.serving.read_inputs(info, None, None)
    served = loaded.signatures["serving_default"](
        **{name: tf.constant(values) for name, values in inputs.items()})
    outputs = {name: value.numpy() for name, value in served.items()}
    outputs["answer"] = np.array(_decoded(served["answer"]))
    check = task.serving.check(info, inputs, outputs, 1e-4)
    assert check["passed"] and check["answer_agreement"] == 1.0, check
    empty = inputs["context"].index("")
    assert outputs["answer"][empty] == "" and outputs["start"][empty] == -1
    assert outputs["score"][empty] == -np.inf and outputs["probability"][empty] == 0.0
    accented = next(i for i, context in enumerate(inputs["context"]) if "Zoë" in context)
    start, end = outputs["start"][accented], outputs["end"][accented]
    assert inputs["context"][accented][start:end] == outputs["answer"][accented] != ""


def test_token_tags_equal_training_predict(token_model_dir, tmp_path):
    result, loaded = _export(token_model_dir, tmp_path, eval_path=CONLL_TINY)
    check = result["verification"]["serving_default_fresh_process"]
    assert check["tag_agreement"] == 1.0 and check["word_agreement"] == 1.0
    texts = [" ".join(s.words) for s in token_classification.read_conll(CONLL_TINY)]
    texts += ["", "Okafor   visited\tLisbon .", " ".join(["Lisbon"] * 40)]
    served = loaded.signatures["serving_default"](text=tf.constant(texts))
    assert set(served) == {"words", "num_words", "tags", "scores"}
    expected = predict_lines(load_model_dir(token_model_dir), texts)
    num_words = served["num_words"].numpy()
    words, tags = served["words"].numpy(), served["tags"].numpy()
    truncated = 0
    for row, result_row in enumerate(expected):
        count = num_words[row]
        assert [w.decode() for w in words[row, :count]] == result_row["words"]
        assert [t.decode() for t in tags[row, :count]] == result_row["tags"]
        assert all(t == b"" for t in tags[row, count:])  # padding
        np.testing.assert_allclose(served["scores"].numpy()[row, :count],
                                   result_row["probabilities"], atol=1e-5)
        truncated += int(np.sum(served["scores"].numpy()[row, :count] == 0.0))
    assert truncated > 0  # words past the 32-token window are tagged "O", probability 0
    assert list(num_words[-3:]) == [0, 4, 40]

    info = load_model_dir(token_model_dir)
    packed = info.preprocessor(texts[:4])
    inputs = {name: packed[name] for name in ("token_ids", "segment_ids", "padding_mask")}
    np.testing.assert_allclose(
        loaded.signatures["predict_token_ids"](**inputs)["logits"].numpy(),
        info.model(inputs).numpy(), atol=1e-4)


def test_text_embedding_from_init_on_the_command_line(tiny_checkpoint, tmp_path):
    out = tmp_path / "serving"
    subprocess.run(
        [sys.executable, "-m", "export.saved_model", f"--init={tiny_checkpoint}",
         "--task=text_embedding", f"--out={out}", "--pooling=cls", "--nonormalize",
         "--sequence_length=48", f"--report={tmp_path / 'report.json'}"],
        cwd=REPO, check=True, capture_output=True, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
    )
    with open(tmp_path / "report.json", encoding="utf-8") as f:
        report = json.load(f)
    assert report["verification"]["passed"]
    assert report["verification"]["serving_default_fresh_process"]["min_cosine"] > 0.99999
    loaded = tf.saved_model.load(str(out / "1"))
    texts = ["a fine film", "Café crème, naïve résumé !", ""]
    served = loaded.signatures["serving_default"](text=tf.constant(texts))["embedding"].numpy()
    # The same model built here: [CLS] vectors, not normalised, texts packed to 48 tokens.
    directory = text_embedding.write_model_dir(tiny_checkpoint, str(tmp_path / "dir"),
                                               pooling="cls", normalize=False,
                                               sequence_length=48)
    expected = np.asarray([row["embedding"] for row in predict_lines(load_model_dir(directory),
                                                                     texts)])
    assert served.shape == (3, 64)
    np.testing.assert_allclose(served, expected, atol=1e-5)
    assert not np.allclose(np.linalg.norm(served, axis=1), 1.0)


@pytest.mark.slow  # ~60 s; the fast proof of parity is tests/models/test_bert_text_embedder.py
def test_minilm_embedding_saved_model_matches_sentence_transformers(tmp_path):
    directory = text_embedding.write_model_dir(MINILM, str(tmp_path / "minilm"))
    info = load_model_dir(directory, load_model=False)
    assert info.sequence_length == 256 and info.config["pooling"] == "mean"
    _, loaded = _export(directory, tmp_path, eval_limit=4)
    golden = np.load(shared_path("golden", "minilm_reference.npz"))
    embedding = loaded.signatures["predict_token_ids"](
        token_ids=tf.constant(golden["input_ids"]),
        segment_ids=tf.constant(golden["token_type_ids"]),
        padding_mask=tf.constant(golden["attention_mask"]),
    )["embedding"].numpy()
    reference = golden["sentence_embedding"]
    cosine = (embedding * reference).sum(axis=1) / (
        np.linalg.norm(embedding, axis=1) * np.linalg.norm(reference, axis=1))
    assert cosine.min() >= 0.9999, cosine


def _write_unknown_task_dir(directory, tiny_model_dir):
    shutil.copytree(tiny_model_dir, directory)
    path = os.path.join(directory, model_dir_lib.LABEL_MAP_FILE)
    with open(path, encoding="utf-8") as f:
        label_map = json.load(f)
    label_map["task"] = "summarization"
    with open(path, "w", encoding="utf-8") as f:
        json.dump(label_map, f)
    return directory


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--task=text_embedding"], r"`--task` \('text_embedding'\): needs --init=CHECKPOINT"),
        (["--init=MODEL_DIR", "--task=qa"], r"`--task` \('qa'\): --init builds one of "
                                           r"\['text_embedding'\]"),
        (["--model_dir=MODEL_DIR", "--init=MODEL_DIR", "--task=text_embedding"],
         r"`--init` \(.*\): give either --model_dir or --init, not both"),
        (["--model_dir=UNKNOWN"], r"label_map.json: `task` must be one of .*found 'summarization'"),
    ],
)
def test_bad_flags_are_one_line_and_write_nothing(arguments, message, tiny_model_dir, tmp_path):
    unknown = _write_unknown_task_dir(str(tmp_path / "unknown"), tiny_model_dir)
    arguments = [a.replace("UNKNOWN", unknown).replace("MODEL_DIR", tiny_model_dir)
                 for a in arguments]
    out = tmp_path / "serving"
    result = subprocess.run(
        [sys.executable, "-m", "export.saved_model", f"--out={out}", *arguments],
        cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert any(re.search(message, line) for line in lines), result.stderr
    assert not out.exists()
