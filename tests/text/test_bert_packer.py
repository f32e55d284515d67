import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_bert.text import BertPacker
from keras_bert.text.bert_packer import longest_first_lengths


def reference_longest_first(first, second, budget):
    """Hugging Face tokenizers' LongestFirst, written from its description."""
    if first + second <= budget:
        return first, second
    shorter, longer = min(first, second), max(first, second)
    kept_shorter = shorter if shorter <= budget // 2 else budget // 2
    kept_longer = budget - kept_shorter
    return (kept_longer, kept_shorter) if first > second else (kept_shorter, kept_longer)


def test_longest_first_lengths_match_the_reference_rule():
    grid = [(a, b) for a in range(0, 40) for b in range(0, 40)]
    first = tf.constant([a for a, _ in grid])
    second = tf.constant([b for _, b in grid])
    for budget in (2, 3, 5, 29, 61):
        got_first, got_second = longest_first_lengths(first, second, budget)
        expected = [reference_longest_first(a, b, budget) for a, b in grid]
        np.testing.assert_array_equal(got_first, [e[0] for e in expected])
        np.testing.assert_array_equal(got_second, [e[1] for e in expected])


def test_longest_first_matches_live_reference(reference_tokenizer):
    """Truncate "a a a ..." / "b b ..." pairs with the reference itself."""
    for sequence_length in (5, 8, 16):
        reference_tokenizer.enable_truncation(max_length=sequence_length, strategy="longest_first")
        try:
            for a in range(0, 14, 3):
                for b in range(1, 14, 4):
                    encoding = reference_tokenizer.encode(" ".join("a" * a), " ".join("b" * b))
                    kept = (encoding.ids.count(1037), encoding.ids.count(1038))
                    got = longest_first_lengths(
                        tf.constant([a]), tf.constant([b]), sequence_length - 3
                    )
                    assert (int(got[0][0]), int(got[1][0])) == kept
        finally:
            reference_tokenizer.no_truncation()


def test_packs_pairs_with_segments_and_padding():
    packer = BertPacker(sequence_length=10)
    first = tf.ragged.constant([[1, 2, 3], [4], []])
    second = tf.ragged.constant([[5], [6, 7, 8, 9, 10, 11, 12, 13], [14, 15]])
    packed = packer(first, second)
    np.testing.assert_array_equal(
        packed["token_ids"],
        [
            [101, 1, 2, 3, 102, 5, 102, 0, 0, 0],
            [101, 4, 102, 6, 7, 8, 9, 10, 11, 102],
            [101, 102, 14, 15, 102, 0, 0, 0, 0, 0],
        ],
    )
    np.testing.assert_array_equal(
        packed["segment_ids"],
        [
            [0, 0, 0, 0, 0, 1, 1, 0, 0, 0],
            [0, 0, 0, 1, 1, 1, 1, 1, 1, 1],
            [0, 0, 1, 1, 1, 0, 0, 0, 0, 0],
        ],
    )
    np.testing.assert_array_equal(
        packed["padding_mask"],
        [
            [1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
            [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
        ],
    )


def test_single_segments_are_cut_at_the_end():
    packer = BertPacker(sequence_length=5, cls_token_id=7, sep_token_id=8, pad_token_id=9)
    packed = packer(tf.ragged.constant([[1, 2, 3, 4, 5], [1]]))
    np.testing.assert_array_equal(packed["token_ids"], [[7, 1, 2, 3, 8], [7, 1, 8, 9, 9]])
    np.testing.assert_array_equal(packed["segment_ids"], np.zeros((2, 5)))


def test_none_sequence_length_pads_to_the_longest():
    packer = BertPacker(sequence_length=None)
    packed = packer(tf.ragged.constant([[1, 2], [3]]), tf.ragged.constant([[4], [5, 6, 7]]))
    assert packed["token_ids"].shape == (2, 7)
    np.testing.assert_array_equal(packed["token_ids"][1], [101, 3, 102, 5, 6, 7, 102])


def test_empty_batch():
    packed = BertPacker(sequence_length=4)(tf.ragged.constant([], dtype=tf.int32, ragged_rank=1))
    assert packed["token_ids"].shape == (0, 4)


def test_validation():
    with pytest.raises(ValueError, match="`sequence_length`"):
        BertPacker(sequence_length=1)
    with pytest.raises(ValueError, match="`cls_token_id`"):
        BertPacker(cls_token_id=-1)
    with pytest.raises(ValueError, match="`sequence_length` \\(2\\).*pairs"):
        BertPacker(sequence_length=2)(tf.ragged.constant([[1]]), tf.ragged.constant([[2]]))
    with pytest.raises(ValueError, match="RaggedTensor"):
        BertPacker()(tf.constant([[1, 2]]))
    with pytest.raises(ValueError, match="`token_ids` \\(2 rows\\).*`token_ids_pair` \\(1 rows\\)"):
        BertPacker()(tf.ragged.constant([[1], [2]]), tf.ragged.constant([[3]]))


def test_accepts_lists_of_lists():
    packed = BertPacker(sequence_length=5)([[1, 2], []], [[3], [4]])
    np.testing.assert_array_equal(
        packed["token_ids"], [[101, 1, 102, 3, 102], [101, 102, 4, 102, 0]]
    )


def test_runs_in_tf_data_and_round_trips_config():
    packer = BertPacker(sequence_length=6, pad_token_id=3)
    dataset = tf.data.Dataset.from_tensor_slices(
        tf.ragged.constant([[1, 2], [4, 5, 6, 7, 8, 9]])
    ).batch(2).map(packer)
    batch = next(iter(dataset))
    np.testing.assert_array_equal(batch["token_ids"], [[101, 1, 2, 102, 3, 3],
                                                       [101, 4, 5, 6, 7, 102]])
    restored = BertPacker.from_config(json.loads(json.dumps(packer.get_config())))
    assert restored.get_config() == packer.get_config()
    deserialized = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(packer)
    )
    assert deserialized.get_config() == packer.get_config()
