"""The word-overlap next-sentence baseline: mask restoring, scores, threshold, and the app."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_bert.text import BertTokenizer
from training import nsp_baseline
from training.core.pretraining_data import CorpusExamples

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Four documents, each with its own words: a true next segment shares words with its first
# segment, a random one (another document) shares none.
TOPICS = [
    "cat dog bird fish horse".split(),
    "sun moon star sky cloud".split(),
    "red green blue black white".split(),
    "hill tree river lake stone".split(),
]
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "."] + [w for t in TOPICS for w in t]


def _corpus(path, lines=12, seed=0):
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        for words in TOPICS:
            for _ in range(lines):
                f.write(" ".join(rng.choice(words, size=6)) + " .\n")
            f.write("\n")
    return str(path)


def _arrays(path, seed=0):
    tokenizer = BertTokenizer(VOCABULARY)
    corpus = CorpusExamples([path], tokenizer, sequence_length=24, max_predictions_per_seq=4)
    return corpus.arrays(seed)


def test_segment_sets_restore_the_masked_tokens(tmp_path):
    inputs, labels = _arrays(_corpus(tmp_path / "c.txt"))
    pairs = nsp_baseline.segment_sets(inputs, labels)
    assert len(pairs) == len(labels["next_sentence_label"])
    mask_id = VOCABULARY.index("[MASK]")
    special = {VOCABULARY.index(t) for t in ("[PAD]", "[CLS]", "[SEP]")}
    for (first, second), ids, weights in zip(pairs, labels["masked_ids"], labels["masked_weights"]):
        assert first and second
        tokens = first | second
        assert not tokens & special
        assert mask_id not in tokens  # Every [MASK] was put back.
        for token, weight in zip(ids, weights):
            if weight > 0:
                assert token in tokens


def test_overlap_separates_true_and_random_pairs(tmp_path):
    inputs, labels = _arrays(_corpus(tmp_path / "c.txt"))
    pairs = nsp_baseline.segment_sets(inputs, labels)
    random_next = labels["next_sentence_label"] == 1
    assert 0 < random_next.sum() < len(random_next)
    idf = nsp_baseline.inverse_document_frequency(pairs, len(VOCABULARY))
    scores = nsp_baseline.overlap_scores(pairs, idf)
    # Only "." is shared by every document; it has the lowest IDF.
    assert scores[random_next].max() < scores[~random_next].min()
    threshold, accuracy = nsp_baseline.fit_threshold(scores, random_next)
    assert accuracy == 1.0
    assert scores[random_next].max() < threshold <= scores[~random_next].min()


def test_fit_threshold_picks_the_best_cut():
    # Cutting at 0.3 misclassifies only the random pair at 0.5; at 0.6, two true pairs.
    scores = np.array([0.1, 0.2, 0.5, 0.3, 0.35, 0.6, 0.7])
    random_next = np.array([True, True, True, False, False, False, False])
    threshold, accuracy = nsp_baseline.fit_threshold(scores, random_next)
    assert threshold == 0.3
    assert accuracy == pytest.approx(6 / 7)


def test_app_writes_its_results(tmp_path):
    corpus = _corpus(tmp_path / "train.txt")
    eval_corpus = _corpus(tmp_path / "eval.txt", seed=1)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCABULARY) + "\n", encoding="utf-8")
    output = tmp_path / "out" / "baseline.json"
    os.makedirs(output.parent)
    subprocess.run(
        [sys.executable, "-m", "training.nsp_baseline", f"--vocab={vocab}", f"--corpus={corpus}",
         f"--eval_corpus={eval_corpus}", "--sequence_length=24", f"--output={output}"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    results = json.loads(output.read_text(encoding="utf-8"))
    assert results["train_accuracy"] == 1.0
    assert results["eval_accuracy"] == 1.0
    assert results["train_examples"] > 0 and results["eval_examples"] > 0
