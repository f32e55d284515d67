"""BERT WordPiece tokenizer on tensorflow-text's fast ops, with the reference normalization."""

import functools
import json
import os

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from keras_bert.text import reference_normalization
from keras_bert.text.normalizer_model_builder import build_normalizer_model
from keras_bert.text.reference_normalization import in_ranges
from keras_bert.utils import deprecation

# The special tokens BERT vocabularies carry and Hugging Face tokenizers match in raw text.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# Placeholders for characters whose word-splitting class differs between the reference and
# FastWordpieceTokenizer. The first candidate absent from the vocabulary is used; private-use
# characters never survive normalization, so the "letter" placeholder cannot collide with text.
_LETTER_PLACEHOLDERS = ("\ue000", "\ue001", "\ue002")
_PUNCTUATION_PLACEHOLDERS = ("\u2e3b", "\u2e3a", "\u2e31", "\u2e30")

# The most word pieces a literal special token such as "[MASK]" can produce after its "[".
_MAX_SPECIAL_TOKEN_PIECES = 5


def read_vocabulary(path):
    """Reads a `vocab.txt` file: one token per line, the line number is the id."""
    with open(path, encoding="utf-8") as vocab_file:
        vocabulary = [line.rstrip("\r\n") for line in vocab_file]
    while vocabulary and not vocabulary[-1]:
        vocabulary.pop()
    return vocabulary


def infer_lower_case(vocabulary):
    """A vocabulary without upper-case letters (outside `[...]` specials) is uncased."""
    for token in vocabulary:
        if token.startswith("[") and token.endswith("]"):
            continue
        if token != token.lower():
            return False
    return True


def _first_absent(candidates, vocabulary_chars):
    for candidate in candidates:
        if candidate not in vocabulary_chars:
            return candidate
    raise ValueError(f"All placeholder characters {candidates} are in the vocabulary.")


def _normalizer_model(lower_case, vocabulary_chars):
    """The `FastBertNormalizer` model for a vocabulary (cached: building takes about a second)."""
    mismatched = (
        reference_normalization.FAST_WORDPIECE_ONLY_PUNCTUATION
        + reference_normalization.REFERENCE_ONLY_PUNCTUATION
    )
    # A mis-split character present in the vocabulary keeps its identity: the ids of its
    # tokens matter more than the split.
    kept = frozenset(char for char in vocabulary_chars if in_ranges(ord(char), mismatched))
    return _build_normalizer_model(
        lower_case,
        _first_absent(_LETTER_PLACEHOLDERS, vocabulary_chars),
        _first_absent(_PUNCTUATION_PLACEHOLDERS, vocabulary_chars),
        kept,
    )


@functools.lru_cache(maxsize=8)
def _build_normalizer_model(lower_case, letter, punctuation, kept):
    """The reference normalization plus the word-splitting placeholders, as a model."""
    table = reference_normalization.normalization_table(lower_case)

    def substitute(char):
        if char in kept:
            return char
        if in_ranges(ord(char), reference_normalization.FAST_WORDPIECE_ONLY_PUNCTUATION):
            return letter
        if in_ranges(ord(char), reference_normalization.REFERENCE_ONLY_PUNCTUATION):
            return punctuation
        return char

    mapping = {}
    candidates = set(table)
    for ranges in (
        reference_normalization.FAST_WORDPIECE_ONLY_PUNCTUATION,
        reference_normalization.REFERENCE_ONLY_PUNCTUATION,
    ):
        for start, end in ranges:
            candidates.update(range(start, end + 1))
    for code_point in candidates:
        normalized = table.get(code_point, chr(code_point))
        normalized = "".join(substitute(char) for char in normalized)
        if normalized != chr(code_point):
            mapping[code_point] = normalized
    return build_normalizer_model(mapping, lower_case)


def _row_ids(row_splits, num_values):
    """(num_values,) int32 row index of each value, from (batch_size + 1,) row splits.

    Built from scatter and cumsum so that it converts to TFLite builtins (tf.repeat does not).
    """
    boundaries = tf.cast(row_splits[1:-1], tf.int32)
    marks = tf.scatter_nd(
        tf.expand_dims(boundaries, 1),
        tf.ones_like(boundaries),
        tf.expand_dims(num_values + 1, 0),
    )
    return tf.cumsum(marks)[:num_values]


def _filter(keep, row_splits, *values):
    """Keeps the flat values where `keep` is true; returns (*kept_values, row_splits)."""
    kept_before = tf.concat([tf.zeros([1], tf.int64), tf.cumsum(tf.cast(keep, tf.int64))], 0)
    indices = tf.reshape(tf.where(keep), [-1])
    kept = [tf.gather(value, indices) for value in values]
    return (kept[0], tf.gather(kept_before, row_splits), *kept[1:])


@keras.saving.register_keras_serializable(package="keras_bert")
class BertTokenizer(keras.layers.Layer):
    """BERT WordPiece tokenizer giving the same ids as the reference (Hugging Face) tokenizer.

    Text is normalized by tensorflow-text's `FastBertNormalizer` op running a model this class
    builds from the reference normalization (drop control and format characters, map white
    space to spaces, and for uncased vocabularies NFD-decompose, strip nonspacing marks and
    lower-case: no NFKC folding), then split on white space, punctuation and CJK ideographs and
    cut into word pieces by `FastWordpieceTokenizer`. Two graph steps, run only on the batches
    that need them (`tf.cond`), finish the job the fast ops cannot do: words longer than
    `max_input_chars_per_word` characters become `[UNK]` (the fast op counts bytes), and
    special tokens written literally in the text (`"[CLS]"`, `"[MASK]"`, ...) become their
    ids, as Hugging Face tokenizers do.

    Everything runs as graph ops: in `tf.data`, in a `tf.function`, in a SavedModel and in a
    TFLite model (with tensorflow-text's TFLite ops registered).

    keras-hub's `WordPieceTokenizer` is not used: it lower-cases with NFKC case folding (not the
    reference's plain lower-casing) and splits words with regex ops that have no TFLite kernel.

    Args:
        vocabulary: list of str, or str path to a `vocab.txt` file. Token `i` has id `i`.
        lower_case: bool. Whether to lower-case and strip accents (uncased checkpoints).
            Defaults to `None`: inferred from the vocabulary (uncased if it has no upper-case
            letters).
        unknown_token: str. The token for words that cannot be pieced. Defaults to `"[UNK]"`.
        max_input_chars_per_word: int. Longer words become `unknown_token`. Defaults to `100`.
        match_special_tokens: bool. Whether special tokens written in the text map to their
            ids (Hugging Face behaviour) instead of being tokenized as text. Defaults to `True`.

    Call arguments:
        inputs: string `Tensor` of shape `(batch_size,)` (or a Python list of str).

    Returns:
        int32 `tf.RaggedTensor` of shape `(batch_size, None)`: token ids without special tokens.

    Example:

    >>> tokenizer = keras_bert.load_tokenizer("all-MiniLM-L6-v2/vocab.txt")
    >>> tokenizer.tokenize(["Hello, World!"]).to_list()
    [[7592, 1010, 2088, 999]]
    >>> tokenizer.pack(["Hello"], ["World"], sequence_length=8)["token_ids"].numpy()
    array([[ 101, 7592,  102, 2088,  102,    0,    0,    0]], dtype=int32)

    Reference: Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for
    Language Understanding", 2019; Song et al., "Fast WordPiece Tokenization", 2021.
    """

    def __init__(
        self,
        vocabulary,
        lower_case=None,
        unknown_token="[UNK]",
        max_input_chars_per_word=100,
        match_special_tokens=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # Inputs are strings: keep them as TensorFlow tensors, as keras-hub's layers do.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = read_vocabulary(vocabulary)
        vocabulary = list(vocabulary)
        if not vocabulary:
            raise ValueError("`vocabulary` must not be empty.")
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("`vocabulary` has duplicate tokens.")
        if unknown_token not in vocabulary:
            raise ValueError(f"`unknown_token` ({unknown_token!r}) is not in `vocabulary`.")
        if not isinstance(max_input_chars_per_word, int) or max_input_chars_per_word < 1:
            raise ValueError(
                "`max_input_chars_per_word` must be a positive int, received "
                f"{max_input_chars_per_word!r}."
            )
        if lower_case is None:
            lower_case = infer_lower_case(vocabulary)
        self.vocabulary = vocabulary
        self.lower_case = bool(lower_case)
        self.unknown_token = unknown_token
        self.max_input_chars_per_word = max_input_chars_per_word
        self.match_special_tokens = bool(match_special_tokens)
        self._token_to_id = {token: i for i, token in enumerate(vocabulary)}
        self._build_models()
        self.built = True

    # === Models and lookup tables ===

    def _wordpiece_tokenizer(self, max_bytes_per_word):
        return tf_text.FastWordpieceTokenizer(
            vocab=self.vocabulary,
            suffix_indicator="##",
            max_bytes_per_word=max_bytes_per_word,
            token_out_type=tf.int32,
            unknown_token=self.unknown_token,
            no_pretokenization=False,
        )

    def _build_models(self):
        vocabulary_chars = set()
        for token in self.vocabulary:
            vocabulary_chars.update(token[2:] if token.startswith("##") else token)
        normalizer_model = _normalizer_model(self.lower_case, vocabulary_chars)
        self._normalizer = tf_text.FastBertNormalizer(
            model_buffer=tf.constant(np.frombuffer(normalizer_model, dtype=np.uint8))
        )
        # The fast op limits words by bytes, the reference by characters. The fast path cuts at
        # `max_input_chars_per_word` bytes, exact for every word that short; a batch with a
        # longer word takes the exact path, which allows 4 bytes per character and then cuts
        # by characters.
        self._wordpiece = self._wordpiece_tokenizer(self.max_input_chars_per_word)
        self._wordpiece_long = self._wordpiece_tokenizer(4 * self.max_input_chars_per_word)
        is_suffix = [token.startswith("##") and len(token) > 2 for token in self.vocabulary]
        char_lengths = [
            len(token) - 2 if suffix else len(token)
            for token, suffix in zip(self.vocabulary, is_suffix)
        ]
        self._is_suffix = tf.constant(np.array(is_suffix, dtype=np.int32))
        self._char_lengths = tf.constant(np.array(char_lengths, dtype=np.int32))
        self.unknown_token_id = self._token_to_id[self.unknown_token]
        self.pad_token_id = self._token_to_id.get("[PAD]", 0)
        self.cls_token_id = self._token_to_id.get("[CLS]")
        self.sep_token_id = self._token_to_id.get("[SEP]")
        self.mask_token_id = self._token_to_id.get("[MASK]")
        self._special_tokens = [
            (token, self._token_to_id[token])
            for token in SPECIAL_TOKENS
            if token in self._token_to_id
        ]
        # Literal special tokens all start with "[": only "[" pieces (or [UNK], if "[" is not a
        # token) can begin one.
        self._bracket_id = self._token_to_id.get("[", self.unknown_token_id)

    # === Public API ===

    def vocabulary_size(self):
        """The number of tokens in the vocabulary."""
        return len(self.vocabulary)

    def get_vocabulary(self):
        return list(self.vocabulary)

    def token_to_id(self, token):
        if token not in self._token_to_id:
            raise ValueError(f"`token` ({token!r}) is not in the vocabulary.")
        return self._token_to_id[token]

    def id_to_token(self, token_id):
        if not 0 <= token_id < len(self.vocabulary):
            raise ValueError(
                f"`token_id` ({token_id}) must be in [0, {len(self.vocabulary)})."
            )
        return self.vocabulary[token_id]

    @property
    def special_token_ids(self):
        """Ids of the special tokens present in the vocabulary."""
        return [token_id for _, token_id in self._special_tokens]

    def tokenize(self, texts):
        """Token ids of each text, without special tokens.

        Args:
            texts: string `Tensor` of shape `(batch_size,)`, a list of str, or one str.

        Returns:
            int32 `tf.RaggedTensor` of shape `(batch_size, None)` (or an int32 `Tensor` of
            shape `(None,)` for a single str).
        """
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        if texts.shape.rank == 0:
            return self.tokenize(tf.expand_dims(texts, 0))[0]
        if texts.shape.rank != 1:
            raise ValueError(f"`texts` must have rank 0 or 1, received shape {texts.shape}.")
        token_ids, row_splits = self.tokenize_flat(texts)
        return tf.RaggedTensor.from_row_splits(token_ids, row_splits, validate=False)

    def call(self, inputs):
        return self.tokenize(inputs)

    def pack(self, texts, texts_pair=None, sequence_length=128, max_length=deprecation.UNSET):
        """Tokenizes and packs texts as `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`.

        A shortcut for `TextClassifierPreprocessor(self, sequence_length)(texts, texts_pair)`,
        the one road from text to packed inputs. Pairs are truncated longest-first exactly as
        Hugging Face tokenizers do.

        Args:
            texts: string `Tensor` of shape `(batch_size,)` or a list of str.
            texts_pair: optional second segments, same shape as `texts`.
            sequence_length: int or None. The packed length; `None` pads to the batch's
                longest sequence without truncating. Defaults to `128`.
            max_length: deprecated name of `sequence_length`.

        Returns:
            dict of int32 `Tensor`s of shape `(batch_size, sequence_length)`: `token_ids`,
            `segment_ids` and `padding_mask`.
        """
        from keras_bert.text.text_classifier_preprocessor import (  # pylint: disable=import-outside-toplevel
            TextClassifierPreprocessor,
        )

        sequence_length = deprecation.renamed_argument(
            "BertTokenizer.pack(max_length=...)", max_length, "sequence_length",
            sequence_length, unset=deprecation.UNSET,
        )
        if sequence_length is not None and (
            isinstance(sequence_length, bool)
            or not isinstance(sequence_length, int)
            or sequence_length < 2
        ):
            raise ValueError(
                "`sequence_length` must be None or an int >= 2, received "
                f"{sequence_length!r}."
            )
        return TextClassifierPreprocessor(self, sequence_length=sequence_length)(
            texts, texts_pair
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": self.vocabulary,
                "lower_case": self.lower_case,
                "unknown_token": self.unknown_token,
                "max_input_chars_per_word": self.max_input_chars_per_word,
                "match_special_tokens": self.match_special_tokens,
            }
        )
        return config

    # === Graph ===

    def tokenize_flat(self, texts):
        """Tokenizes a `(batch_size,)` string tensor into flat ids and row splits.

        Only ops with TFLite kernels (builtins or tensorflow-text's) are used, and no ragged
        ops, so that the graph converts to TFLite.

        The fast path (normalize, word-piece) is exact unless the batch has a word of more than
        `max_input_chars_per_word` bytes (then the batch is word-pieced again allowing longer
        words, which are then cut by characters) or a "[" that may open a literal special
        token (then the raw text is checked at each "[").

        Returns:
            A tuple `(token_ids, row_splits)`: int32 `(num_tokens,)` and int64
            `(batch_size + 1,)`.
        """
        normalized = self._normalizer.normalize(texts)
        pieces, starts, ends = self._wordpiece.tokenize_with_offsets(normalized)
        token_ids, row_splits, starts = pieces.values, pieces.row_splits, starts.values
        # An over-long word comes out as one unknown token spanning the whole word.
        has_long_word = tf.reduce_any(
            tf.logical_and(
                tf.equal(token_ids, self.unknown_token_id),
                ends.values - starts > self.max_input_chars_per_word,
            )
        )
        token_ids, row_splits, starts = tf.cond(
            has_long_word,
            lambda: self._tokenize_long_words(normalized),
            lambda: (token_ids, row_splits, starts),
        )
        if self.match_special_tokens and self._special_tokens:
            token_ids, row_splits = tf.cond(
                tf.reduce_any(tf.equal(token_ids, self._bracket_id)),
                lambda: self._match_special_tokens(texts, token_ids, row_splits, starts),
                lambda: (token_ids, row_splits),
            )
        return token_ids, row_splits

    def _tokenize_long_words(self, normalized):
        """Word-pieces words of up to 4 bytes per character, then cuts them by characters."""
        pieces, starts, _ = self._wordpiece_long.tokenize_with_offsets(normalized)
        token_ids = pieces.values
        is_suffix = tf.gather(self._is_suffix, token_ids)
        # Pieces after the first of a word are suffix pieces; [UNK] always starts a word.
        word_index = tf.cumsum(1 - is_suffix) - 1
        word_chars = tf.math.unsorted_segment_sum(
            tf.gather(self._char_lengths, token_ids), word_index, tf.size(token_ids)
        )
        too_long = tf.gather(word_chars, word_index) > self.max_input_chars_per_word
        token_ids = tf.where(
            tf.logical_and(too_long, tf.equal(is_suffix, 0)), self.unknown_token_id, token_ids
        )
        keep = tf.logical_not(tf.logical_and(too_long, tf.equal(is_suffix, 1)))
        return _filter(keep, pieces.row_splits, token_ids, starts.values)

    def _match_special_tokens(self, texts, token_ids, row_splits, starts):
        """Pieces spelling a special token literally in the raw text become its id."""
        num_tokens = tf.size(token_ids)
        row_ids = _row_ids(row_splits, num_tokens)
        candidates = tf.reshape(tf.where(tf.equal(token_ids, self._bracket_id)), [-1])
        candidate_rows = candidate_rows_all = tf.gather(row_ids, candidates)
        candidate_starts = tf.gather(starts, candidates)
        # Only the few texts holding a candidate are normalized again, for the offsets that map
        # normalized bytes back to the raw text.
        candidates_per_text = tf.math.unsorted_segment_sum(
            tf.ones_like(candidate_rows), candidate_rows, tf.size(texts)
        )
        has_candidate = candidates_per_text > 0
        subset = tf.reshape(tf.where(has_candidate), [-1])
        subset_texts = tf.gather(texts, subset)
        candidate_rows = tf.gather(tf.cumsum(tf.cast(has_candidate, tf.int32)) - 1, candidate_rows)
        _, offsets = self._normalizer.normalize_with_offsets(subset_texts)
        raw_starts = tf.gather(
            offsets.values, tf.gather(offsets.row_splits, candidate_rows) + candidate_starts
        )
        # The last offset of each row maps the end of the normalized text to the original end.
        raw_lengths = tf.gather(offsets.values, offsets.row_splits[1:] - 1)
        raw_ends = tf.gather(raw_lengths, candidate_rows)
        # ByteSplitByOffsets takes the candidates grouped by text.
        offset_splits = tf.concat(
            [tf.zeros([1], tf.int64),
             tf.cumsum(tf.cast(tf.gather(candidates_per_text, subset), tf.int64))],
            0,
        )
        splitter = tf_text.ByteSplitter()
        match_id = tf.fill(tf.shape(candidates), -1)
        match_length = tf.zeros(tf.shape(candidates), dtype=tf.int64)
        for length in sorted({len(token.encode("utf-8")) for token, _ in self._special_tokens}):
            ends = tf.minimum(raw_starts + length, raw_ends)
            spans = splitter.split_by_offsets(
                subset_texts,
                tf.RaggedTensor.from_row_splits(
                    tf.cast(raw_starts, tf.int32), offset_splits, validate=False),
                tf.RaggedTensor.from_row_splits(
                    tf.cast(ends, tf.int32), offset_splits, validate=False),
            ).values
            for token, token_id in self._special_tokens:
                if len(token.encode("utf-8")) != length:
                    continue
                is_match = tf.equal(spans, token)
                match_id = tf.where(is_match, token_id, match_id)
                match_length = tf.where(is_match, tf.cast(length, tf.int64), match_length)
        # Matched "[" pieces become the special token's id.
        is_match = match_id >= 0
        matches = tf.boolean_mask(candidates, is_match)
        token_ids = tf.tensor_scatter_nd_update(
            token_ids, tf.expand_dims(matches, 1), tf.boolean_mask(match_id, is_match)
        )
        # The pieces after a match that start inside its span are dropped. In the normalized
        # text a matched span is the special token lower-cased, so its length is unchanged.
        match_rows = tf.boolean_mask(candidate_rows_all, is_match)
        match_ends = tf.boolean_mask(candidate_starts + match_length, is_match)
        following = tf.expand_dims(matches, 1) + tf.range(
            1, _MAX_SPECIAL_TOKEN_PIECES + 1, dtype=matches.dtype
        )
        in_range = following < tf.cast(num_tokens, following.dtype)
        following = tf.where(in_range, following, 0)
        inside = tf.logical_and(
            in_range,
            tf.logical_and(
                tf.equal(tf.gather(row_ids, following), tf.expand_dims(match_rows, 1)),
                tf.gather(starts, following) < tf.expand_dims(match_ends, 1),
            ),
        )
        dropped = tf.boolean_mask(following, inside)
        drop_marks = tf.scatter_nd(
            tf.expand_dims(dropped, 1),
            tf.ones_like(dropped, dtype=tf.int32),
            tf.cast(tf.expand_dims(num_tokens, 0), dropped.dtype),
        )
        return _filter(tf.equal(drop_marks, 0), row_splits, token_ids)


def load_tokenizer(path, lower_case=None, **kwargs):
    """A `BertTokenizer` for a checkpoint directory or a `vocab.txt` file.

    Lower-casing follows the checkpoint: `do_lower_case` in `tokenizer_config.json`, else
    `lowercase` of the normalizer in `tokenizer.json` (Hugging Face checkpoints), else the
    vocabulary (uncased if it has no upper-case letters; Google checkpoints carry no flag).

    Args:
        path: str. A directory holding `vocab.txt`, or the path of a vocabulary file.
        lower_case: bool or None. Overrides the checkpoint's setting.
        **kwargs: passed to `BertTokenizer`.

    Returns:
        A `BertTokenizer`.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        vocabulary_path = os.path.join(path, "vocab.txt")
        if not os.path.isfile(vocabulary_path):
            raise ValueError(f"`path` ({path!r}) has no vocab.txt.")
        if lower_case is None:
            lower_case = _lower_case_from_config(path)
    elif os.path.isfile(path):
        vocabulary_path = path
        if lower_case is None:
            lower_case = _lower_case_from_config(os.path.dirname(path) or ".")
    else:
        raise ValueError(f"`path` ({path!r}) is neither a directory nor a file.")
    return BertTokenizer(read_vocabulary(vocabulary_path), lower_case=lower_case, **kwargs)


def _lower_case_from_config(directory):
    config_path = os.path.join(directory, "tokenizer_config.json")
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as config_file:
            config = json.load(config_file)
        if "do_lower_case" in config:
            return bool(config["do_lower_case"])
    tokenizer_path = os.path.join(directory, "tokenizer.json")
    if os.path.isfile(tokenizer_path):
        with open(tokenizer_path, encoding="utf-8") as tokenizer_file:
            normalizer = json.load(tokenizer_file).get("normalizer") or {}
        if "lowercase" in normalizer:
            return bool(normalizer["lowercase"])
    return None
