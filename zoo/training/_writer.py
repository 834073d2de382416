"""The run directory's one writer: rank 0 writes every file; the other ranks hold a writer that
writes nothing, chosen once at set-up (``writer_for``), so nothing else asks which rank it is.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from zoo.training._state import save_last

if TYPE_CHECKING:
    from zoo.runs import RunDir
    from zoo.training._distributed import Dist
    from zoo.training._state import TrainingState

# curves.png is drawn at most this often, the first time this long after the run starts
# (matplotlib takes a good part of a second, longer than a cached epoch), and always when the
# run ends or stops: a short run draws it once.
CURVES_EVERY_S = 10.0


class Writer:
    """Writes nothing: what every rank but 0 holds."""

    def config(self, record: dict) -> None:
        """config.json."""

    def last(self, state: TrainingState, meta: dict) -> None:
        """last.pt, for resuming."""

    def epoch(self, state: TrainingState, meta: dict, summary: dict, *, improved: bool) -> None:
        """An epoch's files: metrics.jsonl, best.pt when ``improved``, last.pt, summary.json,
        README.md and (every ``CURVES_EVERY_S`` at most) curves.png."""

    def finish(self, rows: list[dict], backbone: str) -> None:
        """The run ended or stopped: curves.png shows every epoch."""


class RunWriter(Writer):
    """Writes ``run``'s files, each one atomically."""

    def __init__(self, run: RunDir, tensorboard: bool = False) -> None:
        self.run = run
        self.tensorboard = TensorBoard(run.file("tensorboard")) if tensorboard else None
        self.drawn_at, self.drawn_rows = time.monotonic(), 0

    def config(self, record: dict) -> None:
        self.run.write_config(record)

    def last(self, state: TrainingState, meta: dict) -> None:
        save_last(self.run, state, meta)

    def epoch(self, state: TrainingState, meta: dict, summary: dict, *, improved: bool) -> None:
        rows = state.progress.rows
        self.run.write_metrics(rows)
        if improved:
            self.run.save_best(state.saved_weights(), meta)
        self.last(state, meta)
        self.run.write_summary(summary)
        if time.monotonic() - self.drawn_at >= CURVES_EVERY_S:
            self.finish(rows, meta["id"])
        self.run.write_card()
        if self.tensorboard is not None:
            self.tensorboard.epoch(rows[-1])

    def finish(self, rows: list[dict], backbone: str) -> None:
        if rows and len(rows) != self.drawn_rows:
            self.run.draw_curves(rows, backbone)
            self.drawn_at, self.drawn_rows = time.monotonic(), len(rows)


class TensorBoard:
    """Each epoch's row of metrics.jsonl as TensorBoard scalars under ``RUN/tensorboard/``."""

    def __init__(self, folder) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            from zoo.errors import ExtraMissingError

            raise ExtraMissingError("tensorboard", "tensorboard", "--tensorboard") from None
        self.writer = SummaryWriter(str(folder))

    def epoch(self, row: dict) -> None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, int | float):
                self.writer.add_scalar(key, value, row["epoch"])
        self.writer.flush()


def writer_for(run: RunDir, dist: Dist, tensorboard: bool = False) -> Writer:
    """A ``RunWriter`` on rank 0, a silent ``Writer`` elsewhere."""
    return RunWriter(run, tensorboard) if dist.is_main else Writer()
