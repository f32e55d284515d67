"""Words (or texts) to the inputs of `BertTokenClassifier`, with first-piece labels."""

import keras
import tensorflow as tf

from keras_bert.inputs import IGNORED_LABEL
from keras_bert.text.preprocessor import Preprocessor
from keras_bert.text.words import split_words_tensor


def _as_words(inputs):
    """A string `tf.RaggedTensor` `(batch_size, None)` of words, and whether to squeeze the
    batch axis afterwards (a single text was given)."""
    if isinstance(inputs, (list, tuple)) and inputs and not isinstance(inputs[0], str):
        words = tf.ragged.constant([list(row) for row in inputs], tf.string, ragged_rank=1)
        return words, False
    if not isinstance(inputs, tf.RaggedTensor):
        inputs = tf.convert_to_tensor(inputs, dtype=tf.string)
        if inputs.shape.rank == 2:
            return tf.RaggedTensor.from_tensor(inputs), False
        single = inputs.shape.rank == 0
        texts = tf.reshape(inputs, [-1])
        words, _, _ = split_words_tensor(texts, split_punctuation=False)
        return words, single
    if inputs.ragged_rank != 1 or inputs.shape.rank != 2:
        raise ValueError(
            f"`words` must be a string `tf.RaggedTensor` of shape (batch_size, None), "
            f"received shape {inputs.shape}."
        )
    return inputs, False


def _lay_out(values, default, sequence_length):
    """Ragged `(batch_size, None)` values of the pieces at their packed positions: after
    `[CLS]`, `default` on the special tokens and padding. `(batch_size, sequence_length)`."""
    body = values.to_tensor(default_value=default, shape=[None, sequence_length - 2])
    batch_size = tf.shape(body)[0]
    edge = tf.fill([batch_size, 1], tf.constant(default, values.dtype))
    return tf.concat([edge, body, edge], axis=1)


@keras.saving.register_keras_serializable(package="keras_bert")
class TokenClassifierPreprocessor(Preprocessor):
    """Packs words as `[CLS] pieces [SEP]` for `BertTokenClassifier`, a label per word.

    Each word is tokenized on its own; its first piece carries the word's label and the other
    pieces, `[CLS]`, `[SEP]` and padding carry `IGNORED_LABEL` (-100), so the loss and the
    predictions are per word. The pieces are packed by a `BertPacker`. Words are taken in
    order while they fit in `sequence_length - 2` tokens; a word that does not fit is left out
    and later shorter words may still fit (the row is then marked `truncated`).

    Inputs are words (a string `tf.RaggedTensor` `(batch_size, None)`, lists of str, or a dense
    string `Tensor` `(batch_size, num_words)`), or texts (a string `Tensor` `(batch_size,)`, a
    list of str, or one str), which are cut into words at white space (the reference's white
    space, `keras_bert.text.words`).

    Everything runs as TensorFlow ops: eagerly on Python strings, in `tf.data` and in a
    traced `tf.function`.

    Args:
        tokenizer: `keras_bert.text.BertTokenizer`.
        sequence_length: int. Length of the packed sequences. Defaults to `128`.

    Call arguments:
        words: the words or texts, as above.
        labels: optional int `tf.RaggedTensor` `(batch_size, None)` (or lists of int): one
            label per word.

    Returns:
        dict of `Tensor`s:
        - `token_ids`, `segment_ids`, `padding_mask`: int32 `(batch_size, sequence_length)`.
        - `word_ids`: int32 `(batch_size, sequence_length)`: the word (index in its row) of
          each position, -1 on `[CLS]`, `[SEP]` and padding.
        - `truncated`: bool `(batch_size,)`: whether a word was left out.
        - with `labels`, `labels`: int32 `(batch_size, sequence_length)`: each word's label on
          its first piece, `IGNORED_LABEL` elsewhere.
        For one str, the batch axis is dropped.

    Example:

    >>> preprocessor = TokenClassifierPreprocessor(tokenizer, sequence_length=8)
    >>> preprocessor([["Okafor", "visited", "Lisbon"]])["word_ids"].numpy()
    array([[-1,  0,  0,  0,  1,  2, -1, -1]], dtype=int32)
    """

    def __init__(self, tokenizer, sequence_length=128, **kwargs):
        if (
            not isinstance(sequence_length, int)
            or isinstance(sequence_length, bool)
            or sequence_length < 2
        ):
            raise ValueError(
                f"`sequence_length` must be an int >= 2, received {sequence_length!r}."
            )
        super().__init__(tokenizer, sequence_length, **kwargs)

    def call(self, words, labels=None):
        words, single = _as_words(words)
        pieces = self.tokenizer.tokenize(words.flat_values)  # (num_words, None)
        piece_counts = words.with_flat_values(tf.cast(pieces.row_lengths(), tf.int32))
        kept, truncated = self._kept_words(piece_counts)
        # The kept words' pieces, per row.
        piece_word = tf.cast(pieces.value_rowids(), tf.int32)  # flat word of each piece
        piece_kept = tf.gather(kept, piece_word)
        word_row = tf.cast(words.value_rowids(), tf.int32)
        piece_row = tf.boolean_mask(tf.gather(word_row, piece_word), piece_kept)
        num_rows = tf.cast(words.nrows(), tf.int32)

        def per_row(flat):
            return tf.RaggedTensor.from_value_rowids(
                tf.boolean_mask(flat, piece_kept), piece_row, nrows=num_rows, validate=False
            )

        outputs = dict(self.packer(per_row(pieces.flat_values)))
        # The word of each piece, counted within its row.
        word_index = piece_word - tf.gather(
            tf.cast(words.row_starts(), tf.int32), tf.gather(word_row, piece_word)
        )
        outputs["word_ids"] = _lay_out(per_row(word_index), -1, self.sequence_length)
        outputs["truncated"] = truncated
        if labels is not None:
            if isinstance(labels, (list, tuple)):
                labels = tf.ragged.constant([list(row) for row in labels], tf.int32, ragged_rank=1)
            elif not isinstance(labels, tf.RaggedTensor):
                labels = tf.RaggedTensor.from_tensor(labels)
            first_piece = tf.equal(
                tf.range(tf.size(piece_word)),
                tf.gather(tf.cast(pieces.row_starts(), tf.int32), piece_word),
            )
            piece_labels = tf.where(
                first_piece,
                tf.gather(tf.cast(labels.flat_values, tf.int32), piece_word),
                IGNORED_LABEL,
            )
            outputs["labels"] = _lay_out(per_row(piece_labels), IGNORED_LABEL, self.sequence_length)
        if single:
            outputs = {name: value[0] for name, value in outputs.items()}
        return outputs

    def _kept_words(self, piece_counts):
        """Which words fit, taken in order while their pieces fit in `sequence_length - 2`.

        Args:
            piece_counts: int32 `tf.RaggedTensor` `(batch_size, None)`: pieces per word.

        Returns:
            bool `(num_words,)` (flat, in the order of the words) and bool `(batch_size,)`:
            whether a row left a word out.
        """
        budget = self.sequence_length - 2
        counts = piece_counts.to_tensor(0)  # (batch_size, max_words)

        def add_if_fits(total, count):
            return total + tf.where(total + count <= budget, count, 0)

        totals = tf.transpose(
            tf.scan(
                add_if_fits,
                tf.transpose(counts),
                initializer=tf.zeros([tf.shape(counts)[0]], tf.int32),
            )
        )
        before = tf.concat([tf.zeros_like(counts[:, :1]), totals[:, :-1]], axis=1)
        kept = before + counts <= budget
        truncated = tf.reduce_any(tf.logical_not(kept), axis=1)
        flat_kept = tf.RaggedTensor.from_tensor(kept, lengths=piece_counts.row_lengths())
        return flat_kept.flat_values, truncated

