"""Builds BERT pretraining examples (next-sentence pairs, masked tokens) from documents."""

import numpy as np

from keras_bert.text.masked_lm_masker import MaskedLMMasker


class PretrainingExampleBuilder:
    """Turns tokenized documents into masked-LM + next-sentence-prediction examples.

    Follows google-research/bert's `create_pretraining_data.py`: consecutive lines of a
    document are gathered up to a target length (the full `max_seq_length - 3` tokens, or with
    probability `short_seq_prob` a random shorter length), split at a random line boundary into
    segment A and B, and with probability 1/2 segment B is replaced by lines from a random
    other document (`next_sentence_label` 1 for "random", 0 for "actual next", as in the
    original). The pair is truncated to fit by dropping tokens from the longer segment, at its
    front or back at random, packed as `[CLS] A [SEP] B [SEP]` and masked by a
    `MaskedLMMasker`. Everything is drawn from one seeded generator: the same documents and
    seed give the same examples.

    Args:
        vocabulary_size: int. Size of the vocabulary.
        cls_token_id: int. Id of `[CLS]`.
        sep_token_id: int. Id of `[SEP]`.
        pad_token_id: int. Id of `[PAD]`.
        mask_token_id: int. Id of `[MASK]`.
        special_token_ids: list of int. Ids never masked.
        max_seq_length: int. Length of the packed sequences. Defaults to `128`.
        max_predictions_per_seq: int. Most masked tokens per sequence. Defaults to `20`.
        masked_lm_prob: float. Fraction of tokens masked. Defaults to `0.15`.
        short_seq_prob: float. Probability of a shorter target length. Defaults to `0.1`.
        whole_word_masking: bool. Whether to mask whole words. Defaults to `False`.
        continuation_token_ids: optional list of int. Ids of `##` pieces (whole words).
        seed: int. Seed. Defaults to `0`.
    """

    def __init__(
        self,
        vocabulary_size,
        cls_token_id,
        sep_token_id,
        pad_token_id,
        mask_token_id,
        special_token_ids,
        max_seq_length=128,
        max_predictions_per_seq=20,
        masked_lm_prob=0.15,
        short_seq_prob=0.1,
        whole_word_masking=False,
        continuation_token_ids=None,
        seed=0,
    ):
        if not isinstance(max_seq_length, int) or max_seq_length < 5:
            raise ValueError(f"`max_seq_length` must be an int >= 5, received {max_seq_length!r}.")
        if not 0.0 <= short_seq_prob <= 1.0:
            raise ValueError(f"`short_seq_prob` ({short_seq_prob}) must be in [0, 1].")
        self.cls_token_id = cls_token_id
        self.sep_token_id = sep_token_id
        self.pad_token_id = pad_token_id
        self.max_seq_length = max_seq_length
        self.max_predictions_per_seq = max_predictions_per_seq
        self.short_seq_prob = short_seq_prob
        self._rng = np.random.default_rng(seed)
        self.masker = MaskedLMMasker(
            vocabulary_size=vocabulary_size,
            mask_token_id=mask_token_id,
            special_token_ids=special_token_ids,
            mask_rate=masked_lm_prob,
            max_predictions_per_seq=max_predictions_per_seq,
            whole_word_masking=whole_word_masking,
            continuation_token_ids=continuation_token_ids,
            seed=int(self._rng.integers(2**31)),
        )

    def build(self, documents, on_document=None):
        """Builds one pass of examples over all documents (call again for more passes).

        Args:
            documents: list of documents, each a list of lines, each a list of int token ids.
            on_document: optional callable, called after each document (progress bars).

        Yields:
            dict of numpy arrays: `token_ids`, `segment_ids`, `padding_mask` (int32,
            `(max_seq_length,)`), `masked_positions`, `masked_ids` (int32,
            `(max_predictions_per_seq,)`), `masked_weights` (float32,
            `(max_predictions_per_seq,)`) and `next_sentence_label` (int32, scalar).
        """
        documents = [[list(line) for line in document if len(line)] for document in documents]
        documents = [document for document in documents if document]
        for index in self._rng.permutation(len(documents)):
            yield from self._document_examples(documents, int(index))
            if on_document is not None:
                on_document()

    def _document_examples(self, documents, document_index):
        document = documents[document_index]
        max_num_tokens = self.max_seq_length - 3
        target_length = max_num_tokens
        if self._rng.random() < self.short_seq_prob:
            target_length = int(self._rng.integers(2, max_num_tokens + 1))
        chunk = []
        chunk_length = 0
        i = 0
        while i < len(document):
            chunk.append(document[i])
            chunk_length += len(document[i])
            if i == len(document) - 1 or chunk_length >= target_length:
                a_end = 1 if len(chunk) < 2 else int(self._rng.integers(1, len(chunk)))
                first = [token for line in chunk[:a_end] for token in line]
                is_random_next = self._rng.random() < 0.5
                second = []
                if not is_random_next:
                    if a_end < len(chunk):
                        second = [token for line in chunk[a_end:] for token in line]
                    else:
                        # A one-line chunk: the true next segment is the following lines.
                        while i + 1 < len(document) and (
                            not second or len(second) < target_length - len(first)
                        ):
                            i += 1
                            second.extend(document[i])
                        is_random_next = not second
                if is_random_next and len(documents) > 1:
                    second = self._random_segment(
                        documents, document_index, target_length - len(first)
                    )
                    # The lines of the chunk not used for A go back to the document.
                    i -= len(chunk) - a_end
                if first and second:
                    yield self._example(first, second, is_random_next, max_num_tokens)
                chunk = []
                chunk_length = 0
                if self._rng.random() < self.short_seq_prob:
                    target_length = int(self._rng.integers(2, max_num_tokens + 1))
                else:
                    target_length = max_num_tokens
            i += 1

    def _random_segment(self, documents, document_index, target_length):
        other = int(self._rng.integers(len(documents) - 1))
        other += other >= document_index  # Any document but this one.
        lines = documents[other]
        start = int(self._rng.integers(len(lines)))
        segment = []
        for line in lines[start:]:
            segment.extend(line)
            if len(segment) >= target_length:
                break
        return segment

    def _example(self, first, second, is_random_next, max_num_tokens):
        first, second = list(first), list(second)
        while len(first) + len(second) > max_num_tokens:
            longer = first if len(first) > len(second) else second
            if self._rng.random() < 0.5:
                del longer[0]
            else:
                longer.pop()
        token_ids = [self.cls_token_id, *first, self.sep_token_id, *second, self.sep_token_id]
        segment_ids = [0] * (len(first) + 2) + [1] * (len(second) + 1)
        padding = self.max_seq_length - len(token_ids)
        token_ids = np.array(token_ids + [self.pad_token_id] * padding, dtype=np.int32)
        example = self.masker(token_ids)
        example["segment_ids"] = np.array(segment_ids + [0] * padding, dtype=np.int32)
        example["padding_mask"] = (np.arange(self.max_seq_length) < len(segment_ids)).astype(
            np.int32)
        example["next_sentence_label"] = np.int32(is_random_next)
        return example
