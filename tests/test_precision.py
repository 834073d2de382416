"""Precision: a bf16 run's recorded validation is what `zoo evaluate` computes, cached or not,
and what `--precision auto` picks where bf16 would lose."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from images import make_image_folder

import zoo
from zoo.runs import evaluate


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    return make_image_folder(
        tmp_path_factory.mktemp("colours"), ["red", "green", "blue"], per_class=(10, 5),
        layout="train-valid",
    )  # fmt: skip


@pytest.mark.parametrize("freeze", ["features.4", None], ids=["cached", "uncached"])
def test_evaluate_gives_a_bf16_runs_best_validation_exactly(
    colours, tmp_path, mobilenet_v2_file, freeze
):
    # features.5 adds its input to its output: fed float32 features where the whole model
    # has bf16 ones, the cached suffix would compute something else than `zoo evaluate`.
    result = zoo.finetune(
        "mobilenet_v2.IMAGENET1K_V1", str(colours), output=str(tmp_path / "run"), image_size=32,
        batch_size=8, workers=0, precision="bf16", augment=False, epochs=2, lr=0.01,
        freeze_until=freeze,
    )  # fmt: skip
    run, best = result.run_dir, result.summary["best_epoch"]
    report = evaluate(run, colours / "valid", workers=0)
    assert report["accuracy"] == result.summary["best_val_acc"]
    assert report["loss"] == pytest.approx(result.metrics[best - 1]["val_loss"], rel=1e-6)
    assert json.loads((run / "config.json").read_text())["options"]["precision"] == "bf16"
    # The last epoch validated on stored features (the first one computed them): its weights,
    # as a best.pt beside the run's config.json, evaluate to that epoch's metrics too.
    last = tmp_path / "last"
    last.mkdir()
    shutil.copy(run / "config.json", last)
    meta = torch.load(run / "best.pt", weights_only=True)["meta"]
    model = torch.load(run / "last.pt", weights_only=True)["model"]
    torch.save({"state_dict": model, "meta": meta}, last / "best.pt")
    report = evaluate(last, colours / "valid", workers=0)
    assert report["accuracy"] == result.metrics[-1]["val_acc"]
    assert report["loss"] == pytest.approx(result.metrics[-1]["val_loss"], rel=1e-6)


@pytest.fixture
def native_bf16(monkeypatch):
    """A CPU with AVX-512 BF16, whatever this one has."""
    from zoo.compute import _devices

    monkeypatch.setattr(_devices, "cpu_has_native_bf16", lambda: True)


def test_auto_is_fp32_on_a_cpu_for_grouped_and_depthwise_convolutions(native_bf16):
    from torch import nn

    from zoo.compute import resolve_precision

    cpu = torch.device("cpu")
    depthwise = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Conv2d(8, 8, 3, groups=8))
    plain = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3))
    assert resolve_precision("auto", cpu, depthwise).name == "fp32"
    assert resolve_precision("auto", cpu, plain).name == "bf16"
    assert resolve_precision("auto", cpu).name == "bf16"  # the model not known yet
    assert resolve_precision("bf16", cpu, depthwise).name == "bf16"  # asked for: given


def test_a_mobilenet_run_on_auto_records_fp32(native_bf16, colours, tmp_path, tiny):
    options = {"image_size": 32, "batch_size": 16, "workers": 0, "epochs": 1, "weights": "none"}
    mobile = zoo.finetune("mobilenet_v2", str(colours), output=str(tmp_path / "m"), **options)
    plain = zoo.finetune(tiny, str(colours), output=str(tmp_path / "t"), **options)
    for result, expected in ((mobile, "fp32"), (plain, "bf16")):
        config = json.loads((result.run_dir / "config.json").read_text())
        assert config["options"]["precision"] == expected
