"""Weights through the command line: zoo info / list --cached report the caches, and
zoo transfer moves weights, refusing unsafe or broken files in one line."""

from __future__ import annotations

import json
import random

import pytest
import torch
import torchvision
from click.testing import CliRunner
from conftest import run_zoo
from test_weights import (
    TIMM_REPO,
    TV_FILE,
    evil_checkpoint,
    randomised,
    save_hf_snapshot,
    save_hub_file,
    use_homes,
)

import zoo
from zoo.checkpoints import read_checkpoint, read_provenance, read_state_dict
from zoo.cli import cli
from zoo.files import save_safetensors, save_torch

REPORT_KEYS = {"loaded", "missing", "unexpected", "shape_mismatched", "renamed", "coverage"}


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, *fragments: str) -> None:
    """Exit status 1, one ``Error:`` line on stderr with every fragment, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # not an exception escaping the CLI
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


# --- zoo info, zoo list --cached ------------------------------------------------------------


def test_info_says_not_cached_and_where_the_file_would_be(tmp_path, monkeypatch):
    use_homes(monkeypatch, tmp_path)
    data = json.loads(invoke("info", "resnet18", "--json").stdout)
    assert data["cached"] is False
    assert data["weights_path"] == str(tmp_path / "torch/hub/checkpoints" / TV_FILE)
    timm_data = json.loads(invoke("info", "timm:resnet18", "--json").stdout)
    assert timm_data["cached"] is False
    hf_repo = tmp_path / "hf/hub/models--timm--resnet18.a1_in1k"
    assert timm_data["weights_path"].startswith(str(hf_repo / "snapshots"))
    text = invoke("info", "resnet18").stdout
    assert f"{tmp_path / 'torch/hub/checkpoints' / TV_FILE}  (not cached)" in text


def test_info_refuses_a_weights_tag_the_backbone_lacks(tmp_path, monkeypatch):
    use_homes(monkeypatch, tmp_path)
    result = invoke("info", "resnet34.BOGUS")
    assert_one_line_error(result, "torchvision:resnet34 has no weights tagged 'BOGUS'", "tags:")
    assert json.loads(invoke("info", "resnet34.IMAGENET1K_V1", "--json").stdout)["tag"] == (
        "IMAGENET1K_V1"
    )


@pytest.fixture
def cached_placeholders(tmp_path, monkeypatch):
    """resnet18's torchvision and timm default files, present (contents do not matter here)."""
    use_homes(monkeypatch, tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no plugin file from the real home
    tiny = {"x": torch.zeros(1)}
    return {
        "torchvision:resnet18": save_hub_file(tmp_path / "torch", TV_FILE, tiny),
        "timm:resnet18": save_hf_snapshot(tmp_path / "hf", TIMM_REPO, tiny),
    }


def test_info_says_cached_with_the_file(cached_placeholders):
    for name, path in cached_placeholders.items():
        data = json.loads(invoke("info", name, "--json").stdout)
        assert data["cached"] is True and data["weights_path"] == str(path), name


def test_list_cached_lists_only_what_is_cached(cached_placeholders):
    rows = json.loads(invoke("list", "--cached", "--json").stdout)
    assert [r["id"] for r in rows] == ["torchvision:resnet18", "timm:resnet18"]
    assert all(r["cached"] for r in rows)
    uncached = json.loads(invoke("list", "resnet34", "--json").stdout)
    assert uncached and not any(r["cached"] for r in uncached)
    assert json.loads(invoke("list", "resnet34", "--cached", "--json").stdout) == []
    text = invoke("list", "--cached").stdout.splitlines()[1:]  # under the header
    assert len(text) == 2 and all("  cached" in line for line in text)
    # timm's tv_in1k tag is torchvision's own file: present too, and said so
    assert text[1].endswith("cached  cached: tv_in1k")


# --- zoo transfer: unsafe and broken files --------------------------------------------------


def test_transfer_refuses_a_checkpoint_that_would_run_code(tmp_path):
    marker = tmp_path / "marker"
    evil = evil_checkpoint(tmp_path / "evil.pth", marker)
    result = run_zoo("transfer", str(evil), "--into", "resnet18", "-o", str(tmp_path / "o.pt"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"Error: {evil} needs arbitrary unpickling")
    assert not marker.exists() and not (tmp_path / "o.pt").exists()


@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty"])
def test_transfer_of_a_broken_file_is_one_clear_line(tmp_path, kind):
    path = tmp_path / f"{kind}.pth"
    if kind == "garbage":
        path.write_bytes(random.Random(1).randbytes(3000))
    elif kind == "truncated":
        torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
        path.write_bytes(path.read_bytes()[:100_000])
    else:
        path.touch()
    result = invoke("transfer", path, "--into", "resnet18")
    assert_one_line_error(result, str(path))


# --- zoo transfer: the partial loader as a command ------------------------------------------


@pytest.fixture(scope="module")
def resnet34_ddp(tmp_path_factory):
    """A 1000-class resnet34 saved by a DDP trainer: {"state_dict": {"module.*": ...}}."""
    state = randomised(torchvision.models.resnet34(weights=None), seed=7)
    path = tmp_path_factory.mktemp("r34") / "resnet34-imagenet.pth"
    save_torch({"state_dict": {"module." + k: v for k, v in state.items()}}, path)
    return path, state


def test_transfer_resnet34_into_9_classes_reports_and_writes_a_strict_checkpoint(
    tmp_path, resnet34_ddp
):
    source, state = resnet34_ddp
    out = tmp_path / "out.pt"
    args = ("transfer", source, "--into", "resnet34", "--num-classes", 9, "-o", out, "--json")
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) >= REPORT_KEYS
    assert report["coverage"] > 0.95
    assert report["shape_mismatched"] == {
        "fc.weight": {"source": [1000, 512], "model": [9, 512]},
        "fc.bias": {"source": [1000], "model": [9]},
    }
    assert set(report["loaded"]) == set(state) - {"fc.weight", "fc.bias"}
    assert report["missing"] == [] and report["unexpected"] == [] and report["renamed"] == {}
    model = zoo.create("resnet34", num_classes=9, weights=None)
    model.load_state_dict(read_state_dict(out), strict=True)
    assert torch.equal(model.layer4[2].bn2.running_var, state["layer4.2.bn2.running_var"])
    provenance = read_provenance(out)  # an entry beside the state dict
    assert provenance["source"] == str(source) and provenance["into"] == "torchvision:resnet34"
    assert provenance["loaded"] == len(state) - 2 and provenance["match"] == "names"


@pytest.fixture(scope="module")
def resnet18_state():
    return randomised(torchvision.models.resnet18(weights=None), seed=8)


def test_transfer_prefix_from_safetensors_into_safetensors(tmp_path, resnet18_state):
    source = tmp_path / "detector.safetensors"
    save_safetensors({"backbone." + k: v for k, v in resnet18_state.items()}, source)
    out = tmp_path / "r18.safetensors"
    result = invoke("transfer", source, "--into", "resnet18", "--prefix", "backbone.", "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("loaded 122/122 tensors, coverage 100.0 %")
    assert f"wrote {out}" in result.stdout
    saved = read_checkpoint(out)  # a real safetensors file, read by the safetensors reader
    model = zoo.create("resnet18", weights=None)
    model.load_state_dict(saved, strict=True)
    assert torch.equal(model.conv1.weight, resnet18_state["conv1.weight"])


def test_transfer_map_rewrites_keys(tmp_path, resnet18_state):
    source = tmp_path / "old-layout.pth"
    torch.save({k.replace("layer", "stage"): v for k, v in resnet18_state.items()}, source)
    result = invoke(
        "transfer", source, "--into", "resnet18", "--map", r"^stage(\d)\.=layer\1.", "--json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["coverage"] == 1.0 and report["unexpected"] == []
    assert report["renamed"]["stage4.1.conv2.weight"] == "layer4.1.conv2.weight"


def test_transfer_strict_allows_only_the_head_num_classes_replaces(tmp_path, resnet34_ddp):
    source, state = resnet34_ddp
    out = tmp_path / "out.pt"
    result = invoke("transfer", source, "--into", "resnet34", "--num-classes", 9, "--strict")
    assert result.exit_code == 0, result.output  # only the head differs: it is being replaced
    result = invoke("transfer", source, "--into", "resnet34", "--strict", "-o", out)
    assert result.exit_code == 0 and out.exists()  # 1000 classes: everything fits
    lacking = tmp_path / "lacking.pth"
    torch.save({k: v for k, v in state.items() if k != "layer4.2.bn2.running_var"}, lacking)
    out9 = tmp_path / "out9.pt"
    args = ("transfer", lacking, "--into", "resnet34", "--num-classes", 9, "--strict", "-o", out9)
    assert_one_line_error(
        invoke(*args),
        "strict transfer failed: 1 missing (layer4.2.bn2.running_var)",
        "with --prefix or --map, or drop --strict",
    )
    assert not out9.exists()


def test_transfer_min_coverage_fails_in_one_line_and_writes_nothing(tmp_path, resnet18_state):
    source = tmp_path / "stem.pth"
    torch.save({k: v for k, v in resnet18_state.items() if k.startswith("conv1.")}, source)
    out = tmp_path / "out.pt"
    args = ("transfer", source, "--into", "resnet18", "--min-coverage", 0.5, "-o", out)
    assert_one_line_error(invoke(*args), "below --min-coverage 50.0 %", "--prefix or --map")
    assert not out.exists()


def test_transfer_map_with_a_bad_regex_is_refused_before_any_work(tmp_path):
    result = invoke("transfer", tmp_path / "absent.pth", "--into", "resnet18", "--map", "(=x")
    assert result.exit_code == 2
    assert "Invalid value for '--map': '(' is not a regex: missing )" in result.stderr


def test_a_whole_model_pickle_is_refused_saying_how_to_make_a_state_dict(tmp_path):
    path = tmp_path / "whole.pth"
    torch.save(torchvision.models.resnet18(weights=None), path)  # torch.save(model)
    result = invoke("transfer", path, "--into", "resnet18")
    assert_one_line_error(
        result,
        "needs arbitrary unpickling (torchvision.models.resnet.ResNet)",
        "where the code that defines torchvision.models.resnet.ResNet can be imported",
        "torch.load(path, weights_only=False).state_dict()",
    )


# --- zoo transfer: the coverage floor, --map-file, --match order -----------------------------


def test_a_transfer_that_loads_nothing_writes_nothing_unless_told(tmp_path, resnet18_state):
    source = tmp_path / "other.pth"
    torch.save({f"net.{i}": v for i, v in enumerate(resnet18_state.values())}, source)
    out = tmp_path / "out.pt"
    result = invoke("transfer", source, "--into", "resnet18", "-o", out)
    assert_one_line_error(result, "coverage 0.0 % is below --min-coverage 50.0 %")
    assert not out.exists()
    result = invoke("transfer", source, "--into", "resnet18", "--min-coverage", 0, "-o", out)
    assert result.exit_code == 0 and out.exists()  # 0 accepts anything, as asked


def test_names_that_match_nothing_point_to_match_order_with_its_count(tmp_path, resnet18_state):
    source = tmp_path / "renamed.pth"
    torch.save({f"net.{i}": v for i, v in enumerate(resnet18_state.values())}, source)
    out = tmp_path / "out.pt"
    result = invoke("transfer", source, "--into", "resnet18", "--num-classes", 3, "-o", out)
    assert_one_line_error(result, "--match order would load 120/122")
    assert not out.exists()
    args = ("transfer", source, "--into", "resnet18", "--num-classes", 3, "--match", "order")
    result = invoke(*args, "--strict", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["loaded"]) == 120 and set(report["shape_mismatched"]) == {
        "fc.weight",
        "fc.bias",
    }
    assert report["renamed"]["net.0"] == "conv1.weight"
    assert read_provenance(out)["match"] == "order"


def test_match_order_refuses_tensors_that_do_not_line_up(tmp_path, resnet18_state):
    state = dict(resnet18_state)
    state.pop("layer1.0.bn1.running_var")  # one tensor short: everything after it shifts
    source = tmp_path / "shifted.pth"
    torch.save(state, source)
    result = invoke("transfer", source, "--into", "resnet18", "--match", "order")
    assert_one_line_error(
        result,
        "--match order cannot pair the tensors: pair 11 differs in shape",
        "source layer1.0.bn1.num_batches_tracked () and model layer1.0.bn1.running_var (64,)",
    )


def test_map_file_rules_apply_in_order_with_comments(tmp_path, resnet18_state):
    source = tmp_path / "old-layout.pth"
    torch.save({"net." + k.replace("layer", "stage"): v for k, v in resnet18_state.items()}, source)
    rules = tmp_path / "rules.map"
    rules.write_text("# from the old trainer's layout\n^net\\.=\n\nstage(\\d)=layer\\1\n")
    out = tmp_path / "out.safetensors"
    result = invoke("transfer", source, "--into", "resnet18", "--map-file", rules, "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("loaded 122/122 tensors, coverage 100.0 %")
    provenance = read_provenance(out)  # safetensors metadata
    assert provenance["map"] == [["^net\\.", ""], ["stage(\\d)", "layer\\1"]]
    assert provenance["sha256"] == zoo.files.sha256(source) and provenance["coverage"] == 1.0


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "cannot read the map file"),
        ("^net\\.=\nno separator here\n", ":2: 'no separator here' is not REGEX=REPLACEMENT"),
        ("(unclosed=x\n", ":1: '(unclosed' is not a regex (missing ), unterminated subpattern"),
    ],
    ids=["missing", "malformed", "bad-regex"],
)
def test_a_bad_map_file_is_one_clear_line(tmp_path, resnet18_state, content, fragment):
    source = tmp_path / "r18.pth"
    torch.save(resnet18_state, source)
    rules = tmp_path / "rules.map"
    if content is not None:
        rules.write_text(content)
    result = invoke("transfer", source, "--into", "resnet18", "--map-file", rules)
    assert_one_line_error(result, str(rules), fragment)


def test_a_run_from_a_transferred_file_records_its_provenance(tmp_path, tiny):
    from images import make_image_folder

    source = tmp_path / "other.pth"
    torch.save(
        {f"w{i}": v for i, v in enumerate(zoo.create(tiny, weights=None).state_dict().values())},
        source,
    )
    out = tmp_path / "tiny.safetensors"
    result = invoke("transfer", source, "--into", tiny, "--match", "order", "-o", out)
    assert result.exit_code == 0, result.output
    data = make_image_folder(tmp_path / "pets", ["cat", "dog"], (4, 2), layout="train-valid")
    run = tmp_path / "run"
    zoo.finetune(
        tiny, str(data), weights=str(out), epochs=1, image_size=32, workers=0, output=str(run)
    )
    recorded = json.loads((run / "config.json").read_text())["weights"]["provenance"]
    assert recorded == read_provenance(out) and recorded["source"] == str(source)


# --- zoo transfer from a run directory (issue 20, defect 11) ----------------------------------


@pytest.fixture
def tiny_run(tmp_path, tiny):
    from images import make_image_folder

    data = make_image_folder(tmp_path / "pets", ["cat", "dog"], (4, 2), layout="train-valid")
    run = tmp_path / "run"
    zoo.finetune(tiny, str(data), weights=None, epochs=1, image_size=32, workers=0, output=str(run))
    return run


def test_transfer_takes_a_run_directory_as_its_best_pt(tmp_path, tiny, tiny_run):
    out = tmp_path / "tiny-5.pt"
    result = invoke("transfer", tiny_run, "--into", tiny, "--num-classes", "5", "-o", out)
    assert result.exit_code == 0, result.output
    assert read_provenance(out)["source"] == str((tiny_run / "best.pt").resolve())
    report = zoo.models.transfer_checkpoint(tiny_run, tiny, num_classes=2, strict=True)
    assert report.coverage == 1.0


def test_transfer_of_a_folder_without_best_pt_is_one_clear_line(tmp_path, tiny):
    (tmp_path / "empty").mkdir()
    result = invoke("transfer", tmp_path / "empty", "--into", tiny)
    assert_one_line_error(result, str(tmp_path / "empty"), "folder without best.pt")


def test_list_cached_shows_a_backbone_whose_only_local_file_is_not_the_default_tag(
    tmp_path, monkeypatch
):
    use_homes(monkeypatch, tmp_path)
    save_hub_file(tmp_path / "torch", "mobilenet_v2-b0353104.pth", {"x": torch.zeros(1)})
    lines = invoke("list", "mobilenet_v2", "--cached").stdout.splitlines()
    assert len(lines) == 2 and lines[0].split() == ["id", "params", "GFLOPs", "top-1", "weights"]
    assert lines[1].startswith("torchvision:mobilenet_v2 ")
    assert lines[1].endswith("  IMAGENET1K_V2 (+1 tags)  cached: IMAGENET1K_V1")
    (row,) = json.loads(invoke("list", "mobilenet_v2", "--cached", "--json").stdout)
    assert row["cached"] is False and row["cached_tags"] == ["IMAGENET1K_V1"]


def test_info_of_a_tag_describes_that_tag_not_the_default():
    text = invoke("info", "mobilenet_v2.IMAGENET1K_V1").stdout
    assert "tag:           IMAGENET1K_V1 (ImageNet-1K top-1 71.878)" in text
    assert "IMAGENET1K_V2" not in text.split("tags:")[0]  # no other tag in the description
    assert json.loads(invoke("info", "mobilenet_v2", "--json").stdout)["top1"] == 72.154
