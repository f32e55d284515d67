"""`SpanLabelerPreprocessor`: the windows, targets and metadata of the numpy packing it replaces,
on every road (eager, `tf.function`, `tf.data`, a SavedModel)."""

import json
import os
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_bert.inputs import INPUT_NAMES
from keras_bert.tasks import question_answering as qa
from keras_bert.text import BertTokenizer
from keras_bert.text import SpanLabelerPreprocessor
from keras_bert.text import span_labeler_preprocessor
from keras_bert.text import words
from tests.text.shared_data import SHARED
from tests.text.shared_data import requires_shared

SQUAD_TINY = os.path.join(
    os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "data", "squad_tiny"
)
SQUAD = SHARED / "data" / "squad" / "dev-v1.1-2articles.json"
SMALL_VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "who", "owl", "sings", "the",
                    "at", "night", "?", ".", "##s"]


def _read_squad(path):
    """`(questions, contexts, answer_starts, answer_ends)` of a SQuAD file; `-1` without answer."""
    with open(path, encoding="utf-8") as f:
        articles = json.load(f)["data"]
    questions, contexts, starts, ends = [], [], [], []
    for article in articles:
        for paragraph in article["paragraphs"]:
            for question in paragraph["qas"]:
                questions.append(question["question"])
                contexts.append(paragraph["context"])
                answers = question.get("answers") or [{"text": "", "answer_start": -1}]
                start = answers[0]["answer_start"]
                starts.append(start)
                ends.append(start + len(answers[0]["text"]) if start >= 0 else -1)
    return questions, contexts, starts, ends


# === The numpy packing this layer replaces (question_answering.convert_examples before issue
# 16), kept here as the reference the preprocessor must reproduce exactly ===


def _legacy_max_context_windows(spans, num_tokens):
    best_score = np.full(num_tokens, -np.inf)
    best_window = np.full(num_tokens, -1)
    for window_index, (start, length) in enumerate(spans):
        positions = np.arange(start, start + length)
        score = np.minimum(positions - start, start + length - 1 - positions) + 0.01 * length
        better = score > best_score[positions]
        best_score[positions[better]] = score[better]
        best_window[positions[better]] = window_index
    return best_window


def _legacy_windows(tokenizer, questions, contexts, answer_starts, answer_ends,
                    sequence_length, doc_stride, max_query_length):
    """Every window of every pair, with targets (`None` when the answer is not located)."""
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    question_ids = [row[:max_query_length] for row in tokenizer.tokenize(questions).to_list()]
    word_spans = words.split_words_batch(contexts)
    context_pieces = words.tokenize_words(
        tokenizer, [[c[s:e] for s, e in spans] for c, spans in zip(contexts, word_spans)]
    )
    rows = []
    for index, (question, pieces, spans) in enumerate(
        zip(question_ids, context_pieces, word_spans)
    ):
        doc_ids = np.concatenate(pieces).astype(np.int32) if pieces else np.zeros(0, np.int32)
        doc_words = np.repeat(np.arange(len(pieces)), [len(p) for p in pieces])
        first_token = np.cumsum([0] + [len(p) for p in pieces])
        target = None
        inside = [w for w, (s, e) in enumerate(spans)
                  if e > answer_starts[index] and s < answer_ends[index]]
        if inside:
            token_start, token_end = first_token[inside[0]], first_token[inside[-1] + 1] - 1
            if token_start <= token_end:
                target = (int(token_start), int(token_end))
        offset = len(question) + 2
        window_length = sequence_length - offset - 1
        starts = span_labeler_preprocessor.window_starts(len(doc_ids), window_length, doc_stride)
        windows = [(s, min(window_length, len(doc_ids) - s)) for s in starts]
        best_window = _legacy_max_context_windows(windows, len(doc_ids))
        for window_index, (start, length) in enumerate(windows):
            token_ids = np.full(sequence_length, pad_id, np.int32)
            sequence = [cls_id] + question + [sep_id] + doc_ids[start : start + length].tolist()
            sequence.append(sep_id)
            token_ids[: len(sequence)] = sequence
            segment_ids = np.zeros(sequence_length, np.int32)
            segment_ids[offset : len(sequence)] = 1
            padding_mask = np.zeros(sequence_length, np.int32)
            padding_mask[: len(sequence)] = 1
            word_ids = np.full(sequence_length, -1, np.int64)
            word_ids[offset : offset + length] = doc_words[start : start + length]
            max_context = np.zeros(sequence_length, bool)
            max_context[offset : offset + length] = (
                best_window[start : start + length] == window_index
            )
            start_position = end_position = 0
            if target is not None and start <= target[0] and target[1] < start + length:
                start_position = target[0] - start + offset
                end_position = target[1] - start + offset
            rows.append({
                "token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask,
                "word_ids": word_ids, "max_context": max_context,
                "start_positions": start_position, "end_positions": end_position,
                "example_index": index, "answerable": target is not None,
            })
    return {name: np.stack([np.asarray(row[name]) for row in rows]) for name in rows[0]}


def _numpy(outputs):
    return {name: np.asarray(value) for name, value in outputs.items()}


def _assert_equal(got, expected, names=None):
    for name in names or expected:
        np.testing.assert_array_equal(np.asarray(got[name]), expected[name], err_msg=name)


SETTINGS = [(384, 128, 64), (64, 24, 16), (48, 16, 16), (24, 6, 16), (64, 1, 40)]


@requires_shared
@pytest.mark.parametrize("source", ["squad_tiny/dev", "squad_tiny/train", "squad"])
@pytest.mark.parametrize("sequence_length, doc_stride, max_query_length", SETTINGS)
def test_windows_match_the_numpy_packing_they_replace(
    minilm_tokenizer, source, sequence_length, doc_stride, max_query_length
):
    path = SQUAD if source == "squad" else os.path.join(SQUAD_TINY, source.split("/")[1] + ".json")
    questions, contexts, starts, ends = _read_squad(path)
    expected = _legacy_windows(minilm_tokenizer, questions, contexts, starts, ends,
                               sequence_length, doc_stride, max_query_length)
    preprocessor = SpanLabelerPreprocessor(
        minilm_tokenizer, sequence_length, doc_stride=doc_stride,
        max_query_length=max_query_length,
    )
    got = _numpy(preprocessor(questions, contexts, starts, ends))
    _assert_equal(got, expected)
    for name in INPUT_NAMES + ("word_ids", "start_chars", "end_chars"):
        assert got[name].dtype == np.int32, name
    # Without answers: the same windows, no targets.
    _assert_equal(preprocessor(questions, contexts), expected,
                  INPUT_NAMES + ("word_ids", "max_context", "example_index"))
    # `convert_examples`, now on the preprocessor, gives the features it gave before.
    if source != "squad" or sequence_length == 384:
        examples = qa.read_squad(str(path))
        for is_training in (False, True):
            features = qa.convert_examples(
                examples, minilm_tokenizer, sequence_length, doc_stride, max_query_length,
                is_training=is_training,
            )
            kept = expected["answerable"] if is_training else np.ones_like(expected["answerable"])
            _assert_equal(features.inputs, {n: expected[n][kept] for n in INPUT_NAMES})
            np.testing.assert_array_equal(features.example_index, expected["example_index"][kept])
            np.testing.assert_array_equal(np.stack(features.window_words),
                                          expected["word_ids"][kept])
            assert features.window_words[0].dtype == np.int64
            np.testing.assert_array_equal(np.stack(features.window_max_context),
                                          expected["max_context"][kept])
            targets = expected["start_positions"][kept] if is_training else 0
            np.testing.assert_array_equal(features.start_positions, targets)
            assert features.num_unanswerable == (
                len(set(expected["example_index"][~expected["answerable"]]))
                if is_training else 0
            )


@requires_shared
def test_characters_map_each_position_back_to_its_word(minilm_tokenizer):
    questions, contexts, _, _ = _read_squad(os.path.join(SQUAD_TINY, "dev.json"))
    outputs = _numpy(SpanLabelerPreprocessor(minilm_tokenizer, 48, doc_stride=16,
                                             max_query_length=16)(questions, contexts))
    spans = words.split_words_batch(contexts)
    for row, example in enumerate(outputs["example_index"]):
        in_context = outputs["word_ids"][row] >= 0
        np.testing.assert_array_equal(in_context, outputs["start_chars"][row] >= 0)
        expected = np.array(spans[example])[outputs["word_ids"][row][in_context]]
        np.testing.assert_array_equal(outputs["start_chars"][row][in_context], expected[:, 0])
        np.testing.assert_array_equal(outputs["end_chars"][row][in_context], expected[:, 1])


@requires_shared
def test_the_packer_never_truncates(minilm_tokenizer):
    """Each window is sized to fit beside its question: the packer gets pairs that fit."""
    questions, contexts, _, _ = _read_squad(SQUAD)
    preprocessor = SpanLabelerPreprocessor(minilm_tokenizer, 64, doc_stride=24,
                                           max_query_length=40)
    calls = []
    packer_call = preprocessor.packer.call

    def recording_call(first, second):
        calls.append((first.row_lengths().numpy(), second.row_lengths().numpy()))
        return packer_call(first, second)

    with mock.patch.object(preprocessor.packer, "call", recording_call):
        outputs = _numpy(preprocessor(questions, contexts))
    (first_lengths, second_lengths), = calls
    total = first_lengths + second_lengths + 3
    assert total.max() <= 64
    assert (total == 64).any()  # full windows fill the sequence exactly
    np.testing.assert_array_equal(outputs["padding_mask"].sum(axis=1), total)


@pytest.mark.parametrize("num_tokens", [0, 1, 5, 17, 40])
@pytest.mark.parametrize("window_length, doc_stride", [(1, 1), (4, 1), (4, 3), (5, 2), (8, 8),
                                                       (8, 20), (7, 3), (12, 5)])
def test_max_context_window_matches_scoring_every_window(num_tokens, window_length, doc_stride):
    starts = span_labeler_preprocessor.window_starts(num_tokens, window_length, doc_stride)
    spans = [(s, min(window_length, num_tokens - s)) for s in starts]
    expected = _legacy_max_context_windows(spans, num_tokens)
    stride = min(window_length, doc_stride)
    got = span_labeler_preprocessor._max_context_windows(
        tf.range(num_tokens), num_tokens, window_length, stride, len(starts)
    )
    np.testing.assert_array_equal(got.numpy(), expected)


# === Every road gives the same windows ===


@requires_shared
def test_eager_tf_function_tf_data_and_saved_model_agree(minilm_tokenizer, tmp_path):
    questions, contexts, starts, ends = _read_squad(os.path.join(SQUAD_TINY, "dev.json"))
    questions, contexts, starts, ends = questions[:20], contexts[:20], starts[:20], ends[:20]
    preprocessor = SpanLabelerPreprocessor(minilm_tokenizer, 48, doc_stride=16,
                                           max_query_length=16)
    expected = _numpy(preprocessor(questions, contexts, starts, ends))
    expected_no_answers = _numpy(preprocessor(questions, contexts))

    @tf.function(input_signature=[tf.TensorSpec((None,), tf.string)] * 2
                 + [tf.TensorSpec((None,), tf.int32)] * 2)
    def traced(questions, contexts, answer_starts, answer_ends):
        return preprocessor(questions, contexts, answer_starts, answer_ends)

    _assert_equal(traced(tf.constant(questions), tf.constant(contexts), tf.constant(starts),
                         tf.constant(ends)), expected)

    # tf.data: windows per batch; `example_index` counts within the batch.
    batch_size = 6
    dataset = tf.data.Dataset.from_tensor_slices((questions, contexts)).batch(batch_size)
    batches = list(dataset.map(preprocessor).as_numpy_iterator())
    for batch_index, batch in enumerate(batches):
        batch["example_index"] = batch["example_index"] + batch_index * batch_size
    _assert_equal({n: np.concatenate([b[n] for b in batches]) for n in batches[0]},
                  expected_no_answers)

    # A SavedModel signature on strings (what the serving export traces).
    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None,), tf.string)] * 2)
        def windows(self, questions, contexts):
            return preprocessor(questions, contexts)

    module = Module()
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.windows})
    loaded = tf.saved_model.load(str(tmp_path)).signatures["serving_default"]
    _assert_equal(loaded(questions=tf.constant(questions), contexts=tf.constant(contexts)),
                  expected_no_answers)

    # One pair as a str: a batch of one.
    one = _numpy(preprocessor(questions[3], contexts[3]))
    _assert_equal(one, {n: v[expected["example_index"] == 3] for n, v in
                        expected_no_answers.items() if n != "example_index"})


# === Config and errors ===


def test_get_config_round_trip_and_small_vocabulary():
    preprocessor = SpanLabelerPreprocessor(BertTokenizer(SMALL_VOCABULARY), sequence_length=11,
                                           doc_stride=2, max_query_length=3)
    config = preprocessor.get_config()
    restored = SpanLabelerPreprocessor.from_config(json.loads(json.dumps(config)))
    assert type(restored) is SpanLabelerPreprocessor
    assert restored.get_config() == config
    assert (restored.sequence_length, restored.doc_stride, restored.max_query_length) == (
        11, 2, 3)
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(preprocessor)))
    deserialized = keras.saving.deserialize_keras_object(serialized)
    assert type(deserialized) is SpanLabelerPreprocessor
    assert deserialized.get_config() == config
    question, context = ["who sings?"], ["the owl sings at night."]
    outputs = _numpy(preprocessor(question, context, [4], [13]))
    _assert_equal(deserialized(question, context, [4], [13]), outputs)
    # [CLS] who sings ? [SEP] | 6 context tokens in windows of 5, 2 apart: 0-4, 2-5.
    np.testing.assert_array_equal(outputs["token_ids"], [
        [2, 5, 7, 11, 3, 8, 6, 7, 9, 10, 3],
        [2, 5, 7, 11, 3, 7, 9, 10, 12, 3, 0],
    ])
    np.testing.assert_array_equal(outputs["word_ids"][:, 5:10],
                                  [[0, 1, 2, 3, 4], [2, 3, 4, 5, -1]])
    np.testing.assert_array_equal(outputs["max_context"][:, 5:10].astype(int),
                                  [[1, 1, 1, 1, 0], [0, 0, 1, 1, 0]])
    np.testing.assert_array_equal(outputs["start_positions"], [6, 0])  # "owl sings"
    np.testing.assert_array_equal(outputs["end_positions"], [7, 0])
    np.testing.assert_array_equal(outputs["start_chars"][0, 5:10], [0, 4, 8, 14, 17])


def test_errors_name_the_argument():
    tokenizer = BertTokenizer(SMALL_VOCABULARY)
    with pytest.raises(ValueError, match=r"`sequence_length` \(10\) must exceed "
                                         r"`max_query_length` \(64\) \+ 3 special tokens"):
        SpanLabelerPreprocessor(tokenizer, sequence_length=10)
    with pytest.raises(ValueError, match=r"`doc_stride` must be an int >= 1, received 0"):
        SpanLabelerPreprocessor(tokenizer, doc_stride=0)
    with pytest.raises(ValueError, match=r"`max_query_length` must be an int >= 0, received -1"):
        SpanLabelerPreprocessor(tokenizer, max_query_length=-1)
    with pytest.raises(ValueError, match=r"`tokenizer` must have \[CLS\] and \[SEP\]"):
        SpanLabelerPreprocessor(BertTokenizer(["[PAD]", "[UNK]", "owl"]))
    preprocessor = SpanLabelerPreprocessor(tokenizer, sequence_length=12, max_query_length=3)
    with pytest.raises(ValueError, match=r"`questions` \(2 texts\) and `contexts` \(1 texts\)"):
        preprocessor(["a", "b"], ["c"])
    with pytest.raises(ValueError, match=r"`contexts` must be a string tensor of shape"):
        preprocessor(["a"], [["c"]])
    with pytest.raises(ValueError, match=r"Pass both `answer_starts` and `answer_ends`"):
        preprocessor(["a"], ["c"], answer_starts=[0])
