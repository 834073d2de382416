"""Finding weights: a tag in the local caches, a file, or a zoo run; loading them safely.

Local first: torchvision's files in ``$TORCH_HOME/hub/checkpoints``, timm's in the Hugging
Face cache (or the torch hub cache), plugin files where the plugin says. A download happens
only when the network is allowed (not ``ZOO_OFFLINE=1``), with the source's own mechanism
and hash check, and a bounded wait.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import WeightsError, WeightsNotFoundError

if TYPE_CHECKING:
    from torch import nn

    from zoo.registry import Backbone

FILE_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt")
DOWNLOAD_TIMEOUT_S = 30


@dataclass
class Resolved:
    """Weights chosen for a backbone: where they are and what they are."""

    path: Path  # the file to read
    tag: str | None = None  # the weights tag, None for a user file
    spec: dict = field(default_factory=dict)  # the tag's spec, or a run's preprocessing
    num_classes: int | None = None  # the head size the file was saved with, when known
    class_names: list[str] | None = None  # a zoo run's classes
    build_kwargs: dict = field(default_factory=dict)  # extra factory arguments
    _sha256: str | None = None

    def identity(self) -> dict:
        """What config.json records about these weights."""
        return {"tag": self.tag, "path": str(self.path), "sha256": self.sha256()}

    def sha256(self) -> str:
        if self._sha256 is None:
            digest = hashlib.sha256()
            with open(self.path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            self._sha256 = digest.hexdigest()
        return self._sha256


def offline() -> bool:
    """Whether every network attempt is forbidden (``ZOO_OFFLINE=1``)."""
    return os.environ.get("ZOO_OFFLINE", "").lower() not in ("", "0", "false", "no")


def torch_hub_dir() -> Path:
    """torch.hub's directory, computed as torch does, without importing torch."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch"
    )
    return Path(home).expanduser() / "hub"


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache, as huggingface_hub computes it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def _hf_files(spec: dict) -> list[str]:
    if spec.get("hf_hub_filename"):
        return [spec["hf_hub_filename"]]
    return ["model.safetensors", "pytorch_model.bin"]


def candidates(spec: dict) -> list[Path]:
    """Where a tag's file may be, most preferred first (the first is where it 'would be')."""
    out = []
    if spec.get("path"):
        out.append(Path(spec["path"]).expanduser())
    if spec.get("hf_hub_id"):
        repo = hf_hub_cache() / ("models--" + spec["hf_hub_id"].split("@")[0].replace("/", "--"))
        snapshots = sorted((repo / "snapshots").glob("*")) if repo.exists() else []
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


def resolve(
    backbone: Backbone, weights: str | os.PathLike | None, tag: str | None = None
) -> Resolved | None:
    """Turn a ``weights`` argument into a file to load (None: random initialisation).

    >>> resolve(backbone, "default", None).path
    PosixPath('/root/.cache/torch/hub/checkpoints/resnet34-b627a593.pth')
    """
    if weights is None or str(weights).lower() == "none":
        return None
    text = str(weights)
    if text != "default" and (text in backbone.weights or text.lstrip(".") in backbone.weights):
        return _resolve_tag(backbone, text.lstrip("."))
    if text == "default":
        chosen = tag or backbone.default_tag
        if chosen is None:
            raise WeightsNotFoundError(
                f"{backbone.id} has no published weights; pass --weights PATH or --weights none"
            )
        return _resolve_tag(backbone, chosen)
    if _looks_like_path(text):
        return resolve_file(Path(text).expanduser())
    tags = ", ".join(backbone.tags[:8]) or "none"
    raise WeightsError(
        f"unknown weights '{text}' for {backbone.id}; tags: {tags}; "
        "or pass a file (.pth, .pt, .bin, .safetensors), a run directory, or none"
    )


def _looks_like_path(text: str) -> bool:
    return os.sep in text or text.endswith(FILE_SUFFIXES) or Path(text).expanduser().exists()


def _resolve_tag(backbone: Backbone, tag: str) -> Resolved:
    if tag not in backbone.weights:
        tags = ", ".join(backbone.tags[:8]) or "none"
        raise WeightsError(f"{backbone.id} has no weights tagged '{tag}'; tags: {tags}")
    spec = backbone.weights[tag]
    path = find_cached(spec) or download(backbone, tag, spec)
    return Resolved(
        path, tag, spec, spec.get("num_classes"), build_kwargs=dict(spec.get("build_kwargs") or {})
    )


def resolve_file(path: Path) -> Resolved:
    """A weights file, a zoo run directory, or a run's ``best.pt``."""
    if path.is_dir():
        best = path / "best.pt"
        if not best.is_file():
            raise WeightsNotFoundError(
                f"{path} is a folder without best.pt; pass a weights file or a zoo run directory"
            )
        path = best
    if not path.is_file():
        raise WeightsNotFoundError(
            f"no weights file at {path}; check the path, or pass "
            "--weights none for random initialisation"
        )
    meta = _run_meta(path)
    if meta is None:
        return Resolved(path)
    return Resolved(
        path,
        None,
        dict(meta.get("preprocessing") or {}),
        meta.get("num_classes"),
        class_names=meta.get("class_names"),
    )


def _run_meta(path: Path) -> dict | None:
    """A zoo ``best.pt``'s meta dict, or None for any other file."""
    if path.suffix not in (".pt", ".pth"):
        return None
    from zoo.checkpoints import read_checkpoint

    obj = read_checkpoint(path)
    meta = obj.get("meta") if isinstance(obj, dict) else None
    return meta if isinstance(meta, dict) and "state_dict" in obj else None


def download(backbone: Backbone, tag: str, spec: dict) -> Path:
    """Fetch a tag's file with its source's own mechanism, or explain where to put it."""
    where = expected_path(spec)
    hint = (
        f"no weights for {backbone.id}.{tag} at {where}; put the file there, "
        "pass --weights PATH, or --weights none"
    )
    if offline() or not (spec.get("url") or spec.get("hf_hub_id")):
        raise WeightsNotFoundError(hint + (" (offline: ZOO_OFFLINE is set)" if offline() else ""))
    try:
        if spec.get("hf_hub_id"):
            return _download_hf(spec)
        return _download_url(spec)
    except Exception as exc:  # no network, a refused host, a bad hash: all end the same
        raise WeightsNotFoundError(
            f"{hint} (download failed: {type(exc).__name__}: {exc})"
        ) from exc


def _download_url(spec: dict) -> Path:
    import socket

    from torch.hub import download_url_to_file

    target = torch_hub_dir() / "checkpoints" / (spec.get("filename") or Path(spec["url"]).name)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = target.stem.rsplit("-", 1)[-1] if "-" in target.stem else None
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        download_url_to_file(spec["url"], str(target), hash_prefix=prefix, progress=True)
    finally:
        socket.setdefaulttimeout(old)
    return target


def _download_hf(spec: dict) -> Path:
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(DOWNLOAD_TIMEOUT_S))
    from huggingface_hub import hf_hub_download

    repo, _, revision = spec["hf_hub_id"].partition("@")
    last = None
    for name in _hf_files(spec):
        try:
            return Path(hf_hub_download(repo, name, revision=revision or None))
        except Exception as exc:  # try the next file name, as timm does
            last = exc
    raise last


def load_into(model: nn.Module, resolved: Resolved, heads: list[str]) -> None:
    """Load ``resolved`` into ``model``: a tag or a run strictly; a user file by transfer,
    requiring every parameter but the heads'."""
    from zoo.checkpoints import read_state_dict

    state = read_state_dict(resolved.path)
    if resolved.tag is not None or resolved.class_names is not None:
        _load_strict(model, state, resolved)
        return
    from zoo.transfer import transfer

    report = transfer(model, state)
    missing = [
        k
        for k in report.missing + list(report.shape_mismatched)
        if not any(k.startswith(h + ".") for h in heads)
    ]
    if missing:
        raise WeightsError(
            f"{resolved.path} does not fit this model: {len(report.loaded)} tensors matched, "
            f"coverage {report.coverage:.1%}, {len(missing)} backbone tensors missing or "
            f"of another shape (first: {missing[0]}); use `zoo transfer` for partial weights"
        )


def _load_strict(model: nn.Module, state: dict, resolved: Resolved) -> None:
    try:
        model.load_state_dict(state, strict=True)
        return
    except RuntimeError as exc:
        error = exc
    filtered = _timm_filter(model, state)
    if filtered is not None:
        try:
            model.load_state_dict(filtered, strict=True)
            return
        except RuntimeError:
            pass
    first = str(error).splitlines()[1:2] or [str(error)]
    raise WeightsError(
        f"{resolved.path} does not match {type(model).__name__}: "
        f"{first[0].strip()}; is it for another architecture?"
    )


def _timm_filter(model: nn.Module, state: dict) -> dict | None:
    """timm's own checkpoint conversion for the model's family, where it has one."""
    import sys

    module = sys.modules.get(type(model).__module__)
    fn = getattr(module, "checkpoint_filter_fn", None)
    if fn is None:
        return None
    try:
        return fn(state, model)
    except Exception:  # a filter that does not apply: report the original mismatch
        return None
