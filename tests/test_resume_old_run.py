"""A run directory written before the layout change (issue 13) still resumes and evaluates.

``fixtures/run-before-layout/`` holds config.json, metrics.jsonl, summary.json, best.pt and
last.pt (curves.png left out) of a run made by zoo at commit
1ea34edd29a61201760f195dc7001c1a1e3435fc, the last one with the flat ``zoo/``: the ``tiny``
plugin of conftest.py registered in-process, the image folder ``pets()`` below, and

    zoo.finetune("tiny:tinynet", pets, epochs=2, image_size=32, batch_size=4, workers=0,
                 weights="none", output=run)

with ZOO_HOME, TORCH_HOME and HF_HOME in a temporary folder. The run's data folder was deleted
afterwards, so its recorded path no longer exists and ``--data`` names the folder drawn here.
The checkpoints keep that commit's key layout: last.pt has model, optimizer, scheduler,
scaler, progress, rng and meta (meta with ``build_kwargs``); best.pt has state_dict and meta.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from images import make_image_folder

import zoo
from zoo.runs import evaluate

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "run-before-layout"


def pets(root: Path) -> Path:
    """The image folder the fixture was trained on, drawn again (the drawing is seeded)."""
    return make_image_folder(
        root / "pets", ["cat", "dog", "fox"], per_class=(4, 2), layout="train-valid"
    )


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def old_run(tmp_path) -> tuple[Path, Path]:
    """A copy of the fixture run and its image folder, both in tmp_path."""
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    return run, pets(tmp_path)


def assert_resumed_to_epoch_3(run: Path) -> None:
    metrics = rows(run)
    assert [r["epoch"] for r in metrics] == [1, 2, 3]
    assert metrics[:2] == rows(FIXTURE)
    last = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    assert last["progress"]["epoch"] == 3
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 3


def test_the_fixture_is_a_run_of_two_epochs_on_tiny():
    config = json.loads((FIXTURE / "config.json").read_text())
    assert config["id"] == "tiny:tinynet" and config["class_names"] == ["cat", "dog", "fox"]
    assert config["versions"]["zoo"] == "0.1.0" and [r["epoch"] for r in rows(FIXTURE)] == [1, 2]
    assert not Path(config["data"]).exists()


def test_an_old_best_pt_evaluates_to_its_recorded_accuracy(tiny, old_run):
    run, data = old_run
    report = evaluate(run, data / "valid", workers=0)
    best = json.loads((FIXTURE / "summary.json").read_text())["best_val_acc"]
    assert report["accuracy"] == pytest.approx(best, abs=1e-9)
    assert report["images"] == 6


def test_an_old_run_resumes_at_epoch_3(tiny, old_run):
    run, data = old_run
    result = zoo.finetune(resume=str(run), data=str(data), epochs=3)
    assert result.run_dir == run and result.summary["epochs_run"] == 3
    assert_resumed_to_epoch_3(run)
    report = evaluate(run, data / "valid", workers=0)
    assert report["accuracy"] == pytest.approx(result.summary["best_val_acc"], abs=1e-9)


def test_an_old_run_resumes_from_the_cli(tiny, old_run):
    from click.testing import CliRunner

    from zoo.cli import cli

    run, data = old_run
    args = ["finetune", "--resume", str(run), "--data", str(data), "--epochs", "3"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert_resumed_to_epoch_3(run)
