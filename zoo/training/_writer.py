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
# The checkpoints (last.pt, best.pt, with summary.json and README.md) go to disk after an
# epoch at most this often, and always when the run ends, stops or fails: writing resnet34's
# took 0.4 s, a quarter of a cached epoch. Between writes the last epoch's state is kept in
# memory, so Ctrl-C, a NaN loss or an error still leaves the files of the last whole epoch;
# only a killed process loses up to this much training, which --resume runs again.
CHECKPOINT_EVERY_S = 30.0


class Writer:
    """Writes nothing: what every rank but 0 holds."""

    def config(self, record: dict) -> None:
        """config.json."""

    def last(self, state: TrainingState, meta: dict) -> None:
        """last.pt, for resuming."""

    def epoch(self, state: TrainingState, meta: dict, summary: dict, *, improved: bool) -> None:
        """An epoch's files: metrics.jsonl; best.pt when ``improved``, last.pt, summary.json
        and README.md (every ``CHECKPOINT_EVERY_S`` at most, else kept for ``flush``); and
        (every ``CURVES_EVERY_S`` at most) curves.png."""

    def flush(self) -> None:
        """Write the checkpoint kept in memory, if any: the run ends, stops or fails."""

    def finish(self, rows: list[dict], backbone: str) -> None:
        """The run ended or stopped: the checkpoint on disk, curves.png shows every epoch."""


class RunWriter(Writer):
    """Writes ``run``'s files, each one atomically."""

    def __init__(self, run: RunDir, tensorboard: bool = False) -> None:
        self.run = run
        self.tensorboard = TensorBoard(run.file("tensorboard")) if tensorboard else None
        self.drawn_at, self.drawn_rows = time.monotonic(), 0
        self.saved_at = time.monotonic()  # set-up writes the epoch-0 last.pt
        self.pending: dict | None = None  # a checkpoint not yet on disk (see ``flush``)

    def config(self, record: dict) -> None:
        self.run.write_config(record)

    def last(self, state: TrainingState, meta: dict) -> None:
        save_last(self.run, state, meta)
        self.saved_at = time.monotonic()

    def epoch(self, state: TrainingState, meta: dict, summary: dict, *, improved: bool) -> None:
        rows = state.progress.rows
        self.run.write_metrics(rows)
        due = time.monotonic() - self.saved_at >= CHECKPOINT_EVERY_S
        last = state.state_dict() if due else state.snapshot()  # written now, or kept
        # last.pt's model is best.pt's weights (a copy already): not copied again.
        best = last["model"] if improved else (self.pending or {}).get("best")
        self.pending = {"best": best, "last": {**last, "meta": meta}, "summary": summary}
        if due:
            self.flush()
        if time.monotonic() - self.drawn_at >= CURVES_EVERY_S:
            self._draw(rows, meta["id"])
        if self.tensorboard is not None:
            self.tensorboard.epoch(rows[-1])

    def flush(self) -> None:
        if self.pending is None:
            return
        pending, self.pending = self.pending, None
        if pending["best"] is not None:
            self.run.save_best(pending["best"], pending["last"]["meta"])
        self.run.save_last(pending["last"])
        self.saved_at = time.monotonic()
        self.run.write_summary(pending["summary"])
        self.run.write_card()

    def finish(self, rows: list[dict], backbone: str) -> None:
        self.flush()
        self._draw(rows, backbone)

    def _draw(self, rows: list[dict], backbone: str) -> None:
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
