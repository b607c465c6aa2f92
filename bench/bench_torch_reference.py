#!/usr/bin/env python3
"""The ELECTRA training step in PyTorch with Hugging Face ``transformers``: the comparison point.

What a team would write without electra_tf: an ``ElectraForMaskedLM`` generator and an
``ElectraForPreTraining`` discriminator sized from the same :class:`PretrainingConfig`
(generator = ``config.generator_config()``), sharing one embedding module, the generator's output
layer tied to the word embeddings. One step does what ``ElectraPretrainer`` does: mask distinct
positions (85% become [MASK]), run the generator, its LM head only at the masked positions, sample
replacements with the Gumbel-max trick, label replaced tokens, run the discriminator, take
``MLM + 50·BCE``, clip the global norm at 1.0 and apply AdamW (no decay on biases and LayerNorm).
Dropout is on in both networks. PyTorch runs eagerly (as HF's ``Trainer`` does by default) with
as many threads as there are usable cores.

Timing is the same as ``bench_training.py``'s: a fresh process per configuration, warm-up steps,
then ``--runs`` runs of ``--steps`` steps on one real batch; ``float32`` and ``bfloat16`` autocast.

    python bench/bench_torch_reference.py                       # batch 32, seq 128
    python bench/bench_torch_reference.py --batch-sizes 32,128
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import step_timing

TORCH_SCRIPT = Path(__file__).resolve()
TORCH_PRECISIONS = ("float32", "bfloat16")
"""``bfloat16`` runs the forward passes under ``torch.autocast`` (weights and optimizer stay float32)."""


# ------------------------------------------------------------------------------------------------
# Child process: one configuration.
# ------------------------------------------------------------------------------------------------
def build_models(spec: dict[str, Any], vocab_size: int):
    """Generator and discriminator with shared embeddings and a tied generator output layer."""
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

    from electra_tf.config import PretrainingConfig

    config = PretrainingConfig.from_size(
        spec["model_size"], {"vocab_size": vocab_size, "max_seq_length": spec["seq_length"]}
    )
    discriminator = ElectraForPreTraining(ElectraConfig(**config.discriminator_config().to_dict()))
    generator = ElectraForMaskedLM(ElectraConfig(**config.generator_config().to_dict()))
    generator.electra.embeddings = discriminator.electra.embeddings
    generator.generator_lm_head.weight = discriminator.electra.embeddings.word_embeddings.weight
    return config, generator, discriminator


def create_optimizer(config, modules):
    """AdamW over the unique parameters; biases and LayerNorm weights are not decayed (as in Google's)."""
    import torch

    named = {}
    for module in modules:
        for name, parameter in module.named_parameters():
            named.setdefault(id(parameter), (name, parameter))
    decayed = [p for name, p in named.values() if "bias" not in name and "LayerNorm" not in name]
    undecayed = [p for name, p in named.values() if "bias" in name or "LayerNorm" in name]
    groups = [
        {"params": decayed, "weight_decay": config.weight_decay_rate},
        {"params": undecayed, "weight_decay": 0.0},
    ]
    parameters = decayed + undecayed
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.999), eps=1e-6), parameters


def mask_batch(input_ids, input_mask, facts: dict[str, int], config):
    """Distinct masked positions per row (top-k of random scores over the candidates), 85% [MASK].

    Returns the masked ids, positions ``[B, N]``, targets and slot weights, as ``mask_batch`` does.
    """
    import torch

    max_predictions = config.max_predictions_per_seq
    is_special = (input_ids == facts["cls_id"]) | (input_ids == facts["sep_id"]) | (input_ids == facts["mask_id"])
    candidates = input_mask.bool() & ~is_special
    scores = torch.where(candidates, torch.rand(input_ids.shape), torch.tensor(-1.0))
    positions = scores.topk(max_predictions, dim=1).indices
    wanted = torch.round(input_mask.sum(1).float() * config.mask_prob).long().clamp(1, max_predictions)
    count = torch.minimum(wanted, candidates.sum(1))
    weights = (torch.arange(max_predictions)[None, :] < count[:, None]).float()
    targets = input_ids.gather(1, positions) * weights.long()
    use_mask = (torch.rand(weights.shape) < 0.85) & (weights > 0)
    masked_ids = input_ids.scatter(
        1, positions, torch.where(use_mask, facts["mask_id"], input_ids.gather(1, positions))
    )
    return masked_ids, positions, targets, weights


def training_step(batch, facts, config, generator, discriminator, optimizer, parameters, autocast) -> float:
    """One ELECTRA step (masking, generator, Gumbel sampling, discriminator, losses, clip, AdamW)."""
    import torch
    import torch.nn.functional as functional

    input_ids, input_mask, segment_ids = batch["input_ids"], batch["input_mask"], batch["segment_ids"]
    masked_ids, positions, targets, weights = mask_batch(input_ids, input_mask, facts, config)
    with autocast():
        hidden = generator.electra(masked_ids, attention_mask=input_mask, token_type_ids=segment_ids).last_hidden_state
        at_positions = hidden.gather(1, positions[:, :, None].expand(-1, -1, hidden.shape[-1]))
        logits = generator.generator_lm_head(generator.generator_predictions(at_positions)).float()
    log_probs = functional.log_softmax(logits, dim=-1)
    mlm_loss = -(weights * log_probs.gather(-1, targets[:, :, None])[..., 0]).sum() / (weights.sum() + 1e-6)

    with torch.no_grad():
        uniform = torch.rand(logits.shape).clamp(1e-9, 1.0 - 1e-7)
        sampled = (logits / config.temperature - torch.log(-torch.log(uniform))).argmax(-1)
        chosen = weights > 0
        fake_ids = input_ids.scatter(1, positions, torch.where(chosen, sampled, input_ids.gather(1, positions)))
        labels = (fake_ids != input_ids).float()

    with autocast():
        disc_logits = discriminator(fake_ids, attention_mask=input_mask, token_type_ids=segment_ids).logits.float()
    token_weights = input_mask.float()
    bce = functional.binary_cross_entropy_with_logits(disc_logits, labels, reduction="none")
    disc_loss = (bce * token_weights).sum() / (token_weights.sum() + 1e-6)
    loss = config.gen_weight * mlm_loss + config.disc_weight * disc_loss

    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    optimizer.step()
    return float(loss)


def train_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Warm up, then time ``runs`` runs of ``steps`` steps."""
    import contextlib
    import functools

    import torch

    torch.set_num_threads(step_timing.usable_cores())
    torch.manual_seed(1234)
    features, facts = step_timing.load_batch(spec["batch_file"])
    batch = {name: torch.from_numpy(values).long() for name, values in features.items()}
    config, generator, discriminator = build_models(spec, facts["vocab_size"])
    generator.train()
    discriminator.train()
    optimizer, parameters = create_optimizer(config, [generator, discriminator])
    if spec["precision"] == "bfloat16":
        autocast = functools.partial(torch.autocast, "cpu", dtype=torch.bfloat16)
    else:
        autocast = contextlib.nullcontext
    step = functools.partial(
        training_step, batch, facts, config, generator, discriminator, optimizer, parameters, autocast
    )

    for _ in range(spec["warmup_steps"]):
        step()
    step_seconds = []
    for _ in range(spec["runs"]):
        start = time.perf_counter()
        for _ in range(spec["steps"]):
            step()
        step_seconds.append((time.perf_counter() - start) / spec["steps"])
    return {"step_seconds": step_seconds, "peak_rss": step_timing.peak_rss_bytes()}


# ------------------------------------------------------------------------------------------------
# Parent process.
# ------------------------------------------------------------------------------------------------
def torch_measurements(
    model_size: str,
    seq_length: int,
    batch_size: int,
    precisions: list[str],
    timing: step_timing.Timing,
    folder: Path,
    peaks: dict[str, float],
) -> list[step_timing.Measurement]:
    """One row per precision of the PyTorch step (each in its own process)."""
    spec = {"model_size": model_size, "seq_length": seq_length, "batch_size": batch_size}
    return [
        step_timing.measure_in_child(
            TORCH_SCRIPT,
            f"PyTorch/HF {precision}{' autocast' if precision == 'bfloat16' else ''}, eager",
            {**spec, "precision": precision},
            timing,
            folder,
            peaks,
            precision,
        )
        for precision in precisions
    ]


def torch_version() -> dict[str, str]:
    """The versions of the reference's libraries (read without importing torch into the parent)."""
    from importlib.metadata import version

    return {"torch": version("torch"), "transformers": version("transformers")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    step_timing.add_common_flags(parser)
    parser.add_argument("--precisions", default=",".join(TORCH_PRECISIONS), help="float32 and/or bfloat16")
    args = parser.parse_args()
    precisions = step_timing.parse_list(args.precisions, TORCH_PRECISIONS, "--precisions")

    peaks = step_timing.print_setup(torch_version(), tuple(precisions))
    timing = step_timing.timing_from_flags(args)
    with tempfile.TemporaryDirectory(prefix="bench_torch_") as name:
        for batch_size in step_timing.parse_sizes(args.batch_sizes):
            rows = torch_measurements(
                args.model_size, args.seq_length, batch_size, precisions, timing, Path(name), peaks
            )
            step_timing.print_table(f"ELECTRA-{args.model_size}, seq {args.seq_length}, batch {batch_size}", rows)


if __name__ == "__main__":
    child_spec = step_timing.child_spec_from_argv()
    if child_spec is not None:
        step_timing.answer_parent(train_child(child_spec))
    else:
        main()
