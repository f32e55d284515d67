"""LAMB: Adam with a per-tensor trust ratio, for large-batch BERT pretraining (You et al., 2020).

    optimizer = Lamb(learning_rate=schedule, weight_decay=0.01)
    optimizer.exclude_from_weight_decay(var_list=decay_exempt_variables(model))

For each weight tensor `w` with gradient `g` at step `t`:

    m = beta_1 * m + (1 - beta_1) * g            v = beta_2 * v + (1 - beta_2) * g^2
    u = (m / (1 - beta_1^t)) / (sqrt(v / (1 - beta_2^t)) + epsilon) + weight_decay * w
    w = w - learning_rate * (||w|| / ||u||) * u

The weight decay is part of `u`, so the trust ratio `||w|| / ||u||` scales it
too (`keras.optimizers.Lamb` instead decays outside the ratio). Variables
excluded from weight decay (biases, layer norms) are also excluded from the
trust ratio, which is then 1, as in the reference implementation. The ratio
is 1 as well when either norm is 0.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_bert")
class Lamb(keras.optimizers.Optimizer):
    """Layer-wise Adaptive Moments optimizer for Batch training.

    Args:
        learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`.
            Defaults to `0.001`.
        beta_1: float. Decay of the first moment. Defaults to `0.9`.
        beta_2: float. Decay of the second moment. Defaults to `0.999`.
        epsilon: float. Added to the root of the second moment.
            Defaults to `1e-6`.
        weight_decay: float or None. Decay rate inside the update.
            Defaults to `0.01`.
        **kwargs: base optimizer arguments (`global_clipnorm`, `name`, ...).

    Reference: You et al., "Large Batch Optimization for Deep Learning:
    Training BERT in 76 minutes", ICLR 2020, algorithm 2.
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        weight_decay=0.01,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)
        for name, value in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1), received {value!r}.")
        if not epsilon > 0:
            raise ValueError(f"`epsilon` must be positive, received {epsilon!r}.")
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"]
        )

    def _apply_weight_decay(self, variables):
        # The decay is applied inside `update_step`, under the trust ratio.
        return

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        learning_rate = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        momentum = self._momentums[index]
        velocity = self._velocities[index]
        self.assign(momentum, self.beta_1 * momentum + (1.0 - self.beta_1) * gradient)
        self.assign(
            velocity, self.beta_2 * velocity + (1.0 - self.beta_2) * ops.square(gradient)
        )
        momentum_hat = momentum / (1.0 - ops.power(ops.cast(self.beta_1, dtype), step))
        velocity_hat = velocity / (1.0 - ops.power(ops.cast(self.beta_2, dtype), step))
        update = momentum_hat / (ops.sqrt(velocity_hat) + self.epsilon)
        # Biases and norms (the weight-decay exclusions) keep a trust ratio of 1.
        if self._use_weight_decay(variable):
            if self.weight_decay:
                update = update + ops.cast(self.weight_decay, dtype) * variable
            weight_norm = ops.sqrt(ops.sum(ops.square(variable)))
            update_norm = ops.sqrt(ops.sum(ops.square(update)))
            trust_ratio = ops.where(
                ops.logical_and(weight_norm > 0, update_norm > 0),
                weight_norm / ops.maximum(update_norm, 1e-30),
                ops.ones_like(weight_norm),
            )
            update = trust_ratio * update
        self.assign_sub(variable, learning_rate * update)

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
