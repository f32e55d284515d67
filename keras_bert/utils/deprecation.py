"""Old names that keep working: one warning for every renamed argument or attribute."""

import warnings

# The default of a deprecated keyword whose `None` is a meaningful value: "not given".
UNSET = object()


def warn_renamed(old, new, stacklevel=3):
    """Warns (`DeprecationWarning`, at the caller's caller) that `old` is now named `new`.

    Args:
        old: str. The old spelling as a user writes it, e.g. `"convert_examples(max_seq_length=...)"`.
        new: str. The new name, e.g. `"sequence_length"`.
        stacklevel: int. The frame the warning points at (3: the caller of the function that
            calls this one).
    """
    warnings.warn(f"`{old}` is deprecated: use `{new}`.", DeprecationWarning, stacklevel=stacklevel)


def renamed_argument(old, old_value, new, new_value, unset=None):
    """The value of a renamed keyword argument: the old keyword's, with a warning, if given.

    Args:
        old: str. The old spelling, e.g. `"convert_examples(max_seq_length=...)"`.
        old_value: the value passed under the old name (`unset` when not given).
        new: str. The new name.
        new_value: the value passed under the new name (or its default).
        unset: what `old_value` is when the old keyword was not given: `None`, or `UNSET`
            where `None` is a meaningful value.
    """
    if old_value is unset:
        return new_value
    warn_renamed(old, new, stacklevel=4)
    return old_value
