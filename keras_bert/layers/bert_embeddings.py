"""Token, position and segment embeddings of BERT."""

import math

import keras
from keras import ops

from keras_bert.layers import fast_ops
from keras_bert.layers import validation

POSITION_EMBEDDING_TYPES = ("learned", "sinusoidal")


def sinusoidal_position_encoding(sequence_length, dim, dtype="float32"):
    """Fixed sinusoidal encoding of Vaswani et al. (2017), section 3.5.

    `PE(pos, 2i) = sin(pos / 10000^(2i/dim))`, `PE(pos, 2i+1) = cos(...)`,
    interleaved so that even channels hold sines and odd channels cosines.

    Args:
        sequence_length: int or scalar tensor. Number of positions.
        dim: int. Width of the encoding.
        dtype: string. Output dtype.

    Returns:
        A tensor of shape `(sequence_length, dim)`.
    """
    positions = ops.cast(ops.arange(sequence_length), "float32")[:, None]
    channel_pairs = ops.cast(ops.arange(dim) // 2, "float32")
    inverse_frequency = ops.exp(channel_pairs * (-2.0 * math.log(10000.0) / dim))
    angles = positions * inverse_frequency[None, :]
    is_even = ops.equal(ops.arange(dim) % 2, 0)
    encoding = ops.where(is_even[None, :], ops.sin(angles), ops.cos(angles))
    return ops.cast(encoding, dtype)


@keras.saving.register_keras_serializable(package="keras_bert")
class BertEmbeddings(keras.layers.Layer):
    """Sums token, position and segment embeddings, then normalises them.

    `e = LayerNorm(token_embedding[token_ids] + position_embedding[0..S) +
    segment_embedding[segment_ids])`, followed by dropout and, when
    `embedding_dim` is smaller than `hidden_dim` (ALBERT-style factorised
    embeddings), a dense projection to `hidden_dim`. Position embeddings are a
    learned table of `max_sequence_length` rows, or the fixed sinusoidal
    encoding of Vaswani et al. (2017) with no weights.

    Args:
        vocabulary_size: int. Number of token ids.
        hidden_dim: int. Width of the output.
        max_sequence_length: int. Longest sequence the position table covers.
            Defaults to `512`.
        num_segments: int. Number of segment ids. Defaults to `2`.
        embedding_dim: int or None. Width of the embedding tables; `None` means
            `hidden_dim`. Must not exceed `hidden_dim`. Defaults to `None`.
        position_embedding: string. `"learned"` or `"sinusoidal"`. Defaults to
            `"learned"`.
        dropout: float. Dropout rate after normalisation. Defaults to `0.1`.
        layer_norm_epsilon: float. Epsilon of the layer normalisation.
            Defaults to `1e-12`.
        layer_norm: bool. Whether the summed embeddings are layer-normalised
            (BERT's are; without it they are only cast and dropped out).
            Defaults to `True`.
        initializer_range: float. Standard deviation of the truncated normal
            initialiser. Defaults to `0.02`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        token_ids: int tensor of shape `(batch_size, sequence_length)`.
        segment_ids: int tensor of shape `(batch_size, sequence_length)`, or
            `None` for all zeros.
        training: bool. Whether dropout is active.

    Returns:
        A float tensor of shape `(batch_size, sequence_length, hidden_dim)`.

    Example:
    >>> layer = BertEmbeddings(vocabulary_size=100, hidden_dim=16)
    >>> layer(np.ones((2, 8), "int32"), np.zeros((2, 8), "int32")).shape
    (2, 8, 16)

    Reference: Devlin et al., "BERT", 2018, section 3 and figure 2.
    """

    def __init__(
        self,
        vocabulary_size,
        hidden_dim,
        max_sequence_length=512,
        num_segments=2,
        embedding_dim=None,
        position_embedding="learned",
        dropout=0.1,
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        layer_norm=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validation.check_positive_int("vocabulary_size", vocabulary_size)
        validation.check_bool("layer_norm", layer_norm)
        validation.check_positive_int("hidden_dim", hidden_dim)
        validation.check_positive_int("max_sequence_length", max_sequence_length)
        validation.check_positive_int("num_segments", num_segments)
        if embedding_dim is not None:
            validation.check_positive_int("embedding_dim", embedding_dim)
            if embedding_dim > hidden_dim:
                raise ValueError(
                    f"`embedding_dim` ({embedding_dim}) must not exceed "
                    f"`hidden_dim` ({hidden_dim})."
                )
        if position_embedding not in POSITION_EMBEDDING_TYPES:
            raise ValueError(
                f"`position_embedding` must be one of {POSITION_EMBEDDING_TYPES}, "
                f"received {position_embedding!r}."
            )
        validation.check_rate("dropout", dropout)
        validation.check_positive_float("layer_norm_epsilon", layer_norm_epsilon)
        validation.check_positive_float("initializer_range", initializer_range)

        self.vocabulary_size = vocabulary_size
        self.hidden_dim = hidden_dim
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.embedding_dim = embedding_dim
        self.position_embedding = position_embedding
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.layer_norm = layer_norm

        table_dim = embedding_dim or hidden_dim
        self.table_dim = table_dim
        # The tables are read and summed in their variable dtype (float32
        # under mixed precision), like the layer norm after them: gathering
        # rows and casting the (batch, length, dim) result is cheaper than
        # casting a whole 30522-row table every step, and the sum keeps full
        # precision. The output is cast to the compute dtype.
        table_dtype = self.dtype_policy.variable_dtype
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size,
            table_dim,
            embeddings_initializer=self._initializer(),
            dtype=table_dtype,
            name="token_embedding",
        )
        self.segment_embedding = keras.layers.Embedding(
            num_segments,
            table_dim,
            embeddings_initializer=self._initializer(),
            dtype=table_dtype,
            name="segment_embedding",
        )
        self.embeddings_layer_norm = None
        if layer_norm:
            self.embeddings_layer_norm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype="float32", name="embeddings_layer_norm"
            )
        self.embeddings_dropout = fast_ops.dropout_layer(
            dropout, dtype=self.dtype_policy, name="embeddings_dropout"
        )
        self.embedding_projection = None
        if table_dim != hidden_dim:
            self.embedding_projection = keras.layers.Dense(
                hidden_dim,
                kernel_initializer=self._initializer(),
                dtype=self.dtype_policy,
                name="embedding_projection",
            )

    def _initializer(self):
        return keras.initializers.TruncatedNormal(stddev=self.initializer_range)

    def build(self, token_ids_shape, segment_ids_shape=None):
        self.token_embedding.build(token_ids_shape)
        self.segment_embedding.build(token_ids_shape)
        self.position_embeddings = None
        if self.position_embedding == "learned":
            self.position_embeddings = self.add_weight(
                name="position_embeddings",
                shape=(self.max_sequence_length, self.table_dim),
                initializer=self._initializer(),
                autocast=False,
            )
        if self.embeddings_layer_norm is not None:
            self.embeddings_layer_norm.build(tuple(token_ids_shape) + (self.table_dim,))
        if self.embedding_projection is not None:
            self.embedding_projection.build(tuple(token_ids_shape) + (self.table_dim,))
        self.built = True

    def call(self, token_ids, segment_ids=None, training=None):
        if segment_ids is None:
            segment_ids = ops.zeros_like(token_ids)
        static_length = token_ids.shape[1]
        if static_length is not None and static_length > self.max_sequence_length:
            raise ValueError(
                f"`token_ids` has sequence length {static_length}, longer than "
                f"`max_sequence_length` ({self.max_sequence_length})."
            )
        sequence_length = ops.shape(token_ids)[1]
        # (batch_size, sequence_length, table_dim)
        embeddings = self.token_embedding(token_ids)
        embeddings = embeddings + self.segment_embedding(segment_ids)
        if self.position_embedding == "learned":
            positions = ops.slice(
                ops.convert_to_tensor(self.position_embeddings),
                (0, 0),
                (sequence_length, self.table_dim),
            )
        else:
            positions = sinusoidal_position_encoding(sequence_length, self.table_dim)
        embeddings = embeddings + ops.cast(positions, embeddings.dtype)[None, :, :]
        if self.embeddings_layer_norm is not None:
            embeddings = self.embeddings_layer_norm(embeddings)
        embeddings = ops.cast(embeddings, self.compute_dtype)
        embeddings = self.embeddings_dropout(embeddings, training=training)
        if self.embedding_projection is not None:
            embeddings = self.embedding_projection(embeddings)
        return embeddings

    def compute_output_shape(self, token_ids_shape, segment_ids_shape=None):
        return tuple(token_ids_shape) + (self.hidden_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "hidden_dim": self.hidden_dim,
                "max_sequence_length": self.max_sequence_length,
                "num_segments": self.num_segments,
                "embedding_dim": self.embedding_dim,
                "position_embedding": self.position_embedding,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "initializer_range": self.initializer_range,
                "layer_norm": self.layer_norm,
            }
        )
        return config
