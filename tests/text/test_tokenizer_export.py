"""Tokenizer + packer inside a reloaded SavedModel and a TFLite model, against eager ids."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text

from tests.text.shared_data import requires_shared

FAST_PATH_TEXTS = ["Hello, World!", "naïve café ＦＵＬＬ 東京", "", "tab\tand\nnewline"]
EXACT_PATH_TEXTS = ["[CLS] literal [MASK]", "a" * 130 + " ok", "Ünïcödé ﬁ ½ [SEP]x", "x"]
PAIRS = ["the second segment", "emoji 😀👍🏽", "[PAD]", "y" * 200]


class TokenizerModule(tf.Module):
    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)] * 2)
    def pack(self, texts, texts_pair):
        return self.tokenizer.pack(texts, texts_pair, sequence_length=32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def pack_single(self, texts):
        return self.tokenizer.pack(texts, sequence_length=16)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, texts):
        token_ids, row_splits = self.tokenizer.tokenize_flat(texts)
        return {"token_ids": token_ids, "row_splits": row_splits}


@pytest.fixture(scope="module")
def saved_model_dir(minilm_tokenizer, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tokenizer_saved_model"))
    module = TokenizerModule(minilm_tokenizer)
    tf.saved_model.save(
        module,
        path,
        signatures={
            "pack": module.pack,
            "pack_single": module.pack_single,
            "tokenize": module.tokenize,
        },
    )
    return path


def eager(tokenizer, texts, texts_pair):
    packed = tokenizer.pack(texts, texts_pair, sequence_length=32)
    single = tokenizer.pack(texts, sequence_length=16)
    token_ids, row_splits = tokenizer.tokenize_flat(tf.constant(texts))
    return packed, single, {"token_ids": token_ids, "row_splits": row_splits}


def assert_all_equal(got, expected):
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value)


@requires_shared
@pytest.mark.parametrize("texts", [FAST_PATH_TEXTS, EXACT_PATH_TEXTS])
def test_saved_model_matches_eager(minilm_tokenizer, saved_model_dir, texts):
    loaded = tf.saved_model.load(saved_model_dir)
    expected_packed, expected_single, expected_tokens = eager(minilm_tokenizer, texts, PAIRS)
    texts = tf.constant(texts)
    assert_all_equal(
        loaded.signatures["pack"](texts=texts, texts_pair=tf.constant(PAIRS)), expected_packed
    )
    assert_all_equal(loaded.signatures["pack_single"](texts=texts), expected_single)
    assert_all_equal(loaded.signatures["tokenize"](texts=texts), expected_tokens)


@requires_shared
def test_tflite_matches_eager(minilm_tokenizer, saved_model_dir):
    from ai_edge_litert.interpreter import InterpreterWithCustomOps

    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=["pack", "pack_single", "tokenize"]
    )
    converter.allow_custom_ops = True
    interpreter = InterpreterWithCustomOps(
        custom_op_registerers=tf_text.tflite_registrar.SELECT_TFTEXT_OPS,
        model_content=converter.convert(),
    )
    pack = interpreter.get_signature_runner("pack")
    pack_single = interpreter.get_signature_runner("pack_single")
    tokenize = interpreter.get_signature_runner("tokenize")
    for texts in (FAST_PATH_TEXTS, EXACT_PATH_TEXTS):
        expected_packed, expected_single, expected_tokens = eager(minilm_tokenizer, texts, PAIRS)
        texts = np.array(texts)
        assert_all_equal(pack(texts=texts, texts_pair=np.array(PAIRS)), expected_packed)
        assert_all_equal(pack_single(texts=texts), expected_single)
        assert_all_equal(tokenize(texts=texts), expected_tokens)
