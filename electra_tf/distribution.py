"""The ``tf.distribute`` strategy of a run (``--strategy``), and which worker is the chief."""

from __future__ import annotations

import json
import os

import tensorflow as tf
from absl import logging

from electra_tf.errors import UserError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu")


def create_strategy(name: str, tpu: str | None = None) -> tf.distribute.Strategy:
    """The strategy called ``name``; ``auto`` is mirrored with several GPUs, one device otherwise.

    ``multi_worker_mirrored`` reads the cluster from ``TF_CONFIG``; ``tpu`` connects to ``tpu``
    (a name or ``grpc://`` address; empty for a local TPU VM).
    """
    if name not in STRATEGIES:
        raise UserError(f"--strategy must be one of {STRATEGIES}, got {name!r}.")
    # Physical devices: listing logical ones would start the runtime, and MultiWorkerMirroredStrategy
    # must be created before it starts ("Collective ops must be configured at program startup").
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "one_device"
    if name == "one_device":
        strategy = tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    elif name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    elif name == "multi_worker_mirrored":
        if "TF_CONFIG" not in os.environ:
            raise UserError("--strategy multi_worker_mirrored needs the cluster in the TF_CONFIG environment variable.")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    logging.info("Strategy %s with %d replica(s).", type(strategy).__name__, strategy.num_replicas_in_sync)
    return strategy


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints, logs and exports (worker 0, or the only process)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
        task_type, task_id = cluster.get("type"), cluster.get("index", 0)
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0)


def spans_several_workers(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` is a MultiWorkerMirroredStrategy whose replicas live in more than one process."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.num_replicas_in_sync > len(
        strategy.extended.worker_devices
    )


def check_every_worker_restored(strategy: tf.distribute.Strategy, step: int) -> None:
    """Refuse to go on unless every worker restored the same step.

    Each worker restores from its own view of the model directory. If that is not one shared directory
    (NFS, GCS...), the workers would start from different weights and silently train diverging copies.
    Every worker sees all the steps, so all of them stop with the same message.
    """
    if not spans_several_workers(strategy):
        return
    steps = strategy.gather(strategy.run(lambda: tf.constant([step], tf.int64)), axis=0).numpy().tolist()
    if len(set(steps)) > 1:
        raise UserError(
            f"the workers restored different steps ({', '.join(map(str, steps))}, by worker): every worker must "
            "see the same --model-dir, on storage they share (NFS, GCS), so all resume from the chief's checkpoint."
        )
