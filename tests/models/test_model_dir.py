import json
import os

import keras
import numpy as np
import pytest

import keras_bert
from keras_bert import BertEncoder
from keras_bert.models import BertClassifier, load_model_dir
from keras_bert.models import model_dir as model_dir_lib
from keras_bert.text import BertTokenizer
from tests.test_case import shared_path, to_numpy

TINY = dict(vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s", ",", "!"]


def _write_model_dir(path, labels=("neg", "pos"), num_classes=2):
    tokenizer = BertTokenizer(VOCABULARY + [f"w{i}" for i in range(30)])
    model = BertClassifier(BertEncoder(**TINY), num_classes=num_classes)
    os.makedirs(path, exist_ok=True)
    model_dir_lib.save_model(model, os.path.join(path, model_dir_lib.MODEL_FILE))
    model_dir_lib.write_json(
        os.path.join(path, model_dir_lib.LABEL_MAP_FILE),
        model_dir_lib.make_label_map("classification", list(labels)),
    )
    model_dir_lib.save_tokenizer_assets(tokenizer, os.path.join(path, model_dir_lib.TOKENIZER_DIR))
    model_dir_lib.write_json(
        os.path.join(path, model_dir_lib.FINETUNE_CONFIG_FILE),
        {"task": "classification", "max_seq_length": 16, "text_column": "sentence",
         "pair_column": None, "label_column": "label", "init": "bert_tiny"},
    )
    return model, tokenizer


def test_round_trip(tmp_path):
    model, tokenizer = _write_model_dir(str(tmp_path))
    loaded = load_model_dir(str(tmp_path))
    assert loaded.task == "classification"
    assert loaded.labels == ["neg", "pos"] and loaded.regression is False
    assert loaded.sequence_length == 16
    inputs = loaded.tokenizer.pack(["hello worlds!"], sequence_length=16)
    np.testing.assert_array_equal(to_numpy(inputs["token_ids"])[0, :6], [2, 5, 6, 7, 9, 3])
    np.testing.assert_allclose(to_numpy(loaded.model(inputs)), to_numpy(model(inputs)), atol=1e-6)
    # Files are readable by others (not the 0600 of a temporary file).
    assert os.stat(tmp_path / "model.keras").st_mode & 0o044


def test_saved_tokenizer_reproduces_the_checkpoint_tokenizer(tmp_path):
    source = keras_bert.load_tokenizer(shared_path("models", "all-MiniLM-L6-v2"))
    model_dir_lib.save_tokenizer_assets(source, str(tmp_path))
    with open(tmp_path / "tokenizer_config.json") as f:
        assert json.load(f)["do_lower_case"] is True
    reloaded = keras_bert.load_tokenizer(str(tmp_path))
    texts = ["Héllo, Wörld! [MASK] ﬁne", "A second TEXT with ünïcode and 42"]
    assert reloaded.tokenize(texts).to_list() == source.tokenize(texts).to_list()


def test_label_count_must_fit_the_model(tmp_path):
    _write_model_dir(str(tmp_path), labels=("a", "b", "c"), num_classes=2)
    with pytest.raises(ValueError, match=r"the model has 2 outputs but label_map.json implies 3"):
        load_model_dir(str(tmp_path))


def test_bad_files_are_named(tmp_path):
    _write_model_dir(str(tmp_path))
    (tmp_path / "label_map.json").write_text('{"task": "clasification", "labels": []}')
    with pytest.raises(ValueError, match=r"label_map.json: `task` must be one of"):
        load_model_dir(str(tmp_path))
    (tmp_path / "label_map.json").write_text("{oops")
    with pytest.raises(ValueError, match=r"label_map.json:1: invalid JSON"):
        load_model_dir(str(tmp_path))
    with pytest.raises(ValueError, match=r"is not a directory"):
        load_model_dir(str(tmp_path / "missing"))


def test_make_label_map():
    assert model_dir_lib.make_label_map("qa") == {"task": "qa"}
    assert model_dir_lib.make_label_map("classification", regression=True) == {
        "task": "classification", "labels": [], "regression": True}
    assert model_dir_lib.make_label_map("token_classification", ["O", "B-PER"]) == {
        "task": "token_classification", "labels": ["O", "B-PER"]}
    with pytest.raises(ValueError, match=r"`task` must be one of"):
        model_dir_lib.make_label_map("ner", ["O"])
    with pytest.raises(ValueError, match=r"`labels` must not be empty"):
        model_dir_lib.make_label_map("classification", [])


def test_model_loads_with_safe_mode_after_importing_models(tmp_path):
    _write_model_dir(str(tmp_path))
    model = keras.saving.load_model(str(tmp_path / "model.keras"), safe_mode=True)
    assert isinstance(model, BertClassifier)


def test_preprocessor_packs_as_fine_tuning(tmp_path):
    from keras_bert.text import TextClassifierPreprocessor

    model, _ = _write_model_dir(str(tmp_path))
    loaded = load_model_dir(str(tmp_path))
    assert isinstance(loaded.preprocessor, TextClassifierPreprocessor)
    assert loaded.preprocessor is loaded.preprocessor  # built once
    assert loaded.sequence_length == 16 == loaded.preprocessor.sequence_length
    texts, pairs = ["hello worlds!", "w1 w2 " * 10], ["world", "hello"]
    packed = loaded.preprocessor(texts, pairs)
    expected = loaded.tokenizer.pack(texts, pairs, sequence_length=16)
    for name in ("token_ids", "segment_ids", "padding_mask"):
        np.testing.assert_array_equal(to_numpy(packed[name]), to_numpy(expected[name]))
    np.testing.assert_allclose(
        to_numpy(loaded.model(packed)), to_numpy(model(expected)), atol=1e-6
    )


def test_what_the_files_say(tmp_path):
    import hashlib

    _write_model_dir(str(tmp_path))
    loaded = load_model_dir(str(tmp_path), load_model=False)
    assert loaded.model is None and loaded.path == os.path.abspath(str(tmp_path))
    assert (loaded.text_column, loaded.pair_column, loaded.label_column) == (
        "sentence", None, "label")
    assert not loaded.is_pair_task and loaded.num_outputs == 2 and loaded.lower_case is True
    assert loaded.vocabulary_path == str(tmp_path / "tokenizer" / "vocab.txt")
    with open(loaded.vocabulary_path, "rb") as f:
        assert loaded.vocabulary_sha256 == hashlib.sha256(f.read()).hexdigest()
    model = loaded.load_model()
    assert isinstance(model, BertClassifier) and loaded.load_model() is model


def test_write_assets_writes_what_load_model_dir_reads(tmp_path):
    tokenizer = BertTokenizer(VOCABULARY + [f"w{i}" for i in range(30)])
    config = {"task": "classification", "max_seq_length": 24, "text_column": "premise",
              "pair_column": "hypothesis", "label_column": "gold"}
    model_dir_lib.write_assets(str(tmp_path), "classification", [], tokenizer, config,
                               regression=True)
    model_dir_lib.save_model(BertClassifier(BertEncoder(**TINY), num_classes=1),
                             str(tmp_path / "model.keras"))
    loaded = load_model_dir(str(tmp_path))
    assert loaded.regression and loaded.labels == [] and loaded.num_outputs == 1
    assert loaded.config == config and loaded.is_pair_task
    assert loaded.tokenizer.get_vocabulary() == tokenizer.get_vocabulary()
    assert to_numpy(loaded.preprocessor(["hello"], ["world"])["segment_ids"]).shape == (1, 24)


@pytest.mark.parametrize(
    "task, settings, preprocessor_class, expected",
    [
        ("classification", {"max_seq_length": 16}, "TextClassifierPreprocessor",
         {"sequence_length": 16}),
        ("qa", {"max_seq_length": 32, "doc_stride": 8, "max_query_length": 6},
         "SpanLabelerPreprocessor", {"sequence_length": 32, "doc_stride": 8,
                                     "max_query_length": 6}),
        ("token_classification", {"max_seq_length": 24}, "TokenClassifierPreprocessor",
         {"sequence_length": 24}),
    ],
)
def test_every_task_gets_its_preprocessor_from_the_registry(
        tmp_path, task, settings, preprocessor_class, expected):
    """`ModelDir.preprocessor` is the registered task's, with the saved settings."""
    _write_model_dir(str(tmp_path))
    for name in ("label_map.json", "finetune_config.json"):
        with open(tmp_path / name) as f:
            content = json.load(f)
        content["task"] = task
        if name == "finetune_config.json":
            content.update(settings)
        with open(tmp_path / name, "w") as f:
            json.dump(content, f)
    loaded = load_model_dir(str(tmp_path), load_model=False)
    assert loaded.load_task().name == task
    preprocessor = loaded.preprocessor
    assert type(preprocessor).__name__ == preprocessor_class
    assert {key: getattr(preprocessor, key) for key in expected} == expected
    assert preprocessor.tokenizer is loaded.tokenizer
