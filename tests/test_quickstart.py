"""The README's main job, end to end at a tiny size: every artifact it promises exists and loads."""

import json
import re
import subprocess
import sys

import tensorflow as tf
from transformers import ElectraForPreTraining, ElectraTokenizerFast

from electra_tf import REPO_ROOT


def test_quickstart_builds_trains_evaluates_exports_and_runs_the_usage_example(tmp_path):
    out = tmp_path / "quickstart"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "electra_tf.cli.quickstart",
            f"--output-dir={out}",
            "--num-train-steps=4",
            "--train-batch-size=4",
            "--max-seq-length=32",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # 1. Records with a held-out split.
    info = json.loads((out / "data" / "dataset_info.json").read_text())
    assert info["train_shards"] and info["eval_shards"] and info["max_seq_length"] == 32
    # 2. A checkpoint at the last step, TensorBoard logs and the evaluation.
    model_dir = out / "model"
    assert tf.train.latest_checkpoint(str(model_dir / "checkpoints")).endswith("ckpt-4")
    assert list((model_dir / "train").glob("events.*"))
    results = json.loads((model_dir / "eval_results.json").read_text())
    assert results["global_step"] == 4 and 0.0 <= results["disc_auc"] <= 1.0
    assert "| AUC |" in result.stdout
    # 3. The export loads in transformers.
    discriminator_dir = out / "huggingface" / "discriminator"
    _, info = ElectraForPreTraining.from_pretrained(discriminator_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert ElectraTokenizerFast.from_pretrained(discriminator_dir).tokenize("El médico")
    assert (out / "huggingface" / "generator" / "config.json").is_file()
    # 4. The usage example ran and printed one 0/1 prediction per token; the summary says where things are.
    assert "tensorboard --logdir" in result.stdout
    predictions = [line for line in result.stdout.splitlines() if re.fullmatch(r"\s*\S+ [01]", line)]
    assert len(predictions) >= 9, result.stdout[-2000:]  # "El rápido zorro marrón amar sobre el perro perezoso"
