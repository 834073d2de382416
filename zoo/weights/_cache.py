"""Where weights files live locally: the torch hub and Hugging Face caches."""

from __future__ import annotations

import os
from pathlib import Path

from zoo.env import cache_home


def torch_hub_dir() -> Path:
    """torch.hub's directory, computed as torch does, without importing torch."""
    home = os.environ.get("TORCH_HOME")
    return (Path(home).expanduser() if home else cache_home() / "torch") / "hub"


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache, as huggingface_hub computes it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME")
    return (Path(home).expanduser() if home else cache_home() / "huggingface") / "hub"


def _hf_files(spec: dict) -> list[str]:
    if spec.get("hf_hub_filename"):
        return [spec["hf_hub_filename"]]
    return ["model.safetensors", "pytorch_model.bin"]


def _hf_snapshots(repo: Path, revision: str) -> list[Path]:
    """A hub repo's snapshot folders, the one its ref (``refs/main``) names first."""
    if not (repo / "snapshots").is_dir():
        return []
    ref = repo / "refs" / (revision or "main")
    commit = ref.read_text().strip() if ref.is_file() else revision
    found = sorted(p for p in (repo / "snapshots").iterdir() if p.is_dir())
    return sorted(found, key=lambda p: p.name != commit)


def candidates(spec: dict) -> list[Path]:
    """Where a tag's file may be, most preferred first (the first is where it 'would be')."""
    out = []
    if spec.get("path"):
        out.append(Path(spec["path"]).expanduser())
    if spec.get("hf_hub_id"):
        repo_id, _, revision = spec["hf_hub_id"].partition("@")
        repo = hf_hub_cache() / ("models--" + repo_id.replace("/", "--"))
        snapshots = _hf_snapshots(repo, revision)
        for name in _hf_files(spec):
            out += [s / name for s in snapshots] or [repo / "snapshots" / "<revision>" / name]
    if spec.get("url"):
        name = spec.get("filename") or os.path.basename(spec["url"])
        out.append(torch_hub_dir() / "checkpoints" / name)
    return out


def find_cached(spec: dict) -> Path | None:
    """The first candidate that exists, else None."""
    return next((p for p in candidates(spec) if p.is_file()), None)


def expected_path(spec: dict) -> Path | None:
    """Where the file is, or where it would be looked for first."""
    found = find_cached(spec)
    if found is not None:
        return found
    paths = candidates(spec)
    return paths[0] if paths else None


class LocalFiles:
    """The caches' folders listed once, to answer ``find_cached`` for many tags quickly (a
    listing of every backbone): only a tag whose file name or hub repository is there is
    looked for in full."""

    def __init__(self) -> None:
        self.hub = _names(torch_hub_dir() / "checkpoints")
        self.hf = _names(hf_hub_cache())

    def find(self, spec: dict) -> Path | None:
        return find_cached(spec) if self._may_hold(spec) else None

    def _may_hold(self, spec: dict) -> bool:
        if spec.get("path"):
            return True
        repo_id = (spec.get("hf_hub_id") or "").partition("@")[0]
        if repo_id and "models--" + repo_id.replace("/", "--") in self.hf:
            return True
        url = spec.get("url")
        return bool(url) and (spec.get("filename") or os.path.basename(url)) in self.hub


def _names(folder: Path) -> set[str]:
    try:
        return set(os.listdir(folder))
    except OSError:
        return set()
