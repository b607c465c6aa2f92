"""The ``README.md`` model card of an exported fine-tuned model.

It states the task, the labels, the starting point, the scores of ``results.json`` (the median over
the run's trials and the exported trial's own), the architecture, the fine-tuning settings and a
``transformers.pipeline`` usage snippet that the tests run against an export.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from electra_tf.finetune.record import FinetuningRecord
from electra_tf.finetune.tasks import TAGGING
from electra_tf.interop.model_card import format_score, markdown_table

PIPELINE_TAGS = {TAGGING: "token-classification"}
DEFAULT_PIPELINE_TAG = "text-classification"
EXAMPLE_SENTENCE = "Gabriel García Márquez nació en Aracataca y vivió en Ciudad de México."

_TAGGING_USAGE = """\
from transformers import pipeline

tagger = pipeline("token-classification", model={model}, aggregation_strategy="first")
for entity in tagger({sentence}):
    print(entity["entity_group"], entity["word"], round(float(entity["score"]), 3))
"""

_CLASSIFICATION_USAGE = """\
from transformers import pipeline

classifier = pipeline("text-classification", model={model})
print(classifier({sentence}))
# A sentence pair (e.g. premise and hypothesis): classifier({{"text": first, "text_pair": second}})
"""


def pipeline_tag(kind: str) -> str:
    """The ``transformers`` pipeline of a task kind."""
    return PIPELINE_TAGS.get(kind, DEFAULT_PIPELINE_TAG)


def finetuned_card(record: FinetuningRecord, model_id: str, results: Mapping[str, Any] | None) -> str:
    """The model card; ``model_id`` is what the usage snippet loads (a Hub id or the exported directory)."""
    usage = _TAGGING_USAGE if record.kind == TAGGING else _CLASSIFICATION_USAGE
    sections = [
        _front_matter(record),
        f"# ELECTRA fine-tuned on {record.task}\n\n"
        f"Fine-tuned with electra_tf (`run_finetuning.py --task {record.task}`) from {record.starting_point}.\n",
        "## Labels\n\n" + ", ".join(f"`{label}`" for label in record.labels) + "\n",
        _evaluation_section(record, results),
        _details_section(record),
        _settings_section(record),
        "## Usage\n\n```python\n"
        + usage.format(model=json.dumps(model_id), sentence=json.dumps(EXAMPLE_SENTENCE, ensure_ascii=False))
        + "```\n",
    ]
    return "\n".join(section for section in sections if section)


def _front_matter(record: FinetuningRecord) -> str:
    tags = ["electra", "electra_tf", pipeline_tag(record.kind), record.task]
    lines = ["---", "library_name: transformers", f"pipeline_tag: {pipeline_tag(record.kind)}", "tags:"]
    return "\n".join([*lines, *(f"- {tag}" for tag in tags), "---", ""])


def _evaluation_section(record: FinetuningRecord, results: Mapping[str, Any] | None) -> str:
    """Median and exported-trial scores, read defensively (an older or partial results.json gives fewer rows)."""
    if not results:
        return ""
    rows: list[tuple[str, str]] = []
    median = results.get("median") or {}
    trials = results.get("trials") if isinstance(results.get("trials"), list) else []
    for split in ("dev", "test"):
        if isinstance(median.get(split), (int, float)):
            rows.append(
                (
                    f"{split}, median of {len(trials) or results.get('num_trials', '?')} trials",
                    format_score(median[split]),
                )
            )
    exported = results.get("exported_trial")
    if isinstance(exported, int) and 0 <= exported < len(trials) and isinstance(trials[exported], Mapping):
        for split in ("dev", "test"):
            score = (trials[exported].get(split) or {}).get("score")
            if isinstance(score, (int, float)):
                rows.append((f"{split}, this model (trial {exported}, chosen by dev score)", format_score(score)))
    if not rows:
        return ""
    metric = results.get("metric") or record.metric or "score"
    return f"## Evaluation\n\nMetric: `{metric}`.\n\n" + markdown_table(("Split", "Score"), rows)


def _details_section(record: FinetuningRecord) -> str:
    encoder = record.encoder
    casing = "uncased" if record.do_lower_case else "cased"
    if record.do_lower_case:
        casing += ", accents stripped" if record.strip_accents else ", accents kept"
    rows = [
        ("Layers", encoder.num_hidden_layers),
        ("Hidden size", encoder.hidden_size),
        ("Attention heads", encoder.num_attention_heads),
        ("Embedding size", encoder.embedding_size),
        ("Vocabulary", f"{encoder.vocab_size:,} WordPiece tokens ({casing})"),
        ("Max sequence length", encoder.max_position_embeddings),
    ]
    return "## Model details\n\n" + markdown_table(("", ""), rows)


def _settings_section(record: FinetuningRecord) -> str:
    rows = [(name, value) for name, value in sorted(record.hparams.items()) if not isinstance(value, (dict, list))]
    if not rows:
        return ""
    return "## Fine-tuning settings\n\n" + markdown_table(("Setting", "Value"), rows)
