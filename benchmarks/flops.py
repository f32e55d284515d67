"""Exact matmul FLOP counts of a BERT classifier step.

Only matrix products are counted, each as `2 * m * k * n` (one multiply and one
add per term): the Q, K, V and output projections, the attention score
(`Q K^T`) and context (`P V`) products, both feed-forward layers, the pooler
and the classifier head. Embedding gathers, normalisation, softmax, activations
and the optimizer update are memory-bound and not counted. A training step
costs three times the forward pass: every product also runs once for the
gradient of its input and once for the gradient of its weight.

Shape legend: B = batch, S = sequence length, D = hidden_dim, N = heads,
H = head size (D / N), I = intermediate_dim, C = classes.
"""


def block_forward_flops(batch_size, sequence_length, hidden_dim, intermediate_dim, num_queries=None):
    """Forward FLOPs of one transformer block.

    Args:
        batch_size, sequence_length, hidden_dim, intermediate_dim: ints.
        num_queries: int or None. Query positions computed per sequence; keys
            and values always cover all `sequence_length` positions. `None`
            means every position (a full block); `1` is a block that computes
            only the `[CLS]` output.

    Returns:
        int.
    """
    queries = sequence_length if num_queries is None else num_queries
    b, s, d, i = batch_size, sequence_length, hidden_dim, intermediate_dim
    key_value = 2 * (2 * b * s * d * d)
    query_and_output = 2 * (2 * b * queries * d * d)
    # N heads of (queries x H) x (H x S) and (queries x S) x (S x H): N * H = D.
    scores_and_context = 2 * (2 * b * queries * s * d)
    feedforward = 2 * (2 * b * queries * d * i)
    return key_value + query_and_output + scores_and_context + feedforward


def classifier_forward_flops(
    batch_size,
    sequence_length,
    num_layers,
    hidden_dim,
    intermediate_dim,
    num_classes,
    last_block_queries=None,
):
    """Forward FLOPs of encoder + pooler + head for one batch.

    Args:
        last_block_queries: int or None. Query positions the last block
            computes (`1` when only the `[CLS]` output is needed, as in
            `keras_bert`'s classifier); `None` for all.
    """
    full = block_forward_flops(batch_size, sequence_length, hidden_dim, intermediate_dim)
    last = block_forward_flops(
        batch_size, sequence_length, hidden_dim, intermediate_dim, last_block_queries
    )
    pooler = 2 * batch_size * hidden_dim * hidden_dim
    head = 2 * batch_size * hidden_dim * num_classes
    return (num_layers - 1) * full + last + pooler + head


def training_flops(forward_flops):
    """FLOPs of a training step: forward, input gradients, weight gradients."""
    return 3 * forward_flops
