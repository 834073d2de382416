"""Feature caching in zoo finetune: the frozen part runs once, and the model comes out the same."""

from __future__ import annotations

import pytest
import torch
from images import make_image_folder

import zoo
from zoo.checkpoints import read_checkpoint
from zoo.training import Reporter, seed_everything

FAST = {
    "weights": "none",
    "image_size": 32,
    "batch_size": 8,
    "workers": 0,
    "precision": "fp32",
    "augment": False,
    "epochs": 3,
    "lr": 0.01,
}


class Notes(Reporter):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, message: str) -> None:
        self.lines.append(message)

    def about_caching(self) -> str:
        (line,) = [x for x in self.lines if "caching features" in x]
        return line


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_image_folder(
        tmp_path_factory.mktemp("colours"), ["red", "green", "blue"], per_class=(10, 5),
        layout="train-valid",
    )  # fmt: skip


def finetune(data, out, **options):
    notes = Notes()
    result = zoo.finetune(
        "resnet18", str(data), output=str(out), reporter=notes, **{**FAST, **options}
    )
    return result, notes


def weights(run) -> dict:
    return read_checkpoint(run / "last.pt")["model"]


@pytest.mark.parametrize("freeze", ["layer2", "backbone"])
def test_cached_and_uncached_runs_give_the_same_model(data, tmp_path, freeze):
    cached, notes = finetune(data, tmp_path / "cached", freeze_until=freeze)
    assert notes.about_caching().startswith("caching features: the frozen part runs once")
    plain, notes = finetune(data, tmp_path / "plain", freeze_until=freeze, cache_features=False)
    assert notes.about_caching() == "not caching features: --no-cache-features"
    a, b = weights(cached.run_dir), weights(plain.run_dir)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    assert [r["val_acc"] for r in cached.metrics] == [r["val_acc"] for r in plain.metrics]
    losses = zip(cached.metrics, plain.metrics, strict=True)
    assert all(abs(x["train_loss"] - y["train_loss"]) < 1e-4 for x, y in losses)


def test_cached_epochs_train_the_head_and_leave_the_frozen_part(data, tmp_path):
    result, _ = finetune(data, tmp_path / "run", freeze_until="layer3", epochs=2)
    seed_everything(0)  # what the run's random initialisation was
    start = zoo.create("resnet18", num_classes=3, weights=None, freeze_until="layer3")
    after = weights(result.run_dir)
    before = start.state_dict()
    assert torch.equal(after["layer2.0.conv1.weight"], before["layer2.0.conv1.weight"])
    assert torch.equal(after["layer1.0.bn1.running_mean"], before["layer1.0.bn1.running_mean"])
    assert not torch.equal(after["layer4.1.conv2.weight"], before["layer4.1.conv2.weight"])
    assert not torch.equal(after["fc.weight"], before["fc.weight"])
    # The result holds the model as training left it: last.pt's weights.
    kept = result.model.state_dict()
    assert kept.keys() == after.keys() and all(torch.equal(kept[k], after[k]) for k in kept)


def test_the_disk_cache_is_reused_and_rebuilt_when_the_freeze_point_or_weights_change(
    data, tmp_path, monkeypatch
):
    monkeypatch.setenv("ZOO_FEATURE_CACHE_MB", "0.001")  # too small for RAM: a disk store
    stores = zoo_home() / "features"
    earlier = set(stores.iterdir()) if stores.is_dir() else set()  # other tests' stores
    made, notes = finetune(data, tmp_path / "a", freeze_until="layer2", epochs=1)
    first = notes.about_caching()
    assert "(disk-fp16)" in first and not made.features_reused
    reused, notes = finetune(data, tmp_path / "b", freeze_until="layer2", epochs=1)
    again = notes.about_caching()
    assert again.startswith("caching features: reusing") and reused.features_reused
    folder = again.rsplit(" in ", 1)[1]
    assert folder in first
    moved = finetune(data, tmp_path / "c", freeze_until="layer3", epochs=1)[1].about_caching()
    assert "reusing" not in moved and folder not in moved
    other = finetune(data, tmp_path / "d", freeze_until="layer2", epochs=1, seed=1)[1]
    assert "reusing" not in other.about_caching() and folder not in other.about_caching()
    assert len(set(stores.iterdir()) - earlier) == 3


def zoo_home():
    from zoo.env import zoo_home

    return zoo_home()


@pytest.mark.parametrize("cache", [None, True])
def test_augmentation_turns_caching_off_with_a_message(data, tmp_path, cache):
    options = {"augment": True, "epochs": 1}
    if cache is not None:
        options["cache_features"] = cache
    _, notes = finetune(data, tmp_path / "run", freeze_until="layer3", **options)
    assert notes.about_caching() == (
        "not caching features: random augmentation changes every epoch's input; "
        "pass --no-augment to cache"
    )


def test_nothing_frozen_means_nothing_to_cache(data, tmp_path):
    _, notes = finetune(data, tmp_path / "run", epochs=1)
    assert notes.about_caching() == "not caching features: nothing is frozen (see --freeze-until)"
