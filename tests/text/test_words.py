import functools

import numpy as np
import pytest
import tensorflow as tf

import keras_bert
from tests.test_case import shared_path
from keras_bert.text import reference_normalization
from keras_bert.text import words


def test_split_words_like_bert():
    text = "Dr. Smith (1895–1943) met 李雷 in São Paulo.\u3000Fine"
    spans = words.split_words(text)
    assert [text[s:e] for s, e in spans] == [
        "Dr", ".", "Smith", "(", "1895", "–", "1943", ")", "met", "李", "雷", "in", "São",
        "Paulo", ".", "Fine"]


def test_word_by_word_tokenization_matches_whole_text():
    tokenizer = keras_bert.load_tokenizer(shared_path("models", "all-MiniLM-L6-v2"))
    text = "Dr. Smith (1895–1943) met Ångström's friends in São Paulo, 2x faster!"
    pieces = words.tokenize_words(tokenizer, [[text[s:e] for s, e in words.split_words(text)]])
    flat = [int(i) for word in pieces[0] for i in word]
    assert flat == tokenizer.tokenize(text).numpy().tolist()
    assert words.tokenize_words(tokenizer, [[], ["a"]])[0] == []


# === One splitter, on the reference's tables ===

ALL_CODE_POINTS = np.array([cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF])
LETTER, WHITE_SPACE, SINGLE = 0, 1, 2


@functools.lru_cache(maxsize=1)
def _reference_classes():
    """The class of every code point by `reference_normalization`'s predicates."""
    classes = np.full(len(ALL_CODE_POINTS), LETTER)
    for i, code_point in enumerate(ALL_CODE_POINTS.tolist()):
        if reference_normalization.is_reference_white_space(code_point):
            classes[i] = WHITE_SPACE
        elif reference_normalization.is_reference_punctuation(
            code_point
        ) or reference_normalization.is_reference_cjk(code_point):
            classes[i] = SINGLE
    return classes


def test_splitter_classes_every_code_point_as_the_reference_tables_do():
    """`x?y` is one word around a letter, two around white space, three around a single."""
    texts = tf.constant([f"x{chr(cp)}y" for cp in ALL_CODE_POINTS.tolist()])
    words_per_text = np.concatenate([
        words.split_words_tensor(texts[start : start + 200_000])[1].row_lengths().numpy()
        for start in range(0, len(ALL_CODE_POINTS), 200_000)
    ])
    got = np.select([words_per_text == 2, words_per_text == 3], [WHITE_SPACE, SINGLE], LETTER)
    expected = _reference_classes()
    mismatches = ALL_CODE_POINTS[got != expected]
    assert not mismatches.size, [f"U+{cp:04X}" for cp in mismatches[:20]]
    assert np.all(np.isin(words_per_text, [1, 2, 3]))
    # The reference's CJK Extension E starts at U+2B920, not U+2B820 (its quirk, kept).
    assert words.split_words("x\U0002B820y") == [(0, 3)]
    assert words.split_words("x\U0002B920y") == [(0, 1), (1, 2), (2, 3)]
    # Line and paragraph separators are white space for the reference (it maps them to " ").
    assert words.split_words("a\u2028b\u2029c") == [(0, 1), (2, 3), (4, 5)]


def test_reference_predicates_match_the_reference_pre_tokenizer():
    """`is_reference_punctuation` and `is_reference_white_space` against `tokenizers`."""
    pre_tokenizers = pytest.importorskip("tokenizers.pre_tokenizers")
    # Every code point between two letters, in one text: code point i is at character 2i + 1.
    text = "x" + "".join(chr(cp) + "x" for cp in ALL_CODE_POINTS.tolist())
    covered = np.zeros(len(text), bool)
    single = np.zeros(len(text), bool)
    for _, (start, end) in pre_tokenizers.BertPreTokenizer().pre_tokenize_str(text):
        covered[start:end] = True
        single[start] = end - start == 1
    covered, single = covered[1::2], single[1::2]
    # The reference normalizer drops control characters first, some of which
    # (U+000B, U+000C, U+0085) its pre-tokenizer would take for white space.
    dropped = reference_normalization.normalization_table(False)
    is_dropped = np.array([dropped.get(cp) == "" for cp in ALL_CODE_POINTS.tolist()])
    expected = _reference_classes()
    is_cjk = np.array(
        [reference_normalization.is_reference_cjk(cp) for cp in ALL_CODE_POINTS.tolist()]
    )
    # The reference normalizer isolates CJK ideographs; its pre-tokenizer the punctuation.
    punctuation = np.logical_and(expected == SINGLE, ~is_cjk)
    np.testing.assert_array_equal(single & ~is_dropped, punctuation)
    np.testing.assert_array_equal(~covered & ~is_dropped, expected == WHITE_SPACE)


def test_split_words_batch_and_tensor_agree():
    texts = ["Dr. Smith (1895–1943) met 李雷.", "", "  ", "São\u3000Paulo!"]
    spans = words.split_words_batch(texts)
    assert spans == [words.split_words(text) for text in texts]
    assert spans[1:3] == [[], []]
    pieces, starts, ends = words.split_words_tensor(tf.constant(texts))
    for text, row, row_starts, row_ends in zip(
        texts, pieces.to_list(), starts.to_list(), ends.to_list()
    ):
        assert [piece.decode("utf-8") for piece in row] == [
            text[s:e] for s, e in zip(row_starts, row_ends)
        ]
    traced = tf.function(lambda t: words.split_words_tensor(t)[1])
    assert traced(tf.constant(texts)).to_list() == starts.to_list()
    at_white_space, _, _ = words.split_words_tensor(tf.constant(texts), split_punctuation=False)
    assert [[w.decode("utf-8") for w in row] for row in at_white_space.to_list()] == [
        text.split() for text in texts
    ]
    assert words.split_words_batch([]) == []
