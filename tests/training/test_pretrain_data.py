"""Pretraining inputs from a raw corpus (on the fly) and from TFRecords."""

import os

import numpy as np
import pytest

from keras_bert.text import BertTokenizer
from keras_bert.text.pretraining_data_writer import write_pretraining_data
from training.core.pretraining_data import CorpusExamples, records_dataset, records_metadata

WORDS = ("the cat sat on a mat near dog and bird ran over hill under tree by river "
         "sun moon star sky blue red green small big old new").split()
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "."] + WORDS


def _corpus(path, num_documents=6, lines=5, seed=0):
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(num_documents):
            for _ in range(lines):
                f.write(" ".join(rng.choice(WORDS, size=rng.integers(4, 12))) + " .\n")
            f.write("\n")
    return str(path)


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer(VOCABULARY)


def _examples(tmp_path, tokenizer, **kwargs):
    return CorpusExamples(
        [_corpus(tmp_path / "corpus.txt")], tokenizer, sequence_length=24,
        max_predictions_per_seq=4, **kwargs,
    )


def test_batches_have_the_pretrainer_layout(tmp_path, tokenizer):
    corpus = _examples(tmp_path, tokenizer)
    inputs, labels = next(iter(corpus.dataset(batch_size=5, seed=0)))
    for name in ("token_ids", "segment_ids", "padding_mask"):
        assert inputs[name].shape == (5, 24) and inputs[name].dtype.name == "int32"
    assert inputs["masked_positions"].shape == (5, 4)
    assert labels["masked_ids"].shape == (5, 4) and labels["masked_ids"].dtype.name == "int32"
    assert labels["masked_weights"].dtype.name == "float32"
    assert labels["next_sentence_label"].shape == (5,)
    token_ids = inputs["token_ids"].numpy()
    assert np.all(token_ids[:, 0] == VOCABULARY.index("[CLS]"))
    # The masked ids are real tokens of the text, never special tokens.
    weights = labels["masked_weights"].numpy()
    assert np.all(labels["masked_ids"].numpy()[weights > 0] >= 5)


def test_same_seed_same_stream_and_every_pass_is_new(tmp_path, tokenizer):
    corpus = _examples(tmp_path, tokenizer, short_seq_prob=0.0)
    first = [b[0]["token_ids"].numpy() for b in corpus.dataset(4, seed=1, shuffle_buffer=0).take(6)]
    again = [b[0]["token_ids"].numpy() for b in corpus.dataset(4, seed=1, shuffle_buffer=0).take(6)]
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    one_pass = list(corpus.examples(seed=1, num_passes=1))
    two_passes = list(corpus.examples(seed=1, num_passes=2))
    assert len(two_passes) > len(one_pass)
    second = two_passes[len(one_pass):]
    assert any(
        not np.array_equal(a["token_ids"], b["token_ids"]) for a, b in zip(one_pass, second)
    ), "the second pass repeats the first one's masks"
    inputs, labels = corpus.arrays(seed=1)
    assert inputs["token_ids"].shape == (len(one_pass), 24)
    np.testing.assert_array_equal(inputs["token_ids"][0], one_pass[0]["token_ids"])


def test_corpus_errors(tmp_path, tokenizer):
    with pytest.raises(ValueError, match=r"Corpus file '.*missing.txt' does not exist"):
        CorpusExamples([str(tmp_path / "missing.txt")], tokenizer)
    single = _corpus(tmp_path / "single.txt", num_documents=1)
    with pytest.raises(ValueError, match=r"has 1 non-empty document\(s\); next-sentence pairs"):
        CorpusExamples([single], tokenizer)


def test_records_of_create_pretraining_data(tmp_path, tokenizer):
    out = str(tmp_path / "records")
    written = write_pretraining_data(
        [_corpus(tmp_path / "corpus.txt")], tokenizer, out, sequence_length=24,
        max_predictions_per_seq=4, num_shards=2, show_progress=False,
    )
    pattern = os.path.join(out, "*.tfrecord")
    assert records_metadata(pattern)["num_examples"] == written
    training = records_dataset(pattern, 4, seed=0, sequence_length=24, max_predictions_per_seq=4)
    inputs, labels = next(iter(training))
    assert inputs["token_ids"].shape == (4, 24) and labels["masked_ids"].shape == (4, 4)
    evaluation = records_dataset(pattern, 4, 0, 24, 4, training=False)
    assert sum(int(b[1]["next_sentence_label"].shape[0]) for b in evaluation) == written
    with pytest.raises(ValueError, match=r"No TFRecord files match"):
        records_metadata(str(tmp_path / "nothing" / "*.tfrecord"))
