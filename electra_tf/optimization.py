"""The optimizer of ELECTRA pretraining: Google's learning-rate schedule, AdamW without bias correction, and LAMB.

What Google's ``model/optimization.py`` does, restated for Keras 3 (docs/algorithm.md#optimizer):

- :class:`ElectraLearningRate` multiplies a linear warmup *onto* a polynomial decay that starts at step 0, so
  ``lr(W) = peak·(1 − W/T)^p``, not ``peak`` (4.95e-4 for 5e-4, T=1M, W=10k).
- :class:`ElectraAdamW` is Google's ``AdamWeightDecayOptimizer``: Adam **without bias correction**, epsilon
  outside the square root, and decoupled weight decay added to the update for every variable whose path has
  none of ``LayerNorm``, ``layer_norm``, ``bias``. Keras' own ``AdamW`` is bias-corrected, so it is not used.
- :class:`ElectraLamb` is LAMB for large global batches, with the same exclusions (see its docstring for how it
  differs from ``keras.optimizers.Lamb``).
- Fine-tuning (:func:`create_finetuning_optimizer`) uses :class:`ElectraAdamW` with per-variable learning-rate
  multipliers: :func:`layerwise_lr_multipliers` gives lower layers geometrically smaller rates.

Neither optimizer clips gradients or scales the loss: the training step clips the global norm to 1.0 after
unscaling and accumulation, and mixed precision wraps the optimizer in ``keras.optimizers.LossScaleOptimizer``.
Both run inside ``tf.function(jit_compile=True)`` and under ``tf.distribute`` strategies; their slots are
ordinary optimizer variables, saved and restored by ``tf.train.Checkpoint(optimizer=...)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from electra_tf.config import PretrainingConfig
from electra_tf.errors import UserError

WEIGHT_DECAY_EXCLUSIONS = ("LayerNorm", "layer_norm", "bias")
"""Google's list: a variable whose path contains any of these is not weight-decayed."""


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Google's ELECTRA schedule: ``lr(t) = peak · (1 − min(t,T)/T)^power · min(1, (t − offset)/W)``.

    ``t`` is the optimizer's iteration count *before* the update, so with warmup the first update uses
    ``lr(0) = 0``. ``W = 0`` means no warmup.

    ``warmup_offset`` serves continued pretraining from imported weights whose optimizer slots are fresh
    (Google's released checkpoints have none): warmup is measured from step ``warmup_offset`` (the imported
    step), so the run re-warms up, while decay keeps using the global step as in Google's code (so set
    ``num_train_steps`` beyond the imported step). Before ``warmup_offset`` the rate is 0. With the default
    ``warmup_offset = 0`` the schedule is exactly Google's.
    """

    def __init__(
        self,
        peak_learning_rate: float,
        num_train_steps: int,
        num_warmup_steps: int,
        decay_power: float = 1.0,
        warmup_offset: int = 0,
    ) -> None:
        if num_train_steps <= 0:
            raise UserError(f"num_train_steps must be > 0, got {num_train_steps}.")
        if num_warmup_steps < 0 or warmup_offset < 0:
            raise UserError(
                f"num_warmup_steps and warmup_offset must be >= 0, got {num_warmup_steps} and {warmup_offset}."
            )
        self.peak_learning_rate = float(peak_learning_rate)
        self.num_train_steps = int(num_train_steps)
        self.num_warmup_steps = int(num_warmup_steps)
        self.decay_power = float(decay_power)
        self.warmup_offset = int(warmup_offset)

    def __call__(self, step: Any) -> Any:
        step = keras.ops.cast(step, "float32")
        total = float(self.num_train_steps)
        decay = keras.ops.power(1.0 - keras.ops.minimum(step, total) / total, self.decay_power)
        learning_rate = self.peak_learning_rate * decay
        if self.num_warmup_steps == 0:
            return learning_rate
        since_offset = keras.ops.maximum(step - float(self.warmup_offset), 0.0)
        return learning_rate * keras.ops.minimum(1.0, since_offset / float(self.num_warmup_steps))

    def get_config(self) -> dict[str, Any]:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "num_train_steps": self.num_train_steps,
            "num_warmup_steps": self.num_warmup_steps,
            "decay_power": self.decay_power,
            "warmup_offset": self.warmup_offset,
        }


def is_decayed(variable_path: str, exclusions: Sequence[str] = WEIGHT_DECAY_EXCLUSIONS) -> bool:
    """Whether a variable gets weight decay: False if any exclusion occurs in its path (Google's ``re.search``).

    Kernels and embedding tables are decayed; every ``bias``, ``output_bias`` and LayerNorm gamma/beta is not.
    """
    return not any(re.search(pattern, variable_path) for pattern in exclusions)


def variable_path(variable: Any) -> str:
    """The name weight-decay exclusion matches on: a Keras variable's ``path``, else a tf.Variable's ``name``.

    Keras' leaf ``name`` (``gamma``) loses the ``LayerNorm`` scope, and the wrapped tf.Variable's name drops
    nested layer scopes, so only the Keras path reliably carries the TF1-like segments.
    """
    return getattr(variable, "path", None) or variable.name


class _MomentsWithWeightDecay(keras.optimizers.Optimizer):
    """What both optimizers share: hyperparameters, ``adam_m`` / ``adam_v`` slots and per-variable decay flags.

    Decay flags are decided from the Keras variables when the optimizer is built, because under the TF
    backend ``update_step`` receives the underlying tf.Variable (a per-replica copy under a strategy), whose
    name no longer carries the layer path. Keras' own ``weight_decay`` argument is refused: its exclusion
    list matches the leaf name only, so LayerNorm gamma/beta would be decayed.
    """

    def __init__(
        self,
        learning_rate: Any,
        weight_decay_rate: float = 0.01,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-6,
        exclude_from_weight_decay: Sequence[str] = WEIGHT_DECAY_EXCLUSIONS,
        lr_multipliers: Sequence[tuple[Any, float]] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("weight_decay") is not None:
            raise ValueError(
                "Use weight_decay_rate, not Keras' weight_decay (its exclusion sees only the leaf variable name)."
            )
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.weight_decay_rate = float(weight_decay_rate)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.exclude_from_weight_decay_patterns = tuple(exclude_from_weight_decay)
        self._multiplier_of = {id(variable): float(factor) for variable, factor in lr_multipliers or ()}

    def build(self, var_list: Sequence[Any]) -> None:
        if self.built:
            return
        super().build(var_list)
        self._adam_m, self._adam_v = self.add_optimizer_variables(var_list, ["adam_m", "adam_v"])
        paths = [variable_path(variable) for variable in var_list]
        self._decay_flags = [is_decayed(path, self.exclude_from_weight_decay_patterns) for path in paths]
        if self._multiplier_of:
            uncovered = [
                path for path, variable in zip(paths, var_list, strict=True) if id(variable) not in self._multiplier_of
            ]
            if uncovered:
                raise ValueError(
                    f"lr_multipliers has no multiplier for {len(uncovered)} variables, e.g. {uncovered[0]}"
                )
        self._multipliers = [self._multiplier_of.get(id(variable), 1.0) for variable in var_list]

    def _variable_learning_rate(self, variable: Any, learning_rate: Any) -> tf.Tensor:
        """The step's learning rate for ``variable``: times its multiplier (1.0 unless one was given)."""
        multiplier = self._multipliers[self._get_variable_index(variable)]
        return tf.cast(learning_rate, variable.dtype) * multiplier

    def _next_moments(self, gradient: Any, variable: Any) -> tuple[tf.Tensor, tf.Tensor, bool]:
        """Updates and returns the moments ``(m, v)`` of ``variable``, and whether it is weight-decayed.

        Sparse gradients (``IndexedSlices`` from embedding lookups) are made dense first, as Google's optimizer
        does, so the moments of rows absent from the batch still decay every step.
        """
        index = self._get_variable_index(variable)
        gradient = tf.cast(tf.convert_to_tensor(gradient), variable.dtype)
        m, v = self._adam_m[index], self._adam_v[index]
        next_m = self.beta_1 * m + (1.0 - self.beta_1) * gradient
        next_v = self.beta_2 * v + (1.0 - self.beta_2) * tf.square(gradient)
        self.assign(m, next_m)
        self.assign(v, next_v)
        return next_m, next_v, self._decay_flags[index] and self.weight_decay_rate > 0

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "weight_decay_rate": self.weight_decay_rate,
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "exclude_from_weight_decay": list(self.exclude_from_weight_decay_patterns),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraAdamW(_MomentsWithWeightDecay):
    """Google's ``AdamWeightDecayOptimizer``, for each variable θ with gradient g::

        m ← β1·m + (1−β1)·g;   v ← β2·v + (1−β2)·g²
        u = m / (√v + ε)                  # no bias correction, ε outside the square root
        u += weight_decay_rate·θ          # only if is_decayed(θ's path); uses the pre-update θ
        θ ← θ − lr·multiplier(θ)·u        # multiplier 1.0 without ``lr_multipliers``

    ``lr_multipliers`` (``(variable, factor)`` pairs covering every variable, e.g. from
    :func:`layerwise_lr_multipliers`) scale the whole update, weight-decay term included, as Google's fine-tuning
    does with its per-layer learning rates. They belong to the variables, not to the config: ``get_config`` leaves
    them out (a restored run passes them again; checkpoints hold only the slots and the step).

    Slots are named ``adam_m`` / ``adam_v`` like Google's. Without bias correction the first updates are
    large (fresh slots give ``u ≈ 0.1·g/(√0.001·|g|) ≈ 3.2·sign(g)``), which is why warmup matters.
    """

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        m, v, decayed = self._next_moments(gradient, variable)
        update = m / (tf.sqrt(v) + self.epsilon)
        if decayed:
            update += self.weight_decay_rate * variable
        self.assign_sub(variable, self._variable_learning_rate(variable, learning_rate) * update)


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraLamb(_MomentsWithWeightDecay):
    """LAMB (You et al. 2019) with ELECTRA's weight-decay exclusions, as TF-Addons and NVIDIA's BERT define it::

        m, v as in Adam;  r = m̂ / (√v̂ + ε)   with bias-corrected m̂, v̂ (as keras.optimizers.Lamb)
        decayed θ:   r += weight_decay_rate·θ;   θ ← θ − lr·(‖θ‖/‖r‖)·r   (ratio 1 if either norm is 0)
        excluded θ:  θ ← θ − lr·r                (no decay and no layer adaptation: biases, LayerNorm)

    Why not ``keras.optimizers.Lamb`` as it is: its weight decay is Keras' generic ``θ −= lr·wd·θ`` applied
    before the step, outside the trust ratio (so the same ``wd`` means a different, usually much stronger,
    decay than in the LAMB paper); its exclusion list matches only the leaf variable name (``gamma``), so
    LayerNorm scales would be decayed; and it applies the trust ratio to biases and LayerNorm too.
    """

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        m, v, decayed = self._next_moments(gradient, variable)
        step = tf.cast(self.iterations + 1, variable.dtype)
        m_hat = m / (1.0 - tf.pow(tf.cast(self.beta_1, variable.dtype), step))
        v_hat = v / (1.0 - tf.pow(tf.cast(self.beta_2, variable.dtype), step))
        update = m_hat / (tf.sqrt(v_hat) + self.epsilon)
        learning_rate = self._variable_learning_rate(variable, learning_rate)
        if decayed:
            update += self.weight_decay_rate * variable
            weight_norm, update_norm = tf.norm(variable), tf.norm(update)
            learning_rate *= tf.where((weight_norm > 0) & (update_norm > 0), weight_norm / update_norm, 1.0)
        self.assign_sub(variable, learning_rate * update)


def create_optimizer(config: PretrainingConfig, warmup_offset: int = 0) -> keras.optimizers.Optimizer:
    """The pretraining optimizer of ``config``: :class:`ElectraAdamW` or :class:`ElectraLamb` on Google's schedule.

    ``warmup_offset`` is the step of imported weights when continuing pretraining (re-warm-up, see
    :class:`ElectraLearningRate`). The caller clips gradients and wraps the result for mixed precision.
    """
    if warmup_offset >= config.num_train_steps:
        raise UserError(
            f"num_train_steps ({config.num_train_steps}) must exceed the imported step ({warmup_offset}): "
            "the learning rate decays from step 0 and would already be 0."
        )
    schedule = ElectraLearningRate(
        config.learning_rate,
        config.num_train_steps,
        config.effective_warmup_steps,
        config.lr_decay_power,
        warmup_offset,
    )
    optimizer_class = {"adamw": ElectraAdamW, "lamb": ElectraLamb}[config.optimizer]
    return optimizer_class(schedule, weight_decay_rate=config.weight_decay_rate)


def optimizer_for_precision(config: PretrainingConfig) -> keras.optimizers.Optimizer:
    """:func:`create_optimizer`, wrapped for the run's precision (see :func:`wrap_for_precision`)."""
    return wrap_for_precision(create_optimizer(config), config.precision)


def wrap_for_precision(optimizer: keras.optimizers.Optimizer, precision: str) -> keras.optimizers.Optimizer:
    """``optimizer`` in a dynamic ``LossScaleOptimizer`` under ``mixed_float16`` (float16 gradients underflow
    without loss scaling; bfloat16 and float32 need none)."""
    if precision == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


_LAYER_NAME = re.compile(r"^electra/encoder/layer_(\d+)/")
_EMBEDDING_SCOPES = ("electra/embeddings/", "electra/embeddings_project/")


def layerwise_lr_multipliers(network: Any, decay: float) -> dict[str, float]:
    """``{TF1 name: learning-rate multiplier}`` for every variable of a fine-tuning network.

    ``network`` names its variables with ``tf1_variables()`` (``electra_tf.finetune.model``). With ``n``
    encoder layers, layer ``k`` (1-based, from the bottom) gets ``decay^(n−k+1)``, so the top layer gets
    ``decay``; the embeddings (their LayerNorm included) and ``embeddings_project`` get ``decay^(n+1)``; the
    task head gets 1.0. Google's ``_get_layer_lrs`` counts one depth too many (its top layer gets ``decay²``,
    its issues #51 and #64); here only the head keeps the full rate (README, "Differences from Google's code").
    """
    if not 0 < decay <= 1:
        raise UserError(f"layerwise_lr_decay must be in (0, 1], got {decay}.")
    names = list(network.tf1_variables())
    num_layers = network.encoder_config.num_hidden_layers
    multipliers = {}
    for name in names:
        if match := _LAYER_NAME.match(name):
            multipliers[name] = decay ** (num_layers - int(match.group(1)))
        elif name.startswith(_EMBEDDING_SCOPES):
            multipliers[name] = decay ** (num_layers + 1)
        else:
            multipliers[name] = 1.0
    return multipliers


def create_finetuning_optimizer(
    network: Any,
    *,
    learning_rate: float,
    num_train_steps: int,
    warmup_proportion: float = 0.1,
    weight_decay_rate: float = 0.01,
    layerwise_lr_decay: float = 0.8,
    precision: str = "float32",
) -> keras.optimizers.Optimizer:
    """Google's fine-tuning optimizer for ``network``: :class:`ElectraAdamW` (no bias correction, ε 1e-6, weight
    decay except LayerNorm and biases) with :func:`layerwise_lr_multipliers`, on a linear warmup over
    ``warmup_proportion`` of the steps then a linear decay to 0, wrapped for ``precision``.

    The caller clips gradients (global norm 1.0). ``layerwise_lr_decay=1`` gives every variable the full rate.
    """
    if not 0 <= warmup_proportion <= 1:
        raise UserError(f"warmup_proportion must be in [0, 1], got {warmup_proportion}.")
    if weight_decay_rate < 0 or not learning_rate > 0:
        raise UserError(
            f"learning_rate must be > 0 and weight_decay_rate >= 0, got {learning_rate} and {weight_decay_rate}."
        )
    schedule = ElectraLearningRate(learning_rate, num_train_steps, int(warmup_proportion * num_train_steps))
    multipliers = layerwise_lr_multipliers(network, layerwise_lr_decay)
    optimizer = ElectraAdamW(
        schedule,
        weight_decay_rate=weight_decay_rate,
        lr_multipliers=[(variable, multipliers[name]) for name, variable in network.tf1_variables().items()],
    )
    return wrap_for_precision(optimizer, precision)
