"""zoo finetune under torchrun: two CPU processes with gloo, DistributedDataParallel."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from conftest import torchrun_env
from images import make_image_folder

from zoo.data import EpochSampler
from zoo.runs import evaluate


def test_ranks_see_disjoint_training_shards_that_change_across_epochs():
    shards = {}
    for epoch in (1, 2):
        for rank in (0, 1):
            sampler = EpochSampler(11, seed=3, rank=rank, world=2)
            sampler.set_epoch(epoch)
            shards[epoch, rank] = [i for _, i in sampler]
        first, second = shards[epoch, 0], shards[epoch, 1]
        assert len(first) == len(second) == 6  # padded to equal length, as DDP needs
        assert set(first) | set(second) == set(range(11))
        assert len(set(first) & set(second)) <= 1  # only the one padding repeat
    assert shards[1, 0] != shards[2, 0]


def test_validation_shards_cover_every_image_exactly_once():
    seen = []
    for rank in range(3):
        seen += [i for _, i in EpochSampler(10, shuffle=False, rank=rank, world=3, pad=False)]
    assert sorted(seen) == list(range(10))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_image_folder(
        tmp_path_factory.mktemp("data"), ["a", "b", "c"], per_class=(10, 7), layout="train-valid"
    )


def test_torchrun_two_processes_trains_and_agrees_with_evaluate(
    data, plugin_site, with_site, tmp_path
):
    run = tmp_path / "run"
    env = torchrun_env(plugin_site)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-port",
            "29533",
            "-m",
            "zoo",
            "finetune",
            "tinyplug:plainnet",
            "--data",
            str(data),
            "--weights",
            "none",
            "--epochs",
            "3",
            "--image-size",
            "32",
            "--batch-size",
            "4",
            "--workers",
            "0",
            "--lr",
            "0.05",
            "--precision",
            "fp32",  # as zoo evaluate: the two losses compare exactly
            "-o",
            str(run),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    assert "2 processes" in done.stdout
    assert done.stdout.count("best valid accuracy") == 1, "only rank 0 reports"
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert sorted(p.name for p in run.iterdir()) == [
        "README.md",
        "best.pt",
        "config.json",
        "curves.png",
        "last.pt",
        "metrics.jsonl",
        "summary.json",
    ]
    summary = json.loads((run / "summary.json").read_text())
    report = evaluate(run, data / "valid", workers=0)
    assert report["images"] == 21
    assert report["accuracy"] == pytest.approx(summary["best_val_acc"], abs=1e-9)
    # BatchNorm trains (nothing frozen): each rank's running statistics drift apart within an
    # epoch, so the valid loss is the saved model's only when every rank validates with the
    # statistics rank 0 saves (issue 20, defect 6). The loss, unlike 21 images' accuracy,
    # moves with any difference.
    best = next(r for r in rows if r["epoch"] == summary["best_epoch"])
    assert report["loss"] == pytest.approx(best["val_loss"], rel=1e-5)


def test_destroying_the_process_group_leaves_nothing_holding_it(tmp_path):
    # A group still referenced at interpreter shutdown is torn down there, where gloo's threads
    # can abort the process after a finished run. Building an optimizer imports torch._dynamo,
    # whose imports once kept the group as a default argument.
    script = (
        "import sys, torch, torch.distributed as td\n"
        "from zoo.training import _distributed as distributed\n"
        "distributed.setup(distributed.Dist(), 'cpu')\n"
        "group = td.group.WORLD\n"
        "torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)\n"
        "td.destroy_process_group()\n"
        "print(sys.getrefcount(group) - 2)\n"  # less this name and getrefcount's argument
    )
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}
    env |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "0"  # no one else holds the group
