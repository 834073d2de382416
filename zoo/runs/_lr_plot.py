"""The learning-rate range test's picture: loss against learning rate, the suggestion marked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from zoo.runs._plots import DPI, TRAIN_COLOR, VALID_COLOR, _save_atomic


def plot_lr_find(
    lrs: Sequence[float],
    losses: Sequence[float],
    smoothed: Sequence[float],
    path: str | Path,
    *,
    suggestion: float | None = None,
    title: str | None = None,
) -> Path:
    """Each step's loss and its smoothed curve on a log learning-rate axis, written atomically.

    >>> plot_lr_find([1e-5, 1e-3, 1e-1], [2.3, 1.9, 4.0], [2.3, 2.1, 2.8], "lr-find.png")
    PosixPath('lr-find.png')
    """
    from matplotlib.figure import Figure

    if not lrs:
        raise ValueError("no steps to plot: the range test ran none")
    fig = Figure(figsize=(7, 4.2), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    ax.plot(lrs, losses, color=TRAIN_COLOR, alpha=0.35, linewidth=1, label="loss per step")
    ax.plot(lrs, smoothed, color=TRAIN_COLOR, linewidth=2, label="smoothed")
    if suggestion is not None:
        ax.axvline(suggestion, color=VALID_COLOR, linestyle="--", linewidth=1.2)
        ax.annotate(
            f"suggested {suggestion:.2g}", (suggestion, 0.95), xycoords=("data", "axes fraction"),
            xytext=(4, 0), textcoords="offset points", color=VALID_COLOR, va="top",
        )  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    low = min(smoothed)
    ax.set_ylim(max(0.0, low - 0.1 * abs(low)), max(smoothed[0], low) * 1.5 + 1e-6)
    ax.legend(fontsize=9, frameon=False)
    if title:
        ax.set_title(title, fontsize=11)
    return _save_atomic(fig, path)
