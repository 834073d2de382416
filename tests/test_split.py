"""Splitting a frozen prefix off real models (random weights): the prefix then the suffix
give what the model gives, in eval and in train mode; gradients reach exactly the trainable
parameters; and the models that cannot be cached say why."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.errors import NotSplittable
from zoo.training.cache import split_frozen_prefix

# (backbone, freeze point, image size, boundary shapes): small images, batches of two.
CASES = [
    ("resnet18", "layer3", 64, [(256, 4, 4)]),
    ("resnet34", "layer3", 64, [(256, 4, 4)]),
    ("mobilenet_v2", "features.7", 64, [(64, 4, 4)]),
    ("timm:vit_tiny_patch16_224", "blocks.3", 224, [(197, 192)]),
    ("densenet121", "features.transition2", 32, [(256, 2, 2)]),
    ("inception_v3", "Mixed_5d", 299, [(288, 35, 35)]),  # aux outputs in train mode
    ("googlenet", "inception4a", 64, [(512, 4, 4)]),  # the first aux head reads the cut
    # train mode adds the aux heads' nodes, so the two traces name the same nodes apart
    ("googlenet", "backbone", 64, [(512, 4, 4), (528, 4, 4), (1024,)]),
    ("tinyplug:plainnet", "block1", 32, [(16, 16, 16)]),
]
IDS = [f"{name}@{point}" for name, point, *_ in CASES]


@pytest.fixture(scope="module")
def built():
    """Each case's model, split, example batch and its features, built once for the module
    (the prefix is frozen, so its features stay right whatever the tests train)."""
    cache: dict = {}
    yield cache
    cache.clear()


@pytest.fixture(params=CASES, ids=IDS)
def case(request, built):
    name, point, size, shapes = request.param
    if (name, point) not in built:
        if name.startswith("tinyplug:"):
            request.getfixturevalue("with_site")  # the example plugin, installed for real
        torch.manual_seed(0)
        model = zoo.create(name, num_classes=5, weights=None, freeze_until=point)
        images = torch.randn(2, 3, size, size)
        split = split_frozen_prefix(model, example=images)
        built[name, point] = model, split, images, split.features(images)
    return (*built[name, point], shapes)


def outputs(result) -> list[torch.Tensor]:
    """The tensors of a model's result: logits, or (logits, aux logits...) in train mode."""
    return [result] if torch.is_tensor(result) else [t for t in result if t is not None]


def assert_same(got, want) -> None:
    assert type(got) is type(want)
    for a, b in zip(outputs(got), outputs(want), strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), (a - b).abs().max()


def test_the_boundary_has_the_expected_shapes(case):
    model, split, images, features, shapes = case
    assert split.boundary_shapes == shapes
    assert [tuple(f.shape) for f in features] == [(2, *s) for s in shapes]
    assert not any(f.requires_grad for f in features)


def test_suffix_of_prefix_is_the_model_in_eval_mode(case):
    model, split, images, features, _ = case
    with torch.no_grad():
        want = model.eval()(images)
        got = split.suffix(train=False)(*features)
    assert_same(got, want)


def test_suffix_of_prefix_is_the_model_in_train_mode_and_trains_exactly_what_trains(case):
    model, split, images, features, _ = case
    torch.manual_seed(1)  # the same dropout masks in the head for both
    with torch.no_grad():
        want = model.train()(images)
    torch.manual_seed(1)
    model.zero_grad(set_to_none=True)
    got = split.suffix(train=True)(*features)
    assert_same(got, want)
    if model.zoo_spec.heads[1:]:  # inception and googlenet: the aux heads ran too
        assert len(outputs(got)) == len(model.zoo_spec.heads)
    sum(o.square().mean() for o in outputs(got)).backward()
    reached = {n for n, p in model.named_parameters() if p.grad is not None}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert reached == trainable and reached


def test_the_prefix_holds_only_frozen_parameters_of_the_model_itself(case):
    model, split, *_ = case
    own = {id(p) for p in model.parameters()}
    prefix = list(split.prefix.parameters())
    assert prefix and not any(p.requires_grad for p in prefix)
    for graph in (split.prefix, split.suffix_train, split.suffix_eval):
        assert {id(p) for p in graph.parameters()} <= own  # shared, never copied


@pytest.mark.parametrize("case", [CASES[0]], ids=IDS[:1], indirect=True)
def test_training_the_suffix_trains_the_model(case):
    model, split, images, features, _ = case
    targets = torch.tensor([0, 1])
    with torch.no_grad():
        before = model.eval()(images)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = nn.functional.cross_entropy(split.suffix(train=True)(*features), targets)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        after = model.eval()(images)
        assert not torch.allclose(after, before)
        assert torch.allclose(split.suffix(train=False)(*features), after, atol=1e-5)


# ---------------------------------------------------------------- what does not split


def small_net(dropout: float = 0.0) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )


def frozen_small_net(until: str, dropout: float = 0.0) -> nn.Sequential:
    model = small_net(dropout)
    zoo.freeze(model, until, points=[str(i) for i in range(9)], heads=["9"])
    return model


IMAGES = torch.randn(2, 3, 16, 16)


def test_nothing_frozen_gives_no_split():
    with pytest.raises(NotSplittable, match="nothing is frozen"):
        split_frozen_prefix(small_net(), example=IMAGES)


def test_an_unfrozen_first_layer_gives_no_split():
    model = zoo.create("resnet18", num_classes=5, weights=None, freeze_until="layer3")
    model.conv1.weight.requires_grad_(True)
    with pytest.raises(NotSplittable, match=r"first layer to see the image trains \('conv1'\)"):
        split_frozen_prefix(model, example=torch.randn(2, 3, 32, 32))


def test_a_dropout_in_the_frozen_part_gives_no_split_and_says_why():
    model = frozen_small_net("5", dropout=0.5)
    with pytest.raises(NotSplittable, match=r"'3' \(Dropout\) in the frozen part is random"):
        split_frozen_prefix(model, example=IMAGES)


def test_a_dropout_with_p_0_in_the_frozen_part_splits():
    split = split_frozen_prefix(frozen_small_net("5", dropout=0.0), example=IMAGES)
    assert split.boundary_shapes == [(8,)]  # the parameter-free pooling is cached too


def test_a_dropout_right_at_the_cut_moves_to_the_suffix():
    model = frozen_small_net("2", dropout=0.5)
    split = split_frozen_prefix(model, example=IMAGES)
    assert split.boundary_shapes == [(8, 16, 16)]
    assert any(isinstance(m, nn.Dropout) for m in split.suffix_train.modules())
    features = split.features(IMAGES)
    torch.manual_seed(2)
    want = model.train()(IMAGES)
    torch.manual_seed(2)
    assert torch.allclose(split.suffix(train=True)(*features), want, atol=1e-6)


def test_a_dropout_before_a_flatten_at_the_cut_moves_to_the_suffix_with_it():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.AdaptiveAvgPool2d(1),
        nn.Dropout(0.5),
        nn.Flatten(),
        nn.Linear(8, 4),
    )
    zoo.freeze(model, "1", points=["0", "1"], heads=["5"])
    split = split_frozen_prefix(model, example=IMAGES)
    assert split.boundary_shapes == [(8, 1, 1)]  # the pooling's output, before the dropout
    assert any(isinstance(m, nn.Dropout) for m in split.suffix_train.modules())


@pytest.mark.parametrize(
    ("name", "point", "build_kwargs", "culprit"),
    [
        ("efficientnet_b0", "features.5", None, r"'features\.\S+' \(StochasticDepth\)"),
        ("timm:resnet18", "layer3", {"drop_path_rate": 0.1}, r"'layer\S+' \(DropPath\)"),
    ],
    ids=["torchvision-StochasticDepth", "timm-DropPath"],
)
def test_stochastic_depth_in_the_frozen_part_gives_no_split(name, point, build_kwargs, culprit):
    model = zoo.create(
        name, num_classes=5, weights=None, freeze_until=point, build_kwargs=build_kwargs
    )
    with pytest.raises(NotSplittable, match=culprit + " in the frozen part is random"):
        split_frozen_prefix(model, example=torch.randn(2, 3, 32, 32))


def test_batchnorm_frozen_by_hand_but_not_held_gives_no_split():
    model = small_net()
    for layer in list(model)[:6]:
        layer.requires_grad_(False)  # frozen without zoo.freeze: BatchNorm still trains
    with pytest.raises(NotSplittable, match=r"'1' \(BatchNorm2d\).*batch statistics"):
        split_frozen_prefix(model, example=IMAGES)


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem, self.head = nn.Conv2d(3, 4, 1), nn.Linear(4, 2)

    def forward(self, x):
        x = self.stem(x)
        if x.mean() > 0:  # control flow on values: torch.fx cannot trace it
            x = x * 2
        return self.head(x.mean((2, 3)))


def test_a_model_fx_cannot_trace_gives_no_split():
    model = DataDependent()
    model.stem.requires_grad_(False)
    with pytest.raises(NotSplittable, match="DataDependent cannot be traced by torch.fx"):
        split_frozen_prefix(model, example=IMAGES)


class BatchCentred(nn.Module):
    """Subtracts the batch's mean image: each image's output depends on the others."""

    def forward(self, x):
        return x - x.mean(0, keepdim=True)


def test_a_frozen_part_that_mixes_the_images_of_a_batch_gives_no_split():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), BatchCentred(), nn.Flatten(), nn.LazyLinear(2))
    model(IMAGES)
    zoo.freeze(model, "1", points=["0", "1"], heads=["3"])
    with pytest.raises(NotSplittable, match="mixes the images of a batch"):
        split_frozen_prefix(model, example=IMAGES)


def test_a_channels_last_model_splits_though_its_kernels_round_differently_per_batch():
    # BatchNorm statistics measured on low-contrast images make layer3's outputs for the
    # example's noise hundreds large; a batch of one and a batch of two, in channels_last,
    # then differ by ~1e-3 in absolute terms: a millionth of the values, not a mixing prefix.
    torch.manual_seed(0)
    calibrated = zoo.create("resnet34", num_classes=5, weights=None)
    for m in calibrated.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # a cumulative average
    with torch.no_grad():
        calibrated.train()(0.1 * torch.rand(16, 3, 112, 112))  # low-contrast images
    model = zoo.create("resnet34", num_classes=5, weights=None, freeze_until="layer3")
    model.load_state_dict(calibrated.state_dict())
    model = model.to(memory_format=torch.channels_last)
    split = split_frozen_prefix(model, example=torch.randn(2, 3, 112, 112))
    assert split.boundary_shapes == [(256, 7, 7)]


def test_the_model_keeps_its_modes():
    model = frozen_small_net("5")
    model.train()
    model[1].eval()  # any mix of modes
    modes = [m.training for m in model.modules()]
    split_frozen_prefix(model, example=IMAGES)
    assert [m.training for m in model.modules()] == modes


def test_importing_split_and_features_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, zoo.training.cache; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


class CheckedStem(nn.Module):
    """A frozen stem that checks its input: control flow fx cannot trace through, though it
    can call the module whole."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        if x.dim() != 4:
            raise ValueError("a batch of images only")
        return self.conv(x)


class LeafPlugin:
    def __init__(self, fields: dict) -> None:
        self.fields = fields

    @staticmethod
    def checked():
        return nn.Sequential(
            CheckedStem(), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
        )

    @zoo.hookimpl
    def register_backbones(self, register):
        register("checked", self.checked, **self.fields)


@pytest.mark.parametrize(
    "fields",
    [{}, {"fx_leaves": (CheckedStem,)}, {"fx_leaves": lambda: [CheckedStem]}],
    ids=["none", "tuple", "callable"],
)
def test_a_plugins_fx_leaves_are_kept_whole(fields):
    from zoo import plugins

    plugins.register(LeafPlugin(fields), "leafy")
    try:
        model = zoo.create("leafy:checked", weights=None, freeze_until="0")
        if not fields:
            with pytest.raises(NotSplittable, match="cannot be traced by torch.fx"):
                split_frozen_prefix(model, example=IMAGES)
            return
        split = split_frozen_prefix(model, example=IMAGES)
        assert split.boundary_shapes == [(4,)]  # the pooled features of the frozen stem
        with torch.no_grad():
            assert_same(split.suffix(train=False)(*split.features(IMAGES)), model.eval()(IMAGES))
    finally:
        plugins.unregister("leafy")


def test_a_plugins_fx_leaves_that_fail_mean_no_cache_not_a_crash():
    from zoo import plugins

    def broken():
        raise ImportError("no such module")

    plugins.register(LeafPlugin({"fx_leaves": broken}), "leafy")
    try:
        model = zoo.create("leafy:checked", weights=None, freeze_until="0")
        with pytest.raises(NotSplittable, match="ImportError: no such module"):
            split_frozen_prefix(model, example=IMAGES)
    finally:
        plugins.unregister("leafy")
