"""BERT pretraining: masked-language-model and next-sentence heads on the encoder."""

import keras
import numpy as np
from keras import ops

from keras_bert.inputs import INPUT_NAMES
from keras_bert.inputs import PRETRAINER_INPUT_NAMES
from keras_bert.layers import validation
from keras_bert.layers.masked_lm_head import MaskedLMHead
from keras_bert.layers.segment_pair_head import SegmentPairHead

# `read_checkpoint(...).head_weights` key -> (sublayer path, weight name) in `BertPretrainer`.
HEAD_WEIGHT_NAMES = {
    "mlm_transform_dense/kernel": ("masked_lm_head", "mlm_transform_dense", "kernel"),
    "mlm_transform_dense/bias": ("masked_lm_head", "mlm_transform_dense", "bias"),
    "mlm_layer_norm/gamma": ("masked_lm_head", "mlm_layer_norm", "gamma"),
    "mlm_layer_norm/beta": ("masked_lm_head", "mlm_layer_norm", "beta"),
    "mlm_output_bias": ("masked_lm_head", None, "mlm_output_bias"),
    "nsp_dense/kernel": ("nsp_dense", None, "kernel"),
    "nsp_dense/bias": ("nsp_dense", None, "bias"),
}

# Added to the masked-LM weight sum before dividing, as google-research/bert
# does, so that a batch without any prediction gives a zero loss, not NaN.
_WEIGHT_EPSILON = 1e-5


@keras.saving.register_keras_serializable(package="keras_bert")
class BertPretrainer(keras.Model):
    """A `BertEncoder` with BERT's masked-LM and next-sentence heads.

    The masked-LM head (`MaskedLMHead`) scores the vocabulary only at the
    `masked_positions`, with its output projection tied to the encoder's
    token embedding table (or, with `tie_embeddings=False`, a table of its
    own). The next-sentence head is a dense layer with two
    outputs on `pooled_output` (label 0: segment B follows A; 1: B is
    random, as in google-research/bert); with `nsp_segment_means=True` a
    `SegmentPairHead` on the two segments' mean final representations adds
    its logits to that layer's. Both logits are float32 under mixed
    precision.

    Losses and metrics are built in: compile with an optimizer only, and
    `fit`/`evaluate` on `(inputs, labels)` as produced by
    `keras_bert.text.load_pretraining_dataset`. The loss is
    `mlm_loss + nsp_loss_weight * nsp_loss`:
        mlm_loss = sum(masked_weights * CE(masked_ids, mlm_logits)) / sum(masked_weights)
        nsp_loss = mean(CE(next_sentence_label, nsp_logits))
    Under a `tf.distribute` strategy the sums and counts are totalled over
    all replicas before dividing, so the loss (and every gradient) is that of
    the global batch, whatever its split. Metrics: `mlm_loss`,
    `mlm_accuracy` (weighted by `masked_weights`), `nsp_loss`,
    `nsp_accuracy`.

    Args:
        encoder: `keras_bert.BertEncoder`.
        initializer_range: float or None. Standard deviation of the heads'
            kernel initialisers; `None` means the encoder's. Defaults to `None`.
        tie_embeddings: bool. Whether the masked-LM output projection is the
            encoder's token embedding table (BERT) or a
            `(vocabulary_size, hidden_dim)` table of the head's own. Defaults
            to `True`.
        nsp_loss_weight: float. Weight of the next-sentence loss in the total
            (ELECTRA weights its second loss 50x; a larger weight here makes
            the one bit per example count for more). Defaults to `1.0`.
        nsp_segment_means: bool. Whether the next-sentence logits also read
            the mean final representations of segments A and B
            (`SegmentPairHead`, its kernel starting at zero) beside
            `pooled_output` (BERT: `pooled_output` only). The `[CLS]` head's
            weights keep the names and shapes of Google's and Hugging Face's
            `seq_relationship` weights either way. Defaults to `False`.

    Inputs: a dict of int32 tensors:
        token_ids, segment_ids, padding_mask: `(batch_size, sequence_length)`.
        masked_positions: `(batch_size, num_predictions)`.

    Labels (for `fit`/`evaluate`): a dict:
        masked_ids: int32 `(batch_size, num_predictions)`, the original ids.
        masked_weights: float32 `(batch_size, num_predictions)`, 1 for real
            predictions and 0 for padding.
        next_sentence_label: int32 `(batch_size,)`.

    Outputs: a dict:
        mlm_logits: float32 `(batch_size, num_predictions, vocabulary_size)`.
        nsp_logits: float32 `(batch_size, 2)`.

    Example:
    >>> encoder = BertEncoder.from_preset("bert_tiny", vocabulary_size=8000)
    >>> pretrainer = BertPretrainer(encoder)
    >>> pretrainer.compile(optimizer=keras.optimizers.AdamW(1e-4))
    >>> pretrainer.fit(load_pretraining_dataset("data/*.tfrecord"), epochs=1)

    Reference: Devlin et al., "BERT: Pre-training of Deep Bidirectional
    Transformers for Language Understanding", 2018, section 3.1.
    """

    def __init__(
        self,
        encoder,
        initializer_range=None,
        tie_embeddings=True,
        nsp_loss_weight=1.0,
        nsp_segment_means=False,
        **kwargs,
    ):
        if initializer_range is not None:
            validation.check_positive_float("initializer_range", initializer_range)
        validation.check_bool("tie_embeddings", tie_embeddings)
        validation.check_positive_float("nsp_loss_weight", nsp_loss_weight)
        validation.check_bool("nsp_segment_means", nsp_segment_means)
        head_initializer_range = initializer_range or encoder.initializer_range
        policy = encoder.dtype_policy

        # === Layers ===
        masked_lm_head = MaskedLMHead(
            vocabulary_size=encoder.vocabulary_size,
            token_embedding=encoder.token_embedding if tie_embeddings else None,
            activation=encoder.activation,
            layer_norm_epsilon=encoder.layer_norm_epsilon,
            initializer_range=head_initializer_range,
            dtype=policy,
            name="masked_lm_head",
        )
        nsp_dense = keras.layers.Dense(
            2,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=head_initializer_range),
            dtype="float32",
            name="nsp_dense",
        )
        segment_pair_head = (
            SegmentPairHead(name="nsp_segment_head") if nsp_segment_means else None
        )
        # Logits and losses keep float32's range under mixed precision.
        mlm_logits_cast = keras.layers.Activation("linear", dtype="float32", name="mlm_logits")

        # === Functional Model ===
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in PRETRAINER_INPUT_NAMES
        }
        encoder_outputs = encoder(
            {name: inputs[name] for name in INPUT_NAMES}
        )
        mlm_logits = masked_lm_head(
            encoder_outputs["sequence_output"], masked_positions=inputs["masked_positions"]
        )
        nsp_logits = nsp_dense(encoder_outputs["pooled_output"])
        if segment_pair_head is not None:
            nsp_logits = keras.layers.Add(dtype="float32", name="nsp_logits")(
                [
                    nsp_logits,
                    segment_pair_head(
                        encoder_outputs["sequence_output"],
                        inputs["segment_ids"],
                        inputs["padding_mask"],
                    ),
                ]
            )
        outputs = {"mlm_logits": mlm_logits_cast(mlm_logits), "nsp_logits": nsp_logits}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.encoder = encoder
        self.initializer_range = initializer_range
        self.tie_embeddings = tie_embeddings
        self.nsp_loss_weight = float(nsp_loss_weight)
        self.nsp_segment_means = nsp_segment_means
        self.masked_lm_head = masked_lm_head
        self.nsp_dense = nsp_dense
        self.segment_pair_head = segment_pair_head

        # === Metrics ===
        self.mlm_loss_tracker = keras.metrics.Mean(name="mlm_loss")
        self.mlm_accuracy_tracker = keras.metrics.Mean(name="mlm_accuracy")
        self.nsp_loss_tracker = keras.metrics.Mean(name="nsp_loss")
        self.nsp_accuracy_tracker = keras.metrics.Mean(name="nsp_accuracy")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """`mlm_loss + nsp_loss_weight * nsp_loss` of this replica's share of the global batch.

        Under `tf.distribute`, each replica returns its part of the global
        loss (its sums divided by the global counts), so the replicas' losses
        and gradients add up to those of the whole batch. Also updates the
        metrics.
        """
        del x, training
        if sample_weight is not None:
            raise ValueError(
                "`BertPretrainer` takes no `sample_weight`: weight masked-LM "
                "predictions with the `masked_weights` label."
            )
        labels = _check_labels(y)
        mlm_logits = ops.cast(y_pred["mlm_logits"], "float32")
        nsp_logits = ops.cast(y_pred["nsp_logits"], "float32")
        masked_ids = ops.cast(labels["masked_ids"], "int32")
        masked_weights = ops.cast(labels["masked_weights"], "float32")
        next_sentence_label = ops.cast(
            ops.reshape(labels["next_sentence_label"], (-1,)), "int32"
        )

        # (batch_size, num_predictions)
        mlm_cross_entropy = keras.losses.sparse_categorical_crossentropy(
            masked_ids, mlm_logits, from_logits=True
        )
        # (batch_size,)
        nsp_cross_entropy = keras.losses.sparse_categorical_crossentropy(
            next_sentence_label, nsp_logits, from_logits=True
        )
        mlm_weight_total = _sum_over_replicas(ops.sum(masked_weights))
        batch_total = _sum_over_replicas(ops.cast(ops.shape(nsp_logits)[0], "float32"))
        mlm_loss = ops.sum(mlm_cross_entropy * masked_weights) / (
            mlm_weight_total + _WEIGHT_EPSILON
        )
        nsp_loss = ops.sum(nsp_cross_entropy) / ops.maximum(batch_total, 1.0)

        mlm_correct = ops.cast(ops.equal(ops.argmax(mlm_logits, axis=-1), masked_ids), "float32")
        nsp_correct = ops.cast(
            ops.equal(ops.argmax(nsp_logits, axis=-1), next_sentence_label), "float32"
        )
        self.mlm_loss_tracker.update_state(mlm_cross_entropy, sample_weight=masked_weights)
        self.mlm_accuracy_tracker.update_state(mlm_correct, sample_weight=masked_weights)
        self.nsp_loss_tracker.update_state(nsp_cross_entropy)
        self.nsp_accuracy_tracker.update_state(nsp_correct)

        total = mlm_loss + self.nsp_loss_weight * nsp_loss
        for loss in self.losses:  # Regularisers, if any.
            total = total + ops.cast(ops.sum(loss), "float32")
        return total

    def load_head_weights(self, head_weights):
        """Assigns pretraining head weights as `read_checkpoint` returns them.

        Args:
            head_weights: dict of name (`HEAD_WEIGHT_NAMES` keys, e.g.
                `"mlm_transform_dense/kernel"`) -> array; kernels as
                `(input_dim, output_dim)`.

        Raises:
            ValueError: an unknown name, a missing name, or a shape that does
                not fit, naming the weight and both shapes.
        """
        unknown = sorted(set(head_weights) - set(HEAD_WEIGHT_NAMES))
        if unknown:
            raise ValueError(
                f"Unknown pretraining head weights {unknown}; `head_weights` keys must be "
                f"among {sorted(HEAD_WEIGHT_NAMES)}."
            )
        missing = sorted(set(HEAD_WEIGHT_NAMES) - set(head_weights))
        if missing:
            raise ValueError(f"`head_weights` lacks {missing}.")
        assignments = []
        for name, value in head_weights.items():
            variable = self._head_variable(name)
            value = np.asarray(value)
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"Head weight {name!r} has shape {tuple(value.shape)}, expected "
                    f"{tuple(variable.shape)}."
                )
            assignments.append((variable, value))
        for variable, value in assignments:
            variable.assign(value.astype(variable.dtype))

    def _head_variable(self, name):
        layer_name, sublayer_name, weight_name = HEAD_WEIGHT_NAMES[name]
        layer = self.get_layer(layer_name)
        if sublayer_name is not None:
            layer = getattr(layer, sublayer_name)
        return getattr(layer, weight_name)

    @classmethod
    def from_checkpoint(cls, path, **overrides):
        """A pretrainer from any checkpoint `keras_bert.load_encoder` reads.

        The encoder weights come from the checkpoint; so do the heads when it
        carries them (Google `cls/predictions`, `cls/seq_relationship`, or
        the Hugging Face equivalents), else they are randomly initialised
        (see `heads_from_checkpoint`). A `.keras` file holding a
        `BertPretrainer` is loaded whole (as an instance of `cls`).

        Args:
            path: string. Checkpoint directory or `.keras` file.
            **overrides: encoder arguments that do not change weight shapes,
                e.g. `dropout=0.0`, `dtype="mixed_bfloat16"`.

        Returns:
            A `BertPretrainer`; its `heads_from_checkpoint` attribute says
            whether the heads were loaded.
        """
        import os

        from keras_bert.bert_encoder import BertEncoder
        from keras_bert.checkpoints import read_checkpoint

        path = os.fspath(path)
        if path.endswith(".keras") and os.path.isfile(path):
            loaded = keras.saving.load_model(path, safe_mode=True)
            if isinstance(loaded, BertPretrainer):
                model = loaded
                if overrides or type(loaded) is not cls:
                    encoder_config = dict(loaded.encoder.get_config(), **overrides)
                    model = cls(
                        BertEncoder.from_config(encoder_config),
                        **loaded.head_config(),
                    )
                    model.set_weights(loaded.get_weights())
                model.heads_from_checkpoint = True
                return model
        checkpoint = read_checkpoint(path, **overrides)
        model = cls(checkpoint.encoder)
        model.heads_from_checkpoint = bool(checkpoint.head_weights)
        if checkpoint.head_weights:
            model.load_head_weights(checkpoint.head_weights)
        return model

    def head_config(self):
        """The constructor arguments besides `encoder` (to rebuild the same heads)."""
        return {
            "initializer_range": self.initializer_range,
            "tie_embeddings": self.tie_embeddings,
            "nsp_loss_weight": self.nsp_loss_weight,
            "nsp_segment_means": self.nsp_segment_means,
        }

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            **self.head_config(),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("encoder"), dict):
            config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)


_LABEL_NAMES = ("masked_ids", "masked_weights", "next_sentence_label")


def _check_labels(labels):
    if not isinstance(labels, dict) or any(name not in labels for name in _LABEL_NAMES):
        found = sorted(labels) if isinstance(labels, dict) else type(labels).__name__
        raise ValueError(
            f"`BertPretrainer` labels must be a dict with keys {list(_LABEL_NAMES)}, "
            f"received {found}."
        )
    return labels


def _sum_over_replicas(value):
    """`value` summed over the replicas of a `tf.distribute` strategy (as is without one)."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.stop_gradient(value))
