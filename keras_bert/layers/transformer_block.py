"""The transformer encoder block of BERT."""

import keras
import tensorflow as tf
from keras import ops

from keras_bert.layers import fast_ops
from keras_bert.layers import validation
from keras_bert.layers.multi_head_self_attention import (
    MultiHeadSelfAttention,
    sequence_shape,
    split_first_token_spec,
)

ACTIVATIONS = ("gelu", "gelu_approximate", "relu")


def feedforward_activation(name):
    """Returns the activation function for an `activation` name.

    `"gelu"` is the exact erf form used by BERT; `"gelu_approximate"` the tanh
    approximation of Hendrycks & Gimpel (2016) used by some ports.
    """
    if name == "gelu":
        return lambda x: keras.activations.gelu(x, approximate=False)
    if name == "gelu_approximate":
        return lambda x: keras.activations.gelu(x, approximate=True)
    return keras.activations.relu


@keras.saving.register_keras_serializable(package="keras_bert")
class TransformerBlock(keras.layers.Layer):
    """Self-attention and feed-forward sublayers, each with a residual.

    Post-LN (BERT, `norm_first=False`):
        x = LayerNorm(x + Dropout(Attention(x)))
        x = LayerNorm(x + Dropout(Dense(act(Dense(x)))))
    Pre-LN (`norm_first=True`, Xiong et al. 2020):
        x = x + Dropout(Attention(LayerNorm(x)))
        x = x + Dropout(Dense(act(Dense(LayerNorm(x)))))

    Layer normalisation runs in float32 under mixed precision. Inside the
    block every position is one row of a `(batch_size * sequence_length,
    hidden_dim)` matrix, so each dense layer is one 2D matrix product.

    Args:
        num_heads: int. Number of attention heads; must divide the input width.
        intermediate_dim: int. Width of the feed-forward hidden layer.
        dropout: float. Dropout rate after each sublayer. Defaults to `0.1`.
        attention_dropout: float. Dropout rate on attention probabilities.
            Defaults to `0.1`.
        activation: string. `"gelu"` (exact), `"gelu_approximate"` (tanh) or
            `"relu"`. Defaults to `"gelu"`.
        layer_norm_epsilon: float. Defaults to `1e-12`.
        norm_first: bool. Pre-LN instead of BERT's post-LN. Defaults to `False`.
        initializer_range: float. Standard deviation of the truncated normal
            kernel initialiser. Defaults to `0.02`.
        use_dot_product_attention: bool. Attention through
            `keras.ops.dot_product_attention`; needs `attention_dropout=0`.
            Defaults to `False`.
        use_bias: bool. Whether the attention projections and the two
            feed-forward dense layers add a bias (the layer norms keep
            theirs). Defaults to `True`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor of shape `(batch_size, sequence_length, hidden_dim)`.
        padding_mask: tensor of shape `(batch_size, sequence_length)`, 1 for
            real tokens. Optional.
        attention_mask: tensor of shape
            `(batch_size, sequence_length, sequence_length)`. Optional.
        training: bool. Whether dropout is active.
        split_first_token: bool. Return the outputs at position 0 and at
            positions 1.. as two tensors; the first does not depend on the
            queries of the others, so a graph that only uses it (the `[CLS]`
            output of the last block, for a classifier) skips their work.

    Returns:
        A tensor of shape `(batch_size, sequence_length, hidden_dim)`, or with
        `split_first_token=True` a tuple of tensors of shapes
        `(batch_size, 1, hidden_dim)` and
        `(batch_size, sequence_length - 1, hidden_dim)`.

    Example:
    >>> block = TransformerBlock(num_heads=4, intermediate_dim=64)
    >>> block(np.ones((2, 8, 32), "float32")).shape
    (2, 8, 32)

    Reference: Vaswani et al., "Attention Is All You Need", 2017, section 3.1.
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        dropout=0.1,
        attention_dropout=0.1,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        norm_first=False,
        initializer_range=0.02,
        use_dot_product_attention=False,
        use_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validation.check_positive_int("num_heads", num_heads)
        validation.check_bool("use_bias", use_bias)
        validation.check_positive_int("intermediate_dim", intermediate_dim)
        validation.check_rate("dropout", dropout)
        validation.check_rate("attention_dropout", attention_dropout)
        validation.check_choice("activation", activation, ACTIVATIONS)
        validation.check_positive_float("layer_norm_epsilon", layer_norm_epsilon)
        validation.check_positive_float("initializer_range", initializer_range)
        validation.check_bool("norm_first", norm_first)
        validation.check_dot_product_attention(use_dot_product_attention, attention_dropout)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.norm_first = norm_first
        self.initializer_range = initializer_range
        self.use_dot_product_attention = use_dot_product_attention
        self.use_bias = use_bias

        initializer = keras.initializers.TruncatedNormal(stddev=initializer_range)
        self.self_attention_layer = MultiHeadSelfAttention(
            num_heads=num_heads,
            attention_dropout=attention_dropout,
            initializer_range=initializer_range,
            use_dot_product_attention=use_dot_product_attention,
            use_bias=use_bias,
            dtype=self.dtype_policy,
            name="self_attention_layer",
        )
        self.self_attention_dropout = fast_ops.dropout_layer(
            dropout, dtype=self.dtype_policy, name="self_attention_dropout"
        )
        self.self_attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype="float32", name="self_attention_layer_norm"
        )
        self.feedforward_intermediate_dense = keras.layers.Dense(
            intermediate_dim,
            kernel_initializer=initializer,
            use_bias=use_bias,
            dtype=self.dtype_policy,
            name="feedforward_intermediate_dense",
        )
        self._activation_fn = feedforward_activation(activation)
        self.feedforward_output_dense = None  # Built once the width is known.
        self._kernel_initializer = initializer
        self.feedforward_dropout = fast_ops.dropout_layer(
            dropout, dtype=self.dtype_policy, name="feedforward_dropout"
        )
        self.feedforward_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype="float32", name="feedforward_layer_norm"
        )

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        if hidden_dim % self.num_heads != 0:
            raise ValueError(
                f"`hidden_dim` ({hidden_dim}) must be divisible by "
                f"`num_heads` ({self.num_heads})."
            )
        self.feedforward_output_dense = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=self._kernel_initializer,
            use_bias=self.use_bias,
            dtype=self.dtype_policy,
            name="feedforward_output_dense",
        )
        self.self_attention_layer.build(inputs_shape)
        self.self_attention_layer_norm.build(inputs_shape)
        self.feedforward_intermediate_dense.build(inputs_shape)
        self.feedforward_output_dense.build(
            tuple(inputs_shape[:-1]) + (self.intermediate_dim,)
        )
        self.feedforward_layer_norm.build(inputs_shape)
        self.built = True

    def _normalize(self, layer_norm, x):
        return ops.cast(layer_norm(x), self.compute_dtype)

    def _dense(self, layer, rows):
        """`layer`'s kernel and bias applied to (R, input_dim) rows in one 2D product.

        The ops are named under `layer`'s name (`.../feedforward_output_dense/MatMul`), as if
        the layer had been called: the int8 export finds the feed-forward layers by those names.
        """
        with tf.name_scope(layer.name):
            kernel = ops.cast(layer.kernel, self.compute_dtype)
            if layer.bias is None:
                return ops.matmul(rows, kernel)
            # BiasAdd, which oneDNN fuses into the product; its gradient is one kernel.
            return tf.nn.bias_add(
                ops.matmul(rows, kernel), ops.cast(layer.bias, self.compute_dtype)
            )

    def _finish(self, attended, residual, training):
        """Dropout, residual and layer norms after attention, then the feed-forward sublayer.

        `attended` and `residual` are (R, D) rows; returns (R, D).
        """
        x = self.self_attention_dropout(attended, training=training) + residual
        if not self.norm_first:
            x = self._normalize(self.self_attention_layer_norm, x)
        residual = x
        if self.norm_first:
            x = self._normalize(self.feedforward_layer_norm, x)
        x = self._dense(self.feedforward_intermediate_dense, x)
        x = self._activation_fn(x)
        x = self._dense(self.feedforward_output_dense, x)
        x = self.feedforward_dropout(x, training=training) + residual
        if not self.norm_first:
            x = self._normalize(self.feedforward_layer_norm, x)
        return x

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        training=None,
        split_first_token=False,
    ):
        hidden_dim = inputs.shape[-1]
        batch_size, length = ops.shape(inputs)[0], ops.shape(inputs)[1]
        x = inputs
        if self.norm_first:
            x = self._normalize(self.self_attention_layer_norm, x)
        attended = self.self_attention_layer(
            x,
            padding_mask=padding_mask,
            attention_mask=attention_mask,
            training=training,
            split_first_token=split_first_token,
        )
        if not split_first_token:
            # (B, S, D) <-> (B * S, D): free reshapes around 2D products.
            rows = self._finish(
                ops.reshape(attended, (-1, hidden_dim)),
                ops.reshape(inputs, (-1, hidden_dim)),
                training,
            )
            return ops.reshape(rows, sequence_shape(batch_size, length, hidden_dim))
        outputs = []
        for part, residual in zip(attended, (inputs[:, :1, :], inputs[:, 1:, :])):
            rows = self._finish(
                ops.reshape(part, (-1, hidden_dim)),
                ops.reshape(residual, (-1, hidden_dim)),
                training,
            )
            outputs.append(
                ops.reshape(rows, sequence_shape(batch_size, ops.shape(residual)[1], hidden_dim))
            )
        return tuple(outputs)

    def compute_output_spec(
        self, inputs, padding_mask=None, attention_mask=None, training=None, split_first_token=False
    ):
        if split_first_token:
            return split_first_token_spec(inputs, self.compute_dtype)
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "norm_first": self.norm_first,
                "initializer_range": self.initializer_range,
                "use_dot_product_attention": self.use_dot_product_attention,
                "use_bias": self.use_bias,
            }
        )
        return config
