"""`TextClassifierPreprocessor`: same ids as the tokenizer's packing and the reference, on every
road (eager, `tf.function`, `tf.data`, TFLite)."""

import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_bert.inputs import INPUT_NAMES
from keras_bert.text import BertTokenizer
from keras_bert.text import TextClassifierPreprocessor
from tests.text.shared_data import SHARED
from tests.text.shared_data import requires_shared

SST2_TEST = SHARED / "data" / "sst2" / "test.tsv"
SQUAD = SHARED / "data" / "squad" / "dev-v1.1-2articles.json"
# Texts that take the tokenizer's slow paths: literal special tokens, over-long words.
HARD_TEXTS = ["[CLS] literal [MASK]", "a" * 130 + " ok", "Ünïcödé ﬁ ½ [SEP]x", "", "x"]
SMALL_VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s", "!"]


def _sst2_sentences(limit=None):
    with open(SST2_TEST, encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        texts = [row["sentence"] for row in rows]
    return texts[:limit]


def _squad_pairs(limit=64):
    """`(questions, contexts)`: contexts longer than any packed length, so pairs truncate."""
    with open(SQUAD, encoding="utf-8") as f:
        articles = json.load(f)["data"]
    questions, contexts = [], []
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                questions.append(qa["question"])
                contexts.append(paragraph["context"])
    return questions[:limit], contexts[:limit]


def _numpy(packed):
    return {name: np.asarray(packed[name]) for name in INPUT_NAMES}


def _assert_equal(got, expected):
    got, expected = _numpy(got), _numpy(expected)
    for name in INPUT_NAMES:
        assert got[name].dtype == np.int32, name
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


# === Parity with the packing it replaces, on real text ===


@requires_shared
@pytest.mark.parametrize("sequence_length", [16, 128])
def test_single_sentences_match_tokenizer_pack(minilm_tokenizer, sequence_length):
    texts = _sst2_sentences(limit=500) + HARD_TEXTS
    preprocessor = TextClassifierPreprocessor(minilm_tokenizer, sequence_length=sequence_length)
    packed = preprocessor(texts)
    assert packed["token_ids"].shape == (len(texts), sequence_length)
    _assert_equal(packed, minilm_tokenizer.pack(texts, sequence_length=sequence_length))


@requires_shared
@pytest.mark.parametrize("sequence_length", [3, 24, 128])
def test_pairs_match_tokenizer_pack(minilm_tokenizer, sequence_length):
    questions, contexts = _squad_pairs()
    sentences = _sst2_sentences(limit=200)
    texts = questions + sentences[:100] + HARD_TEXTS
    pairs = contexts + sentences[100:] + list(reversed(HARD_TEXTS))
    preprocessor = TextClassifierPreprocessor(minilm_tokenizer, sequence_length=sequence_length)
    _assert_equal(
        preprocessor(texts, pairs), minilm_tokenizer.pack(texts, pairs, sequence_length=sequence_length)
    )


@requires_shared
def test_pairs_match_the_reference_longest_first(minilm_tokenizer, reference_tokenizer):
    questions, contexts = _squad_pairs(limit=32)
    sentences = _sst2_sentences(limit=64)
    texts, pairs = questions + sentences[:32], contexts + sentences[32:]
    sequence_length = 48
    packed = _numpy(TextClassifierPreprocessor(minilm_tokenizer, sequence_length)(texts, pairs))
    reference_tokenizer.enable_truncation(max_length=sequence_length, strategy="longest_first")
    reference_tokenizer.enable_padding(length=sequence_length)
    try:
        encodings = reference_tokenizer.encode_batch(list(zip(texts, pairs)))
    finally:
        reference_tokenizer.no_truncation()
        reference_tokenizer.no_padding()
    np.testing.assert_array_equal(packed["token_ids"], [e.ids for e in encodings])
    np.testing.assert_array_equal(packed["segment_ids"], [e.type_ids for e in encodings])
    np.testing.assert_array_equal(packed["padding_mask"], [e.attention_mask for e in encodings])


@requires_shared
def test_pack_numpy_chunks_match_one_call(minilm_tokenizer, monkeypatch):
    from keras_bert.text import text_classifier_preprocessor

    texts = _sst2_sentences(limit=70)
    pairs = list(reversed(texts))
    preprocessor = TextClassifierPreprocessor(minilm_tokenizer, sequence_length=32)
    expected = preprocessor(texts, pairs)
    monkeypatch.setattr(text_classifier_preprocessor, "_NUMPY_CHUNK", 16)
    packed = preprocessor.pack_numpy(texts, pairs)
    assert all(isinstance(packed[name], np.ndarray) for name in INPUT_NAMES)
    _assert_equal(packed, expected)
    # Without a fixed length, the chunks are padded to the longest of all.
    longest = TextClassifierPreprocessor(minilm_tokenizer, sequence_length=None)
    _assert_equal(longest.pack_numpy(texts), minilm_tokenizer.pack(texts, sequence_length=None))
    empty = preprocessor.pack_numpy([])
    assert empty["token_ids"].shape == (0, 32)


# === Every road gives the same ids ===


@requires_shared
def test_eager_tf_function_and_tf_data_agree(minilm_tokenizer):
    texts = _sst2_sentences(limit=24) + HARD_TEXTS
    pairs = list(reversed(texts))
    preprocessor = TextClassifierPreprocessor(minilm_tokenizer, sequence_length=40)
    expected_single = preprocessor(texts)
    expected_pair = preprocessor(texts, pairs)

    @tf.function(input_signature=[tf.TensorSpec((None,), tf.string)] * 2)
    def traced(texts, texts_pair):
        return preprocessor(texts, texts_pair)

    @tf.function(input_signature=[tf.TensorSpec((None,), tf.string)])
    def traced_single(texts):
        return preprocessor(texts)

    _assert_equal(traced(tf.constant(texts), tf.constant(pairs)), expected_pair)
    _assert_equal(traced_single(tf.constant(texts)), expected_single)

    batch_size = 8
    singles = tf.data.Dataset.from_tensor_slices(texts).batch(batch_size).map(preprocessor)
    both = tf.data.Dataset.from_tensor_slices((texts, pairs)).batch(batch_size).map(preprocessor)
    for dataset, expected in ((singles, expected_single), (both, expected_pair)):
        batches = list(dataset.as_numpy_iterator())
        _assert_equal(
            {name: np.concatenate([b[name] for b in batches]) for name in INPUT_NAMES}, expected
        )


@requires_shared
def test_tflite_matches_eager(minilm_tokenizer, tmp_path):
    """A batch-of-one string `.tflite` (tensorflow-text's kernels) gives the eager ids."""
    from ai_edge_litert.interpreter import InterpreterWithCustomOps
    import tensorflow_text as tf_text

    preprocessor = TextClassifierPreprocessor(minilm_tokenizer, sequence_length=24)

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((1,), tf.string)] * 2)
        def pack(self, text, text_pair):
            return preprocessor(text, text_pair)

    module = Module()
    path = str(tmp_path / "saved_model")
    tf.saved_model.save(module, path, signatures={"serving_default": module.pack})
    converter = tf.lite.TFLiteConverter.from_saved_model(path)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True
    interpreter = InterpreterWithCustomOps(
        model_content=converter.convert(),
        custom_op_registerers=tf_text.tflite_registrar.SELECT_TFTEXT_OPS,
    )
    runner = interpreter.get_signature_runner()
    texts = _sst2_sentences(limit=3) + HARD_TEXTS
    pairs = list(reversed(texts))
    expected = _numpy(preprocessor(texts, pairs))
    for i, (text, pair) in enumerate(zip(texts, pairs)):
        outputs = runner(
            text=np.array([text.encode("utf-8")], dtype=object),
            text_pair=np.array([pair.encode("utf-8")], dtype=object),
        )
        for name in INPUT_NAMES:
            np.testing.assert_array_equal(outputs[name], expected[name][i : i + 1], err_msg=name)


# === Config and errors ===


def test_get_config_round_trip():
    preprocessor = TextClassifierPreprocessor(BertTokenizer(SMALL_VOCABULARY), sequence_length=8)
    config = preprocessor.get_config()
    restored = TextClassifierPreprocessor.from_config(json.loads(json.dumps(config)))
    assert type(restored) is TextClassifierPreprocessor
    assert restored.get_config() == config
    assert restored.sequence_length == 8
    assert restored.tokenizer.get_vocabulary() == SMALL_VOCABULARY
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(preprocessor)))
    deserialized = keras.saving.deserialize_keras_object(serialized)
    assert type(deserialized) is TextClassifierPreprocessor
    assert deserialized.get_config() == config
    texts, pairs = ["hello worlds!", "world"], ["hello", "worlds worlds"]
    _assert_equal(deserialized(texts, pairs), preprocessor(texts, pairs))
    np.testing.assert_array_equal(
        np.asarray(preprocessor(["hello worlds!"])["token_ids"]), [[2, 5, 6, 7, 8, 3, 0, 0]]
    )


def test_errors_name_the_argument():
    tokenizer = BertTokenizer(SMALL_VOCABULARY)
    with pytest.raises(ValueError, match=r"`sequence_length` must be None or an int >= 2"):
        TextClassifierPreprocessor(tokenizer, sequence_length=1)
    with pytest.raises(ValueError, match=r"`tokenizer` must have \[CLS\] and \[SEP\]"):
        TextClassifierPreprocessor(BertTokenizer(["[PAD]", "[UNK]", "hello"]))
    preprocessor = TextClassifierPreprocessor(tokenizer, sequence_length=8)
    with pytest.raises(ValueError, match=r"`texts` \(2 texts\) and `texts_pair` \(1 texts\)"):
        preprocessor(["a", "b"], ["c"])
    with pytest.raises(ValueError, match=r"`texts` \(2 texts\) and `texts_pair` \(1 texts\)"):
        preprocessor.pack_numpy(["a", "b"], ["c"])
    with pytest.raises(ValueError, match=r"`texts` must be a string tensor of shape \(batch"):
        preprocessor([["a"]])
    with pytest.raises(ValueError, match=r"`sequence_length` \(2\) must be at least 3 for pairs"):
        TextClassifierPreprocessor(tokenizer, sequence_length=2)(["a"], ["b"])
