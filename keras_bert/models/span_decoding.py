"""Choosing the answer span from `BertSpanLabeler` logits.

Numpy only, shared by training (SQuAD evaluation) and serving code.
"""

import numpy as np


def best_span(start_logits, end_logits, max_answer_length, start_mask, end_mask=None):
    """The highest-scoring valid span of one packed sequence.

    A span `(start, end)` is valid when `start_mask[start]` and
    `end_mask[end]` are true, `start <= end` and `end - start + 1 <=
    max_answer_length`. Its score is `start_logits[start] + end_logits[end]`.
    All `sequence_length**2` pairs are scored, so the answer is exact (no
    n-best pruning of starts and ends).

    Args:
        start_logits: float array of shape `(sequence_length,)`.
        end_logits: float array of shape `(sequence_length,)`.
        max_answer_length: int. Longest span, in tokens.
        start_mask: bool array of shape `(sequence_length,)`: positions that
            may start the answer (context tokens; in SQuAD-style windows, only
            those for which this window has the most context).
        end_mask: bool array of shape `(sequence_length,)`: positions that
            may end the answer. Defaults to `start_mask`.

    Returns:
        A tuple `(start, end, score)` of int, int, float, or `None` when no
        span is valid.

    Example:
    >>> best_span(np.array([0., 5., 1.]), np.array([0., 1., 4.]), 2,
    ...           np.array([False, True, True]))
    (1, 2, 9.0)
    """
    if not isinstance(max_answer_length, (int, np.integer)) or max_answer_length < 1:
        raise ValueError(
            f"`max_answer_length` must be a positive integer, received {max_answer_length!r}."
        )
    start_logits = np.asarray(start_logits, dtype=np.float64)
    end_logits = np.asarray(end_logits, dtype=np.float64)
    start_mask = np.asarray(start_mask, dtype=bool)
    end_mask = start_mask if end_mask is None else np.asarray(end_mask, dtype=bool)
    shapes = {a.shape for a in (start_logits, end_logits, start_mask, end_mask)}
    if len(shapes) != 1 or start_logits.ndim != 1:
        raise ValueError(
            "`start_logits`, `end_logits`, `start_mask` and `end_mask` must be 1-D of "
            f"one shape, received shapes {sorted(shapes)}."
        )
    length = start_logits.shape[0]
    positions = np.arange(length)
    # (start, end) grid: end - start in [0, max_answer_length).
    offset = positions[None, :] - positions[:, None]
    valid = (offset >= 0) & (offset < max_answer_length)
    valid &= start_mask[:, None] & end_mask[None, :]
    if not valid.any():
        return None
    scores = np.where(valid, start_logits[:, None] + end_logits[None, :], -np.inf)
    start, end = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return int(start), int(end), float(scores[start, end])
