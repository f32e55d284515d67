"""Pretraining recipes: named sets of values for the knobs of `training.pretrain`.

A recipe gives every knob a value; a flag given on the command line overrides
its recipe's value. `budget`, the default, gathers the changes of the budget
recipes of Cramming (Geiping and Goldstein 2022), 24-hour BERT (Izsak et al.
2021) and Wettig et al. (2023) (pre-LN, no biases, no dropout, AdamW (0.9,
0.98), 6% warmup, 30% masking) with an initializer range of 0.05 and a peak
learning rate of 2e-3: the README's pretraining section measures its masked
LM leaving the unigram plateau by step 300, where BERT's initializer range of
0.02 keeps it there for 600 steps and more. Its next-sentence head also reads
the two segments' mean representations (`SegmentPairHead`), at a quarter of
the masked-LM loss's weight: with BERT's `[CLS]` head alone the next-sentence
accuracy stays at chance until step ~800, and at full weight the segment head
holds the masked LM on its unigram plateau. `bert` is the original recipe of Devlin
et al. (2018): post-LN blocks, biases, dropout 0.1, 15% masking, AdamW (0.9,
0.999), initializer range 0.02, a warmup of 10% of the steps then linear decay;
its learning rate is this project's for the small presets at batch 32
(PRETRAINING.md's rule gives the paper's `1e-4` at batch 256).

Example:
>>> resolve("bert", {"learning_rate": 5e-4})["learning_rate"]
0.0005
"""

import math

# The `BertEncoder` presets the pretraining apps offer (`keras_bert.bert_encoder.PRESETS`'s
# names, listed here so that defining flags imports no TensorFlow).
PRESET_NAMES = ("bert_tiny", "bert_mini", "bert_small", "bert_medium", "bert_base", "bert_large")

# Knob name -> what it sets (the flag's help text).
KNOBS = {
    "norm_first": "Pre-LN blocks with a final layer norm (post-LN: BERT's).",
    "embedding_layer_norm": "Layer-normalise the summed embeddings.",
    "use_bias": "Biases in the attention projections and feed-forward dense layers.",
    "tie_embeddings": "Masked-LM output projection tied to the token embedding table.",
    "initializer_range": "Standard deviation of the truncated-normal initial weights of a new "
                         "model (embeddings, attention, feed-forward, heads).",
    "dropout": "Dropout of the encoder and its attention while pretraining.",
    "masked_lm_prob": "Fraction of the tokens masked.",
    "nsp_loss_weight": "Weight of the next-sentence loss against the masked-LM loss.",
    "nsp_segment_means": "The next-sentence head also reads the mean final representations of "
                         "the two segments (their product and absolute difference), beside "
                         "`[CLS]`'s pooled output (BERT: the pooled output only).",
    "learning_rate": "Peak learning rate.",
    "beta_1": "First-moment decay of AdamW/LAMB.",
    "beta_2": "Second-moment decay of AdamW/LAMB.",
    "epsilon": "Epsilon of AdamW/LAMB.",
    "weight_decay": "Decoupled weight decay (never on biases and norms).",
    "clipnorm": "Clip the global gradient norm to this; 0 disables it.",
    "schedule": "Learning-rate schedule: `warmup_linear_decay` or `budget_triangle`.",
    "warmup_proportion": "Fraction of the steps of warmup (`warmup_linear_decay`).",
    "decay_proportion": "Fraction of the steps, at the end, of linear decay; the rate holds "
                        "its peak before (`warmup_linear_decay`; 1.0: BERT's).",
}

SCHEDULES = ("warmup_linear_decay", "budget_triangle")

# The budget triangle (Cramming): the rate starts at 25% of the peak, rises
# linearly to the peak at 75% of the steps (or of the time budget) and falls
# linearly to the end rate over the last 25%.
BUDGET_TRIANGLE = {"warmup_start": 0.25, "warmup_proportion": 0.75, "decay_proportion": 0.25}

RECIPES = {
    "bert": {
        "norm_first": False,
        "embedding_layer_norm": True,
        "use_bias": True,
        "tie_embeddings": True,
        "initializer_range": 0.02,
        "dropout": 0.1,
        "masked_lm_prob": 0.15,
        "nsp_loss_weight": 1.0,
        "nsp_segment_means": False,
        "learning_rate": 1e-3,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-6,
        "weight_decay": 0.01,
        "clipnorm": 1.0,
        "schedule": "warmup_linear_decay",
        "warmup_proportion": 0.1,
        "decay_proportion": 1.0,
    },
    "budget": {
        "norm_first": True,
        "embedding_layer_norm": True,
        "use_bias": False,
        "tie_embeddings": True,
        "initializer_range": 0.05,
        "dropout": 0.0,
        "masked_lm_prob": 0.3,
        "nsp_loss_weight": 0.25,
        "nsp_segment_means": True,
        "learning_rate": 2e-3,
        "beta_1": 0.9,
        "beta_2": 0.98,
        "epsilon": 1e-12,
        "weight_decay": 0.01,
        "clipnorm": 1.0,
        "schedule": "warmup_linear_decay",
        "warmup_proportion": 0.06,
        "decay_proportion": 1.0,
    },
}
DEFAULT_RECIPE = "budget"

# Knobs of a new model, not of its training: with `--init_checkpoint` they come from the
# checkpoint. The encoder's (`BertEncoder` arguments), then the pretraining heads'.
ENCODER_KNOBS = ("norm_first", "embedding_layer_norm", "use_bias", "initializer_range")
HEAD_KNOBS = ("tie_embeddings", "nsp_segment_means")
ARCHITECTURE_KNOBS = ENCODER_KNOBS + HEAD_KNOBS


def resolve(recipe, given):
    """Every knob's value: `given`'s where it is not None, else the recipe's.

    Args:
        recipe: string. A key of `RECIPES`.
        given: dict of knob name -> value or None (a flag left unset).

    Returns:
        dict of knob name -> value, one entry per `KNOBS` key.

    Raises:
        ValueError: an unknown recipe or knob name.
    """
    if recipe not in RECIPES:
        raise ValueError(f"`recipe` must be one of {sorted(RECIPES)}, received {recipe!r}.")
    unknown = sorted(set(given) - set(KNOBS))
    if unknown:
        raise ValueError(f"Unknown knobs {unknown}; known: {sorted(KNOBS)}.")
    values = dict(RECIPES[recipe])
    values.update({name: value for name, value in given.items() if value is not None})
    return values


def schedule_arguments(values):
    """`RevisableWarmupLinearDecay` arguments (`warmup_proportion`, ...) of resolved knobs."""
    if values["schedule"] == "budget_triangle":
        return dict(BUDGET_TRIANGLE)
    return {
        "warmup_start": 0.0,
        "warmup_proportion": values["warmup_proportion"],
        "decay_proportion": values["decay_proportion"],
    }


def max_predictions(sequence_length, masked_lm_prob):
    """Masked positions per sequence that fit `masked_lm_prob` of `sequence_length` tokens.

    `ceil(sequence_length * masked_lm_prob)`: 20 for BERT's 128 tokens at 15%.
    """
    return max(1, math.ceil(sequence_length * masked_lm_prob))
