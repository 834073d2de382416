"""The training state and the run's writer: state_dict/load_state_dict round-trip every part,
last.pt keeps the key layout runs made before the layout change have, and the writer of any
rank but 0 writes nothing."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from zoo.runs import RunDir
from zoo.training import TrainConfig, build_optimizer, build_scheduler
from zoo.training._distributed import Dist
from zoo.training._state import Progress, TrainingState, load_last, save_last
from zoo.training._writer import RunWriter, Writer, writer_for

LAST_KEYS = ["model", "optimizer", "scheduler", "scaler", "progress", "rng", "meta"]
META = {"id": "tiny:tinynet", "num_classes": 2, "class_names": ["a", "b"], "build_kwargs": {}}


def new_state(seed: int, **options) -> TrainingState:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    config = TrainConfig(**options)
    optimizer = build_optimizer(model.parameters(), config)
    return TrainingState(model, optimizer, build_scheduler(optimizer, config), None)


def train(state: TrainingState, steps: int = 3) -> None:
    for _ in range(steps):
        loss = state.model(torch.randn(5, 4)).square().mean()
        state.optimizer.zero_grad()
        loss.backward()
        state.optimizer.step()
        state.scheduler.step()
    p = state.progress
    p.epoch, p.best_val_acc, p.best_epoch, p.seconds = 3, 0.5, 2, 1.25


def test_the_state_round_trips_through_state_dict():
    trained = new_state(0, scheduler="cosine", optimizer="adamw", epochs=9)
    train(trained)
    saved = trained.state_dict()
    python_draw, torch_draw = random.random(), torch.rand(3)
    fresh = new_state(1, scheduler="cosine", optimizer="adamw", epochs=9)
    fresh.load_state_dict(saved)
    assert random.random() == python_draw and torch.equal(torch.rand(3), torch_draw)
    for key, value in trained.model.state_dict().items():
        assert torch.equal(fresh.model.state_dict()[key], value), key
    ours, theirs = fresh.optimizer.state_dict()["state"], trained.optimizer.state_dict()["state"]
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k]["exp_avg"], theirs[k]["exp_avg"]) for k in ours)
    assert fresh.scheduler.state_dict() == trained.scheduler.state_dict()
    assert fresh.progress.state_dict() == {
        "epoch": 3,
        "best_val_acc": 0.5,
        "best_epoch": 2,
        "seconds": 1.25,
        "schedule_epochs": None,
    }


def test_last_pt_keeps_today_s_keys_and_comes_back_with_the_metrics_rows(tmp_path):
    run = RunDir.create(tmp_path / "run")
    state = new_state(0)
    train(state)
    run.write_metrics([{"epoch": n} for n in (1, 2, 3, 4)])  # a row past last.pt's epoch 3
    save_last(run, state, META)
    raw = torch.load(run.file("last.pt"), map_location="cpu", weights_only=False)
    assert list(raw) == LAST_KEYS
    assert list(raw["progress"]) == [
        "epoch",
        "best_val_acc",
        "best_epoch",
        "seconds",
        "schedule_epochs",  # optional: older runs' last.pt lack it
    ]
    assert raw["scaler"] is None and raw["meta"] == META
    fresh = new_state(1)
    load_last(run, fresh)
    assert fresh.progress == Progress(3, 0.5, 2, 1.25, [{"epoch": n} for n in (1, 2, 3)])
    assert torch.equal(fresh.model[0].weight, state.model[0].weight)


def test_a_part_saved_as_none_stays_as_built():
    state = new_state(0, scheduler="none")
    saved = state.state_dict()
    assert saved["scheduler"] is None and saved["scaler"] is None
    other = new_state(1, scheduler="step")
    before = other.scheduler.state_dict()
    other.load_state_dict(saved)
    assert other.scheduler.state_dict() == before


def test_the_writer_off_rank_0_writes_nothing(tmp_path):
    run = RunDir.create(tmp_path / "run")
    writer = writer_for(run, Dist(rank=1, world=2, local_rank=1))
    assert type(writer) is Writer

    class Untouchable:  # a state the silent writer must not even read
        def __getattr__(self, name):
            raise AssertionError(f"read {name} off rank 0")

    writer.config({"id": "x"})
    writer.last(Untouchable(), META)
    writer.epoch(Untouchable(), META, {"epochs_run": 1}, improved=True)
    assert list(run.path.iterdir()) == []


@pytest.mark.parametrize("improved", [True, False])
def test_the_writer_on_rank_0_writes_an_epoch_s_files(tmp_path, improved):
    run = RunDir.create(tmp_path / "run")
    writer = writer_for(run, Dist())
    assert type(writer) is RunWriter
    state = new_state(0)
    state.progress.rows = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.0}]
    state.progress.rows[0].update(train_acc=0.5, val_acc=0.5, lr=0.1)
    writer.epoch(state, META, {"epochs_run": 1}, improved=improved)
    # A quick epoch: its checkpoint is kept in memory, the metrics row is on disk.
    assert {p.name for p in run.path.iterdir()} == {"metrics.jsonl"}
    writer.finish(state.progress.rows, META["id"])  # the run ended: checkpoint and curves
    written = {p.name for p in run.path.iterdir()}
    expected = {"metrics.jsonl", "last.pt", "summary.json", "README.md", "curves.png"}
    assert written == expected | ({"best.pt"} if improved else set())


def test_checkpoints_go_to_disk_every_half_minute_and_keep_their_epoch_s_state(
    tmp_path, monkeypatch
):
    """Between writes the writer holds a copy of the last epoch's state: training on after it
    does not change what ``flush`` (the end, Ctrl-C, a NaN loss) writes."""
    from zoo.training import _writer

    now = [1000.0]
    monkeypatch.setattr(_writer.time, "monotonic", lambda: now[0])
    run = RunDir.create(tmp_path / "run")
    writer, state = writer_for(run, Dist()), new_state(0, optimizer="adamw")
    row = {"train_loss": 1.0, "val_loss": 1.0, "train_acc": 0.5, "val_acc": 0.5, "lr": 0.1}

    def epoch(n: int, seconds: float, improved: bool) -> None:
        train(state, steps=1)
        state.progress.epoch = n
        state.progress.rows.append({"epoch": n, **row})
        now[0] += seconds
        writer.epoch(state, META, {"epochs_run": n}, improved=improved)

    epoch(1, 10, improved=True)
    epoch(2, 10, improved=False)
    assert not run.file("last.pt").exists() and not run.file("best.pt").exists()
    kept = {k: v.clone() for k, v in state.model.state_dict().items()}
    moments = {k: v["exp_avg"].clone() for k, v in state.optimizer.state_dict()["state"].items()}
    epoch(3, 10, improved=False)  # 30 s since the start: written, with epoch 1's best.pt
    assert run.read_last()["progress"]["epoch"] == 3
    best_at_1 = torch.load(run.file("best.pt"), weights_only=True)["state_dict"]
    epoch(4, 1, improved=True)  # kept in memory
    assert run.read_last()["progress"]["epoch"] == 3
    snapshot = {k: v.clone() for k, v in state.model.state_dict().items()}
    snapshot_moments = {
        k: v["exp_avg"].clone() for k, v in state.optimizer.state_dict()["state"].items()
    }
    train(state, steps=2)  # the run goes on, then stops: epoch 4's state is what is written
    writer.flush()
    last = run.read_last()
    assert last["progress"]["epoch"] == 4
    for key, value in last["model"].items():
        assert torch.equal(value, snapshot[key]), key
    for k, v in last["optimizer"]["state"].items():
        assert torch.equal(v["exp_avg"], snapshot_moments[k])
        assert not torch.equal(v["exp_avg"], moments[k])
    best = torch.load(run.file("best.pt"), weights_only=True)["state_dict"]
    assert all(torch.equal(best[k], snapshot[k]) for k in best)
    assert not all(torch.equal(best_at_1[k], kept[k]) for k in best_at_1)


def test_curves_are_drawn_every_few_seconds_and_when_the_run_ends(tmp_path, monkeypatch):
    """matplotlib takes longer than a cached epoch: a short run draws curves.png once."""
    from zoo.training import _writer

    now = [1000.0]
    monkeypatch.setattr(_writer.time, "monotonic", lambda: now[0])
    run = RunDir.create(tmp_path / "run")
    drawn = []
    monkeypatch.setattr(run, "draw_curves", lambda rows, backbone: drawn.append(len(rows)))
    writer, state = writer_for(run, Dist()), new_state(0)
    row = {"train_loss": 1.0, "val_loss": 1.0, "train_acc": 0.5, "val_acc": 0.5, "lr": 0.1}
    for epoch, seconds in enumerate((2, 3, 6, 1, 1), start=1):  # at 2, 5, 11, 12, 13 s
        now[0] += seconds
        state.progress.rows.append({"epoch": epoch, **row})
        writer.epoch(state, META, {"epochs_run": epoch}, improved=False)
    assert drawn == [3]  # the first epoch ending 10 s after the start
    writer.finish(state.progress.rows, META["id"])
    assert drawn == [3, 5]
    writer.finish(state.progress.rows, META["id"])  # nothing new: not drawn again
    assert drawn == [3, 5]
