import json

import numpy as np
import pytest

import keras_bert
from tests.test_case import shared_path
from keras_bert.tasks import classification


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_reads_glue_tsv_with_quotes_as_text(tmp_path):
    path = _write(tmp_path / "train.tsv", 'sentence\tlabel\nsay "hi" \t1\nit \'s bad\t0\n\n')
    examples = classification.read_examples(path)
    assert examples.texts == ['say "hi" ', "it 's bad"]
    assert examples.labels == ["1", "0"] and examples.pairs is None
    assert examples.line_numbers == [2, 3]


def test_reads_pairs_from_csv_and_jsonl(tmp_path):
    csv_path = _write(tmp_path / "d.csv", 'id,premise,hypothesis,gold\n1,"a, b",c,yes\n2,d,"e\nf",no\n')
    examples = classification.read_examples(csv_path, "premise", "hypothesis", "gold")
    assert examples.texts == ["a, b", "d"] and examples.pairs == ["c", "e\nf"]
    jsonl_path = _write(tmp_path / "d.jsonl", '{"q": "x", "p": "y", "y": 3}\n\n{"q": "z", "p": "w", "y": 1}\n')
    examples = classification.read_examples(jsonl_path, "q", "p", "y")
    assert examples.labels == ["3", "1"] and examples.line_numbers == [1, 3]


@pytest.mark.parametrize(
    "name, text, kwargs, message",
    [
        ("a.tsv", "sentence\tlabel\nok\t1\nbroken line\n", {}, r"a.tsv:3: expected 2 TSV columns"),
        ("b.tsv", "text\tlabel\nok\t1\n", {}, r"b.tsv:1: no column 'sentence' in the header; columns are \['text', 'label'\]"),
        ("c.tsv", "sentence\tlabel\nok\t \n", {}, r"c.tsv:2: empty 'label'"),
        ("d.jsonl", '{"sentence": "a", "label": 1}\n{"sentence": "b"\n', {}, r"d.jsonl:2: invalid JSON"),
        ("e.jsonl", '{"sentence": "a", "label": 1}\n{"sentence": "b"}\n', {}, r"e.jsonl:2: no 'label' field"),
        ("f.xml", "x", {}, r"Cannot tell the format of .*f.xml"),
        ("g.tsv", "sentence\tlabel\n", {}, r"g.tsv: no examples"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, name, text, kwargs, message):
    with pytest.raises(ValueError, match=message):
        classification.read_examples(_write(tmp_path / name, text), **kwargs)


def test_labels_are_sorted_numerically_when_numbers():
    assert classification.label_list(["10", "2", "1", "2"]) == ["1", "2", "10"]
    assert classification.label_list(["pos", "neg", "neutral"]) == ["neg", "neutral", "pos"]


def test_unknown_labels_and_bad_regression_targets_name_the_line(tmp_path):
    path = _write(tmp_path / "dev.tsv", "sentence\tlabel\na\t0\nb\t7\n")
    examples = classification.read_examples(path)
    with pytest.raises(ValueError, match=r"dev.tsv:3: label '7' is not one of the training labels \['0', '1'\]"):
        classification.encode_labels(examples, ["0", "1"])
    np.testing.assert_array_equal(classification.encode_labels(examples, ["0", "7"]), [0, 1])
    path = _write(tmp_path / "sts.tsv", "sentence\tlabel\na\t0.5\nb\tnan\n")
    with pytest.raises(ValueError, match=r"sts.tsv:3: regression label 'nan' is not a number"):
        classification.encode_labels(classification.read_examples(path), [], regression=True)


def test_pack_matches_the_tokenizer():
    tokenizer = keras_bert.load_tokenizer(shared_path("models", "all-MiniLM-L6-v2"))
    texts, pairs = ["a fine film", "dull"], ["yes", "no at all"]
    packed = classification.ClassificationTask(sequence_length=8).build_preprocessor(
        tokenizer
    ).pack_numpy(texts, pairs)
    expected = tokenizer.pack(texts, pairs, sequence_length=8)
    for name in ("token_ids", "segment_ids", "padding_mask"):
        assert packed[name].dtype == np.int32
        np.testing.assert_array_equal(packed[name], np.asarray(expected[name]))


def test_classification_metrics():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 2.0]])
    metrics = classification.classification_metrics(logits, np.array([0, 1, 1, 1]), 2)
    assert metrics["accuracy"] == 0.75
    # class 0: P=1/2, R=1 -> 2/3; class 1: P=1, R=2/3 -> 0.8
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert metrics["num_examples"] == 4


def test_regression_metrics():
    metrics = classification.regression_metrics([1.0, 2.0, 3.0], [2.0, 4.0, 6.5])
    assert metrics["pearson"] == pytest.approx(np.corrcoef([1, 2, 3], [2, 4, 6.5])[0, 1])
    assert metrics["spearman"] == pytest.approx(1.0)
    assert metrics["mse"] == pytest.approx((1 + 4 + 12.25) / 3)
    json.dumps(metrics)
