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

Exact match and F1 follow the SQuAD v1.1 definitions (lower-cased, punctuation
and articles removed, best over the reference answers), as fractions in [0, 1].
"""

import collections
import dataclasses
import json
import re
import string

import numpy as np

from keras_bert.models.span_decoding import best_span
from keras_bert.text.words import split_words, tokenize_words


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
        inputs: dict of int32 arrays `(num_windows, max_seq_length)`.
        start_positions, end_positions: int32 `(num_windows,)` training
            targets (0, the `[CLS]` position, when the window lacks the answer).
        example_index: int32 `(num_windows,)`: which example a window is of.
        window_words: list of int arrays: for each window, the context word of
            every position (-1 outside the context).
        window_max_context: list of bool arrays: for each window, whether each
            position may start an answer in this window.
        num_unanswerable: int. Training examples whose answer could not be
            located in the tokens (skipped for training).
    """

    inputs: dict
    start_positions: np.ndarray
    end_positions: np.ndarray
    example_index: np.ndarray
    window_words: list
    window_max_context: list
    num_unanswerable: int = 0


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
    examples = []
    for article_index, article in enumerate(data["data"]):
        for paragraph_index, paragraph in enumerate(article.get("paragraphs", [])):
            where = f"{path}: data[{article_index}].paragraphs[{paragraph_index}]"
            context = paragraph.get("context")
            if not isinstance(context, str):
                raise ValueError(f"{where}: 'context' must be a string.")
            word_spans = split_words(context)
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
    return examples


def _answer_word_span(example):
    """Indices of the first and last context word of the first answer, or None."""
    if not example.answers:
        return None
    text, start = example.answers[0]
    end = start + len(text)
    starts = np.array([s for s, _ in example.word_spans])
    ends = np.array([e for _, e in example.word_spans])
    inside = np.nonzero((ends > start) & (starts < end))[0]
    if inside.size == 0:
        return None
    return int(inside[0]), int(inside[-1])


def window_starts(num_tokens, window_length, doc_stride):
    """Start offsets of windows of `window_length` tokens, `doc_stride` apart, covering all."""
    starts, start = [], 0
    while True:
        starts.append(start)
        if start + window_length >= num_tokens:
            return starts
        start += min(window_length, doc_stride)


def convert_examples(
    examples, tokenizer, max_seq_length=384, doc_stride=128, max_query_length=64,
    is_training=False,
):
    """Packs examples into overlapping windows with span targets.

    Args:
        examples: list of `Example`.
        tokenizer: `keras_bert.text.BertTokenizer`.
        max_seq_length: int. Window length in tokens, special tokens included.
        doc_stride: int. Tokens between the starts of consecutive windows.
        max_query_length: int. Questions are cut to this many tokens.
        is_training: bool. Whether to compute targets (examples whose answer
            cannot be located in the tokens are then skipped).

    Returns:
        `Features`.
    """
    if max_seq_length < max_query_length + 4:
        raise ValueError(
            f"`max_seq_length` ({max_seq_length}) must exceed `max_query_length` "
            f"({max_query_length}) + 3 special tokens."
        )
    if doc_stride < 1:
        raise ValueError(f"`doc_stride` must be a positive integer, received {doc_stride!r}.")
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    question_ids = tokenizer.tokenize([e.question for e in examples])
    question_ids = [row[:max_query_length] for row in question_ids.to_list()]
    context_pieces = tokenize_words(
        tokenizer, [[e.context[s:t] for s, t in e.word_spans] for e in examples]
    )
    rows = collections.defaultdict(list)
    window_words, window_max_context = [], []
    num_unanswerable = 0
    for index, (example, question, pieces) in enumerate(
        zip(examples, question_ids, context_pieces)
    ):
        doc_ids = np.concatenate(pieces).astype(np.int32) if pieces else np.zeros(0, np.int32)
        doc_words = np.repeat(np.arange(len(pieces)), [len(p) for p in pieces])
        first_token = np.cumsum([0] + [len(p) for p in pieces])  # word -> first doc token
        target = None
        if is_training:
            words = _answer_word_span(example)
            if words is not None:
                token_start, token_end = first_token[words[0]], first_token[words[1] + 1] - 1
                if token_start <= token_end:
                    target = (int(token_start), int(token_end))
            if target is None:
                num_unanswerable += 1
                continue
        offset = len(question) + 2
        window_length = max_seq_length - offset - 1
        starts = window_starts(len(doc_ids), window_length, doc_stride)
        spans = [(s, min(window_length, len(doc_ids) - s)) for s in starts]
        best_window = _max_context_windows(spans, len(doc_ids))
        for window_index, (start, length) in enumerate(spans):
            token_ids = np.full(max_seq_length, pad_id, np.int32)
            sequence = [cls_id] + question + [sep_id] + doc_ids[start : start + length].tolist()
            sequence.append(sep_id)
            token_ids[: len(sequence)] = sequence
            segment_ids = np.zeros(max_seq_length, np.int32)
            segment_ids[offset : len(sequence)] = 1
            padding_mask = np.zeros(max_seq_length, np.int32)
            padding_mask[: len(sequence)] = 1
            words = np.full(max_seq_length, -1, np.int64)
            words[offset : offset + length] = doc_words[start : start + length]
            max_context = np.zeros(max_seq_length, bool)
            max_context[offset : offset + length] = (
                best_window[start : start + length] == window_index
            )
            start_position = end_position = 0
            if target is not None and start <= target[0] and target[1] < start + length:
                start_position = target[0] - start + offset
                end_position = target[1] - start + offset
            rows["token_ids"].append(token_ids)
            rows["segment_ids"].append(segment_ids)
            rows["padding_mask"].append(padding_mask)
            rows["start"].append(start_position)
            rows["end"].append(end_position)
            rows["example"].append(index)
            window_words.append(words)
            window_max_context.append(max_context)
    if not rows:
        raise ValueError("No windows: every example was skipped (answers not found in tokens).")
    inputs = {
        name: np.stack(rows[name]) for name in ("token_ids", "segment_ids", "padding_mask")
    }
    return Features(
        inputs=inputs,
        start_positions=np.asarray(rows["start"], np.int32),
        end_positions=np.asarray(rows["end"], np.int32),
        example_index=np.asarray(rows["example"], np.int32),
        window_words=window_words,
        window_max_context=window_max_context,
        num_unanswerable=num_unanswerable,
    )


def _max_context_windows(spans, num_tokens):
    """For every document token, the window giving it the most context on its shorter side.

    Ties go to the longer window, then the earlier one.
    """
    best_score = np.full(num_tokens, -np.inf)
    best_window = np.full(num_tokens, -1)
    for window_index, (start, length) in enumerate(spans):
        positions = np.arange(start, start + length)
        score = np.minimum(positions - start, start + length - 1 - positions) + 0.01 * length
        better = score > best_score[positions]
        best_score[positions[better]] = score[better]
        best_window[positions[better]] = window_index
    return best_window


Answer = collections.namedtuple("Answer", ["text", "score", "probability"])


def _log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max()
    return shifted - np.log(np.exp(shifted).sum())


def predict_answers(examples, features, start_logits, end_logits, max_answer_length=30):
    """The best answer of every example, over all its windows.

    Args:
        examples: list of `Example` (as given to `convert_examples`).
        features: `Features` of those examples.
        start_logits, end_logits: float arrays `(num_windows, length)`.
        max_answer_length: int. Longest answer in tokens.

    Returns:
        dict `qas_id -> Answer(text, score, probability)`: `score` is
        `start_logit + end_logit`; `probability` is `P(start) * P(end)` under
        the softmaxes of the winning window. `Answer("", -inf, 0.0)` when no
        window has a valid span.
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
            log_probability = (
                _log_softmax(start_logits[window, :real])[start]
                + _log_softmax(end_logits[window, :real])[end]
            )
            best[example_index] = (
                int(words[start]), int(words[end]), score, float(np.exp(log_probability))
            )
    answers = {}
    for index, example in enumerate(examples):
        if index in best:
            first_word, last_word, score, probability = best[index]
            start_char = example.word_spans[first_word][0]
            end_char = example.word_spans[last_word][1]
            answers[example.qas_id] = Answer(
                example.context[start_char:end_char], score, probability
            )
        else:
            answers[example.qas_id] = Answer("", float("-inf"), 0.0)
    return answers


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


class QuestionAnsweringTask:
    """What `training.finetune` needs to know about SQuAD-style extractive QA."""

    name = "qa"
    sequence_outputs = True
    selection_metric = "f1"

    def __init__(self, max_seq_length=384, doc_stride=128, max_query_length=64,
                 max_answer_length=30):
        self.max_seq_length = max_seq_length
        self.doc_stride = doc_stride
        self.max_query_length = max_query_length
        self.max_answer_length = max_answer_length

    def read(self, path, tokenizer, labels=None, is_training=False):
        examples = read_squad(path)
        features = convert_examples(
            examples, tokenizer, self.max_seq_length, self.doc_stride,
            self.max_query_length, is_training=is_training,
        )
        return Data(examples, features)

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

    def inference_config(self):
        return {
            "doc_stride": self.doc_stride,
            "max_query_length": self.max_query_length,
            "max_answer_length": self.max_answer_length,
        }
