import numpy as np
import pytest

from keras_bert.text.masked_lm_masker import MaskedLMMasker

VOCABULARY_SIZE = 1000
PAD, UNK, CLS, SEP, MASK = 0, 100, 101, 102, 103
SPECIALS = [PAD, UNK, CLS, SEP, MASK]


def packed_sequences(count, length=128, seed=0):
    """Random [CLS] A [SEP] B [SEP] [PAD]... sequences of ordinary tokens."""
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(count):
        real = int(rng.integers(8, length - 3))
        cut = int(rng.integers(1, real))
        tokens = rng.integers(200, VOCABULARY_SIZE, real)
        sequence = [CLS, *tokens[:cut], SEP, *tokens[cut:], SEP]
        sequences.append(np.array(sequence + [PAD] * (length - len(sequence)), np.int32))
    return sequences


def test_masking_statistics_over_100k_tokens():
    masker = MaskedLMMasker(VOCABULARY_SIZE, MASK, SPECIALS, seed=1)
    selected = maskable = masked = random = unchanged = 0
    for sequence in packed_sequences(1500):
        out = masker(sequence)
        positions = out["masked_positions"][out["masked_weights"] > 0]
        assert not np.isin(sequence[positions], SPECIALS).any()
        # Nothing outside the selected positions changes.
        changed = np.flatnonzero(out["token_ids"] != sequence)
        assert set(changed) <= set(positions.tolist())
        np.testing.assert_array_equal(out["masked_ids"][: len(positions)], sequence[positions])
        new = out["token_ids"][positions]
        masked += int((new == MASK).sum())
        unchanged += int((new == sequence[positions]).sum())
        random += int(((new != MASK) & (new != sequence[positions])).sum())
        assert not np.isin(new[new != MASK], SPECIALS).any()
        selected += len(positions)
        maskable += int((~np.isin(sequence, SPECIALS)).sum())
    assert maskable >= 100_000
    assert abs(selected / maskable - 0.15) < 0.005
    assert abs(masked / selected - 0.8) < 0.01
    assert abs(random / selected - 0.1) < 0.01
    assert abs(unchanged / selected - 0.1) < 0.01


def test_max_predictions_and_shapes():
    masker = MaskedLMMasker(VOCABULARY_SIZE, MASK, SPECIALS, max_predictions_per_seq=5)
    out = masker(np.array([CLS] + list(range(200, 300)) + [SEP], np.int32))
    assert out["masked_positions"].shape == (5,)
    assert out["masked_weights"].sum() == 5
    assert out["token_ids"].dtype == np.int32
    assert out["masked_weights"].dtype == np.float32
    only_specials = masker(np.array([CLS, SEP, PAD], np.int32))
    assert only_specials["masked_weights"].sum() == 0


def test_whole_word_masking_selects_whole_words():
    continuation = list(range(500, 1000))  # Pretend ids >= 500 are "##" pieces.
    masker = MaskedLMMasker(
        VOCABULARY_SIZE, MASK, SPECIALS, mask_rate=0.3, whole_word_masking=True,
        continuation_token_ids=continuation, seed=3,
    )
    rng = np.random.default_rng(0)
    for _ in range(200):
        words = [[int(rng.integers(200, 500))] + list(rng.integers(500, 1000, rng.integers(0, 3)))
                 for _ in range(20)]
        sequence = np.array([CLS] + [t for word in words for t in word] + [SEP], np.int32)
        out = masker(sequence)
        selected = set(out["masked_positions"][out["masked_weights"] > 0].tolist())
        start = 1
        for word in words:
            span = set(range(start, start + len(word)))
            assert span <= selected or not (span & selected)
            start += len(word)


def test_seeded_and_reproducible():
    sequences = packed_sequences(20, seed=5)
    first = [MaskedLMMasker(VOCABULARY_SIZE, MASK, SPECIALS, seed=7)(s) for s in sequences]
    second = [MaskedLMMasker(VOCABULARY_SIZE, MASK, SPECIALS, seed=7)(s) for s in sequences]
    other = [MaskedLMMasker(VOCABULARY_SIZE, MASK, SPECIALS, seed=8)(s) for s in sequences]
    for a, b in zip(first, second):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])
    assert any(
        not np.array_equal(a["masked_positions"], c["masked_positions"])
        for a, c in zip(first, other)
    )


def test_validation():
    with pytest.raises(ValueError, match="`vocabulary_size`"):
        MaskedLMMasker(0, 0, [])
    with pytest.raises(ValueError, match="`mask_token_id`"):
        MaskedLMMasker(10, 10, [])
    with pytest.raises(ValueError, match="`mask_rate`"):
        MaskedLMMasker(10, 1, [], mask_rate=1.5)
    with pytest.raises(ValueError, match="`mask_token_rate`.*`random_token_rate`"):
        MaskedLMMasker(10, 1, [], mask_token_rate=0.8, random_token_rate=0.3)
    with pytest.raises(ValueError, match="`max_predictions_per_seq`"):
        MaskedLMMasker(10, 1, [], max_predictions_per_seq=0)
    with pytest.raises(ValueError, match="`continuation_token_ids`"):
        MaskedLMMasker(10, 1, [], whole_word_masking=True)
    masker = MaskedLMMasker(10, 1, [0])
    with pytest.raises(ValueError, match="`token_ids`"):
        masker(np.array([[1, 2]]))
    with pytest.raises(ValueError, match="`token_ids`"):
        masker(np.array([11]))


def test_mask_batch_equals_rows_in_turn():
    sequences = packed_sequences(12, length=64, seed=2)
    batch = MaskedLMMasker(VOCABULARY_SIZE, MASK, SPECIALS, seed=4).mask_batch(np.stack(sequences))
    one_by_one = MaskedLMMasker(VOCABULARY_SIZE, MASK, SPECIALS, seed=4)
    rows = [one_by_one(sequence) for sequence in sequences]
    for name in ("token_ids", "masked_positions", "masked_ids", "masked_weights"):
        np.testing.assert_array_equal(batch[name], np.stack([row[name] for row in rows]))
        assert batch[name].dtype == rows[0][name].dtype
    empty = MaskedLMMasker(VOCABULARY_SIZE, MASK, SPECIALS).mask_batch(np.zeros((0, 8), np.int32))
    assert empty["token_ids"].shape == (0, 8) and empty["masked_positions"].shape == (0, 20)
    assert empty["masked_weights"].dtype == np.float32
    with pytest.raises(ValueError, match="`token_ids`"):
        MaskedLMMasker(VOCABULARY_SIZE, MASK, SPECIALS).mask_batch(sequences[0])
