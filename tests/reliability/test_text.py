"""Hard text through the real MiniLM tokenizer and packer: defined outcomes, never a crash.

Every packed row is `[CLS] ... [SEP]` padded to `sequence_length`, whatever the text.
"""

import numpy as np
import pytest
import tensorflow as tf

from tests.test_case import shared_path

VOCAB = shared_path("models", "all-MiniLM-L6-v2", "vocab.txt")
MAX_LENGTH = 16


@pytest.fixture(scope="module")
def tokenizer():
    from keras_bert.text import load_tokenizer

    return load_tokenizer(VOCAB)


def packed_rows(tokenizer, texts, pairs=None, sequence_length=MAX_LENGTH):
    packed = tokenizer.pack(texts, pairs, sequence_length=sequence_length)
    arrays = {name: np.asarray(value) for name, value in packed.items()}
    for array in arrays.values():
        assert array.shape == (len(texts), sequence_length) and array.dtype == np.int32
    for row in range(len(texts)):
        length = int(arrays["padding_mask"][row].sum())
        ids = arrays["token_ids"][row]
        assert ids[0] == tokenizer.cls_token_id and ids[length - 1] == tokenizer.sep_token_id
        assert (ids[length:] == tokenizer.pad_token_id).all()
        assert (arrays["padding_mask"][row][:length] == 1).all()
        assert ((ids >= 0) & (ids < tokenizer.vocabulary_size())).all()
    return arrays


def test_empty_and_whitespace_only_texts_pack_to_cls_sep(tokenizer):
    texts = ["", " ", "\t\n\r ", "\u3000\u00a0"]
    assert tokenizer.tokenize(texts).to_list() == [[], [], [], []]
    arrays = packed_rows(tokenizer, texts)
    assert arrays["padding_mask"].sum(axis=1).tolist() == [2, 2, 2, 2]
    # An empty second segment still gets its [SEP].
    pairs = packed_rows(tokenizer, ["a"], [""])
    assert pairs["padding_mask"].sum() == 4 and pairs["segment_ids"][0, :4].tolist() == [0, 0, 0, 1]


def test_100k_character_text_is_truncated_never_an_error(tokenizer):
    long_text = ("the quick brown fox jumps over the lazy dog " * 2400)[:100_000]
    assert len(long_text) == 100_000
    arrays = packed_rows(tokenizer, [long_text, "short"], sequence_length=128)
    assert arrays["padding_mask"][0].sum() == 128
    expected = tokenizer.tokenize(long_text).numpy()[:126]
    np.testing.assert_array_equal(arrays["token_ids"][0, 1:127], expected)
    # One 100k-character "word" exceeds max_input_chars_per_word: a single [UNK].
    unknown = tokenizer.token_to_id("[UNK]")
    assert tokenizer.tokenize("x" * 100_000).numpy().tolist() == [unknown]
    # A pair far beyond sequence_length: truncated longest-first, both segments kept.
    pair = packed_rows(tokenizer, [long_text], [long_text], sequence_length=32)
    # 29 tokens to share: 14 + 15, as the reference tokenizer splits them (tests/text checks
    # the packer against it); segment 1 counts its tokens and its [SEP].
    assert pair["padding_mask"].sum() == 32 and pair["segment_ids"][0].sum() == 16


def test_invalid_utf8_bytes_do_not_crash(tokenizer):
    texts = tf.constant([b"caf\xc3", b"\xff\xfe bad", b"ok \x80 text", b"\xed\xa0\x80"])
    ids = tokenizer.tokenize(texts).to_list()
    assert len(ids) == 4
    packed_rows(tokenizer, texts)
    # Valid words around the bad bytes still get their own ids.
    text_id = tokenizer.token_to_id("text")
    assert text_id in ids[2] and tokenizer.token_to_id("ok") in ids[2]


def test_nul_and_control_characters_are_dropped(tokenizer):
    clean = tokenizer.tokenize("hello world").numpy().tolist()
    for text in ["hello\x00 world", "hel\x00lo world", "hello\x07\x1b world\x7f", "\x00\x01hello world\x0e"]:
        assert tokenizer.tokenize(text).numpy().tolist() == clean, repr(text)
    arrays = packed_rows(tokenizer, ["\x00" * 1000])
    assert arrays["padding_mask"].sum() == 2


def test_mixed_scripts_tokenize_and_pack(tokenizer):
    texts = ["hello мир 世界 مرحبا שלום नमस्ते 😀 ｆｕｌｌ", "ΑΒΓ abc 東京 ß İ ﬁ"]
    ids = tokenizer.tokenize(texts).to_list()
    assert all(len(row) > 5 for row in ids)
    # CJK characters are split one per token.
    assert len(tokenizer.tokenize("世界東京").numpy()) == 4
    packed_rows(tokenizer, texts, sequence_length=64)


def test_packed_ids_never_exceed_the_encoder_vocabulary(tokenizer):
    """Whatever the text, the packer's ids are valid input for an encoder of this vocabulary."""
    import keras_bert

    encoder = keras_bert.BertEncoder(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=MAX_LENGTH, dropout=0.0,
    )
    texts = ["", "\x00", "x" * 5000, "мир 😀 東京", "[CLS] [SEP] [MASK]"]
    packed = tokenizer.pack(texts, sequence_length=MAX_LENGTH)
    outputs = encoder(packed)
    assert np.isfinite(np.asarray(outputs["pooled_output"])).all()
