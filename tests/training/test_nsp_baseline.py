"""The word-overlap next-sentence baseline: mask restoring, scores, threshold, and the app."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_bert import BertEncoder
from keras_bert.checkpoints import save_encoder
from keras_bert.text import BertTokenizer
from training import nsp_baseline
from training.core.pretraining_data import CorpusExamples
from training.core.pretraining_data import DEFAULT_EVAL_SEED

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


def _encoder(seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return BertEncoder(
        vocabulary_size=len(VOCABULARY), num_layers=2, num_heads=2, hidden_dim=32,
        intermediate_dim=64, dropout=0.0, max_sequence_length=32, norm_first=True,
        initializer_range=0.05,
    )


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


def test_segment_mean_cosines_average_each_segment_without_special_tokens(tmp_path):
    inputs, _ = _arrays(_corpus(tmp_path / "c.txt"))
    encoder = _encoder()
    cosines = nsp_baseline.segment_mean_cosines(encoder, inputs, batch_size=5)
    assert cosines.shape == (len(inputs["token_ids"]),)
    sequence = np.asarray(encoder(
        {name: inputs[name] for name in ("token_ids", "segment_ids", "padding_mask")}
    )["sequence_output"])
    sep_id = VOCABULARY.index("[SEP]")
    for row in (0, len(cosines) - 1):
        ids = inputs["token_ids"][row]
        separators = np.flatnonzero(ids == sep_id)
        first = sequence[row, 1:separators[0]].mean(axis=0)
        second = sequence[row, separators[0] + 1:separators[1]].mean(axis=0)
        expected = first @ second / np.linalg.norm(first) / np.linalg.norm(second)
        assert cosines[row] == pytest.approx(expected, abs=1e-5)


def test_encoder_features_are_cls_and_the_segment_means(tmp_path):
    inputs, _ = _arrays(_corpus(tmp_path / "c.txt"))
    encoder = _encoder()
    cls, first, second = nsp_baseline.encoder_features(encoder, inputs, batch_size=5)
    sequence = np.asarray(encoder(
        {name: inputs[name] for name in ("token_ids", "segment_ids", "padding_mask")}
    )["sequence_output"])
    np.testing.assert_allclose(cls, sequence[:, 0], atol=1e-6)
    in_first, in_second = nsp_baseline.segment_masks(inputs)
    for row in (0, len(cls) - 1):
        np.testing.assert_allclose(first[row], sequence[row, in_first[row]].mean(0), atol=1e-5)
        np.testing.assert_allclose(second[row], sequence[row, in_second[row]].mean(0), atol=1e-5)
    pair = nsp_baseline.segment_pair_features(first, second)
    np.testing.assert_allclose(pair, np.concatenate([first * second, abs(first - second)], 1))


def test_linear_probe_learns_a_linear_rule_and_not_noise():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(600, 8))
    labels = features[:, 2] - 0.5 * features[:, 5] > 0.1
    train_accuracy, eval_accuracy = nsp_baseline.linear_probe(
        features[:400], labels[:400], features[400:], labels[400:]
    )
    assert train_accuracy > 0.97 and eval_accuracy > 0.95
    # Labels that no feature predicts: the fit finds nothing that holds out of sample.
    noise = rng.random(600) < 0.5
    train_accuracy, eval_accuracy = nsp_baseline.linear_probe(
        features[:400], noise[:400], features[400:], noise[400:]
    )
    assert abs(eval_accuracy - 0.5) < 0.1
    assert nsp_baseline.linear_probe(
        features[:400], noise[:400], features[400:], noise[400:]
    ) == (train_accuracy, eval_accuracy)  # Deterministic.
    with pytest.raises(ValueError, match="`l2`"):
        nsp_baseline.linear_probe(features, labels, features, labels, l2=0.0)


def _bag_of_words_encoder():
    """An untrained encoder without position and segment embeddings: its representations
    depend on the words and their context only."""
    encoder = _encoder()
    for weight in encoder.weights:
        if "position_embedding" in weight.path or "segment_embedding" in weight.path:
            weight.assign(np.zeros(weight.shape, "float32"))
    return encoder


def test_segment_mean_cosines_separate_true_and_random_pairs(tmp_path):
    # A true next segment repeats its first segment's five words, a random one has other
    # words: an encoder that sees the words alone puts true pairs' segment means closer.
    inputs, labels = _arrays(_corpus(tmp_path / "c.txt"))
    random_next = labels["next_sentence_label"] == 1
    cosines = nsp_baseline.segment_mean_cosines(_bag_of_words_encoder(), inputs)
    assert cosines[random_next].max() < cosines[~random_next].min()
    _, accuracy = nsp_baseline.fit_threshold(cosines, random_next)
    assert accuracy == 1.0


def test_fit_threshold_picks_the_best_cut():
    # Cutting at 0.3 misclassifies only the random pair at 0.5; at 0.6, two true pairs.
    scores = np.array([0.1, 0.2, 0.5, 0.3, 0.35, 0.6, 0.7])
    random_next = np.array([True, True, True, False, False, False, False])
    threshold, accuracy = nsp_baseline.fit_threshold(scores, random_next)
    assert threshold == 0.3
    assert accuracy == pytest.approx(6 / 7)


def _run_app(tmp_path, *extra):
    corpus = _corpus(tmp_path / "train.txt")
    eval_corpus = _corpus(tmp_path / "eval.txt", seed=1)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCABULARY) + "\n", encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "training.nsp_baseline", f"--vocab={vocab}", f"--corpus={corpus}",
         f"--eval_corpus={eval_corpus}", "--sequence_length=24", *extra],
        cwd=ROOT, capture_output=True, text=True,
    )


def test_app_writes_its_results(tmp_path):
    output = tmp_path / "out" / "baseline.json"
    os.makedirs(output.parent)
    encoder_dir = str(tmp_path / "encoder")
    save_encoder(_bag_of_words_encoder(), encoder_dir)
    run = _run_app(
        tmp_path, f"--output={output}", f"--encoder={encoder_dir}", "--probe_passes=2"
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(output.read_text(encoding="utf-8"))
    assert results["train_accuracy"] == 1.0
    assert results["eval_accuracy"] == 1.0
    assert results["train_examples"] > 0 and results["eval_examples"] > 0
    # The app's encoder figures are the functions' on the app's examples.
    encoder = _bag_of_words_encoder()
    tokenizer = BertTokenizer(VOCABULARY)

    def cosines_and_labels(name, seed):
        corpus = CorpusExamples([str(tmp_path / name)], tokenizer, sequence_length=24)
        inputs, labels = corpus.arrays(seed)
        return (nsp_baseline.segment_mean_cosines(encoder, inputs),
                labels["next_sentence_label"] == 1)

    train_cosines, train_random = cosines_and_labels("train.txt", 0)
    eval_cosines, eval_random = cosines_and_labels("eval.txt", DEFAULT_EVAL_SEED)
    threshold, train_accuracy = nsp_baseline.fit_threshold(train_cosines, train_random)
    assert results["encoder"]["path"] == encoder_dir
    assert results["encoder"]["threshold"] == pytest.approx(threshold, abs=1e-6)
    assert results["encoder"]["train_accuracy"] == train_accuracy == 1.0
    assert results["encoder"]["eval_accuracy"] == pytest.approx(
        np.mean((eval_cosines < threshold) == eval_random)
    )
    assert results["encoder"]["eval_accuracy"] > 0.9
    # The probes: fitted on --probe_passes passes (seeds 0, 1) of the training corpus.
    passes = [CorpusExamples([str(tmp_path / "train.txt")], tokenizer, sequence_length=24
                             ).arrays(seed) for seed in (0, 1)]
    features = [nsp_baseline.encoder_features(encoder, inputs) for inputs, _ in passes]
    labels = np.concatenate([labels["next_sentence_label"] == 1 for _, labels in passes])
    eval_inputs, _ = CorpusExamples([str(tmp_path / "eval.txt")], tokenizer, sequence_length=24
                                    ).arrays(DEFAULT_EVAL_SEED)
    eval_features = nsp_baseline.encoder_features(encoder, eval_inputs)
    expected = {
        "cls_probe": nsp_baseline.linear_probe(
            np.concatenate([cls for cls, _, _ in features]), labels, eval_features[0], eval_random
        ),
        "segment_probe": nsp_baseline.linear_probe(
            np.concatenate([nsp_baseline.segment_pair_features(a, b) for _, a, b in features]),
            labels, nsp_baseline.segment_pair_features(*eval_features[1:]), eval_random,
        ),
    }
    for name, (train_accuracy, eval_accuracy) in expected.items():
        assert results["encoder"][name] == {
            "train_examples": len(labels),
            "train_accuracy": pytest.approx(train_accuracy),
            "eval_accuracy": pytest.approx(eval_accuracy),
        }
    # Segment means of different words tell true pairs from random ones, out of sample.
    assert results["encoder"]["segment_probe"]["eval_accuracy"] > 0.9


def test_app_names_a_missing_encoder(tmp_path):
    run = _run_app(tmp_path, f"--encoder={tmp_path / 'missing'}")
    assert run.returncode != 0
    assert "--encoder" in run.stderr and "does not exist" in run.stderr
    assert "Traceback" not in run.stderr
