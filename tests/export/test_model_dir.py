import json
import os
import shutil

import numpy as np
import pytest

from export.core import evaluation
from export.core import graphs
from keras_bert.models import BertClassifier
from keras_bert.models import model_dir as model_dir_lib
from keras_bert.text import TextClassifierPreprocessor
from tests.export.conftest import SST2_TEST


def _read_for_export(directory):
    """The model directory as the exporters read it: the model loads on demand."""
    info = model_dir_lib.load_model_dir(directory, load_model=False)
    graphs.check_exported_task(info)
    return info


def _copy(tiny_model_dir, tmp_path):
    destination = str(tmp_path / "copy")
    shutil.copytree(tiny_model_dir, destination)
    return destination


def _edit_json(path, **changes):
    with open(path, encoding="utf-8") as f:
        content = json.load(f)
    content.update(changes)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(content, f)


def test_reads_the_finetune_layout(tiny_model_dir):
    info = _read_for_export(tiny_model_dir)
    assert info.labels == ["0", "1"]
    assert not info.regression and not info.is_pair_task
    with pytest.warns(DeprecationWarning, match="use `sequence_length`"):
        assert info.max_seq_length == 128  # the deprecated name of `sequence_length`
    assert info.lower_case is True and info.task == "classification"
    assert len(info.vocabulary_sha256) == 64
    model = info.load_model()
    assert isinstance(model, BertClassifier)
    tokenizer = info.tokenizer
    assert tokenizer.vocabulary_size() == 3000
    assert info.sequence_length == 128
    assert isinstance(info.preprocessor, TextClassifierPreprocessor)
    assert info.preprocessor.sequence_length == 128


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda d: os.remove(os.path.join(d, "model.keras")), r"model\.keras is missing"),
        (lambda d: os.remove(os.path.join(d, "label_map.json")), r"Missing file .*label_map\.json"),
        (lambda d: os.remove(os.path.join(d, "tokenizer", "vocab.txt")), r"vocab\.txt is missing"),
        (lambda d: _edit_json(os.path.join(d, "label_map.json"), labels=[]),
         r"`labels` in .*label_map\.json must be a non-empty list of strings, found \[\]"),
        (lambda d: _edit_json(os.path.join(d, "finetune_config.json"), max_seq_length="128"),
         r"`max_seq_length` in .*finetune_config\.json must be an int >= 3, found '128'"),
        (lambda d: open(os.path.join(d, "finetune_config.json"), "w").write("{"),
         r"finetune_config\.json:1: invalid JSON"),
        (lambda d: _edit_json(os.path.join(d, "label_map.json"), task="qa"),
         r"finetune_config\.json says task 'classification' but label_map\.json says 'qa'"),
        (lambda d: [_edit_json(os.path.join(d, name), task="summarization")
                    for name in ("label_map.json", "finetune_config.json")],
         r"label_map\.json: `task` must be one of .*, found 'summarization'"),
    ],
)
def test_bad_model_dirs_name_the_problem(tiny_model_dir, tmp_path, breakage, message):
    directory = _copy(tiny_model_dir, tmp_path)
    breakage(directory)
    with pytest.raises(ValueError, match=message):
        _read_for_export(directory)


def test_label_map_that_does_not_fit_the_model(tiny_model_dir, tmp_path):
    directory = _copy(tiny_model_dir, tmp_path)
    _edit_json(os.path.join(directory, "label_map.json"), labels=[], regression=True)
    info = _read_for_export(directory)
    assert info.regression and info.num_outputs == 1
    with pytest.raises(ValueError, match=r"has 2 outputs but label_map\.json implies 1"):
        info.load_model()


def test_missing_directory(tmp_path):
    with pytest.raises(ValueError, match=r"`model_dir` \(.*nowhere.*\) is not a directory"):
        _read_for_export(str(tmp_path / "nowhere"))


def test_evaluation_tsv_reading(tiny_model_dir, tmp_path):
    info = _read_for_export(tiny_model_dir)
    texts, texts_pair, labels = evaluation.read_tsv(SST2_TEST, info, limit=5)
    assert len(texts) == 5 and texts_pair is None
    assert labels.dtype == np.int32 and set(labels) <= {0, 1}
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\nhello\t1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lacks the columns \['sentence'\]"):
        evaluation.read_tsv(str(bad), info)
    unknown = tmp_path / "unknown.tsv"
    unknown.write_text("sentence\tlabel\nhello\tpositive\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"labels \['positive'\] not in the model's labels"):
        evaluation.read_tsv(str(unknown), info)
