"""Runs the exported `.tflite` classifiers with the LiteRT interpreter.

    from export.core import litert

    # The string model: text in, prediction out (tensorflow-text's kernels registered).
    classifier = litert.LiteRTClassifier("exported/model_text.tflite")
    classifier.predict_texts(["a charming journey", "bleak and desperate"])

    # The token-id model: texts tokenized here with the project's tokenizer (the vocabulary
    # and lower-casing named by the file's manifest), one interpreter call per text at its
    # own length.
    classifier = litert.LiteRTClassifier("exported/model_dynamic_int8.tflite", num_threads=2)
    classifier.predict_texts(["a charming journey"])["label_name"]

The interpreter is `ai_edge_litert` (LiteRT, the maintained successor of `tflite_runtime`), else
`tflite_runtime`, else `tf.lite`, whichever is installed first in that order.
"""

import json
import os
import threading

import numpy as np

# NumPy only: running a model needs neither TensorFlow nor the tokenizer.
from keras_bert.inputs import INPUT_NAMES
from keras_bert.inputs import trim_to_longest
from keras_bert.tasks.classification import softmax

# The signatures' text input names (as in export/core/graphs.py; not imported from there, which
# needs TensorFlow).
TEXT_INPUT = "text"
TEXT_PAIR_INPUT = "text_pair"

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


class LiteRTClassifier:
    """Predicts from texts or token ids with an exported `.tflite` classifier.

    Args:
        path: str. A `.tflite` file written by `export.tflite`.
        num_threads: int or None. Interpreter threads.
        vocabulary: str or None. For token-id files: a `vocab.txt` (or directory) to tokenize
            with; default: the vocabulary named by the file's manifest.
        labels: list of str or None. Class names; default: the manifest's.
        sequence_length: int or None. Longest packed sequence; default: the manifest's
            `max_seq_length` (128).
        custom_ops: bool or None. Register tensorflow-text's kernels; default: when the
            manifest lists custom ops, or (without a manifest) when the input is a string.

    The string model's signature is `text` (string, `(1,)`) -> `logits`; the token-id
    model's `token_ids`, `segment_ids`, `padding_mask` (int32, `(1, length)`) -> `logits`.
    Texts go through one at a time, each at its own length.

    Thread-safe: a TFLite interpreter is not, so its calls take turns under a lock (for
    parallel throughput, give each thread its own `LiteRTClassifier`). A file that is not
    a readable `.tflite` flatbuffer (truncated, corrupted) raises `ValueError` naming it.
    """

    def __init__(self, path, num_threads=None, vocabulary=None, labels=None,
                 sequence_length=None, custom_ops=None):
        if not os.path.isfile(path):
            raise ValueError(f"`path` ({path!r}) is not a file.")
        self.path = path
        self.manifest = read_manifest(path) or {}
        if custom_ops is None:
            custom_ops = self.manifest.get("custom_ops")
        try:
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
        self.is_string_model = self.input_names == [TEXT_INPUT] or self.input_names == sorted(
            [TEXT_INPUT, TEXT_PAIR_INPUT])
        if not self.is_string_model and self.input_names != sorted(INPUT_NAMES):
            raise ValueError(
                f"{path} takes inputs {self.input_names}; expected {sorted(INPUT_NAMES)} "
                f"or {[TEXT_INPUT]}."
            )
        self.labels = labels or self.manifest.get("labels")
        self.sequence_length = sequence_length or self.manifest.get("max_seq_length", 128)
        self._vocabulary = vocabulary
        self._tokenizer = None
        self._preprocessor = None

    @property
    def tokenizer(self):
        """The project's tokenizer for the file's vocabulary (token-id files)."""
        if self._tokenizer is None:
            import keras_bert  # pylint: disable=import-outside-toplevel

            vocabulary = self._vocabulary
            lower_case = None
            if vocabulary is None:
                entry = self.manifest.get("vocab")
                if not entry:
                    raise ValueError(
                        f"{self.path} has no manifest naming its vocabulary; pass `vocabulary`."
                    )
                vocabulary = os.path.join(os.path.dirname(os.path.abspath(self.path)), entry)
                lower_case = self.manifest.get("lower_case")
            self._tokenizer = keras_bert.load_tokenizer(vocabulary, lower_case=lower_case)
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

    def logits_from_token_ids(self, token_ids, segment_ids=None, padding_mask=None):
        """Float32 logits `(1, C)` of one packed example (int arrays `(1, length)`)."""
        token_ids = np.asarray(token_ids, np.int32).reshape(1, -1)
        if segment_ids is None:
            segment_ids = np.zeros_like(token_ids)
        if padding_mask is None:
            padding_mask = np.ones_like(token_ids)
        feed = {
            "token_ids": token_ids,
            "segment_ids": np.asarray(segment_ids, np.int32).reshape(1, -1),
            "padding_mask": np.asarray(padding_mask, np.int32).reshape(1, -1),
        }
        return self._run(feed)

    def _run(self, feed):
        # The runner resizes the inputs and reads the outputs of one shared interpreter.
        with self._lock:
            return np.array(self.runner(**feed)["logits"], np.float32)

    def logits_from_packed(self, packed):
        """Float32 logits `(N, C)` of packed arrays `(N, length)`, each cut to its length."""
        packed = {name: np.asarray(packed[name]) for name in INPUT_NAMES}
        rows = []
        for i in range(len(packed["padding_mask"])):
            example = trim_to_longest({name: value[i:i + 1] for name, value in packed.items()})
            rows.append(self.logits_from_token_ids(*(example[name] for name in INPUT_NAMES)))
        return np.concatenate(rows, axis=0)

    def logits(self, texts, texts_pair=None):
        """Float32 logits `(N, C)` of a list of texts (and second texts)."""
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
                rows.append(self._run(feed))
            return np.concatenate(rows, axis=0)
        return self.logits_from_packed(self.preprocessor.pack_numpy(texts, texts_pair))

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
