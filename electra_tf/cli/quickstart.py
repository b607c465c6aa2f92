"""The whole job on the embedded sample, in a few minutes on a laptop CPU: ``python -m electra_tf.cli.quickstart``.

It runs the project's own command-line tools, printing each command as it goes so the user sees the
real commands to use on their own corpus:

1. ``build_pretraining_dataset.py``: the sample corpus (``sample_corpus/``) and the default Spanish
   vocab (``vocab/vocab.txt``) → TFRecords with a held-out split;
2. ``run_pretraining.py``: a short pretraining run of a reduced ELECTRA (4 layers, hidden 128) with
   XLA, checkpoints and TensorBoard logs, then ``--do-eval`` on the held-out examples;
3. ``export_to_hf.py``: the Hugging Face discriminator and generator directories;
4. the usage example of the exported model card, run unchanged with ``transformers``.

Everything lands in ``--output-dir``; a summary at the end says where. The model is far too small and
too briefly trained to be useful: the run shows the pipeline working and the losses falling.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from absl import flags

from electra_tf import DEFAULT_VOCAB_FILE, REPO_ROOT, SAMPLE_CORPUS_DIR
from electra_tf.cli.common import flag, run_main
from electra_tf.errors import UserError

flags.DEFINE_string("output-dir", "quickstart_output", "Folder for every artifact (dataset, model, export).")
flags.DEFINE_integer("num-train-steps", 300, "Pretraining steps (about 0.5 s each on 2 CPU cores).")
flags.DEFINE_integer("train-batch-size", 32, "Global batch per step.")
flags.DEFINE_integer("max-seq-length", 128, "Tokens per example.")
flags.DEFINE_boolean("overwrite", False, "Start again in an existing --output-dir (otherwise a finished step is kept).")

QUICKSTART_MODEL = {
    "embedding_size": 64,
    "model_hparam_overrides": {"hidden_size": 128, "num_hidden_layers": 4},
}
"""A reduced ELECTRA-small: 4 layers, hidden 128 (2 heads, FFN 512), embeddings 64, generator 1/4."""


def _run(step: str, arguments: list[str]) -> str:
    """Run one project tool, echoing its command; its log goes to the terminal, its stdout is returned."""
    command = [sys.executable, *arguments]
    shown = " ".join(shlex.quote(part) for part in ["python", *arguments])
    print(f"\n=== {step}\n$ {shown}\n", flush=True)
    start = time.monotonic()
    result = subprocess.run(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    if result.stdout:
        print(result.stdout, end="", flush=True)
    if result.returncode != 0:
        raise UserError(f"{step} failed (exit {result.returncode}); its messages are above.")
    print(f"--- {step}: done in {time.monotonic() - start:.0f} s", flush=True)
    return result.stdout


def usage_example(card: Path) -> str | None:
    """The python code block of an exported model card (its usage example), or None if it has none."""
    match = re.search(r"```python\n(.*?)```", card.read_text(encoding="utf-8"), flags=re.DOTALL)
    return match.group(1) if match else None


def main() -> None:
    out = (REPO_ROOT / flag("output-dir")).resolve()
    data_dir, model_dir, export_dir = out / "data", out / "model", out / "huggingface"
    overwrite = ["--overwrite"] if flag("overwrite") else []
    if flag("overwrite") and model_dir.exists():
        shutil.rmtree(model_dir)
    started = time.monotonic()

    if not (data_dir / "dataset_info.json").is_file() or flag("overwrite"):
        _run(
            "1/4 build the pretraining dataset",
            [
                "build_pretraining_dataset.py",
                f"--corpus-dir={SAMPLE_CORPUS_DIR.relative_to(REPO_ROOT)}",
                f"--vocab-file={DEFAULT_VOCAB_FILE.relative_to(REPO_ROOT)}",
                f"--output-dir={data_dir}",
                f"--max-seq-length={flag('max-seq-length')}",
                "--eval-fraction=0.05",
                *overwrite,
            ],
        )
    _run(
        "2/4 pretrain (generator + discriminator) and evaluate",
        [
            "run_pretraining.py",
            "--model-size=small",
            f"--hparams={json.dumps(QUICKSTART_MODEL)}",
            f"--data-dir={data_dir}",
            f"--model-dir={model_dir}",
            f"--num-train-steps={flag('num-train-steps')}",
            f"--train-batch-size={flag('train-batch-size')}",
            "--num-warmup-steps=100",
            "--learning-rate=2e-4",
            "--save-checkpoints-steps=100",
            "--log-every-steps=25",
            "--eval-batch-size=16",
            "--do-eval",
        ],
    )
    _run(
        "3/4 export to Hugging Face",
        ["export_to_hf.py", f"--model-dir={model_dir}", f"--output-dir={export_dir}", "--overwrite"],
    )
    card = export_dir / "discriminator" / "README.md"
    example = usage_example(card)
    print("\n=== 4/4 the model card's usage example, run with transformers on the export", flush=True)
    if example is None:
        raise UserError(f"{card} has no usage example.")
    if importlib.util.find_spec("torch") is None:
        print("torch is not installed, so the example is not run (install: pip install -r requirements-hf.txt).")
    else:
        print(example)
        subprocess.run([sys.executable, "-c", example], cwd=REPO_ROOT, check=True)

    print(
        f"\nDone in {(time.monotonic() - started) / 60:.1f} min. Everything is in {out}:\n"
        f"  dataset (TFRecords, dataset_info.json) : {data_dir}\n"
        f"  model (config.json, checkpoints/)      : {model_dir}\n"
        f"  evaluation                             : {model_dir / 'eval_results.json'}\n"
        f"  Hugging Face export                    : {export_dir}/discriminator, {export_dir}/generator\n"
        f"  TensorBoard                            : tensorboard --logdir {model_dir}\n"
    )


def run() -> None:
    """Console-script entry point."""
    run_main(main)


if __name__ == "__main__":
    run()
