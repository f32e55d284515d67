import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_bert
from keras_bert.text import BertTokenizer
from keras_bert.text import load_tokenizer
from tests.text.shared_data import MINILM
from tests.text.shared_data import MINILM_GOOGLE
from tests.text.shared_data import golden_cases
from tests.text.shared_data import requires_shared

CASES = golden_cases()
SINGLES = [case for case in CASES if "text_pair" not in case]
PAIRS = [case for case in CASES if "text_pair" in case]

SMALL_VOCABULARY = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[", "]", ",", ".", "!",
    "hello", "world", "the", "un", "##k", "cl", "##s", "mask", "se", "##p", "pad",
    "a", "##a", "b", "##b", "é", "##é", "Hello", "World",
]


def small_tokenizer(**kwargs):
    return BertTokenizer(SMALL_VOCABULARY, **kwargs)


# === Golden parity ===


@requires_shared
def test_golden_single_texts_match_reference_ids(minilm_tokenizer):
    assert SINGLES
    ids = minilm_tokenizer.tokenize([case["text"] for case in SINGLES]).to_list()
    mismatches = [
        (case["text"], got, case["ids"]) for case, got in zip(SINGLES, ids) if got != case["ids"]
    ]
    assert not mismatches, mismatches[:5]


@requires_shared
def test_golden_pairs_match_reference_packing(minilm_tokenizer):
    assert PAIRS
    sequence_length = PAIRS[0]["max_length"]
    packed = minilm_tokenizer.pack(
        [case["text"] for case in PAIRS], [case["text_pair"] for case in PAIRS], sequence_length
    )
    np.testing.assert_array_equal(packed["token_ids"], [c["input_ids"] for c in PAIRS])
    np.testing.assert_array_equal(packed["segment_ids"], [c["token_type_ids"] for c in PAIRS])
    np.testing.assert_array_equal(packed["padding_mask"], [c["attention_mask"] for c in PAIRS])


# === Public contract ===


@requires_shared
def test_public_contract(minilm_tokenizer):
    tokenizer = keras_bert.load_tokenizer(str(MINILM))
    ids = tokenizer.tokenize(["Hello, World!", ""])
    assert isinstance(ids, tf.RaggedTensor)
    assert ids.dtype == tf.int32
    assert ids.to_list() == [[7592, 1010, 2088, 999], []]
    packed = tokenizer.pack(["Hello", "a b c"], ["World", "d"], sequence_length=16)
    assert sorted(packed) == ["padding_mask", "segment_ids", "token_ids"]
    for value in packed.values():
        assert value.dtype == tf.int32
        assert value.shape == (2, 16)
    single = tokenizer.pack(["Hello"], sequence_length=8)
    np.testing.assert_array_equal(single["token_ids"], [[101, 7592, 102, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(single["padding_mask"], [[1, 1, 1, 0, 0, 0, 0, 0]])


@requires_shared
def test_pack_pads_to_batch_longest_when_max_length_is_none(minilm_tokenizer):
    packed = minilm_tokenizer.pack(["hello world", "hello"], sequence_length=None)
    np.testing.assert_array_equal(
        packed["token_ids"], [[101, 7592, 2088, 102], [101, 7592, 102, 0]]
    )


def test_pack_validation():
    tokenizer = small_tokenizer(lower_case=True)
    with pytest.raises(ValueError, match="`sequence_length`"):
        tokenizer.pack(["a"], sequence_length=1)
    with pytest.raises(ValueError, match="`texts` \\(2 texts\\).*`texts_pair` \\(1 texts\\)"):
        tokenizer.pack(["a", "b"], ["c"])


def test_tokenize_scalar_and_layer_call():
    tokenizer = small_tokenizer(lower_case=True)
    np.testing.assert_array_equal(tokenizer.tokenize("hello world"), [10, 11])
    assert tokenizer(tf.constant(["hello"])).to_list() == [[10]]


@requires_shared
def test_load_tokenizer_from_directories_and_files():
    hugging_face = load_tokenizer(MINILM)
    google = load_tokenizer(MINILM_GOOGLE)
    from_file = load_tokenizer(MINILM / "vocab.txt")
    assert hugging_face.lower_case and google.lower_case and from_file.lower_case
    assert hugging_face.vocabulary_size() == 30522
    text = ["Ünïcödé [CLS] ＦＵＬＬ 東京"]
    expected = hugging_face.tokenize(text).to_list()
    assert google.tokenize(text).to_list() == expected
    assert from_file.tokenize(text).to_list() == expected
    cased = load_tokenizer(MINILM, lower_case=False)
    assert not cased.lower_case


def test_load_tokenizer_reads_do_lower_case(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(SMALL_VOCABULARY) + "\n", encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    tokenizer = load_tokenizer(tmp_path)
    assert not tokenizer.lower_case
    assert tokenizer.tokenize(["Hello World"]).to_list() == [[27, 28]]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    assert load_tokenizer(tmp_path).tokenize(["Hello World"]).to_list() == [[10, 11]]


def test_lower_case_is_inferred_from_the_vocabulary():
    assert not small_tokenizer().lower_case  # "Hello" is in the vocabulary.
    assert BertTokenizer([t for t in SMALL_VOCABULARY if t.islower() or "[" in t]).lower_case


def test_load_tokenizer_rejects_bad_paths(tmp_path):
    with pytest.raises(ValueError, match="`path`"):
        load_tokenizer(tmp_path / "missing")
    with pytest.raises(ValueError, match="`path`.*vocab.txt"):
        load_tokenizer(tmp_path)


def test_constructor_validation():
    with pytest.raises(ValueError, match="`unknown_token`"):
        BertTokenizer(["a", "b"])
    with pytest.raises(ValueError, match="`vocabulary`.*duplicate"):
        BertTokenizer(["[UNK]", "a", "a"])
    with pytest.raises(ValueError, match="`vocabulary`.*empty"):
        BertTokenizer([])
    with pytest.raises(ValueError, match="`max_input_chars_per_word`"):
        BertTokenizer(SMALL_VOCABULARY, max_input_chars_per_word=0)


def test_token_id_lookups():
    tokenizer = small_tokenizer(lower_case=True)
    assert tokenizer.token_to_id("hello") == 10
    assert tokenizer.id_to_token(10) == "hello"
    assert tokenizer.special_token_ids == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="`token`"):
        tokenizer.token_to_id("nope")
    with pytest.raises(ValueError, match="`token_id`"):
        tokenizer.id_to_token(len(SMALL_VOCABULARY))


# === Behaviour the fast ops do not give by themselves ===


def test_literal_special_tokens_map_to_their_ids():
    tokenizer = small_tokenizer(lower_case=True)
    ids = tokenizer.tokenize(
        ["[CLS] hello [MASK]", "a[SEP]b", "[cls] [Mask]", "[[UNK]]", "[MASK", "[\u200bCLS]"]
    ).to_list()
    assert ids[0] == [2, 10, 4]
    assert ids[1] == [21, 3, 23]
    # Case matters, as in the reference: these are ordinary text.
    assert ids[2] == [5, 15, 16, 6, 5, 17, 6]
    assert ids[3] == [5, 1, 6]
    assert ids[4] == [5, 17]
    assert ids[5] == [5, 15, 16, 6]
    off = small_tokenizer(lower_case=True, match_special_tokens=False)
    assert off.tokenize(["[CLS]"]).to_list() == [[5, 15, 16, 6]]


def test_words_longer_than_the_limit_are_unknown():
    tokenizer = small_tokenizer(lower_case=False)
    texts = ["a" * 100, "a" * 101, "é" * 100, "é" * 101, "b " + "é" * 60]
    ids = tokenizer.tokenize(texts).to_list()
    assert ids[0] == [21] + [22] * 99
    assert ids[1] == [1]
    # 100 two-byte characters are 200 bytes: still one word of 100 characters.
    assert ids[2] == [25] + [26] * 99
    assert ids[3] == [1]
    assert ids[4] == [23, 25] + [26] * 59
    short = small_tokenizer(lower_case=False, max_input_chars_per_word=3)
    assert short.tokenize(["aaa aaaa"]).to_list() == [[21, 22, 22, 1]]


def test_runs_in_tf_data_and_tf_function():
    tokenizer = small_tokenizer(lower_case=True)
    texts = ["Hello, world!", "[MASK] the", "", "a" * 120]
    eager = tokenizer.tokenize(texts).to_list()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(batch):
        return tokenizer.tokenize(batch)

    assert tokenize(tf.constant(texts)).to_list() == eager
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(2).map(tokenizer.tokenize)
    assert [row for batch in dataset for row in batch.to_list()] == eager
    packed = tf.data.Dataset.from_tensor_slices(texts).batch(4).map(
        lambda batch: tokenizer.pack(batch, sequence_length=6)
    )
    batch = next(iter(packed))
    assert batch["token_ids"].shape == (4, 6)


def test_config_round_trip():
    tokenizer = small_tokenizer(lower_case=True, max_input_chars_per_word=50)
    config = tokenizer.get_config()
    restored = BertTokenizer.from_config(json.loads(json.dumps(config)))
    assert restored.get_config() == config
    serialized = keras.saving.serialize_keras_object(tokenizer)
    deserialized = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(deserialized, BertTokenizer)
    texts = ["Hello, the world [MASK]"]
    assert deserialized.tokenize(texts).to_list() == tokenizer.tokenize(texts).to_list()


@requires_shared
def test_matches_live_reference_on_awkward_text(minilm_tokenizer, reference_tokenizer):
    texts = [
        "ǅemal İstanbul ΣΊΣΥΦΟΣ straße ﬁnance ℌ ＡＢＣ ⅷ ①",
        "\u0085next\u2028line\u2029para\u000bvt\u000cff\u00a0nbsp\u3000ideo",
        "\ue000private \U000f0000plane \ufffdreplacement \u0378unassigned \U00010d50",
        "᭽᭾ ⹃ a\u166db a\U000111c9b 𫠠x a\u0f73b 𝅗𝅥 ᄀ가각",
        "e\u0301\u0302 o\u0308\u0331 \u1734x \u0890y ﷺ ﷽",
        "x" * 101 + " " + "ж" * 60 + " " + "ж" * 101 + " [SEP][SEP] [PAD]x",
        "\u200d👩\u200d👩\u200d👧 🏳️\u200d🌈 \U000e0067\U000e0062 \ufe0f",
    ]
    got = minilm_tokenizer.tokenize(texts).to_list()
    expected = [
        encoding.ids[1:-1] for encoding in reference_tokenizer.encode_batch(texts)
    ]
    assert got == expected


def test_pack_keeps_max_length_as_a_deprecated_alias(minilm_tokenizer):
    with pytest.warns(DeprecationWarning, match="sequence_length"):
        old = minilm_tokenizer.pack(["hello world"], max_length=6)
    new = minilm_tokenizer.pack(["hello world"], sequence_length=6)
    for name in ("token_ids", "segment_ids", "padding_mask"):
        np.testing.assert_array_equal(old[name], new[name])
