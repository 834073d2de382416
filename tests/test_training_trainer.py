"""The trainer on the tiny in-process plugin: the epoch loop, early stopping, and Ctrl-C (the
context manager that catches it, and a run stopped by it)."""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager

import pytest
from images import make_image_folder

from zoo.errors import Interrupted
from zoo.runs import RunDir
from zoo.training import Reporter, TrainConfig
from zoo.training._setup import start_run
from zoo.training._trainer import catch_sigint, fit, run_epoch

FAST = {"weights": "none", "image_size": 32, "batch_size": 4, "workers": 0, "device": "cpu"}


class Phases(Reporter):
    """Records each phase it wraps, and each epoch row."""

    def __init__(self, on_update=None) -> None:
        self.phases: list[tuple[str, int, int]] = []
        self.rows: list[dict] = []
        self.notes: list[str] = []
        self.on_update = on_update or (lambda: None)

    def note(self, message: str) -> None:
        self.notes.append(message)

    @contextmanager
    def phase(self, name, epoch, epochs, total):
        self.phases.append((name, epoch, total))
        yield lambda images, loss: self.on_update()

    def epoch(self, row: dict, epochs: int) -> None:
        self.rows.append(row)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_image_folder(
        tmp_path_factory.mktemp("data"), ["a", "b"], per_class=(5, 3), layout="train-valid"
    )


def session(name, data, out, reporter, **options):
    options = {**FAST, "epochs": 2, "precision": "fp32", **options}
    return start_run(TrainConfig(name=name, data=str(data), output=str(out), **options), reporter)


def test_an_epoch_trains_then_validates_and_writes_its_row(tiny, data, tmp_path):
    reporter = Phases()
    s = session(tiny, data, tmp_path / "run", reporter)
    row = run_epoch(s, 1)
    assert reporter.phases == [("train", 1, 10), ("valid", 1, 6)]
    assert reporter.rows == [row] and row["epoch"] == 1
    assert set(row) == {
        "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
        "train_images_per_s",
    }  # fmt: skip
    assert s.state.progress.epoch == 1 and s.state.progress.best_epoch == 1
    assert RunDir(tmp_path / "run").metrics() == [row]


def test_fit_runs_every_epoch_and_returns_what_it_wrote(tiny, data, tmp_path):
    result = fit(session(tiny, data, tmp_path / "run", Reporter(), epochs=3))
    run = RunDir(result.run_dir)
    assert [r["epoch"] for r in result.metrics] == [1, 2, 3] == [r["epoch"] for r in run.metrics()]
    assert result.summary["epochs_run"] == 3
    assert run.read_last()["progress"]["epoch"] == 3


def test_the_run_files_are_whole_before_the_ranks_part(tiny, data, tmp_path, monkeypatch):
    # Under torchrun a peer can die on its way out and take rank 0 with it: rank 0 must have
    # written the last checkpoint, summary.json and curves.png before the ranks part.
    from zoo.training import _distributed

    s = session(tiny, data, tmp_path / "run", Reporter(), epochs=2)
    seen = []
    monkeypatch.setattr(
        _distributed, "barrier", lambda dist: seen.append(sorted(os.listdir(tmp_path / "run")))
    )
    monkeypatch.setattr(_distributed, "shutdown", lambda dist: seen.append("shutdown"))
    fit(s)
    assert seen[-1] == "shutdown"
    assert {"last.pt", "best.pt", "summary.json", "curves.png"} <= set(seen[-2])
    assert RunDir(tmp_path / "run").read_last()["progress"]["epoch"] == 2


def test_patience_stops_a_run_that_no_longer_improves(tiny, data, tmp_path):
    reporter = Phases()
    # Only the head trains, too slowly to change a prediction: epoch 1 stays the best.
    options = {"epochs": 5, "patience": 1, "lr": 1e-9, "freeze_until": "4"}
    result = fit(session(tiny, data, tmp_path / "run", reporter, **options))
    assert result.summary["epochs_run"] == 2 and result.summary["best_epoch"] == 1
    assert reporter.notes[-1] == "stopping early: no better valid accuracy in 1 epochs"


def test_ctrl_c_finishes_the_step_then_stops_with_the_last_saved_epoch(tiny, data, tmp_path):
    fired = []

    def press_once_in_epoch_2():
        if len(reporter.rows) == 1 and not fired:
            fired.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    reporter = Phases(press_once_in_epoch_2)
    s = session(tiny, data, tmp_path / "run", reporter, epochs=3)
    with pytest.raises(Interrupted, match="last.pt holds epoch 1"):
        fit(s)
    assert RunDir(tmp_path / "run").read_last()["progress"]["epoch"] == 1
    assert [name for name, *_ in reporter.phases] == ["train", "valid", "train"]


def test_catch_sigint_asks_to_stop_then_stops_at_once_and_restores_the_handler():
    def previous(signum, frame):
        pass

    old = signal.signal(signal.SIGINT, previous)
    try:
        with catch_sigint() as stop:
            handler = signal.getsignal(signal.SIGINT)
            assert handler is not previous and not stop()
            handler(signal.SIGINT, None)
            assert stop()
            with pytest.raises(KeyboardInterrupt):
                handler(signal.SIGINT, None)
        assert signal.getsignal(signal.SIGINT) is previous
    finally:
        signal.signal(signal.SIGINT, old)


def test_catch_sigint_restores_the_handler_when_the_body_raises():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(RuntimeError), catch_sigint():
        raise RuntimeError("boom")
    assert signal.getsignal(signal.SIGINT) is before


def test_catch_sigint_outside_the_main_thread_sets_no_handler():
    before, seen = signal.getsignal(signal.SIGINT), []

    def body():
        with catch_sigint() as stop:
            seen.append((stop(), signal.getsignal(signal.SIGINT)))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [(False, before)]


def test_a_steady_epoch_reads_the_device_a_constant_number_of_times(tiny, tmp_path, monkeypatch):
    """Served from kept pixels (no augmentation), an epoch's host reads of tensor values
    (each a wait for the device on a GPU) do not grow with its steps."""
    import torch

    reads = []
    for per_class in (4, 16):
        data = make_image_folder(
            tmp_path / f"d{per_class}", ["a", "b"], per_class=(per_class, 2), layout="train-valid"
        )
        config = TrainConfig(
            name=tiny, data=str(data), output=str(tmp_path / f"r{per_class}"), epochs=2,
            augment=False, precision="fp32", **FAST,
        ).check()  # fmt: skip
        session = start_run(config, Reporter())
        run_epoch(session, 1)  # decodes and keeps the pixels
        count = [0]
        for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
            real = getattr(torch.Tensor, name)

            def counted(self, *args, _real=real, _count=count, **kwargs):
                _count[0] += 1
                return _real(self, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, counted)
        run_epoch(session, 2)
        monkeypatch.undo()
        reads.append(count[0])
    assert reads[0] == reads[1]  # 2 then 8 training steps
