"""zoo.data's loaders: how many DataLoader workers decode images when --workers is not given."""

from __future__ import annotations

import os

import pytest
import torch

from zoo.data import default_workers, make_loaders, scan_image_folder
from zoo.data._preprocessing import Preprocessing
from zoo.training import TrainConfig


@pytest.fixture
def cores(monkeypatch):
    """Pretend this process may run on ``n`` cores."""

    def set_cores(n: int) -> None:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(n)), raising=False)
        monkeypatch.setattr(os, "cpu_count", lambda: n)

    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    return set_cores


CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda", 0), torch.device("mps")


@pytest.mark.parametrize(
    ("n", "device", "expected"),
    [
        (1, CPU, 0),  # the step needs the only core
        (2, CPU, 1),
        (16, CPU, 4),  # the CPU step needs the cores: at most 4 decode
        (16, CUDA, 15),  # a GPU host does not stop at 4: every core but one
        (64, CUDA, 63),
        (8, MPS, 7),
        (1, CUDA, 0),
    ],
)
def test_the_worker_default_follows_the_cores_and_the_device(cores, n, device, expected):
    cores(n)
    assert default_workers(device) == expected


def test_never_more_workers_than_batches(cores):
    cores(16)
    assert default_workers(CUDA, batches=3) == 3
    assert default_workers(CPU, batches=2) == 2
    assert default_workers(CUDA, batches=100) == 15


def test_torchrun_processes_share_the_cores(cores, monkeypatch):
    cores(16)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert default_workers(CUDA) == 3


def test_a_runs_loaders_have_no_more_workers_than_their_batches(cores, tmp_path):
    from images import make_image_folder

    cores(16)
    data = make_image_folder(tmp_path, ["a", "b"], per_class=(6, 2), layout="train-valid")
    split = scan_image_folder(data)
    pre = Preprocessing(input_size=(3, 32, 32))
    # 12 train images in batches of 4 (3 batches), 4 valid images (1 batch)
    loaders = make_loaders(split, pre, TrainConfig(batch_size=4), CUDA)
    assert (loaders.train.num_workers, loaders.valid.num_workers) == (3, 1)
    assert loaders.train.persistent_workers and loaders.train.pin_memory
    loaders = make_loaders(split, pre, TrainConfig(batch_size=4, workers=0), CUDA)
    assert (loaders.train.num_workers, loaders.valid.num_workers) == (0, 0)


def test_workers_of_a_part_a_cache_serves_end_with_the_pass(cores, tmp_path):
    """Kept alive, forked workers share the process's memory copy-on-write and slow the first
    cached epoch; a part read every epoch keeps its workers."""
    from images import make_image_folder

    from zoo.training.cache._source import BatchSource

    cores(16)
    data = make_image_folder(tmp_path, ["a", "b"], per_class=(6, 2), layout="train-valid")
    split, pre = scan_image_folder(data), Preprocessing(input_size=(3, 32, 32))
    config = TrainConfig(batch_size=4)
    loaders = make_loaders(split, pre, config, CUDA, once=("valid",))
    assert loaders.train.persistent_workers and not loaders.valid.persistent_workers
    loaders = make_loaders(split, pre, config, CUDA, once=("train", "valid"))
    assert not loaders.train.persistent_workers and not loaders.valid.persistent_workers
    assert loaders.train.num_workers == 3  # still decoding in parallel for the first epoch
    assert BatchSource(None, None).served_parts == ()
