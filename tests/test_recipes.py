"""Recipes beyond the seeds' (zoo.training._recipe, _stages, zoo.data's policies and balanced
sampler): each option does what it says, an imbalanced folder gets its minority back, and a
run with all of them on resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TinyPlugin
from images import make_image_folder, write_image
from PIL import Image

import zoo
from zoo.data import BalancedSampler, Preprocessing, build_transform
from zoo.training import Reporter, TrainConfig
from zoo.training._recipe import build_loss, build_mixer, class_weights, mix_batches
from zoo.training._setup import start_run
from zoo.training._stages import parameter_groups
from zoo.training._trainer import fit, run_epoch
from zoo.training._writer import Writer
from zoo.training.cache._source import BatchSource, FeatureSource

FAST = {"weights": "none", "batch_size": 8, "workers": 0, "device": "cpu", "precision": "fp32"}


@pytest.fixture(scope="module")
def tiny_id():
    from zoo import plugins

    plugins.register(TinyPlugin(), "tiny")
    yield "tiny:tinynet"
    plugins.unregister("tiny")


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    root = tmp_path_factory.mktemp("colours")
    return make_image_folder(root, ["red", "green", "blue"], per_class=(8, 4), layout="train-valid")


def quiet_session(name, data, out, **options):
    """A started run whose epochs write no files (curves take most of a tiny run's time)."""
    config = TrainConfig(name=name, data=str(data), output=str(out), **{**FAST, **options})
    session = start_run(config.check(), Reporter())
    session.writer = Writer()
    return session


@pytest.mark.parametrize("policy", ["trivial", "rand", "auto", "augmix"])
def test_an_augment_policy_changes_the_pixels_repeatably_for_a_seed(policy):
    pre = Preprocessing(input_size=(3, 32, 32))
    image = Image.fromarray(
        torch.randint(0, 256, (48, 48, 3), generator=torch.Generator().manual_seed(0))
        .to(torch.uint8)
        .numpy()
    )

    def draw(policy_name, seed):
        torch.manual_seed(seed)
        return build_transform(pre, train=True, policy=policy_name)(image)

    with_policy = [draw(policy, seed) for seed in range(4)]
    assert all(torch.equal(draw(policy, s), x) for s, x in enumerate(with_policy))
    plain = [draw("none", seed) for seed in range(4)]
    assert any(not torch.equal(a, b) for a, b in zip(with_policy, plain, strict=True))


def test_mixup_and_cutmix_give_soft_targets_repeatably():
    images = torch.randn(6, 3, 16, 16)
    targets = torch.tensor([0, 1, 2, 0, 1, 2])
    config = TrainConfig(mixup=0.4, cutmix=1.0)
    mixer = build_mixer(config, 3)

    def mixed(epoch):
        return list(mix_batches([(images, targets)] * 3, mixer, seed=0, epoch=epoch))

    first = mixed(1)
    for (x, y), (x2, y2) in zip(first, mixed(1), strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)
    for _, soft in first:
        assert soft.shape == (6, 3) and torch.allclose(soft.sum(1), torch.ones(6))
    assert any(((soft > 0) & (soft < 1)).any() for _, soft in first)  # not one-hot
    assert any(not torch.equal(a[1], b[1]) for a, b in zip(first, mixed(2), strict=True))
    assert build_mixer(TrainConfig(), 3) is None


def test_class_weights_are_inverse_frequency_and_reach_the_loss(tiny_id, tmp_path):
    labels = [0] * 30 + [1] * 10
    assert class_weights(labels, 3).tolist() == pytest.approx([40 / 60, 40 / 20, 0.0])
    loss = build_loss(TrainConfig(class_weights="auto", label_smoothing=0.1), labels, 2)
    assert loss.weight.tolist() == pytest.approx([40 / 60, 40 / 20])
    assert loss.label_smoothing == 0.1
    folder = tmp_path / "data"
    for name, n in (("big", 6), ("small", 2)):
        for i in range(n):
            write_image(folder / "train" / name / f"{i}.png", size=(32, 32), seed=i)
            write_image(folder / "valid" / name / f"{i}.png", size=(32, 32), seed=50 + i)
    session = quiet_session(tiny_id, folder, tmp_path / "run", epochs=1, class_weights="auto")
    assert session.loss_fn.weight.tolist() == pytest.approx([8 / 12, 8 / 4])
    assert session.per_class  # 3:1: the epoch row has each class's accuracy
    assert set(run_epoch(session, 1)["val_class_acc"]) == {"big", "small"}


def test_balanced_draws_every_class_within_one_of_the_same_count():
    labels = [0] * 20 + [1] * 5 + [2] * 2
    sampler = BalancedSampler(labels, seed=3)
    for epoch in (1, 2):
        sampler.set_epoch(epoch)
        drawn = sampler.indices()
        counts = [sum(labels[i] == c for i in drawn) for c in range(3)]
        assert len(drawn) == len(labels) and max(counts) - min(counts) <= 1
    again = BalancedSampler(labels, seed=3)
    again.set_epoch(2)
    assert again.indices() == drawn  # seeded by the epoch
    ranks = [BalancedSampler(labels, seed=3, rank=r, world=2) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(2)
    shares = ranks[0].indices() + ranks[1].indices()
    assert sorted(shares) == sorted(drawn + drawn[:1])  # disjoint shares, one padded draw


def test_layer_decay_gives_each_stage_its_rate(tiny_id):
    model = zoo.create(tiny_id, num_classes=3, weights=None)
    groups = parameter_groups(model, TrainConfig(lr=0.1, layer_decay=0.5))
    rates = {g["stage"]: g["lr"] for g in groups}
    # The head at --lr; stages 4, 3, 1, 0 below it, each half the one above.
    assert rates == pytest.approx({"head": 0.1, "4": 0.05, "3": 0.025, "1": 0.0125, "0": 0.00625})
    head = dict(model.named_parameters())["8.weight"]
    assert any(p is head for g in groups if g["stage"] == "head" for p in g["params"])
    optimizer = zoo.training.build_optimizer(groups, TrainConfig(lr=0.1, optimizer="adamw"))
    assert sorted(g["lr"] for g in optimizer.param_groups) == sorted(rates.values())


def test_unfreeze_after_caches_the_frozen_epochs_then_trains_everything(tiny_id, colours, tmp_path):
    s = quiet_session(
        tiny_id, colours, tmp_path / "run", epochs=3, freeze_until="1", unfreeze_after=2,
        augment=False, layer_decay=0.5,
    )  # fmt: skip
    assert isinstance(s.source, FeatureSource)
    first_conv, first_bn = s.model[0], s.model[1]
    calls = []
    first_conv.register_forward_hook(lambda *a: calls.append(1))
    run_epoch(s, 1)  # computes the frozen part's outputs once
    assert calls and not first_conv.weight.requires_grad
    before = first_conv.weight.detach().clone()
    calls.clear()
    run_epoch(s, 2)
    assert not calls  # a cached epoch skips the frozen part
    assert first_bn.running_mean is not None and not first_bn.training
    run_epoch(s, 3)
    assert calls and isinstance(s.source, BatchSource) and not isinstance(s.source, FeatureSource)
    assert all(p.requires_grad for p in s.model.parameters())
    assert not torch.equal(before, first_conv.weight)  # the optimizer had it, at its rate
    s.model.train()
    assert first_bn.training  # BatchNorm in the unfrozen part trains again


def test_ema_weights_are_the_ones_validated_and_saved(tiny_id, colours, tmp_path):
    from zoo.runs import evaluate

    out = tmp_path / "run"
    result = zoo.finetune(
        tiny_id, str(colours), output=str(out), epochs=2, ema=0.9, optimizer="adamw", lr=0.01,
        **FAST,
    )  # fmt: skip
    last = torch.load(out / "last.pt", weights_only=True)
    best = torch.load(out / "best.pt", weights_only=True)
    averaged, trained = last["model"], last["trained_model"]
    assert last["average_steps"] > 0
    assert any(not torch.equal(averaged[k], trained[k]) for k in averaged)
    if result.summary["best_epoch"] == 2:
        weights = best["state_dict"]
        assert all(torch.equal(weights[k], averaged[k]) for k in averaged)
    report = evaluate(out, colours / "valid", workers=0)
    assert report["accuracy"] == pytest.approx(result.summary["best_val_acc"], abs=1e-9)


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory):
    """Two close hues, 10:1 in train, even in valid."""
    root = tmp_path_factory.mktemp("imbalanced")
    for part, counts in (("train", (40, 4)), ("valid", (10, 10))):
        for label, (name, n) in enumerate(zip(("major", "minor"), counts, strict=True)):
            for i in range(n):
                seed = label * 1000 + i + (500 if part == "valid" else 0)
                path = root / part / name / f"{i}.png"
                write_image(path, size=(32, 32), seed=seed, hue=(0.0, 0.08)[label])
    return root


def test_class_weights_and_balanced_raise_the_minority_recall(tiny_id, imbalanced, tmp_path):
    def minority_recall(**options):
        recalls = []
        for seed in (1, 2):
            out = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
            s = quiet_session(
                tiny_id, imbalanced, out, epochs=3, batch_size=16, optimizer="adam", lr=0.01,
                augment=False, seed=seed, **options,
            )  # fmt: skip
            recalls.append(fit(s).metrics[-1]["val_class_acc"]["minor"])
        return sum(recalls) / len(recalls)

    plain = minority_recall()
    assert minority_recall(class_weights="auto") > plain
    assert minority_recall(balanced=True) > plain


def test_a_run_stopped_after_its_unfreeze_epoch_resumes_exactly(tiny_id, colours, tmp_path):
    options = {
        **FAST, "optimizer": "adamw", "lr": 0.01, "freeze_until": "1", "unfreeze_after": 1,
        "ema": 0.9, "warmup_epochs": 1.5, "layer_decay": 0.5, "balanced": True, "mixup": 0.2,
        "augment_policy": "trivial", "label_smoothing": 0.1,
    }  # fmt: skip
    whole = zoo.finetune(tiny_id, str(colours), output=str(tmp_path / "a"), epochs=3, **options)
    zoo.finetune(tiny_id, str(colours), output=str(tmp_path / "b"), epochs=2, **options)
    resumed = zoo.finetune(resume=str(tmp_path / "b"), epochs=3)
    assert len(resumed.metrics) == 3
    for a, b in zip(whole.metrics, resumed.metrics, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert b[key] == pytest.approx(a[key], abs=1e-6), key
    options = json.loads(Path(tmp_path / "b" / "config.json").read_text())["options"]
    assert options["unfreeze_after"] == 1 and options["ema"] == 0.9
    assert options["augment_policy"] == "trivial" and options["balanced"] is True
