"""``compare.png``: each backbone's validation accuracy against its inference speed, the
Pareto front (no other backbone is both faster and more accurate) joined and labelled.

Drawn on a bare ``matplotlib.figure.Figure`` with the Agg canvas, never through ``pyplot``,
and written atomically, like a run's pictures.

    >>> plot_compare(rows, "runs/compare-20261202-101500/compare.png")
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

FRONT_COLOR, OTHER_COLOR = "#d62728", "#7f7f7f"


def pareto_front(rows: Sequence[dict]) -> list[dict]:
    """The rows no other row beats on both ``val_acc`` and ``images_per_s``, fastest first."""
    front = []
    for row in sorted(rows, key=lambda r: (-r["images_per_s"], -r["val_acc"])):
        if not front or row["val_acc"] > front[-1]["val_acc"]:
            front.append(row)
    return front


def plot_compare(rows: Sequence[dict], path: str | Path, *, title: str | None = None) -> Path:
    """Draw accuracy (%) against images/s (log scale) for the leaderboard ``rows`` (the
    ones that ran: ``id``, ``val_acc`` as a fraction, ``images_per_s``)."""
    if not rows:
        raise ValueError("no leaderboard rows to plot")
    return _save(compare_figure(rows, title), path)


def compare_figure(rows: Sequence[dict], title: str | None = None):
    """The ``matplotlib.figure.Figure`` that ``plot_compare`` writes."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogFormatter, ScalarFormatter

    fig = Figure(figsize=(8, 5), dpi=100, layout="constrained")
    ax = fig.subplots()
    front = pareto_front(rows)
    on_front = {id(r) for r in front}
    by_speed = sorted(rows, key=lambda r: r["images_per_s"])
    for rank, row in enumerate(by_speed):
        mine = id(row) in on_front
        spot = (row["images_per_s"], 100 * row["val_acc"])
        ax.scatter(*spot, s=60, zorder=3, color=FRONT_COLOR if mine else OTHER_COLOR,
                   marker="o" if mine else "s")  # fmt: skip
        # Neighbours in speed alternate above and below their point, so labels do not collide.
        ax.annotate(row["id"].split(":", 1)[-1], spot, xytext=(0, 8 if rank % 2 else -14),
                    textcoords="offset points", fontsize=9, ha="center")  # fmt: skip
    xs = [r["images_per_s"] for r in front]
    ax.plot(
        xs, [100 * r["val_acc"] for r in front], color=FRONT_COLOR, lw=1.2, label="Pareto front"
    )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    # Plain numbers (60, 200) on the ticks between powers of ten, not 6×10^1; matplotlib still
    # picks which of them to label.
    ax.xaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.margins(x=0.15, y=0.1)
    ax.set_xlabel("inference images/s (this device, the run's batch size)")
    ax.set_ylabel("best validation accuracy (%)")
    ax.set_title(title or "zoo compare", fontsize=12)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower left")
    return fig


def _save(fig, path: str | Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from zoo.files import atomic_write_bytes

    data = io.BytesIO()
    FigureCanvasAgg(fig).print_png(data)
    atomic_write_bytes(path, data.getvalue())
    return Path(path)
