"""End-to-end runs of `python -m training.finetune` on the small data of tests/data.

The fast tests train a randomly initialised `bert_tiny` (with the MiniLM
vocabulary) for a few steps and check the model directory contract; the slow
ones check that QA and NER metrics respond to learning.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_bert.models import BertClassifier, load_model_dir
from tests.test_case import shared_path

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
DATA = os.path.join(REPO, "tests", "data")
VOCAB = shared_path("models", "all-MiniLM-L6-v2", "vocab.txt")
MINILM = shared_path("models", "all-MiniLM-L6-v2")


def run_module(module, *args, stdin=None, timeout=600):
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, input=stdin,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
    )
    if result.returncode != 0:
        raise AssertionError(f"{module} failed:\n{result.stderr[-4000:]}")
    return result


def finetune(model_dir, *args):
    run_module("training.finetune", f"--model_dir={model_dir}", *args)
    with open(os.path.join(model_dir, "metrics.json")) as f:
        return json.load(f)


def _topics(split):
    return os.path.join(DATA, "topics", f"{split}.tsv")


@pytest.fixture(scope="module")
def topics_model_dir(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("topics"))
    finetune(
        model_dir, "--task=classification", "--init=bert_tiny", f"--vocab={VOCAB}",
        f"--train={_topics('train')}", f"--dev={_topics('dev')}", f"--eval={_topics('test')}",
        "--max_train_steps=6", "--eval_every_steps=3", "--learning_rate=1e-3",
    )
    return model_dir


def test_model_dir_contract(topics_model_dir):
    names = sorted(os.listdir(topics_model_dir))
    assert [n for n in names if not n.startswith(".")] == [
        "finetune_config.json", "label_map.json", "metrics.json", "model.keras", "tokenizer"]
    assert sorted(os.listdir(os.path.join(topics_model_dir, "tokenizer"))) == [
        "tokenizer_config.json", "vocab.txt"]
    with open(os.path.join(topics_model_dir, "label_map.json")) as f:
        assert json.load(f) == {"task": "classification",
                                "labels": ["business", "science", "sports", "world"],
                                "regression": False}
    with open(os.path.join(topics_model_dir, "finetune_config.json")) as f:
        config = json.load(f)
    assert {k: config[k] for k in ("task", "max_seq_length", "text_column", "pair_column",
                                   "label_column", "init")} == {
        "task": "classification", "max_seq_length": 128, "text_column": "sentence",
        "pair_column": None, "label_column": "label", "init": "bert_tiny"}
    with open(os.path.join(topics_model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["split"] == "eval" and metrics["num_examples"] == 40
    assert 0.0 <= metrics["accuracy"] <= 1.0 and 0.0 <= metrics["macro_f1"] <= 1.0
    assert metrics["dev"]["num_examples"] == 40
    assert [h["step"] for h in metrics["dev"]["history"]] == [3, 6]
    assert metrics["train"]["steps"] == 6

    model = keras.saving.load_model(os.path.join(topics_model_dir, "model.keras"), safe_mode=True)
    assert isinstance(model, BertClassifier)
    inputs = {name: np.ones((2, 5), "int32") for name in ("token_ids", "segment_ids", "padding_mask")}
    assert tuple(model(inputs).shape) == (2, 4)


def test_reported_accuracy_is_the_saved_models(topics_model_dir):
    """metrics.json's accuracy is recomputed from model.keras and the eval file."""
    from keras_bert.tasks import classification

    loaded = load_model_dir(topics_model_dir)
    examples = classification.read_examples(_topics("test"))
    inputs = loaded.tokenizer.pack(examples.texts, sequence_length=loaded.sequence_length)
    predictions = np.argmax(np.asarray(loaded.model(inputs)), axis=-1)
    accuracy = np.mean([loaded.labels[p] == label for p, label in zip(predictions, examples.labels)])
    with open(os.path.join(topics_model_dir, "metrics.json")) as f:
        assert json.load(f)["accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_predict_prints_one_line_per_input(topics_model_dir):
    result = run_module("training.predict", f"--model_dir={topics_model_dir}",
                        stdin="the lions beat the eagles\n\nacme shares rose\n")
    lines = result.stdout.strip().split("\n")
    assert len(lines) == 2
    for line in lines:
        label, probability = line.split("\t")
        assert label in ("business", "science", "sports", "world")
        assert 0.25 <= float(probability) <= 1.0


def test_predict_functions(topics_model_dir):
    from training import predict

    model_dir = load_model_dir(topics_model_dir)
    results = predict.predict_lines(model_dir, ["first text", "second text"])
    assert len(results) == 2
    assert sum(results[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    row = json.loads(predict.format_result(model_dir.load_task(), results[0], "json"))
    assert row["label"] == max(row["probabilities"], key=row["probabilities"].get)
    assert predict.read_inputs(["a", "b"]) == ["a", "b"]
    assert predict.read_inputs([], stdin=["x\n", "  \n", "y\r\n"]) == ["x", "y"]


def test_bad_input_file_is_reported_with_its_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\nfine\t1\nno label here\n")
    with pytest.raises(AssertionError, match=r"bad.tsv:3: expected 2 TSV columns"):
        finetune(str(tmp_path / "out"), "--init=bert_tiny", f"--vocab={VOCAB}", f"--train={bad}")


def test_regression_on_pairs(tmp_path):
    rows = ["first\tsecond\tscore"] + [
        f"{a} film\t{b} movie\t{(i % 5) / 4:.2f}"
        for i, (a, b) in enumerate(zip(["good", "bad", "odd", "fine"] * 8, ["nice", "poor"] * 16))
    ]
    data = tmp_path / "pairs.tsv"
    data.write_text("\n".join(rows) + "\n")
    model_dir = tmp_path / "out"
    metrics = finetune(
        str(model_dir), "--init=bert_tiny", f"--vocab={VOCAB}", f"--train={data}",
        f"--dev={data}", "--text_column=first", "--pair_column=second", "--label_column=score",
        "--regression", "--max_train_steps=3", "--sequence_length=16",
    )
    assert metrics["split"] == "dev" and set(metrics) >= {"mse", "pearson", "spearman"}
    with open(model_dir / "label_map.json") as f:
        assert json.load(f) == {"task": "classification", "labels": [], "regression": True}
    with open(model_dir / "finetune_config.json") as f:
        config = json.load(f)
    assert (config["pair_column"], config["max_seq_length"]) == ("second", 16)

    from training import predict

    loaded = load_model_dir(str(model_dir))
    (result,) = predict.predict_lines(loaded, ["a film\ta movie"])
    assert np.isfinite(result["value"])
    with pytest.raises(ValueError, match=r"Expected 'text<TAB>pair' separated by a tab"):
        predict.predict_lines(loaded, ["no tab"])


@pytest.mark.slow
def test_mirrored_over_two_cpus_and_mixed_precision(tmp_path):
    metrics = finetune(
        str(tmp_path), "--init=bert_tiny", f"--vocab={VOCAB}", f"--train={_topics('train')}",
        f"--eval={_topics('test')}", "--max_train_steps=4", "--strategy=mirrored",
        "--num_cpu_devices=2", "--mixed_precision=mixed_bfloat16",
    )
    assert metrics["train"]["num_replicas"] == 2 and metrics["train"]["steps"] == 4
    model = keras.saving.load_model(str(tmp_path / "model.keras"), safe_mode=True)
    # Saved to compute in float32 whatever the training precision.
    assert model.encoder.dtype_policy.name == "float32"


def _learning_gain(tmp_path, task_args, metric, trained_args):
    untrained = finetune(str(tmp_path / "untrained"), *task_args, "--max_train_steps=1",
                         "--learning_rate=1e-12")
    trained = finetune(str(tmp_path / "trained"), *task_args, *trained_args)
    return untrained[metric], trained[metric], trained


@pytest.mark.slow
def test_qa_metrics_respond_to_learning(tmp_path):
    squad = os.path.join(DATA, "squad_tiny")
    task_args = ["--task=qa", f"--init={MINILM}", f"--train={squad}/train.json",
                 f"--eval={squad}/dev.json", "--sequence_length=64", "--doc_stride=24",
                 "--max_query_length=16", "--batch_size=16"]
    before, after, trained = _learning_gain(
        tmp_path, task_args, "f1", ["--num_train_epochs=10", "--learning_rate=2e-4"])
    assert trained["num_windows"] > trained["num_examples"]  # contexts span several windows
    # 144 training questions: far from solved, far above chance.
    assert before < 0.15 and after > before + 0.25, (before, after)
    loaded = load_model_dir(str(tmp_path / "trained"))
    assert loaded.task == "qa" and loaded.config["doc_stride"] == 24
    result = run_module(
        "training.predict", f"--model_dir={tmp_path / 'trained'}",
        "Where does Omar live?\tOmar lives in Lima and works as a pilot. Maya lives in Oslo.")
    answer, probability = result.stdout.strip().split("\t")
    assert answer and 0 < float(probability) <= 1


@pytest.mark.slow
def test_token_classification_metrics_respond_to_learning(tmp_path):
    conll = os.path.join(DATA, "conll_tiny")
    task_args = ["--task=token_classification", f"--init={MINILM}",
                 f"--train={conll}/train.txt", f"--dev={conll}/dev.txt",
                 f"--eval={conll}/dev.txt", "--batch_size=8"]
    before, after, trained = _learning_gain(
        tmp_path, task_args, "f1", ["--num_train_epochs=8", "--learning_rate=1e-4"])
    assert before < 0.3 and after > 0.8, (before, after)
    with open(tmp_path / "trained" / "label_map.json") as f:
        assert json.load(f) == {"task": "token_classification",
                                "labels": ["O", "B-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]}
    result = run_module("training.predict", f"--model_dir={tmp_path / 'trained'}",
                        "Maya Okafor visited Lisbon .")
    tagged = [item.split("(")[0] for item in result.stdout.strip().split(" ")]
    assert tagged == ["Maya/B-PER", "Okafor/I-PER", "visited/O", "Lisbon/B-LOC", "./O"]
