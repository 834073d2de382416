"""How a run talks: a progress bar per phase on a terminal, plain epoch lines otherwise.

The library reports through a ``Reporter``; the CLI picks the one that fits the terminal.
``Reporter`` itself is silent, for library callers who only want the result.
"""

from __future__ import annotations

import math
import sys
import time
from contextlib import contextmanager

REFRESH_S = 0.5  # seconds between the bar's reads of the running loss


class Reporter:
    """Silent: override what you want to hear about."""

    def note(self, message: str) -> None:
        """Something a user should know (the embedded dataset is used, caching is off...)."""

    @contextmanager
    def phase(self, name: str, epoch: int, epochs: int, total: int):
        """Wraps one phase; yields ``update(images, loss_sum)`` called after each batch
        (``loss_sum`` a float or a 0-d tensor, maybe on the device)."""
        yield lambda images, loss: None

    def epoch(self, row: dict, epochs: int) -> None:
        """One finished epoch's metrics row."""

    def done(self, summary: dict, run_dir: str) -> None:
        """The run finished."""


class LineReporter(Reporter):
    """Plain lines, for logs and pipes."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def note(self, message: str) -> None:
        self._print(message)

    def epoch(self, row: dict, epochs: int) -> None:
        self._print(format_epoch(row, epochs))

    def done(self, summary: dict, run_dir: str) -> None:
        self._print(format_summary(summary, run_dir))


class BarReporter(LineReporter):
    """A tqdm bar per phase with images/s and the running loss, then the epoch line."""

    @contextmanager
    def phase(self, name: str, epoch: int, epochs: int, total: int):
        from tqdm import tqdm

        bar = tqdm(
            total=total,
            desc=f"epoch {epoch}/{epochs} {name}",
            unit="img",
            leave=False,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        seen = [0, 0.0]
        last = -math.inf  # the first batch shows its loss; later ones twice a second

        def update(images: int, loss_sum) -> None:
            # loss_sum may be a tensor on the device: reading it waits for the device, so the
            # bar reads it twice a second, not every step.
            nonlocal last
            seen[0] += images
            seen[1] = seen[1] + loss_sum
            bar.update(images)
            now = time.perf_counter()
            if now - last >= REFRESH_S:
                last = now
                loss = float(seen[1]) / seen[0]  # tqdm shows img/s
                bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)

        try:
            yield update
        finally:
            bar.close()


def reporter_for(stream=None) -> Reporter:
    """Bars on a terminal, lines otherwise."""
    stream = stream or sys.stdout
    return BarReporter(stream) if stream.isatty() else LineReporter(stream)


def format_epoch(row: dict, epochs: int) -> str:
    return (
        f"epoch {row['epoch']}/{epochs}  train loss {row['train_loss']:.4f} "
        f"acc {row['train_acc']:.2%}  valid loss {row['val_loss']:.4f} "
        f"acc {row['val_acc']:.2%}"
        + (f" mAP {row['val_map']:.4f}" if "val_map" in row else "")
        + f"  lr {row['lr']:.3g}  {row['seconds']:.1f}s  "
        f"{row['train_images_per_s']:.0f} img/s" + _lowest_classes(row)
    )


def _lowest_classes(row: dict, count: int = 3) -> str:
    """Imbalanced classes: the lowest valid accuracies, by class."""
    accuracy = row.get("val_class_acc")
    if not accuracy:
        return ""
    lowest = sorted(accuracy.items(), key=lambda item: item[1])[:count]
    return "  lowest class acc: " + ", ".join(f"{name} {acc:.0%}" for name, acc in lowest)


def format_summary(summary: dict, run_dir: str) -> str:
    return (
        (
            f"best valid mAP {summary['best_val_map']:.4f} (accuracy {summary['best_val_acc']:.2%})"
            if "best_val_map" in summary
            else f"best valid accuracy {summary['best_val_acc']:.2%}"
        )
        + " at epoch "
        f"{summary['best_epoch']} of {summary['epochs_run']}, "
        f"{summary['seconds']:.0f}s; run saved in {run_dir}"
    )
