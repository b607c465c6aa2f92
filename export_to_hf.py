#!/usr/bin/env python3
"""Export a trained model directory to Hugging Face (discriminator + generator). Flags: --help."""

from electra_tf.cli.export_to_hf import run

if __name__ == "__main__":
    run()
