"""Words of a text as BERT's basic tokenizer cuts them, and their WordPieces.

Task data that labels words (answer spans, entity tags) is tokenized one word at
a time, so that every WordPiece belongs to exactly one word and predictions map
back to words and characters of the original text.
"""

import unicodedata

# Words tokenized per call: bounds the memory of the graph tokenizer on big files.
_TOKENIZE_CHUNK = 100_000


def _is_whitespace(char):
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_punctuation(char):
    code = ord(char)
    # ASCII symbols count as punctuation for BERT even where Unicode says "S*".
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(char):
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B73F or 0x2B740 <= code <= 0x2B81F
        or 0x2B820 <= code <= 0x2CEAF or 0xF900 <= code <= 0xFAFF or 0x2F800 <= code <= 0x2FA1F
    )


def split_words(text):
    """Character spans `(start, end)` of the words of `text`, split like BERT's basic tokenizer.

    White space separates words; every punctuation character and CJK ideograph
    is a word of its own.
    """
    spans = []
    start = None
    for i, char in enumerate(text):
        if _is_whitespace(char):
            if start is not None:
                spans.append((start, i))
                start = None
        elif _is_punctuation(char) or _is_cjk(char):
            if start is not None:
                spans.append((start, i))
                start = None
            spans.append((i, i + 1))
        elif start is None:
            start = i
    if start is not None:
        spans.append((start, len(text)))
    return spans


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
