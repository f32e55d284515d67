"""Creating the `tf.distribute.Strategy` that training apps build their models under.

    strategy = distribution.create_strategy("mirrored", num_cpu_devices=2)
    with strategy.scope():
        model = ...            # variables are created per replica
        model.compile(...)
    model.fit(dataset)         # batches are split across replicas

| name           | strategy                                                                  |
|----------------|---------------------------------------------------------------------------|
| `one_device`   | `OneDeviceStrategy` on the first GPU, else the CPU                        |
| `mirrored`     | `MirroredStrategy` over the local GPUs, or over `num_cpu_devices` logical |
|                | CPU devices (a way to test replica code on one machine)                   |
| `multi_worker` | `MultiWorkerMirroredStrategy`; the cluster comes from `TF_CONFIG`          |
| `tpu`          | `TPUStrategy` through `TPUClusterResolver(tpu=tpu_address)`                |

Call `create_strategy` before anything else touches TensorFlow devices: logical CPU
devices and TPU initialisation must happen before the runtime starts.
"""

import json
import os

STRATEGIES = ("one_device", "mirrored", "multi_worker", "tpu")


def configure_cpu_devices(num_devices):
    """Splits the physical CPU into `num_devices` logical devices `/cpu:0..N-1`.

    Args:
        num_devices: int >= 1.

    Raises:
        ValueError: `num_devices` is not a positive integer.
        RuntimeError: TensorFlow's runtime already started with another
            number of CPU devices.
    """
    import tensorflow as tf

    if isinstance(num_devices, bool) or not isinstance(num_devices, int) or num_devices < 1:
        raise ValueError(f"`num_cpu_devices` must be a positive integer, received {num_devices!r}.")
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == num_devices:
        return
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
    )


def create_strategy(name="one_device", num_cpu_devices=None, tpu_address=None):
    """Creates a distribution strategy by name.

    Args:
        name: str. One of `STRATEGIES`. Defaults to `"one_device"`.
        num_cpu_devices: int or None. For `mirrored` without GPUs: the number
            of logical CPU devices to mirror over. Defaults to `None` (the
            local GPUs, else one CPU device).
        tpu_address: str or None. For `tpu`: the TPU name or `grpc://` address;
            `None` or `""` means the local TPU (e.g. a TPU VM).

    Returns:
        A `tf.distribute.Strategy`.
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}, received {name!r}.")
    if num_cpu_devices is not None and name != "mirrored":
        raise ValueError(
            f"`num_cpu_devices` ({num_cpu_devices}) only applies to strategy 'mirrored', "
            f"received strategy {name!r}."
        )
    if name == "one_device":
        device = "/gpu:0" if tf.config.list_physical_devices("GPU") else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        if num_cpu_devices is not None:
            configure_cpu_devices(num_cpu_devices)
            return tf.distribute.MirroredStrategy(
                [f"/cpu:{i}" for i in range(num_cpu_devices)]
            )
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or "")
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy=None):
    """Whether this process should write outputs (checkpoints, metrics, logs).

    Every process is the chief except under `MultiWorkerMirroredStrategy`,
    where it is task `chief`, or `worker` 0 of a cluster without a chief.
    With no strategy given, `TF_CONFIG` decides.
    """
    resolver = getattr(strategy, "cluster_resolver", None) if strategy is not None else None
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", None)
    cluster = {}
    if resolver is not None:
        cluster = resolver.cluster_spec().as_dict()
    elif strategy is None and os.environ.get("TF_CONFIG"):
        tf_config = json.loads(os.environ["TF_CONFIG"])
        task = tf_config.get("task", {})
        task_type, task_id = task.get("type"), task.get("index")
        cluster = tf_config.get("cluster", {})
    if task_type in (None, "chief"):
        return True
    if task_type == "worker":
        return "chief" not in cluster and (task_id or 0) == 0
    return False  # evaluators and parameter servers do not write training outputs


def distribute_dataset_options():
    """`tf.data.Options` that shard by data: in-memory datasets have no files to shard."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return options
