"""Pictures of a run: training curves and confusion matrices, as PNG or what the suffix names.

Figures are drawn on a bare ``matplotlib.figure.Figure`` with the Agg canvas, never through
``pyplot``, so plotting neither changes nor depends on the backend a notebook or GUI uses, and
keeps no global figure alive. Titles wrap to the figure's width; class names whose glyphs the
font lacks draw as boxes, without a warning on the terminal. Every file is written atomically
(temporary file in the same folder, then ``os.replace``), so a killed run never leaves half a
picture.

    >>> plot_curves(rows, "runs/demo/curves.png", title="torchvision:resnet18")
    >>> plot_confusion([[8, 2], [1, 9]], ["cat", "dog"], "runs/demo/confusion.png")
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

TRAIN_COLOR, VALID_COLOR, BEST_COLOR = "#1f77b4", "#d62728", "#2ca02c"
DPI = 100
# Beyond this many classes the cells are too small for numbers; colour alone carries them.
MAX_ANNOTATED_CLASSES = 25
MAX_LABEL_CHARS = 18
# The best-epoch label's box as a fraction of the accuracy panel, to keep it off the curves.
LABEL_SIZE = (0.46, 0.1)


def plot_curves(rows: Sequence[dict], path: str | Path, *, title: str | None = None) -> Path:
    """Draw loss and accuracy per epoch, train and valid, with the best valid epoch marked.

    ``rows`` are ``metrics.jsonl`` objects (``epoch``, ``train_loss``, ``train_acc``,
    ``val_loss``, ``val_acc``, optionally ``lr``); accuracies are fractions (values above 1
    are taken as percentages already). Learning-rate changes show as faint vertical lines.

    >>> rows = [{"epoch": 1, "train_loss": 0.7, "train_acc": 0.55, "val_loss": 0.6,
    ...          "val_acc": 0.62, "lr": 0.001}]
    >>> plot_curves(rows, "curves.png", title="resnet18-20261122-101500")
    PosixPath('curves.png')
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    rows = sorted(rows, key=lambda row: row["epoch"])
    if not rows:
        raise ValueError("no epochs to plot: metrics rows are empty")
    epochs = [int(row["epoch"]) for row in rows]
    lrs = [row.get("lr") for row in rows]

    fig = Figure(figsize=(10, 4.2), dpi=DPI, layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for ax, kind in ((loss_ax, "loss"), (acc_ax, "acc")):
        train, valid = (_column(rows, f"{phase}_{kind}") for phase in ("train", "val"))
        if kind == "acc":
            train, valid = _percent(train), _percent(valid)
        _draw_panel(ax, epochs, train, valid, min_span=10.0 if kind == "acc" else 0.1)
        _mark_lr_changes(ax, epochs, lrs, label=ax is loss_ax)
    loss_ax.set_title("Loss", fontsize=12)
    # Neither a loss nor an accuracy goes below 0, nor an accuracy much above 100%.
    loss_ax.set_ylim(bottom=max(loss_ax.get_ylim()[0], 0))
    low, high = acc_ax.get_ylim()
    acc_ax.set_ylim(max(low, 0), min(high, 102))
    acc_ax.set_title("Accuracy", fontsize=12)
    acc_ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    _mark_best(loss_ax, acc_ax, epochs, train, valid)
    if title:
        fig.suptitle(_wrap(title, fig, 13), fontsize=13)
    # One legend below both panels: inside either one it would cover some run's curves.
    handles, labels = acc_ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=10, frameon=False)
    return _save_atomic(fig, path)


def plot_confusion(
    matrix, class_names: Sequence[str], path: str | Path, title: str | None = None
) -> Path:
    """Draw a confusion matrix: rows are true classes, columns predicted ones.

    Colour is the row-normalised fraction (how each true class was predicted), the cells hold
    the raw counts (up to 25 classes), and the title gives the overall accuracy. ``matrix`` is
    anything ``numpy.asarray`` accepts: nested lists, an array, a CPU tensor.

    >>> plot_confusion([[8, 2], [1, 9]], ["cat", "dog"], "confusion.png", title="resnet18")
    PosixPath('confusion.png')
    """
    import numpy as np
    from matplotlib.figure import Figure

    values = np.asarray(matrix, dtype=np.float64)
    n = len(class_names)
    if values.shape != (n, n) or n == 0:
        raise ValueError(
            f"confusion matrix has shape {values.shape}; expected ({n}, {n}) for {n} class names"
        )
    # A matrix normalised elsewhere would silently become zeros if truncated to counts.
    if not np.array_equal(values, np.round(values)) or (values < 0).any():
        raise ValueError("confusion matrix must hold counts (non-negative whole numbers)")
    counts = values.astype(np.int64)
    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)

    side = min(max(4.5 + 0.28 * n, 6.0), 18.0)
    fig = Figure(figsize=(side + 1.2, side), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    colorbar = fig.colorbar(image, ax=ax, shrink=0.8)
    colorbar.set_label("fraction of the true class")
    _label_axes(ax, class_names)
    if n <= MAX_ANNOTATED_CLASSES:
        _write_counts(ax, counts, fractions)

    total = int(counts.sum())
    correct = int(np.trace(counts))
    accuracy = f"accuracy {correct / total:.1%} ({correct}/{total})" if total else "no samples"
    fig.suptitle(_wrap(f"{title}: {accuracy}" if title else accuracy, fig, 13), fontsize=13)
    return _save_atomic(fig, path)


def _column(rows: Sequence[dict], key: str) -> list[float]:
    # A missing or null value becomes NaN, which matplotlib leaves as a gap in the line.
    return [math.nan if row.get(key) is None else float(row[key]) for row in rows]


def _percent(values: list[float]) -> list[float]:
    finite = [v for v in values if not math.isnan(v)]
    if finite and max(finite) > 1.0:
        return values
    return [v * 100 for v in values]


def _draw_panel(ax, epochs: list[int], train: list[float], valid: list[float], min_span: float):
    from matplotlib.ticker import MaxNLocator

    ax.plot(epochs, train, "o-", color=TRAIN_COLOR, label="train", ms=4)
    ax.plot(epochs, valid, "s-", color=VALID_COLOR, label="valid", ms=4)
    ax.set_xlabel("epoch")
    ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
    # A locator alone puts fractional ticks on short runs; an epoch is a whole number.
    if len(epochs) <= 12:
        ax.set_xticks(epochs)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    finite = [v for v in train + valid if not math.isnan(v)]
    if finite:
        # At least min_span of range, so one epoch or a flat curve is not blown up to noise.
        low, high = min(finite), max(finite)
        half = max(high - low, min_span) * 0.55
        ax.set_ylim((low + high) / 2 - half, (low + high) / 2 + half)
    ax.grid(True, alpha=0.3)


def _mark_best(loss_ax, acc_ax, epochs: list[int], train_acc: list, val_acc: list) -> None:
    """Mark the first epoch with the highest valid accuracy: the one whose weights are kept."""
    if all(math.isnan(acc) for acc in val_acc):
        return
    # max() keeps the first of equal values, as training keeps the first best epoch.
    index = max(
        range(len(val_acc)), key=lambda i: -math.inf if math.isnan(val_acc[i]) else val_acc[i]
    )
    best, best_acc = epochs[index], val_acc[index]
    for ax in (loss_ax, acc_ax):
        ax.axvline(best, color=BEST_COLOR, ls="--", lw=1, alpha=0.7)
    acc_ax.plot([best], [best_acc], "*", color=BEST_COLOR, ms=16, zorder=5, label="best valid")
    acc_ax.annotate(
        f"best {best_acc:.1f}% @ epoch {best}",
        xy=(best, best_acc),
        xytext=_label_spot(acc_ax, (best, best_acc), epochs, [train_acc, val_acc]),
        textcoords="axes fraction",
        ha="center",
        va="center",
        fontsize=10,
        color=BEST_COLOR,
        fontweight="bold",
        bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": BEST_COLOR, "alpha": 0.9},
        arrowprops={"arrowstyle": "-", "color": BEST_COLOR, "lw": 0.8},
        zorder=6,
    )


def _label_spot(ax, star, epochs: list[int], curves: list[list[float]]) -> tuple[float, float]:
    """The spot (axes fraction) near the star where the label hides the least of the curves.

    A fixed offset lands on a rising curve as often as not; counting the curve points each
    candidate box would cover is cheap and keeps the label off the data.
    """
    import numpy as np

    to_axes = ax.transLimits  # data -> axes fraction, from the limits already set
    dense = np.linspace(epochs[0], epochs[-1], 40 * len(epochs))
    points = np.concatenate(
        [to_axes.transform(np.column_stack([dense, np.interp(dense, epochs, ys)])) for ys in curves]
    )
    sx, sy = to_axes.transform(star)
    half_w, half_h = LABEL_SIZE[0] / 2, LABEL_SIZE[1] / 2
    offsets = [(0, -0.14), (0, 0.13), (-0.25, -0.1), (0.25, -0.1), (0, -0.28), (-0.3, 0)]

    def cost(spot):
        x, y = spot
        covered = np.sum((abs(points[:, 0] - x) < half_w) & (abs(points[:, 1] - y) < half_h))
        on_star = abs(sx - x) < half_w + 0.03 and abs(sy - y) < half_h + 0.05
        return covered + 1000 * on_star

    spots = [
        (min(max(sx + dx, half_w), 1 - half_w), min(max(sy + dy, half_h), 1 - half_h))
        for dx, dy in offsets
    ]
    return min(spots, key=cost)


def _mark_lr_changes(ax, epochs: list[int], lrs: list, label: bool) -> None:
    """Faint lines where the learning rate changed, labelled with the new rate."""
    for prev, epoch, lr in zip(lrs, epochs[1:], lrs[1:], strict=False):
        if prev is None or lr is None or math.isclose(prev, lr):
            continue
        ax.axvline(epoch - 0.5, color="grey", ls=":", lw=1)
        if not label:
            continue
        ax.annotate(
            f"lr {lr:.3g}",  # 3 significant digits: 0.025 never reads as 3e-02 and 2e-02
            xy=(epoch - 0.5, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -10),
            textcoords="offset points",
            fontsize=8,
            color="grey",
        )


def _label_axes(ax, class_names: Sequence[str]) -> None:
    n = len(class_names)
    names = [_shorten(str(name)) for name in class_names]
    size = 10 if n <= 15 else 8 if n <= 30 else 7
    long_names = max(len(name) for name in names) > 4
    ax.set_xticks(range(n), names, fontsize=size)
    ax.set_yticks(range(n), names, fontsize=size)
    if n > 6 or long_names:
        rotation = 90 if n > 15 else 45
        ax.tick_params(axis="x", labelrotation=rotation)
        if rotation == 45:
            for label in ax.get_xticklabels():
                label.set_ha("right")
                label.set_rotation_mode("anchor")
    ax.set_xlabel("predicted", fontsize=11)
    ax.set_ylabel("true", fontsize=11)


def _write_counts(ax, counts, fractions) -> None:
    import numpy as np

    n = counts.shape[0]
    size = 11 if n <= 8 else 9 if n <= 15 else 7
    for row, col in np.ndindex(counts.shape):
        count = int(counts[row, col])
        # White on dark cells and black on light ones keeps every count readable.
        color = "white" if fractions[row, col] > 0.5 else "black"
        ax.text(col, row, str(count), ha="center", va="center", fontsize=size, color=color)


def _wrap(text: str, fig, fontsize: float) -> str:
    """``text`` in lines that fit the figure's width; a long title would be cut at both ends."""
    import textwrap

    # An average character of DejaVu Sans is about 0.6 em wide; 0.9 of the width leaves margins.
    chars = int(0.9 * fig.get_figwidth() * 72 / (0.6 * fontsize))
    return "\n".join(textwrap.wrap(text, max(chars, 20), break_on_hyphens=False)) or text


def _shorten(name: str) -> str:
    return name if len(name) <= MAX_LABEL_CHARS else name[: MAX_LABEL_CHARS - 1] + "…"


def _save_atomic(fig, path: str | Path) -> Path:
    """Render ``fig`` to ``path`` in the format its suffix names (PNG without one), atomically
    like every run file; a suffix matplotlib cannot write is one ``ZooError`` line."""
    import io
    import warnings

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from zoo.errors import ZooError
    from zoo.files import atomic_write_bytes

    canvas = FigureCanvasAgg(fig)
    kind = Path(path).suffix.lower().lstrip(".") or "png"
    formats = canvas.get_supported_filetypes()
    if kind not in formats:
        raise ZooError(
            f"cannot draw a picture to {path}: .{kind} is not an image format matplotlib "
            f"writes; use one of {', '.join('.' + name for name in sorted(formats))}"
        )
    data = io.BytesIO()
    with warnings.catch_warnings():
        # A class name in a script the font lacks (CJK, emoji) draws as boxes; saying so once
        # per glyph on the terminal helps nobody.
        warnings.filterwarnings("ignore", message=r"(?s).*(Glyph|glyph).*missing from")
        warnings.filterwarnings("ignore", message=r"(?s)Matplotlib currently does not support")
        fig.savefig(data, format=kind, dpi=DPI, facecolor="white")
    atomic_write_bytes(path, data.getvalue())
    return Path(path)
