"""The machine's dense matmul peak, measured with the best kernel available.

The peak is the highest rate any of several kernels reaches on any of several
shapes: TensorFlow's `MatMul` (oneDNN on x86), `Einsum` on a 3D activation,
`BatchMatMulV2` with a batch axis, and the same `MatMul` compiled by XLA, on
the matrix shapes of a `bert_small` step and on square matrices. Each timed
call runs several independent products (distinct left operands, so that no
common-subexpression pass can merge them) and only a scalar leaves the
function, so the rate is the kernel's, not the copy-out's.
"""

import time

import numpy as np

# (m, k, n): the projections, both feed-forward products, then squares.
DEFAULT_SHAPES = (
    (2048, 512, 512),
    (2048, 512, 2048),
    (2048, 2048, 512),
    (1024, 1024, 1024),
    (2048, 2048, 2048),
)
KERNELS = ("matmul", "einsum_3d", "batch_matmul", "xla_matmul")


def _products_function(tf, kernel, operands, weight):
    """A `tf.function` computing `weight @ each operand`'s product and one scalar."""

    def matmul():
        return tf.add_n([tf.matmul(a, weight)[0, 0] for a in operands])

    def einsum_3d():
        return tf.add_n(
            [tf.einsum("bsk,kn->bsn", tf.reshape(a, (16, -1, a.shape[-1])), weight)[0, 0, 0] for a in operands]
        )

    def batch_matmul():
        batched = tf.broadcast_to(weight, (16,) + tuple(weight.shape))
        return tf.add_n(
            [tf.matmul(tf.reshape(a, (16, -1, a.shape[-1])), batched)[0, 0, 0] for a in operands]
        )

    if kernel == "xla_matmul":
        return tf.function(matmul, jit_compile=True)
    return tf.function({"matmul": matmul, "einsum_3d": einsum_3d, "batch_matmul": batch_matmul}[kernel])


def measure_peak(dtype, shapes=DEFAULT_SHAPES, kernels=KERNELS, repeats=3, products_per_call=4, seed=0):
    """Measures matmul throughput for every kernel and shape.

    Args:
        dtype: string. `"float32"` or `"bfloat16"`.
        shapes: sequence of `(m, k, n)`.
        kernels: names from `KERNELS`.
        repeats: int. Timed calls per kernel and shape; the fastest counts.
        products_per_call: int. Independent products per call.

    Returns:
        A list of dicts `{"kernel", "m", "k", "n", "gflops"}`, one per
        kernel and shape, `gflops` being the best rate observed.
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    results = []
    for m, k, n in shapes:
        operands = [
            tf.cast(tf.constant(rng.standard_normal((m, k), dtype="float32")), dtype)
            for _ in range(products_per_call)
        ]
        weight = tf.cast(tf.constant(rng.standard_normal((k, n), dtype="float32")), dtype)
        flops = 2.0 * m * k * n * products_per_call
        for kernel in kernels:
            function = _products_function(tf, kernel, operands, weight)
            function().numpy()  # Trace, compile, warm the thread pools.
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                function().numpy()
                best = min(best, time.perf_counter() - start)
            results.append({"kernel": kernel, "m": m, "k": k, "n": n, "gflops": flops / best / 1e9})
    return results


def best(results):
    """The entry with the highest `gflops`."""
    return max(results, key=lambda entry: entry["gflops"])
