"""Sentence embeddings: the encoder's token vectors pooled into one (normalised) vector."""

import keras
from keras import ops

from keras_bert.inputs import INPUT_NAMES
from keras_bert.layers import validation

POOLINGS = ("mean", "cls")
# Floors of the divisions, as sentence-transformers clamps them: a row with no real token
# pools to zeros (not NaN), and a zero vector stays zero when normalised.
_MIN_TOKEN_COUNT = 1e-9
_MIN_NORM = 1e-12


@keras.saving.register_keras_serializable(package="keras_bert")
class BertTextEmbedder(keras.Model):
    """A `BertEncoder` whose token vectors are pooled into one sentence embedding.

    `pooling="mean"` averages `sequence_output` over the real tokens (`padding_mask` 1;
    `[CLS]` and `[SEP]` included, as sentence-transformers does); `pooling="cls"` takes the
    `[CLS]` position's vector (before BERT's tanh pooler). With `normalize`, the vector is
    divided by its L2 norm (floored at `1e-12`), so that a dot product is a cosine. This is
    how all-MiniLM-L6-v2 and other sentence-transformers models embed text. The pooling runs
    in float32 under mixed precision, with only ops TFLite has builtin kernels for (sums, a
    square root, a maximum, a division).

    Args:
        encoder: `keras_bert.BertEncoder`.
        pooling: str. `"mean"` (over real tokens) or `"cls"`. Defaults to `"mean"`.
        normalize: bool. L2-normalise the embedding. Defaults to `True`.

    Inputs: the encoder's dict of int32 tensors `token_ids`, `segment_ids`,
    `padding_mask`, each `(batch_size, sequence_length)`.

    Outputs: float32 `embedding` of shape `(batch_size, hidden_dim)`.

    Example:
    >>> embedder = BertTextEmbedder(keras_bert.load_encoder("all-MiniLM-L6-v2"))
    >>> preprocessor = TextClassifierPreprocessor(tokenizer, sequence_length=256)
    >>> embeddings = embedder.predict(preprocessor.pack_numpy(["A cat.", "A dog."]))
    >>> float(embeddings[0] @ embeddings[1])  # cosine similarity

    Reference: Reimers and Gurevych, "Sentence-BERT: Sentence Embeddings using Siamese
    BERT-Networks", 2019.
    """

    def __init__(self, encoder, pooling="mean", normalize=True, **kwargs):
        validation.check_choice("pooling", pooling, POOLINGS)
        validation.check_bool("normalize", normalize)

        # === Layers ===
        pool = _SentencePooling(pooling, normalize, dtype="float32", name="embedding")

        # === Functional Model ===
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in INPUT_NAMES
        }
        sequence_output = encoder(inputs)["sequence_output"]
        # (batch_size, sequence_length, hidden_dim) -> (batch_size, hidden_dim)
        embedding = pool(sequence_output, inputs["padding_mask"])
        super().__init__(inputs=inputs, outputs=embedding, **kwargs)

        # === Config ===
        self.encoder = encoder
        self.pooling = pooling
        self.normalize = normalize

    @property
    def hidden_dim(self):
        """int. Width of the embedding (the encoder's `hidden_dim`)."""
        return self.encoder.hidden_dim

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "pooling": self.pooling,
            "normalize": self.normalize,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("encoder"), dict):
            config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_bert")
class _SentencePooling(keras.layers.Layer):
    """Token vectors `(batch_size, sequence_length, hidden_dim)` -> `(batch_size, hidden_dim)`.

    Mean over the positions where `padding_mask` is 1 (a row without any counts as one
    token, giving zeros), or the first (`[CLS]`) position; then, with `normalize`, division
    by the L2 norm floored at `1e-12` (not `tf.math.l2_normalize`, whose `rsqrt` of a
    clamped square would round differently from sentence-transformers' `x / max(|x|, eps)`).

    Args:
        pooling: str. `"mean"` or `"cls"`.
        normalize: bool. L2-normalise the pooled vector.
    """

    def __init__(self, pooling="mean", normalize=True, **kwargs):
        validation.check_choice("pooling", pooling, POOLINGS)
        validation.check_bool("normalize", normalize)
        super().__init__(**kwargs)
        self.pooling = pooling
        self.normalize = normalize

    def call(self, sequence_output, padding_mask):
        sequence_output = ops.cast(sequence_output, self.compute_dtype)
        if self.pooling == "cls":
            pooled = sequence_output[:, 0, :]
        else:
            # (batch_size, sequence_length) -> (batch_size, sequence_length, 1)
            weights = ops.expand_dims(ops.cast(padding_mask, self.compute_dtype), -1)
            total = ops.sum(sequence_output * weights, axis=1)
            count = ops.maximum(ops.sum(weights, axis=1), _MIN_TOKEN_COUNT)  # (batch_size, 1)
            pooled = total / count
        if self.normalize:
            norm = ops.sqrt(ops.sum(ops.square(pooled), axis=-1, keepdims=True))
            pooled = pooled / ops.maximum(norm, _MIN_NORM)
        return pooled

    def compute_output_shape(self, sequence_output_shape, padding_mask_shape):
        return (sequence_output_shape[0], sequence_output_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update({"pooling": self.pooling, "normalize": self.normalize})
        return config
