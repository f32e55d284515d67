"""WordPiece vocabulary learning with tensorflow-text's learner (the library behind build_vocab).

Words are counted after the same normalization and splitting as `BertTokenizer` (the reference
BERT rules: control characters dropped, punctuation and CJK ideographs split off, and for
`lower_case` NFD accent stripping and lower-casing), so the learned pieces are the ones the
tokenizer will look for. The vocabulary starts with the special tokens
`[PAD] [UNK] [CLS] [SEP] [MASK]`, then the learned pieces (single characters and their `##`
forms included); it is written atomically, one token per line.

The command line is `python -m keras_bert.text.build_vocab`.
"""

import collections
import os
import re
import unicodedata

from keras_bert.text import reference_normalization
from keras_bert.text.bert_tokenizer import SPECIAL_TOKENS
from keras_bert.utils.atomic import atomic_file


class WordSplitter:
    """Normalizes text and splits it into words like `BertTokenizer` (in Python)."""

    def __init__(self, lower_case):
        table = reference_normalization.normalization_table(lower_case)
        self._translation = str.maketrans(table)
        isolated = [
            chr(code_point)
            for code_point in range(0x110000)
            if not 0xD800 <= code_point <= 0xDFFF
            and (
                unicodedata.category(chr(code_point)).startswith("P")
                or 33 <= code_point <= 47
                or 58 <= code_point <= 64
                or 91 <= code_point <= 96
                or 123 <= code_point <= 126
                or reference_normalization.is_reference_cjk(code_point)
            )
        ]
        self._isolate = re.compile("([" + "".join(_ranges(isolated)) + "])")

    def __call__(self, text):
        text = text.translate(self._translation)
        return self._isolate.sub(r" \1 ", text).split()


def _ranges(chars):
    """Regex character-class ranges for a sorted list of characters."""
    parts = []
    start = previous = None
    for char in chars:
        code_point = ord(char)
        if previous is not None and code_point == previous + 1:
            previous = code_point
            continue
        if start is not None:
            parts.append(_range(start, previous))
        start = previous = code_point
    if start is not None:
        parts.append(_range(start, previous))
    return parts


def _range(start, end):
    if start == end:
        return re.escape(chr(start))
    return f"{re.escape(chr(start))}-{re.escape(chr(end))}"


def count_words(paths, lower_case, show_progress=True):
    """`collections.Counter` of normalized words over the files."""
    from tqdm import tqdm

    splitter = WordSplitter(lower_case)
    counts = collections.Counter()
    total = sum(os.path.getsize(path) for path in paths)
    with tqdm(total=total, desc="counting words", unit="B", unit_scale=True,
              disable=not show_progress) as bar:
        for path in paths:
            with open(path, encoding="utf-8") as corpus:
                for line in corpus:
                    counts.update(splitter(line))
                    bar.update(len(line.encode("utf-8")))
    return counts


def learn_vocabulary(
    paths,
    vocabulary_size,
    lower_case=True,
    max_unique_chars=1000,
    max_token_length=50,
    num_iterations=4,
    min_count=2,
    show_progress=True,
):
    """Learns a WordPiece vocabulary of at most `vocabulary_size` tokens, special tokens first.

    Returns:
        list of str.
    """
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner
    from tqdm import tqdm

    if not isinstance(vocabulary_size, int) or vocabulary_size <= len(SPECIAL_TOKENS):
        raise ValueError(
            f"`vocabulary_size` must be an int > {len(SPECIAL_TOKENS)}, received "
            f"{vocabulary_size!r}."
        )
    counts = count_words(paths, lower_case, show_progress)
    # The learner searches a frequency threshold; each try learns a vocabulary. Count the tries
    # for the progress bar by wrapping its per-threshold step.
    learn_with_thresh = learner.learn_with_thresh
    with tqdm(desc="learning", unit="try", disable=not show_progress) as bar:

        def counted(*args, **kwargs):
            bar.update(1)
            return learn_with_thresh(*args, **kwargs)

        learner.learn_with_thresh = counted
        try:
            vocabulary = learner.learn(
                counts.items(),
                vocab_size=vocabulary_size,  # tensorflow-text's name
                reserved_tokens=list(SPECIAL_TOKENS),
                num_iterations=num_iterations,
                max_token_length=max_token_length,
                max_unique_chars=max_unique_chars,
                lower_thresh=min_count,
            )
        finally:
            learner.learn_with_thresh = learn_with_thresh
    # Keep every special token first and never exceed the requested size.
    vocabulary = list(SPECIAL_TOKENS) + [t for t in vocabulary if t not in SPECIAL_TOKENS]
    return vocabulary[:vocabulary_size]


def write_vocabulary(vocabulary, path):
    """Writes one token per line, atomically (temporary file in the same folder, rename)."""
    with atomic_file(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as vocab_file:
            vocab_file.write("".join(token + "\n" for token in vocabulary))
