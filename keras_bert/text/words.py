"""Words of a text as the reference BERT pre-tokenizer cuts them, and their WordPieces.

Task data that labels words (answer spans, entity tags) is tokenized one word at
a time, so that every WordPiece belongs to exactly one word and predictions map
back to words and characters of the original text.

Words are cut where the reference cuts them: white space separates words, and every
punctuation character and CJK ideograph is a word of its own. What counts as white space,
punctuation and CJK is `keras_bert.text.reference_normalization`'s (the reference's Unicode 8.0
punctuation, its CJK blocks with Extension E from U+2B920), compiled once into a table of
code point ranges. The splitting runs as TensorFlow ops (`split_words_tensor`): in eager code,
in `tf.data` and inside a traced `tf.function`; `split_words` is its one-text Python form.

- `split_words(text)`: character spans `(start, end)` of the words of one str.
- `split_words_batch(texts)`: the same for a list of str, in one call.
- `split_words_tensor(texts)`: words and their character spans, as ragged tensors.
- `tokenize_words(tokenizer, word_lists)`: WordPiece ids of every word of lists of words.
"""

import functools

import numpy as np
import tensorflow as tf

from keras_bert.text import reference_normalization

# Words tokenized per call: bounds the memory of the graph tokenizer on big files.
_TOKENIZE_CHUNK = 100_000
# Texts split per call by `split_words_batch`: bounds the memory of the per-character tensors.
_SPLIT_CHUNK = 1024

# Word-splitting classes of a code point.
_LETTER = 0  # part of a word (also characters the tokenizer drops, such as controls)
_WHITE_SPACE = 1  # separates words
_SINGLE = 2  # a word of its own: punctuation, CJK ideographs

_NUM_CODE_POINTS = 0x110000


@functools.lru_cache(maxsize=1)
def character_class_ranges():
    """The word-splitting class of every code point, as sorted ranges (computed once).

    Returns:
        A tuple `(starts, classes)` of int32 numpy arrays of the same length: the code points
        from `starts[i]` up to `starts[i + 1] - 1` have class `classes[i]` (0 letter, 1 white
        space, 2 a word of its own).
    """
    classes = np.full(_NUM_CODE_POINTS, _LETTER, np.int32)
    for code_point in range(_NUM_CODE_POINTS):
        if reference_normalization.is_reference_white_space(code_point):
            classes[code_point] = _WHITE_SPACE
        elif reference_normalization.is_reference_punctuation(code_point):
            classes[code_point] = _SINGLE
    for start, end in reference_normalization.REFERENCE_CJK_RANGES:
        classes[start : end + 1] = _SINGLE
    starts = np.concatenate([[0], np.flatnonzero(np.diff(classes)) + 1]).astype(np.int32)
    return starts, classes[starts]


def _character_classes(code_points):
    """int32 class of each code point of an int32 `(num_chars,)` tensor."""
    starts, classes = character_class_ranges()
    index = tf.searchsorted(tf.constant(starts), code_points, side="right") - 1
    return tf.gather(tf.constant(classes), index)


def split_words_tensor(texts, split_punctuation=True):
    """Words of each text and their character spans, in TensorFlow ops.

    Args:
        texts: string `Tensor` of shape `(batch_size,)`.
        split_punctuation: bool. Whether punctuation and CJK ideographs are words of their
            own (the reference pre-tokenizer's words). `False` splits at white space only.
            Defaults to `True`.

    Returns:
        A tuple `(words, starts, ends)` of `tf.RaggedTensor`s of shape `(batch_size, None)`:
        the words (string), and the offsets of their first and one-past-last characters
        (int32, in Unicode code points, as Python indexes str).
    """
    code_points = tf.strings.unicode_decode(texts, "UTF-8")
    values = code_points.flat_values
    row_ids = code_points.value_rowids()
    row_starts = code_points.row_starts()
    positions = tf.range(tf.size(values, out_type=tf.int64)) - tf.gather(row_starts, row_ids)
    row_lengths = tf.gather(code_points.row_lengths(), row_ids)
    classes = _character_classes(values)
    if not split_punctuation:
        classes = tf.where(tf.equal(classes, _SINGLE), _LETTER, classes)
    is_letter = tf.equal(classes, _LETTER)
    is_single = tf.equal(classes, _SINGLE)
    # A run of letters is one word; neighbours are looked up in the same text only.
    previous_is_letter = tf.logical_and(
        positions > 0, tf.concat([[False], is_letter[:-1]], axis=0)
    )
    next_is_letter = tf.logical_and(
        positions < row_lengths - 1, tf.concat([is_letter[1:], [False]], axis=0)
    )
    is_start = tf.logical_or(is_single, tf.logical_and(is_letter, ~previous_is_letter))
    is_end = tf.logical_or(is_single, tf.logical_and(is_letter, ~next_is_letter))
    flat_starts = tf.boolean_mask(tf.range(tf.size(values, out_type=tf.int64)), is_start)
    flat_ends = tf.boolean_mask(tf.range(tf.size(values, out_type=tf.int64)), is_end) + 1
    word_rows = tf.boolean_mask(row_ids, is_start)
    num_rows = code_points.nrows()
    word_code_points = tf.gather(values, tf.ragged.range(flat_starts, flat_ends))
    words = tf.strings.unicode_encode(word_code_points, "UTF-8")

    def ragged(flat):
        return tf.RaggedTensor.from_value_rowids(flat, word_rows, nrows=num_rows, validate=False)

    word_row_starts = tf.gather(row_starts, word_rows)
    return (
        ragged(words),
        ragged(tf.cast(flat_starts - word_row_starts, tf.int32)),
        ragged(tf.cast(flat_ends - word_row_starts, tf.int32)),
    )


@tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
def _word_spans(texts):
    _, starts, ends = split_words_tensor(texts)
    return starts.flat_values, ends.flat_values, starts.row_splits


def split_words_batch(texts):
    """Character spans `(start, end)` of the words of each text (see `split_words`)."""
    texts = list(texts)
    spans = []
    for first in range(0, len(texts), _SPLIT_CHUNK):
        starts, ends, row_splits = (
            value.numpy().tolist() for value in _word_spans(texts[first : first + _SPLIT_CHUNK])
        )
        spans.extend(
            list(zip(starts[begin:end], ends[begin:end]))
            for begin, end in zip(row_splits[:-1], row_splits[1:])
        )
    return spans


def split_words(text):
    """Character spans `(start, end)` of the words of `text`, split like BERT's basic tokenizer.

    White space separates words; every punctuation character and CJK ideograph
    is a word of its own.
    """
    return split_words_batch([text])[0]


def tokenize_words(tokenizer, word_lists):
    """WordPiece ids of every word: a list (per text) of lists (per word) of id arrays."""
    flat = [word for words in word_lists for word in words]
    pieces = []
    for start in range(0, len(flat), _TOKENIZE_CHUNK):
        ragged = tokenizer.tokenize(flat[start : start + _TOKENIZE_CHUNK])
        values, splits = ragged.flat_values.numpy(), ragged.row_splits.numpy()
        pieces.extend(values[splits[i] : splits[i + 1]] for i in range(len(splits) - 1))
    result, position = [], 0
    for words in word_lists:
        result.append(pieces[position : position + len(words)])
        position += len(words)
    return result
