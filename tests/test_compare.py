"""zoo compare: a linear-probe bake-off on the embedded dataset with real pretrained weights,
a random-weights stand-in and a backbone whose file is missing; and its bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import zoo
from zoo.cli import cli
from zoo.cli._compare import leaderboard_lines
from zoo.registry import get_registry
from zoo.weights import expected_path

PRETRAINED = "mobilenet_v2.IMAGENET1K_V1"  # real ImageNet weights (mobilenet_v2_file)
STAND_IN = "shufflenet_v2_x0_5"  # its default file: random weights the test saves
MISSING = "squeezenet1_1"  # no file at all


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def default_file(arch: str) -> Path:
    backbone, _ = get_registry().get(f"torchvision:{arch}")
    return expected_path(backbone.weights[backbone.default_tag])


@pytest.fixture(scope="module")
def torch_home(mobilenet_v2_file, tmp_path_factory):
    """A torch hub cache of its own: the real MobileNetV2 file and a random ShuffleNet one."""
    import torchvision

    home = tmp_path_factory.mktemp("compare-torch")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(home))
        checkpoints = home / "hub" / "checkpoints"
        checkpoints.mkdir(parents=True)
        shutil.copyfile(mobilenet_v2_file, checkpoints / mobilenet_v2_file.name)
        torch.manual_seed(0)
        torch.save(torchvision.models.get_model(STAND_IN).state_dict(), default_file(STAND_IN))
        assert not default_file(MISSING).exists()
        yield home


@pytest.fixture(scope="module")
def bakeoff(torch_home, tmp_path_factory):
    """One bake-off through the CLI, reused: (rows printed with --json, its folder)."""
    out = tmp_path_factory.mktemp("bakeoff") / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(torch_home))
        result = invoke(
            "compare", PRETRAINED, STAND_IN, MISSING, "--image-size", 32, "--epochs", 1,
            "--lr", 0.01, "--precision", "fp32", "-o", out, "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        yield json.loads(result.stdout), out, result.stderr


def test_the_pretrained_backbone_ranks_first_and_the_missing_one_is_skipped(bakeoff):
    rows, out, _ = bakeoff
    first, second, skipped = rows
    assert (first["id"], first["tag"]) == ("torchvision:mobilenet_v2", "IMAGENET1K_V1")
    assert second["id"] == f"torchvision:{STAND_IN}"
    assert first["val_acc"] > second["val_acc"] + 0.2  # real features against random ones
    assert skipped == {
        "id": f"torchvision:{MISSING}",
        "tag": "IMAGENET1K_V1",
        "skipped": f"no weights file at {default_file(MISSING)}",
    }
    for row in (first, second):
        assert set(row) == {
            "id", "tag", "val_acc", "params", "gflops", "images_per_s", "seconds", "run_dir",
        }  # fmt: skip
        assert row["images_per_s"] > 0 and row["seconds"] > 0 and row["gflops"] > 0
        assert Path(row["run_dir"]).parent == out
    assert first["params"] == 2_223_872 + 1280 * 5 + 5  # the body and a 5-class head
    assert first["gflops"] == pytest.approx(per_image_gflops(PRETRAINED, 32), rel=1e-3)


def per_image_gflops(name: str, size: int) -> float:
    """GFLOPs (multiply-adds) of one image through ``name`` with a 5-class head, counted on
    a batch of 4 and divided: the figure does not depend on the batch it is counted on."""
    from torch.utils.flop_counter import FlopCounterMode

    model = zoo.create(name, num_classes=5, weights="none").eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(4, 3, size, size))
    return counter.get_total_flops() / 2 / 1e9 / 4


def test_progress_names_each_backbone_and_the_skipped_one(bakeoff):
    _, _, stderr = bakeoff
    assert f"skipping torchvision:{MISSING}.IMAGENET1K_V1: no weights file at" in stderr
    assert f"[1/2] torchvision:{PRETRAINED}" in stderr
    assert f"[2/2] torchvision:{STAND_IN}.IMAGENET1K_V1" in stderr
    assert "caching features" in stderr  # the frozen body ran once per image


def test_the_folder_holds_the_leaderboard_the_picture_and_ordinary_runs(bakeoff):
    rows, out, _ = bakeoff
    assert json.loads((out / "leaderboard.json").read_text()) == rows
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(out / "compare.png").size[0] > 400
    for row in rows[:2]:
        run = Path(row["run_dir"])
        config = json.loads((run / "config.json").read_text())
        assert config["options"]["freeze_until"] == "backbone"
        assert config["options"]["augment"] is False
        summary = json.loads((run / "summary.json").read_text())
        assert summary["best_val_acc"] == row["val_acc"]


def test_evaluate_on_each_run_gives_the_leaderboards_accuracy(bakeoff):
    rows, _, _ = bakeoff
    valid = zoo.data.embedded_dataset() / "valid"
    for row in rows[:2]:
        result = invoke("evaluate", row["run_dir"], "--data", valid, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["accuracy"] == pytest.approx(row["val_acc"], abs=1e-9)


def test_the_text_leaderboard_is_a_table_then_the_skipped(bakeoff):
    rows, _, _ = bakeoff
    lines = leaderboard_lines(rows)
    assert lines[0].split() == [
        "id", "val_acc", "params", "GFLOPs", "img/s", "seconds", "run_dir",
    ]  # fmt: skip
    assert lines[1].startswith(f"torchvision:{PRETRAINED} ")
    assert lines[1].split()[1] == f"{rows[0]['val_acc']:.2%}"
    assert lines[-1].startswith(f"skipped torchvision:{MISSING}.IMAGENET1K_V1: no weights file")


def test_the_python_api_is_zoo_compare():
    from zoo.bakeoff import compare

    assert zoo.compare is compare and callable(zoo.compare)


# --- bad input: one line each, nothing written -------------------------------------------------


def one_line_error(result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ")
    for fragment in fragments:
        assert fragment in line
    return line


def test_no_backbone_matches(tmp_path):
    result = invoke("compare", "nothing_like_this*", "-o", tmp_path / "out")
    one_line_error(result, "no backbone matches nothing_like_this*")
    assert not (tmp_path / "out").exists()


def test_no_backbone_matches_the_filters(tmp_path):
    result = invoke("compare", "mobilenet*", "--source", "torchvision", "--max-params", "1M")
    one_line_error(result, "no backbone matches mobilenet*", "--max-params 1M")


def test_an_unknown_name_suggests_close_ones():
    one_line_error(invoke("compare", "mobilenet_v9"), "unknown backbone", "did you mean")


def test_every_backbone_skipped_for_missing_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    result = invoke("compare", MISSING, "resnet18", "-o", tmp_path / "out")
    line = one_line_error(
        result,
        "every one lacks its weights",
        f"squeezenet1_1.IMAGENET1K_V1: no weights file at {default_file(MISSING)}",
        str(default_file("resnet18")),
        "put the files there, or pass tags whose files are here",
    )
    assert "zoo list --cached" in line and not (tmp_path / "out").exists()


def test_more_than_limit_is_refused(tmp_path):
    result = invoke("compare", "resnet*", "--source", "torchvision", "--limit", 3)
    one_line_error(result, "backbones match resnet*", "more than --limit 3")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [(["--epochs", "0"], "epochs"), (["--batch-size", "-1"], "batch"),
     (["--limit", "0"], "--limit must be a positive"),
     (["--max-params", "lots"], "--max-params 'lots' is not a positive number")],
)  # fmt: skip
def test_bad_option_values_are_refused_before_anything_starts(tmp_path, args, fragment):
    result = invoke("compare", PRETRAINED, *args, "-o", tmp_path / "out")
    one_line_error(result, fragment)
    assert not (tmp_path / "out").exists()


def test_a_data_folder_that_does_not_exist(tmp_path, mobilenet_v2_file):
    result = invoke("compare", PRETRAINED, "--data", tmp_path / "nowhere", "-o", tmp_path / "o")
    one_line_error(result, str(tmp_path / "nowhere"))
    assert not (tmp_path / "o").exists()


def test_a_data_folder_with_an_empty_class(tmp_path, mobilenet_v2_file):
    for name, count in (("cat", 3), ("dog", 0)):
        folder = tmp_path / "pets" / name
        folder.mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (8, 8), (i * 60, 0, 0)).save(folder / f"{i}.png")
    result = invoke("compare", PRETRAINED, "--data", tmp_path / "pets", "-o", tmp_path / "o")
    one_line_error(result, "dog")
    assert not (tmp_path / "o").exists()


def test_an_output_folder_in_use_is_refused(tmp_path, mobilenet_v2_file):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "leaderboard.json").write_text("[]")
    result = invoke("compare", PRETRAINED, "-o", tmp_path / "out")
    one_line_error(result, "is not an empty folder")
    assert os.listdir(tmp_path / "out") == ["leaderboard.json"]


@pytest.mark.parametrize(("warm", "first"), [(False, 8), (True, 2)])
def test_the_speed_test_warms_up_a_cold_model_with_a_whole_batch(warm, first):
    from zoo.bakeoff._speed import measure
    from zoo.compute import resolve_precision

    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(784, 2)
    )
    batches = []
    model.register_forward_hook(lambda module, args, out: batches.append(len(args[0])))
    cpu = torch.device("cpu")
    speed, gflops = measure(model, (16, 16), 8, cpu, resolve_precision("fp32", cpu), warm=warm)
    assert batches[:2] == [1, first]  # the FLOP count's one image, then the warm-up
    assert batches[2:] and set(batches[2:]) == {8}  # timed: whole batches only
    assert speed > 0 and gflops > 0
