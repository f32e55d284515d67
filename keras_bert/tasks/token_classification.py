"""Token classification (named entities) on CoNLL files: first-piece labels and entity F1.

A CoNLL file has one word per line, its tag in the last column (CoNLL-2003:
`word POS chunk tag`; two columns `word tag` also work), a blank line between
sentences, and `-DOCSTART-` lines between documents. Words are tokenized into
WordPieces; the first piece of a word carries the word's tag and the others
the ignored label -100, so the loss and the predictions are per word.

Entity-level F1 counts an entity as found only when its type and both
boundaries match, as the CoNLL `conlleval` script does; IOB1, IOB2 (BIO) and
IOBES tags are understood.

Sentences become model inputs through the task's preprocessor,
`keras_bert.text.TokenClassifierPreprocessor` (`preprocess`).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_bert.inputs import IGNORED_LABEL
from keras_bert.inputs import INPUT_NAMES
from keras_bert.inputs import trim_to_longest
from keras_bert.tasks.classification import softmax
from keras_bert.tasks.task import CHECK_TEXTS
from keras_bert.tasks.task import ServingSpec
from keras_bert.tasks.task import Task
from keras_bert.text.token_classifier_preprocessor import TokenClassifierPreprocessor
from keras_bert.text.words import split_words_tensor
from keras_bert.utils import deprecation

# Sentences preprocessed per call: bounds the memory of the ragged intermediates.
_PREPROCESS_CHUNK = 4096


@dataclasses.dataclass
class Sentence:
    words: list
    tags: list  # or None when unlabelled
    line_number: int


@dataclasses.dataclass
class Features:
    """Packed sentences.

    Attributes:
        inputs: dict of int32 arrays `(num_sentences, sequence_length)`.
        labels: int32 `(num_sentences, sequence_length)`: tag ids on first
            pieces, -100 elsewhere (all -100 when the sentences have no tags).
        word_positions: list of int arrays: for each sentence, the position of
            each word's first piece, -1 when the word was cut off by
            `sequence_length` or has no pieces.
        num_truncated: int. Sentences longer than the window.
    """

    inputs: dict
    labels: np.ndarray
    word_positions: list
    num_truncated: int = 0


def read_conll(path):
    """Reads sentences of `(word, tag)` lines; tags from the last column.

    Raises:
        ValueError: naming the file and line of a line without a tag.
    """
    sentences, words, tags, first_line = [], [], [], None
    try:
        f = open(path, encoding="utf-8-sig")
    except FileNotFoundError:
        raise ValueError(f"Input file {path!r} does not exist.") from None
    with f:
        for line_number, line in enumerate(f, start=1):
            fields = line.split()
            if not fields or fields[0] == "-DOCSTART-":
                if words:
                    sentences.append(Sentence(words, tags, first_line))
                words, tags = [], []
                continue
            if len(fields) < 2:
                raise ValueError(
                    f"{path}:{line_number}: expected a word and a tag, found {line.strip()!r}."
                )
            if not words:
                first_line = line_number
            words.append(fields[0])
            tags.append(fields[-1])
    if words:
        sentences.append(Sentence(words, tags, first_line))
    if not sentences:
        raise ValueError(f"{path}: no sentences.")
    return sentences


def tag_list(sentences):
    """Distinct tags, `O` first, then sorted by entity type and prefix (B before I)."""
    tags = {tag for sentence in sentences for tag in sentence.tags}
    others = sorted(tags - {"O"}, key=lambda tag: (_split_tag(tag)[1], tag))
    return (["O"] if "O" in tags else []) + others


def encode_tags(sentences, tags, path="<data>"):
    """Tag ids per sentence; `ValueError` naming the file and line of an unknown tag."""
    index = {tag: i for i, tag in enumerate(tags)}
    encoded = []
    for sentence in sentences:
        for offset, tag in enumerate(sentence.tags):
            if tag not in index:
                raise ValueError(
                    f"{path}:{sentence.line_number + offset}: tag {tag!r} is not one of the "
                    f"training tags {tags}."
                )
        encoded.append([index[tag] for tag in sentence.tags])
    return encoded


def first_piece_positions(word_ids, num_words):
    """Position of each word's first piece in a packed row; -1 for words not in it.

    Args:
        word_ids: int array `(sequence_length,)`: the word of each position, -1 on special
            tokens and padding (`TokenClassifierPreprocessor`'s `word_ids`).
        num_words: int. Words of the sentence.

    Returns:
        int64 array `(num_words,)`.
    """
    positions = np.full(num_words, -1, np.int64)
    in_word = np.flatnonzero(word_ids >= 0)
    words, first = np.unique(word_ids[in_word], return_index=True)
    positions[words] = in_word[first]
    return positions


def preprocess(preprocessor, sentences, tag_ids=None):
    """Sentences packed by the task's preprocessor, as numpy `Features`.

    Args:
        preprocessor: `keras_bert.text.TokenClassifierPreprocessor`.
        sentences: list of `Sentence` (or of word lists).
        tag_ids: list (per sentence) of lists of tag ids, or None.

    Returns:
        `Features`.
    """
    word_lists = [s.words if isinstance(s, Sentence) else list(s) for s in sentences]
    chunks = []
    for first in range(0, len(word_lists), _PREPROCESS_CHUNK):
        chunk = slice(first, first + _PREPROCESS_CHUNK)
        labels = None if tag_ids is None else tag_ids[chunk]
        outputs = preprocessor(word_lists[chunk], labels)
        chunks.append({name: value.numpy() for name, value in outputs.items()})
    if chunks:
        outputs = {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}
    else:  # No sentences: zero rows of the shapes one sentence has.
        empty = preprocessor([[]])
        outputs = {name: value.numpy()[:0] for name, value in empty.items()}
    inputs = {name: outputs[name] for name in INPUT_NAMES}
    labels = outputs.get("labels")
    if labels is None:
        labels = np.full_like(inputs["token_ids"], IGNORED_LABEL)
    word_positions = [
        first_piece_positions(row, len(words))
        for row, words in zip(outputs["word_ids"], word_lists)
    ]
    return Features(inputs, labels, word_positions, int(outputs["truncated"].sum()))


def convert_sentences(tokenizer, sentences, sequence_length=None, tag_ids=None,
                      max_seq_length=None):
    """Packs sentences as `[CLS] pieces [SEP]` with first-piece labels.

    Args:
        tokenizer: `keras_bert.text.BertTokenizer`.
        sentences: list of `Sentence` (or of word lists).
        sequence_length: int. Defaults to `128`.
        tag_ids: list (per sentence) of lists of tag ids, or None.
        max_seq_length: deprecated name of `sequence_length`.

    Returns:
        `Features`.
    """
    sequence_length = deprecation.renamed_argument(
        "convert_sentences(max_seq_length=...)", max_seq_length, "sequence_length",
        sequence_length,
    )
    if sequence_length is None:
        sequence_length = TokenClassificationTask.default_sequence_length
    return preprocess(TokenClassifierPreprocessor(tokenizer, sequence_length), sentences, tag_ids)


def predict_tags(features, logits, tags):
    """Word-level tag names from per-position logits; words without a position get `O`.

    Args:
        features: `Features`.
        logits: float array `(num_sentences, length, num_tags)`.
        tags: list of str, the tag names.

    Returns:
        list (per sentence) of lists of tag names, and the matching
        probabilities (softmax of the chosen tag).
    """
    outside = "O" if "O" in tags else tags[0]
    predicted, probabilities = [], []
    for row, positions in enumerate(features.word_positions):
        row_tags, row_probabilities = [], []
        for position in positions:
            if position < 0 or position >= logits.shape[1]:
                row_tags.append(outside)
                row_probabilities.append(0.0)
                continue
            scores = np.asarray(logits[row, position], np.float64)
            best = int(np.argmax(scores))
            row_tags.append(tags[best])
            row_probabilities.append(float(softmax(scores)[best]))
        predicted.append(row_tags)
        probabilities.append(row_probabilities)
    return predicted, probabilities


def decode_tags(words, word_ids, logits, tags):
    """`predict_tags` in graph ops: the tag of each word from its first piece's logits.

    Shape legend: B = sentences, W = most words of a sentence, L = positions (the logits'
    length), T = tags.

    Args:
        words: string `tf.RaggedTensor` `(B, None)`: the words packed.
        word_ids: int32 `(B, sequence_length)`: the word of each position, -1 elsewhere
            (`TokenClassifierPreprocessor`'s `word_ids`; only the first L positions are read).
        logits: float `(B, L, T)`.
        tags: list of str. The tag names, in index order.

    Returns:
        dict: `words` (string `(B, W)`, padded with ""), `num_words` (int32 `(B,)`), `tags`
        (string `(B, W)`: the argmax tag, the first of ties; "O" (or the first tag) for a
        word without a piece in the window; "" past `num_words`) and `scores` (float32
        `(B, W)`: the chosen tag's softmax probability, 0 for words without a piece and
        padding).
    """
    logits = tf.cast(logits, tf.float64)
    length = tf.shape(logits)[1]
    word_ids = word_ids[:, :length]
    # A word's first piece: a position of the word whose left neighbour is of another word.
    previous = tf.pad(word_ids[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
    first_pieces = tf.where(tf.logical_and(word_ids >= 0, tf.not_equal(word_ids, previous)))
    first_pieces = tf.cast(first_pieces, tf.int32)  # (num_first_pieces, 2): row, position
    word_table = words.to_tensor(default_value="")  # (B, W)
    num_words = tf.cast(words.row_lengths(), tf.int32)
    positions = tf.tensor_scatter_nd_update(
        tf.fill(tf.shape(word_table), -1),
        tf.stack([first_pieces[:, 0], tf.gather_nd(word_ids, first_pieces)], axis=1),
        first_pieces[:, 1],
    )  # (B, W): each word's first piece, -1 for none
    word_logits = tf.gather(logits, tf.maximum(positions, 0), batch_dims=1)  # (B, W, T)
    best_logit = tf.reduce_max(word_logits, axis=-1, keepdims=True)
    num_tags = len(tags)
    best = tf.reduce_min(
        tf.where(tf.equal(word_logits, best_logit), tf.range(num_tags), num_tags), axis=-1
    )
    probability = tf.reduce_max(tf.nn.softmax(word_logits, axis=-1), axis=-1)
    has_piece = positions >= 0
    in_sentence = tf.range(tf.shape(word_table)[1])[tf.newaxis, :] < num_words[:, tf.newaxis]
    outside = "O" if "O" in tags else tags[0]
    word_tags = tf.where(
        has_piece,
        tf.gather(tf.constant(list(tags), tf.string), best),
        tf.where(in_sentence, outside, ""),
    )
    return {
        "words": word_table,
        "num_words": num_words,
        "tags": word_tags,
        "scores": tf.cast(tf.where(has_piece, probability, 0.0), tf.float32),
    }


def _split_tag(tag):
    """`("B", "PER")` from `"B-PER"`; `("O", "")` from `"O"`; a bare type is an `I` tag."""
    if tag == "O" or not tag:
        return "O", ""
    if len(tag) > 2 and tag[1] in "-_" and tag[0] in "BIESU":
        prefix = {"U": "S"}.get(tag[0], tag[0])
        return prefix, tag[2:]
    return "I", tag


def entities(tags):
    """Set of `(start, end, type)` entities (end inclusive) of one tag sequence.

    Follows conlleval's chunk rules, so IOB1 (`I-X I-X B-X`), IOB2 (`B-X I-X`)
    and IOBES (`B-X E-X`, `S-X`) all read as their authors meant.
    """
    found = set()
    start, current_type = None, ""
    previous_prefix, previous_type = "O", ""
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, entity_type = _split_tag(tag)
        ends = (
            previous_prefix in ("E", "S")
            or (previous_prefix in ("B", "I") and prefix in ("B", "S", "O"))
            or (previous_prefix in ("B", "I") and previous_type != entity_type)
        )
        starts = (
            prefix in ("B", "S")
            or (prefix in ("I", "E") and previous_prefix in ("E", "S", "O"))
            or (prefix in ("I", "E") and previous_type != entity_type)
        )
        if ends and start is not None:
            found.add((start, i - 1, current_type))
            start = None
        if starts and prefix != "O":
            start, current_type = i, entity_type
        previous_prefix, previous_type = prefix, entity_type
    return found


def entity_metrics(gold_tag_lists, predicted_tag_lists):
    """Entity-level precision, recall and F1 over sentences, overall and per type.

    Returns:
        dict: `precision`, `recall`, `f1`, `num_gold_entities`,
        `num_predicted_entities`, `num_sentences`, `per_type_f1`.
    """
    if len(gold_tag_lists) != len(predicted_tag_lists):
        raise ValueError(
            f"{len(gold_tag_lists)} gold sentences but {len(predicted_tag_lists)} predicted."
        )
    gold, predicted = set(), set()
    for index, (gold_tags, predicted_tags) in enumerate(zip(gold_tag_lists, predicted_tag_lists)):
        gold |= {(index,) + entity for entity in entities(gold_tags)}
        predicted |= {(index,) + entity for entity in entities(predicted_tags)}

    def scores(gold_set, predicted_set):
        correct = len(gold_set & predicted_set)
        precision = correct / len(predicted_set) if predicted_set else 0.0
        recall = correct / len(gold_set) if gold_set else 0.0
        f1 = 2 * precision * recall / (precision + recall) if correct else 0.0
        return precision, recall, f1

    precision, recall, f1 = scores(gold, predicted)
    per_type = {}
    for entity_type in sorted({e[3] for e in gold | predicted}):
        per_type[entity_type] = scores(
            {e for e in gold if e[3] == entity_type},
            {e for e in predicted if e[3] == entity_type},
        )[2]
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "num_gold_entities": len(gold),
        "num_predicted_entities": len(predicted),
        "num_sentences": len(gold_tag_lists),
        "per_type_f1": per_type,
    }


@dataclasses.dataclass
class Data:
    path: str
    sentences: list
    features: Features

    @property
    def inputs(self):
        return self.features.inputs

    @property
    def targets(self):
        return self.features.labels

    def __len__(self):
        return len(self.sentences)


class TokenClassificationTask(Task):
    """Per-word tagging (NER): `BertTokenClassifier`, a tag on each word's first piece.

    Args:
        sequence_length: int. The packed length of the model's inputs. Defaults to `128`.
        max_seq_length: deprecated name of `sequence_length`.
    """

    name = "token_classification"
    default_sequence_length = 128
    sequence_outputs = True
    selection_metric = "f1"

    def __init__(self, sequence_length=None, max_seq_length=None):
        sequence_length = deprecation.renamed_argument(
            "TokenClassificationTask(max_seq_length=...)", max_seq_length, "sequence_length",
            sequence_length,
        )
        if sequence_length is None:
            sequence_length = self.default_sequence_length
        self.sequence_length = sequence_length

    def build_preprocessor(self, tokenizer):
        """The `TokenClassifierPreprocessor`: words (or texts) to model inputs."""
        return TokenClassifierPreprocessor(tokenizer, self.sequence_length)

    def read(self, path, tokenizer, labels=None, is_training=False):
        sentences = read_conll(path)
        features = preprocess(self.build_preprocessor(tokenizer), sentences)
        data = Data(path, sentences, features)
        if labels is not None:
            self.encode_targets(data, labels)
        return data

    def labels(self, train_data):
        return tag_list(train_data.sentences)

    def encode_targets(self, data, labels):
        """Puts each word's tag id on its first piece (after `read` without labels)."""
        tag_ids = encode_tags(data.sentences, labels, data.path)
        targets = np.full_like(data.features.labels, IGNORED_LABEL)
        for row, (positions, ids) in enumerate(zip(data.features.word_positions, tag_ids)):
            kept = positions >= 0
            targets[row, positions[kept]] = np.asarray(ids, np.int32)[kept]
        data.features.labels = targets
        return data

    def build_model(self, encoder, labels):
        from keras_bert.models import BertTokenClassifier

        return BertTokenClassifier(encoder, num_classes=len(labels))

    def loss(self):
        import keras

        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=IGNORED_LABEL
        )

    def fit_metrics(self):
        return None

    def predict(self, model, data, labels, batch_size=128):
        from keras_bert.inputs import predict

        logits = predict(model, data.inputs, batch_size, sequence_outputs=True)
        return predict_tags(data.features, logits, labels)

    def evaluate(self, model, data, labels, batch_size=128):
        predicted, _ = self.predict(model, data, labels, batch_size)
        metrics = entity_metrics([s.tags for s in data.sentences], predicted)
        metrics["num_examples"] = len(data.sentences)
        metrics["num_truncated"] = data.features.num_truncated
        return metrics

    def inference_config(self):
        return {}

    # === Prediction ===

    def predict_texts(self, model_dir, lines, batch_size=64):
        """One dict per line (words split at white space): `words`, `tags`, `probabilities`
        (of each chosen tag)."""
        word_lists = [line.split() for line in lines]
        features = preprocess(model_dir.preprocessor, word_lists)
        tags, probabilities = self.predict(
            model_dir.load_model(), Data("<input>", word_lists, features), model_dir.labels,
            batch_size,
        )
        return [
            {"words": words, "tags": row_tags, "probabilities": row_probabilities}
            for words, row_tags, row_probabilities in zip(word_lists, tags, probabilities)
        ]

    def format_result(self, result):
        """`word/tag(probability)` for every word."""
        return " ".join(
            f"{word}/{tag}({probability:.2f})"
            for word, tag, probability in zip(
                result["words"], result["tags"], result["probabilities"]
            )
        )

    # === Serving ===

    @property
    def serving(self):
        """Text signature `text` -> `words`, `num_words`, `tags`, `scores` (padded to the
        most words of the batch, `decode_tags`); token-id signature -> `logits`."""
        return ServingSpec(
            text_inputs=("text",),
            outputs=self.serving_outputs,
            numeric_outputs=("logits",),
            text_outputs=self.serving_text_outputs,
            read_inputs=self.serving_inputs,
            check=self.check_serving,
        )

    def serving_outputs(self, logits, labels):
        """float32 `logits` `(batch_size, sequence_length, num_tags)`."""
        del labels
        return {"logits": tf.cast(logits, tf.float32)}

    def serving_text_outputs(self, model, preprocessor, labels, texts):
        """Texts cut into words at white space, packed, tagged: `decode_tags`, in graph ops."""
        words, _, _ = split_words_tensor(texts["text"], split_punctuation=False)
        packed = preprocessor(words)
        logits = model(
            trim_to_longest({name: packed[name] for name in INPUT_NAMES}), training=False
        )
        return decode_tags(words, packed["word_ids"], logits, labels)

    def serving_inputs(self, model_dir, path=None, limit=None):
        """`{"text": ...}`: the sentences of a CoNLL file (words joined by spaces), or
        `CHECK_TEXTS`."""
        del model_dir
        if path is None:
            return {"text": list(CHECK_TEXTS)[:limit]}
        return {"text": [" ".join(s.words) for s in read_conll(path)][:limit]}

    def check_serving(self, model_dir, inputs, outputs, max_abs_diff):
        """The served words, tags and scores against `predict_texts`'."""
        del max_abs_diff  # probabilities, compared at 1e-5
        expected = self.predict_texts(model_dir, list(inputs["text"]))
        words_equal, tags_equal, score_diff, disagreements = [], [], 0.0, []
        for row, result in enumerate(expected):
            count = int(outputs["num_words"][row])
            words = [str(word) for word in outputs["words"][row][:count]]
            tags = [str(tag) for tag in outputs["tags"][row][:count]]
            words_equal.append(words == result["words"])
            tags_equal.append(tags == result["tags"])
            if words_equal[-1]:
                score_diff = max(score_diff, float(np.abs(
                    np.asarray(outputs["scores"][row][:count], np.float64)
                    - np.asarray(result["probabilities"], np.float64)
                ).max(initial=0.0)))
            if not (words_equal[-1] and tags_equal[-1]) and len(disagreements) < 10:
                disagreements.append({"text": inputs["text"][row], "served": tags,
                                      "expected": result["tags"]})
        count = max(len(expected), 1)
        return {
            "num_texts": len(expected),
            "word_agreement": sum(words_equal) / count,
            "tag_agreement": sum(tags_equal) / count,
            "max_score_diff": score_diff,
            "disagreements": disagreements,
            "passed": bool(all(words_equal) and all(tags_equal) and score_diff <= 1e-5),
        }
