"""The contract over every family the seeds name (and timm samples): create with a new head
and a middle freeze point, then train one step."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.errors import FreezePointError, HeadError, WeightsError
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


# --- a plugin's code fields: adapt_head and load_filter -------------------------------------


class NormLinear(torch.nn.Module):
    """A classifier that is not one layer: zoo cannot replace it on its own."""

    def __init__(self, width: int, num_classes: int) -> None:
        super().__init__()
        self.norm = torch.nn.BatchNorm1d(width)
        self.linear = torch.nn.Linear(width, num_classes)

    def forward(self, x):
        return self.linear(self.norm(x))


class NamedHeadNet(torch.nn.Module):
    """A model that names its own classifier (get_classifier / reset_classifier)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
        )
        self.num_features = 8
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = NormLinear(self.num_features, num_classes)

    def get_classifier(self):
        return self.head

    def forward(self, x):
        return self.head(self.body(x))


class CodeFieldsPlugin:
    def __init__(self, fields: dict) -> None:
        self.fields = fields

    @zoo.hookimpl
    def register_backbones(self, register):
        register("named", NamedHeadNet, input_size=(3, 16, 16), **self.fields)


@pytest.fixture
def code_plugin():
    """Call with register fields: registers 'codeplug:named' for one test."""
    from zoo import plugins

    def register(**fields) -> str:
        if plugins.pm.get_plugin("codeplug") is not None:
            plugins.unregister("codeplug")
        plugins.register(CodeFieldsPlugin(fields), "codeplug")
        return "codeplug:named"

    yield register
    if plugins.pm.get_plugin("codeplug") is not None:
        plugins.unregister("codeplug")


def test_a_plugins_adapt_head_resets_a_head_zoo_cannot(code_plugin):
    calls = []

    def adapt_head(model, num_classes):
        calls.append(num_classes)
        model.reset_classifier(num_classes)

    model = zoo.create(code_plugin(adapt_head=adapt_head), num_classes=3, weights=None)
    assert calls == [3] and model.zoo_spec.heads == ["head"] and model.zoo_spec.num_classes == 3
    assert model.head.linear.out_features == 3 and torch.count_nonzero(model.head.linear.bias) == 0
    assert model.eval()(torch.randn(2, 3, 16, 16)).shape == (2, 3)


def test_without_adapt_head_the_models_own_reset_classifier_is_used(code_plugin, monkeypatch):
    model = zoo.create(code_plugin(), num_classes=3, weights=None)
    assert model.head.linear.out_features == 3 and torch.count_nonzero(model.head.linear.bias) == 0

    def refuse(num_classes):
        raise AssertionError("only 1000 classes")

    monkeypatch.setattr(NamedHeadNet, "reset_classifier", lambda self, n: refuse(n))
    monkeypatch.setattr(NamedHeadNet, "__init__", _init_with_a_head)
    with pytest.raises(HeadError, match=r"reset_classifier\(3\) failed \(only 1000 classes\)"):
        zoo.create(code_plugin(), num_classes=3, weights=None)


def _init_with_a_head(self, num_classes: int = 10) -> None:
    torch.nn.Module.__init__(self)
    self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1))
    self.num_features, self.num_classes = 8, num_classes
    self.head = NormLinear(self.num_features, num_classes)


def test_a_model_pickles_whatever_its_plugins_factory(code_plugin):
    import pickle

    spec_id = code_plugin(adapt_head=lambda model, n: model.reset_classifier(n))
    model = zoo.create(spec_id, num_classes=3, weights=None)
    copy = pickle.loads(pickle.dumps(model))
    assert copy.zoo_spec.id == spec_id and copy.zoo_spec.heads == ["head"]
    assert copy.zoo_spec.backbone is None and model.zoo_spec.backbone is not None


def test_a_plugins_load_filter_converts_weights_that_do_not_load_as_they_are(code_plugin, tmp_path):
    state = {k: v + 1 for k, v in NamedHeadNet().state_dict().items()}
    path = tmp_path / "original.pth"
    torch.save({f"original.{k}": v for k, v in state.items()}, path)  # another key layout

    def load_filter(state, model):
        assert isinstance(model, NamedHeadNet)
        return {k.removeprefix("original."): v for k, v in state.items()}

    model = zoo.create(code_plugin(weights={"orig": str(path)}, load_filter=load_filter))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())

    def broken(state, model):
        raise KeyError("not this family's layout")

    with pytest.raises(WeightsError, match="does not match NamedHeadNet"):
        zoo.create(code_plugin(weights={"orig": str(path)}, load_filter=broken))
