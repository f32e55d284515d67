"""Question + context strings to the windowed inputs of `BertSpanLabeler` (extractive QA)."""

import keras
import tensorflow as tf

from keras_bert.text.preprocessor import Preprocessor
from keras_bert.text.words import split_words_tensor

_NUM_SPECIAL_TOKENS = 3  # [CLS] question [SEP] window [SEP]


def window_starts(num_tokens, window_length, doc_stride):
    """Start offsets of windows of `window_length` tokens, `doc_stride` apart, covering all.

    The plain-Python statement of the layout `SpanLabelerPreprocessor` computes in tensors:
    the stride never exceeds the window (no token is skipped), and the last window is the
    first that reaches the end.
    """
    starts, start = [], 0
    while True:
        starts.append(start)
        if start + window_length >= num_tokens:
            return starts
        start += min(window_length, doc_stride)


def _as_strings(texts, name):
    """A `(batch_size,)` string tensor; one str becomes a batch of one."""
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    if texts.shape.rank == 0:
        texts = tf.expand_dims(texts, 0)
    if texts.shape.rank != 1:
        raise ValueError(
            f"`{name}` must be a string tensor of shape (batch_size,), received shape "
            f"{texts.shape}."
        )
    return texts


def _window_scores(window, positions, num_tokens, window_length, stride):
    """How much context window `window` gives document token `positions` (the reference's
    score: tokens on the shorter side, plus 0.01 per token of window length to favour long
    windows). float64, as the scores were computed before, so ties break the same way."""
    start = window * stride
    length = tf.minimum(window_length, num_tokens - start)
    shorter_side = tf.minimum(positions - start, start + length - 1 - positions)
    return tf.cast(shorter_side, tf.float64) + 0.01 * tf.cast(length, tf.float64)


def _max_context_windows(positions, num_tokens, window_length, stride, num_windows):
    """The window in which each document token has the most context (ties: earlier window).

    Every window but the last has the full `window_length`; over them the score of a token is
    a tent in the window's start, so the best full window is one of the two whose starts are
    nearest the token's centring start. The last window (maybe shorter) is the only other
    candidate. All arguments broadcast; int32.
    """
    # Full windows holding the token: first_full..last_full.
    first_full = tf.maximum(0, tf.math.floordiv(positions - window_length, stride) + 1)
    last_full = tf.minimum(tf.math.floordiv(positions, stride), num_windows - 2)
    centred = tf.math.floordiv(2 * positions - window_length + 1, 2 * stride)
    last = num_windows - 1
    candidates = (
        (tf.clip_by_value(centred, first_full, tf.maximum(first_full, last_full)),
         first_full <= last_full),
        (tf.clip_by_value(centred + 1, first_full, tf.maximum(first_full, last_full)),
         first_full <= last_full),
        (last, last * stride <= positions),
    )
    best_score = tf.constant(float("-inf"), tf.float64)
    best_window = tf.constant(-1, tf.int32)
    for window, holds_token in candidates:
        score = _window_scores(window, positions, num_tokens, window_length, stride)
        better = tf.logical_and(holds_token, score > best_score)
        best_score = tf.where(better, score, best_score)
        best_window = tf.where(better, window, best_window)
    return best_window


@keras.saving.register_keras_serializable(package="keras_bert")
class SpanLabelerPreprocessor(Preprocessor):
    """Packs question/context pairs into the overlapping windows `BertSpanLabeler` reads.

    The question is tokenized and cut to `max_query_length` tokens. The context is split into
    words as the reference BERT pre-tokenizer splits them (`keras_bert.text.words`) and each
    word is tokenized on its own, so every WordPiece belongs to one word. The context's tokens
    are covered by windows `min(doc_stride, window)` tokens apart, each packed by a
    `BertPacker` as `[CLS] question [SEP] window [SEP]`; a window holds as many context tokens
    as fit beside the question, so the packer never truncates. For every position the outputs
    name the context word it belongs to and that word's characters, so a predicted span maps
    back to the context's text, and whether this window is the one giving that token the most
    context (on its shorter side), where a span may start.

    With answers (character offsets into the context), each window also gets its training
    targets: the positions of the answer's first and last token, or `0` (`[CLS]`) when the
    window does not hold the whole answer. An answer is located by the words it overlaps; one
    that overlaps no word (or only words without pieces) is not answerable.

    Everything runs as TensorFlow ops, all windows of every pair: eagerly on Python strings,
    in `tf.data` and in a traced `tf.function` (as in a SavedModel's string signature). The
    outputs have one row per window, not per pair; `example_index` says whose window it is.

    Args:
        tokenizer: `keras_bert.text.BertTokenizer`.
        sequence_length: int. Length of every window, special tokens included. Defaults to
            `384`.
        doc_stride: int. Tokens between the starts of consecutive windows. Defaults to `128`.
        max_query_length: int. Questions are cut to this many tokens. Defaults to `64`.

    Call arguments:
        questions: string `Tensor` of shape `(batch_size,)`, or a list of str.
        contexts: string `Tensor` of shape `(batch_size,)`, or a list of str.
        answer_starts: optional int `Tensor` of shape `(batch_size,)`: first character of each
            answer in its context; `-1` with `answer_ends` `-1` for none.
        answer_ends: optional int `Tensor` of shape `(batch_size,)`: one past the answer's
            last character.

    Returns:
        dict of `Tensor`s with `num_windows` rows:
        - `token_ids`, `segment_ids`, `padding_mask`: int32 `(num_windows, sequence_length)`.
        - `word_ids`: int32 `(num_windows, sequence_length)`: the context word of each
          position, `-1` outside the context.
        - `start_chars`, `end_chars`: int32 `(num_windows, sequence_length)`: the characters
          `[start, end)` of that word in the context, `-1` outside the context.
        - `max_context`: bool `(num_windows, sequence_length)`: whether a span may start at the
          position in this window.
        - `example_index`: int32 `(num_windows,)`: the pair the window is of.
        - with answers, `start_positions`, `end_positions`: int32 `(num_windows,)`, and
          `answerable`: bool `(num_windows,)`, whether the pair's answer was located.

    Example:

    >>> preprocessor = SpanLabelerPreprocessor(
    ...     tokenizer, sequence_length=12, doc_stride=4, max_query_length=8)
    >>> outputs = preprocessor(["Who sings?"], ["The owl sings at night in the forest."])
    >>> outputs["example_index"].numpy()  # 9 context tokens: windows of 6, 4 apart
    array([0, 0], dtype=int32)
    >>> outputs["word_ids"][1].numpy()
    array([-1, -1, -1, -1, -1,  4,  5,  6,  7,  8, -1, -1], dtype=int32)

    Reference: Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for
    Language Understanding", 2019 (section 4.2, SQuAD v1.1).
    """

    def __init__(
        self,
        tokenizer,
        sequence_length=384,
        doc_stride=128,
        max_query_length=64,
        **kwargs,
    ):
        for name, value, minimum in (
            ("sequence_length", sequence_length, 1),
            ("doc_stride", doc_stride, 1),
            ("max_query_length", max_query_length, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(
                    f"`{name}` must be an int >= {minimum}, received {value!r}."
                )
        if sequence_length < max_query_length + _NUM_SPECIAL_TOKENS + 1:
            raise ValueError(
                f"`sequence_length` ({sequence_length}) must exceed `max_query_length` "
                f"({max_query_length}) + 3 special tokens."
            )
        super().__init__(tokenizer, sequence_length, **kwargs)
        self.doc_stride = doc_stride
        self.max_query_length = max_query_length

    def call(self, questions, contexts, answer_starts=None, answer_ends=None):
        questions = _as_strings(questions, "questions")
        contexts = _as_strings(contexts, "contexts")
        num_questions, num_contexts = questions.shape[0], contexts.shape[0]
        if num_questions is not None and num_contexts is not None and (
            num_questions != num_contexts
        ):
            raise ValueError(
                f"`questions` ({num_questions} texts) and `contexts` ({num_contexts} texts) "
                "must have the same length."
            )
        question_ids = self.tokenizer.tokenize(questions)[:, : self.max_query_length]
        words, word_starts, word_ends = split_words_tensor(contexts)
        # Pieces of every word: (num_words, None); a context's tokens are its words' pieces.
        pieces = self.tokenizer.tokenize(words.flat_values)
        word_splits = tf.cast(words.row_splits, tf.int32)
        piece_splits = tf.cast(pieces.row_splits, tf.int32)
        token_splits = tf.gather(piece_splits, word_splits)  # (batch_size + 1,)
        token_word_flat = tf.cast(pieces.value_rowids(), tf.int32)  # (num_tokens,)
        token_example = tf.gather(tf.cast(words.value_rowids(), tf.int32), token_word_flat)
        token_word = token_word_flat - tf.gather(word_splits, token_example)

        # Per pair: tokens, window length and stride, number of windows. (batch_size,)
        num_tokens = token_splits[1:] - token_splits[:-1]
        window_length = (
            self.sequence_length - _NUM_SPECIAL_TOKENS
            - tf.cast(question_ids.row_lengths(), tf.int32)
        )
        stride = tf.minimum(window_length, self.doc_stride)
        num_windows = 1 + tf.maximum(0, -tf.math.floordiv(window_length - num_tokens, stride))

        # Per window. (num_windows,)
        example_index = tf.repeat(tf.range(tf.size(num_windows)), num_windows)
        window = tf.cast(tf.ragged.range(num_windows).flat_values, tf.int32)

        def per_window(value):
            return tf.gather(value, example_index)

        window_stride = per_window(stride)
        window_start = window * window_stride
        window_tokens = tf.minimum(
            per_window(window_length), per_window(num_tokens) - window_start
        )
        first_token = per_window(token_splits[:-1]) + window_start
        window_ids = tf.gather(
            pieces.flat_values, tf.ragged.range(first_token, first_token + window_tokens)
        )
        outputs = dict(self.packer(tf.gather(question_ids, example_index), window_ids))

        # Per position. (num_windows, sequence_length)
        positions = tf.range(self.sequence_length)[tf.newaxis, :]
        offset = tf.cast(tf.gather(question_ids.row_lengths(), example_index), tf.int32) + 2
        token = positions - offset[:, tf.newaxis] + window_start[:, tf.newaxis]
        in_context = tf.logical_and(
            positions >= offset[:, tf.newaxis],
            positions < (offset + window_tokens)[:, tf.newaxis],
        )
        # Positions outside the context read the -1 appended after the last token.
        flat_token = tf.where(
            in_context, token + per_window(token_splits[:-1])[:, tf.newaxis], token_splits[-1]
        )

        def at_positions(per_token):
            return tf.gather(tf.concat([per_token, [-1]], axis=0), flat_token)

        outputs["word_ids"] = at_positions(token_word)
        outputs["start_chars"] = at_positions(
            tf.gather(word_starts.flat_values, token_word_flat)
        )
        outputs["end_chars"] = at_positions(tf.gather(word_ends.flat_values, token_word_flat))
        best_window = _max_context_windows(
            token,
            per_window(num_tokens)[:, tf.newaxis],
            per_window(window_length)[:, tf.newaxis],
            window_stride[:, tf.newaxis],
            per_window(num_windows)[:, tf.newaxis],
        )
        outputs["max_context"] = tf.logical_and(
            in_context, tf.equal(best_window, window[:, tf.newaxis])
        )
        outputs["example_index"] = example_index
        if answer_starts is not None or answer_ends is not None:
            if answer_starts is None or answer_ends is None:
                raise ValueError("Pass both `answer_starts` and `answer_ends`, or neither.")
            first, last, answerable = self._answer_tokens(
                words, word_starts, word_ends, piece_splits, token_splits,
                answer_starts, answer_ends,
            )
            first, last, answerable = per_window(first), per_window(last), per_window(answerable)
            in_window = tf.logical_and(
                answerable,
                tf.logical_and(window_start <= first, last < window_start + window_tokens),
            )
            shift = offset - window_start
            outputs["start_positions"] = tf.where(in_window, first + shift, 0)
            outputs["end_positions"] = tf.where(in_window, last + shift, 0)
            outputs["answerable"] = answerable
        return outputs

    def _answer_tokens(
        self, words, word_starts, word_ends, piece_splits, token_splits, answer_starts,
        answer_ends,
    ):
        """First and last context token of each answer, and whether it was located.

        The answer's words are those overlapping its characters; its tokens run from the first
        piece of the first word to the last piece of the last word.
        """
        answer_starts = tf.reshape(tf.cast(answer_starts, tf.int32), [-1])
        answer_ends = tf.reshape(tf.cast(answer_ends, tf.int32), [-1])
        word_example = tf.cast(words.value_rowids(), tf.int32)
        word_splits = tf.cast(words.row_splits, tf.int32)
        word_flat = tf.range(tf.size(word_example))
        overlaps = tf.logical_and(
            word_ends.flat_values > tf.gather(answer_starts, word_example),
            word_starts.flat_values < tf.gather(answer_ends, word_example),
        )
        num_examples = tf.size(word_splits) - 1
        no_word = tf.size(word_example)
        first_word = tf.math.unsorted_segment_min(
            tf.where(overlaps, word_flat, no_word), word_example, num_examples
        )
        last_word = tf.math.unsorted_segment_max(
            tf.where(overlaps, word_flat, -1), word_example, num_examples
        )
        found = tf.logical_and(first_word < no_word, last_word >= 0)
        # Without an answer both gathers below read the first split, which always exists.
        first_word = tf.where(found, first_word, 0)
        last_word = tf.where(found, last_word, -1)
        doc_start = token_splits[:-1]
        first = tf.gather(piece_splits, first_word) - doc_start
        last = tf.gather(piece_splits, last_word + 1) - doc_start - 1
        answerable = tf.logical_and(found, first <= last)
        return first, last, answerable

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "doc_stride": self.doc_stride,
                "max_query_length": self.max_query_length,
            }
        )
        return config

