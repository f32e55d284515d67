"""Runs the exported `.tflite` files with the LiteRT interpreter.

    from export.core import litert

    # The string model: text in, prediction out (tensorflow-text's kernels registered).
    classifier = litert.LiteRTClassifier("exported/model_text.tflite")
    classifier.predict_texts(["a charming journey", "bleak and desperate"])

    # The token-id model: texts tokenized here with the project's tokenizer (the vocabulary
    # and lower-casing named by the file's manifest), one interpreter call per text at its
    # own length.
    classifier = litert.LiteRTClassifier("exported/model_dynamic_int8.tflite", num_threads=2)
    classifier.predict_texts(["a charming journey"])["label_name"]

    # Any task's token-id file (question answering, tagging, embeddings): its named outputs.
    model = litert.LiteRTModel("exported/minilm_embedding.tflite")
    model.outputs(["a charming journey"])["embedding"]            # (1, hidden_dim)

A token-id file is tokenized with the vocabulary its manifest names (or the one passed), after
checking that the vocabulary's SHA-256 is the manifest's `vocab_sha256`: a file fed the ids of
another vocabulary returns confident nonsense, so a mismatch is a `ValueError`.

The interpreter is `ai_edge_litert` (LiteRT, the maintained successor of `tflite_runtime`), else
`tflite_runtime`, else `tf.lite`, whichever is installed first in that order.
"""

import json
import os
import threading
import zipfile

import numpy as np

# NumPy only: running a model needs neither TensorFlow nor the tokenizer.
from keras_bert.inputs import INPUT_NAMES
from keras_bert.inputs import trim_to_longest
from keras_bert.models.model_dir import file_sha256
from keras_bert.tasks.classification import softmax

# The signatures' text input names (as in export/core/graphs.py; not imported from there, which
# needs TensorFlow).
TEXT_INPUT = "text"
TEXT_PAIR_INPUT = "text_pair"

# The name of the TFLite Model Metadata buffer; files that have it end with a zip archive of the
# metadata's associated files (the vocabulary, the labels).
METADATA_NAME = b"TFLITE_METADATA"

# The custom ops that tensorflow-text's TFLite registrar (`SELECT_TFTEXT_OPS`) provides, under
# the names the converter gives them; a string model may use these and nothing else custom.
_TFTEXT_OPS = (
    "ByteSplit", "ByteSplitByOffsets", "FastBertNormalize", "FastSentencepieceDetokenize",
    "FastSentencepieceTokenize", "FastWordpieceDetokenize", "FastWordpieceTokenize",
    "FastWordpieceTokenizeWithOffsets", "NgramsStringJoin", "RaggedTensorToTensor",
    "RoundRobinGenerateMasks", "RoundRobinTrim", "SentenceFragmenterV2", "Utf8Binarize",
    "WhitespaceTokenize", "WhitespaceTokenizeWithOffsets",
)
TFTEXT_CUSTOM_OPS = _TFTEXT_OPS + tuple("TFText>" + name for name in _TFTEXT_OPS)


def interpreter_module():
    """`(module, name)` of the first interpreter package available.

    The module has `Interpreter` (and, for `ai_edge_litert` and `tf.lite`,
    `InterpreterWithCustomOps`).
    """
    try:
        from ai_edge_litert import interpreter  # pylint: disable=import-outside-toplevel

        return interpreter, "ai_edge_litert"
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter  # pylint: disable=import-outside-toplevel

        return interpreter, "tflite_runtime"
    except ImportError:
        pass
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    return tf.lite, "tf.lite"


def make_interpreter(model_path=None, model_content=None, num_threads=None,
                     custom_ops=False):
    """A LiteRT interpreter, with tensorflow-text's kernels registered when `custom_ops`.

    Args:
        model_path: str. A `.tflite` file (or pass `model_content`).
        model_content: bytes. The flatbuffer.
        num_threads: int or None. Interpreter threads.
        custom_ops: bool. Register `tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS`.
    """
    module, name = interpreter_module()
    kwargs = {"model_path": model_path, "model_content": model_content,
              "num_threads": num_threads}
    if not custom_ops:
        return module.Interpreter(**kwargs)
    import tensorflow_text  # pylint: disable=import-outside-toplevel

    registerers = tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS
    if hasattr(module, "InterpreterWithCustomOps"):
        return module.InterpreterWithCustomOps(custom_op_registerers=registerers, **kwargs)
    raise ValueError(
        f"The installed interpreter package ({name}) cannot register tensorflow-text's custom "
        "ops; install ai-edge-litert."
    )


def manifest_path(tflite_path):
    """Where the manifest of `tflite_path` is, or None: `<stem>.manifest.json` (what
    `export.tflite` writes), else a `manifest.json` beside the file."""
    directory = os.path.dirname(os.path.abspath(tflite_path))
    stem = os.path.splitext(os.path.basename(tflite_path))[0]
    for name in (f"{stem}.manifest.json", "manifest.json"):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def read_manifest(tflite_path):
    """The manifest of `tflite_path` (see `manifest_path`) as a dict, or None without one.

    Raises:
        ValueError: naming the manifest when it is not a JSON object.
    """
    path = manifest_path(tflite_path)
    if path is None:
        return None
    with open(path, encoding="utf-8") as f:
        try:
            manifest = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path} holds a {type(manifest).__name__}, not an object.")
    return manifest


def _check_associated_files(path):
    """Raises `ValueError` when a file with TFLite Model Metadata lacks an intact zip of its
    associated files at its end: the interpreter would load the model, but the task libraries
    would find no vocabulary (a truncated copy loses the zip first)."""
    with open(path, "rb") as f:
        content = f.read()
    if METADATA_NAME not in content:
        return
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
    except zipfile.BadZipFile as error:
        raise ValueError(f"the zip of its metadata's associated files is cut off ({error})") \
            from error
    if broken is not None:
        raise ValueError(f"the metadata's associated file {broken} is corrupted")


def check_vocabulary(vocabulary_path, manifest, manifest_file=None):
    """Raises `ValueError` unless the vocabulary is the one the manifest records.

    Args:
        vocabulary_path: str. A `vocab.txt` file (or a directory holding one).
        manifest: dict. A manifest written by `export.tflite`; without `vocab_sha256` nothing
            is checked.
        manifest_file: str or None. The manifest's path, for the message.

    Raises:
        ValueError: naming the vocabulary, its SHA-256 and the manifest's.
    """
    expected = manifest.get("vocab_sha256")
    if not expected:
        return
    if os.path.isdir(vocabulary_path):
        vocabulary_path = os.path.join(vocabulary_path, "vocab.txt")
    if not os.path.isfile(vocabulary_path):
        raise ValueError(f"Vocabulary {vocabulary_path} does not exist.")
    actual = file_sha256(vocabulary_path)
    if actual != expected:
        raise ValueError(
            f"Vocabulary {vocabulary_path} has SHA-256 {actual}, but the manifest "
            f"{manifest_file or ''} records vocab_sha256 {expected}: the file was exported with "
            "another vocabulary, and would be fed the wrong token ids."
        )


class LiteRTModel:
    """Runs an exported `.tflite` file (any task) on texts or packed token ids.

    Args:
        path: str. A `.tflite` file written by `export.tflite`.
        num_threads: int or None. Interpreter threads.
        vocabulary: str or None. For token-id files: a `vocab.txt` (or directory) to tokenize
            with; default: the vocabulary named by the file's manifest. Either must have the
            manifest's `vocab_sha256` when the manifest records one.
        sequence_length: int or None. Longest packed sequence; default: the manifest's
            `max_seq_length` (128).
        custom_ops: bool or None. Register tensorflow-text's kernels; default: when the
            manifest lists custom ops, or (without a manifest) when the input is a string.
        fixed_sequence_length: bool or None. Whether the inputs must have exactly
            `sequence_length` tokens; default: the manifest's `fixed_sequence_length`.

    Token-id files take int32 `token_ids`, `segment_ids`, `padding_mask` of shape
    `(1, length)`: any length up to `max_seq_length`, or exactly `max_seq_length` when the
    manifest says `fixed_sequence_length` (question answering). String files take `text`
    (string, `(1,)`; and `text_pair` for pair tasks). Examples go through one at a time.

    Thread-safe: a TFLite interpreter is not, so its calls take turns under a lock (for
    parallel throughput, give each thread its own object). A file that is not a readable
    `.tflite` flatbuffer (truncated, corrupted) raises `ValueError` naming it.
    """

    def __init__(self, path, num_threads=None, vocabulary=None, sequence_length=None,
                 custom_ops=None, fixed_sequence_length=None):
        if not os.path.isfile(path):
            raise ValueError(f"`path` ({path!r}) is not a file.")
        self.path = path
        self.manifest = read_manifest(path) or {}
        if custom_ops is None:
            custom_ops = self.manifest.get("custom_ops")
        try:
            _check_associated_files(path)
            if custom_ops is None:
                # No manifest: a string input means tensorflow-text's kernels are needed.
                probe = make_interpreter(path).get_signature_runner().get_input_details()
                custom_ops = any(np.dtype(d["dtype"]).kind in "SOU" for d in probe.values())
            self.interpreter = make_interpreter(path, num_threads=num_threads,
                                                custom_ops=bool(custom_ops))
            self.runner = self.interpreter.get_signature_runner()
        except (ValueError, RuntimeError) as error:
            raise ValueError(
                f"{path} is not a readable .tflite model (truncated or corrupted?): {error}"
            ) from error
        self._lock = threading.Lock()
        self.input_names = sorted(self.runner.get_input_details())
        self.output_names = sorted(self.runner.get_output_details())
        self.is_string_model = self.input_names == [TEXT_INPUT] or self.input_names == sorted(
            [TEXT_INPUT, TEXT_PAIR_INPUT])
        if not self.is_string_model and self.input_names != sorted(INPUT_NAMES):
            raise ValueError(
                f"{path} takes inputs {self.input_names}; expected {sorted(INPUT_NAMES)} "
                f"or {[TEXT_INPUT]}."
            )
        self.sequence_length = sequence_length or self.manifest.get("max_seq_length", 128)
        if fixed_sequence_length is None:
            fixed_sequence_length = self.manifest.get("fixed_sequence_length")
        self.fixed_sequence_length = bool(fixed_sequence_length)
        self._vocabulary = self._vocabulary_path(vocabulary)
        if self._vocabulary is not None and not self.is_string_model:
            check_vocabulary(self._vocabulary, self.manifest, manifest_path(path))
        self._tokenizer = None
        self._preprocessor = None

    def _vocabulary_path(self, vocabulary):
        """The vocabulary given, else the one the manifest names (beside the file), or None."""
        if vocabulary is not None:
            return os.fspath(vocabulary)
        entry = self.manifest.get("vocab")
        if not entry:
            return None
        return os.path.join(os.path.dirname(os.path.abspath(self.path)), entry)

    @property
    def tokenizer(self):
        """The project's tokenizer for the file's vocabulary (token-id files)."""
        if self._tokenizer is None:
            import keras_bert  # pylint: disable=import-outside-toplevel

            if self._vocabulary is None:
                raise ValueError(
                    f"{self.path} has no manifest naming its vocabulary; pass `vocabulary`."
                )
            self._tokenizer = keras_bert.load_tokenizer(
                self._vocabulary, lower_case=self.manifest.get("lower_case")
            )
        return self._tokenizer

    @property
    def preprocessor(self):
        """`tokenizer`'s `TextClassifierPreprocessor` to `sequence_length` (token-id files)."""
        if self._preprocessor is None:
            # pylint: disable=import-outside-toplevel
            from keras_bert.text import TextClassifierPreprocessor

            self._preprocessor = TextClassifierPreprocessor(
                self.tokenizer, sequence_length=self.sequence_length
            )
        return self._preprocessor

    def run(self, feed):
        """The float32 outputs (dict of arrays with a leading axis of 1) of one call."""
        # The runner resizes the inputs and reads the outputs of one shared interpreter.
        with self._lock:
            outputs = self.runner(**feed)
            return {name: np.array(value, np.float32) for name, value in outputs.items()}

    def outputs_from_token_ids(self, token_ids, segment_ids=None, padding_mask=None):
        """The outputs of one packed example (int arrays `(1, length)`)."""
        token_ids = np.asarray(token_ids, np.int32).reshape(1, -1)
        if segment_ids is None:
            segment_ids = np.zeros_like(token_ids)
        if padding_mask is None:
            padding_mask = np.ones_like(token_ids)
        return self.run({
            "token_ids": token_ids,
            "segment_ids": np.asarray(segment_ids, np.int32).reshape(1, -1),
            "padding_mask": np.asarray(padding_mask, np.int32).reshape(1, -1),
        })

    def outputs_from_packed(self, packed):
        """Outputs of packed arrays `(N, length)`, one call per example, stacked: dict of
        `(N, ...)` arrays.

        Each example is cut to its real length, unless the file has a fixed sequence length
        (then it must be packed to exactly that). Outputs with a sequence axis are padded with
        zeros to the longest example's length.
        """
        packed = {name: np.asarray(packed[name]) for name in INPUT_NAMES}
        if self.fixed_sequence_length and packed["token_ids"].shape[1] != self.sequence_length:
            raise ValueError(
                f"{self.path} takes sequences of exactly {self.sequence_length} tokens; the "
                f"examples are packed to {packed['token_ids'].shape[1]}."
            )
        rows = []
        for i in range(len(packed["padding_mask"])):
            example = {name: value[i:i + 1] for name, value in packed.items()}
            if not self.fixed_sequence_length:
                example = trim_to_longest(example)
            rows.append(self.outputs_from_token_ids(*(example[name] for name in INPUT_NAMES)))
        return stack_outputs(rows)

    def outputs(self, texts, texts_pair=None):
        """Outputs (dict of `(N, ...)` arrays) of a list of texts (and second texts)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if texts_pair is not None:
            texts_pair = [texts_pair] if isinstance(texts_pair, str) else list(texts_pair)
        if self.is_string_model:
            rows = []
            for i, text in enumerate(texts):
                feed = {TEXT_INPUT: np.array([text.encode("utf-8")], dtype=object)}
                if TEXT_PAIR_INPUT in self.input_names:
                    if texts_pair is None:
                        raise ValueError(f"{self.path} is a pair model; pass `texts_pair`.")
                    feed[TEXT_PAIR_INPUT] = np.array(
                        [texts_pair[i].encode("utf-8")], dtype=object)
                rows.append(self.run(feed))
            return stack_outputs(rows)
        return self.outputs_from_packed(self.preprocessor.pack_numpy(texts, texts_pair))


def stack_outputs(rows):
    """One dict of `(N, ...)` arrays from N dicts of `(1, ...)` arrays; a sequence axis (the
    second, when lengths differ) is padded with zeros to the longest."""
    if not rows:
        return {}
    stacked = {}
    for name in rows[0]:
        values = [row[name] for row in rows]
        if len({value.shape for value in values}) > 1:
            longest = max(value.shape[1] for value in values)
            values = [
                np.pad(value, [(0, 0), (0, longest - value.shape[1])]
                       + [(0, 0)] * (value.ndim - 2))
                for value in values
            ]
        stacked[name] = np.concatenate(values, axis=0)
    return stacked


class LiteRTClassifier(LiteRTModel):
    """Predicts from texts or token ids with an exported `.tflite` classifier.

    Args:
        path: str. A `.tflite` file written by `export.tflite`.
        num_threads: int or None. Interpreter threads.
        vocabulary: str or None. See `LiteRTModel`.
        labels: list of str or None. Class names; default: the manifest's.
        sequence_length: int or None. Longest packed sequence; default: the manifest's
            `max_seq_length` (128).
        custom_ops: bool or None. See `LiteRTModel`.

    The string model's signature is `text` (string, `(1,)`) -> `logits`; the token-id
    model's `token_ids`, `segment_ids`, `padding_mask` (int32, `(1, length)`) -> `logits`
    `(1, num_classes)`. Texts go through one at a time, each at its own length.
    """

    def __init__(self, path, num_threads=None, vocabulary=None, labels=None,
                 sequence_length=None, custom_ops=None):
        super().__init__(path, num_threads=num_threads, vocabulary=vocabulary,
                         sequence_length=sequence_length, custom_ops=custom_ops)
        self.labels = labels or self.manifest.get("labels")

    def logits_from_token_ids(self, token_ids, segment_ids=None, padding_mask=None):
        """Float32 logits `(1, C)` of one packed example (int arrays `(1, length)`)."""
        return self.outputs_from_token_ids(token_ids, segment_ids, padding_mask)["logits"]

    def logits_from_packed(self, packed):
        """Float32 logits `(N, C)` of packed arrays `(N, length)`, each cut to its length."""
        return self.outputs_from_packed(packed)["logits"]

    def logits(self, texts, texts_pair=None):
        """Float32 logits `(N, C)` of a list of texts (and second texts)."""
        return self.outputs(texts, texts_pair)["logits"]

    def predict_texts(self, texts, texts_pair=None):
        """Dict of `logits` `(N, C)`, `probabilities`, `label` (int) and `label_name`."""
        logits = self.logits(texts, texts_pair)
        label = np.argmax(logits, axis=-1)
        result = {
            "logits": logits,
            "probabilities": softmax(logits).astype(np.float32),
            "label": label,
        }
        if self.labels:
            result["label_name"] = [self.labels[i] for i in label]
        return result
