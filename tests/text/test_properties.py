"""Property-based tests: arbitrary Unicode through tokenizer, packer and masker."""

import os

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_bert.text import BertPacker
from keras_bert.text.masked_lm_masker import MaskedLMMasker
from tests.text.shared_data import requires_shared

SETTINGS = settings(
    # Raise for a deeper search, e.g. KERAS_BERT_PROPERTY_EXAMPLES=1000.
    max_examples=int(os.environ.get("KERAS_BERT_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Arbitrary code points, and text built from the pieces that stress the tokenizer.
any_text = st.text(max_size=60)
tricky_pieces = st.sampled_from(
    ["[CLS]", "[SEP]", "[MASK]", "[cls]", "[", "]", "a", "É", "ﬁ", "東", "\u200b", "\x00",
     "\u0301", " ", "\t", "-", "😀", "ＡＢ", "##", "ж" * 30, "x" * 60, "İ", "\u2028", "₂"]
)
tricky_text = st.lists(tricky_pieces, max_size=12).map("".join)
texts = st.one_of(any_text, tricky_text)


@requires_shared
@SETTINGS
@given(batch=st.lists(texts, min_size=1, max_size=4))
def test_tokenizer_matches_reference(minilm_tokenizer, reference_tokenizer, batch):
    got = minilm_tokenizer.tokenize(batch).to_list()
    expected = [e.ids[1:-1] for e in reference_tokenizer.encode_batch(batch)]
    assert got == expected


@requires_shared
@SETTINGS
@given(
    pairs=st.lists(st.tuples(texts, st.one_of(st.none(), texts)), min_size=1, max_size=4),
    sequence_length=st.integers(3, 40),
)
def test_pack_structure_and_reference(
    minilm_tokenizer, reference_tokenizer, pairs, sequence_length
):
    firsts = [first for first, _ in pairs]
    seconds = [second or "" for _, second in pairs]
    for texts_pair in (None, seconds):
        packed = minilm_tokenizer.pack(firsts, texts_pair, sequence_length=sequence_length)
        token_ids = packed["token_ids"].numpy()
        segment_ids = packed["segment_ids"].numpy()
        padding_mask = packed["padding_mask"].numpy()
        for array in (token_ids, segment_ids, padding_mask):
            assert array.shape == (len(pairs), sequence_length)
        for row in range(len(pairs)):
            length = int(padding_mask[row].sum())
            assert (padding_mask[row, :length] == 1).all()
            assert token_ids[row, 0] == minilm_tokenizer.cls_token_id
            first_length = int((segment_ids[row, :length] == 0).sum())
            assert token_ids[row, first_length - 1] == minilm_tokenizer.sep_token_id
            assert token_ids[row, length - 1] == minilm_tokenizer.sep_token_id
            assert (token_ids[row, length:] == minilm_tokenizer.pad_token_id).all()
            assert (segment_ids[row, length:] == 0).all()
            if texts_pair is None:
                assert first_length == length
            else:
                assert (segment_ids[row, first_length:length] == 1).all()
        reference_tokenizer.enable_truncation(max_length=sequence_length)
        reference_tokenizer.enable_padding(length=sequence_length)
        try:
            if texts_pair is None:
                encodings = reference_tokenizer.encode_batch(firsts)
            else:
                encodings = reference_tokenizer.encode_batch(list(zip(firsts, seconds)))
        finally:
            reference_tokenizer.no_truncation()
            reference_tokenizer.no_padding()
        np.testing.assert_array_equal(token_ids, [e.ids for e in encodings])
        np.testing.assert_array_equal(segment_ids, [e.type_ids for e in encodings])
        np.testing.assert_array_equal(padding_mask, [e.attention_mask for e in encodings])


@SETTINGS
@given(
    lengths=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=5),
    sequence_length=st.one_of(st.none(), st.integers(3, 64)),
)
def test_packer_shapes_on_any_lengths(lengths, sequence_length):
    first = tf.ragged.constant([[7] * a for a, _ in lengths], dtype=tf.int32, ragged_rank=1)
    second = tf.ragged.constant([[8] * b for _, b in lengths], dtype=tf.int32, ragged_rank=1)
    packed = BertPacker(sequence_length=sequence_length)(first, second)
    expected_length = sequence_length or max(a + b + 3 for a, b in lengths)
    token_ids = packed["token_ids"].numpy()
    assert token_ids.shape == (len(lengths), expected_length)
    for row, (a, b) in enumerate(lengths):
        length = int(packed["padding_mask"][row].numpy().sum())
        assert length == min(a + b + 3, expected_length)
        assert token_ids[row, 0] == 101 and token_ids[row, length - 1] == 102
        assert (token_ids[row, :length] == 102).sum() == 2


@requires_shared
@SETTINGS
@given(text=texts, seed=st.integers(0, 2**31 - 1), whole_words=st.booleans())
def test_masker_on_tokenized_text(minilm_tokenizer, text, seed, whole_words):
    packed = minilm_tokenizer.pack([text], [text[::-1]], sequence_length=48)
    token_ids = packed["token_ids"].numpy()[0]
    vocabulary = minilm_tokenizer.get_vocabulary()
    masker = MaskedLMMasker(
        len(vocabulary), minilm_tokenizer.mask_token_id, minilm_tokenizer.special_token_ids,
        max_predictions_per_seq=8, whole_word_masking=whole_words,
        continuation_token_ids=[i for i, t in enumerate(vocabulary) if t.startswith("##")],
        seed=seed,
    )
    out = masker(token_ids)
    assert out["token_ids"].shape == token_ids.shape
    for name in ("masked_positions", "masked_ids", "masked_weights"):
        assert out[name].shape == (8,)
    positions = out["masked_positions"][out["masked_weights"] > 0]
    assert not np.isin(token_ids[positions], minilm_tokenizer.special_token_ids).any()
    special = np.isin(token_ids, minilm_tokenizer.special_token_ids)
    np.testing.assert_array_equal(out["token_ids"][special], token_ids[special])
    maskable = int((~special).sum())
    assert len(positions) <= max(1, round(0.15 * maskable)) if maskable else len(positions) == 0
