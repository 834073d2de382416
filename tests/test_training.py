"""zoo finetune end to end on image folders the tests draw: the run directory, the recipe
against the seeds' loop, real transfer, bad images, evaluate, predict and resume."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, run_zoo
from images import make_image_folder, write_image, write_not_an_image, write_truncated

import zoo
from zoo.checkpoints import read_checkpoint
from zoo.data import draw_shape
from zoo.runs import evaluate, predict

sys.path.insert(0, str(ROOT / "benchmarks"))

FAST = {
    "weights": "none",
    "image_size": 32,
    "batch_size": 16,
    "workers": 0,
    "precision": "fp32",
    "augment": False,
}


def shapes(root: Path, classes, train: int, valid: int, size: int = 32) -> Path:
    """A train/valid folder of the embedded dataset's shapes, drawn small."""
    for part, count, offset in (("train", train, 0), ("valid", valid, 10_000)):
        for c in classes:
            (root / part / c).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                draw_shape(c, seed=(offset + i,), size=size).save(root / part / c / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    return make_image_folder(
        tmp_path_factory.mktemp("colours"),
        ["red", "green", "blue"],
        per_class=(12, 6),
        layout="train-valid",
    )


@pytest.fixture(scope="module")
def finished_run(colours, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    return zoo.finetune("resnet18", str(colours), output=str(out), epochs=3, lr=0.01, **FAST)


def test_run_directory_holds_every_file(finished_run):
    run = finished_run.run_dir
    assert sorted(p.name for p in run.iterdir()) == [
        "README.md",
        "best.pt",
        "config.json",
        "curves.png",
        "last.pt",
        "metrics.jsonl",
        "summary.json",
    ]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert set(rows[0]) == {
        "epoch",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "lr",
        "seconds",
        "train_images_per_s",
    }
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary) == {
        "id",
        "best_val_acc",
        "best_epoch",
        "epochs_run",
        "seconds",
        "train_images_per_s",
        "frozen_params",
        "trainable_params",
        "skipped_files",
    }
    assert summary["best_val_acc"] == max(r["val_acc"] for r in rows)
    best = torch.load(run / "best.pt", weights_only=True)
    assert best["meta"]["class_names"] == ["blue", "green", "red"]
    assert best["state_dict"]["fc.weight"].shape == (3, 512)
    torch.load(run / "last.pt", weights_only=True)
    config = json.loads((run / "config.json").read_text())
    assert config["id"] == "torchvision:resnet18" and config["options"]["epochs"] == 3
    assert config["preprocessing"]["input_size"] == [3, 32, 32] and config["versions"]["torch"]


def test_evaluate_reproduces_the_best_validation_accuracy(finished_run, colours):
    report = evaluate(finished_run.run_dir, colours / "valid", workers=0)
    assert report["accuracy"] == pytest.approx(finished_run.summary["best_val_acc"], abs=1e-9)
    assert sum(map(sum, report["confusion_matrix"])) == 18
    assert Path(report["confusion_png"]).is_file()


def test_predict_returns_the_class_the_model_gets_right(finished_run, colours):
    images = sorted((colours / "valid").glob("*/*.png"))
    rows = predict(finished_run.run_dir / "best.pt", images, top_k=2)
    assert [r["image"] for r in rows] == [str(p) for p in images]
    assert all(
        len(r["top"]) == 2 and r["top"][0]["probability"] >= r["top"][1]["probability"]
        for r in rows
    )
    right = [r for r, p in zip(rows, images, strict=False) if r["top"][0]["class"] == p.parent.name]
    assert len(right) / len(rows) == pytest.approx(finished_run.summary["best_val_acc"])


def test_resume_a_finished_run_with_more_epochs(finished_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run.run_dir, run)
    result = zoo.finetune(resume=str(run), epochs=5)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[:3] == finished_run.metrics
    assert result.summary["epochs_run"] == 5


def test_matches_the_seed_loop(colours, tmp_path):
    from seed_loop import run as seed_run

    common = {"epochs": 4, "batch_size": 8, "lr": 0.001, "seed": 0}
    ours = zoo.finetune(
        "resnet18",
        str(colours),
        output=str(tmp_path / "run"),
        weights="none",
        image_size=32,
        workers=0,
        precision="fp32",
        augment=False,
        **common,
    )
    theirs = seed_run(str(colours), arch="resnet18", image_size=32, **common)
    print("zoo", ours.summary["best_val_acc"], "seed loop", theirs["best_val_acc"])
    assert theirs["best_val_acc"] >= 0.9, "the comparison needs a run that learns"
    assert abs(ours.summary["best_val_acc"] - theirs["best_val_acc"]) <= 0.01


def test_transfer_from_a_previous_run_beats_random_weights(tmp_path):
    source = shapes(tmp_path / "a", ["circle", "square", "triangle"], 40, 10)
    target = shapes(tmp_path / "b", ["star", "cross"], 12, 30)
    first = zoo.finetune(
        "resnet18", str(source), output=str(tmp_path / "first"), epochs=8, lr=0.01, **FAST
    )
    options = {
        "epochs": 3,
        "lr": 0.01,
        "freeze_until": "layer3",
        "image_size": 32,
        "batch_size": 16,
        "workers": 0,
        "precision": "fp32",
        "augment": False,
    }
    warm = zoo.finetune(
        "resnet18",
        str(target),
        output=str(tmp_path / "warm"),
        weights=str(first.run_dir),
        **options,
    )
    cold = zoo.finetune(
        "resnet18", str(target), output=str(tmp_path / "cold"), weights="none", **options
    )
    print("warm", warm.summary["best_val_acc"], "cold", cold.summary["best_val_acc"])
    assert warm.summary["best_val_acc"] > cold.summary["best_val_acc"]
    before = read_checkpoint(first.run_dir / "best.pt")["state_dict"]
    after = read_checkpoint(warm.run_dir / "best.pt")["state_dict"]
    frozen = [k for k in before if k.startswith(("conv1", "bn1", "layer1", "layer2", "layer3"))]
    assert any("running_mean" in k for k in frozen)
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(before["layer4.0.conv1.weight"], after["layer4.0.conv1.weight"])


def test_bad_and_odd_images_are_skipped_or_converted(tmp_path):
    data = make_image_folder(tmp_path / "data", ["a", "b"], per_class=(6, 3), layout="train-valid")
    write_truncated(data / "train/a/truncated.jpg")
    write_not_an_image(data / "train/b/notes.jpg")
    for mode in ("L", "RGBA", "CMYK"):
        write_image(data / f"train/a/{mode}.{'jpg' if mode == 'CMYK' else 'png'}", mode=mode)
    result = zoo.finetune("resnet18", str(data), output=str(tmp_path / "run"), epochs=1, **FAST)
    assert sorted(Path(p).name for p in result.summary["skipped_files"]) == [
        "notes.jpg",
        "truncated.jpg",
    ]
    assert result.summary["epochs_run"] == 1


def test_empty_class_folder_fails_up_front_naming_it(tmp_path):
    data = make_image_folder(tmp_path / "data", ["a", "b"], per_class=(4, 2), layout="train-valid")
    (data / "train" / "empty").mkdir()
    result = run_zoo(
        "finetune",
        "resnet18",
        "--data",
        str(data),
        "--weights",
        "none",
        "-o",
        str(tmp_path / "run"),
    )
    assert result.returncode == 1
    assert "empty" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_cli_finetune_prints_epoch_lines_then_evaluate_and_predict(colours, tmp_path):
    run = tmp_path / "run"
    done = run_zoo(
        "finetune",
        "resnet18",
        "--data",
        str(colours),
        "--weights",
        "none",
        "--epochs",
        "2",
        "--image-size",
        "32",
        "--workers",
        "0",
        "--batch-size",
        "16",
        "-o",
        str(run),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-3].startswith("epoch 1/2") and lines[-2].startswith("epoch 2/2")
    assert lines[-1].startswith("best valid accuracy") and str(run) in lines[-1]
    shown = json.loads(
        run_zoo("evaluate", str(run), "--data", str(colours / "valid"), "--json").stdout
    )
    assert shown["accuracy"] == json.loads((run / "summary.json").read_text())["best_val_acc"]
    image = sorted((colours / "valid/red").glob("*.png"))[0]
    rows = json.loads(run_zoo("predict", str(run), str(image), "--top-k", "1", "--json").stdout)
    assert rows[0]["image"] == str(image) and len(rows[0]["top"]) == 1


# --- zoo finetune --resume: paths, NAME and --data, extending, a damaged config.json ---------

CLI_FAST = ["--weights", "none", "--image-size", "32", "--batch-size", "16", "--workers", "0"]


def zoo_cli(*args):
    from click.testing import CliRunner

    from zoo.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def epochs_in(run: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_resume_from_another_working_directory(colours, tmp_path, monkeypatch):
    import shutil

    start = tmp_path / "start"
    shutil.copytree(colours, start / "tv")
    monkeypatch.chdir(start)
    first = zoo_cli(
        "finetune", "resnet18", "--data", "tv", "-o", "runs/tv", "--epochs", "1", *CLI_FAST
    )
    assert first.exit_code == 0, first.output
    run = start / "runs" / "tv"
    config = json.loads((run / "config.json").read_text())
    assert config["data"] == config["options"]["data"] == str(start / "tv")
    assert config["options"]["output"] == str(run)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    resumed = zoo_cli("finetune", "--resume", run, "--epochs", "2")
    assert resumed.exit_code == 0, resumed.stderr
    assert epochs_in(run) == [1, 2]


def test_an_old_relative_data_path_says_what_to_do(colours, tmp_path, monkeypatch):
    import shutil

    run = tmp_path / "run"
    zoo.finetune("resnet18", str(colours), output=str(run), epochs=1, **FAST)
    config = json.loads((run / "config.json").read_text())
    config["data"] = config["options"]["data"] = "tv"  # as runs recorded it before
    (run / "config.json").write_text(json.dumps(config))
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(
        zoo_cli("finetune", "--resume", run, "--epochs", "2"),
        "records the data folder as 'tv', relative to the folder the run was started in",
        "pass --data",
    )
    shutil.copytree(colours, tmp_path / "moved")
    resumed = zoo_cli("finetune", "--resume", run, "--epochs", "2", "--data", "moved")
    assert resumed.exit_code == 0, resumed.stderr
    assert epochs_in(run) == [1, 2]
    config = json.loads((run / "config.json").read_text())
    assert config["data"] == config["options"]["data"] == str(tmp_path / "moved")


def test_resume_refuses_another_backbone_or_data_folder(colours, tmp_path, monkeypatch):
    run = tmp_path / "run"
    zoo.finetune("resnet18", str(colours), output=str(run), epochs=1, **FAST)
    (tmp_path / "ds").mkdir()
    before = (run / "config.json").read_text()
    assert_one_line_error(
        zoo_cli("finetune", "resnet50", "--resume", run),
        "--resume takes the backbone from the run's config.json (torchvision:resnet18)",
        "drop NAME (resnet50)",
    )
    assert_one_line_error(
        zoo_cli("finetune", "--resume", run, "--data", tmp_path / "ds"),
        f"--resume takes the data folder from the run's config.json ({colours})",
        "drop --data",
    )
    line = assert_one_line_error(
        zoo_cli("finetune", "--resume", run, "--lr", "0.1", "--no-cache-features"),
        "--cache-features may be given (got --lr)",
    )
    assert "_" not in line.split("only ")[1]  # every option in its CLI spelling
    assert (run / "config.json").read_text() == before and epochs_in(run) == [1]
    monkeypatch.chdir(colours.parent)  # the same backbone and folder, spelt differently
    same = zoo_cli(
        "finetune", "torchvision:resnet18", "--resume", run, "--data", colours.name, "--epochs", "2"
    )
    assert same.exit_code == 0, same.stderr
    assert epochs_in(run) == [1, 2]


def test_extending_a_run_updates_its_config(colours, tmp_path):
    run = tmp_path / "run"
    zoo.finetune("resnet18", str(colours), output=str(run), epochs=1, **FAST)
    nothing = zoo_cli("finetune", "--resume", run)
    assert nothing.exit_code == 0, nothing.stderr
    assert f"{run} already ran 1 epoch; pass --epochs 2 or more to extend it" in nothing.stdout
    extended = zoo_cli("finetune", "--resume", run, "--epochs", "3")
    assert extended.exit_code == 0, extended.stderr
    assert json.loads((run / "config.json").read_text())["options"]["epochs"] == 3
    again = zoo_cli("finetune", "--resume", run)
    assert again.exit_code == 0, again.stderr
    assert f"{run} already ran 3 epochs; pass --epochs 4 or more to extend it" in again.stdout
    assert_one_line_error(
        zoo_cli("finetune", "--resume", run, "--epochs", "2"),
        f"{run} already ran 3 epochs, more than --epochs 2; pass --epochs 4 or more",
    )
    assert epochs_in(run) == [1, 2, 3]
    assert json.loads((run / "config.json").read_text())["options"]["epochs"] == 3
    assert not [p.name for p in run.iterdir() if p.suffix == ".tmp"]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{bad", "not valid JSON"),
        ("{}", "missing or malformed: id, options, data"),
        ("[1, 2]", "not a JSON object"),
    ],
)
def test_a_damaged_config_is_one_clear_line(finished_run, tmp_path, text, why):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run.run_dir, run)
    (run / "config.json").write_text(text + "\n")
    assert_one_line_error(
        zoo_cli("finetune", "--resume", run, "--epochs", "4"),
        f"{run / 'config.json'} is damaged ({why}",
        "restore it from a copy of the run, or start a new run",
    )
