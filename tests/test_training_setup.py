"""Setting up a run on the tiny in-process plugin: the batch source is chosen once, from the
options; a new run's files come after its checks; a resumed run gets its state back."""

from __future__ import annotations

import pytest
import torch
from images import make_image_folder

from zoo.errors import DataError
from zoo.runs import RunDir
from zoo.training import Reporter, TrainConfig
from zoo.training import _setup as setup
from zoo.training._resume import resume_plan
from zoo.training._trainer import fit
from zoo.training.cache import BatchSource
from zoo.training.cache._source import FeatureSource, PixelSource

FAST = {
    "weights": "none",
    "image_size": 32,
    "batch_size": 4,
    "workers": 0,
    "precision": "fp32",
    "device": "cpu",
    "epochs": 2,
}
LAST_KEYS = {"model", "optimizer", "scheduler", "scaler", "progress", "rng", "meta"}


class Notes(Reporter):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, message: str) -> None:
        self.lines.append(message)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_image_folder(
        tmp_path_factory.mktemp("data"), ["a", "b", "c"], per_class=(4, 2), layout="train-valid"
    )


def config(name: str, data, out, **options) -> TrainConfig:
    return TrainConfig(name=name, data=str(data), output=str(out), **{**FAST, **options}).check()


@pytest.mark.parametrize(
    ("options", "kind", "line", "kept"),
    [
        ({"freeze_until": "3", "augment": False}, FeatureSource, "caching features: the", ()),
        ({"augment": True}, PixelSource, "caching decoded images: 6 valid images", ("train",)),
        (
            {"augment": False, "cache_features": False},
            PixelSource,
            "caching decoded images: 18",
            (),
        ),
    ],
)
def test_set_up_chooses_the_batch_source_the_options_call_for(
    tiny, data, tmp_path, options, kind, line, kept
):
    notes = Notes()
    options = {**options, "workers": 1}
    session = setup.start_run(config(tiny, data, tmp_path / "run", **options), notes)
    assert type(session.source) is kind
    # Only a loader read every epoch keeps its workers alive between epochs.
    loaders = session.loaders
    persistent = {p for p in ("train", "valid") if getattr(loaders, p).persistent_workers}
    assert persistent == set(kept)
    assert any(x.startswith(line) for x in notes.lines), notes.lines
    if kind is FeatureSource:  # the suffix trains on stored features, not the model
        assert session.source.model("train") is not session.model


def test_with_no_cache_the_loaders_serve_the_model_itself(tiny, data, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_FEATURE_CACHE_MB", "0")
    session = setup.start_run(config(tiny, data, tmp_path / "run", augment=True), Notes())
    assert type(session.source) is BatchSource and session.source.raw_parts == ()
    assert session.source.model("train") is session.model
    assert session.source.model("valid") is session.model


def test_the_batch_source_is_chosen_once_and_serves_every_phase(tiny, data, tmp_path, monkeypatch):
    chosen = []

    def choose(*args, **kwargs):
        chosen.append(args)
        return choose_batch_source(*args, **kwargs)

    choose_batch_source = setup.choose_batch_source
    monkeypatch.setattr(setup, "choose_batch_source", choose)
    session = setup.start_run(config(tiny, data, tmp_path / "run", epochs=3), Notes())
    served = []

    class Spy(BatchSource):
        def model(self, phase):
            return inner.model(phase)

        def batches(self, phase, loader):
            served.append(phase)
            return inner.batches(phase, loader)

    inner, session.source = session.source, Spy(None, None)
    fit(session)
    assert len(chosen) == 1
    assert served == ["train", "valid"] * 3


def test_a_new_run_saves_config_and_an_epoch_0_last_pt(tiny, data, tmp_path):
    session = setup.start_run(config(tiny, data, tmp_path / "run"), Notes())
    run = RunDir(tmp_path / "run")
    assert session.run.path == run.path
    record = run.read_config()
    assert record["id"] == tiny and record["class_names"] == ["a", "b", "c"]
    last = run.read_last()
    assert set(last) == LAST_KEYS
    assert last["progress"] == {
        "epoch": 0,
        "best_val_acc": -1.0,
        "best_epoch": 0,
        "seconds": 0.0,
        "schedule_epochs": 2,
    }
    assert last["meta"] == session.meta and last["meta"]["class_names"] == ["a", "b", "c"]


def test_a_failed_check_leaves_no_run_directory(tiny, data, tmp_path):
    with pytest.raises(DataError, match="--num-classes 2 is fewer than the 3 classes"):
        setup.start_run(config(tiny, data, tmp_path / "run", num_classes=2), Notes())
    assert not (tmp_path / "run").exists()


def test_a_resumed_run_gets_its_training_state_back(tiny, data, tmp_path):
    fit(setup.start_run(config(tiny, data, tmp_path / "run", epochs=1), Notes()))
    run = RunDir.open(tmp_path / "run")
    saved = run.read_last()
    record, resumed = resume_plan(run, None, None, {"epochs": 2})
    session = setup.resume_run(run, record, resumed, Notes(), epochs=2)
    progress = session.state.progress
    assert (progress.epoch, progress.best_epoch, len(progress.rows)) == (1, 1, 1)
    model = session.model.state_dict()
    assert all(torch.equal(model[k], v) for k, v in saved["model"].items())
    momentum = session.state.optimizer.state_dict()["state"]
    assert momentum.keys() == saved["optimizer"]["state"].keys() and momentum
    assert session.state.scheduler.last_epoch == saved["scheduler"]["last_epoch"] == 1


def test_resuming_a_run_killed_before_its_first_save_starts_it_over(tiny, data, tmp_path):
    setup.start_run(config(tiny, data, tmp_path / "run"), Notes())
    (tmp_path / "run" / "last.pt").unlink()
    run = RunDir.open(tmp_path / "run")
    record, resumed = resume_plan(run, None, None, {})
    session = setup.resume_run(run, record, resumed, Notes())
    assert session.state.progress.epoch == 0
    assert (tmp_path / "run" / "last.pt").is_file()


@pytest.mark.parametrize("freeze", [None, "3"])
def test_compile_compiles_the_modules_that_run_and_is_recorded(tiny, data, tmp_path, freeze):
    import json

    from torch._dynamo.eval_frame import OptimizedModule

    options = {"freeze_until": freeze, "augment": False, "compile": True}
    session = setup.start_run(config(tiny, data, tmp_path / "run", **options), Notes())
    for phase in ("train", "valid"):
        module = session.source.model(phase)
        assert isinstance(module, OptimizedModule)  # compiled at its first step, not here
        params = {id(p) for p in module.parameters()}
        assert params <= {id(p) for p in session.model.parameters()}  # training the model
    record = json.loads((session.run.path / "config.json").read_text())
    assert record["options"]["compile"] is True
    plain = setup.start_run(config(tiny, data, tmp_path / "plain"), Notes())
    assert not isinstance(plain.source.model("train"), OptimizedModule)
