"""Multi-head scaled dot-product self-attention."""

import math

import keras
import tensorflow as tf
from keras import ops

from keras_bert.layers import fast_ops
from keras_bert.layers import validation

# Added to the scores of masked positions before the softmax. Finite, so that a
# row in which every position is masked gives a uniform distribution, not NaN.
_MASKED_SCORE = -1e9


@keras.saving.register_keras_serializable(package="keras_bert")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Multi-head scaled dot-product attention of a sequence over itself.

    Queries, keys and values are projections of the same input. The hidden
    width is split into `num_heads` heads of `hidden_dim // num_heads`
    channels (BERT-base: 768 = 12 x 64); each head computes
    `softmax(Q K^T / sqrt(head_dim)) V`, the heads are concatenated and
    projected back to `hidden_dim`.

    Each projection kernel has shape `(hidden_dim, num_heads, head_dim)` (the
    layout the checkpoint importers fill). The projections run as single 2D
    matrix products over all `batch_size * sequence_length` rows, the layout
    oneDNN multiplies fastest on CPU, with the `1 / sqrt(head_dim)` scale
    folded into the query kernel, which is smaller than the scores.

    Masking: a key position `j` is ignored by query `i` when
    `attention_mask[b, i, j]` (or `padding_mask[b, j]`) is 0. Masked scores
    get a large finite negative value, so a row with every position masked
    yields a uniform distribution instead of NaN. The softmax runs in float32
    under mixed precision.

    Shape legend: B = batch, S = query positions, T = key positions,
    N = heads, H = head size, D = hidden_dim.

    Args:
        num_heads: int. Number of attention heads.
        attention_dropout: float. Dropout rate on the attention
            probabilities. Defaults to `0.1`.
        initializer_range: float. Standard deviation of the truncated normal
            kernel initialiser. Defaults to `0.02`.
        use_dot_product_attention: bool. Compute the attention itself with
            `keras.ops.dot_product_attention`, the fused kernel of the backend
            where it has one. It has no dropout on the probabilities, so it
            needs `attention_dropout=0`. Defaults to `False`.
        use_bias: bool. Whether the query, key, value and output projections
            add a bias (BERT's do; budget recipes drop them). Defaults to
            `True`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor of shape `(batch_size, sequence_length, hidden_dim)`.
        padding_mask: int or bool tensor of shape
            `(batch_size, sequence_length)`; 1 marks real tokens. Optional.
        attention_mask: int or bool tensor of shape
            `(batch_size, sequence_length, sequence_length)`. Optional; combined
            with `padding_mask` when both are given.
        return_attention_scores: bool. Also return the probabilities (always
            computed explicitly, also with `use_dot_product_attention`).
        training: bool. Whether dropout is active.
        split_first_token: bool. Return the output at position 0 and the
            outputs at positions 1.. as two tensors. Keys and values are
            shared, but the first output does not depend on the other
            queries, so a graph that only uses it (a `[CLS]` classifier)
            skips their work.

    Returns:
        A tensor of shape `(batch_size, sequence_length, hidden_dim)` and, with
        `return_attention_scores=True`, the attention probabilities of shape
        `(batch_size, num_heads, sequence_length, sequence_length)`. With
        `split_first_token=True`, a tuple of tensors of shapes
        `(batch_size, 1, hidden_dim)` and
        `(batch_size, sequence_length - 1, hidden_dim)`.

    Example:
    >>> layer = MultiHeadSelfAttention(num_heads=4)
    >>> layer(np.ones((2, 8, 32), "float32")).shape
    (2, 8, 32)

    Reference: Vaswani et al., "Attention Is All You Need", 2017, section 3.2.
    """

    def __init__(
        self,
        num_heads,
        attention_dropout=0.1,
        initializer_range=0.02,
        use_dot_product_attention=False,
        use_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validation.check_positive_int("num_heads", num_heads)
        validation.check_bool("use_bias", use_bias)
        validation.check_rate("attention_dropout", attention_dropout)
        validation.check_positive_float("initializer_range", initializer_range)
        validation.check_dot_product_attention(use_dot_product_attention, attention_dropout)
        self.num_heads = num_heads
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.use_dot_product_attention = use_dot_product_attention
        self.use_bias = use_bias
        self.attention_probabilities_dropout = fast_ops.dropout_layer(
            attention_dropout, dtype=self.dtype_policy, name="attention_dropout"
        )

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        if hidden_dim is None:
            raise ValueError("The last axis of `inputs` (hidden_dim) must be known.")
        if hidden_dim % self.num_heads != 0:
            raise ValueError(
                f"`hidden_dim` ({hidden_dim}) must be divisible by "
                f"`num_heads` ({self.num_heads})."
            )
        self.hidden_dim = hidden_dim
        self.head_dim = hidden_dim // self.num_heads
        initializer = keras.initializers.TruncatedNormal(stddev=self.initializer_range)
        for projection in ("query", "key", "value"):
            kernel = self.add_weight(
                name=f"{projection}_kernel",
                shape=(hidden_dim, self.num_heads, self.head_dim),
                initializer=initializer,
            )
            bias = None
            if self.use_bias:
                bias = self.add_weight(
                    name=f"{projection}_bias",
                    shape=(self.num_heads, self.head_dim),
                    initializer="zeros",
                )
            setattr(self, f"{projection}_kernel", kernel)
            setattr(self, f"{projection}_bias", bias)
        self.output_kernel = self.add_weight(
            name="output_kernel",
            shape=(self.num_heads, self.head_dim, hidden_dim),
            initializer=initializer,
        )
        self.output_bias = None
        if self.use_bias:
            self.output_bias = self.add_weight(
                name="output_bias", shape=(hidden_dim,), initializer="zeros"
            )
        self.built = True

    def _combined_mask(self, padding_mask, attention_mask):
        """Returns a bool mask broadcastable to (B, N, S, T), or None."""
        mask = None
        if padding_mask is not None:
            # (B, T) -> (B, 1, 1, T). expand_dims, not `[:, None, None, :]`:
            # TFLite's builtin StridedSlice rejects new axes with a dynamic batch.
            mask = ops.expand_dims(ops.expand_dims(ops.cast(padding_mask, "bool"), 1), 1)
        if attention_mask is not None:
            # (B, S, T) -> (B, 1, S, T)
            full = ops.expand_dims(ops.cast(attention_mask, "bool"), 1)
            mask = full if mask is None else ops.logical_and(mask, full)
        return mask

    def _project(self, rows, projection, scale=None):
        """(R, D) rows -> (R, N * H) with projection `query`, `key` or `value`."""
        width = self.num_heads * self.head_dim
        # (D, N, H) -> (D, N * H) and (N, H) -> (N * H,): free reshapes.
        kernel = ops.reshape(
            ops.cast(getattr(self, f"{projection}_kernel"), self.compute_dtype),
            (self.hidden_dim, width),
        )
        if scale is not None:
            kernel = kernel * ops.cast(scale, self.compute_dtype)
        projected = ops.matmul(rows, kernel)
        if not self.use_bias:
            return projected
        bias = ops.reshape(
            ops.cast(getattr(self, f"{projection}_bias"), self.compute_dtype), (width,)
        )
        if scale is not None:
            bias = bias * ops.cast(scale, self.compute_dtype)
        # BiasAdd (not a broadcast add) lets oneDNN fuse it into the product,
        # and its gradient is one reduction kernel.
        return tf.nn.bias_add(projected, bias)

    def _split_heads(self, projected, batch_size, length):
        """(B * S, N * H) -> (B, N, S, H) for the batched products."""
        heads = ops.reshape(
            projected, sequence_shape(batch_size, length, self.num_heads, self.head_dim)
        )
        return ops.transpose(heads, (0, 2, 1, 3))

    def _attend(self, query, key, value, mask, training, return_probabilities=False):
        """Scaled query (B, N, S, H), key and value (B, N, T, H) -> (B, S, N * H)."""
        # (B, N, S, H) x (B, N, T, H)^T -> (B, N, S, T); transpose_b reads the
        # key transposed inside the product instead of copying it.
        scores = ops.cast(tf.matmul(query, key, transpose_b=True), "float32")
        if mask is not None:
            scores = ops.where(mask, scores, _MASKED_SCORE)
        probabilities = ops.cast(tf.nn.softmax(scores, axis=-1), self.compute_dtype)
        dropped = self.attention_probabilities_dropout(probabilities, training=training)
        # (B, N, S, T) x (B, N, T, H) -> (B, N, S, H) -> (B, S, N, H)
        context = ops.transpose(ops.matmul(dropped, value), (0, 2, 1, 3))
        context = ops.reshape(context, (-1, self.hidden_dim))
        if return_probabilities:
            return context, probabilities
        return context

    def _attend_fused(self, query, key, value, mask):
        """`keras.ops.dot_product_attention` on (B, S, N, H) query and (B, T, N, H) key, value."""
        context = ops.dot_product_attention(query, key, value, mask=mask, scale=1.0)
        return ops.reshape(context, (-1, self.hidden_dim))

    def _output(self, context):
        """(R, N * H) -> (R, D): concatenated heads times the output kernel."""
        kernel = ops.reshape(
            ops.cast(self.output_kernel, self.compute_dtype), (self.hidden_dim, self.hidden_dim)
        )
        projected = ops.matmul(context, kernel)
        if not self.use_bias:
            return projected
        return tf.nn.bias_add(projected, ops.cast(self.output_bias, self.compute_dtype))

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        split_first_token=False,
    ):
        if split_first_token and return_attention_scores:
            raise ValueError(
                "`return_attention_scores=True` cannot be combined with `split_first_token=True`."
            )
        batch_size, length = ops.shape(inputs)[0], ops.shape(inputs)[1]
        rows = ops.reshape(inputs, (-1, self.hidden_dim))  # (B * T, D)
        mask = self._combined_mask(padding_mask, attention_mask)
        scale = 1.0 / math.sqrt(self.head_dim)
        fused = self.use_dot_product_attention and not return_attention_scores

        def heads(projected, part_length):
            if fused:  # dot_product_attention takes (B, S, N, H) as it is.
                return ops.reshape(
                    projected,
                    sequence_shape(batch_size, part_length, self.num_heads, self.head_dim),
                )
            return self._split_heads(projected, batch_size, part_length)

        key = heads(self._project(rows, "key"), length)
        value = heads(self._project(rows, "value"), length)

        def output_shape(part_length):
            return sequence_shape(batch_size, part_length, self.hidden_dim)

        def attend(part_rows, part_length, part_mask, return_probabilities=False):
            query = heads(self._project(part_rows, "query", scale), part_length)
            if fused:
                return self._attend_fused(query, key, value, part_mask)
            return self._attend(
                query, key, value, part_mask, training, return_probabilities
            )

        if not split_first_token:
            if return_attention_scores:
                context, probabilities = attend(rows, length, mask, return_probabilities=True)
                outputs = ops.reshape(self._output(context), output_shape(length))
                return outputs, probabilities
            return ops.reshape(self._output(attend(rows, length, mask)), output_shape(length))

        # The query rows of position 0 and of positions 1..; the key side is
        # shared. A mask with a query axis is split the same way.
        parts = []
        for start, stop in ((0, 1), (1, None)):
            part = inputs[:, start:stop, :]
            part_length = ops.shape(part)[1]
            part_mask = mask
            if attention_mask is not None:
                part_mask = mask[:, :, start:stop, :]
            part_rows = ops.reshape(part, (-1, self.hidden_dim))
            context = attend(part_rows, part_length, part_mask)
            parts.append(ops.reshape(self._output(context), output_shape(part_length)))
        return tuple(parts)

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape)

    def compute_output_spec(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        split_first_token=False,
    ):
        if split_first_token:
            return split_first_token_spec(inputs, self.compute_dtype)
        batch_size, sequence_length = inputs.shape[0], inputs.shape[1]
        outputs = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if return_attention_scores:
            probabilities = keras.KerasTensor(
                (batch_size, self.num_heads, sequence_length, sequence_length),
                dtype=self.compute_dtype,
            )
            return outputs, probabilities
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "attention_dropout": self.attention_dropout,
                "initializer_range": self.initializer_range,
                "use_dot_product_attention": self.use_dot_product_attention,
                "use_bias": self.use_bias,
            }
        )
        return config


def sequence_shape(batch_size, sequence_length, *trailing):
    """A shape `(batch_size, sequence_length, *trailing)` for `ops.reshape`.

    When `batch_size` is a static, non-zero int (an exported graph with a fixed
    batch, e.g. TFLite's `(1, length)` inputs), the sequence length becomes
    `-1`, so that the whole shape is a constant: the converter then needs no
    shape arithmetic per reshape, and LiteRT's XNNPACK delegate can take the
    reshapes into one partition instead of being split around each of them.
    Otherwise (a dynamic batch, which may be empty) the shape is given in full.

    Args:
        batch_size: int or scalar int tensor.
        sequence_length: int or scalar int tensor.
        *trailing: ints, the remaining (non-zero) dimensions.

    Returns:
        tuple.
    """
    if isinstance(batch_size, int) and batch_size > 0:
        return (batch_size, -1, *trailing)
    return (batch_size, sequence_length, *trailing)


def split_first_token_spec(inputs, dtype):
    """The two output specs of `split_first_token=True`.

    Returns KerasTensors of shapes `(batch_size, 1, hidden_dim)` and
    `(batch_size, sequence_length - 1, hidden_dim)`.
    """
    batch_size, sequence_length, hidden_dim = inputs.shape
    rest_length = None if sequence_length is None else sequence_length - 1
    return (
        keras.KerasTensor((batch_size, 1, hidden_dim), dtype=dtype),
        keras.KerasTensor((batch_size, rest_length, hidden_dim), dtype=dtype),
    )
