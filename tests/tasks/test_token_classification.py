import os
import warnings

import numpy as np
import pytest

import keras_bert
from tests.test_case import shared_path
from keras_bert.inputs import IGNORED_LABEL
from keras_bert.tasks import token_classification as tc

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "data")


def test_reads_conll_with_docstart_and_pos_columns(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("-DOCSTART- -X- O O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n"
                    "Peter NNP B-NP B-PER\n")
    sentences = tc.read_conll(str(path))
    assert [s.words for s in sentences] == [["EU", "rejects"], ["Peter"]]
    assert [s.tags for s in sentences] == [["B-ORG", "O"], ["B-PER"]]
    assert [s.line_number for s in sentences] == [3, 6]
    assert tc.tag_list(sentences) == ["O", "B-ORG", "B-PER"]


def test_bad_lines_and_unknown_tags_name_file_and_line(tmp_path):
    path = tmp_path / "b.txt"
    path.write_text("EU B-ORG\nlonely\n")
    with pytest.raises(ValueError, match=r"b.txt:2: expected a word and a tag, found 'lonely'"):
        tc.read_conll(str(path))
    path.write_text("EU B-ORG\nsays O\n\nBonn B-LOC\n")
    sentences = tc.read_conll(str(path))
    with pytest.raises(ValueError, match=r"b.txt:4: tag 'B-LOC' is not one of the training tags"):
        tc.encode_tags(sentences, ["O", "B-ORG"], str(path))


def test_first_piece_carries_the_label():
    tokenizer = keras_bert.load_tokenizer(shared_path("models", "all-MiniLM-L6-v2"))
    sentences = [tc.Sentence(["Okafor", "visited", "Lisbon"], ["B-PER", "O", "B-LOC"], 1)]
    task = tc.TokenClassificationTask(sequence_length=16)
    tags = ["O", "B-LOC", "B-PER"]
    features = tc.convert_sentences(tokenizer, sentences, 16)
    data = task.encode_targets(tc.Data("x", sentences, features), tags)
    pieces = [len(tokenizer.tokenize(w).numpy()) for w in sentences[0].words]
    assert pieces[0] > 1  # "okafor" is split into several pieces
    positions = data.features.word_positions[0]
    np.testing.assert_array_equal(positions, [1, 1 + pieces[0], 2 + pieces[0]])
    labels = data.targets[0]
    assert labels[positions].tolist() == [2, 0, 1]
    assert np.sum(labels != IGNORED_LABEL) == 3  # other pieces, [CLS], [SEP], padding ignored


def test_truncated_words_are_predicted_outside():
    tokenizer = keras_bert.load_tokenizer(shared_path("models", "all-MiniLM-L6-v2"))
    features = tc.convert_sentences(tokenizer, [["a", "b", "c", "d", "e"]], sequence_length=5)
    assert features.num_truncated == 1
    np.testing.assert_array_equal(features.word_positions[0], [1, 2, 3, -1, -1])
    logits = np.zeros((1, 5, 2))
    logits[0, :, 1] = 5.0
    tags, probabilities = tc.predict_tags(features, logits, ["O", "B-X"])
    assert tags == [["B-X", "B-X", "B-X", "O", "O"]]
    assert probabilities[0][3] == 0.0


def test_max_seq_length_is_a_deprecated_alias_of_sequence_length():
    tokenizer = keras_bert.load_tokenizer(shared_path("models", "all-MiniLM-L6-v2"))
    words = [["Okafor", "visited", "Lisbon"]]
    with pytest.warns(DeprecationWarning, match="use `sequence_length`"):
        old = tc.convert_sentences(tokenizer, words, max_seq_length=8)
    new = tc.convert_sentences(tokenizer, words, sequence_length=8)
    assert old.inputs["token_ids"].shape == (1, 8)
    for name in new.inputs:
        np.testing.assert_array_equal(old.inputs[name], new.inputs[name])
    np.testing.assert_array_equal(old.labels, new.labels)
    with pytest.warns(DeprecationWarning, match="use `sequence_length`"):
        assert tc.TokenClassificationTask(max_seq_length=16).sequence_length == 16


def test_from_settings_reads_the_file_key_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        # `finetune_config.json` keeps the key `max_seq_length`; flags may carry both names.
        task = tc.TokenClassificationTask.from_settings({"max_seq_length": 16})
        assert task.sequence_length == 16
        task = tc.TokenClassificationTask.from_settings(
            {"sequence_length": 32, "max_seq_length": 32}
        )
        assert task.sequence_length == 32
        assert tc.TokenClassificationTask.from_settings({}).sequence_length == 128


@pytest.mark.parametrize(
    "tags, expected",
    [
        (["B-PER", "I-PER", "O", "B-LOC"], {(0, 1, "PER"), (3, 3, "LOC")}),  # IOB2
        (["I-PER", "I-PER", "B-PER", "O"], {(0, 1, "PER"), (2, 2, "PER")}),  # IOB1
        (["B-PER", "E-PER", "S-LOC", "O"], {(0, 1, "PER"), (2, 2, "LOC")}),  # IOBES
        (["O", "I-ORG", "I-LOC", "O"], {(1, 1, "ORG"), (2, 2, "LOC")}),  # type change
        (["B-PER", "B-PER"], {(0, 0, "PER"), (1, 1, "PER")}),
        (["O", "O"], set()),
    ],
)
def test_entities(tags, expected):
    assert tc.entities(tags) == expected


def test_entity_metrics():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC"]]
    metrics = tc.entity_metrics(gold, predicted)
    # Correct: PER, ORG. Gold: 3 entities. Predicted: 3 entities.
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(2 / 3)
    assert metrics["per_type_f1"] == {"LOC": 0.0, "ORG": 1.0, "PER": 1.0}
    assert tc.entity_metrics(gold, [["O"] * 4, ["O"] * 2])["f1"] == 0.0


def test_repository_data_reads():
    sentences = tc.read_conll(os.path.join(DATA, "conll_tiny", "train.txt"))
    assert len(sentences) == 48
    assert set(tc.tag_list(sentences)) == {"O", "B-PER", "I-PER", "B-LOC", "B-ORG", "I-ORG"}
