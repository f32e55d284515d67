"""Old names that keep working: one warning for every renamed argument or attribute."""

import warnings


def warn_renamed(old, new):
    """Warns (`DeprecationWarning`, at the caller's caller) that `old` is now named `new`.

    Args:
        old: str. The old spelling as a user writes it, e.g. `"convert_examples(max_seq_length=...)"`.
        new: str. The new name, e.g. `"sequence_length"`.
    """
    warnings.warn(f"`{old}` is deprecated: use `{new}`.", DeprecationWarning, stacklevel=3)
