"""bench/bench_finetuning.py gives both sides the same data and recipe, and tabulates what they report."""

import sys
from pathlib import Path

import pytest
from absl import flags

from electra_tf import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "bench"))
import bench_finetuning as bench
import hf_finetuning as hf

from electra_tf.cli import run_finetuning as electra_tf_cli  # noqa: F401  (defines the absl flags)

SETTINGS = bench.Settings(
    model_dir=Path("/models/export"),
    task="conll2002_ner",
    data_dir=Path("/data/conll"),
    max_train_examples=1024,
    batch_size=16,
    max_seq_length=64,
    epochs=2,
    learning_rate=2e-4,
    layerwise_lr_decay=0.7,
    seed=5,
)


def test_both_sides_parse_the_same_data_and_recipe(tmp_path):
    """Each command is read back by its own program's parser: the shared settings come out the same."""
    theirs = hf.build_parser().parse_args(bench.hf_run(SETTINGS, 2, tmp_path).command[2:])
    assert (theirs.model_dir, theirs.task, theirs.data_dir) == (SETTINGS.model_dir, "conll2002_ner", SETTINGS.data_dir)
    assert (theirs.max_train_examples, theirs.batch_size, theirs.max_seq_length, theirs.epochs) == (1024, 16, 64, 2)
    assert (theirs.learning_rate, theirs.layerwise_lr_decay, theirs.threads) == (2e-4, 0.7, 2)
    assert (theirs.seeds, theirs.split_seed) == ("5", 5)
    for config, (precision, xla) in {
        "float32+xla": ("float32", True),
        "mixed_bfloat16": ("mixed_bfloat16", False),
    }.items():
        ours = flags.FLAGS
        ours(["run_finetuning.py", *bench.electra_tf_run(SETTINGS, config, tmp_path).command[2:]])
        try:
            assert ours["init-checkpoint"].value == str(SETTINGS.model_dir)
            assert (ours.task, ours["data-dir"].value) == ("conll2002_ner", str(SETTINGS.data_dir))
            assert ours["max-train-examples"].value == 1024 and ours["train-batch-size"].value == 16
            assert ours["max-seq-length"].value == 64 and ours["num-train-epochs"].value == 2
            assert ours["learning-rate"].value == 2e-4 and ours["layerwise-lr-decay"].value == 0.7
            assert ours.seed == 5 and ours["num-trials"].value == 1
            assert ours.precision == precision and ours["jit-compile"].value is xla
        finally:
            ours.unparse_flags()


def test_the_table_shows_each_runs_rates_scores_and_load():
    speed = {"examples_per_epoch": 1100, "examples_per_second": 50.0, "examples_per_second_after_first_epoch": 62.5}
    rows = [
        {"name": "electra_tf float32", "throughput": speed, "dev": 0.5, "test": 0.25, "metric": "entity_f1",
         "wall_seconds": 120.4, "load_average": [2.5, 3.25]},
        {"name": "HF", "throughput": {**speed, "examples_per_second_after_first_epoch": None}, "dev": 0.75,
         "test": None, "metric": "entity_f1", "wall_seconds": 60.0, "load_average": [1.0, 1.0]},
    ]  # fmt: skip
    lines = bench.markdown_table(rows).splitlines()
    assert lines[0].count("|") == lines[1].count("|") == 9 and "dev entity_f1" in lines[0]
    assert lines[2] == "| electra_tf float32 | 1100 | 50.0 | 62.5 | 0.5000 | 0.2500 | 120 | 2.50 → 3.25 |"
    assert lines[3] == "| HF | 1100 | 50.0 | – | 0.7500 | – | 60 | 1.00 → 1.00 |"


def test_an_unknown_configuration_is_one_error_line():
    with pytest.raises(SystemExit, match="error: --configs: unknown float64"):
        bench.main(["--model-dir", "m", "--data-dir", "d", "--configs", "float32,float64"])
