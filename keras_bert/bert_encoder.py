"""The BERT encoder network: embeddings, a stack of transformer blocks, a pooler."""

import copy

import keras
import tensorflow as tf

from keras_bert.inputs import INPUT_NAMES
from keras_bert.layers import validation
from keras_bert.layers.bert_embeddings import POSITION_EMBEDDING_TYPES, BertEmbeddings
from keras_bert.layers.transformer_block import ACTIVATIONS, TransformerBlock

# Published shapes of the BERT models (Devlin et al. 2018; Turc et al. 2019 for
# the compact ones): layers L, hidden H, heads A, feed-forward 4H.
PRESETS = {
    "bert_tiny": {"num_layers": 2, "hidden_dim": 128, "num_heads": 2, "intermediate_dim": 512},
    "bert_mini": {"num_layers": 4, "hidden_dim": 256, "num_heads": 4, "intermediate_dim": 1024},
    "bert_small": {"num_layers": 4, "hidden_dim": 512, "num_heads": 8, "intermediate_dim": 2048},
    "bert_medium": {"num_layers": 8, "hidden_dim": 512, "num_heads": 8, "intermediate_dim": 2048},
    "bert_base": {"num_layers": 12, "hidden_dim": 768, "num_heads": 12, "intermediate_dim": 3072},
    "bert_large": {"num_layers": 24, "hidden_dim": 1024, "num_heads": 16, "intermediate_dim": 4096},
}
_PRESET_DEFAULTS = {"vocabulary_size": 30522}

# Keys that `keras.Model.get_config` adds besides the constructor arguments.
_BASE_CONFIG_KEYS = ("name", "trainable", "dtype")


@keras.saving.register_keras_serializable(package="keras_bert")
class BertEncoder(keras.Model):
    """BERT's bidirectional transformer encoder, as a functional Keras model.

    Token ids, segment ids and a padding mask go through `BertEmbeddings`,
    `num_layers` `TransformerBlock`s and a pooler (a tanh dense layer on the
    first, `[CLS]`, position). Padding positions are never attended to;
    outputs at padding positions are not meaningful.

    The last block computes its `[CLS]` output apart from the other
    positions (sharing keys and values), and the pooler reads it directly, so
    a model that uses only `pooled_output` (a sentence classifier) never
    computes the last block's other queries, attention rows and feed-forward
    rows: TensorFlow prunes them from the graph (about a fifth of a 4-layer
    encoder's work).

    Args:
        vocabulary_size: int. Number of token ids.
        num_layers: int. Number of transformer blocks.
        num_heads: int. Attention heads per block; must divide `hidden_dim`.
        hidden_dim: int. Width of every hidden state.
        intermediate_dim: int. Width of the feed-forward hidden layer.
        dropout: float. Dropout rate of embeddings and sublayers.
            Defaults to `0.1`.
        attention_dropout: float. Dropout rate on attention probabilities;
            `None` means `dropout`. Defaults to `None`.
        max_sequence_length: int. Longest supported sequence.
            Defaults to `512`.
        num_segments: int. Number of segment ids. Defaults to `2`.
        embedding_dim: int or None. Width of the embedding tables, projected
            to `hidden_dim` when smaller. Defaults to `None` (= `hidden_dim`).
        position_embedding: string. `"learned"` or `"sinusoidal"`.
            Defaults to `"learned"`.
        activation: string. `"gelu"`, `"gelu_approximate"` or `"relu"`.
            Defaults to `"gelu"`.
        layer_norm_epsilon: float. Defaults to `1e-12`.
        norm_first: bool. Pre-LN blocks (with a final layer norm) instead of
            BERT's post-LN. Defaults to `False`.
        initializer_range: float. Standard deviation of the truncated normal
            initialiser. Defaults to `0.02`.
        use_dot_product_attention: bool. Compute attention with
            `keras.ops.dot_product_attention` (the backend's fused kernel
            where it has one); needs `attention_dropout=0`. Defaults to
            `False`.
        use_bias: bool. Whether the attention projections and feed-forward
            dense layers add a bias (BERT's do; Cramming, Geiping and
            Goldstein 2022, drops them). Defaults to `True`.
        embedding_layer_norm: bool. Whether the summed embeddings are
            layer-normalised before the first block. Defaults to `True`.
        dtype: string or `keras.DTypePolicy`. e.g. `"mixed_bfloat16"`. Layer
            norms and softmaxes stay float32. Defaults to the global policy.

    Inputs: a dict of int32 tensors, each of shape
    `(batch_size, sequence_length)`, `sequence_length` variable:
        token_ids: WordPiece ids.
        segment_ids: 0 for the first segment, 1 for the second.
        padding_mask: 1 for real tokens, 0 for padding.
    Token ids outside `[0, vocabulary_size)`, segment ids outside
    `[0, num_segments)`, sequences longer than `max_sequence_length` and
    inputs of a float dtype or another rank raise `ValueError` naming the
    input (`tf.errors.InvalidArgumentError` inside `predict` or a graph; see
    `check_inputs`). A row whose padding mask is all zeros gives finite,
    meaningless outputs.

    Outputs: a dict:
        sequence_output: `(batch_size, sequence_length, hidden_dim)`.
        pooled_output: `(batch_size, hidden_dim)`.
        encoder_outputs: list of `num_layers + 1` tensors of shape
            `(batch_size, sequence_length, hidden_dim)`: the embedding output,
            then the output of every block.

    Example:
    >>> encoder = BertEncoder.from_preset("bert_tiny", dropout=0.0)
    >>> ones = np.ones((2, 16), "int32")
    >>> outputs = encoder({"token_ids": ones, "segment_ids": 0 * ones,
    ...                    "padding_mask": ones})
    >>> outputs["pooled_output"].shape
    TensorShape([2, 128])

    Reference: Devlin et al., "BERT: Pre-training of Deep Bidirectional
    Transformers for Language Understanding", 2018.
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.1,
        attention_dropout=None,
        max_sequence_length=512,
        num_segments=2,
        embedding_dim=None,
        position_embedding="learned",
        activation="gelu",
        layer_norm_epsilon=1e-12,
        norm_first=False,
        initializer_range=0.02,
        use_dot_product_attention=False,
        use_bias=True,
        embedding_layer_norm=True,
        dtype=None,
        **kwargs,
    ):
        if attention_dropout is None:
            attention_dropout = dropout
        validate_config(
            vocabulary_size=vocabulary_size,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            attention_dropout=attention_dropout,
            max_sequence_length=max_sequence_length,
            num_segments=num_segments,
            embedding_dim=embedding_dim,
            position_embedding=position_embedding,
            activation=activation,
            layer_norm_epsilon=layer_norm_epsilon,
            norm_first=norm_first,
            initializer_range=initializer_range,
            use_dot_product_attention=use_dot_product_attention,
            use_bias=use_bias,
            embedding_layer_norm=embedding_layer_norm,
        )
        unknown = sorted(set(kwargs) - {"name", "trainable"})
        if unknown:
            raise ValueError(f"Unknown `BertEncoder` config keys: {unknown}.")
        policy = keras.dtype_policies.get(dtype) if dtype is not None else None

        # === Layers ===
        embeddings_layer = BertEmbeddings(
            vocabulary_size=vocabulary_size,
            hidden_dim=hidden_dim,
            max_sequence_length=max_sequence_length,
            num_segments=num_segments,
            embedding_dim=embedding_dim,
            position_embedding=position_embedding,
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            initializer_range=initializer_range,
            layer_norm=embedding_layer_norm,
            dtype=policy,
            name="embeddings",
        )
        transformer_layers = [
            TransformerBlock(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                attention_dropout=attention_dropout,
                activation=activation,
                layer_norm_epsilon=layer_norm_epsilon,
                norm_first=norm_first,
                initializer_range=initializer_range,
                use_dot_product_attention=use_dot_product_attention,
                use_bias=use_bias,
                dtype=policy,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        final_layer_norm = None
        if norm_first:
            final_layer_norm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype="float32", name="final_layer_norm"
            )
        pooler_dense = keras.layers.Dense(
            hidden_dim,
            activation="tanh",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range),
            dtype=policy,
            name="pooler_dense",
        )

        # === Functional Model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = embeddings_layer(token_ids, segment_ids)
        encoder_outputs = [x]
        for block in transformer_layers[:-1]:
            x = block(x, padding_mask=padding_mask)
            encoder_outputs.append(x)
        # (batch_size, 1, hidden_dim) and (batch_size, sequence_length - 1, hidden_dim)
        first, rest = transformer_layers[-1](x, padding_mask=padding_mask, split_first_token=True)
        if final_layer_norm is not None:
            first, rest = final_layer_norm(first), final_layer_norm(rest)
        x = keras.layers.Concatenate(axis=1, dtype=policy, name="sequence_output")([first, rest])
        encoder_outputs.append(x)
        # (batch_size, 1, hidden_dim) -> (batch_size, hidden_dim)
        first_token = _FirstToken(name="first_token")(first)
        pooled_output = pooler_dense(first_token)
        super().__init__(
            inputs={
                "token_ids": token_ids,
                "segment_ids": segment_ids,
                "padding_mask": padding_mask,
            },
            outputs={
                "sequence_output": x,
                "pooled_output": pooled_output,
                "encoder_outputs": encoder_outputs,
            },
            dtype=policy,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.embedding_dim = embedding_dim
        self.position_embedding = position_embedding
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.norm_first = norm_first
        self.initializer_range = initializer_range
        self.use_dot_product_attention = use_dot_product_attention
        self.use_bias = use_bias
        self.embedding_layer_norm = embedding_layer_norm
        self.embeddings_layer = embeddings_layer
        self.transformer_layers = transformer_layers
        self.final_layer_norm = final_layer_norm
        self.pooler_dense = pooler_dense

    def call(self, inputs, training=None, mask=None, **kwargs):
        inputs = check_inputs(
            inputs, self.vocabulary_size, self.num_segments, self.max_sequence_length
        )
        return super().call(inputs, training=training, mask=mask, **kwargs)

    @property
    def token_embedding(self):
        """The `(vocabulary_size, embedding_dim)` token table (for tied heads)."""
        return self.embeddings_layer.token_embedding

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "max_sequence_length": self.max_sequence_length,
            "num_segments": self.num_segments,
            "embedding_dim": self.embedding_dim,
            "position_embedding": self.position_embedding,
            "activation": self.activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "norm_first": self.norm_first,
            "initializer_range": self.initializer_range,
            "use_dot_product_attention": self.use_dot_product_attention,
            "use_bias": self.use_bias,
            "embedding_layer_norm": self.embedding_layer_norm,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)

    @classmethod
    def preset_config(cls, name, **overrides):
        """The constructor arguments of preset `name`, with `overrides` applied."""
        if name not in PRESETS:
            raise ValueError(
                f"Unknown preset {name!r}; `name` must be one of {sorted(PRESETS)}."
            )
        config = dict(_PRESET_DEFAULTS, **copy.deepcopy(PRESETS[name]))
        allowed = set(_constructor_arguments()) | {"name", "trainable"}
        unknown = sorted(set(overrides) - allowed)
        if unknown:
            raise ValueError(
                f"Unknown `BertEncoder` config keys for preset {name!r}: {unknown}. "
                f"Known keys: {sorted(allowed)}."
            )
        config.update(overrides)
        return config

    @classmethod
    def from_preset(cls, name, **overrides):
        """A randomly initialised encoder with the published shape of `name`.

        Args:
            name: string. One of `bert_tiny`, `bert_mini`, `bert_small`,
                `bert_medium`, `bert_base`, `bert_large`.
            **overrides: constructor arguments to change, e.g. `dropout=0.0`.

        Returns:
            A `BertEncoder`.
        """
        return cls(**cls.preset_config(name, **overrides))


def check_inputs(inputs, vocabulary_size, num_segments, max_sequence_length):
    """Rejects encoder inputs of the wrong dtype, rank or range, naming the input.

    Out-of-range ids must be caught here: TensorFlow's gather raises deep inside
    the embedding on CPU but silently returns zeros on GPU. Eager inputs raise
    `ValueError`; inside a graph (`predict`, `tf.function`, a SavedModel) the
    range checks are `tf.debugging` assertions that raise
    `tf.errors.InvalidArgumentError` with the same message when they run (XLA
    and the TFLite converter drop them).

    Returns:
        `inputs`; in a graph, with the ids made to wait for their assertions.
    """
    if not isinstance(inputs, dict):
        return inputs
    for name in INPUT_NAMES:
        value = inputs.get(name)
        if value is None or not hasattr(value, "dtype"):
            continue
        dtype = keras.backend.standardize_dtype(value.dtype)
        if "int" not in dtype and not (name == "padding_mask" and dtype == "bool"):
            raise ValueError(f"`{name}` must be an integer tensor, received dtype {dtype}.")
        if len(value.shape) != 2:
            raise ValueError(
                f"`{name}` must have shape (batch_size, sequence_length), received shape "
                f"{tuple(value.shape)}."
            )
    token_ids = inputs.get("token_ids")
    if token_ids is None or isinstance(token_ids, keras.KerasTensor):
        return inputs
    length = token_ids.shape[1]
    if length is not None and length > max_sequence_length:
        raise ValueError(
            f"`token_ids` has sequence length {length}, longer than `max_sequence_length` "
            f"({max_sequence_length})."
        )
    assertions = []
    if length is None and not tf.executing_eagerly():
        assertions.append(tf.debugging.assert_less_equal(
            tf.shape(token_ids)[1], max_sequence_length,
            message=f"`token_ids` has a sequence length longer than `max_sequence_length` "
            f"({max_sequence_length})",
        ))
    for name, limit, limit_name in (
        ("token_ids", vocabulary_size, "vocabulary_size"),
        ("segment_ids", num_segments, "num_segments"),
    ):
        value = inputs.get(name)
        if value is not None and not isinstance(value, keras.KerasTensor):
            assertions.extend(_check_id_range(name, value, limit, limit_name))
    if not assertions:
        return inputs
    # In a graph the gathers would otherwise run (and fail obscurely) before the checks.
    with tf.control_dependencies(assertions):
        return {name: tf.identity(value) for name, value in inputs.items()}


def _check_id_range(name, value, limit, limit_name):
    message = f"`{name}` must be in [0, {limit}) (`{limit_name}` is {limit})"
    if tf.executing_eagerly():
        values = keras.ops.convert_to_numpy(value)
        if values.size and (values.min() < 0 or values.max() >= limit):
            raise ValueError(
                f"{message}, received values from {values.min()} to {values.max()}."
            )
        return []
    value = tf.convert_to_tensor(value)
    return [
        tf.debugging.assert_non_negative(value, message=message),
        tf.debugging.assert_less(value, tf.cast(limit, value.dtype), message=message),
    ]


@keras.saving.register_keras_serializable(package="keras_bert")
class _FirstToken(keras.layers.Layer):
    """Takes position 0: `(batch_size, sequence_length, hidden_dim)` -> `(batch_size, hidden_dim)`."""

    def call(self, inputs):
        return inputs[:, 0, :]

    def compute_output_shape(self, inputs_shape):
        return (inputs_shape[0], inputs_shape[2])


def _constructor_arguments():
    return (
        "vocabulary_size",
        "num_layers",
        "num_heads",
        "hidden_dim",
        "intermediate_dim",
        "dropout",
        "attention_dropout",
        "max_sequence_length",
        "num_segments",
        "embedding_dim",
        "position_embedding",
        "activation",
        "layer_norm_epsilon",
        "norm_first",
        "initializer_range",
        "use_dot_product_attention",
        "use_bias",
        "embedding_layer_norm",
        "dtype",
    )


def validate_config(
    vocabulary_size,
    num_layers,
    num_heads,
    hidden_dim,
    intermediate_dim,
    dropout,
    attention_dropout,
    max_sequence_length,
    num_segments,
    embedding_dim,
    position_embedding,
    activation,
    layer_norm_epsilon,
    norm_first,
    initializer_range,
    use_dot_product_attention=False,
    use_bias=True,
    embedding_layer_norm=True,
):
    """Raises `ValueError` naming the first invalid `BertEncoder` argument."""
    for name, value in (
        ("vocabulary_size", vocabulary_size),
        ("num_layers", num_layers),
        ("num_heads", num_heads),
        ("hidden_dim", hidden_dim),
        ("intermediate_dim", intermediate_dim),
        ("max_sequence_length", max_sequence_length),
        ("num_segments", num_segments),
    ):
        validation.check_positive_int(name, value)
    if hidden_dim % num_heads != 0:
        raise ValueError(
            f"`hidden_dim` ({hidden_dim}) must be divisible by `num_heads` ({num_heads})."
        )
    if embedding_dim is not None:
        validation.check_positive_int("embedding_dim", embedding_dim)
        if embedding_dim > hidden_dim:
            raise ValueError(
                f"`embedding_dim` ({embedding_dim}) must not exceed `hidden_dim` ({hidden_dim})."
            )
    validation.check_rate("dropout", dropout)
    validation.check_rate("attention_dropout", attention_dropout)
    validation.check_choice("position_embedding", position_embedding, POSITION_EMBEDDING_TYPES)
    validation.check_choice("activation", activation, ACTIVATIONS)
    validation.check_positive_float("layer_norm_epsilon", layer_norm_epsilon)
    validation.check_bool("norm_first", norm_first)
    validation.check_positive_float("initializer_range", initializer_range)
    validation.check_dot_product_attention(use_dot_product_attention, attention_dropout)
    validation.check_bool("use_bias", use_bias)
    validation.check_bool("embedding_layer_norm", embedding_layer_norm)
