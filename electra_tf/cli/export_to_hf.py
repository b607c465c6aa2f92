"""``export_to_hf.py``: write a trained model directory as Hugging Face ``transformers`` models.

Example::

    python export_to_hf.py --model-dir models/electricidad-small --output-dir hf/electricidad-small \\
        --hub-repo-prefix my-org/electricidad-small

writes ``hf/electricidad-small/discriminator`` (``ElectraForPreTraining``, the model to fine-tune)
and ``hf/electricidad-small/generator`` (``ElectraForMaskedLM``), each with its config, weights,
tokenizer files and a model card, ready for ``huggingface-cli upload``.
"""

from __future__ import annotations

from absl import flags

from electra_tf.cli.common import flag, run_main

flags.DEFINE_string(
    "model-dir",
    None,
    "Model directory of run_pretraining.py (holds config.json, vocab.txt, checkpoints/).",
    required=True,
)
flags.DEFINE_string(
    "output-dir", None, "Where to write discriminator/ and generator/ (written atomically).", required=True
)
flags.DEFINE_string(
    "checkpoint",
    None,
    "Checkpoint prefix to export, e.g. MODEL_DIR/checkpoints/ckpt-20000. Default: the newest in MODEL_DIR/checkpoints.",
)
flags.DEFINE_string(
    "hub-repo-prefix",
    None,
    "Hub name the model cards' usage snippets load, e.g. my-org/electricidad-small (the snippets then use "
    "my-org/electricidad-small-discriminator and -generator). Default: the exported directories' paths.",
)
flags.DEFINE_boolean("overwrite", False, "Replace --output-dir if it exists and is not empty.")


def main() -> None:
    from electra_tf.interop.hf_export import export_model_dir

    output = export_model_dir(
        flag("model-dir"),
        flag("output-dir"),
        checkpoint=flag("checkpoint"),
        hub_repo_prefix=flag("hub-repo-prefix"),
        overwrite=flag("overwrite"),
    )
    print(f"Exported {output}/discriminator (ElectraForPreTraining) and {output}/generator (ElectraForMaskedLM).")


def run() -> None:
    """Console-script entry point."""
    run_main(main)


if __name__ == "__main__":
    run()
