#!/usr/bin/env python3
"""Fine-tune a pretrained ELECTRA discriminator on a tagging or classification task. Flags: --help."""

from electra_tf.cli.run_finetuning import run

if __name__ == "__main__":
    run()
