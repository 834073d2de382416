"""The trainer: epochs of a set-up ``Session`` until the run is done, stops early or is stopped.

Each epoch runs ``for phase in ("train", "valid")`` over the session's batch source, which
set-up chose once; its metrics are summed over every rank, and the session's writer (silent
off rank 0) writes the epoch's files. Ctrl-C finishes the step in flight and stops with
last.pt as the last finished epoch left it.

    >>> result = fit(start_run(config, reporter))
    >>> result.summary["best_val_acc"]
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zoo import compute
from zoo.errors import Interrupted, StopRequested
from zoo.training import _distributed as distributed
from zoo.training._optim import step_scheduler
from zoo.training._recipe import averaged_weights, class_accuracy, mix_batches
from zoo.training._seeding import seed_everything
from zoo.training._stages import at_boundary, unfreeze_session

if TYPE_CHECKING:
    from torch import nn

    from zoo.training._session import Session

PHASES = ("train", "valid")


@dataclass
class FinetuneResult:
    """What a finished run left behind."""

    run_dir: Path  # the run directory
    summary: dict  # summary.json's content
    metrics: list[dict]  # metrics.jsonl's rows
    model: nn.Module  # the network as training left it (best.pt: the best epoch)
    features_reused: bool  # its frozen part never ran here: an earlier run's outputs


@contextmanager
def catch_sigint() -> Iterator[Callable[[], bool]]:
    """Yields ``stop()``: true once Ctrl-C was pressed, so the step in flight finishes and the
    run stops; a second Ctrl-C stops at once. The previous handler is back on exit. Outside
    the main thread, where no handler can be set, ``stop()`` stays false."""
    import threading

    pressed = [False]
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def handler(signum, frame):
        if pressed[0]:
            raise KeyboardInterrupt
        pressed[0] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: pressed[0]
    finally:
        if previous is not None:  # None: a handler not set from Python, which cannot be put back
            signal.signal(signal.SIGINT, previous)


def fit(session: Session) -> FinetuneResult:
    """Train ``session`` up to its --epochs (or --patience); raises Interrupted on Ctrl-C."""
    progress = session.state.progress
    try:
        with catch_sigint() as stop:
            while progress.epoch < session.config.epochs and not _patience_ran_out(session):
                run_epoch(session, progress.epoch + 1, stop)
        # Rank 0's files are whole before any rank leaves: a peer that dies on its way out
        # (gloo's threads at exit, seen under load) then cannot cost the run its last files.
        session.writer.finish(progress.rows, session.meta["id"])
        distributed.barrier(session.dist)
    except StopRequested:
        session.writer.finish(progress.rows, session.meta["id"])
        raise Interrupted(session.run.path, progress.epoch) from None
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once, maybe while saving
        raise Interrupted(session.run.path, None) from None
    except Exception:  # a NaN loss, an error: the last whole epoch's checkpoint on disk
        session.writer.flush()
        raise
    finally:
        distributed.shutdown(session.dist)
    summary = _summary(session)
    session.reporter.done(summary, str(session.run.path))
    return FinetuneResult(
        session.run.path, summary, progress.rows, session.model, session.source.reused
    )


def _patience_ran_out(session: Session) -> bool:
    patience, p = session.config.patience, session.state.progress
    if patience and p.epoch - p.best_epoch >= patience:
        better = "val_map" if session.task.multi_label else "valid accuracy"
        session.reporter.note(f"stopping early: no better {better} in {patience} epochs")
        return True
    return False


def run_epoch(session: Session, epoch: int, stop: Callable[[], bool] = lambda: False) -> dict:
    """Train and validate once, step the scheduler, write the epoch's files; its metrics row."""
    if at_boundary(session, epoch):
        unfreeze_session(session)
    seed_everything(session.config.seed, epoch)  # dropout and anything else in the model
    session.loaders.set_epoch(epoch)
    optimizer = session.state.optimizer
    lr = max(g["lr"] for g in optimizer.param_groups)  # the head's, under --layer-decay
    results = {}
    for phase in PHASES:
        loader = getattr(session.loaders, phase)
        total = len(loader.sampler)
        with session.reporter.phase(phase, epoch, session.config.epochs, total) as update:
            results[phase] = _run_phase(session, phase, loader, epoch, update, stop)
    train, valid = (_reduce(session, results[phase]) for phase in PHASES)
    step_scheduler(session.state.scheduler, valid.loss)
    row = {
        "epoch": epoch,
        "train_loss": train.loss,
        "train_acc": train.accuracy,
        "val_loss": valid.loss,
        "val_acc": valid.accuracy,
        "lr": lr,
        "seconds": train.seconds + valid.seconds,
        "train_images_per_s": train.count / max(train.seconds, 1e-9),
        **session.task.valid_metrics(valid),
    }
    if valid.confusion is not None:  # imbalanced classes: each one's accuracy
        row["val_class_acc"] = class_accuracy(valid.confusion, session.data.classes)
    _finish_epoch(session, row)
    return row


def _run_phase(session: Session, phase: str, loader, epoch: int, update, stop):
    """One pass of ``phase`` over the batch source's batches: a ``compute.PhaseResult``."""
    model, batches = session.source.model(phase), session.source.batches(phase, loader)
    where = {
        "device": session.device,
        "precision": session.precision,
        "memory_format": session.memory_format,
        "update": update,
    }
    state = session.state
    if phase == "valid":
        distributed.share_buffers(session.dist, state.model)  # validate what is saved
        with averaged_weights(state.model, state.average):  # --ema: validate the average
            per_class = {"num_classes": session.data.num_classes} if session.per_class else {}
            return session.task.evaluate(model, batches, **per_class, **where)
    if session.mixer is not None:
        batches = mix_batches(batches, session.mixer, session.config.seed, epoch, session.dist.rank)
    loss = {"loss_fn": session.loss_fn} if session.loss_fn is not None else {}
    return session.task.train(
        model, batches, state.optimizer, scaler=state.scaler, epoch=epoch, stop=stop,
        after_step=lambda: _after_step(state), **loss, **where,
    )  # fmt: skip


def _after_step(state) -> None:
    """What follows each optimizer step: the warmup's next rate, the weights' average."""
    if state.warmup is not None:
        state.warmup.step()
    if state.average is not None:
        state.average.update_parameters(state.model)


def _reduce(session: Session, result: compute.PhaseResult) -> compute.PhaseResult:
    """Sums over every rank, so metrics cover the whole data set (one image, one count)."""
    if session.task.multi_label:  # every rank's scores too: average precision ranks them all
        return session.task.reduce(session.dist, result)
    if not session.dist.enabled:
        return result
    cells = [c for row in result.confusion or [] for c in row]
    loss_sum, correct, count, *cells = distributed.sum_across(
        session.dist, [result.loss_sum, result.correct, result.count, *cells]
    )
    reduced = compute.PhaseResult(loss_sum, int(correct), int(count), result.seconds)
    if result.confusion is not None:
        n = len(result.confusion)
        reduced.confusion = [[int(c) for c in cells[i * n : (i + 1) * n]] for i in range(n)]
    return reduced


def _finish_epoch(session: Session, row: dict) -> None:
    p = session.state.progress
    p.epoch, p.seconds = row["epoch"], p.seconds + row["seconds"]
    p.rows.append(row)
    # The same on every rank: reduced metrics. In multi-label mode best_val_acc holds val_map.
    improved = row[session.task.metric] > p.best_val_acc
    if improved:
        p.best_val_acc, p.best_epoch = row[session.task.metric], row["epoch"]
    session.writer.epoch(session.state, session.meta, _summary(session), improved=improved)
    session.reporter.epoch(row, session.config.epochs)


def _summary(session: Session) -> dict:
    """summary.json."""
    p = session.state.progress
    summary = {
        "id": session.meta["id"],
        "best_val_acc": max(p.best_val_acc, 0.0),
        "best_epoch": p.best_epoch,
        "epochs_run": p.epoch,
        "seconds": p.seconds,
        "train_images_per_s": (
            sum(r["train_images_per_s"] for r in p.rows) / len(p.rows) if p.rows else 0.0
        ),
        "frozen_params": session.counts[0],
        "trainable_params": session.counts[1],
        "skipped_files": [path for path, _ in session.data.skipped],
    }
    return session.task.summary(summary, p.rows, p.best_epoch)
