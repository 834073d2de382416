"""The partial loader: what fits is loaded, the rest is reported, failures touch nothing."""

from __future__ import annotations

import json

import pytest
import timm
import torch
import torchvision

from zoo.errors import TransferError
from zoo.files import save_safetensors, save_torch
from zoo.transfer import FLAGS, TransferReport, read_key_map, transfer


def _resnet34(num_classes: int = 1000, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = torchvision.models.resnet34(weights=None)
    if num_classes != 1000:
        model.fc = torch.nn.Linear(512, num_classes)
    return model


@pytest.fixture(scope="module")
def imagenet_state() -> dict[str, torch.Tensor]:
    """A 1000-class resnet34's weights, with batch-norm statistics that are not the defaults."""
    state = _resnet34(seed=1).state_dict()
    for key, tensor in state.items():
        if "running" in key:
            tensor.uniform_(0.5, 1.5)
    return state


@pytest.fixture(scope="module")
def ddp_checkpoint(tmp_path_factory, imagenet_state):
    path = tmp_path_factory.mktemp("ckpt") / "resnet34-imagenet.pth"
    save_torch({"state_dict": {"module." + k: v for k, v in imagenet_state.items()}}, path)
    return path


def _copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resnet34_into_9_classes_loads_all_but_the_head(ddp_checkpoint, imagenet_state):
    model = _resnet34(num_classes=9)
    report = transfer(model, ddp_checkpoint)

    assert set(report.loaded) == set(imagenet_state) - {"fc.weight", "fc.bias"}
    assert report.missing == [] and report.unexpected == [] and report.renamed == {}
    assert report.shape_mismatched == {
        "fc.weight": {"source": [1000, 512], "model": [9, 512]},
        "fc.bias": {"source": [1000], "model": [9]},
    }
    assert report.coverage > 0.95
    after = model.state_dict()
    for key in report.loaded:
        assert torch.equal(after[key], imagenet_state[key]), key


def test_report_reads_as_dict_json_and_summary(ddp_checkpoint):
    report = transfer(_resnet34(num_classes=9), ddp_checkpoint)
    assert isinstance(report, TransferReport)
    assert report["coverage"] == report.coverage
    with pytest.raises(KeyError):
        report["nope"]
    as_json = json.loads(json.dumps(report.to_dict()))
    fields = {"loaded", "missing", "unexpected", "shape_mismatched", "renamed", "coverage"}
    assert set(as_json) == fields
    assert as_json["shape_mismatched"]["fc.bias"] == {"source": [1000], "model": [9]}
    summary = report.summary()
    n = len(report.loaded)
    assert summary.startswith(f"loaded {n}/{n + 2} tensors, coverage 99.9 %")
    assert "fc.weight (1000, 512) -> (9, 512)" in summary and "fc.bias (1000,) -> (9,)" in summary


def test_prefix_selects_a_subtree_of_a_safetensors_file(tmp_path, imagenet_state):
    path = tmp_path / "detector.safetensors"
    state = {"backbone." + k: v for k, v in imagenet_state.items()}
    state["neck.proj.weight"] = torch.zeros(3, 3)
    save_safetensors(state, path)
    model = _resnet34()
    report = transfer(model, path, prefix="backbone.")
    assert sorted(report.loaded) == sorted(imagenet_state)
    assert report.unexpected == [] and report.coverage == 1.0
    loaded_var = model.state_dict()["layer4.2.bn2.running_var"]
    assert torch.equal(loaded_var, state["backbone.layer4.2.bn2.running_var"])


def test_a_prefix_no_key_has_fails_with_example_keys(imagenet_state):
    with pytest.raises(TransferError, match=r"prefix 'encoder\.'.*conv1\.weight"):
        transfer(_resnet34(), imagenet_state, prefix="encoder.")


def test_a_prefix_without_its_dot_means_that_subtree_only():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False))
    source = {"backbone.0.weight": torch.ones(2, 2), "backbone_ema.0.weight": torch.zeros(2, 2)}
    report = transfer(model, source, prefix="backbone")
    assert report.loaded == ["0.weight"] and report.unexpected == []
    assert torch.equal(model[0].weight, torch.ones(2, 2))


def test_min_coverage_must_be_a_fraction():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(TransferError, match="fraction from 0 to 1, not 90"):
        transfer(model, model.state_dict(), min_coverage=90)


def test_key_map_renames_keys_and_records_it(imagenet_state):
    # An old layout that named the stages "stage1".. and the head "classifier".
    old = {}
    for key, tensor in imagenet_state.items():
        old[key.replace("layer", "stage").replace("fc.", "classifier.")] = tensor
    model = _resnet34()
    key_map = [(r"^stage(\d)\.", r"layer\1."), (r"^classifier\.", "fc.")]
    report = transfer(model, old, key_map=key_map)
    assert report.coverage == 1.0 and report.unexpected == []
    assert report.renamed["stage3.5.conv2.weight"] == "layer3.5.conv2.weight"
    assert report.renamed["classifier.bias"] == "fc.bias"
    assert "conv1.weight" not in report.renamed
    assert torch.equal(model.fc.weight, imagenet_state["fc.weight"])


def test_key_map_may_be_a_file_of_rules(imagenet_state, tmp_path):
    old = {key.replace("layer", "stage"): tensor for key, tensor in imagenet_state.items()}
    rules = tmp_path / "stages.map"
    rules.write_text("# stage N was layer N\n^stage(\\d)\\.=layer\\1.\n")
    assert read_key_map(rules) == [(r"^stage(\d)\.", r"layer\1.")]
    report = transfer(_resnet34(), old, key_map=rules)
    assert report.coverage == 1.0
    assert report.renamed["stage2.0.conv1.weight"] == "layer2.0.conv1.weight"


def test_strict_fails_listing_what_did_not_fit_and_changes_nothing(ddp_checkpoint):
    model = _resnet34(num_classes=9)
    before = _copy(model)
    with pytest.raises(TransferError, match=r"strict.*2 shape mismatched \(fc\.weight, fc\.bias"):
        transfer(model, ddp_checkpoint, strict=True)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_strict_passes_when_everything_fits(ddp_checkpoint):
    report = transfer(_resnet34(), ddp_checkpoint, strict=True)
    assert report.coverage == 1.0


def test_min_coverage_fails_clearly_and_leaves_the_model_unchanged(imagenet_state):
    only_stem = {k: v for k, v in imagenet_state.items() if k.startswith(("conv1.", "bn1."))}
    model = _resnet34()
    before = _copy(model)
    with pytest.raises(TransferError) as excinfo:
        transfer(model, only_stem, min_coverage=0.9)
    message = str(excinfo.value)
    assert "coverage <0.1 % is below min_coverage 90.0 %" in message
    assert "conv1.weight" in message and "layer1.0.conv1.weight" in message
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_messages_name_the_command_line_flags_when_asked():
    model = torch.nn.Linear(2, 2)
    source = {"weight": torch.ones(3, 2), "bias": torch.ones(2)}
    with pytest.raises(TransferError, match="with --prefix or --map, or drop --strict"):
        transfer(model, source, strict=True, option_names=FLAGS)
    with pytest.raises(TransferError, match=r"is below --min-coverage 90\.0 %.*--prefix or --map"):
        transfer(model, source, min_coverage=0.9, option_names=FLAGS)
    with pytest.raises(TransferError, match="--map maps both"):
        transfer(model, source, key_map=[(".*", "x")], option_names=FLAGS)
    with pytest.raises(TransferError, match="with prefix or key_map, or drop strict"):
        transfer(model, source, strict=True)


def test_coverage_counts_parameters_not_buffers(imagenet_state):
    buffers_only = {k: v for k, v in imagenet_state.items() if "running" in k or "batches" in k}
    report = transfer(_resnet34(), buffers_only)
    assert len(report.loaded) == len(buffers_only) and report.coverage == 0.0


def test_torchvision_resnet50_weights_load_into_timm_resnet50(tmp_path):
    # timm's ResNet names its modules as torchvision's does: no key_map is needed.
    torch.manual_seed(0)
    source = torchvision.models.resnet50(weights=None).state_dict()
    path = tmp_path / "resnet50-torchvision.pth"
    torch.save(source, path)
    model = timm.create_model("resnet50", pretrained=False, num_classes=9)
    report = transfer(model, path)
    assert set(report.loaded) == set(source) - {"fc.weight", "fc.bias"}
    assert report.missing == [] and report.unexpected == []
    assert set(report.shape_mismatched) == {"fc.weight", "fc.bias"}
    assert torch.equal(model.layer4[2].conv3.weight, source["layer4.2.conv3.weight"])


def test_torch_compile_prefix_is_unwrapped(imagenet_state):
    compiled = {"_orig_mod." + k: v for k, v in imagenet_state.items()}
    report = transfer(_resnet34(), {"model": compiled})
    assert report.coverage == 1.0 and report.unexpected == []


# --- real weights: Google's EfficientNet-Lite0 under another codebase's names ---------------

LITE0 = "timm:tf_efficientnet_lite0"
# lukemelas/EfficientNet-PyTorch names -> timm's, written out by hand: the reference that
# pairing by order must agree with. Lite0's 16 blocks sit in stages of 1, 2, 2, 3, 3, 4, 1.
TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2"}
FIRST_BLOCK = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
STAGES = [(s, b) for s, n in enumerate((1, 2, 2, 3, 3, 4, 1)) for b in range(n)]


def lite0_name(key: str) -> str:
    module, *rest = key.split(".")
    if module == "_fc":
        return ".".join(["classifier", *rest])
    if module != "_blocks":
        return ".".join([TOP[module], *rest])
    number, layer, *rest = rest
    stage, block = STAGES[int(number)]
    layers = FIRST_BLOCK if number == "0" else BLOCK
    return ".".join(["blocks", str(stage), str(block), layers[layer], *rest])


@pytest.fixture(scope="module")
def lite0_state(lite0_file):
    from zoo.checkpoints import read_state_dict

    return read_state_dict(lite0_file)


def test_match_order_loads_lite0_into_timm_all_but_the_replaced_head(lite0_state):
    import zoo

    model = zoo.create(LITE0, num_classes=10, weights=None)
    report = transfer(model, lite0_state, match="order", new_heads=("classifier",), strict=True)
    assert len(report.loaded) == 294 and report.total == 296
    assert set(report.shape_mismatched) == {"classifier.weight", "classifier.bias"}
    assert report.renamed == {k: lite0_name(k) for k in lite0_state}  # the hand-written map
    state = model.state_dict()
    for source_key, model_key in report.renamed.items():
        if model_key in report.loaded:
            assert torch.equal(state[model_key], lite0_state[source_key]), model_key


def test_lite0_by_order_gives_the_logits_of_an_explicit_key_map(lite0_state):
    import zoo

    model = zoo.create(LITE0, weights=None)  # 1000 classes: every tensor pairs, strictly
    report = transfer(model, lite0_state, match="order", strict=True)
    assert len(report.loaded) == 296 and report.coverage == 1.0
    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    reference.load_state_dict({lite0_name(k): v for k, v in lite0_state.items()}, strict=True)
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.eval()(images), reference.eval()(images))


def test_lite0_by_name_loads_nothing_and_says_what_order_would_load(lite0_state):
    import zoo

    model = zoo.create(LITE0, num_classes=10, weights=None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TransferError, match="match='order' would load 294/296"):
        transfer(model, lite0_state, min_coverage=0.5)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_zoo_transfer_lite0_by_order_writes_a_file_that_fine_tunes_better_than_random(
    lite0_file, tmp_path
):
    from click.testing import CliRunner

    import zoo
    from zoo.checkpoints import read_provenance
    from zoo.cli import cli

    out = tmp_path / "lite0-10.safetensors"
    args = ["transfer", str(lite0_file), "--into", LITE0, "--num-classes", "10", "-o", str(out)]
    by_name = CliRunner().invoke(cli, args)
    assert by_name.exit_code == 1 and not out.exists()  # names match nothing: nothing written
    (line,) = by_name.stderr.strip().splitlines()
    assert line.startswith("Error: coverage 0.0 %") and "--match order would load 294/296" in line
    result = CliRunner().invoke(cli, [*args, "--match", "order", "--strict"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("loaded 294/296 tensors") and out.is_file()
    assert read_provenance(out)["loaded"] == 294
    recipe = {"freeze_until": "backbone", "augment": False, "epochs": 2, "image_size": 64}
    recipe |= {"batch_size": 32, "lr": 0.01, "workers": 0}
    runs = {
        w: zoo.finetune(LITE0, weights=w, output=str(tmp_path / w[-4:]), **recipe)
        for w in (str(out), "none")
    }
    pretrained, random = (runs[w].summary["best_val_acc"] for w in (str(out), "none"))
    print(f"lite0 frozen backbone: transferred {pretrained:.1%}, random {random:.1%}")
    assert pretrained > random + 0.1
