"""The recipe options under torchrun: two CPU processes unfreeze at the boundary (a new
DistributedDataParallel over every parameter), average, warm up, draw balanced shares and mix,
and the averaged weights it validated are the ones saved."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import torchrun_env
from images import make_image_folder

OPTIONS = [
    *("--weights", "none", "--image-size", "32", "--batch-size", "4", "--workers", "0"),
    *("--lr", "0.05", "--optimizer", "adamw", "--freeze-until", "stem", "--unfreeze-after", "1"),
    *("--ema", "0.9", "--warmup-epochs", "1", "--balanced", "--mixup", "0.2"),
    *("--precision", "fp32"),
]


def torchrun(env, *args):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += ["--master-port", "29547", "-m", "zoo", "finetune", *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-6000:]
    return done.stdout


def rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_torchrun_unfreezes_averages_and_agrees_with_evaluate(plugin_site, with_site, tmp_path):
    from zoo.runs import evaluate

    data = make_image_folder(tmp_path / "data", ["a", "b", "c"], (10, 7), layout="train-valid")
    env = torchrun_env(plugin_site)
    run = tmp_path / "run"
    out = torchrun(env, "tinyplug:plainnet", "--data", data, *OPTIONS, "--epochs", 2, "-o", run)
    assert "2 processes" in out and out.count("epoch 2: unfreezing stem") == 1
    assert [r["epoch"] for r in rows(run)] == [1, 2]
    summary = json.loads((run / "summary.json").read_text())
    report = evaluate(run, data / "valid", workers=0)  # best.pt holds the validated average
    assert report["accuracy"] == pytest.approx(summary["best_val_acc"], abs=1e-9)
