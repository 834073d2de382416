"""The partial loader: what fits is loaded, the rest is reported, failures touch nothing."""

from __future__ import annotations

import json

import pytest
import timm
import torch
import torchvision

from zoo.errors import TransferError
from zoo.files import save_safetensors, save_torch
from zoo.transfer import FLAGS, TransferReport, transfer


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
