"""Builds BERT pretraining examples (next-sentence pairs, masked tokens) from documents."""

import numpy as np

# Pairs packed and masked per call of the preprocessor: enough to amortise the call.
_PAIRS_PER_CALL = 256


class PretrainingExampleBuilder:
    """Turns tokenized documents into masked-LM + next-sentence-prediction examples.

    Follows google-research/bert's `create_pretraining_data.py`: consecutive lines of a
    document are gathered up to a target length (the full `sequence_length - 3` tokens, or
    with probability `short_seq_prob` a random shorter length), split at a random line
    boundary into segment A and B, and with probability 1/2 segment B is replaced by lines from
    a random other document (`next_sentence_label` 1 for "random", 0 for "actual next", as in
    the original). The pair is truncated to fit by dropping tokens from the longer segment, at
    its front or back at random. Packing as `[CLS] A [SEP] B [SEP]` and masking are the
    `PretrainerPreprocessor`'s: the builder hands it the pairs, which fit, so they are packed
    whole.

    Everything is drawn from one seeded generator: the builder masks with a copy of
    `preprocessor` whose masking seed is the generator's first draw, so the same documents,
    settings and `seed` give the same examples whatever the preprocessor's own seed.

    Args:
        preprocessor: `keras_bert.text.PretrainerPreprocessor`. Its `sequence_length` (at
            least 5) is the length of the examples; its masking settings are used.
        short_seq_prob: float. Probability of a shorter target length. Defaults to `0.1`.
        seed: int. Seed. Defaults to `0`.

    Example:

    >>> preprocessor = PretrainerPreprocessor(tokenizer, sequence_length=128)
    >>> documents = preprocessor.tokenize_documents(read_documents("valid.txt"))
    >>> examples = list(PretrainingExampleBuilder(preprocessor, seed=1).build(documents))
    """

    def __init__(self, preprocessor, short_seq_prob=0.1, seed=0):
        sequence_length = preprocessor.sequence_length
        if sequence_length < 5:
            raise ValueError(
                f"`sequence_length` ({sequence_length}) of `preprocessor` must be at least 5."
            )
        if not 0.0 <= short_seq_prob <= 1.0:
            raise ValueError(f"`short_seq_prob` ({short_seq_prob}) must be in [0, 1].")
        self.sequence_length = sequence_length
        self.short_seq_prob = short_seq_prob
        self._rng = np.random.default_rng(seed)
        self.preprocessor = preprocessor.with_seed(int(self._rng.integers(2**31)))

    def build(self, documents, on_document=None):
        """Builds one pass of examples over all documents (call again for more passes).

        Args:
            documents: list of documents, each a list of lines, each a list of int token ids.
            on_document: optional callable, called after each document (progress bars).

        Yields:
            dict of numpy arrays: `token_ids`, `segment_ids`, `padding_mask` (int32,
            `(sequence_length,)`), `masked_positions`, `masked_ids` (int32,
            `(max_predictions_per_seq,)`), `masked_weights` (float32,
            `(max_predictions_per_seq,)`) and `next_sentence_label` (int32, scalar).
        """
        documents = [[list(line) for line in document if len(line)] for document in documents]
        documents = [document for document in documents if document]
        # Pairs wait for a full call of the preprocessor; `ends`: the number of pairs at the
        # end of each of their documents.
        pairs, ends = [], []
        for index in self._rng.permutation(len(documents)):
            pairs.extend(self._document_pairs(documents, int(index)))
            ends.append(len(pairs))
            if len(pairs) >= _PAIRS_PER_CALL:
                yield from self._examples(pairs, ends, on_document)
                pairs, ends = [], []
        yield from self._examples(pairs, ends, on_document)

    def _examples(self, pairs, ends, on_document):
        """Packs and masks `pairs`; yields them, calling `on_document` at each `ends`."""
        examples = self._pack_and_mask(pairs) if pairs else []
        position = 0
        for end in ends:
            while position < end:
                yield examples[position]
                position += 1
            if on_document is not None:
                on_document()

    def _pack_and_mask(self, pairs):
        first, second, is_random_next = zip(*pairs)
        inputs, labels = self.preprocessor(
            list(first), list(second), next_sentence_label=np.array(is_random_next, np.int32)
        )
        arrays = {name: value.numpy() for name, value in {**inputs, **labels}.items()}
        return [{name: value[row] for name, value in arrays.items()} for row in range(len(pairs))]

    def _document_pairs(self, documents, document_index):
        """Yields the `(first, second, is_random_next)` pairs of one document, cut to fit."""
        document = documents[document_index]
        max_num_tokens = self.sequence_length - 3
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
                    yield self._truncated_pair(first, second, is_random_next, max_num_tokens)
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

    def _truncated_pair(self, first, second, is_random_next, max_num_tokens):
        first, second = list(first), list(second)
        while len(first) + len(second) > max_num_tokens:
            longer = first if len(first) > len(second) else second
            if self._rng.random() < 0.5:
                del longer[0]
            else:
                longer.pop()
        return first, second, is_random_next
