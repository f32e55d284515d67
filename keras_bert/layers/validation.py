"""Argument checks shared by the layers and the encoder.

Each raises `ValueError` naming the argument in backticks and the value received.
"""

import numbers


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, received {value!r}.")


def check_positive_float(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"`{name}` must be a positive number, received {value!r}.")


def check_rate(name, value):
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= value < 1.0
    ):
        raise ValueError(f"`{name}` must be a number in [0, 1), received {value!r}.")


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {tuple(choices)}, received {value!r}."
        )


def check_bool(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be a bool, received {value!r}.")


def check_dot_product_attention(use_dot_product_attention, attention_dropout):
    """`keras.ops.dot_product_attention` has no dropout on the probabilities."""
    check_bool("use_dot_product_attention", use_dot_product_attention)
    if use_dot_product_attention and attention_dropout > 0:
        raise ValueError(
            "`use_dot_product_attention=True` needs `attention_dropout=0` (the fused "
            f"kernel has no dropout on the probabilities), received "
            f"`attention_dropout={attention_dropout!r}`."
        )
