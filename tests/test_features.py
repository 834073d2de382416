"""The feature store: each kind round-trips, the cap picks the kind, a disk store is found
again by its key (and only by it), and a store a killed run left half-written is ignored."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from zoo.errors import FeatureStoreError
from zoo.training.cache import FeatureStore, cache_folder, cache_key, file_signature

SHAPES = [(4, 3, 3), (6,)]  # two boundary tensors, as a model with an auxiliary head gives
COUNT = 10
FP32_BYTES = COUNT * (36 + 6) * 4


def features(count: int = COUNT, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(count, *shape, generator=generator) * 3 for shape in SHAPES]


def fill(store: FeatureStore, tensors: list[torch.Tensor], batch: int = 4) -> None:
    """Put the rows in shuffled batches, as an epoch's sampler would."""
    order = torch.randperm(COUNT, generator=torch.Generator().manual_seed(1))
    for start in range(0, COUNT, batch):
        rows = order[start : start + batch]
        store.put(rows, [t[rows] for t in tensors])


def key_parts(**changes) -> dict:
    parts = {
        "model": "torchvision:resnet18",
        "weights": "random:0",
        "freeze_until": "layer3",
        "preprocessing": {"input_size": [3, 64, 64], "mean": [0.5] * 3, "std": [0.5] * 3},
        "files": [("a/1.png", 100, 1), ("b/2.png", 120, 2)],
        "precision": "fp32",
    }
    return {**parts, **changes}


@pytest.mark.parametrize(
    ("cap", "kind", "tolerance"),
    [
        (FP32_BYTES, "ram-fp32", 0.0),
        (FP32_BYTES - 1, "ram-bf16", 2**-8),  # bf16 keeps 8 significant bits
        (FP32_BYTES // 2 - 1, "disk-fp16", 2**-11),  # fp16 keeps 11
    ],
)
def test_each_kind_round_trips_within_its_precision(tmp_path, cap, kind, tolerance):
    tensors = features()
    store = FeatureStore.create(COUNT, SHAPES, cap_bytes=cap, folder=tmp_path / "store")
    assert store.kind == kind
    fill(store, tensors)
    assert store.complete
    rows = [7, 0, 3]
    for got, want in zip(store.get(rows), tensors, strict=True):
        assert got.dtype == torch.float32
        assert torch.allclose(got, want[rows], rtol=tolerance, atol=0)


def test_the_cap_picks_the_kind(tmp_path):
    picks = {
        cap: FeatureStore.create(COUNT, SHAPES, cap_bytes=cap, folder=tmp_path / str(cap)).kind
        for cap in (10 * FP32_BYTES, FP32_BYTES, FP32_BYTES // 2, FP32_BYTES // 2 - 1, 0)
    }
    assert picks == {
        10 * FP32_BYTES: "ram-fp32",
        FP32_BYTES: "ram-fp32",
        FP32_BYTES // 2: "ram-bf16",
        FP32_BYTES // 2 - 1: "disk-fp16",
        0: "disk-fp16",
    }


def test_over_the_cap_without_a_folder_is_an_error_that_says_what_to_do():
    with pytest.raises(FeatureStoreError, match="give a folder for a disk store or raise the cap"):
        FeatureStore.create(COUNT, SHAPES, cap_bytes=0)


def test_a_bf16_store_holds_half_the_bytes_of_fp32():
    fp32 = FeatureStore.create(COUNT, SHAPES, cap_bytes=FP32_BYTES)
    bf16 = FeatureStore.create(COUNT, SHAPES, cap_bytes=FP32_BYTES // 2)
    assert (fp32.kind, bf16.kind) == ("ram-fp32", "ram-bf16")
    assert fp32.nbytes == FP32_BYTES
    assert bf16.nbytes == FP32_BYTES // 2
    held = sum(a.untyped_storage().nbytes() for a in bf16._arrays)  # what is really allocated
    assert held == FP32_BYTES // 2


def test_get_returns_copies_that_callers_may_modify():
    store = FeatureStore.create(COUNT, SHAPES, cap_bytes=FP32_BYTES)
    fill(store, features())
    first = store.get([2])[0]
    first.zero_()  # an in-place ReLU of the suffix on its input, say
    assert store.get([2])[0].abs().sum() > 0


def test_complete_only_once_every_row_is_put_and_rows_not_put_cannot_be_read():
    store = FeatureStore.create(COUNT, SHAPES, cap_bytes=FP32_BYTES)
    tensors = features()
    store.put(range(COUNT - 1), [t[: COUNT - 1] for t in tensors])
    assert not store.complete
    with pytest.raises(FeatureStoreError, match="before they were put"):
        store.get([COUNT - 1])
    store.put([COUNT - 1], [t[COUNT - 1 :] for t in tensors])
    assert store.complete


def test_a_batch_of_the_wrong_shape_is_refused():
    store = FeatureStore.create(COUNT, SHAPES, cap_bytes=FP32_BYTES)
    with pytest.raises(FeatureStoreError, match=r"shape \(2, 4, 3, 3\)"):
        store.put([0, 1], [torch.zeros(2, 4, 3, 4), torch.zeros(2, 6)])


def test_values_beyond_float16_are_refused_on_disk(tmp_path):
    store = FeatureStore.create(COUNT, SHAPES, cap_bytes=0, folder=tmp_path / "store")
    with pytest.raises(FeatureStoreError, match="float16's range"):
        store.put([0], [torch.full((1, 4, 3, 3), 1e5), torch.zeros(1, 6)])


def test_the_key_changes_with_each_part_and_not_with_their_order():
    key = cache_key(**key_parts())
    assert len(key) == 64
    assert cache_key(**dict(reversed(list(key_parts().items())))) == key
    changes = {
        "weights": "sha256:" + "0" * 64,
        "freeze_until": "layer2",
        "preprocessing": {**key_parts()["preprocessing"], "input_size": [3, 96, 96]},
        "files": list(reversed(key_parts()["files"])),  # row order is part of the data
        "precision": "bf16",
    }
    for name, value in changes.items():
        assert cache_key(**key_parts(**{name: value})) != key, name


def test_file_signature_sees_a_rewritten_file(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"one")
    before = file_signature([image])
    image.write_bytes(b"other")
    os.utime(image, ns=(1, 1))
    assert before != file_signature([image])
    assert file_signature([image])[0] == (str(image), 5, 1)


def test_a_disk_store_is_found_again_by_its_key_and_only_by_it():
    parts = key_parts()
    folder = cache_folder(cache_key(**parts))
    assert folder.parent.name == "features"
    assert str(folder).startswith(os.environ["ZOO_HOME"])
    tensors = features()
    store = FeatureStore.create(COUNT, SHAPES, cap_bytes=0, folder=folder, meta=parts)
    fill(store, tensors)
    assert store.complete and folder.is_dir()

    again = FeatureStore.open(folder, count=COUNT, shapes=SHAPES)
    assert again is not None and again.kind == "disk-fp16" and again.complete
    assert torch.allclose(again.get([5])[0], tensors[0][5:6], rtol=2**-11, atol=0)
    assert again.meta["freeze_until"] == "layer3"
    with pytest.raises(FeatureStoreError, match="read-only"):
        again.put([0], [t[:1] for t in tensors])

    for change in ({"freeze_until": "layer2"}, {"weights": "sha256:" + "1" * 64}):
        assert FeatureStore.open(cache_folder(cache_key(**key_parts(**change)))) is None
    assert FeatureStore.open(folder, shapes=[(4, 3, 3), (7,)]) is None


def test_a_damaged_store_is_not_opened(tmp_path):
    folder = tmp_path / "store"
    fill(FeatureStore.create(COUNT, SHAPES, cap_bytes=0, folder=folder), features())
    assert FeatureStore.open(folder) is not None
    with open(folder / "boundary-1.f16", "r+b") as f:
        f.truncate(10)
    assert FeatureStore.open(folder) is None
    (folder / "meta.json").write_text("{not json")
    assert FeatureStore.open(folder) is None


KILLED_WRITER = """
import os, sys, torch
from zoo.training.cache import FeatureStore
store = FeatureStore.create(10, [(4, 3, 3), (6,)], cap_bytes=0, folder=sys.argv[1])
store.put(range(6), [torch.ones(6, 4, 3, 3), torch.ones(6, 6)])
os.kill(os.getpid(), 9)
"""


def test_a_store_whose_writer_was_killed_is_ignored_and_later_swept(tmp_path):
    folder = tmp_path / "features" / "somekey"
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_WRITER), str(folder)])
    assert done.returncode == -9
    leftovers = list(folder.parent.glob(".somekey.partial-*"))
    assert len(leftovers) == 1 and (leftovers[0] / "boundary-0.f16").exists()
    assert not folder.exists()
    assert FeatureStore.open(folder) is None

    store = FeatureStore.create(COUNT, SHAPES, cap_bytes=0, folder=folder)
    assert not leftovers[0].exists()  # the dead run's partial store is gone
    fill(store, features())
    assert FeatureStore.open(folder) is not None


def test_training_on_cached_features_gives_the_model_training_without_them_gives(tiny):
    import copy

    import zoo
    from zoo.training.cache import split_frozen_prefix

    torch.manual_seed(0)
    cached = zoo.create(tiny, num_classes=3, weights=None, freeze_until="1")
    plain = copy.deepcopy(cached)
    images, labels = torch.randn(8, 3, 32, 32), torch.randint(0, 3, (8,))
    split = split_frozen_prefix(cached, example=images[:2])
    store = FeatureStore.create(8, split.boundary_shapes, cap_bytes=1 << 30)
    prefix_runs = []
    cached[0].register_forward_hook(lambda *_: prefix_runs.append(1))
    initial = copy.deepcopy(plain.state_dict())
    optimizers = [
        torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
        for m in (cached, plain)
    ]
    for epoch in range(3):
        order = torch.randperm(8, generator=torch.Generator().manual_seed(epoch))
        for rows in order.split(4):
            if store.complete:  # later epochs: the prefix never runs again
                features = store.get(rows)
            else:  # the first epoch: compute once, keep, train on them right away
                features = split.features(images[rows])
                store.put(rows, features)
            logits = [split.suffix(train=True)(*features), plain.train()(images[rows])]
            for logit, optimizer in zip(logits, optimizers, strict=True):
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(logit, labels[rows]).backward()
                optimizer.step()
        assert store.complete
    assert len(prefix_runs) == 2  # the two batches of the first epoch, and never again
    assert not torch.equal(plain.state_dict()["8.weight"], initial["8.weight"])
    assert torch.equal(plain.state_dict()["0.weight"], initial["0.weight"])  # frozen
    for (name, a), b in zip(cached.state_dict().items(), plain.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name
