"""Extractive question answering on SQuAD v1.1 files: windows, labels, decoding, scores.

A context longer than the model's window is covered by overlapping windows
`doc_stride` tokens apart, each packed as `[CLS] question [SEP] window [SEP]`.
A window that does not contain the answer is trained to point at `[CLS]`.
At prediction time every window proposes its best span (`best_span`), a
token being allowed to start an answer only in the window where it has the
most context on both sides; the best-scoring span of all windows wins.

Contexts are cut into words at white space and punctuation, as BERT's basic
tokenizer cuts them, so every WordPiece belongs to exactly one word, and an
answer maps back to the original text through the words' character spans.
Windows, targets and those spans come from the task's preprocessor,
`keras_bert.text.SpanLabelerPreprocessor` (`preprocess`).

Exact match and F1 follow the SQuAD v1.1 definitions (lower-cased, punctuation
and articles removed, best over the reference answers), as fractions in [0, 1].
"""

import collections
import dataclasses
import json
import re
import string

import numpy as np
import tensorflow as tf

from keras_bert.inputs import INPUT_NAMES
from keras_bert.inputs import trim_to_longest
from keras_bert.models.span_decoding import best_span
from keras_bert.tasks.classification import softmax
from keras_bert.tasks.classification import split_tab_pair
from keras_bert.tasks.task import ServingSpec
from keras_bert.tasks.task import Task
from keras_bert.text.span_labeler_preprocessor import SpanLabelerPreprocessor
from keras_bert.text.span_labeler_preprocessor import window_starts  # noqa: F401 (public)
from keras_bert.text.words import split_words_batch
from keras_bert.utils import deprecation

# Examples preprocessed per call: bounds the memory of the ragged intermediates.
_PREPROCESS_CHUNK = 1024


@dataclasses.dataclass
class Example:
    """One question about one context.

    Attributes:
        qas_id: str.
        question: str.
        context: str.
        answers: list of `(text, start_char)`; empty when unknown.
        word_spans: list of `(start_char, end_char)` of the context's words.
    """

    qas_id: str
    question: str
    context: str
    answers: list
    word_spans: list


@dataclasses.dataclass
class Features:
    """Packed windows of a list of examples.

    Attributes:
        inputs: dict of int32 arrays `(num_windows, sequence_length)`.
        start_positions, end_positions: int32 `(num_windows,)` training
            targets (0, the `[CLS]` position, when the window lacks the answer).
        example_index: int32 `(num_windows,)`: which example a window is of.
        window_words: list of int arrays: for each window, the context word of
            every position (-1 outside the context).
        window_max_context: list of bool arrays: for each window, whether each
            position may start an answer in this window.
        num_unanswerable: int. Training examples whose answer could not be
            located in the tokens (skipped for training).
        window_start_chars, window_end_chars: list of int arrays: for each
            window, the characters `[start, end)` of the context word of every
            position (-1 outside the context).
    """

    inputs: dict
    start_positions: np.ndarray
    end_positions: np.ndarray
    example_index: np.ndarray
    window_words: list
    window_max_context: list
    num_unanswerable: int = 0
    window_start_chars: list = None
    window_end_chars: list = None


def read_squad(path):
    """Reads a SQuAD v1.1 JSON file into `Example`s.

    Raises:
        ValueError: naming the file and the question id (or position) of a
            malformed entry.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"Input file {path!r} does not exist.") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}: invalid JSON: {error.msg}.") from error
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError(f"{path}: expected a SQuAD object with a 'data' list.")
    examples, contexts = [], []
    for article_index, article in enumerate(data["data"]):
        for paragraph_index, paragraph in enumerate(article.get("paragraphs", [])):
            where = f"{path}: data[{article_index}].paragraphs[{paragraph_index}]"
            context = paragraph.get("context")
            if not isinstance(context, str):
                raise ValueError(f"{where}: 'context' must be a string.")
            # The words of each context, filled in below (split in one call for the file).
            word_spans = []
            contexts.append((context, word_spans))
            for qa_index, qa in enumerate(paragraph.get("qas", [])):
                qas_id = str(qa.get("id", f"{article_index}-{paragraph_index}-{qa_index}"))
                question = qa.get("question")
                if not isinstance(question, str) or not question.strip():
                    raise ValueError(f"{where}: question {qas_id!r} has no 'question' text.")
                answers = []
                for answer in qa.get("answers", []):
                    text, start = answer.get("text"), answer.get("answer_start")
                    if not isinstance(text, str) or not isinstance(start, int):
                        raise ValueError(
                            f"{where}: question {qas_id!r}: each answer needs 'text' and an "
                            "integer 'answer_start'."
                        )
                    if context[start : start + len(text)] != text:
                        raise ValueError(
                            f"{where}: question {qas_id!r}: answer {text!r} is not at "
                            f"character {start} of the context."
                        )
                    answers.append((text, start))
                examples.append(Example(qas_id, question, context, answers, word_spans))
    if not examples:
        raise ValueError(f"{path}: no questions.")
    for (_, word_spans), spans in zip(
        contexts, split_words_batch([context for context, _ in contexts])
    ):
        word_spans.extend(spans)
    return examples


def _first_answer_characters(example):
    """Characters `[start, end)` of the example's first answer; `(-1, -1)` without one."""
    if not example.answers:
        return -1, -1
    text, start = example.answers[0]
    return start, start + len(text)


def preprocess(preprocessor, examples, is_training=False):
    """The windows of examples, packed by the task's preprocessor, as numpy arrays.

    Args:
        preprocessor: `keras_bert.text.SpanLabelerPreprocessor`.
        examples: list of `Example`.
        is_training: bool. Whether to compute targets (examples whose answer
            cannot be located in the tokens are then skipped).

    Returns:
        `Features`.
    """
    chunks = []
    for first in range(0, len(examples), _PREPROCESS_CHUNK):
        chunk = examples[first : first + _PREPROCESS_CHUNK]
        answers = {}
        if is_training:
            spans = [_first_answer_characters(example) for example in chunk]
            answers = {
                "answer_starts": [start for start, _ in spans],
                "answer_ends": [end for _, end in spans],
            }
        outputs = preprocessor(
            [example.question for example in chunk],
            [example.context for example in chunk],
            **answers,
        )
        outputs = {name: value.numpy() for name, value in outputs.items()}
        outputs["example_index"] += first
        chunks.append(outputs)
    if not chunks:
        raise ValueError("No windows: every example was skipped (answers not found in tokens).")
    outputs = {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}
    num_unanswerable = 0
    if is_training:
        kept = outputs.pop("answerable")
        num_unanswerable = len(np.unique(outputs["example_index"][~kept]))
        outputs = {name: value[kept] for name, value in outputs.items()}
        if not kept.any():
            raise ValueError(
                "No windows: every example was skipped (answers not found in tokens)."
            )
    num_windows = len(outputs["example_index"])
    no_targets = np.zeros(num_windows, np.int32)
    return Features(
        inputs={name: outputs[name] for name in INPUT_NAMES},
        start_positions=outputs.get("start_positions", no_targets),
        end_positions=outputs.get("end_positions", no_targets),
        example_index=outputs["example_index"],
        window_words=list(outputs["word_ids"].astype(np.int64)),
        window_max_context=list(outputs["max_context"]),
        num_unanswerable=num_unanswerable,
        window_start_chars=list(outputs["start_chars"]),
        window_end_chars=list(outputs["end_chars"]),
    )


def convert_examples(
    examples, tokenizer, sequence_length=None, doc_stride=128, max_query_length=64,
    is_training=False, max_seq_length=None,
):
    """Packs examples into overlapping windows with span targets.

    Args:
        examples: list of `Example`.
        tokenizer: `keras_bert.text.BertTokenizer`.
        sequence_length: int. Window length in tokens, special tokens included.
            Defaults to `384`.
        doc_stride: int. Tokens between the starts of consecutive windows.
        max_query_length: int. Questions are cut to this many tokens.
        is_training: bool. Whether to compute targets (examples whose answer
            cannot be located in the tokens are then skipped).
        max_seq_length: deprecated name of `sequence_length`.

    Returns:
        `Features`.
    """
    sequence_length = deprecation.renamed_argument(
        "convert_examples(max_seq_length=...)", max_seq_length, "sequence_length",
        sequence_length,
    )
    if sequence_length is None:
        sequence_length = QuestionAnsweringTask.default_sequence_length
    # The preprocessor checks the lengths and the stride.
    preprocessor = SpanLabelerPreprocessor(
        tokenizer, sequence_length, doc_stride=doc_stride, max_query_length=max_query_length
    )
    return preprocess(preprocessor, examples, is_training=is_training)


# `start` and `end`: the answer's characters `[start, end)` in the context (-1 without one).
Answer = collections.namedtuple(
    "Answer", ["text", "score", "probability", "start", "end"], defaults=(-1, -1)
)


def predict_answers(examples, features, start_logits, end_logits, max_answer_length=30):
    """The best answer of every example, over all its windows.

    Args:
        examples: list of `Example` (as given to `convert_examples`).
        features: `Features` of those examples.
        start_logits, end_logits: float arrays `(num_windows, length)`.
        max_answer_length: int. Longest answer in tokens.

    Returns:
        dict `qas_id -> Answer(text, score, probability, start, end)`: `score`
        is `start_logit + end_logit`; `probability` is `P(start) * P(end)` under
        the softmaxes of the winning window; `start` and `end` are the answer's
        characters `[start, end)` in the context. `Answer("", -inf, 0.0, -1, -1)`
        when no window has a valid span. Ties go to the earlier window, then the
        earlier start, then the earlier end.
    """
    best = {}
    for window, example_index in enumerate(features.example_index):
        words = features.window_words[window]
        length = min(start_logits.shape[1], len(words))
        in_context = words[:length] >= 0
        span = best_span(
            start_logits[window, :length],
            end_logits[window, :length],
            max_answer_length,
            start_mask=in_context & features.window_max_context[window][:length],
            end_mask=in_context,
        )
        if span is None:
            continue
        start, end, score = span
        if example_index not in best or score > best[example_index][2]:
            real = int(features.inputs["padding_mask"][window].sum())
            probability = (
                softmax(start_logits[window, :real])[start]
                * softmax(end_logits[window, :real])[end]
            )
            best[example_index] = (
                int(features.window_start_chars[window][start]),
                int(features.window_end_chars[window][end]),
                score,
                float(probability),
            )
    answers = {}
    for index, example in enumerate(examples):
        if index in best:
            start_char, end_char, score, probability = best[index]
            answers[example.qas_id] = Answer(
                example.context[start_char:end_char], score, probability, start_char, end_char
            )
        else:
            answers[example.qas_id] = Answer("", float("-inf"), 0.0)
    return answers


def decode_answers(windows, start_logits, end_logits, contexts, max_answer_length=30):
    """`predict_answers` in graph ops: the best answer of every example, over all its windows.

    The same spans win as in `predict_answers`: a span starts at a context position where its
    window has the most context (`max_context`) and ends at a context position, at most
    `max_answer_length` tokens on; its score is `start_logit + end_logit` (in float64); the
    best span of all windows of an example wins, ties going to the earlier window, then the
    earlier start, then the earlier end.

    Shape legend: W = windows, L = positions (the logits' length), E = examples,
    K = `max_answer_length`.

    Args:
        windows: dict of the `SpanLabelerPreprocessor`'s outputs: int32 `word_ids`,
            `start_chars`, `end_chars`, bool `max_context` `(W, sequence_length)` (only the
            first L positions are read) and int32 `example_index` `(W,)`.
        start_logits, end_logits: float `(W, L)`: the `BertSpanLabeler`'s (padding at -1e9).
        contexts: string `(E,)`: the contexts, to cut the answers from.
        max_answer_length: int. Longest answer, in tokens.

    Returns:
        dict: `answer` (string `(E,)`, the context's characters `[start, end)`), `score`
        (float32 `(E,)`, -inf without an answer), `probability` (float32 `(E,)`,
        `P(start) * P(end)` under the winning window's softmaxes), `start` and `end` (int32
        `(E,)`: character offsets into the context, `end` exclusive; -1 without an answer).
    """
    start_logits = tf.cast(start_logits, tf.float64)
    end_logits = tf.cast(end_logits, tf.float64)
    num_windows, length = tf.shape(start_logits)[0], tf.shape(start_logits)[1]
    in_context = windows["word_ids"][:, :length] >= 0  # (W, L)
    start_mask = tf.logical_and(in_context, windows["max_context"][:, :length])
    # The span (start, start + k), k < K, at [w, start, k]: (L, K) ends, (W, L, K) scores,
    # in the (start, end) order of `best_span`'s grid.
    ends = tf.range(length)[:, tf.newaxis] + tf.range(max_answer_length)[tf.newaxis, :]
    end_in_sequence = ends < length
    ends = tf.minimum(ends, length - 1)
    valid = tf.logical_and(
        start_mask[:, :, tf.newaxis],
        tf.logical_and(tf.gather(in_context, ends, axis=1), end_in_sequence[tf.newaxis]),
    )
    minus_infinity = tf.constant(float("-inf"), tf.float64)
    scores = tf.where(
        valid,
        start_logits[:, :, tf.newaxis] + tf.gather(end_logits, ends, axis=1),
        minus_infinity,
    )
    flat = tf.reshape(scores, [num_windows, -1])  # (W, L * K)
    best = tf.reduce_max(flat, axis=1)  # (W,)
    has_span = best > minus_infinity
    # The first position of the best score (`tf.argmax` does not promise the first of ties).
    flat_size = tf.shape(flat)[1]
    first = tf.reduce_min(
        tf.where(tf.equal(flat, best[:, tf.newaxis]), tf.range(flat_size)[tf.newaxis], flat_size),
        axis=1,
    )
    window_start = first // max_answer_length
    window_end = window_start + first % max_answer_length

    # Per example: the first window of the best score. (E,)
    example_index = windows["example_index"]
    num_examples = tf.shape(contexts)[0]
    best = tf.where(has_span, best, minus_infinity)
    example_best = tf.math.unsorted_segment_max(best, example_index, num_examples)
    is_winner = tf.logical_and(has_span, tf.equal(best, tf.gather(example_best, example_index)))
    winner = tf.math.unsorted_segment_min(
        tf.where(is_winner, tf.range(num_windows), num_windows), example_index, num_examples
    )
    found = winner < num_windows
    winner = tf.where(found, winner, 0)
    start = tf.gather(window_start, winner)
    end = tf.gather(window_end, winner)
    start_char = tf.where(
        found, tf.gather_nd(windows["start_chars"], tf.stack([winner, start], axis=1)), -1
    )
    end_char = tf.where(
        found, tf.gather_nd(windows["end_chars"], tf.stack([winner, end], axis=1)), -1
    )
    answer = tf.strings.substr(
        contexts, tf.maximum(start_char, 0), tf.maximum(end_char - start_char, 0),
        unit="UTF8_CHAR",
    )
    # Padding positions hold -1e9: they add nothing to the softmaxes, as in `predict_answers`.
    probability = tf.gather_nd(
        tf.nn.softmax(start_logits, axis=-1), tf.stack([winner, start], axis=1)
    ) * tf.gather_nd(tf.nn.softmax(end_logits, axis=-1), tf.stack([winner, end], axis=1))
    return {
        "answer": tf.where(found, answer, ""),
        "score": tf.cast(tf.where(found, tf.gather(best, winner), minus_infinity), tf.float32),
        "probability": tf.cast(tf.where(found, probability, 0.0), tf.float32),
        "start": start_char,
        "end": end_char,
    }


def normalize_answer(text):
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(char for char in text if char not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _f1(prediction, reference):
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(reference).split()
    common = collections.Counter(predicted) & collections.Counter(expected)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(predicted)
    recall = overlap / len(expected)
    return 2 * precision * recall / (precision + recall)


def squad_metrics(examples, answers):
    """Exact match and F1 (fractions in [0, 1]) of predicted answers.

    Args:
        examples: list of `Example` with reference answers.
        answers: dict `qas_id -> answer text` (or `Answer`).

    Returns:
        dict: `exact_match`, `f1`, `num_examples`.
    """
    exact, f1, count = 0.0, 0.0, 0
    for example in examples:
        if not example.answers:
            continue
        prediction = answers.get(example.qas_id, "")
        if isinstance(prediction, Answer):
            prediction = prediction.text
        references = [text for text, _ in example.answers]
        exact += max(float(normalize_answer(prediction) == normalize_answer(r)) for r in references)
        f1 += max(_f1(prediction, r) for r in references)
        count += 1
    return {
        "exact_match": exact / count if count else 0.0,
        "f1": f1 / count if count else 0.0,
        "num_examples": count,
    }


@dataclasses.dataclass
class Data:
    examples: list
    features: Features

    @property
    def inputs(self):
        return self.features.inputs

    @property
    def targets(self):
        return {
            "start_logits": self.features.start_positions,
            "end_logits": self.features.end_positions,
        }

    def __len__(self):
        return len(self.examples)


# (question, context) pairs the exporters verify on without an evaluation file: short contexts,
# accents, no answer at all (an empty context), and a context of several windows.
CHECK_PAIRS = (
    ("Who sings at night?", "The owl sings at night in the forest."),
    ("Where is the café?",
     "Le café crème est à Paris ; the Café Zoë is in Zürich, Switzerland."),
    ("What is there?", ""),
    (
        "Which river flows through city 57?",
        " ".join(
            f"City {i} lies on the river R{i * 7 % 31} and has {i * 13 % 97} bridges."
            for i in range(90)
        ),
    ),
)


class QuestionAnsweringTask(Task):
    """SQuAD-style extractive QA: `BertSpanLabeler` over windows of the context.

    Args:
        sequence_length: int. Window length in tokens, special tokens included. Defaults to
            `384`.
        doc_stride: int. Tokens between the starts of consecutive windows. Defaults to `128`.
        max_query_length: int. Questions are cut to this many tokens. Defaults to `64`.
        max_answer_length: int. Longest predicted answer, in tokens. Defaults to `30`.
    """

    name = "qa"
    has_labels = False
    default_sequence_length = 384
    sequence_outputs = True
    selection_metric = "f1"

    def __init__(self, sequence_length=384, doc_stride=128, max_query_length=64,
                 max_answer_length=30):
        self.sequence_length = sequence_length
        self.doc_stride = doc_stride
        self.max_query_length = max_query_length
        self.max_answer_length = max_answer_length

    def build_preprocessor(self, tokenizer):
        """The `SpanLabelerPreprocessor`: question and context to windows of model inputs."""
        return SpanLabelerPreprocessor(
            tokenizer, self.sequence_length, doc_stride=self.doc_stride,
            max_query_length=self.max_query_length,
        )

    def read(self, path, tokenizer, labels=None, is_training=False):
        examples = read_squad(path)
        features = preprocess(self.build_preprocessor(tokenizer), examples, is_training)
        return Data(examples, features)

    def read_texts(self, preprocessor, pairs):
        """`Data` of `(question, context)` pairs without answers (for `predict`)."""
        examples = [
            Example(str(index), question, context, [], spans)
            for index, ((question, context), spans) in enumerate(
                zip(pairs, split_words_batch([context for _, context in pairs]))
            )
        ]
        return Data(examples, preprocess(preprocessor, examples))

    def labels(self, train_data):
        return []

    def encode_targets(self, data, labels):
        return data  # span targets are made by `read(..., is_training=True)`

    def build_model(self, encoder, labels):
        from keras_bert.models import BertSpanLabeler

        return BertSpanLabeler(encoder)

    def loss(self):
        import keras

        return {
            "start_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "end_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        }

    def fit_metrics(self):
        return None

    def predict(self, model, data, batch_size=128):
        from keras_bert.inputs import predict

        logits = predict(model, data.inputs, batch_size, sequence_outputs=True)
        return predict_answers(
            data.examples, data.features, logits["start_logits"], logits["end_logits"],
            self.max_answer_length,
        )

    def evaluate(self, model, data, labels, batch_size=128):
        metrics = squad_metrics(data.examples, self.predict(model, data, batch_size))
        metrics["num_windows"] = int(len(data.features.example_index))
        return metrics

    # === Prediction ===

    def predict_texts(self, model_dir, lines, batch_size=64):
        """One dict per `question<TAB>context` line: `answer`, `probability`, `score`, and
        `start`, `end` (the answer's characters `[start, end)` in the context, -1 for none)."""
        pairs = [split_tab_pair(line, "question<TAB>context") for line in lines]
        data = self.read_texts(model_dir.preprocessor, pairs)
        answers = self.predict(model_dir.load_model(), data, batch_size)
        results = []
        for example in data.examples:
            answer = answers[example.qas_id]
            results.append({
                "answer": answer.text,
                "probability": answer.probability,
                "score": answer.score if np.isfinite(answer.score) else None,
                "start": answer.start,
                "end": answer.end,
            })
        return results

    def format_result(self, result):
        """`answer<TAB>probability`."""
        return f"{result['answer']}\t{result['probability']:.4f}"

    def inference_config(self):
        return {
            "doc_stride": self.doc_stride,
            "max_query_length": self.max_query_length,
            "max_answer_length": self.max_answer_length,
        }

    # === Serving ===

    @property
    def serving(self):
        """Text signature `question`, `context` -> `answer`, `score`, `probability`, `start`,
        `end` (`decode_answers`); token-id signature -> `start_logits`, `end_logits`."""
        return ServingSpec(
            text_inputs=("question", "context"),
            outputs=self.serving_outputs,
            numeric_outputs=("start_logits", "end_logits"),
            text_outputs=self.serving_text_outputs,
            read_inputs=self.serving_inputs,
            check=self.check_serving,
        )

    def serving_outputs(self, logits, labels):
        """float32 `start_logits`, `end_logits` `(num_windows, sequence_length)`."""
        del labels  # QA has none
        return {name: tf.cast(logits[name], tf.float32) for name in ("start_logits", "end_logits")}

    def serving_text_outputs(self, model, preprocessor, labels, texts):
        """Every window of every pair through the model, then `decode_answers`, in graph ops."""
        del labels
        windows = preprocessor(texts["question"], texts["context"])
        logits = model(
            trim_to_longest({name: windows[name] for name in INPUT_NAMES}), training=False
        )
        return decode_answers(
            windows, logits["start_logits"], logits["end_logits"], texts["context"],
            self.max_answer_length,
        )

    def serving_inputs(self, model_dir, path=None, limit=None):
        """`{"question": ..., "context": ...}` of a SQuAD v1.1 file, or `CHECK_PAIRS`."""
        del model_dir
        if path is None:
            pairs = list(CHECK_PAIRS)
        else:
            pairs = [(example.question, example.context) for example in read_squad(path)]
        pairs = pairs[:limit]
        return {
            "question": [question for question, _ in pairs],
            "context": [context for _, context in pairs],
        }

    def check_serving(self, model_dir, inputs, outputs, max_abs_diff):
        """The served answers against `predict_texts`': text, character span and score."""
        pairs = list(zip(inputs["question"], inputs["context"]))
        data = self.read_texts(model_dir.preprocessor, pairs)
        answers = self.predict(model_dir.load_model(), data)
        expected = [answers[example.qas_id] for example in data.examples]
        served_text = [str(text) for text in outputs["answer"]]
        text_equal = np.array([a == e.text for a, e in zip(served_text, expected)])
        span_equal = np.array([
            (int(start), int(end)) == (e.start, e.end)
            for start, end, e in zip(outputs["start"], outputs["end"], expected)
        ])
        expected_scores = np.array([e.score for e in expected], np.float64)
        served_scores = np.asarray(outputs["score"], np.float64)
        finite = np.isfinite(expected_scores)
        same_answered = bool(np.array_equal(finite, np.isfinite(served_scores)))
        score_diff = (
            float(np.abs(served_scores[finite] - expected_scores[finite]).max())
            if finite.any() and same_answered else 0.0
        )
        disagreements = [
            {"question": pair[0], "served": served, "expected": e.text}
            for pair, served, e, equal in zip(pairs, served_text, expected, text_equal)
            if not equal
        ][:10]
        return {
            "num_questions": len(pairs),
            "answer_agreement": float(text_equal.mean()) if len(pairs) else 1.0,
            "span_agreement": float(span_equal.mean()) if len(pairs) else 1.0,
            "max_score_diff": score_diff,
            "disagreements": disagreements,
            # The score adds two logits: each may differ by `max_abs_diff`.
            "passed": bool(text_equal.all() and span_equal.all() and same_answered
                           and score_diff <= 2 * max_abs_diff),
        }
