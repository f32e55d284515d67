import keras
import numpy as np
import pytest

from keras_bert.layers import SegmentPairHead
from keras_bert.layers.segment_pair_head import segment_pair_masks
from tests.test_case import to_numpy

# Two packed pairs, `[CLS] A [SEP] B [SEP]` then padding: A = positions 1-2 and B = 4-5 in the
# first; A = position 1 and B = positions 3-6 in the second (no padding).
SEGMENT_IDS = np.array([[0, 0, 0, 0, 1, 1, 1, 0], [0, 0, 0, 1, 1, 1, 1, 1]], "int32")
PADDING_MASK = np.array([[1, 1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1, 1]], "int32")


def test_masks_leave_out_cls_both_seps_and_padding():
    in_first, in_second = (to_numpy(mask) for mask in segment_pair_masks(SEGMENT_IDS, PADDING_MASK))
    np.testing.assert_array_equal(
        in_first, [[0, 1, 1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0]]
    )
    np.testing.assert_array_equal(
        in_second, [[0, 0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1, 1, 0]]
    )


def test_logits_match_a_hand_computation():
    rng = np.random.default_rng(0)
    sequence = rng.normal(size=(2, 8, 6)).astype("float32")
    head = SegmentPairHead(num_classes=3)
    head(sequence, SEGMENT_IDS, PADDING_MASK)
    # A new head starts at zero: it adds nothing to the [CLS] head's logits.
    np.testing.assert_array_equal(to_numpy(head(sequence, SEGMENT_IDS, PADDING_MASK)), 0.0)
    kernel = rng.normal(size=(12, 3)).astype("float32")
    head.kernel.assign(kernel)
    expected = []
    for row, (first, second) in enumerate([([1, 2], [4, 5]), ([1], [3, 4, 5, 6])]):
        a = sequence[row, first].mean(0)
        b = sequence[row, second].mean(0)
        expected.append(np.concatenate([a * b, np.abs(a - b)]) @ kernel)
    np.testing.assert_allclose(
        to_numpy(head(sequence, SEGMENT_IDS, PADDING_MASK)), np.stack(expected), rtol=1e-5,
        atol=1e-6,
    )


def test_empty_segment_averages_to_zero_and_bfloat16_gives_float32():
    # "[CLS] [SEP] [SEP]": both segments empty, so the features and logits are zeros, not NaN.
    head = SegmentPairHead()
    sequence = keras.ops.cast(np.ones((1, 3, 4)), "bfloat16")
    head(sequence, np.array([[0, 0, 1]]), np.ones((1, 3), "int32"))
    head.kernel.assign(np.ones((8, 2), "float32"))
    logits = head(sequence, np.array([[0, 0, 1]]), np.ones((1, 3), "int32"))
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    np.testing.assert_array_equal(to_numpy(logits), 0.0)


def test_config_round_trip_and_argument_errors():
    head = SegmentPairHead(num_classes=3, name="pair")
    restored = SegmentPairHead.from_config(head.get_config())
    assert restored.num_classes == 3 and restored.name == "pair"
    with pytest.raises(ValueError, match=r"`num_classes` must be a positive int.*received 0"):
        SegmentPairHead(num_classes=0)
