#!/usr/bin/env python3
"""Pretrain ELECTRA (generator + discriminator). Flags: python run_pretraining.py --helpfull."""

from electra_tf.cli.run_pretraining import run

if __name__ == "__main__":
    run()
