"""A train step whose optimizer sees the gradient of the whole global batch.

    class Trainable(GlobalGradientTrainStep, BertPretrainer):
        pass

    with strategy.scope():
        model = Trainable(encoder)
        model.gradient_accumulation_steps = 4
        model.compile(optimizer=create_optimizer(model, "adamw", schedule, global_clipnorm=1.0))

Why not Keras's own `train_step` and `gradient_accumulation_steps`: with the
TensorFlow backend, a Keras 3 optimizer clips (`global_clipnorm`), checks
loss-scaled gradients for overflow and accumulates them *before* it
all-reduces them, i.e. on each replica's partial gradient, so clipping
depends on how the batch is split; and its gradient accumulation fails under
`MirroredStrategy` (a `cond` around a cross-replica `merge_call`). Here the
train step computes the gradients of the micro-batches one after the other,
averages them, all-reduces the result once, and hands the optimizer the
global gradient; the optimizers below skip their own all-reduce. Clipping,
loss-scale checks and the update then see the same numbers on every replica
and under every strategy.
"""

import keras

from keras_bert.layers import validation
from training.core import lamb
from training.core.optimization import decay_exempt_variables

OPTIMIZERS = ("adamw", "lamb")


class PreReducedGradients:
    """Optimizer mixin: gradients arrive already summed over replicas.

    Only for models with `GlobalGradientTrainStep`; with Keras's own train
    step each replica would apply only its own gradient.
    """

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)


@keras.saving.register_keras_serializable(package="keras_bert")
class GlobalGradientAdamW(PreReducedGradients, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` for `GlobalGradientTrainStep` models."""


@keras.saving.register_keras_serializable(package="keras_bert")
class GlobalGradientLamb(PreReducedGradients, lamb.Lamb):
    """`training.core.lamb.Lamb` for `GlobalGradientTrainStep` models."""


def create_optimizer(
    model,
    name,
    learning_rate,
    weight_decay=0.01,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-6,
    global_clipnorm=1.0,
    loss_scaling=False,
):
    """AdamW or LAMB for a `GlobalGradientTrainStep` model, no decay on biases and norms.

    Args:
        model: the built model (its variables decide the decay exemptions,
            see `training.core.optimization.decay_exempt_variables`).
        name: string. `"adamw"` or `"lamb"`.
        learning_rate: float or a `LearningRateSchedule`.
        weight_decay: float. Defaults to `0.01`.
        beta_1, beta_2, epsilon: the moment constants. BERT's `epsilon` is `1e-6`.
        global_clipnorm: float or None. Clip the global gradient's norm.
            Defaults to `1.0`.
        loss_scaling: bool. Wrap in `keras.optimizers.LossScaleOptimizer`
            (for `mixed_float16`). Defaults to `False`.

    Returns:
        A `keras.optimizers.Optimizer`, to be created in the model's
        `strategy.scope()`.
    """
    validation.check_choice("optimizer", name, OPTIMIZERS)
    if not weight_decay >= 0:
        raise ValueError(f"`weight_decay` must be >= 0, received {weight_decay!r}.")
    cls = GlobalGradientAdamW if name == "adamw" else GlobalGradientLamb
    optimizer = cls(
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
        global_clipnorm=global_clipnorm,
    )
    optimizer.exclude_from_weight_decay(var_list=decay_exempt_variables(model))
    if loss_scaling:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def sum_over_replicas(values):
    """A list of tensors summed over the replicas of the current strategy."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values
    return context.all_reduce(tf.distribute.ReduceOp.SUM, values)


class GlobalGradientTrainStep:
    """Model mixin: a `train_step` with micro-batches and one all-reduce.

    Each replica's batch is cut into `gradient_accumulation_steps` equal
    micro-batches run one after another (only one micro-batch's activations
    live at a time; the step's graph holds one copy of the model per
    micro-batch); their gradients are averaged, summed over the replicas,
    and passed to the optimizer, which must be a `PreReducedGradients`
    optimizer (see `create_optimizer`). The model's `compute_loss` must
    return each replica's share of the global loss, as Keras losses and
    `BertPretrainer` do. Set `gradient_accumulation_steps` on the instance;
    it defaults to 1.
    """

    gradient_accumulation_steps = 1

    def train_step(self, data):
        import tensorflow as tf

        _check_optimizer(self.optimizer)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        num_micro_batches = int(self.gradient_accumulation_steps)
        variables = self.trainable_variables
        if num_micro_batches == 1:
            loss, gradients = self._loss_and_gradients(x, y, sample_weight, variables)
        else:
            # (batch_size, ...) -> (num_micro_batches, batch_size / num_micro_batches, ...)
            split = keras.tree.map_structure(
                lambda t: None if t is None else _split_batch(t, num_micro_batches),
                (x, y, sample_weight),
            )
            loss, gradients = 0.0, None
            # A Python loop, not a `tf.while_loop`: the loss all-reduces its
            # counts, and MirroredStrategy cannot synchronise inside a loop.
            for index in range(num_micro_batches):
                micro_batch = keras.tree.map_structure(
                    lambda t: None if t is None else t[index], split
                )
                if gradients is not None:
                    # Start this micro-batch only once the previous one's
                    # gradients exist, so one micro-batch's activations live
                    # at a time.
                    with tf.control_dependencies([tf.group(gradients)]):
                        micro_batch = keras.tree.map_structure(
                            lambda t: None if t is None else tf.identity(t), micro_batch
                        )
                micro_loss, micro_gradients = self._loss_and_gradients(
                    *micro_batch, variables
                )
                loss = loss + micro_loss
                gradients = (
                    micro_gradients
                    if gradients is None
                    else [a + b for a, b in zip(gradients, micro_gradients)]
                )
            scale = 1.0 / num_micro_batches
            loss = loss * scale
            gradients = [g * scale for g in gradients]
        gradients = sum_over_replicas(gradients)
        self.optimizer.apply(gradients, variables)
        if getattr(self, "_loss_tracker", None) is not None:
            from keras.src.losses.loss import unscale_loss_for_distribution

            batch_size = tf.shape(keras.tree.flatten(x)[0])[0]
            self._loss_tracker.update_state(
                unscale_loss_for_distribution(loss), sample_weight=batch_size
            )
        return _reducible_logs(self.get_metrics_result())

    def test_step(self, data):
        return _reducible_logs(super().test_step(data))

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3.15 learns the batch shapes by `strategy.reduce`-ing a whole
        # (nested) batch, which MultiWorkerMirroredStrategy cannot do for dict
        # inputs (keras-team/keras#20329). The first local replica's batch
        # has the same shapes.
        import tensorflow as tf

        strategy = getattr(self, "_distribute_strategy", None)
        if iterator is not None and strategy is not None:
            for _, _, batches in iterator:
                data_batch = keras.tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues)
                    else v,
                    next(batches),
                )
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def _loss_and_gradients(self, x, y, sample_weight, variables):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
            )
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, variables)
        # Sparse embedding gradients become dense: they are summed and all-reduced.
        gradients = [
            tf.zeros(v.shape, v.dtype) if g is None else tf.convert_to_tensor(g)
            for g, v in zip(gradients, variables)
        ]
        return tf.cast(loss, "float32"), gradients


def _reducible_logs(logs):
    """Step logs that Keras can reduce over the workers of MultiWorkerMirroredStrategy.

    Keras 3.15 reduces them there with `strategy.reduce("MEAN", value, axis=0)`,
    which fails for scalars (keras-team/keras#20585); a `(1,)` tensor reduces
    to the same scalar. Other strategies take another path and keep scalars.
    """
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()
    ):
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs


def _split_batch(tensor, num_micro_batches):
    import tensorflow as tf

    tensor = tf.convert_to_tensor(tensor)
    static_batch_size = tensor.shape[0]
    if static_batch_size is not None and static_batch_size % num_micro_batches:
        raise ValueError(
            f"The per-replica batch size ({static_batch_size}) must be divisible by "
            f"`gradient_accumulation_steps` ({num_micro_batches})."
        )
    batch_size = tf.shape(tensor)[0]
    with tf.control_dependencies(
        [
            tf.debugging.assert_equal(
                batch_size % num_micro_batches,
                0,
                message="The per-replica batch size must be divisible by "
                "`gradient_accumulation_steps`.",
            )
        ]
    ):
        new_shape = tf.concat(
            [[num_micro_batches, batch_size // num_micro_batches], tf.shape(tensor)[1:]], 0
        )
        return tf.reshape(tensor, new_shape)


def _check_optimizer(optimizer):
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if not isinstance(inner, PreReducedGradients):
        raise ValueError(
            "A `GlobalGradientTrainStep` model needs an optimizer from "
            "`training.core.global_gradients.create_optimizer` (it all-reduces gradients "
            f"itself); received {type(inner).__name__}."
        )
