"""Sentence embeddings straight from a pretrained checkpoint: no fine-tuning, one vector a text.

A text-embedding model directory holds a `keras_bert.models.BertTextEmbedder` (the checkpoint's
encoder, mean or `[CLS]` pooling, optional L2 normalisation) in the layout of
`keras_bert.models.model_dir`, written by `write_model_dir`; `training.predict --model_dir`
and the exporters then handle it like a fine-tuned directory. The defaults are what
sentence-transformers does for all-MiniLM-L6-v2: texts cut to 256 word pieces (special tokens
included), mean over the real tokens, L2-normalised.

    from keras_bert.tasks import text_embedding
    text_embedding.write_model_dir("../shared/models/all-MiniLM-L6-v2", "/tmp/minilm_embedder")
    # python -m training.predict --model_dir=/tmp/minilm_embedder "A cat sleeps."
"""

import os

import numpy as np

from keras_bert.tasks.classification import read_examples
from keras_bert.tasks.task import CHECK_TEXTS
from keras_bert.tasks.task import ServingSpec
from keras_bert.tasks.task import Task

# sentence-transformers' `max_seq_length` of all-MiniLM-L6-v2 (its model card: "input text
# longer than 256 word pieces is truncated").
DEFAULT_SEQUENCE_LENGTH = 256
# The column of the texts in an evaluation TSV (SST-2's).
TEXT_COLUMN = "sentence"


class TextEmbeddingTask(Task):
    """Sentence embeddings: `BertTextEmbedder` over the texts packed as `[CLS] text [SEP]`.

    Not fine-tuned: the model directory is written from a checkpoint by `write_model_dir`.

    Args:
        sequence_length: int. The packed length (longer texts are truncated). Defaults to
            `256`.
        pooling: str. `"mean"` (over real tokens) or `"cls"`. Defaults to `"mean"`.
        normalize: bool. L2-normalise the embeddings. Defaults to `True`.
    """

    name = "text_embedding"
    has_labels = False
    default_sequence_length = DEFAULT_SEQUENCE_LENGTH
    sequence_outputs = False

    def __init__(self, sequence_length=DEFAULT_SEQUENCE_LENGTH, pooling="mean", normalize=True):
        from keras_bert.models.bert_text_embedder import POOLINGS

        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}, received {pooling!r}.")
        if not isinstance(normalize, bool):
            raise ValueError(f"`normalize` must be a bool, received {normalize!r}.")
        self.sequence_length = sequence_length
        self.pooling = pooling
        self.normalize = normalize

    def build_preprocessor(self, tokenizer):
        """The single-text `TextClassifierPreprocessor` packing to `sequence_length`."""
        from keras_bert.text import TextClassifierPreprocessor

        return TextClassifierPreprocessor(tokenizer, sequence_length=self.sequence_length)

    def build_model(self, encoder, labels=None):
        """The `BertTextEmbedder` of `encoder` with this task's pooling (`labels` unused)."""
        from keras_bert.models import BertTextEmbedder

        return BertTextEmbedder(encoder, pooling=self.pooling, normalize=self.normalize)

    def read(self, path, tokenizer, labels=None, is_training=False):
        raise ValueError(
            f"Task {self.name!r} is not fine-tuned: write its model directory from a "
            "checkpoint (`keras_bert.tasks.text_embedding.write_model_dir`, or the exporters' "
            "`--init=CHECKPOINT --task=text_embedding`)."
        )

    def labels(self, train_data):
        return []

    def inference_config(self):
        return {"pooling": self.pooling, "normalize": self.normalize,
                "text_column": TEXT_COLUMN}

    # === Prediction and serving ===

    def embed(self, model, preprocessor, texts, batch_size=64):
        """float32 `(len(texts), hidden_dim)` embeddings of a list of str."""
        from keras_bert.inputs import predict

        inputs = preprocessor.pack_numpy(list(texts))
        return np.asarray(predict(model, inputs, batch_size), np.float32)

    def predict_texts(self, model_dir, lines, batch_size=64):
        """One dict per line: `embedding`, a list of `hidden_dim` floats."""
        embeddings = self.embed(model_dir.load_model(), model_dir.preprocessor, lines, batch_size)
        return [{"embedding": row.tolist()} for row in embeddings]

    def format_result(self, result):
        """The embedding's numbers, separated by spaces."""
        return " ".join(f"{value:.6g}" for value in result["embedding"])

    @property
    def serving(self):
        """Text signature `text` -> `embedding` (float32 `(batch_size, hidden_dim)`); the
        token-id signature gives the same `embedding`."""
        return ServingSpec(
            text_inputs=("text",),
            outputs=self.serving_outputs,
            numeric_outputs=("embedding",),
            read_inputs=self.serving_inputs,
            check=self.check_serving,
        )

    def serving_outputs(self, embedding, labels):
        del labels  # an embedder has none
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        return {"embedding": tf.cast(embedding, tf.float32)}

    def serving_inputs(self, model_dir, path=None, limit=None):
        """`{"text": texts}`: the `sentence` column of a TSV/CSV/JSONL file, or
        `CHECK_TEXTS`."""
        if path is None:
            return {"text": list(CHECK_TEXTS)[:limit]}
        column = model_dir.text_column or TEXT_COLUMN
        examples = read_examples(path, column, require_labels=False)
        return {"text": examples.texts[:limit]}

    def check_serving(self, model_dir, inputs, outputs, max_abs_diff):
        """The served embeddings against `predict_texts`': largest difference, least cosine."""
        expected = self.embed(model_dir.load_model(), model_dir.preprocessor, inputs["text"])
        served = np.asarray(outputs["embedding"], np.float32)
        if served.shape != expected.shape:
            return {"passed": False,
                    "error": f"embedding shape {served.shape}, expected {expected.shape}"}
        diff = float(np.abs(served - expected).max()) if served.size else 0.0
        norms = np.linalg.norm(served, axis=1) * np.linalg.norm(expected, axis=1)
        cosine = (served * expected).sum(axis=1) / np.maximum(norms, 1e-12)
        min_cosine = float(cosine.min()) if cosine.size else 1.0
        return {
            "max_abs_diff": diff,
            "min_cosine": min_cosine,
            "passed": bool(diff <= max_abs_diff),
        }


def write_model_dir(init, directory, pooling="mean", normalize=True, sequence_length=None):
    """Writes a text-embedding model directory from a pretrained checkpoint.

    The directory has the layout of `keras_bert.models.model_dir` (`model.keras` holding a
    `BertTextEmbedder`, `label_map.json` `{"task": "text_embedding"}`, `tokenizer/`, and
    `finetune_config.json` with the packed length, `pooling`, `normalize` and `init`), so
    that `load_model_dir`, `training.predict` and the exporters read it like a fine-tuned one.

    Args:
        init: str. A checkpoint `keras_bert.load_encoder` and `keras_bert.load_tokenizer`
            read (a Hugging Face or Google BERT directory).
        directory: str. The model directory to write (created if missing).
        pooling: str. `"mean"` or `"cls"`. Defaults to `"mean"`.
        normalize: bool. L2-normalise the embeddings. Defaults to `True`.
        sequence_length: int or None. The packed length; None: `256` (sentence-transformers'
            for all-MiniLM-L6-v2), or the encoder's `max_sequence_length` if shorter.

    Returns:
        str. The model directory (absolute).

    Raises:
        ValueError: naming the argument for a bad `pooling`, `normalize` or
            `sequence_length`, or naming `init` when it is no checkpoint.
    """
    import keras_bert  # pylint: disable=import-outside-toplevel
    # pylint: disable-next=import-outside-toplevel
    from keras_bert.models import model_dir as model_dir_lib

    task = TextEmbeddingTask(pooling=pooling, normalize=normalize)
    if sequence_length is not None and (
        isinstance(sequence_length, bool) or not isinstance(sequence_length, int)
        or sequence_length < 3
    ):
        raise ValueError(f"`sequence_length` must be an int >= 3, received {sequence_length!r}.")
    encoder = keras_bert.load_encoder(init, dropout=0.0)
    tokenizer = keras_bert.load_tokenizer(init)
    if sequence_length is None:
        sequence_length = min(DEFAULT_SEQUENCE_LENGTH, encoder.max_sequence_length)
    if sequence_length > encoder.max_sequence_length:
        raise ValueError(
            f"`sequence_length` ({sequence_length}) must not exceed the checkpoint's "
            f"`max_sequence_length` ({encoder.max_sequence_length})."
        )
    task.sequence_length = sequence_length
    directory = os.path.abspath(os.fspath(directory))
    config = {
        "task": task.name,
        model_dir_lib.SEQUENCE_LENGTH_KEY: sequence_length,
        "init": os.path.abspath(os.fspath(init)),
        **task.inference_config(),
    }
    model_dir_lib.write_assets(directory, task.name, [], tokenizer, config)
    model_dir_lib.save_model(
        task.build_model(encoder), os.path.join(directory, model_dir_lib.MODEL_FILE)
    )
    model_dir_lib.write_json(os.path.join(directory, model_dir_lib.METRICS_FILE), {})
    return directory
