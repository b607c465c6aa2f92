"""``export_to_hf.py``: write a trained model directory as Hugging Face ``transformers`` models.

Example::

    python export_to_hf.py --model-dir models/electricidad-small --output-dir hf/electricidad-small \\
        --hub-repo-prefix my-org/electricidad-small

writes ``hf/electricidad-small/discriminator`` (``ElectraForPreTraining``, the model to fine-tune)
and ``hf/electricidad-small/generator`` (``ElectraForMaskedLM``), each with its config, weights,
tokenizer files and a model card, ready for ``huggingface-cli upload``.

Given ``run_finetuning.py``'s output directory (it holds ``finetuning.json``), it writes one model
instead: ``ElectraForTokenClassification`` or ``ElectraForSequenceClassification`` with the label
names, loadable by ``transformers.pipeline``.
"""

from __future__ import annotations

from absl import flags

from electra_tf.cli.common import flag, run_main

flags.DEFINE_string(
    "model-dir",
    None,
    "Model directory of run_pretraining.py (holds config.json, vocab.txt, checkpoints/), or the --output-dir of "
    "run_finetuning.py (holds finetuning.json), which is exported as one fine-tuned model.",
    required=True,
)
flags.DEFINE_string(
    "output-dir",
    None,
    "Where to write discriminator/ and generator/, or the fine-tuned model (written atomically).",
    required=True,
)
flags.DEFINE_string(
    "checkpoint",
    None,
    "Checkpoint prefix to export, e.g. MODEL_DIR/checkpoints/ckpt-20000. Default: the newest in MODEL_DIR/checkpoints. "
    "Not for a fine-tuned model: its finetuning.json names the chosen weights.",
)
flags.DEFINE_string(
    "hub-repo-prefix",
    None,
    "Hub name the model cards' usage snippets load, e.g. my-org/electricidad-small (the snippets then use "
    "my-org/electricidad-small-discriminator and -generator); for a fine-tuned model, its repo itself "
    "(e.g. my-org/electra-es-ner). Default: the exported directories' paths.",
)
flags.DEFINE_boolean("overwrite", False, "Replace --output-dir if it exists and is not empty.")


def main() -> None:
    from electra_tf.interop.hf_finetuned_export import is_finetuning_output

    if is_finetuning_output(flag("model-dir")):
        export_finetuned()
        return
    from electra_tf.interop.hf_export import export_model_dir

    output = export_model_dir(
        flag("model-dir"),
        flag("output-dir"),
        checkpoint=flag("checkpoint"),
        hub_repo_prefix=flag("hub-repo-prefix"),
        overwrite=flag("overwrite"),
    )
    print(f"Exported {output}/discriminator (ElectraForPreTraining) and {output}/generator (ElectraForMaskedLM).")


def export_finetuned() -> None:
    """Export run_finetuning.py's output directory as one model."""
    from electra_tf.errors import UserError
    from electra_tf.interop.hf_finetuned_export import export_finetuning_dir

    if flag("checkpoint") is not None:
        raise UserError(
            f"--checkpoint does not apply to a fine-tuning output directory ({flag('model-dir')}): its "
            "finetuning.json names the weights the run chose."
        )
    output = export_finetuning_dir(
        flag("model-dir"), flag("output-dir"), hub_repo=flag("hub-repo-prefix"), overwrite=flag("overwrite")
    )
    print(f"Exported the fine-tuned model to {output}.")


def run() -> None:
    """Console-script entry point."""
    run_main(main)


if __name__ == "__main__":
    run()
