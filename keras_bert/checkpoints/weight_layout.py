"""How source checkpoint tensors become `BertEncoder` weights.

Both importers describe a checkpoint as a table that maps each encoder weight
(named by its path inside the encoder, e.g.
`transformer_layer_3/self_attention_layer/qkv_kernel`) to one or more source
tensor names and a layout. The layout says how the source tensors are
rearranged:

- `"same"`: one source tensor with the target's shape.
- `"heads_kernel"`: a `(hidden_dim, hidden_dim)` query, key or value kernel
  viewed as `(hidden_dim, num_heads, head_dim)`.
- `"heads_bias"`: a `(hidden_dim,)` bias viewed as `(num_heads, head_dim)`.
- `"heads_output_kernel"`: a `(hidden_dim, hidden_dim)` kernel viewed as
  `(num_heads, head_dim, hidden_dim)`.

Source kernels are expected in `(input_dim, output_dim)` order; an importer
whose format stores `(output_dim, input_dim)` (PyTorch `Linear`) transposes
them while reading.
"""

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint is missing, malformed, or does not fit the model config."""


def encoder_weights(encoder):
    """Maps each encoder weight path used by the importers to its variable."""
    weights = {}
    embeddings = encoder.embeddings_layer
    weights["embeddings/token_embedding"] = embeddings.token_embedding.embeddings
    weights["embeddings/segment_embedding"] = embeddings.segment_embedding.embeddings
    if embeddings.position_embeddings is not None:
        weights["embeddings/position_embeddings"] = embeddings.position_embeddings
    if embeddings.embeddings_layer_norm is not None:
        weights["embeddings/embeddings_layer_norm/gamma"] = embeddings.embeddings_layer_norm.gamma
        weights["embeddings/embeddings_layer_norm/beta"] = embeddings.embeddings_layer_norm.beta
    if embeddings.embedding_projection is not None:
        weights["embeddings/embedding_projection/kernel"] = embeddings.embedding_projection.kernel
        weights["embeddings/embedding_projection/bias"] = embeddings.embedding_projection.bias
    for i, block in enumerate(encoder.transformer_layers):
        prefix = f"transformer_layer_{i}"
        attention = block.self_attention_layer
        for projection in ("query", "key", "value"):
            weights[f"{prefix}/self_attention_layer/{projection}_kernel"] = getattr(
                attention, f"{projection}_kernel"
            )
            weights[f"{prefix}/self_attention_layer/{projection}_bias"] = getattr(
                attention, f"{projection}_bias"
            )
        weights[f"{prefix}/self_attention_layer/output_kernel"] = attention.output_kernel
        weights[f"{prefix}/self_attention_layer/output_bias"] = attention.output_bias
        for name in (
            "self_attention_layer_norm",
            "feedforward_layer_norm",
        ):
            layer_norm = getattr(block, name)
            weights[f"{prefix}/{name}/gamma"] = layer_norm.gamma
            weights[f"{prefix}/{name}/beta"] = layer_norm.beta
        for name in ("feedforward_intermediate_dense", "feedforward_output_dense"):
            dense = getattr(block, name)
            weights[f"{prefix}/{name}/kernel"] = dense.kernel
            weights[f"{prefix}/{name}/bias"] = dense.bias
    weights["pooler_dense/kernel"] = encoder.pooler_dense.kernel
    weights["pooler_dense/bias"] = encoder.pooler_dense.bias
    # A bias-free encoder (`use_bias=False`) has no bias variables to map.
    return {path: weight for path, weight in weights.items() if weight is not None}


def expected_source_shapes(layout, target_shape):
    """The shape each source tensor must have to fill `target_shape`."""
    if layout == "same":
        return [tuple(target_shape)]
    if layout == "heads_kernel":
        hidden_dim, num_heads, head_dim = target_shape
        return [(hidden_dim, num_heads * head_dim)]
    if layout == "heads_bias":
        num_heads, head_dim = target_shape
        return [(num_heads * head_dim,)]
    if layout == "heads_output_kernel":
        num_heads, head_dim, hidden_dim = target_shape
        return [(num_heads * head_dim, hidden_dim)]
    raise ValueError(f"Unknown weight layout {layout!r}.")


def arrange(layout, sources, target_shape):
    """Rearranges checked source arrays into one array of `target_shape`."""
    if layout == "same":
        return sources[0]
    if layout in ("heads_kernel", "heads_bias", "heads_output_kernel"):
        # (D, N*H) -> (D, N, H), (N*H,) -> (N, H), (N*H, D) -> (N, H, D):
        # the N*H axis is ordered head by head in both checkpoint formats.
        return sources[0].reshape(target_shape)
    raise ValueError(f"Unknown weight layout {layout!r}.")


def assign_weights(encoder, table, read_tensor, checkpoint_path):
    """Fills every encoder weight from the checkpoint, or raises `CheckpointError`.

    Args:
        encoder: a built `BertEncoder`.
        table: dict of encoder weight path -> (layout, list of source names).
        read_tensor: callable(source_name) -> numpy array, or None if absent.
            Kernels must already be in `(input_dim, output_dim)` order.
        checkpoint_path: string, used in error messages.
    """
    variables = encoder_weights(encoder)
    missing_targets = sorted(set(variables) - set(table))
    if missing_targets:
        raise CheckpointError(
            f"The importer has no source for encoder weights {missing_targets}; "
            "this model configuration cannot be loaded from this format."
        )
    values = {}
    missing_sources = []
    for path, variable in variables.items():
        layout, source_names = table[path]
        target_shape = tuple(variable.shape)
        sources = []
        for source_name, expected in zip(
            source_names, expected_source_shapes(layout, target_shape)
        ):
            array = read_tensor(source_name)
            if array is None:
                missing_sources.append(source_name)
                continue
            if tuple(array.shape) != tuple(expected):
                raise CheckpointError(
                    f"Shape mismatch in {checkpoint_path}: checkpoint variable "
                    f"{source_name!r} has shape {tuple(array.shape)}, but the "
                    f"model config needs {tuple(expected)} for encoder weight "
                    f"{path!r}."
                )
            sources.append(np.asarray(array, dtype="float32"))
        if len(sources) == len(source_names):
            values[path] = arrange(layout, sources, target_shape)
    if missing_sources:
        raise CheckpointError(
            f"Checkpoint {checkpoint_path} is missing {len(missing_sources)} "
            f"weights the model needs, e.g. {missing_sources[:5]}."
        )
    for path, variable in variables.items():
        variable.assign(values[path])
