"""Issue 20's friction list: options that would do nothing say so, --milestones, --threads,
an unwritable --output refused first, a run's own validation set for `zoo evaluate RUN`,
test/ and train/-only layouts, non-ASCII JSON, one img/s figure, and the Python API."""

from __future__ import annotations

import json
import time

import pytest
import torch
from click.testing import CliRunner
from images import make_image_folder

import zoo
from zoo.cli import cli
from zoo.errors import TrainingError
from zoo.training._progress import BarReporter

BASE = ("--epochs", "1", "--weights", "none", "--image-size", "32", "--workers", "0")


def finetune(tiny, data, out, *extra):
    args = ["finetune", tiny, "--data", str(data), *BASE, "-o", str(out), *extra]
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def pets(tmp_path):
    return make_image_folder(tmp_path / "pets", ["cat", "dog"], (4, 2), layout="train-valid")


def test_options_that_do_nothing_say_so_in_one_line_each(tiny, pets, tmp_path):
    threads = torch.get_num_threads()
    try:
        result = finetune(
            tiny, pets, tmp_path / "run", "--val-split", "0.3", "--optimizer", "adam",
            "--momentum", "0.5", "--scheduler", "cosine", "--step-size", "3", "--gamma", "0.5",
            "--milestones", "1", "--train-bn", "--threads", "1",
        )  # fmt: skip
        assert torch.get_num_threads() == 1  # --threads
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for expected in (
        "--val-split does nothing here: the data has its own validation folder",
        "--momentum does nothing with --optimizer adam (it applies to sgd and rmsprop)",
        "--step-size does nothing with --scheduler cosine (it applies to step)",
        "--gamma does nothing with --scheduler cosine",
        "--milestones does nothing with --scheduler cosine (it applies to multistep)",
        "--train-bn does nothing without --freeze-until",
    ):
        assert sum(line.startswith(expected) for line in lines) == 1, expected


def test_default_options_and_freezing_random_weights(tiny, pets, tmp_path):
    quiet = finetune(tiny, pets, tmp_path / "a")
    assert quiet.exit_code == 0 and "does nothing" not in quiet.output
    frozen = finetune(tiny, pets, tmp_path / "b", "--freeze-until", "1")
    assert "warning: --freeze-until 1 with --weights none freezes randomly initialised" in (
        frozen.output
    )


def test_milestones_decay_the_lr_at_those_epochs(tiny, pets, tmp_path):
    out = tmp_path / "run"
    args = ("--scheduler", "multistep", "--milestones", "1,2", "--lr", "0.1", "--epochs", "3")
    assert finetune(tiny, pets, out, *args).exit_code == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows] == pytest.approx([0.1, 0.01, 0.001])
    bad = finetune(tiny, pets, tmp_path / "bad", "--milestones", "a,b")
    assert bad.exit_code == 2 and "expected whole numbers separated by commas" in bad.output


def test_an_unwritable_output_is_refused_before_the_data_is_read(tiny, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    result = finetune(tiny, tmp_path / "no-such-data", blocker / "run")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: --output {blocker / 'run'} cannot be made: {blocker} is a file, not a folder"
    )


def test_evaluate_without_data_uses_the_runs_held_out_files(tiny, tmp_path):
    data = make_image_folder(tmp_path / "pets", ["猫", "狗"], 5)  # split by --val-split
    out = tmp_path / "run"
    assert finetune(tiny, data, out, "--val-split", "0.4").exit_code == 0
    config_text = (out / "config.json").read_text(encoding="utf-8")
    assert "猫" in config_text  # JSON keeps non-ASCII as it is
    held_out = json.loads(config_text)["valid_files"]
    assert len(held_out) == 4 and all(p.startswith(str(data)) for p, _ in held_out)
    result = CliRunner().invoke(cli, ["evaluate", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert '"猫"' in result.output
    report = json.loads(result.output)
    summary = json.loads((out / "summary.json").read_text())
    assert report["images"] == 4
    assert report["accuracy"] == pytest.approx(summary["best_val_acc"])
    config = json.loads(config_text)
    del config["valid_files"]  # a run made before runs recorded them
    (out / "config.json").write_text(json.dumps(config))
    old = CliRunner().invoke(cli, ["evaluate", str(out)])
    assert old.exit_code == 1 and "does not record its validation set" in old.output


@pytest.mark.parametrize("layout", ["test", "train-only"])
def test_test_folder_validates_and_train_alone_is_split(tiny, tmp_path, layout):
    data = make_image_folder(tmp_path / "pets", ["cat", "dog"], (4, 2), layout="train-valid")
    if layout == "test":
        (data / "valid").rename(data / "test")
    else:
        for image in (data / "valid").rglob("*.png"):
            image.unlink()
        for folder in sorted((data / "valid").rglob("*"), reverse=True) + [data / "valid"]:
            folder.rmdir()
    result = finetune(tiny, data, tmp_path / "run", "--val-split", "0.5")
    assert result.exit_code == 0, result.output
    expected = "8 train / 4 valid" if layout == "test" else "4 train / 4 valid"
    assert expected in result.output
    held_out = json.loads((tmp_path / "run" / "config.json").read_text())["valid_files"]
    assert all(f"/{'test' if layout == 'test' else 'train'}/" in p for p, _ in held_out)


def test_the_progress_bar_shows_one_images_per_second_figure(capsys):
    with BarReporter().phase("train", 1, 1, 8) as update:
        for _ in range(4):
            time.sleep(0.12)  # past tqdm's refresh interval
            update(2, 1.0)
    shown = [part for part in capsys.readouterr().err.split("\r") if "loss" in part]
    assert shown and all(part.count("img/s") == 1 for part in shown)


def test_the_python_api(tiny, pets, tmp_path, capsys):
    assert {"evaluate", "predict", "finetune", "create", "info"} <= set(dir(zoo))
    assert zoo.evaluate is zoo.runs.evaluate and zoo.predict is zoo.runs.predict
    options = {"epochs": 1, "weights": None, "image_size": 32, "workers": 0}
    zoo.finetune(tiny, str(pets), output=str(tmp_path / "a"), **options)
    assert "best valid accuracy" in capsys.readouterr().out  # reports, as the CLI does
    zoo.finetune(tiny, str(pets), output=str(tmp_path / "b"), progress=False, **options)
    assert capsys.readouterr().out == ""
    model = zoo.create(tiny, weights=str(tmp_path / "a"))
    assert model.zoo_spec.class_names == ["cat", "dog"]
    assert zoo.create(tiny, num_classes=5, weights=str(tmp_path / "a")).zoo_spec.class_names is None
    with pytest.raises(TrainingError, match=r"^--epochs must be a whole number, got '2'$"):
        zoo.finetune(tiny, str(pets), **{**options, "epochs": "2"})
