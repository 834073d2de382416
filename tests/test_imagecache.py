"""Decoded images kept in memory: pixels that repeat are decoded once, and nothing else changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from images import make_image_folder
from test_caching import FAST, Notes, weights

import zoo
from zoo.data import (
    Preprocessing,
    build_transform,
    load_rgb,
    make_loaders,
    normalize_batch,
    scan_image_folder,
)
from zoo.training import TrainConfig
from zoo.training.cache import plan_image_cache

PRE = Preprocessing(input_size=(3, 24, 24))
CPU = torch.device("cpu")


@pytest.fixture
def data(tmp_path):
    return make_image_folder(
        tmp_path / "colours", ["red", "green", "blue"], per_class=(6, 3), layout="train-valid"
    )


def plan(data, **options):
    config = TrainConfig(**{"batch_size": 4, "workers": 0, "augment": False, **options})
    split = scan_image_folder(data)
    images, line = plan_image_cache(config, split, PRE, CPU, features=False, distributed=False)
    return config, split, images, line


def epoch(images, loaders, epoch: int, part: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loaders.set_epoch(epoch)
    return list(images.batches(getattr(loaders, part), part=part))


def test_normalize_batch_gives_the_transform_s_floats_bit_for_bit(data):
    paths = sorted(data.glob("valid/*/*"))
    floats = build_transform(PRE, train=False)
    pixels = build_transform(PRE, train=False, normalize=False)
    one_by_one = torch.stack([floats(load_rgb(p)) for p in paths])
    raw = torch.stack([pixels(load_rgb(p)) for p in paths])
    assert raw.dtype == torch.float32 and raw.min() >= 0 and raw.max() <= 255  # not normalised
    assert torch.equal(normalize_batch(raw, PRE), one_by_one)


def test_later_epochs_are_served_without_reading_a_file(data):
    config, split, images, line = plan(data)
    assert images.parts == ("valid", "train")
    assert line == "caching decoded images: 27 train and valid images, 0.2 MB in memory"
    loaders = make_loaders(split, PRE, config, CPU, raw=images.parts)
    first = {part: epoch(images, loaders, 1, part) for part in ("train", "valid")}
    shutil.rmtree(data)  # from now on any decoding would fail
    for part in ("train", "valid"):
        again = epoch(images, loaders, 1, part)
        assert len(again) == len(first[part])
        for (x, y), (x0, y0) in zip(again, first[part], strict=True):
            assert torch.equal(x, x0) and torch.equal(y, y0)
    later = epoch(images, loaders, 2, "train")  # another order, the same images
    assert sorted(y for _, ys in later for y in ys.tolist()) == sorted(
        label for _, label in split.train
    )


def test_the_image_a_dropped_lone_batch_left_out_is_decoded_alone(data):
    # 18 train images in batches of 17: the lone last one is dropped, another each epoch.
    config, split, images, _ = plan(data, batch_size=17)
    loaders = make_loaders(split, PRE, config, CPU, raw=images.parts)
    assert len(epoch(images, loaders, 1, "train")) == 1
    (left_out,) = (~images.filled["train"]).nonzero().flatten().tolist()
    keep = split.train[left_out][0]
    for path in data.glob("train/*/*"):
        if str(path) != keep:
            path.unlink()  # every other train image must now come from memory
    for n in (2, 3):
        (batch,) = epoch(images, loaders, n, "train")
        assert len(batch[1]) == 17
    assert images.filled["train"].all()
    Path(keep).unlink()
    assert len(epoch(images, loaders, 4, "train")[0][1]) == 17


def test_served_batches_equal_the_uncached_loader_s(data):
    config, split, images, _ = plan(data)
    cached = make_loaders(split, PRE, config, CPU, raw=images.parts)
    plain = make_loaders(split, PRE, config, CPU)
    for part in ("train", "valid"):
        epoch(images, cached, 3, part)  # fills the cache
        plain.set_epoch(3)
        served = epoch(images, cached, 3, part)
        for (x, y), (x0, y0) in zip(served, getattr(plain, part), strict=True):
            assert x.dtype == torch.float32
            assert torch.equal(x, x0) and torch.equal(y, y0)


def test_random_augmentation_leaves_only_the_valid_images_cached(data):
    _, _, images, line = plan(data, augment=True)
    assert images.parts == ("valid",)
    assert line.startswith("caching decoded images: 9 valid images")


def test_the_cap_leaves_out_what_does_not_fit(data, monkeypatch):
    per_image_mb = 4 * 3 * 24 * 24 / 1e6  # float32 pixels
    monkeypatch.setenv("ZOO_FEATURE_CACHE_MB", str(10 * per_image_mb))  # valid (9) fits
    _, _, images, line = plan(data)
    assert images.parts == ("valid",)
    assert line.endswith("(not train: the cap is 0.1 MB, $ZOO_FEATURE_CACHE_MB)")
    monkeypatch.setenv("ZOO_FEATURE_CACHE_MB", str(5 * per_image_mb))  # not even valid
    _, _, images, line = plan(data)
    assert images is None
    assert line == (
        "not caching decoded images: 0.2 MB is over the cap of 0.0 MB ($ZOO_FEATURE_CACHE_MB)"
    )
    monkeypatch.setenv("ZOO_FEATURE_CACHE_MB", "0")
    assert plan(data)[2:] == (None, "not caching decoded images: $ZOO_FEATURE_CACHE_MB is 0")


@pytest.mark.parametrize("why", ["features", "distributed"])
def test_no_image_cache_beside_the_feature_cache_or_under_torchrun(data, why):
    config = TrainConfig(augment=False)
    flags = {"features": why == "features", "distributed": why == "distributed"}
    split = scan_image_folder(data)
    assert plan_image_cache(config, split, PRE, CPU, **flags) == (None, None)


def test_a_run_with_decoded_images_cached_trains_the_same_model(data, tmp_path, monkeypatch):
    def finetune(out):
        notes = Notes()
        result = zoo.finetune("resnet18", str(data), output=str(out), reporter=notes, **FAST)
        return result, [line for line in notes.lines if "decoded images" in line]

    cached, lines = finetune(tmp_path / "cached")
    assert lines == ["caching decoded images: 27 train and valid images, 0.3 MB in memory"]
    monkeypatch.setenv("ZOO_FEATURE_CACHE_MB", "0")
    plain, lines = finetune(tmp_path / "plain")
    assert lines[0].startswith("not caching decoded images")
    a, b = weights(cached.run_dir), weights(plain.run_dir)
    assert all(torch.equal(a[key], b[key]) for key in a)
    timing = {"seconds", "train_images_per_s"}
    rows = [
        [{k: v for k, v in r.items() if k not in timing} for r in run.metrics]
        for run in (cached, plain)
    ]
    assert rows[0] == rows[1]
