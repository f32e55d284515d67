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
    assert loaded.max_seq_length == 16
    inputs = loaded.tokenizer.pack(["hello worlds!"], max_length=16)
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
