"""The contract over every family the seeds name (and timm samples): create with a new head
and a middle freeze point, then train one step."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.errors import FreezePointError, HeadError
from zoo.freezing import is_held
from zoo.heads import head_features

# name, input size (smallest that every branch accepts), middle freeze point
FAMILIES = [
    ("alexnet", 64, "features.6"),
    ("vgg16", 32, "features.14"),
    ("squeezenet1_0", 64, "features.5"),
    ("densenet121", 32, "features.transition2"),
    ("inception_v3", 299, "Mixed_5d"),
    ("googlenet", 64, "inception4a"),
    ("shufflenet_v2_x1_0", 64, "stage3"),
    ("mobilenet_v2", 32, "features.7"),
    ("resnet34", 32, "layer2"),
    ("resnext50_32x4d", 32, "layer2"),
    ("wide_resnet50_2", 32, "layer2"),
    ("mnasnet1_0", 32, "layers.8"),
    ("timm:resnet34", 32, "layer2"),
    ("timm:convnext_tiny", 32, "stages.1"),
    ("timm:vit_tiny_patch16_224", 224, "blocks.5"),
    ("vit_b_16", 224, "encoder.layers.encoder_layer_5"),
]

# timm heads that are not one Linear: a pair of Linears (crossvit), BatchNorm + Linear
# (iformer), a distillation pair (levit), a Linear aux head (volo), none at all (eva02)
TIMM_HEADS = [
    ("timm:crossvit_tiny_240", ["head"]),
    ("timm:iformer_t", ["head"]),
    ("timm:levit_128s", ["head", "head_dist"]),
    ("timm:volo_d1_224", ["head", "aux_head"]),
    ("timm:eva02_tiny_patch14_224", ["head"]),
]


def outputs(result):
    """Every logits tensor of a train-mode forward (inception/googlenet add aux outputs)."""
    if isinstance(result, torch.Tensor):
        return [result]
    return [t for t in result if isinstance(t, torch.Tensor)]


def bn_stats(model):
    return {
        n: (m.running_mean.clone(), m.running_var.clone())
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
    }


def train_one_step(model, size, batch=2):
    torch.manual_seed(0)
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    logits = outputs(model(torch.randn(batch, 3, size, size)))
    loss = sum(
        torch.nn.functional.cross_entropy(x, torch.zeros(batch, dtype=torch.long)) for x in logits
    )
    loss.backward()
    optimizer.step()
    return logits


@pytest.mark.parametrize("name,size,point", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_family_adapts_head_freezes_and_trains(name, size, point):
    model = zoo.create(name, num_classes=9, weights=None, freeze_until=point)
    spec = model.zoo_spec
    assert point in spec.freeze_points and len(spec.freeze_points) >= 4
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen, "a middle freeze point freezes something"
    before = bn_stats(model)
    held = {n for n, m in model.named_modules() if is_held(m)}

    logits = train_one_step(model, size)

    assert all(x.shape == (2, 9) for x in logits)
    if name in ("inception_v3", "googlenet"):
        assert len(logits) >= 2, "auxiliary outputs in train mode"
    for n, p in model.named_parameters():
        if n in frozen:
            assert p.grad is None, n
    assert any(p.grad is not None for p in model.parameters() if p.requires_grad)
    after = bn_stats(model)
    for n in held:
        assert torch.equal(before[n][0], after[n][0]) and torch.equal(before[n][1], after[n][1])
    changed = [n for n in after if n not in held and not torch.equal(before[n][0], after[n][0])]
    if after.keys() - held:
        assert changed, "trainable BatchNorm layers do update, so the check above can fail"


def test_freeze_points_of_resnet34_are_its_stages():
    assert zoo.info("resnet34")["freeze_points"] == [
        "conv1",
        "bn1",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
    ]


def test_big_container_is_opened_into_stages():
    points = zoo.info("mobilenet_v2")["freeze_points"]
    assert points[:3] == ["features.0", "features.1", "features.2"] and len(points) == 19


def test_freeze_until_includes_the_point_and_nothing_after():
    model = zoo.create("resnet34", num_classes=3, weights=None, freeze_until="layer3")
    grads = {n.split(".")[0]: p.requires_grad for n, p in model.named_parameters()}
    assert not any(grads[k] for k in ("conv1", "bn1", "layer1", "layer2", "layer3"))
    assert grads["layer4"] and grads["fc"]


def test_backbone_freezes_all_but_the_heads():
    model = zoo.create("inception_v3", num_classes=4, weights=None, freeze_until="backbone")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("fc.", "AuxLogits.")) for n in trainable)


def test_train_bn_lets_frozen_batchnorm_update():
    model = zoo.create(
        "resnet34", num_classes=3, weights=None, freeze_until="layer2", train_bn=True
    )
    before = bn_stats(model)["layer1.0.bn1"][0]
    train_one_step(model, 32)
    assert not torch.equal(before, bn_stats(model)["layer1.0.bn1"][0])


def test_frozen_batchnorm_stays_in_eval_after_train():
    model = zoo.create("resnet34", num_classes=3, weights=None, freeze_until="layer1")
    model.train()
    model(torch.randn(2, 3, 32, 32))
    assert not model.layer1[0].bn1.training and model.layer2[0].bn1.training


def test_unknown_freeze_point_lists_the_valid_ones():
    with pytest.raises(FreezePointError, match="layer3.*backbone"):
        zoo.create("resnet34", weights=None, freeze_until="layer9")


def test_num_classes_none_keeps_the_original_head():
    model = zoo.create("resnet18", weights=None)
    assert model.fc.out_features == 1000 and model.zoo_spec.num_classes == 1000


def test_tiny_plugin_backbone_gets_detected_head_and_points(tiny):
    model = zoo.create(tiny, num_classes=3, weights=None, freeze_until="3")
    assert model.zoo_spec.heads == ["8"] and model.zoo_spec.freeze_points == ["0", "1", "3", "4"]
    logits = train_one_step(model, 32)
    assert logits[0].shape == (2, 3)
    assert model[0].weight.grad is None and model[8].weight.grad is not None


@pytest.mark.parametrize("name,heads", TIMM_HEADS, ids=[t[0] for t in TIMM_HEADS])
def test_timm_head_of_any_shape_is_adapted(name, heads):
    head = zoo.info(name)["head"]
    assert head["module"] == heads[0] and head["in_features"] > 0
    model = zoo.create(name, num_classes=3, weights=None, freeze_until="backbone")
    assert model.zoo_spec.heads == heads and model.zoo_spec.num_classes == 3

    logits = train_one_step(model, model.zoo_spec.preprocessing.input_size[-1])

    assert logits and all(x.shape == (2, 3) for x in logits)
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(heads), "the heads, and only they, train"


def test_headless_timm_model_is_described_and_given_a_head():
    assert zoo.info("timm:eva02_tiny_patch14_224")["head"] == {
        "module": "head",
        "in_features": 192,
        "out_features": 0,
    }
    model = zoo.create("timm:eva02_tiny_patch14_224", num_classes=3, weights=None)
    assert isinstance(model.head, torch.nn.Linear) and model.head.out_features == 3
    assert model.eval()(torch.randn(1, 3, 224, 224)).shape == (1, 3)


def test_head_of_unknown_shape_is_a_head_error_not_a_crash():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Identity())
    with pytest.raises(HeadError, match="cannot tell the size of head '1' of type Identity"):
        head_features(model, "1")
