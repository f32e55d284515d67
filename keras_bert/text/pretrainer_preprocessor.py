"""Segment pairs to `BertPretrainer` inputs and targets: pack, then mask."""

import itertools

import keras
import numpy as np
import tensorflow as tf

from keras_bert.text.masked_lm_masker import MaskedLMMasker
from keras_bert.text.preprocessor import Preprocessor

# What `BertPretrainer` trains on (its inputs: `keras_bert.inputs.PRETRAINER_INPUT_NAMES`).
PRETRAINER_LABEL_NAMES = ("masked_ids", "masked_weights", "next_sentence_label")


@keras.saving.register_keras_serializable(package="keras_bert")
class PretrainerPreprocessor(Preprocessor):
    """Turns segment pairs into the inputs and targets of `BertPretrainer`.

    Texts are tokenized by `tokenizer` (segments given as token ids are taken as they are),
    each pair is packed by a `BertPacker` as `[CLS] A [SEP] B [SEP]` and padded to
    `sequence_length` (`[CLS] A [SEP]` without a second segment), and the packed ids are
    masked by a `MaskedLMMasker`: of the tokens that are not special tokens, `mask_rate` are
    selected (at most `max_predictions_per_seq`), and each becomes `[MASK]`, a random token
    or stays as it is (80/10/10 by default). This is the one road from segments to pretraining
    examples: `PretrainingExampleBuilder` (and through it `create_pretraining_data` and
    `training.pretrain`) chooses the segments and calls it.

    A pair longer than `sequence_length - 3` tokens is cut longest-first by the packer.
    `PretrainingExampleBuilder` cuts its pairs to fit beforehand (at the front or the back of
    the longer segment, at random, as google-research/bert does), so they are packed whole.

    Masking is numpy by design: it draws from a seeded `np.random.Generator`, so the same seed
    gives the same masks, batch after batch. Eagerly the layer masks the packed arrays
    directly; in a graph (`tf.data`'s `map`, a traced `tf.function`) the masking runs through
    `tf.numpy_function`, in this Python process: such a graph cannot be saved as a SavedModel
    or converted to TFLite. Calls draw from one generator in turn; a `tf.data` map must run
    sequentially (no `num_parallel_calls`) to stay reproducible.

    Args:
        tokenizer: `keras_bert.text.BertTokenizer`. Its vocabulary gives the ids of `[CLS]`,
            `[SEP]`, `[PAD]`, `[MASK]`, the special tokens (never masked) and the `##`
            pieces (for whole-word masking).
        sequence_length: int. Length of the packed sequences. Defaults to `128`.
        max_predictions_per_seq: int. Most masked tokens per sequence. Defaults to `20`.
        mask_rate: float. Fraction of the tokens selected for prediction. Defaults to `0.15`.
        mask_token_rate: float. Fraction of the selected tokens replaced by `[MASK]`.
            Defaults to `0.8`.
        random_token_rate: float. Fraction of the selected tokens replaced by a random token.
            Defaults to `0.1`.
        whole_word_masking: bool. Whether to select all pieces of a word together.
            Defaults to `False`.
        seed: int. Seed of the masking generator. Defaults to `0`.

    Call arguments:
        token_ids: the first segments: a string `Tensor` of shape `(batch_size,)` or a list
            of str (tokenized first), or token ids without special tokens as an int
            `tf.RaggedTensor` of shape `(batch_size, None)` or a list of lists of int.
        token_ids_pair: optional second segments, of the same kind and batch size.
        next_sentence_label: optional int of shape `(batch_size,)`: 1 where the second
            segment is a random one, 0 where it is the actual next one.

    Returns:
        A tuple `(inputs, labels)` of dicts of `Tensor`s. `inputs`: `token_ids` (masked),
        `segment_ids`, `padding_mask` (int32, `(batch_size, sequence_length)`) and
        `masked_positions` (int32, `(batch_size, max_predictions_per_seq)`). `labels`:
        `masked_ids` (int32) and `masked_weights` (float32), both
        `(batch_size, max_predictions_per_seq)`, and `next_sentence_label` (int32,
        `(batch_size,)`) when it is given.

    Example:

    >>> tokenizer = keras_bert.load_tokenizer("all-MiniLM-L6-v2")
    >>> preprocessor = PretrainerPreprocessor(tokenizer, sequence_length=16, seed=1)
    >>> inputs, labels = preprocessor(
    ...     ["The cat sat on the mat."], ["It was not amused."], next_sentence_label=[0])
    >>> sorted(inputs), sorted(labels)
    (['masked_positions', 'padding_mask', 'segment_ids', 'token_ids'],
     ['masked_ids', 'masked_weights', 'next_sentence_label'])

    Reference: Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for
    Language Understanding", 2019 (section 3.1).
    """

    required_special_tokens = ("cls_token_id", "sep_token_id", "mask_token_id")

    def __init__(
        self,
        tokenizer,
        sequence_length=128,
        max_predictions_per_seq=20,
        mask_rate=0.15,
        mask_token_rate=0.8,
        random_token_rate=0.1,
        whole_word_masking=False,
        seed=0,
        **kwargs,
    ):
        if not isinstance(sequence_length, int) or sequence_length < 3:
            raise ValueError(
                f"`sequence_length` must be an int >= 3, received {sequence_length!r}."
            )
        super().__init__(tokenizer, sequence_length, **kwargs)
        self.max_predictions_per_seq = max_predictions_per_seq
        self.mask_rate = mask_rate
        self.mask_token_rate = mask_token_rate
        self.random_token_rate = random_token_rate
        self.whole_word_masking = whole_word_masking
        self.seed = seed
        vocabulary = tokenizer.get_vocabulary()
        self.masker = MaskedLMMasker(
            vocabulary_size=len(vocabulary),
            mask_token_id=tokenizer.mask_token_id,
            special_token_ids=tokenizer.special_token_ids,
            mask_rate=mask_rate,
            mask_token_rate=mask_token_rate,
            random_token_rate=random_token_rate,
            max_predictions_per_seq=max_predictions_per_seq,
            whole_word_masking=whole_word_masking,
            continuation_token_ids=[i for i, t in enumerate(vocabulary) if t.startswith("##")],
            seed=seed,
        )
        self.built = True

    def with_seed(self, seed):
        """A preprocessor with the same tokenizer and settings whose masking starts at `seed`."""
        return type(self)(
            self.tokenizer,
            sequence_length=self.sequence_length,
            max_predictions_per_seq=self.max_predictions_per_seq,
            mask_rate=self.mask_rate,
            mask_token_rate=self.mask_token_rate,
            random_token_rate=self.random_token_rate,
            whole_word_masking=self.whole_word_masking,
            seed=seed,
            dtype=self.dtype_policy,
        )

    # === Tokenizing ===

    def tokenize(self, texts):
        """Token ids of a batch of texts, without special tokens.

        The one tokenizing path of pretraining: `call` takes it for text segments, and
        `tokenize_documents` for whole corpora.

        Args:
            texts: string `Tensor` of shape `(batch_size,)`, or a list of str.

        Returns:
            int32 `tf.RaggedTensor` of shape `(batch_size, None)`.
        """
        return self.tokenize_batch(texts)

    def tokenize_documents(self, documents, batch_size=1024, progress=None):
        """Token ids of every line of every document, `batch_size` lines per graph call.

        Args:
            documents: list of documents, each a list of str (lines).
            batch_size: int. Lines tokenized per call.
            progress: optional object with an `update(num_lines)` method (a tqdm bar).

        Returns:
            list of documents, each a list of lines, each a list of int token ids.
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive int, received {batch_size!r}.")
        lines = [line for document in documents for line in document]
        ids = []
        for start in range(0, len(lines), batch_size):
            batch = lines[start : start + batch_size]
            ids.extend(self.tokenize(batch).to_list())
            if progress is not None:
                progress.update(len(batch))
        tokenized = []
        position = 0
        for document in documents:
            tokenized.append(ids[position : position + len(document)])
            position += len(document)
        return tokenized

    # === Packing and masking ===

    def call(self, token_ids, token_ids_pair=None, next_sentence_label=None):
        first = self._segments(token_ids, "token_ids")
        second = None
        if token_ids_pair is not None:
            second = self._segments(token_ids_pair, "token_ids_pair")
            first_rows, second_rows = first.shape[0], second.shape[0]
            if first_rows is not None and second_rows is not None and first_rows != second_rows:
                raise ValueError(
                    f"`token_ids` ({first_rows} rows) and `token_ids_pair` ({second_rows} "
                    "rows) must have the same batch size."
                )
        packed = self.packer(first, second)
        masked = self._mask(packed["token_ids"])
        inputs = {
            "token_ids": masked["token_ids"],
            "segment_ids": packed["segment_ids"],
            "padding_mask": packed["padding_mask"],
            "masked_positions": masked["masked_positions"],
        }
        labels = {
            "masked_ids": masked["masked_ids"],
            "masked_weights": masked["masked_weights"],
        }
        if next_sentence_label is not None:
            labels["next_sentence_label"] = tf.reshape(
                tf.cast(next_sentence_label, tf.int32), [-1]
            )
        return inputs, labels

    def _segments(self, segments, name):
        """int32 `tf.RaggedTensor` `(batch_size, None)` of texts or token ids."""
        if isinstance(segments, tf.RaggedTensor):
            if segments.dtype == tf.string:
                raise ValueError(f"`{name}` must hold texts as a dense (batch_size,) tensor.")
            return tf.cast(segments, tf.int32)
        if isinstance(segments, (list, tuple)):
            if not segments or not isinstance(segments[0], (str, bytes)):
                return _ragged_from_lists(segments)
            return self.tokenize(segments)
        segments = tf.convert_to_tensor(segments)
        if segments.dtype != tf.string:
            raise ValueError(
                f"`{name}` must be texts or ragged token ids, received a dense "
                f"{segments.dtype.name} tensor of shape {segments.shape}."
            )
        return self.tokenize(segments)

    def _mask(self, token_ids):
        """The masker's arrays of packed `(batch_size, sequence_length)` ids, as tensors."""
        if tf.executing_eagerly():
            masked = self.masker.mask_batch(token_ids.numpy())
            return {name: tf.convert_to_tensor(value) for name, value in masked.items()}

        def mask(ids):
            masked = self.masker.mask_batch(ids)
            return tuple(masked[name] for name in _MASKER_OUTPUTS)

        outputs = tf.numpy_function(
            mask, [token_ids], [tf.int32, tf.int32, tf.int32, tf.float32], stateful=True
        )
        sequence_shape = [None, self.sequence_length]
        prediction_shape = [None, self.max_predictions_per_seq]
        for output, shape in zip(outputs, [sequence_shape] + [prediction_shape] * 3):
            output.set_shape(shape)
        return dict(zip(_MASKER_OUTPUTS, outputs))

    # === Config ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_predictions_per_seq": self.max_predictions_per_seq,
                "mask_rate": self.mask_rate,
                "mask_token_rate": self.mask_token_rate,
                "random_token_rate": self.random_token_rate,
                "whole_word_masking": self.whole_word_masking,
                "seed": self.seed,
            }
        )
        return config


_MASKER_OUTPUTS = ("token_ids", "masked_positions", "masked_ids", "masked_weights")


def _ragged_from_lists(segments):
    """int32 `tf.RaggedTensor` `(batch_size, None)` of a list of lists of token ids."""
    lengths = np.fromiter((len(segment) for segment in segments), np.int64, len(segments))
    values = np.fromiter(itertools.chain.from_iterable(segments), np.int32, int(lengths.sum()))
    return tf.RaggedTensor.from_row_lengths(values, lengths, validate=False)
