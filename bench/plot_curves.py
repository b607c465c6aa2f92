#!/usr/bin/env python3
"""Plot a run's learning curves from its own TensorBoard event files, as an SVG (no plotting library).

    python bench/plot_curves.py --model-dir MODEL_DIR --output docs/learning_curves.svg

Left panel: training losses (MLM, discriminator×50 and total) per logging window. Right panel:
held-out discriminator AUC, accuracy and generator MLM accuracy from ``--eval-every-steps``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import tensorflow as tf

PANELS = (
    ("train", "Training loss", ("loss", "masked_lm_loss", "disc_loss")),
    ("eval", "Held-out evaluation", ("disc_auc", "disc_accuracy", "masked_lm_accuracy", "sampled_masked_lm_accuracy")),
)
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
WIDTH, HEIGHT, MARGIN = 460, 300, 50


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` from every event file in ``log_dir``."""
    series: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(log_dir.glob("events.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.HasField("tensor") and value.metadata.plugin_data.plugin_name == "scalars":
                    number = float(tf.make_ndarray(value.tensor))
                    series.setdefault(value.tag, []).append((event.step, number))
    return {tag: sorted(points) for tag, points in series.items()}


def panel(x0: int, title: str, series: dict[str, list[tuple[int, float]]]) -> list[str]:
    """SVG elements of one line chart at horizontal offset ``x0``."""
    points = [p for values in series.values() for p in values]
    if not points:
        return [f'<text x="{x0 + WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">{title}: no data</text>']
    max_step = max(step for step, _ in points) or 1
    low, high = min(v for _, v in points), max(v for _, v in points)
    high = high if high > low else low + 1

    def xy(step: int, value: float) -> str:
        x = x0 + MARGIN + step / max_step * (WIDTH - 2 * MARGIN)
        y = HEIGHT - MARGIN - (value - low) / (high - low) * (HEIGHT - 2 * MARGIN)
        return f"{x:.1f},{y:.1f}"

    out = [
        f'<text x="{x0 + WIDTH / 2}" y="20" text-anchor="middle" font-weight="bold">{title}</text>',
        f'<rect x="{x0 + MARGIN}" y="{MARGIN}" width="{WIDTH - 2 * MARGIN}" height="{HEIGHT - 2 * MARGIN}" '
        'fill="none" stroke="#999"/>',
        f'<text x="{x0 + MARGIN}" y="{HEIGHT - MARGIN + 16}" font-size="11">0</text>',
        f'<text x="{x0 + WIDTH - MARGIN}" y="{HEIGHT - MARGIN + 16}" font-size="11" text-anchor="end">'
        f"step {max_step}</text>",
        f'<text x="{x0 + MARGIN - 4}" y="{MARGIN + 4}" font-size="11" text-anchor="end">{high:.3g}</text>',
        f'<text x="{x0 + MARGIN - 4}" y="{HEIGHT - MARGIN}" font-size="11" text-anchor="end">{low:.3g}</text>',
    ]
    for index, (tag, values) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(xy(step, value) for step, value in values)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        legend_y = HEIGHT - MARGIN + 32 + 14 * index
        out.append(f'<text x="{x0 + MARGIN}" y="{legend_y}" font-size="11" fill="{colour}">{tag}</text>')
    return out


def write_svg(output: Path, elements: list[str], panels: int) -> None:
    """An SVG document of ``panels`` side-by-side charts made of ``elements`` (from :func:`panel`)."""
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{panels * WIDTH}" height="{HEIGHT + 60}" '
        f'font-family="sans-serif" font-size="13">\n<rect width="100%" height="100%" fill="white"/>\n'
        + "\n".join(elements)
        + "\n</svg>\n"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(svg, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    elements: list[str] = []
    for index, (subdir, title, tags) in enumerate(PANELS):
        scalars = read_scalars(args.model_dir / subdir)
        elements += panel(index * WIDTH, title, {tag: scalars[tag] for tag in tags if tag in scalars})
    write_svg(args.output, elements, len(PANELS))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
