"""BERT's optimizer: AdamW with linear warmup then linear decay, no decay on biases and norms.

    schedule = WarmupLinearDecay(5e-5, warmup_steps=100, total_steps=1000)
    optimizer = create_optimizer(model, learning_rate=schedule, weight_decay=0.01)
    model.compile(optimizer=optimizer, loss=...)

`create_optimizer` must run in the same `strategy.scope()` as the model. Weight
decay is decoupled (Loshchilov & Hutter, 2019) and skips biases and layer
normalisation weights, as in the original BERT (Devlin et al., 2018).
"""

import keras

from keras_bert.layers import validation


@keras.saving.register_keras_serializable(package="keras_bert")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `peak_learning_rate`, then linear decay to `end_learning_rate`.

    `lr(step) = peak * step / warmup_steps` for `step < warmup_steps`, then
    falls linearly to `end_learning_rate` at `total_steps` and stays there.
    Steps count from 0, so the first update uses a small, non-zero rate
    (`peak / warmup_steps`), never 0.

    Args:
        peak_learning_rate: float. The rate at the end of warmup.
        warmup_steps: int >= 0. Steps of linear warmup.
        total_steps: int >= `warmup_steps`. The step at which decay ends.
        end_learning_rate: float. The rate at and after `total_steps`.
            Defaults to `0.0`.
    """

    def __init__(self, peak_learning_rate, warmup_steps, total_steps, end_learning_rate=0.0):
        validation.check_positive_float("peak_learning_rate", peak_learning_rate)
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(
                f"`warmup_steps` must be a non-negative integer, received {warmup_steps!r}."
            )
        validation.check_positive_int("total_steps", total_steps)
        if warmup_steps > total_steps:
            raise ValueError(
                f"`warmup_steps` ({warmup_steps}) must not exceed `total_steps` ({total_steps})."
            )
        if not 0.0 <= end_learning_rate <= peak_learning_rate:
            raise ValueError(
                f"`end_learning_rate` ({end_learning_rate}) must be in "
                f"[0, `peak_learning_rate` ({peak_learning_rate})]."
            )
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.end_learning_rate = float(end_learning_rate)

    def __call__(self, step):
        from keras import ops

        # The optimizer passes its iteration count before incrementing it:
        # the first update is step 0, so warmup starts at peak / warmup_steps.
        step = ops.cast(step, "float32") + 1.0
        peak = ops.cast(self.peak_learning_rate, "float32")
        end = ops.cast(self.end_learning_rate, "float32")
        warmup = float(max(self.warmup_steps, 1))
        decay_steps = float(max(self.total_steps - self.warmup_steps, 1))
        warmup_rate = peak * step / warmup
        progress = ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        decay_rate = peak + (end - peak) * progress
        return ops.where(step <= self.warmup_steps, warmup_rate, decay_rate)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "end_learning_rate": self.end_learning_rate,
        }


def decay_exempt_variables(model):
    """The variables of `model` that weight decay must skip: biases and normalisation weights.

    Found by layer type (every weight of a `LayerNormalization`) and by name
    (every variable whose name ends in `bias`, e.g. `query_bias`), so it
    works for any model, whatever its layer names.
    """
    exempt = {}
    for layer in model._flatten_layers(include_self=True, recursive=True):
        is_norm = isinstance(
            layer, (keras.layers.LayerNormalization, keras.layers.BatchNormalization)
        )
        # A layer's own variables, not those of its sublayers (visited themselves).
        for variable in getattr(layer, "_trainable_variables", []):
            if is_norm or variable.name.endswith("bias"):
                exempt[id(variable)] = variable
    return list(exempt.values())


def create_optimizer(
    model,
    learning_rate,
    weight_decay=0.01,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-6,
    global_clipnorm=1.0,
    loss_scaling=False,
):
    """AdamW for fine-tuning or pretraining BERT, weight decay off for biases and norms.

    Args:
        model: the built `keras.Model` to be trained (its variables decide the
            decay exemptions).
        learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`
            (e.g. `WarmupLinearDecay`).
        weight_decay: float. Decoupled weight decay. Defaults to `0.01`.
        beta_1, beta_2, epsilon: Adam's constants. BERT's `epsilon` is `1e-6`.
        global_clipnorm: float or None. Clip the global gradient norm.
            Defaults to `1.0` (BERT).
        loss_scaling: bool. Wrap in `keras.optimizers.LossScaleOptimizer`
            (needed for `mixed_float16`). Defaults to `False`.

    Returns:
        A `keras.optimizers.Optimizer`.
    """
    if not weight_decay >= 0:
        raise ValueError(f"`weight_decay` must be >= 0, received {weight_decay!r}.")
    optimizer = keras.optimizers.AdamW(
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


def linear_warmup_schedule(peak_learning_rate, total_steps, warmup_proportion=0.1):
    """`WarmupLinearDecay` warming up over `warmup_proportion` of `total_steps`, decaying to 0."""
    validation.check_rate("warmup_proportion", warmup_proportion)
    warmup_steps = int(round(total_steps * warmup_proportion))
    return WarmupLinearDecay(peak_learning_rate, warmup_steps, total_steps)
