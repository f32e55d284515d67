import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from keras_bert.text import BertTokenizer
from keras_bert.text import PretrainerPreprocessor
from keras_bert.text import corpus
from keras_bert.text.pretraining_data_writer import write_pretraining_data
from keras_bert.text.pretraining_dataset import load_pretraining_dataset
from keras_bert.text.pretraining_example_builder import PretrainingExampleBuilder
from tests.text.shared_data import MINILM
from tests.text.shared_data import WIKITEXT
from tests.text.shared_data import requires_shared

REPO = Path(__file__).resolve().parents[2]
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4


def fake_documents(count=60, seed=0):
    """Documents whose token ids encode (document, line) so pairs can be checked."""
    rng = np.random.default_rng(seed)
    documents = []
    for d in range(count):
        lines = []
        for l in range(int(rng.integers(2, 12))):
            lines.append([1000 + 10 * d + (l % 10)] * int(rng.integers(3, 30)))
        documents.append(lines)
    return documents


@functools.lru_cache(maxsize=1)
def fake_tokenizer():
    """A tokenizer whose vocabulary has 2,000 ids: the special tokens, then plain words."""
    return BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                         + [f"w{i}" for i in range(5, 2000)])


def builder(seed=0, **kwargs):
    preprocessor = PretrainerPreprocessor(
        fake_tokenizer(), sequence_length=64, max_predictions_per_seq=10, **kwargs
    )
    return PretrainingExampleBuilder(preprocessor, seed=seed)


def test_examples_are_well_formed_and_pairs_are_labelled():
    examples = list(builder().build(fake_documents()))
    assert len(examples) > 100
    labels = np.array([int(e["next_sentence_label"]) for e in examples])
    assert 0.4 < labels.mean() < 0.6
    for example in examples:
        token_ids = example["token_ids"].copy()
        positions = example["masked_positions"][example["masked_weights"] > 0]
        token_ids[positions] = example["masked_ids"][: len(positions)]
        length = int(example["padding_mask"].sum())
        assert token_ids.shape == (64,)
        assert token_ids[0] == CLS and token_ids[length - 1] == SEP
        seps = np.flatnonzero(token_ids[:length] == SEP)
        assert len(seps) == 2
        segment_ids = example["segment_ids"]
        assert (segment_ids[: seps[0] + 1] == 0).all()
        assert (segment_ids[seps[0] + 1 : length] == 1).all()
        assert (token_ids[length:] == PAD).all() and (segment_ids[length:] == 0).all()
        first = {t // 10 for t in token_ids[1 : seps[0]]}
        second = {t // 10 for t in token_ids[seps[0] + 1 : seps[1]]}
        # Segment A comes from one document; an "actual next" B from the same one.
        assert len(first) == 1
        if example["next_sentence_label"] == 0:
            assert second == first
        else:
            assert not second & first


def test_builder_is_seeded():
    documents = fake_documents(20)
    first = list(builder(seed=3).build(documents))
    second = list(builder(seed=3).build(documents))
    assert len(first) == len(second)
    for a, b in zip(first, second):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])


def test_read_documents_formats(tmp_path):
    lines_file = tmp_path / "lines.txt"
    lines_file.write_text("a b\nc d\n\n\ne f\n", encoding="utf-8")
    assert corpus.read_documents(lines_file) == [["a b", "c d"], ["e f"]]
    wiki = tmp_path / "wiki.txt"
    wiki.write_text(
        " \n = First = \n \n para one . \n \n = = Section = = \n para two . \n"
        " = Second = \n para three . \n", encoding="utf-8",
    )
    assert corpus.read_documents(wiki) == [["para one .", "para two ."], ["para three ."]]
    assert corpus.read_documents(wiki, "lines")[0][0] == "= First ="
    with pytest.raises(ValueError, match="`corpus_format`"):
        corpus.read_documents(wiki, "xml")


@requires_shared
def test_write_and_read_back(minilm_tokenizer, tmp_path):
    corpus_file = tmp_path / "corpus.txt"
    paragraphs = [
        "The quick brown fox jumps over the lazy dog. It was not amused.",
        "Dogs and foxes rarely get along. Nobody knows why.",
        "A second document starts here. It talks about cats.",
        "Cats are independent animals. They sleep a lot.",
    ]
    corpus_file.write_text(
        "\n".join(paragraphs[:2]) + "\n\n" + "\n".join(paragraphs[2:]) + "\n", encoding="utf-8"
    )
    out = tmp_path / "out"
    count = write_pretraining_data(
        [str(corpus_file)], minilm_tokenizer, str(out), sequence_length=32,
        max_predictions_per_seq=5, dupe_factor=3, num_shards=2, show_progress=False,
    )
    assert count > 0
    shards = sorted(p.name for p in out.iterdir())
    assert shards == [
        "metadata.json", "pretraining-00000-of-00002.tfrecord",
        "pretraining-00001-of-00002.tfrecord",
    ]
    assert json.loads((out / "metadata.json").read_text())["num_examples"] == count
    assert all(os.stat(p).st_mode & 0o044 for p in out.iterdir())  # Not mkstemp's 0600.
    dataset = load_pretraining_dataset(
        str(out / "*.tfrecord"), sequence_length=32, max_predictions_per_seq=5, batch_size=4
    )
    seen = 0
    for inputs, labels in dataset:
        assert inputs["token_ids"].shape[1:] == (32,)
        assert inputs["masked_positions"].shape[1:] == (5,)
        assert inputs["token_ids"].dtype == tf.int32
        assert labels["masked_weights"].dtype == tf.float32
        assert labels["next_sentence_label"].shape == inputs["token_ids"].shape[:1]
        np.testing.assert_array_equal(inputs["token_ids"][:, 0], minilm_tokenizer.cls_token_id)
        seen += int(inputs["token_ids"].shape[0])
    assert seen == count
    # Same flags, same bytes.
    again = tmp_path / "again"
    write_pretraining_data(
        [str(corpus_file)], minilm_tokenizer, str(again), sequence_length=32,
        max_predictions_per_seq=5, dupe_factor=3, num_shards=2, show_progress=False,
    )
    for name in shards[1:]:
        assert (out / name).read_bytes() == (again / name).read_bytes()


@requires_shared
def test_command_line(tmp_path):
    corpus_file = tmp_path / "corpus.txt"
    corpus_file.write_text(
        " = Title = \n first paragraph of text . \n second paragraph here . \n"
        " = Other = \n another article entirely . \n more text . \n", encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "keras_bert.text.create_pretraining_data",
         f"--corpus={corpus_file}", f"--vocab={MINILM / 'vocab.txt'}", f"--out={tmp_path / 'o'}",
         "--sequence_length=16", "--max_predictions_per_seq=3", "--num_shards=1"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "o" / "pretraining-00000-of-00001.tfrecord").is_file()
    assert "writing" in result.stderr  # The progress bar.


@requires_shared
def test_readme_masking_statistics(minilm_tokenizer, tmp_path):
    """The README's figures: WikiText-2 valid, the MiniLM vocabulary, two passes, seed 12345."""
    out = tmp_path / "out"
    count = write_pretraining_data(
        [str(WIKITEXT / "valid.txt")], minilm_tokenizer, str(out), dupe_factor=2,
        show_progress=False,
    )
    special = minilm_tokenizer.special_token_ids
    mask = minilm_tokenizer.mask_token_id
    counts = dict.fromkeys(
        ("maskable", "selected", "mask", "random", "unchanged", "special", "random_next"), 0
    )
    dataset = load_pretraining_dataset(str(out / "*.tfrecord"), shuffle=False, batch_size=512)
    for inputs, labels in dataset:
        token_ids = inputs["token_ids"].numpy()
        real = labels["masked_weights"].numpy() > 0
        rows = np.arange(len(token_ids))[:, None]
        new = token_ids[rows, inputs["masked_positions"].numpy()]
        original = np.where(real, labels["masked_ids"].numpy(), new)
        token_ids[rows, inputs["masked_positions"].numpy()] = original
        counts["maskable"] += int((~np.isin(token_ids, special)).sum())
        counts["selected"] += int(real.sum())
        counts["mask"] += int(((new == mask) & real).sum())
        counts["unchanged"] += int(((new == original) & real).sum())
        counts["random"] += int(((new != mask) & (new != original) & real).sum())
        counts["special"] += int((np.isin(original, special) & real).sum())
        counts["random_next"] += int(labels["next_sentence_label"].numpy().sum())
    assert count == 2216
    assert counts == {
        "maskable": 275_508, "selected": 41_872, "mask": 33_504, "random": 4_133,
        "unchanged": 4_235, "special": 0, "random_next": 1_139,
    }
    assert f"{counts['selected'] / counts['maskable']:.2%}" == "15.20%"
    assert f"{counts['mask'] / counts['selected']:.2%}" == "80.02%"
    assert f"{counts['random'] / counts['selected']:.2%}" == "9.87%"
    assert f"{counts['unchanged'] / counts['selected']:.2%}" == "10.11%"
    assert counts["special"] == 0
    assert f"{counts['random_next'] / count:.1%}" == "51.4%"
