"""`TokenClassifierPreprocessor`: the ids, first-piece labels and word positions of the numpy
packing it replaces, on every road (eager, `tf.function`, `tf.data`)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_bert.inputs import IGNORED_LABEL
from keras_bert.inputs import INPUT_NAMES
from keras_bert.tasks import token_classification as tc
from keras_bert.text import BertTokenizer
from keras_bert.text import TokenClassifierPreprocessor
from keras_bert.text import words
from tests.text.shared_data import requires_shared

CONLL_TINY = os.path.join(
    os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "data", "conll_tiny"
)
SMALL_VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "oka", "##for", "visited",
                    "lisbon", "."]


def _legacy_convert_sentences(tokenizer, word_lists, sequence_length, tag_ids=None):
    """The numpy packing this layer replaces (token_classification.convert_sentences before
    issue 16), kept here as the reference the preprocessor must reproduce exactly."""
    pieces_per_sentence = words.tokenize_words(tokenizer, word_lists)
    num = len(word_lists)
    token_ids = np.full((num, sequence_length), tokenizer.pad_token_id, np.int32)
    padding_mask = np.zeros((num, sequence_length), np.int32)
    labels = np.full((num, sequence_length), IGNORED_LABEL, np.int32)
    word_positions, truncated_rows = [], []
    budget = sequence_length - 2
    for row, (sentence, word_pieces) in enumerate(zip(word_lists, pieces_per_sentence)):
        sequence = [tokenizer.cls_token_id]
        positions = np.full(len(sentence), -1, np.int64)
        truncated = False
        for w, pieces in enumerate(word_pieces):
            if len(sequence) - 1 + len(pieces) > budget:
                truncated = True
                continue
            if len(pieces):
                positions[w] = len(sequence)
                if tag_ids is not None:
                    labels[row, len(sequence)] = tag_ids[row][w]
                sequence.extend(pieces.tolist())
        sequence.append(tokenizer.sep_token_id)
        truncated_rows.append(truncated)
        token_ids[row, : len(sequence)] = sequence
        padding_mask[row, : len(sequence)] = 1
        word_positions.append(positions)
    inputs = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
              "padding_mask": padding_mask}
    return inputs, labels, word_positions, np.array(truncated_rows)


def _numpy(outputs):
    return {name: np.asarray(value) for name, value in outputs.items()}


def _assert_equal(got, expected, names=None):
    for name in names or expected:
        np.testing.assert_array_equal(np.asarray(got[name]), expected[name], err_msg=name)


# Words the reference tokenizes to nothing or to [UNK], and a literal special token.
HARD_SENTENCES = [["\u200b", "a" * 130, "ok"], [], ["[MASK]", "x"], ["\x00"]]


@requires_shared
@pytest.mark.parametrize("split", ["train", "dev"])
@pytest.mark.parametrize("sequence_length", [128, 16, 8, 5, 2])
def test_matches_the_numpy_packing_it_replaces(minilm_tokenizer, split, sequence_length):
    sentences = tc.read_conll(os.path.join(CONLL_TINY, f"{split}.txt"))
    word_lists = [s.words for s in sentences] + HARD_SENTENCES
    tag_ids = tc.encode_tags(sentences, tc.tag_list(sentences)) + [
        list(range(len(s))) for s in HARD_SENTENCES
    ]
    inputs, labels, positions, truncated = _legacy_convert_sentences(
        minilm_tokenizer, word_lists, sequence_length, tag_ids
    )
    preprocessor = TokenClassifierPreprocessor(minilm_tokenizer, sequence_length)
    outputs = _numpy(preprocessor(word_lists, tag_ids))
    _assert_equal(outputs, inputs)
    np.testing.assert_array_equal(outputs["labels"], labels)
    np.testing.assert_array_equal(outputs["truncated"], truncated)
    for row, words_of_row in enumerate(word_lists):
        np.testing.assert_array_equal(
            tc.first_piece_positions(outputs["word_ids"][row], len(words_of_row)), positions[row]
        )
    # The task's features, now from the preprocessor, are what they were.
    features = tc.convert_sentences(minilm_tokenizer, word_lists, sequence_length, tag_ids)
    _assert_equal(features.inputs, inputs)
    np.testing.assert_array_equal(features.labels, labels)
    assert features.num_truncated == truncated.sum()
    for got, expected in zip(features.word_positions, positions):
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == np.int64
    unlabelled = tc.convert_sentences(minilm_tokenizer, word_lists, sequence_length)
    assert np.all(unlabelled.labels == IGNORED_LABEL)


def test_a_word_that_does_not_fit_is_left_out_and_later_words_may_fit():
    preprocessor = TokenClassifierPreprocessor(BertTokenizer(SMALL_VOCABULARY), 5)
    # "okafor" is two pieces: after "visited" only one token of the budget of 3 is left.
    outputs = _numpy(preprocessor([["visited", "visited", "Okafor", "."]], [[7, 8, 9, 10]]))
    np.testing.assert_array_equal(outputs["token_ids"], [[2, 7, 7, 9, 3]])
    np.testing.assert_array_equal(outputs["word_ids"], [[-1, 0, 1, 3, -1]])
    np.testing.assert_array_equal(outputs["labels"], [[IGNORED_LABEL, 7, 8, 10, IGNORED_LABEL]])
    np.testing.assert_array_equal(outputs["truncated"], [True])


# === Every road gives the same inputs ===


@requires_shared
def test_eager_tf_function_and_tf_data_agree(minilm_tokenizer):
    sentences = tc.read_conll(os.path.join(CONLL_TINY, "dev.txt"))
    word_lists = [s.words for s in sentences]
    tag_ids = tc.encode_tags(sentences, tc.tag_list(sentences))
    preprocessor = TokenClassifierPreprocessor(minilm_tokenizer, 16)
    expected = _numpy(preprocessor(word_lists, tag_ids))
    ragged_words = tf.ragged.constant(word_lists)
    ragged_tags = tf.ragged.constant(tag_ids, tf.int32)

    @tf.function(input_signature=[tf.RaggedTensorSpec([None, None], tf.string),
                                  tf.RaggedTensorSpec([None, None], tf.int32)])
    def traced(words, labels):
        return preprocessor(words, labels)

    _assert_equal(traced(ragged_words, ragged_tags), expected)

    # Texts, cut at white space: the graph road of `training.predict`'s input lines.
    texts = [" ".join(words_of_row) for words_of_row in word_lists]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def traced_texts(texts):
        return preprocessor(texts)

    names = INPUT_NAMES + ("word_ids", "truncated")
    _assert_equal(traced_texts(tf.constant(texts)), expected, names)
    one = _numpy(preprocessor(texts[2]))
    _assert_equal(one, {name: expected[name][2] for name in names})

    dataset = tf.data.Dataset.from_tensor_slices((ragged_words, ragged_tags)).batch(5)
    batches = list(dataset.map(preprocessor).as_numpy_iterator())
    _assert_equal({n: np.concatenate([b[n] for b in batches]) for n in expected}, expected)


# === Config and errors ===


def test_get_config_round_trip():
    preprocessor = TokenClassifierPreprocessor(BertTokenizer(SMALL_VOCABULARY), 8)
    config = preprocessor.get_config()
    restored = TokenClassifierPreprocessor.from_config(json.loads(json.dumps(config)))
    assert type(restored) is TokenClassifierPreprocessor
    assert restored.get_config() == config
    assert restored.sequence_length == 8
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(preprocessor)))
    deserialized = keras.saving.deserialize_keras_object(serialized)
    assert type(deserialized) is TokenClassifierPreprocessor
    assert deserialized.get_config() == config
    word_lists, labels = [["Okafor", "visited", "Lisbon"]], [[2, 0, 1]]
    outputs = _numpy(preprocessor(word_lists, labels))
    _assert_equal(deserialized(word_lists, labels), outputs)
    np.testing.assert_array_equal(outputs["token_ids"], [[2, 5, 6, 7, 8, 3, 0, 0]])
    np.testing.assert_array_equal(outputs["word_ids"], [[-1, 0, 0, 1, 2, -1, -1, -1]])
    np.testing.assert_array_equal(
        outputs["labels"], [[IGNORED_LABEL, 2, IGNORED_LABEL, 0, 1] + [IGNORED_LABEL] * 3]
    )


def test_errors_name_the_argument():
    tokenizer = BertTokenizer(SMALL_VOCABULARY)
    with pytest.raises(ValueError, match=r"`sequence_length` must be an int >= 2, received 1"):
        TokenClassifierPreprocessor(tokenizer, 1)
    with pytest.raises(ValueError, match=r"`tokenizer` must have \[CLS\] and \[SEP\]"):
        TokenClassifierPreprocessor(BertTokenizer(["[PAD]", "[UNK]", "oka"]))
    preprocessor = TokenClassifierPreprocessor(tokenizer, 8)
    with pytest.raises(ValueError, match=r"`words` must be a string `tf.RaggedTensor` of shape"):
        preprocessor(tf.ragged.constant([[["a"]]]))
