"""BERT's masked-language-model head: a transform, then scores over the vocabulary."""

import keras
from keras import ops

from keras_bert.layers import validation
from keras_bert.layers.transformer_block import ACTIVATIONS, feedforward_activation


@keras.saving.register_keras_serializable(package="keras_bert")
class MaskedLMHead(keras.layers.Layer):
    """Predicts the original tokens at the masked positions of a sequence.

    Only the `num_predictions` masked positions are scored, never the whole
    sequence: the hidden states there are gathered, transformed by a dense
    layer with `activation` and a layer normalisation, then multiplied by the
    transposed token embedding table and shifted by a per-token output bias
    (Devlin et al. 2018, google-research/bert `get_masked_lm_output`):

        h = LayerNorm(act(Dense(gather(sequence_output, masked_positions))))
        logits = h @ token_embedding.T + mlm_output_bias

    The output projection is tied to `token_embedding`, the encoder's
    `(vocabulary_size, embedding_dim)` table, which is passed in and not
    serialized: a model holding this layer passes its encoder's table again
    when it is rebuilt from its config. Without `token_embedding` (e.g. a
    layer rebuilt alone from its config) the layer owns an untied
    `(vocabulary_size, hidden_dim)` output table instead.

    The layer normalisation runs in float32 under mixed precision; the
    logits are in the compute dtype (cast them to float32 for the loss).

    Args:
        vocabulary_size: int. Number of token ids scored.
        token_embedding: `keras.layers.Embedding` or None. The tied table;
            its `input_dim` must equal `vocabulary_size`. Defaults to `None`
            (an untied table of the layer's own).
        activation: string. `"gelu"` (exact), `"gelu_approximate"` or
            `"relu"`. Defaults to `"gelu"`.
        layer_norm_epsilon: float. Defaults to `1e-12`.
        initializer_range: float. Standard deviation of the truncated normal
            kernel initialiser. Defaults to `0.02`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor of shape `(batch_size, sequence_length, hidden_dim)`,
            the encoder's `sequence_output`.
        masked_positions: int tensor of shape `(batch_size, num_predictions)`,
            indices into the sequence axis (padding entries may be any valid
            index, e.g. 0, and are ignored by weighting the loss).

    Returns:
        Logits of shape `(batch_size, num_predictions, vocabulary_size)`.

    Example:
    >>> encoder = BertEncoder.from_preset("bert_tiny", vocabulary_size=100)
    >>> head = MaskedLMHead(100, token_embedding=encoder.token_embedding)
    >>> sequence = np.ones((2, 16, 128), "float32")
    >>> head(sequence, masked_positions=np.array([[1, 5], [2, 0]])).shape
    (2, 2, 100)

    Reference: Devlin et al., "BERT: Pre-training of Deep Bidirectional
    Transformers for Language Understanding", 2018, section 3.1 (task 1).
    """

    def __init__(
        self,
        vocabulary_size,
        token_embedding=None,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validation.check_positive_int("vocabulary_size", vocabulary_size)
        validation.check_choice("activation", activation, ACTIVATIONS)
        validation.check_positive_float("layer_norm_epsilon", layer_norm_epsilon)
        validation.check_positive_float("initializer_range", initializer_range)
        if token_embedding is not None:
            if not isinstance(token_embedding, keras.layers.Embedding):
                raise ValueError(
                    "`token_embedding` must be a `keras.layers.Embedding` or None, "
                    f"received {type(token_embedding).__name__}."
                )
            if token_embedding.input_dim != vocabulary_size:
                raise ValueError(
                    f"`token_embedding` has {token_embedding.input_dim} rows but "
                    f"`vocabulary_size` is {vocabulary_size}."
                )
        self.vocabulary_size = vocabulary_size
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        # Set past Keras's attribute tracking: the table belongs to the
        # encoder, so it must not count (or save) as a weight of this layer.
        object.__setattr__(self, "_token_embedding", token_embedding)
        self._activation_fn = feedforward_activation(activation)
        self.mlm_transform_dense = None  # Built once the width is known.
        self.mlm_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype="float32", name="mlm_layer_norm"
        )

    @property
    def token_embedding(self):
        """The tied `keras.layers.Embedding`, or None for an untied table."""
        return self._token_embedding

    def build(self, inputs_shape, masked_positions_shape=None):
        hidden_dim = inputs_shape[-1]
        # The transform maps to the table's width, which is smaller than
        # `hidden_dim` for factorised (ALBERT-style) embeddings.
        if self._token_embedding is not None:
            output_dim = self._token_embedding.output_dim
        else:
            output_dim = hidden_dim
        self.mlm_transform_dense = keras.layers.Dense(
            output_dim,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_range),
            dtype=self.dtype_policy,
            name="mlm_transform_dense",
        )
        gathered_shape = (inputs_shape[0], None, hidden_dim)
        self.mlm_transform_dense.build(gathered_shape)
        self.mlm_layer_norm.build((inputs_shape[0], None, output_dim))
        self.output_embeddings = None
        if self._token_embedding is None:
            self.output_embeddings = self.add_weight(
                name="output_embeddings",
                shape=(self.vocabulary_size, output_dim),
                initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_range),
            )
        self.mlm_output_bias = self.add_weight(
            name="mlm_output_bias", shape=(self.vocabulary_size,), initializer="zeros"
        )
        self.built = True

    def _embedding_table(self):
        if self._token_embedding is not None:
            return self._token_embedding.embeddings
        return self.output_embeddings

    def call(self, inputs, masked_positions):
        masked_positions = ops.cast(masked_positions, "int32")
        # (batch_size, sequence_length, hidden_dim) ->
        # (batch_size, num_predictions, hidden_dim)
        gathered = ops.take_along_axis(inputs, masked_positions[:, :, None], axis=1)
        x = self._activation_fn(self.mlm_transform_dense(gathered))
        x = ops.cast(self.mlm_layer_norm(x), self.compute_dtype)
        table = ops.cast(self._embedding_table(), self.compute_dtype)
        # (batch_size, num_predictions, table_dim) x (vocabulary_size, table_dim)
        # -> (batch_size, num_predictions, vocabulary_size)
        logits = ops.einsum("bpd,vd->bpv", x, table)
        return logits + ops.cast(self.mlm_output_bias, self.compute_dtype)

    def compute_output_shape(self, inputs_shape, masked_positions_shape):
        return (inputs_shape[0], masked_positions_shape[1], self.vocabulary_size)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "initializer_range": self.initializer_range,
            }
        )
        return config
