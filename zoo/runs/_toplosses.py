"""``zoo evaluate --top-losses N``: the images the model gets most wrong, drawn as a grid."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.runs._trained import probabilities, with_flip

if TYPE_CHECKING:
    from zoo.runs._trained import Trained

TILE_INCHES = 2.4


def top_losses(trained: Trained, loader, n: int, *, tta: bool = False) -> list[dict]:
    """The ``n`` images of ``loader`` with the highest loss, highest first: ``image``,
    ``true``, ``predicted``, ``probability`` (of the predicted class) and ``loss``."""
    import torch

    model = with_flip(trained.model) if tta else trained.model
    device = next(trained.model.parameters()).device
    samples, rows, start = loader.dataset.samples, [], 0
    with torch.inference_mode():
        for images, targets in loader:
            # with_flip gives log-probabilities, which the softmax gives back as they are
            probs = probabilities(model(images.to(device))).cpu()
            true = probs[torch.arange(len(targets)), targets].clamp_min(1e-12)
            best, predicted = probs.max(1)
            for j in range(len(targets)):
                rows.append(
                    {
                        "image": samples[start + j][0],
                        "true": trained.classes[int(targets[j])],
                        "predicted": trained.classes[int(predicted[j])],
                        "probability": float(best[j]),
                        "loss": float(-true[j].log()),
                    }
                )
            start += len(targets)
    return sorted(rows, key=lambda r: -r["loss"])[:n]


def draw_top_losses(trained: Trained, loader, n: int, path: Path, *, tta: bool = False):
    """Draw ``top_losses`` to ``path`` (one tile each: the image, its true class, the
    predicted class and its probability); return the rows."""
    from matplotlib.figure import Figure

    from zoo.data import load_rgb
    from zoo.runs._plots import _save_atomic

    rows = top_losses(trained, loader, n, tta=tta)
    cols = min(4, len(rows))
    lines = math.ceil(len(rows) / cols)
    fig = Figure(figsize=(TILE_INCHES * cols, (TILE_INCHES + 0.4) * lines))
    for i, row in enumerate(rows):
        ax = fig.add_subplot(lines, cols, i + 1)
        ax.imshow(load_rgb(row["image"]))
        ax.set_axis_off()
        ax.set_title(
            f"true {row['true']}\npredicted {row['predicted']} {row['probability']:.0%}",
            fontsize=9,
        )
    fig.tight_layout()
    _save_atomic(fig, path)
    return rows
