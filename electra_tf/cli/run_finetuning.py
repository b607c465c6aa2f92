"""``run_finetuning.py``: fine-tune a pretrained ELECTRA discriminator on a tagging or classification task.

``--task`` names a built-in Spanish task (its files in ``--data-dir`` as docs/finetuning_data.md
lists) or a generic ``tagging``/``classification`` task over the user's files, whose format the
format flags describe. The recipe (learning rate by size, layer-wise decay, epochs, batch,
sequence length, warmup, weight decay) comes from the model size; ``--hparams`` takes Google's
fine-tuning names, and a flag that is given wins over both. The results, the best weights of each
trial, predictions and TensorBoard logs go to ``--output-dir`` (see ``electra_tf/finetune/run.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from absl import flags

from electra_tf.atomic_io import check_output_directory
from electra_tf.cli.common import FLAGS, flag, run_main
from electra_tf.config import MODEL_SIZES, PRECISIONS, parse_hparams
from electra_tf.errors import UserError
from electra_tf.finetune.classification_files import DEFAULT_COLUMNS, TextColumns
from electra_tf.finetune.columns import ColumnFormat
from electra_tf.finetune.tasks import CLASSIFICATION, TAGGING, TASKS, Task, classification_task, get_task, tagging_task

flags.DEFINE_string(
    "task",
    None,
    f"The task: a built-in one, or tagging/classification over your own files ({', '.join(TASKS)}).",
)
flags.DEFINE_string(
    "data-dir",
    None,
    "Folder with the task's files (conll2002_ner: esp.train, esp.testa, esp.testb; tagging: train.txt, dev.txt, "
    "test.txt; classification: train.tsv, dev.tsv, test.tsv; see docs/finetuning_data.md). A task without a dev "
    "split uses a seeded slice of the training data, and says so.",
)
flags.DEFINE_string(
    "output-dir",
    None,
    "Where results.json, finetuning.json, trial_N/ (best weights, predictions, per-epoch scores) and the TensorBoard "
    "logs/ go. Must be empty or absent unless --overwrite.",
)
flags.DEFINE_string(
    "init-checkpoint",
    None,
    "The pretrained model: an electra_tf model directory (run_pretraining.py --model-dir), a Hugging Face ELECTRA "
    "directory (export_to_hf.py's output or its discriminator/), or a Google TF1 checkpoint.",
)
flags.DEFINE_boolean(
    "random-init",
    False,
    "Fresh weights instead of pretrained ones (a baseline): the architecture of --init-checkpoint, or of "
    "--model-size with --vocab-file when no checkpoint is given.",
)
flags.DEFINE_string(
    "vocab-file",
    None,
    "The vocab, for a starting point without vocab.txt (a Google checkpoint) or a random init; if the starting "
    "point has one, this must be the same.",
)
flags.DEFINE_enum(
    "model-size",
    None,
    list(MODEL_SIZES),
    "Size preset: the recipe's learning rate and layer-wise decay, and the architecture of a random init or of a "
    "Google checkpoint's unrecorded settings. Default: the starting point's size.",
)
flags.DEFINE_boolean(
    "do-lower-case",
    None,
    "Whether the vocab is uncased; needed only where the starting point does not record it (a Google checkpoint, "
    "a random init), and must agree where it does.",
)
flags.DEFINE_boolean("strip-accents", None, "Strip accents (uncased vocabs only). Default: as --do-lower-case.")
flags.DEFINE_string(
    "hparams",
    "{}",
    "Fine-tuning hyperparameters: a JSON object or the path of a JSON file, with Google's names (learning_rate, "
    "layerwise_lr_decay, num_train_epochs, train_batch_size, eval_batch_size, max_seq_length, warmup_proportion, "
    "weight_decay_rate, dev_fraction, log_every_steps, freeze_encoder, model_hparam_overrides).",
)
flags.DEFINE_float("learning-rate", None, "Peak learning rate. Default: 3e-4 small, 1e-4 base, 5e-5 large.")
flags.DEFINE_float(
    "layerwise-lr-decay",
    None,
    "Learning-rate factor per layer down from the top (the head gets the full rate). Default: 0.8, 0.9 for large.",
)
flags.DEFINE_integer("num-train-epochs", None, "Epochs per trial; the dev set is scored after each. Default: 3.")
flags.DEFINE_integer("train-batch-size", None, "Global training batch. Default: 32.")
flags.DEFINE_integer(
    "max-seq-length",
    None,
    "Longest model input in word pieces; longer sentences are tagged in overlapping windows (every word scored "
    "once), longer texts are cut. Default: 128.",
)
flags.DEFINE_boolean(
    "freeze-encoder",
    None,
    "A frozen-encoder probe: train only the task head on the pretrained encoder's last hidden states (the encoder "
    "runs in inference mode and gets no updates). Cheap, and sensitive to pretraining long before full fine-tuning "
    "is. Default: off.",
)
flags.DEFINE_integer(
    "num-trials", 1, "Independent runs with seeds --seed, --seed+1, ...; results.json has each and the median."
)
flags.DEFINE_integer("seed", 0, "Seed of the first trial (initialisation of the head, dropout, data order).")
flags.DEFINE_enum(
    "precision",
    "float32",
    list(PRECISIONS),
    "Numeric policy: mixed_float16 (V100-class GPUs, with loss scaling) or mixed_bfloat16 (A100/H100/TPU).",
)
flags.DEFINE_boolean("jit-compile", False, "Compile the training step with XLA (one program per padded batch shape).")
flags.DEFINE_enum(
    "distribution",
    "auto",
    ["auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu"],
    "tf.distribute strategy. auto: mirrored when several GPUs are visible, else one_device.",
)
flags.DEFINE_boolean("overwrite", False, "Replace a non-empty --output-dir (only once the new run has succeeded).")
flags.DEFINE_integer(
    "max-train-examples",
    None,
    "Train on only the first N training examples (quick runs, benchmarks); the output says how many were used.",
)
# The generic tasks' formats.
flags.DEFINE_integer("word-column", 0, "tagging: the word column (0-based; negative counts from the end).")
flags.DEFINE_integer("tag-column", -1, "tagging: the label column (0-based; -1 is the last).")
flags.DEFINE_enum("delimiter", "whitespace", ["whitespace", "tab"], "tagging: what separates the columns.")
flags.DEFINE_string("text-column", DEFAULT_COLUMNS.text_a, "classification: the column (or JSON key) of the text.")
flags.DEFINE_string("text-pair-column", None, "classification: the column of a second text, for text pairs.")
flags.DEFINE_string("label-column", DEFAULT_COLUMNS.label, "classification: the column (or JSON key) of the label.")
flags.DEFINE_enum("file-format", "tsv", ["tsv", "jsonl"], "classification: TSV with a header row, or JSON Lines.")

HPARAM_FLAGS = (
    "learning-rate",
    "layerwise-lr-decay",
    "num-train-epochs",
    "train-batch-size",
    "max-seq-length",
    "freeze-encoder",
)
"""Flags that set a fine-tuning hyperparameter of the same name (dashes become underscores)."""
_FORMAT_FLAGS = {
    TAGGING: ("word-column", "tag-column", "delimiter"),
    CLASSIFICATION: ("text-column", "text-pair-column", "label-column", "file-format"),
}


def selected_task() -> Task:
    """The ``--task``, with the format flags applied for the generic kinds (refused for the others)."""
    name = flag("task")
    for kind, names in _FORMAT_FLAGS.items():
        given = [f"--{format_flag}" for format_flag in names if FLAGS[format_flag].present]
        if given and name != kind:
            raise UserError(f"{', '.join(given)} describe the files of --task {kind}, not of --task {name}.")
    if name == TAGGING:
        delimiter = "\t" if flag("delimiter") == "tab" else None
        return tagging_task(ColumnFormat(flag("word-column"), flag("tag-column"), delimiter))
    if name == CLASSIFICATION:
        columns = TextColumns(flag("text-column"), flag("text-pair-column"), flag("label-column"))
        return classification_task(columns, f".{flag('file-format')}")
    return get_task(name)


def given_hparam_flags() -> dict[str, Any]:
    """The hyperparameter flags that were given, by hyperparameter name."""
    return {name.replace("-", "_"): flag(name) for name in HPARAM_FLAGS if flag(name) is not None}


def main() -> None:
    for required in ("task", "data-dir", "output-dir"):
        if not flag(required):
            raise UserError(f"--{required} is required (see --help).")
    if not flag("init-checkpoint") and not flag("random-init"):
        raise UserError(
            "give the pretrained model with --init-checkpoint, or --random-init (with --model-size and --vocab-file) "
            "for a baseline without pretraining."
        )
    task = selected_task()
    hparams = parse_hparams(flag("hparams"))
    output_dir = Path(flag("output-dir"))
    check_output_directory(output_dir, flag("overwrite"))  # before TensorFlow starts
    from electra_tf.finetune.run import FinetuningOptions, run_finetuning

    run_finetuning(
        FinetuningOptions(
            task=task,
            data_dir=Path(flag("data-dir")),
            output_dir=output_dir,
            init_checkpoint=Path(flag("init-checkpoint")) if flag("init-checkpoint") else None,
            random_init=flag("random-init"),
            vocab_file=Path(flag("vocab-file")) if flag("vocab-file") else None,
            model_size=flag("model-size"),
            do_lower_case=flag("do-lower-case"),
            strip_accents=flag("strip-accents"),
            hparams=hparams,
            hparam_flags=given_hparam_flags(),
            num_trials=flag("num-trials"),
            seed=flag("seed"),
            precision=flag("precision"),
            jit_compile=flag("jit-compile"),
            distribution=flag("distribution"),
            overwrite=flag("overwrite"),
            max_train_examples=flag("max-train-examples"),
        )
    )


def run() -> None:
    """Console-script entry point."""
    run_main(main)


if __name__ == "__main__":
    run()
