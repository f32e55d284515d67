import itertools

import numpy as np
import pytest

from keras_bert.models import best_span


def _brute_force(start_logits, end_logits, max_answer_length, start_mask, end_mask):
    best = None
    for s, e in itertools.product(range(len(start_logits)), repeat=2):
        if start_mask[s] and end_mask[e] and s <= e < s + max_answer_length:
            score = start_logits[s] + end_logits[e]
            if best is None or score > best[2]:
                best = (s, e, score)
    return best


def test_matches_brute_force_search():
    rng = np.random.default_rng(0)
    for _ in range(50):
        length = int(rng.integers(1, 12))
        start_logits, end_logits = rng.normal(size=length), rng.normal(size=length)
        start_mask, end_mask = rng.random(length) < 0.7, rng.random(length) < 0.7
        max_answer_length = int(rng.integers(1, 5))
        expected = _brute_force(start_logits, end_logits, max_answer_length, start_mask, end_mask)
        actual = best_span(start_logits, end_logits, max_answer_length, start_mask, end_mask)
        if expected is None:
            assert actual is None
        else:
            assert actual[:2] == expected[:2]
            assert actual[2] == pytest.approx(expected[2])


def test_end_before_start_and_long_spans_are_excluded():
    start_logits = np.array([0.0, 0.0, 9.0, 0.0])
    end_logits = np.array([0.0, 8.0, 0.0, 1.0])
    # Best raw pair (2, 1) has end < start; (2, 3) has length 2.
    assert best_span(start_logits, end_logits, 2, np.ones(4, bool))[:2] == (2, 3)
    assert best_span(start_logits, end_logits, 1, np.ones(4, bool))[:2] == (2, 2)


def test_no_valid_span_and_bad_arguments():
    assert best_span(np.zeros(3), np.zeros(3), 5, np.zeros(3, bool)) is None
    with pytest.raises(ValueError, match=r"`max_answer_length` must be a positive integer, received 0"):
        best_span(np.zeros(3), np.zeros(3), 0, np.ones(3, bool))
    with pytest.raises(ValueError, match=r"must be 1-D of one shape"):
        best_span(np.zeros(3), np.zeros(4), 2, np.ones(3, bool))
