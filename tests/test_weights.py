"""Resolving and loading weights: cached files found offline, missing ones explained fast,
user files and zoo runs loaded, nothing in a file ever run."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file
from timm.models._hub import HF_SAFE_WEIGHTS_NAME

import zoo
from zoo import plugins
from zoo.errors import CheckpointError, UnsafeCheckpointError, WeightsError, WeightsNotFoundError
from zoo.files import save_torch

TV_FILE = os.path.basename(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url)
TIMM_REPO = timm.models.get_pretrained_cfg("resnet18.a1_in1k").hf_hub_id
REVISION = "0123456789abcdef0123456789abcdef01234567"


# --- helpers, also used by test_cli_weights.py ----------------------------------------------


def randomised(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """``model``'s state dict with every float tensor random, BatchNorm statistics included,
    so a tensor that was not loaded cannot equal the file's by chance."""
    generator = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    for tensor in state.values():
        if tensor.is_floating_point():
            tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return state


def save_hub_file(torch_home: Path, name: str, state: dict) -> Path:
    """Save ``state`` where torch.hub keeps a downloaded file called ``name``."""
    path = torch_home / "hub" / "checkpoints" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def save_hf_snapshot(hf_home: Path, repo_id: str, state: dict, revision: str = REVISION) -> Path:
    """Save ``state`` as huggingface_hub caches a repo's model.safetensors, refs/main included."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    path = repo / "snapshots" / revision / HF_SAFE_WEIGHTS_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, path)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return path


def use_homes(monkeypatch, root: Path) -> None:
    """Point the torch hub and Hugging Face caches at ``root``, offline."""
    monkeypatch.setenv("TORCH_HOME", str(root / "torch"))
    monkeypatch.setenv("HF_HOME", str(root / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("ZOO_OFFLINE", "1")


@pytest.fixture(scope="session")
def resnet18_caches(tmp_path_factory):
    """A torch hub cache holding torchvision's resnet18 file, and an HF cache holding timm's
    resnet18.a1_in1k, both random, at the names their sources use."""
    root = tmp_path_factory.mktemp("caches")
    tv = randomised(torchvision.models.resnet18(weights=None), seed=1)
    tm = randomised(timm.create_model("resnet18", pretrained=False), seed=2)
    return {
        "root": root,
        "torchvision": (save_hub_file(root / "torch", TV_FILE, tv), tv),
        "timm": (save_hf_snapshot(root / "hf", TIMM_REPO, tm), tm),
    }


@pytest.fixture
def cached(resnet18_caches, monkeypatch):
    use_homes(monkeypatch, resnet18_caches["root"])
    return resnet18_caches


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    use_homes(monkeypatch, tmp_path)
    return tmp_path


class _RunsShell:
    """Unpickling this runs a shell command: what a malicious checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_checkpoint(path: Path, marker: Path) -> Path:
    """A checkpoint that creates ``marker`` if anything unpickles it the unsafe way."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(
        {"state_dict": state, "meta": {"id": "torchvision:resnet18"}, "x": _RunsShell(marker)}, path
    )
    return path


class WeightsPlugin:
    """An in-process plugin whose backbone's ``weights`` field is given by the test."""

    def __init__(self, weights: dict) -> None:
        self.weights = weights

    @staticmethod
    def net():
        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(4, 5),
        )

    @zoo.hookimpl
    def register_backbones(self, register):
        register("net", self.net, weights=self.weights, input_size=(3, 16, 16))


@pytest.fixture
def weights_plugin():
    """Register ``WeightsPlugin(weights)`` as source 'wplug' for one test: call with weights."""

    def register(weights: dict) -> str:
        plugins.register(WeightsPlugin(weights), "wplug")
        return "wplug:net"

    yield register
    if plugins.pm.get_plugin("wplug") is not None:
        plugins.unregister("wplug")


def _assert_backbone_is(model: torch.nn.Module, state: dict, head: str = "fc") -> None:
    after = model.state_dict()
    for key, tensor in state.items():
        if not key.startswith(head + "."):
            assert torch.equal(after[key], tensor), key


def _assert_fresh_head(layer: torch.nn.Linear, num_classes: int) -> None:
    # zoo initialises a new head explicitly: normal(std=0.01) weights, zero bias.
    assert layer.out_features == num_classes
    assert torch.count_nonzero(layer.bias) == 0
    assert 0.005 < layer.weight.std().item() < 0.02


# --- 1. cached default weights, offline -----------------------------------------------------


@pytest.mark.parametrize(
    "name,weights,source,tag",
    [
        ("resnet18", "default", "torchvision", "IMAGENET1K_V1"),
        ("resnet18.IMAGENET1K_V1", "default", "torchvision", "IMAGENET1K_V1"),
        ("resnet18", "IMAGENET1K_V1", "torchvision", "IMAGENET1K_V1"),
        ("timm:resnet18", "default", "timm", "a1_in1k"),
        ("timm:resnet18.a1_in1k", "default", "timm", "a1_in1k"),
        ("timm:resnet18", "a1_in1k", "timm", "a1_in1k"),
    ],
)
def test_cached_weights_load_offline_exactly_with_a_fresh_3_way_head(
    cached, name, weights, source, tag
):
    path, state = cached[source]
    model = zoo.create(name, num_classes=3, weights=weights)
    _assert_backbone_is(model, state)
    _assert_fresh_head(model.fc, 3)
    assert model.zoo_spec.id == f"{source}:resnet18" and model.zoo_spec.num_classes == 3
    assert model.zoo_spec.weights["tag"] == tag and model.zoo_spec.weights["path"] == str(path)


def test_feature_only_tag_weights_load_with_a_fresh_head(tmp_path, weights_plugin, caplog):
    # Like timm's num_classes=0 tags: every tensor but the classifier's.
    state = randomised(WeightsPlugin.net(), seed=9)
    features = {k: v for k, v in state.items() if not k.startswith("3.")}
    path = tmp_path / "features.safetensors"
    save_file(features, path)
    model = zoo.create(weights_plugin({"features": str(path)}), num_classes=None)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in features.items())
    _assert_fresh_head(model[3], 5)
    assert "no classifier" in caplog.text


def test_hf_snapshot_named_by_refs_main_wins_over_other_snapshots(
    tmp_path, monkeypatch, weights_plugin
):
    use_homes(monkeypatch, tmp_path)
    net = weights_plugin({"v1": {"hf_hub_id": "someone/net"}})
    old = randomised(WeightsPlugin.net(), seed=3)
    new = randomised(WeightsPlugin.net(), seed=4)
    save_hf_snapshot(tmp_path / "hf", "someone/net", new, revision="f" * 40)
    save_hf_snapshot(tmp_path / "hf", "someone/net", old, revision="0" * 40)  # older, sorts first
    (tmp_path / "hf/hub/models--someone--net/refs/main").write_text("f" * 40)
    model = zoo.create(net)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in new.items())


# --- 2. missing weights: a fast, clear error ------------------------------------------------


@pytest.mark.parametrize(
    "name,file_name,folder",
    [
        ("resnet18", TV_FILE, "torch/hub/checkpoints"),
        ("timm:resnet18", HF_SAFE_WEIGHTS_NAME, "hf/hub/models--timm--resnet18.a1_in1k/snapshots"),
    ],
)
def test_missing_weights_fail_fast_naming_the_file_and_where_to_put_it(
    empty_caches, name, file_name, folder
):
    start = time.monotonic()
    with pytest.raises(WeightsNotFoundError) as excinfo:
        zoo.create(name, num_classes=3)
    assert time.monotonic() - start < 10
    message = str(excinfo.value)
    assert file_name in message and str(empty_caches / folder) in message
    assert "put the file there" in message
    assert "--weights PATH" in message and "--weights none" in message
    assert "offline" in message and "\n" not in message


def test_missing_plugin_file_with_network_allowed_fails_fast(
    empty_caches, monkeypatch, weights_plugin
):
    with socket.socket() as s:  # a port nothing listens on: the download is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.delenv("ZOO_OFFLINE")
    net = weights_plugin({"v1": f"http://127.0.0.1:{port}/net-0a1b2c3d.pth"})
    start = time.monotonic()
    with pytest.raises(WeightsNotFoundError) as excinfo:
        zoo.create(net)
    assert time.monotonic() - start < 10
    message = str(excinfo.value)
    assert str(empty_caches / "torch/hub/checkpoints/net-0a1b2c3d.pth") in message
    assert "download failed" in message and "--weights none" in message
    assert not (empty_caches / "torch/hub/checkpoints/net-0a1b2c3d.pth").exists()


AUDIT_SCRIPT = textwrap.dedent(
    """
    import os, sys

    def hook(event, args):
        if event in ("socket.getaddrinfo", "socket.connect"):
            print("NETWORK", event, flush=True)
            raise OSError("network blocked by the test")

    sys.addaudithook(hook)
    import zoo
    from zoo.errors import WeightsError

    for offline in ("1", "0"):
        os.environ["ZOO_OFFLINE"] = offline
        for name in ("resnet18", "timm:resnet18"):
            try:
                zoo.create(name, num_classes=3)
            except WeightsError as exc:
                print("ERROR", offline, name, exc, flush=True)
    """
)


def test_zoo_offline_touches_no_network(tmp_path):
    # An audit hook sees every DNS look-up and connection; with ZOO_OFFLINE=0 the same
    # script does reach for the network (blocked there), which shows the hook works.
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), "HF_HOME": str(tmp_path / "hf")}
    env["HF_HUB_OFFLINE"] = "0"  # so only zoo's own ZOO_OFFLINE keeps timm's files local
    result = subprocess.run(
        [sys.executable, "-c", AUDIT_SCRIPT], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    offline, online = lines[:2], lines[2:]
    assert [line.split()[:3] for line in offline] == [
        ["ERROR", "1", "resnet18"],
        ["ERROR", "1", "timm:resnet18"],
    ]
    assert all("offline" in line for line in offline)
    assert online[0].startswith("NETWORK") and any("download failed" in x for x in online)


# --- 3. nothing in a file runs --------------------------------------------------------------


@pytest.mark.parametrize("named_by", ["file", "run directory", "hub cache tag", "plugin field"])
def test_code_in_a_checkpoint_never_runs(tmp_path, monkeypatch, weights_plugin, named_by):
    use_homes(monkeypatch, tmp_path)
    marker = tmp_path / "marker"
    if named_by == "file":
        name, weights = "resnet18", evil_checkpoint(tmp_path / "evil.pth", marker)
    elif named_by == "run directory":
        name, weights = "resnet18", evil_checkpoint(tmp_path / "run" / "best.pt", marker).parent
    elif named_by == "hub cache tag":
        name, weights = "resnet18", "default"
        evil_checkpoint(tmp_path / "torch/hub/checkpoints" / TV_FILE, marker)
    else:
        bad = evil_checkpoint(tmp_path / "plugin" / "net.pth", marker)
        name, weights = weights_plugin({"demo": str(bad)}), "default"
    with pytest.raises(UnsafeCheckpointError, match="arbitrary unpickling.*never runs code"):
        zoo.create(name, num_classes=3, weights=weights)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_broken_weight_files_give_one_line_errors(tmp_path, kind):
    path = tmp_path / f"{kind}.pth"
    if kind == "garbage":
        path.write_bytes(random.Random(0).randbytes(4096))
    else:
        torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError) as excinfo:
        zoo.create("resnet18", num_classes=3, weights=path)
    assert str(path) in str(excinfo.value) and "\n" not in str(excinfo.value)


# --- 5. user files and zoo runs -------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet18_state() -> dict[str, torch.Tensor]:
    return randomised(torchvision.models.resnet18(weights=None), seed=5)


def test_a_full_state_dict_of_the_same_arch_loads_then_gets_a_new_head(tmp_path, resnet18_state):
    path = tmp_path / "mine.pth"
    torch.save(resnet18_state, path)
    model = zoo.create("resnet18", num_classes=3, weights=str(path))
    _assert_backbone_is(model, resnet18_state)
    _assert_fresh_head(model.fc, 3)
    assert model.zoo_spec.weights == {"tag": None, "path": str(path), "build_kwargs": {}}
    identity = model.zoo_spec.resolved.identity()  # what config.json records
    assert identity["sha256"] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()


def test_a_file_with_another_head_size_keeps_that_head(tmp_path, resnet18_state):
    # Saved from a 10-class fine-tune: without num_classes, the model is that 10-class model.
    state = dict(resnet18_state, **{"fc.weight": torch.randn(10, 512), "fc.bias": torch.randn(10)})
    path = tmp_path / "ten.safetensors"
    save_file(state, path)
    model = zoo.create("resnet18", weights=path)
    assert model.zoo_spec.num_classes == 10
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    _assert_fresh_head(zoo.create("resnet18", num_classes=3, weights=path).fc, 3)


def test_weights_of_another_architecture_are_refused_with_what_matched(tmp_path, resnet18_state):
    path = tmp_path / "resnet18.pth"
    torch.save(resnet18_state, path)
    with pytest.raises(WeightsError) as excinfo:
        zoo.create("resnet50", num_classes=3, weights=path)
    message = str(excinfo.value)
    assert str(path) in message and "does not fit ResNet" in message
    assert "tensors matched, coverage" in message and "zoo transfer" in message


def _fake_run(folder: Path, state: dict, arch: str = "resnet18", num_classes: int = 4) -> Path:
    """A run directory as the trainer writes it (best.pt only: what loading needs)."""
    save_torch(
        {
            "state_dict": state,
            "meta": {
                "id": f"torchvision:{arch}",
                "num_classes": num_classes,
                "class_names": [f"class{i}" for i in range(num_classes)],
                "preprocessing": {
                    "input_size": [3, 160, 160],
                    "mean": [0.5] * 3,
                    "std": [0.25] * 3,
                },
            },
        },
        folder / "best.pt",
    )
    return folder


@pytest.fixture(scope="module")
def resnet18_run(tmp_path_factory, resnet18_state):
    state = dict(resnet18_state, **{"fc.weight": torch.randn(4, 512), "fc.bias": torch.randn(4)})
    return _fake_run(tmp_path_factory.mktemp("run"), state), state


@pytest.mark.parametrize("given", ["run directory", "best.pt"])
def test_a_run_loads_exactly_and_takes_a_new_head(resnet18_run, given):
    run, state = resnet18_run
    weights = run if given == "run directory" else run / "best.pt"
    model = zoo.create("resnet18", num_classes=2, weights=weights)
    _assert_backbone_is(model, state)
    _assert_fresh_head(model.fc, 2)
    assert model.zoo_spec.preprocessing.input_size == (3, 160, 160)


def test_a_run_without_num_classes_is_the_run_model_with_its_preprocessing(resnet18_run):
    run, state = resnet18_run
    model = zoo.create("resnet18", weights=run)
    assert model.zoo_spec.num_classes == 4
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in state.items())
    assert model.zoo_spec.preprocessing.mean == (0.5, 0.5, 0.5)


def test_a_run_of_another_backbone_is_refused_naming_it(resnet18_run):
    run, _ = resnet18_run
    with pytest.raises(
        WeightsError, match="is a run of torchvision:resnet18, not torchvision:resnet34"
    ):
        zoo.create("resnet34", weights=run)


def _count_reads(monkeypatch) -> list[str]:
    """The file names zoo.checkpoints.read_checkpoint is asked to read from now on."""
    from zoo import checkpoints

    reads, read = [], checkpoints.read_checkpoint

    def counting(path):
        reads.append(Path(path).name)
        return read(path)

    monkeypatch.setattr(checkpoints, "read_checkpoint", counting)
    return reads


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_a_weights_file_is_read_once(tiny, tmp_path, monkeypatch, suffix):
    state = randomised(zoo.create(tiny, weights=None), seed=7)
    path = tmp_path / f"tiny{suffix}"
    (save_file if suffix == ".safetensors" else torch.save)(state, path)
    reads = _count_reads(monkeypatch)
    model = zoo.create(tiny, weights=path)
    assert reads == [path.name]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_evaluate_and_predict_read_best_pt_once(tiny, tmp_path, monkeypatch):
    from images import make_image_folder

    from zoo.runs import evaluate, predict

    model = zoo.create(tiny, num_classes=2, weights=None)
    meta = {"id": tiny, "num_classes": 2, "class_names": ["a", "b"], "preprocessing": {}}
    save_torch({"state_dict": model.state_dict(), "meta": meta}, tmp_path / "run" / "best.pt")
    data = make_image_folder(tmp_path / "data", ["a", "b"], per_class=2)
    reads = _count_reads(monkeypatch)
    report = evaluate(tmp_path / "run", data, batch_size=4, device="cpu", workers=0)
    assert reads == ["best.pt"] and report["images"] == 4
    reads.clear()
    image = next(data.glob("a/*.png"))
    assert predict(tmp_path / "run", [image], top_k=1, device="cpu")[0]["image"] == str(image)
    assert reads == ["best.pt"]


# --- 6. googlenet and inception_v3: TF-ported weights ---------------------------------------


@pytest.fixture(scope="module")
def ported_caches(tmp_path_factory):
    """googlenet and inception_v3 default files as torchvision's are: aux heads included."""
    root = tmp_path_factory.mktemp("ported")
    states = {}
    for name, weights in (
        ("googlenet", torchvision.models.GoogLeNet_Weights.IMAGENET1K_V1),
        ("inception_v3", torchvision.models.Inception_V3_Weights.IMAGENET1K_V1),
    ):
        # init_weights=False: empty tensors that randomised() fills (torchvision's init is slow).
        model = torchvision.models.get_model(
            name, weights=None, aux_logits=True, init_weights=False
        )
        states[name] = randomised(model, seed=6)
        save_hub_file(root / "torch", os.path.basename(weights.url), states[name])
    return root, states


@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_ported_weights_load_strictly_and_transform_input(ported_caches, monkeypatch, name):
    root, states = ported_caches
    use_homes(monkeypatch, root)
    model = zoo.create(name)
    after = model.state_dict()
    assert after.keys() == states[name].keys()
    assert all(torch.equal(after[k], v) for k, v in states[name].items())
    assert model.transform_input is True  # as torchvision sets it for these weights


def test_a_googlenet_run_is_rebuilt_with_transform_input(ported_caches, monkeypatch, tmp_path):
    root, states = ported_caches
    use_homes(monkeypatch, root)
    run = _fake_run(tmp_path, states["googlenet"], arch="googlenet", num_classes=1000)
    (run / "config.json").write_text('{"weights": {"tag": "IMAGENET1K_V1"}}')
    assert zoo.create("googlenet", weights=run).transform_input is True
