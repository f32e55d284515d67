"""Masked-language-model masking of packed token ids, seeded and reproducible."""

import numpy as np


class MaskedLMMasker:
    """Selects and corrupts tokens for BERT's masked-LM objective.

    Of the maskable tokens (every token that is not a special token), `mask_rate` are selected
    (`round(mask_rate * num_maskable)`, at least one, at most `max_predictions_per_seq`). Each
    selected token becomes `[MASK]` with probability `mask_token_rate`, a random non-special
    token with probability `random_token_rate`, and stays unchanged otherwise. Special tokens
    (`[CLS]`, `[SEP]`, `[PAD]`, ...) are never selected.

    With `whole_word_masking`, a word's pieces (a first piece and the `##` pieces after it) are
    selected together, as in the whole-word-masking BERT models; the number of selected tokens
    still stays within `max_predictions_per_seq`.

    keras-hub's `MaskedLMMaskGenerator` is not used: it has no whole-word masking and draws
    from TensorFlow's global random state, so its output cannot be reproduced from a seed.

    Args:
        vocabulary_size: int. Random replacement tokens are drawn from `[0, vocabulary_size)`
            minus the special tokens.
        mask_token_id: int. Id of `[MASK]`.
        special_token_ids: list of int. Ids never selected nor used as replacements.
        mask_rate: float. Fraction of maskable tokens selected. Defaults to `0.15`.
        mask_token_rate: float. Fraction of selected tokens replaced by `[MASK]`.
            Defaults to `0.8`.
        random_token_rate: float. Fraction of selected tokens replaced by a random token.
            Defaults to `0.1`.
        max_predictions_per_seq: int. Most tokens selected per sequence. Defaults to `20`.
        whole_word_masking: bool. Whether to select whole words. Defaults to `False`.
        continuation_token_ids: optional list of int. Ids of `##` pieces; required with
            `whole_word_masking`.
        seed: int. Seed of the random generator. Defaults to `0`.

    Call arguments:
        token_ids: int array of shape `(sequence_length,)`: one packed sequence.

    Returns:
        dict of numpy arrays: `token_ids` (int32, `(sequence_length,)`, corrupted),
        `masked_positions` (int32, `(max_predictions_per_seq,)`, sorted, zero-padded),
        `masked_ids` (int32, `(max_predictions_per_seq,)`: the original ids there) and
        `masked_weights` (float32, `(max_predictions_per_seq,)`: 1 for real predictions).

    Example:

    >>> masker = MaskedLMMasker(30522, mask_token_id=103, special_token_ids=[0, 101, 102])
    >>> features = masker([101, 7592, 2088, 102, 0])
    >>> sorted(features)
    ['masked_ids', 'masked_positions', 'masked_weights', 'token_ids']

    Reference: Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for
    Language Understanding", 2019 (section 3.1, task 1).
    """

    def __init__(
        self,
        vocabulary_size,
        mask_token_id,
        special_token_ids,
        mask_rate=0.15,
        mask_token_rate=0.8,
        random_token_rate=0.1,
        max_predictions_per_seq=20,
        whole_word_masking=False,
        continuation_token_ids=None,
        seed=0,
    ):
        if not isinstance(vocabulary_size, int) or vocabulary_size < 1:
            raise ValueError(
                f"`vocabulary_size` must be a positive int, received {vocabulary_size!r}."
            )
        if not 0 <= mask_token_id < vocabulary_size:
            raise ValueError(
                f"`mask_token_id` ({mask_token_id}) must be in [0, {vocabulary_size})."
            )
        for name, rate in (
            ("mask_rate", mask_rate),
            ("mask_token_rate", mask_token_rate),
            ("random_token_rate", random_token_rate),
        ):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"`{name}` ({rate}) must be in [0, 1].")
        if mask_token_rate + random_token_rate > 1.0:
            raise ValueError(
                f"`mask_token_rate` ({mask_token_rate}) + `random_token_rate` "
                f"({random_token_rate}) must be at most 1."
            )
        if not isinstance(max_predictions_per_seq, int) or max_predictions_per_seq < 1:
            raise ValueError(
                "`max_predictions_per_seq` must be a positive int, received "
                f"{max_predictions_per_seq!r}."
            )
        if whole_word_masking and continuation_token_ids is None:
            raise ValueError(
                "`continuation_token_ids` is required when `whole_word_masking` is True."
            )
        self.vocabulary_size = vocabulary_size
        self.mask_token_id = mask_token_id
        self.special_token_ids = sorted(set(special_token_ids) | {mask_token_id})
        self.mask_rate = mask_rate
        self.mask_token_rate = mask_token_rate
        self.random_token_rate = random_token_rate
        self.max_predictions_per_seq = max_predictions_per_seq
        self.whole_word_masking = whole_word_masking
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._is_special = np.zeros(vocabulary_size, dtype=bool)
        self._is_special[[i for i in self.special_token_ids if 0 <= i < vocabulary_size]] = True
        self._replacements = np.flatnonzero(~self._is_special).astype(np.int32)
        if self._replacements.size == 0:
            raise ValueError("Every token of the vocabulary is a special token.")
        self._is_continuation = np.zeros(vocabulary_size, dtype=bool)
        if continuation_token_ids is not None:
            self._is_continuation[np.asarray(list(continuation_token_ids), dtype=np.int64)] = True

    def _words(self, token_ids, maskable):
        """Groups maskable positions into the units that are selected together."""
        positions = np.flatnonzero(maskable)
        if not self.whole_word_masking or positions.size == 0:
            return [np.array([p]) for p in positions]
        # A "##" piece right after a maskable token continues that token's word.
        continues = self._is_continuation[token_ids[positions]]
        continues[1:] &= positions[1:] == positions[:-1] + 1
        continues[0] = False
        return np.split(positions, np.flatnonzero(~continues)[1:])

    def mask_batch(self, token_ids):
        """Masks each row of a batch in turn, as `__call__` does one sequence.

        Rows draw from the generator in order: masking a batch gives the same arrays as
        masking its rows one after another.

        Args:
            token_ids: int array of shape `(batch_size, sequence_length)`.

        Returns:
            dict of numpy arrays: `token_ids` (int32, `(batch_size, sequence_length)`),
            `masked_positions`, `masked_ids` (int32) and `masked_weights` (float32), each
            `(batch_size, max_predictions_per_seq)`.
        """
        token_ids = np.asarray(token_ids, dtype=np.int32)
        if token_ids.ndim != 2:
            raise ValueError(
                "`token_ids` must have shape (batch_size, sequence_length), received "
                f"{token_ids.shape}."
            )
        rows = [self(row) for row in token_ids]
        if not rows:
            return {
                "token_ids": token_ids.copy(),
                "masked_positions": np.zeros((0, self.max_predictions_per_seq), np.int32),
                "masked_ids": np.zeros((0, self.max_predictions_per_seq), np.int32),
                "masked_weights": np.zeros((0, self.max_predictions_per_seq), np.float32),
            }
        return {name: np.stack([row[name] for row in rows]) for name in rows[0]}

    def __call__(self, token_ids):
        token_ids = np.asarray(token_ids, dtype=np.int32)
        if token_ids.ndim != 1:
            raise ValueError(
                f"`token_ids` must have shape (sequence_length,), received {token_ids.shape}."
            )
        if token_ids.size and (token_ids.min() < 0 or token_ids.max() >= self.vocabulary_size):
            raise ValueError(f"`token_ids` must be in [0, {self.vocabulary_size}).")
        maskable = ~self._is_special[token_ids]
        num_maskable = int(maskable.sum())
        num_to_predict = 0
        if num_maskable:
            num_to_predict = min(
                self.max_predictions_per_seq,
                max(1, int(round(num_maskable * self.mask_rate))),
            )
        selected = []
        words = self._words(token_ids, maskable)
        for index in self._rng.permutation(len(words)):
            if len(selected) >= num_to_predict:
                break
            word = words[index]
            if len(selected) + len(word) > num_to_predict:
                continue
            selected.extend(word.tolist())
        selected = np.array(sorted(selected), dtype=np.int32)

        masked = token_ids.copy()
        draw = self._rng.random(selected.size)
        to_mask = draw < self.mask_token_rate
        to_random = (draw >= self.mask_token_rate) & (
            draw < self.mask_token_rate + self.random_token_rate
        )
        masked[selected[to_mask]] = self.mask_token_id
        masked[selected[to_random]] = self._rng.choice(
            self._replacements, size=int(to_random.sum())
        )

        padding = self.max_predictions_per_seq - selected.size
        return {
            "token_ids": masked,
            "masked_positions": np.pad(selected, (0, padding)).astype(np.int32),
            "masked_ids": np.pad(token_ids[selected], (0, padding)).astype(np.int32),
            "masked_weights": np.pad(
                np.ones(selected.size, np.float32), (0, padding)
            ).astype(np.float32),
        }
