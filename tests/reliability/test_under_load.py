"""Serving under load: 8 threads share one LiteRT classifier and one loaded SavedModel.

Every result must equal, bit for bit, the sequential result for the same input, and the
process's memory must stay flat over a long prediction loop after warm-up. The default run
makes 400 predictions per runtime; the slow one 10,000 (`pytest -m slow`).
"""

import concurrent.futures
import os

import numpy as np
import pytest

from tests.export.model_dirs import read_tsv
from tests.test_case import shared_path

NUM_THREADS = 8
NUM_TEXTS = 50
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_SIZE


@pytest.fixture(scope="module")
def examples(tiny_model_dir):
    """`NUM_TEXTS` packed SST-2 rows, each cut to its own length."""
    from keras_bert.models.model_dir import load_tokenizer_assets

    texts, _ = read_tsv(shared_path("data", "sst2", "test.tsv"), limit=NUM_TEXTS)
    tokenizer = load_tokenizer_assets(os.path.join(tiny_model_dir, "tokenizer"))
    packed = {k: np.asarray(v) for k, v in tokenizer.pack(texts, sequence_length=64).items()}
    rows = []
    for i, length in enumerate(packed["padding_mask"].sum(axis=1)):
        rows.append({k: v[i:i + 1, :length] for k, v in packed.items()})
    return rows


def litert_predictor(tflite_path):
    from export.core import litert

    classifier = litert.LiteRTClassifier(tflite_path, num_threads=1)
    return lambda row: classifier.logits_from_token_ids(
        row["token_ids"], row["segment_ids"], row["padding_mask"])


def saved_model_predictor(saved_model_path):
    import tensorflow as tf

    signature = tf.saved_model.load(saved_model_path).signatures["predict_token_ids"]
    return lambda row: signature(**{k: tf.constant(v) for k, v in row.items()})["logits"].numpy()


def check_concurrent_matches_sequential(predict, examples, num_predictions):
    expected = [predict(row) for row in examples]
    assert all(np.isfinite(e).all() and e.shape == (1, 2) for e in expected)
    indices = [i % len(examples) for i in range(num_predictions)]

    def work(thread):
        mismatches = 0
        for i in indices[thread::NUM_THREADS]:
            if not np.array_equal(predict(examples[i]), expected[i]):
                mismatches += 1
        return mismatches, len(indices[thread::NUM_THREADS])

    with concurrent.futures.ThreadPoolExecutor(NUM_THREADS) as pool:
        results = list(pool.map(work, range(NUM_THREADS)))
    assert sum(count for _, count in results) == num_predictions
    assert [mismatches for mismatches, _ in results] == [0] * NUM_THREADS


def check_memory_is_flat(predict, examples, num_predictions, max_growth_bytes):
    for row in examples * 4:  # warm-up: every length traced/allocated at least once
        predict(row)
    before = resident_bytes()
    for i in range(num_predictions):
        predict(examples[i % len(examples)])
    growth = resident_bytes() - before
    assert growth < max_growth_bytes, f"resident memory grew by {growth / 2**20:.1f} MiB"


@pytest.mark.parametrize("runtime", ["litert", "saved_model"])
def test_eight_threads_match_sequential_results(runtime, examples, request):
    predict = (litert_predictor(request.getfixturevalue("tflite_path")) if runtime == "litert"
               else saved_model_predictor(request.getfixturevalue("saved_model_path")))
    check_concurrent_matches_sequential(predict, examples, num_predictions=400)
    check_memory_is_flat(predict, examples, num_predictions=400, max_growth_bytes=16 * 2**20)


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["litert", "saved_model"])
def test_ten_thousand_predictions_on_eight_threads(runtime, examples, request):
    predict = (litert_predictor(request.getfixturevalue("tflite_path")) if runtime == "litert"
               else saved_model_predictor(request.getfixturevalue("saved_model_path")))
    check_concurrent_matches_sequential(predict, examples, num_predictions=10_000)
    check_memory_is_flat(predict, examples, num_predictions=10_000, max_growth_bytes=16 * 2**20)
