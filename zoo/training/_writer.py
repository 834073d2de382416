"""The run directory's one writer: rank 0 writes every file; the other ranks hold a writer that
writes nothing, chosen once at set-up (``writer_for``), so nothing else asks which rank it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo.training._state import save_last

if TYPE_CHECKING:
    from zoo.runs import RunDir
    from zoo.training._distributed import Dist
    from zoo.training._state import TrainingState


class Writer:
    """Writes nothing: what every rank but 0 holds."""

    def config(self, record: dict) -> None:
        """config.json."""

    def last(self, state: TrainingState, meta: dict) -> None:
        """last.pt, for resuming."""

    def epoch(self, state: TrainingState, meta: dict, summary: dict, *, improved: bool) -> None:
        """An epoch's files: metrics.jsonl, best.pt when ``improved``, last.pt, summary.json
        and curves.png."""


class RunWriter(Writer):
    """Writes ``run``'s files, each one atomically."""

    def __init__(self, run: RunDir) -> None:
        self.run = run

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
        self.run.draw_curves(rows, meta["id"])


def writer_for(run: RunDir, dist: Dist) -> Writer:
    """A ``RunWriter`` on rank 0, a silent ``Writer`` elsewhere."""
    return RunWriter(run) if dist.is_main else Writer()
