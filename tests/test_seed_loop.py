"""benchmarks/seed_loop.py: the seeds' recipe as a reference, trained for real on tiny images."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "seed_loop.py"
FROZEN = ("conv1", "bn1", "layer1", "layer2", "layer3")


def _load_script():
    spec = importlib.util.spec_from_file_location("seed_loop", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seed_loop = _load_script()


def _make_folder(root: Path, valid_name: str = "valid") -> Path:
    """Red noise vs. blue noise, 8 train and 4 valid 32x32 images per class."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), (valid_name, 4)):
        for name, channel in (("blue", 2), ("red", 0)):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 80, (32, 32, 3), dtype=np.uint8)
                pixels[..., channel] += 170
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


@pytest.fixture(autouse=True)
def one_thread():
    """The script keeps torch's default threads; the tests use one, because on a busy
    two-core machine OpenMP threads that wait on each other make resnet18 30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return _make_folder(tmp_path_factory.mktemp("colors"))


def _tiny_run(data, **options):
    options = {"arch": "resnet18", "epochs": 2, "image_size": 32, "batch_size": 8} | options
    return seed_loop.run(data, device="cpu", **options)


def test_run_returns_a_json_ready_summary_with_the_best_epoch(data):
    result = _tiny_run(data)
    assert json.loads(json.dumps(result)) == result
    assert result["arch"] == "resnet18"
    assert [row["epoch"] for row in result["epochs"]] == [1, 2]
    keys = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"}
    for row in result["epochs"]:
        assert keys | {"train_images_per_s"} <= row.keys()
        assert 0.0 <= row["train_acc"] <= 1.0 and 0.0 <= row["val_acc"] <= 1.0
        assert row["seconds"] > 0 and row["train_images_per_s"] > 0
    accuracies = [row["val_acc"] for row in result["epochs"]]
    assert result["best_val_acc"] == max(accuracies)
    assert result["best_epoch"] == accuracies.index(max(accuracies)) + 1
    assert result["peak_rss_mb"] > 50  # torch alone is larger than that


def test_same_seed_gives_the_same_run(data):
    first, second = _tiny_run(data, epochs=1), _tiny_run(data, epochs=1)
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert first["epochs"][0][key] == second["epochs"][0][key]


def test_scheduler_steps_after_the_optimizer(data):
    with warnings.catch_warnings():
        # PyTorch warns when lr_scheduler.step() comes before optimizer.step(), as in the seeds.
        warnings.filterwarnings("error", message=".*lr_scheduler.step.*")
        result = _tiny_run(data, step_size=1, gamma=0.1)
    assert [row["lr"] for row in result["epochs"]] == pytest.approx([1e-3, 1e-4])


def test_freeze_until_layer3_trains_only_layer4_and_fc(data):
    torch.manual_seed(0)
    model = seed_loop.build_model("resnet18", num_classes=2, freeze_until="layer3")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loaders = seed_loop.load_data(data, image_size=32, batch_size=8)
    seed_loop.train(model, loaders, epochs=1, lr=0.1)
    after = model.state_dict()

    params = dict(model.named_parameters())
    for name, param in params.items():
        frozen = name.split(".")[0] in FROZEN
        assert param.requires_grad is not frozen, name
        assert torch.equal(before[name], after[name]) is frozen, name
    # The seeds freeze by requires_grad only: BatchNorm in train mode still moves its stats.
    assert not torch.equal(before["layer1.0.bn1.running_mean"], after["layer1.0.bn1.running_mean"])


def test_weights_file_is_loaded_before_the_head_is_swapped(tmp_path):
    source = seed_loop.build_model("resnet18", num_classes=1000).state_dict()
    source["conv1.weight"].fill_(0.5)
    torch.save(source, tmp_path / "resnet18.pth")
    model = seed_loop.build_model("resnet18", num_classes=3, weights=tmp_path / "resnet18.pth")
    assert torch.equal(model.conv1.weight, torch.full_like(model.conv1.weight, 0.5))
    assert model.fc.out_features == 3


def test_unknown_freeze_point_is_refused():
    with pytest.raises(ValueError, match="layer1, layer2"):
        seed_loop.build_model("resnet18", num_classes=2, freeze_until="layer9")


def test_cli_json_reads_a_val_folder(tmp_path, capsys):
    folder = _make_folder(tmp_path / "data", valid_name="val")
    argv = ["--data", str(folder), "--epochs", "1", "--image-size", "32", "--batch-size", "8"]
    seed_loop.main([*argv, "--device", "cpu", "--json"])
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # stdout holds the JSON document and nothing else
    assert result["best_epoch"] == 1 and len(result["epochs"]) == 1
    assert "epoch 1/1" in captured.err


def test_cli_prints_one_line_per_epoch(data, capsys):
    argv = ["--data", str(data), "--epochs", "2", "--image-size", "32", "--batch-size", "8"]
    seed_loop.main([*argv, "--device", "cpu", "--freeze-until", "layer3"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines[:2]] == ["1/2", "2/2"]
    assert lines[2].startswith("best valid acc")
