"""``run_pretraining.py``: train an ELECTRA generator and discriminator jointly.

The flags choose a size preset and the run; ``--hparams`` takes any Google hyperparameter. A flag
that is given wins over the same value in ``--hparams``, which wins over the preset. Re-running the
same command resumes from the newest checkpoint in ``--model-dir``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from absl import flags

from electra_tf.cli.common import flag, run_main
from electra_tf.config import (
    DEFAULT_MODEL_SIZE,
    MASKING_MODES,
    MODEL_SIZES,
    OPTIMIZERS,
    PRECISIONS,
    PretrainingConfig,
    parse_hparams,
    resolve_run_config,
)
from electra_tf.errors import UserError


def _default(name: str) -> str:
    """ "Default: ..." for the help of the flag that sets config field ``name``, read from the presets
    (``config.py`` is the one home of every default)."""
    shown = {size: _shown(getattr(PretrainingConfig.from_size(size), name)) for size in MODEL_SIZES}
    if len(set(shown.values())) == 1:
        return f"Default: {shown[DEFAULT_MODEL_SIZE]}."
    return "Default: the preset's (" + ", ".join(f"{value} {size}" for size, value in shown.items()) + ")."


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


flags.DEFINE_enum(
    "model-size",
    None,
    list(MODEL_SIZES),
    f"Size preset (ELECTRA paper Table 6); default {DEFAULT_MODEL_SIZE}, or the stored run's when resuming.",
)
flags.DEFINE_string(
    "data-dir",
    None,
    "Output directory of build_pretraining_dataset.py (holds dataset_info.json, train/ and eval/ shards). "
    "The vocab, lower-casing and sequence length are taken from it.",
)
flags.DEFINE_string(
    "model-dir",
    None,
    "Directory for config.json, vocab.txt, checkpoints/, TensorBoard logs (train/, eval/) and "
    "eval_results.json. Re-running with the same directory resumes from its newest checkpoint.",
)
flags.DEFINE_string(
    "hparams",
    "{}",
    "Hyperparameter overrides: a JSON object or the path of a JSON file, with Google's names "
    '(e.g. \'{"mask_prob": 0.25, "model_hparam_overrides": {"num_hidden_layers": 6}}\').',
)
flags.DEFINE_enum(
    "precision",
    None,
    list(PRECISIONS),
    "Numeric policy. mixed_float16 for V100-class GPUs (with loss scaling), mixed_bfloat16 for A100/H100/TPU. "
    + _default("precision"),
)
flags.DEFINE_boolean("jit-compile", None, f"Compile the training step with XLA. {_default('jit_compile')}")
flags.DEFINE_integer("num-train-steps", None, "Total optimizer steps of the run (the LR decays to 0 at this step).")
flags.DEFINE_integer("num-warmup-steps", None, f"Linear warmup steps. {_default('num_warmup_steps')}")
flags.DEFINE_integer(
    "train-batch-size", None, "Global batch per optimizer step, across all replicas and accumulation steps."
)
flags.DEFINE_integer("eval-batch-size", None, f"Global batch for evaluation. {_default('eval_batch_size')}")
flags.DEFINE_float("learning-rate", None, f"Peak learning rate. {_default('learning_rate')}")
flags.DEFINE_enum("optimizer", None, list(OPTIMIZERS), "adamw (Google's Adam) or lamb for very large batches.")
flags.DEFINE_enum(
    "masking",
    None,
    list(MASKING_MODES),
    "How the masked positions of a row are drawn. distinct: a random set of distinct tokens, exactly mask_prob "
    "of the row. google: Google's draws with replacement (repeats averaged: about 13.8% masked at 15%), to "
    "reproduce its runs. " + _default("masking"),
)
flags.DEFINE_integer(
    "gradient-accumulation-steps",
    None,
    "Split each global batch into this many micro-batches and apply one update (reach a large batch on a small GPU).",
)
flags.DEFINE_integer(
    "save-checkpoints-steps", None, f"Write a checkpoint every this many steps. {_default('save_checkpoints_steps')}"
)
flags.DEFINE_integer(
    "keep-checkpoint-max", None, f"Keep this many newest checkpoints. {_default('keep_checkpoint_max')}"
)
flags.DEFINE_integer(
    "log-every-steps", None, f"Write TensorBoard scalars every this many steps. {_default('log_every_steps')}"
)
flags.DEFINE_integer(
    "steps-per-execution",
    None,
    f"Training steps run per compiled call (fewer Python round trips). {_default('steps_per_execution')}",
)
flags.DEFINE_boolean("do-train", True, "Train (resuming from the newest checkpoint in --model-dir if any).")
flags.DEFINE_boolean("do-eval", False, "After training, evaluate on the held-out shards and write eval_results.json.")
flags.DEFINE_integer("num-eval-steps", None, f"Evaluation batches. {_default('num_eval_steps')}")
flags.DEFINE_integer(
    "eval-every-steps",
    None,
    "Also evaluate on the held-out shards every this many steps while training (TensorBoard eval/ and "
    f"eval_history.jsonl); 0: off. {_default('eval_every_steps')}",
)
flags.DEFINE_integer(
    "seed", None, f"Random seed for initialisation, masking, sampling and data order. {_default('seed')}"
)
flags.DEFINE_string(
    "init-checkpoint",
    None,
    "Start from existing weights: a Hugging Face export (directory with discriminator/ and generator/, or one "
    "discriminator directory) or a Google TF1 checkpoint. Optimizer state starts fresh, with a new warmup.",
)
flags.DEFINE_enum(
    "strategy",
    "auto",
    ["auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu"],
    "tf.distribute strategy. auto: mirrored when several GPUs are visible, else one_device. "
    "multi_worker_mirrored reads the cluster from TF_CONFIG.",
)
flags.DEFINE_string("tpu", None, "TPU name or grpc:// address for --strategy tpu.")

# Flags that set a PretrainingConfig field of the same name (dashes become underscores).
CONFIG_FLAGS = (
    "precision",
    "jit-compile",
    "num-train-steps",
    "num-warmup-steps",
    "train-batch-size",
    "eval-batch-size",
    "learning-rate",
    "optimizer",
    "masking",
    "gradient-accumulation-steps",
    "save-checkpoints-steps",
    "keep-checkpoint-max",
    "log-every-steps",
    "steps-per-execution",
    "num-eval-steps",
    "eval-every-steps",
    "seed",
)


def given_config_flags() -> dict[str, Any]:
    """The config flags that were given, by config field name."""
    return {name.replace("-", "_"): flag(name) for name in CONFIG_FLAGS if flag(name) is not None}


def main() -> None:
    for required in ("data-dir", "model-dir"):
        if not flag(required):
            raise UserError(f"--{required} is required (see --help).")
    hparams, config_flags = parse_hparams(flag("hparams")), given_config_flags()
    # Validate the flags before TensorFlow starts (a typo should not cost the start-up time).
    resolve_run_config(flag("model-size"), hparams, config_flags)
    from electra_tf.data.shard_check import naming_damaged_shards
    from electra_tf.training import RunOptions, run_pretraining

    options = RunOptions(
        data_dir=Path(flag("data-dir")),
        model_dir=Path(flag("model-dir")),
        model_size=flag("model-size"),
        hparams=hparams,
        config_flags=config_flags,
        do_train=flag("do-train"),
        do_eval=flag("do-eval"),
        init_checkpoint=Path(flag("init-checkpoint")) if flag("init-checkpoint") else None,
        strategy=flag("strategy"),
        tpu=flag("tpu"),
    )
    if not options.do_train and not options.do_eval:
        raise UserError("nothing to do: pass --do-train and/or --do-eval.")
    with naming_damaged_shards(options.data_dir):
        run_pretraining(options)


def run() -> None:
    """Console-script entry point."""
    run_main(main)


if __name__ == "__main__":
    run()
