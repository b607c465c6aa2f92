"""The ``README.md`` model card of an exported network.

In the style of the Spanish ELECTRA cards on the Hub (e.g. Electricidad's): a model-details table,
the pretraining evaluation of the discriminator (accuracy, precision, recall, AUC) and of the
generator (MLM accuracy) when ``eval_results.json`` is available, the training data and settings,
and a usage snippet. The discriminator's snippet is the replaced-token-detection example those cards
use; the tests run it, unchanged, against an exported directory.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

from electra_tf.config import ModelConfig, PretrainingConfig
from electra_tf.model.metrics import card_rows
from electra_tf.model.networks import DISCRIMINATOR, GENERATOR, Network, encoder_config, tf1_variable_shapes

EVAL_STEP_KEY = "global_step"

FAKE_SENTENCE = "El rápido zorro marrón amar sobre el perro perezoso"
"""Electricidad's example: "salta" (jumps) of the original sentence replaced by "amar" (to love)."""

_DISCRIMINATOR_USAGE = """\
from transformers import ElectraForPreTraining, ElectraTokenizerFast
import torch

discriminator = ElectraForPreTraining.from_pretrained({model})
tokenizer = ElectraTokenizerFast.from_pretrained({model})

# The original sentence is "El rápido zorro marrón salta sobre el perro perezoso".
fake_sentence = "{fake_sentence}"

tokens = tokenizer.tokenize(fake_sentence)
inputs = tokenizer.encode(fake_sentence, return_tensors="pt")
outputs = discriminator(inputs)
predictions = torch.round((torch.sign(outputs[0]) + 1) / 2)  # 1 = replaced, 0 = original

# predictions[0] has one entry per token plus [CLS] (first) and [SEP] (last).
for token, prediction in zip(tokens, predictions[0, 1:-1].tolist()):
    print(f"{{token:>12}} {{int(prediction)}}")
"""

_GENERATOR_USAGE = """\
from transformers import pipeline

fill_mask = pipeline("fill-mask", model={model}, tokenizer={model})
for candidate in fill_mask("El rápido zorro marrón [MASK] sobre el perro perezoso"):
    print(candidate["token_str"], round(candidate["score"], 3))
"""


@dataclasses.dataclass(frozen=True)
class CardFacts:
    """What the card states about the training run, beyond the configs."""

    model_id: str
    """What the usage snippet passes to ``from_pretrained`` (a Hub id or the exported directory)."""
    eval_results: Mapping[str, Any] | None = None
    trained_steps: int | None = None
    training_data: str | None = None


def model_card(network: Network, config: PretrainingConfig, facts: CardFacts) -> str:
    """The ``README.md`` of ``network``'s exported directory."""
    encoder = encoder_config(config, network)
    usage = _DISCRIMINATOR_USAGE if network is DISCRIMINATOR else _GENERATOR_USAGE
    sections = [
        _front_matter(network),
        _introduction(network, config),
        _details_section(network, encoder, config),
        _evaluation_section(network, facts),
        _training_section(config, facts),
        "## Usage\n\n```python\n"
        + usage.format(model=json.dumps(facts.model_id), fake_sentence=FAKE_SENTENCE)
        + "```\n",
    ]
    return "\n".join(section for section in sections if section)


def parameter_count(network: Network, encoder: ModelConfig) -> int:
    """Parameters of the exported model (the generator's tied output matrix counted once)."""
    return sum(math.prod(shape) for shape in tf1_variable_shapes(network, encoder).values())


def _front_matter(network: Network) -> str:
    tags = ["electra", "pretraining", "electra_tf"]
    lines = ["---", "library_name: transformers", "tags:", *(f"- {tag}" for tag in tags)]
    if network is GENERATOR:
        lines.append("pipeline_tag: fill-mask")
    return "\n".join([*lines, "---", ""])


def _introduction(network: Network, config: PretrainingConfig) -> str:
    title = f"# ELECTRA {config.model_size} {network.name}\n\n"
    if network is DISCRIMINATOR:
        role = (
            "The discriminator of an ELECTRA model pretrained with electra_tf on replaced-token detection: a small "
            "generator fills in masked tokens and the discriminator learns to tell, for every token, whether it is "
            "the original or a replacement. **This is the model to fine-tune** for downstream tasks."
        )
    else:
        role = (
            "The generator (masked language model) trained jointly with the ELECTRA discriminator of the same run, "
            "published so that pretraining can be continued or the generator used for fill-mask. For downstream "
            "tasks, fine-tune the discriminator instead."
        )
    return title + role + "\n"


def _details_section(network: Network, encoder: ModelConfig, config: PretrainingConfig) -> str:
    casing = "uncased" if config.do_lower_case else "cased"
    if config.do_lower_case:
        casing += ", accents stripped" if config.strip_accents else ", accents kept"
    rows = [
        ("Architecture", f"`{network.architecture}`"),
        ("Layers", encoder.num_hidden_layers),
        ("Hidden size", encoder.hidden_size),
        ("Attention heads", encoder.num_attention_heads),
        ("Feed-forward size", encoder.intermediate_size),
        ("Embedding size", encoder.embedding_size),
        ("Vocabulary", f"{encoder.vocab_size:,} WordPiece tokens ({casing})"),
        ("Max sequence length", encoder.max_position_embeddings),
        ("Parameters", f"{parameter_count(network, encoder):,}"),
    ]
    return "## Model details\n\n" + markdown_table(("", ""), rows)


def _evaluation_section(network: Network, facts: CardFacts) -> str:
    if not facts.eval_results:
        return ""
    rows = [(label, format_score(value)) for label, value in card_rows(network, facts.eval_results)]
    if not rows:
        return ""
    step = facts.eval_results.get(EVAL_STEP_KEY)
    at_step = f" at step {int(step):,}" if isinstance(step, (int, float)) else ""
    return (
        "## Evaluation\n\n"
        f"Pretraining task on held-out data{at_step} (`run_pretraining.py --do-eval`). The discriminator metrics "
        "are per token (non-padding) for the label *replaced*; MLM accuracy is the generator's over masked "
        "positions.\n\n" + markdown_table(("Metric", "Score"), rows)
    )


def _training_section(config: PretrainingConfig, facts: CardFacts) -> str:
    generator = config.generator_config()
    steps = f"{config.num_train_steps:,}"
    if facts.trained_steps is not None and facts.trained_steps != config.num_train_steps:
        steps = f"{facts.trained_steps:,} (of {config.num_train_steps:,} planned)"
    rows = [
        ("Training steps", steps),
        ("Batch size", config.train_batch_size),
        ("Sequence length", config.max_seq_length),
        ("Peak learning rate", config.learning_rate),
        ("Warmup steps", config.num_warmup_steps),
        ("Optimizer", f"{config.optimizer} (weight decay {config.weight_decay_rate})"),
        ("Mask probability", config.mask_prob),
        ("Generator size", f"{generator.hidden_size} hidden, {generator.num_hidden_layers} layers"),
        ("Discriminator loss weight", config.disc_weight),
        ("Lower-cased", "yes" if config.do_lower_case else "no"),
        ("Accents stripped", "yes" if config.do_lower_case and config.strip_accents else "no"),
        ("Precision", config.precision),
    ]
    data = facts.training_data or "Not recorded at export time; describe the pretraining corpus here."
    return "## Training\n\n" + f"Training data: {data}\n\n" + markdown_table(("Setting", "Value"), rows)


def format_score(value: Any) -> str:
    """A score as the cards print it: four decimals for floats."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown_table(header: tuple[str, str], rows: list[tuple[str, Any]]) -> str:
    """A two-column Markdown table."""
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]
    return "\n".join(lines) + "\n"
