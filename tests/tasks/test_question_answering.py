import json
import os

import numpy as np
import pytest

import keras_bert
from tests.test_case import shared_path
from keras_bert.tasks import question_answering as qa
from keras_bert.text import words

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "data")


@pytest.fixture(scope="module")
def tokenizer():
    return keras_bert.load_tokenizer(shared_path("models", "all-MiniLM-L6-v2"))


def _example(context, answer, qas_id="q", question="What?"):
    start = context.index(answer)
    return qa.Example(qas_id, question, context, [(answer, start)], words.split_words(context))


def test_window_starts_cover_the_document():
    assert qa.window_starts(10, 4, 3) == [0, 3, 6]
    assert qa.window_starts(3, 4, 2) == [0]
    assert qa.window_starts(9, 4, 8) == [0, 4, 8]  # the stride never skips tokens


def test_windows_and_targets_point_at_the_answer(tokenizer):
    context = ("The quick brown fox lives in the big forest of Bavaria near a river. "
               "Its friend the owl lives in Hamburg and sings at night.")
    example = _example(context, "Hamburg", question="Where does the owl live?")
    features = qa.convert_examples([example], tokenizer, sequence_length=24, doc_stride=6,
                                   max_query_length=8, is_training=True)
    num_windows = len(features.example_index)
    assert num_windows >= 3
    hamburg = tokenizer.tokenize("hamburg").numpy().tolist()
    found = 0
    for w in range(num_windows):
        start, end = features.start_positions[w], features.end_positions[w]
        ids = features.inputs["token_ids"][w]
        if start == 0:
            assert end == 0
            continue
        found += 1
        assert ids[start : end + 1].tolist() == hamburg
        assert features.inputs["segment_ids"][w, start] == 1
    assert found >= 1
    # Every context token may start an answer in exactly one window.
    owned = sum(int(m.sum()) for m in features.window_max_context)
    first = features.window_words[0][features.window_words[0] >= 0]
    last = features.window_words[-1][features.window_words[-1] >= 0]
    assert first[0] == 0 and last[-1] == len(example.word_spans) - 1
    assert owned == len(tokenizer.tokenize(example.context).numpy())
    counts = np.zeros(len(example.word_spans))
    for w in range(num_windows):
        counts += np.bincount(features.window_words[w][features.window_max_context[w]],
                              minlength=len(example.word_spans))
    assert np.all(counts >= 1)


def test_oracle_logits_decode_to_the_answers(tokenizer):
    examples = qa.read_squad(os.path.join(DATA, "squad_tiny", "dev.json"))
    features = qa.convert_examples(examples, tokenizer, sequence_length=48, doc_stride=16,
                                   max_query_length=16, is_training=True)
    assert features.num_unanswerable == 0
    length = features.inputs["token_ids"].shape[1]
    start_logits = np.full((len(features.example_index), length), -5.0)
    end_logits = np.full_like(start_logits, -5.0)
    rows = np.arange(len(features.example_index))
    answerable = features.start_positions > 0
    start_logits[rows[answerable], features.start_positions[answerable]] = 5.0
    end_logits[rows[answerable], features.end_positions[answerable]] = 5.0
    answers = qa.predict_answers(examples, features, start_logits, end_logits, 30)
    metrics = qa.squad_metrics(examples, answers)
    assert metrics == {"exact_match": 1.0, "f1": 1.0, "num_examples": len(examples)}
    assert all(0.9 < answer.probability <= 1.0 for answer in answers.values())


def test_convert_examples_keeps_max_seq_length_as_a_deprecated_alias(tokenizer):
    example = _example("alpha beta gamma delta", "beta gamma delta")
    with pytest.warns(DeprecationWarning, match="use `sequence_length`"):
        old = qa.convert_examples([example], tokenizer, max_seq_length=16, max_query_length=4)
    new = qa.convert_examples([example], tokenizer, sequence_length=16, max_query_length=4)
    assert old.inputs["token_ids"].shape == (1, 16)
    for name in new.inputs:
        np.testing.assert_array_equal(old.inputs[name], new.inputs[name])


def test_max_answer_length_limits_decoding(tokenizer):
    example = _example("alpha beta gamma delta", "beta gamma delta")
    features = qa.convert_examples([example], tokenizer, sequence_length=16, is_training=False,
                                   max_query_length=4)
    start_logits = np.zeros((1, 16))
    end_logits = np.zeros((1, 16))
    offset = 4  # [CLS] what ? [SEP]
    start_logits[0, offset + 1] = 5.0  # beta
    end_logits[0, offset + 3] = 5.0  # delta
    assert qa.predict_answers([example], features, start_logits, end_logits, 3)["q"].text == "beta gamma delta"
    assert qa.predict_answers([example], features, start_logits, end_logits, 2)["q"].text != "beta gamma delta"


def test_squad_metrics_normalise_answers():
    example = _example("They saw the Eiffel Tower at night.", "the Eiffel Tower")
    example.answers.append(("Eiffel Tower", 13))
    assert qa.squad_metrics([example], {"q": "Eiffel  tower!"})["exact_match"] == 1.0
    metrics = qa.squad_metrics([example], {"q": "the tower at night"})
    assert metrics["exact_match"] == 0.0
    # best reference "the Eiffel Tower" -> "eiffel tower": overlap 1 of 3 predicted, 1 of 2 gold
    assert metrics["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))


def test_bad_files_are_named(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": "abc", "qas": [
        {"id": "x1", "question": "q?", "answers": [{"text": "zz", "answer_start": 0}]}]}]}]}))
    with pytest.raises(ValueError, match=r"bad.json: data\[0\].paragraphs\[0\]: question 'x1': answer 'zz' is not at character 0"):
        qa.read_squad(str(path))
    path.write_text("{")
    with pytest.raises(ValueError, match=r"bad.json:1: invalid JSON"):
        qa.read_squad(str(path))
    with pytest.raises(ValueError, match=r"`sequence_length` \(10\) must exceed `max_query_length` \(64\)"):
        qa.convert_examples([], None, sequence_length=10)
