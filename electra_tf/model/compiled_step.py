"""What every custom Keras training step of the project shares: the compiled inner function, the
global-batch gradient update, and logs that Keras reduces correctly across replicas.

Pretraining (``pretrainer.py``) and fine-tuning (``finetune/trainer.py``) both run the forward and
backward pass in one ``tf.function(jit_compile=...)`` per model (:class:`CompiledPerModel`) rather
than ``compile(jit_compile=True)``, because XLA-compiling the whole Keras step fails under
``MirroredStrategy`` (README.md#design). Both divide their losses by global-batch denominators
summed across replicas before the pass, so summing the replicas' gradients gives exactly the
global batch's gradient; :func:`apply_global_gradients` then clips its norm to 1.0 (unscaled, as on
one device) and applies it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from electra_tf.model.metrics import GRAD_NORM, LEARNING_RATE, LOSS_SCALE

CLIP_NORM = 1.0


class CompiledPerModel:
    """Decorator of a model method: one ``tf.function`` per model, XLA-compiled when the model's
    ``step_jit_compile`` attribute says so."""

    def __init__(self, method: Callable[..., Any]) -> None:
        self.method = method
        self.__doc__ = method.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, model: keras.Model | None, owner: type | None = None):
        if model is None:
            return self
        function = tf.function(self.method.__get__(model), jit_compile=model.step_jit_compile, reduce_retracing=True)
        model.__dict__[self.name] = function  # built once: later lookups find it before this descriptor
        return function

    @staticmethod
    def build_all(model: keras.Model) -> None:
        """Create every compiled function of ``model`` now, under the scope it is built in, rather
        than in the replicas' threads when the step is first traced (each would make its own)."""
        for owner in type(model).__mro__:
            for attribute in vars(owner).values():
                if isinstance(attribute, CompiledPerModel):
                    attribute.__get__(model)


def replica_position() -> tuple[int | tf.Tensor, int]:
    """``(replica id, number of replicas)`` of the calling replica (``(0, 1)`` outside a strategy)."""
    replica = tf.distribute.get_replica_context()
    if replica is None:
        return 0, 1
    return replica.replica_id_in_sync_group, replica.num_replicas_in_sync


def sum_over_replicas(values: list[tf.Tensor]) -> list[tf.Tensor]:
    """Each value summed over the replicas of the step (unchanged with one replica)."""
    replica = tf.distribute.get_replica_context()
    if replica is None or replica.num_replicas_in_sync == 1:
        return list(values)
    return replica.all_reduce(tf.distribute.ReduceOp.SUM, list(values))


def sum_statistics_over_replicas(statistics: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """The global batch's statistics on every replica: Keras averages the replicas' metric results,
    and an average of per-replica ratios is not the global batch's ratio."""
    names = sorted(statistics)
    return dict(zip(names, sum_over_replicas([statistics[name] for name in names]), strict=True))


def reducible_by_keras(logs: dict[str, tf.Tensor], several_workers: bool) -> dict[str, tf.Tensor]:
    """``logs`` as Keras can reduce them: across several workers it calls ``strategy.reduce(MEAN, axis=0)``,
    which fails on scalars (tensorflow/tensorflow#72388), so there each becomes a ``[1]`` vector. Every
    replica holds the same values (global sums), so the mean is exact."""
    if several_workers:
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs


def loss_scale(optimizer: keras.optimizers.Optimizer) -> tf.Tensor:
    """The factor the loss is multiplied by before differentiation (1.0 without a LossScaleOptimizer)."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return tf.cast(tf.convert_to_tensor(optimizer.dynamic_scale), tf.float32)
    return tf.constant(1.0)


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> tf.Tensor:
    """The learning rate of the coming update (the inner optimizer's, under loss scaling)."""
    inner = optimizer.inner_optimizer if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) else optimizer
    return tf.cast(tf.convert_to_tensor(inner.learning_rate), tf.float32)


def apply_global_gradients(
    optimizer: keras.optimizers.Optimizer, gradients: list[tf.Tensor], variables: list[Any], scale: tf.Tensor
) -> tf.Tensor:
    """Sum this replica's gradients (of ``scale · loss``) over the replicas, clip the global batch's
    gradient to norm :data:`CLIP_NORM` and apply it; returns the unscaled norm before clipping."""
    _, num_replicas = replica_position()
    gradients = sum_over_replicas(gradients)
    # The clip sees the true gradient norm: unscaled, of the global batch.
    norm = tf.linalg.global_norm(gradients) / scale
    factor = tf.minimum(1.0, CLIP_NORM / norm)
    # The optimizer sums the per-replica gradients again, so hand each replica its share.
    optimizer.apply([g * (factor / num_replicas) for g in gradients], variables)
    return norm


def step_logs(
    logs: dict[str, tf.Tensor],
    optimizer: keras.optimizers.Optimizer,
    gradient_norm: tf.Tensor,
    learning_rate: tf.Tensor,
    scale: tf.Tensor,
    several_workers: bool,
) -> dict[str, tf.Tensor]:
    """A training step's ``logs`` with what every step reports besides its metrics (the gradient norm,
    the learning rate and, under loss scaling, the loss scale), in the form Keras can reduce."""
    logs[GRAD_NORM] = gradient_norm
    logs[LEARNING_RATE] = learning_rate
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        logs[LOSS_SCALE] = scale
    return reducible_by_keras(logs, several_workers)
