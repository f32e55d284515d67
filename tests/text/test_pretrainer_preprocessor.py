"""`PretrainerPreprocessor`: the packing and masking it replaced, on real text, and the same
examples eagerly, in a traced `tf.function` and in `tf.data`."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_bert.text import BertPacker
from keras_bert.text import BertTokenizer
from keras_bert.text import MaskedLMMasker
from keras_bert.text import PretrainerPreprocessor
from keras_bert.text import PretrainingExampleBuilder
from keras_bert.text import read_documents
from keras_bert.inputs import PRETRAINER_INPUT_NAMES
from keras_bert.text.pretrainer_preprocessor import PRETRAINER_LABEL_NAMES
from tests.text.shared_data import WIKITEXT
from tests.text.shared_data import requires_shared

SMALL_VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "##s", "."]


def _wikitext_lines(limit):
    lines = [line for document in read_documents(WIKITEXT / "valid.txt") for line in document]
    return lines[:limit]


def _wikitext_pairs(preprocessor, limit=300):
    """Token ids of consecutive WikiText lines, each pair cut at the back to fit, as the example
    builder cuts its pairs before handing them over."""
    documents = preprocessor.tokenize_documents(read_documents(WIKITEXT / "valid.txt")[:40])
    budget = preprocessor.sequence_length - 3
    firsts, seconds = [], []
    for document in documents:
        for first, second in zip(document, document[1:]):
            first, second = list(first), list(second)
            while len(first) + len(second) > budget:
                (first if len(first) > len(second) else second).pop()
            if first and second:
                firsts.append(first)
                seconds.append(second)
    return firsts[:limit], seconds[:limit]


def _old_numpy_packing(first, second, sequence_length, tokenizer):
    """`[CLS] A [SEP] B [SEP]` as `PretrainingExampleBuilder` packed it by hand before."""
    token_ids = [tokenizer.cls_token_id, *first, tokenizer.sep_token_id, *second,
                 tokenizer.sep_token_id]
    segment_ids = [0] * (len(first) + 2) + [1] * (len(second) + 1)
    padding = sequence_length - len(token_ids)
    return {
        "token_ids": np.array(token_ids + [tokenizer.pad_token_id] * padding, np.int32),
        "segment_ids": np.array(segment_ids + [0] * padding, np.int32),
        "padding_mask": (np.arange(sequence_length) < len(segment_ids)).astype(np.int32),
    }


def _numpy(outputs):
    inputs, labels = outputs
    return {name: np.asarray(value) for name, value in {**inputs, **labels}.items()}


def _assert_equal(got, expected):
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name].dtype == expected[name].dtype, name
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


@pytest.fixture(scope="module")
def small_tokenizer():
    return BertTokenizer(SMALL_VOCABULARY)


# === Parity with the packing and masking it replaces, on real text ===


@requires_shared
@pytest.mark.parametrize("sequence_length, whole_word_masking", [(64, False), (128, True)])
def test_wikitext_pairs_match_the_old_numpy_packing(
    minilm_tokenizer, sequence_length, whole_word_masking
):
    preprocessor = PretrainerPreprocessor(
        minilm_tokenizer, sequence_length=sequence_length, max_predictions_per_seq=12,
        whole_word_masking=whole_word_masking, seed=5,
    )
    firsts, seconds = _wikitext_pairs(preprocessor)
    assert len(firsts) == 300
    labels = np.arange(len(firsts), dtype=np.int32) % 2
    got = _numpy(preprocessor(firsts, seconds, next_sentence_label=labels))

    vocabulary = minilm_tokenizer.get_vocabulary()
    masker = MaskedLMMasker(
        len(vocabulary), minilm_tokenizer.mask_token_id, minilm_tokenizer.special_token_ids,
        max_predictions_per_seq=12, whole_word_masking=whole_word_masking,
        continuation_token_ids=[i for i, t in enumerate(vocabulary) if t.startswith("##")],
        seed=5,
    )
    rows = []
    for first, second in zip(firsts, seconds):
        packed = _old_numpy_packing(first, second, sequence_length, minilm_tokenizer)
        rows.append({**packed, **masker(packed["token_ids"])})
    expected = {name: np.stack([row[name] for row in rows]) for name in rows[0]}
    expected["next_sentence_label"] = labels
    _assert_equal(got, expected)


@requires_shared
def test_pairs_that_fit_are_packed_whole(minilm_tokenizer):
    """The builder cuts pairs to `sequence_length - 3` tokens; the packer must not cut them."""
    # Selected tokens stay as they are: the packed ids are seen unmasked.
    preprocessor = PretrainerPreprocessor(
        minilm_tokenizer, sequence_length=32, mask_token_rate=0.0, random_token_rate=0.0
    )
    firsts, seconds = _wikitext_pairs(preprocessor, limit=100)
    assert sum(len(a) + len(b) == 29 for a, b in zip(firsts, seconds)) > 50  # Exactly full.
    inputs, _ = preprocessor(firsts, seconds)
    token_ids = inputs["token_ids"].numpy()
    cls, sep = minilm_tokenizer.cls_token_id, minilm_tokenizer.sep_token_id
    for row, (first, second) in enumerate(zip(firsts, seconds)):
        length = len(first) + len(second) + 3
        assert int(inputs["padding_mask"][row].numpy().sum()) == length
        assert token_ids[row, :length].tolist() == [cls, *first, sep, *second, sep]


@requires_shared
def test_builder_examples_are_the_preprocessor_outputs(minilm_tokenizer):
    """The builder's pairs go through its preprocessor unchanged, and its masking seed is the
    builder's first draw whatever the given preprocessor's seed."""
    preprocessor = PretrainerPreprocessor(minilm_tokenizer, sequence_length=48, seed=99)
    documents = preprocessor.tokenize_documents(read_documents(WIKITEXT / "valid.txt")[:20])
    examples = list(PretrainingExampleBuilder(preprocessor, seed=2).build(documents))
    other_seed = PretrainerPreprocessor(minilm_tokenizer, sequence_length=48, seed=7)
    again = list(PretrainingExampleBuilder(other_seed, seed=2).build(documents))
    assert len(examples) == len(again) > 300  # More than one call of the preprocessor.
    for example, other in zip(examples, again):
        for name in example:
            np.testing.assert_array_equal(example[name], other[name])
    restored = {name: np.stack([e[name] for e in examples]) for name in examples[0]}
    rows = np.arange(len(examples))[:, None]
    real = restored["masked_weights"] > 0
    restored["token_ids"][rows, restored["masked_positions"]] = np.where(
        real, restored["masked_ids"], restored["token_ids"][rows, restored["masked_positions"]]
    )
    repacked = preprocessor.packer(
        [ids[1 : int(s.argmax()) - 1].tolist() for ids, s in zip(
            restored["token_ids"], restored["segment_ids"])],
        [ids[int(s.argmax()) : int(m.sum()) - 1].tolist() for ids, s, m in zip(
            restored["token_ids"], restored["segment_ids"], restored["padding_mask"])],
    )
    for name in ("token_ids", "segment_ids", "padding_mask"):
        np.testing.assert_array_equal(repacked[name].numpy(), restored[name], err_msg=name)


# === One road: texts and ids, eager, tf.function, tf.data ===


@requires_shared
def test_texts_and_their_token_ids_give_the_same_examples(minilm_tokenizer):
    lines = _wikitext_lines(40)
    firsts, seconds = lines[:20], lines[20:]
    from_texts = PretrainerPreprocessor(minilm_tokenizer, sequence_length=64, seed=3)
    from_ids = PretrainerPreprocessor(minilm_tokenizer, sequence_length=64, seed=3)
    _assert_equal(
        _numpy(from_texts(firsts, seconds)),
        _numpy(from_ids(from_ids.tokenize(firsts).to_list(), minilm_tokenizer.tokenize(seconds))),
    )


@requires_shared
def test_eager_tf_function_and_tf_data_agree(minilm_tokenizer):
    lines = _wikitext_lines(96)
    firsts, seconds = lines[:48], lines[48:]
    labels = np.arange(48, dtype=np.int32) % 2

    def preprocessor():
        return PretrainerPreprocessor(
            minilm_tokenizer, sequence_length=64, max_predictions_per_seq=8, seed=11
        )

    eager = preprocessor()
    expected = [
        _numpy(eager(firsts[i : i + 16], seconds[i : i + 16], labels[i : i + 16]))
        for i in range(0, 48, 16)
    ]

    traced = preprocessor()
    spec = tf.TensorSpec([None], tf.string)

    @tf.function(input_signature=[spec, spec, tf.TensorSpec([None], tf.int32)])
    def call(first, second, label):
        return traced(first, second, label)

    for i, batch in zip(range(0, 48, 16), expected):
        _assert_equal(
            _numpy(call(tf.constant(firsts[i : i + 16]), tf.constant(seconds[i : i + 16]),
                        tf.constant(labels[i : i + 16]))),
            batch,
        )

    mapped = preprocessor()
    dataset = tf.data.Dataset.from_tensor_slices((firsts, seconds, labels)).batch(16).map(mapped)
    batches = list(dataset)
    assert len(batches) == 3
    for (inputs, targets), batch in zip(batches, expected):
        assert inputs["token_ids"].shape == (16, 64)
        assert inputs["masked_positions"].shape == (16, 8)
        _assert_equal(_numpy((inputs, targets)), batch)
    assert dataset.element_spec[0]["token_ids"].shape.as_list() == [None, 64]

    ragged = preprocessor()
    ids = tf.data.Dataset.from_tensor_slices(
        (minilm_tokenizer.tokenize(firsts), minilm_tokenizer.tokenize(seconds), labels)
    ).batch(16).map(ragged)
    for outputs, batch in zip(ids, expected):
        _assert_equal(_numpy(outputs), batch)


def test_output_layout_and_single_segments(small_tokenizer):
    preprocessor = PretrainerPreprocessor(small_tokenizer, sequence_length=8, seed=0)
    inputs, labels = preprocessor(["the cat sats .", "cat"], ["the cat", "sat ."], [0, 1])
    assert tuple(inputs) == PRETRAINER_INPUT_NAMES
    assert tuple(labels) == PRETRAINER_LABEL_NAMES
    for name in PRETRAINER_INPUT_NAMES[:3]:
        assert inputs[name].shape == (2, 8) and inputs[name].dtype == tf.int32
    assert inputs["masked_positions"].shape == (2, 20)
    assert labels["masked_ids"].dtype == tf.int32
    assert labels["masked_weights"].dtype == tf.float32
    np.testing.assert_array_equal(labels["next_sentence_label"], [0, 1])
    # A pair that does not fit is cut longest-first by the packer, as BertPacker cuts it.
    packed = BertPacker(8, cls_token_id=2, sep_token_id=3)(
        small_tokenizer.tokenize(["the cat sats ."]), small_tokenizer.tokenize(["the cat"])
    )
    unmasked = PretrainerPreprocessor(small_tokenizer, sequence_length=8, mask_token_rate=0.0,
                                      random_token_rate=0.0)
    inputs, labels = unmasked(["the cat sats ."], ["the cat"])
    np.testing.assert_array_equal(inputs["token_ids"], packed["token_ids"])
    assert sorted(labels) == ["masked_ids", "masked_weights"]
    # Without second segments: [CLS] A [SEP].
    inputs, _ = unmasked([[6, 7]])
    np.testing.assert_array_equal(inputs["token_ids"], [[2, 6, 7, 3, 0, 0, 0, 0]])
    np.testing.assert_array_equal(inputs["segment_ids"], np.zeros((1, 8)))


def test_tokenize_documents_keeps_the_nesting(small_tokenizer):
    preprocessor = PretrainerPreprocessor(small_tokenizer, sequence_length=16)
    documents = [["the cat", "sat ."], ["cats"], ["the", "cat", "the cat sat"]]

    class Progress:
        seen = 0

        def update(self, count):
            self.seen += count

    progress = Progress()
    tokenized = preprocessor.tokenize_documents(documents, batch_size=2, progress=progress)
    assert tokenized == [[[5, 6], [7, 9]], [[6, 8]], [[5], [6], [5, 6, 7]]]
    assert progress.seen == 6
    with pytest.raises(ValueError, match="`batch_size`"):
        preprocessor.tokenize_documents(documents, batch_size=0)


# === Config and validation ===


def test_get_config_round_trip(small_tokenizer):
    preprocessor = PretrainerPreprocessor(
        small_tokenizer, sequence_length=12, max_predictions_per_seq=3, mask_rate=0.3,
        mask_token_rate=0.6, random_token_rate=0.2, whole_word_masking=True, seed=4,
    )
    config = preprocessor.get_config()
    restored = PretrainerPreprocessor.from_config(json.loads(json.dumps(config)))
    assert type(restored) is PretrainerPreprocessor
    assert restored.get_config() == config
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(preprocessor)))
    deserialized = keras.saving.deserialize_keras_object(serialized)
    assert type(deserialized) is PretrainerPreprocessor
    assert deserialized.get_config() == config
    texts = ["the cat sats .", "the cats sat"]
    _assert_equal(_numpy(restored(texts, texts)), _numpy(preprocessor(texts, texts)))
    reseeded = preprocessor.with_seed(5)
    assert reseeded.get_config() == dict(config, seed=5, name=reseeded.name)


def test_validation(small_tokenizer):
    with pytest.raises(ValueError, match=r"`tokenizer` must have \[CLS\], \[SEP\] and \[MASK\]"):
        PretrainerPreprocessor(BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"]))
    with pytest.raises(ValueError, match="`sequence_length` must be an int >= 3, received 2"):
        PretrainerPreprocessor(small_tokenizer, sequence_length=2)
    with pytest.raises(ValueError, match="`mask_rate`"):
        PretrainerPreprocessor(small_tokenizer, mask_rate=1.5)
    preprocessor = PretrainerPreprocessor(small_tokenizer, sequence_length=8)
    with pytest.raises(ValueError, match=r"`token_ids` \(2 rows\) and `token_ids_pair` \(1 rows\)"):
        preprocessor(["the", "cat"], ["sat"])
    with pytest.raises(ValueError, match="`token_ids` must be texts or ragged token ids"):
        preprocessor(np.ones((2, 3), np.int32))
    with pytest.raises(ValueError, match="`sequence_length` .* must be at least 5"):
        PretrainingExampleBuilder(PretrainerPreprocessor(small_tokenizer, sequence_length=4))
    with pytest.raises(ValueError, match="`short_seq_prob`"):
        PretrainingExampleBuilder(preprocessor, short_seq_prob=2.0)
