"""Choosing weights: a tag in the local caches, a file, or a zoo run.

Local first: the torch hub cache (``$TORCH_HOME/hub/checkpoints``), the Hugging Face cache,
plugin files where the plugin says. Choosing never builds a model: what a file holds is read
at most once, here for a run's ``best.pt`` (its meta), and handed to whoever loads it."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo import checkpoints
from zoo.errors import WeightsError, WeightsNotFoundError
from zoo.files import sha256

if TYPE_CHECKING:
    from torch import Tensor

    from zoo.registry import Backbone

from zoo.weights._cache import find_cached
from zoo.weights._download import download

log = logging.getLogger("zoo")

FILE_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt")


@dataclass
class Resolved:
    """Weights chosen for a backbone: where they are and what they are."""

    path: Path  # the file to read
    tag: str | None = None  # the weights tag, None for a user file
    spec: dict = field(default_factory=dict)  # the tag's spec, or a run's preprocessing
    num_classes: int | None = None  # the head size the file was saved with, when known
    class_names: list[str] | None = None  # a zoo run's classes
    build_kwargs: dict = field(default_factory=dict)  # extra factory arguments
    run: dict | None = None  # a zoo run's meta (best.pt), None for any other file
    checkpoint: Any = field(default=None, repr=False, compare=False)  # what was read, until loaded
    provenance: dict | None = None  # what zoo transfer recorded in the file, if it wrote it
    _sha256: str | None = None

    def identity(self) -> dict:
        """What config.json records about these weights."""
        out = {"tag": self.tag, "path": str(self.path), "sha256": self.sha256()}
        if self.build_kwargs:  # so a run of googlenet is rebuilt with transform_input
            out["build_kwargs"] = dict(self.build_kwargs)
        if self.provenance:  # a file zoo transfer wrote: where its tensors came from
            out["provenance"] = dict(self.provenance)
        return out

    def read_state(self) -> dict[str, Tensor]:
        """The file's tensors, unwrapped; the file is read here unless resolving already read
        it, and what was read is handed over, not kept (the model holds the weights now).

        >>> state = resolve_file(Path("runs/resnet34-20261122-101500")).read_state()
        """
        checkpoint, self.checkpoint = self.checkpoint, None
        if checkpoint is None:
            checkpoint = checkpoints.read_checkpoint(self.path)
        return checkpoints.extract_state_dict(checkpoint, name=str(self.path))

    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = sha256(self.path)
        return self._sha256


def resolve(
    backbone: Backbone, weights: str | os.PathLike | Resolved | None, tag: str | None = None
) -> Resolved | None:
    """Turn a ``weights`` argument into a file to load (None: random initialisation).

    ``weights`` may also be what ``resolve_file`` gave (a run whose best.pt was read once);
    it is then checked against ``backbone``.

    >>> resolve(backbone, "default", None).path
    PosixPath('/root/.cache/torch/hub/checkpoints/resnet34-b627a593.pth')
    """
    if isinstance(weights, Resolved):
        return _for_backbone(backbone, weights)
    if weights is None or str(weights).lower() == "none":
        return None
    text = str(weights)
    if text != "default" and text.lstrip(".") in backbone.weights:
        return _resolve_tag(backbone, text.lstrip("."))
    if text == "default":
        chosen = chosen_tag(backbone, tag)
        if chosen is None:
            raise WeightsNotFoundError(
                f"{backbone.id} has no published weights; pass --weights PATH or --weights none"
            )
        return _resolve_tag(backbone, chosen)
    if text and _looks_like_path(text):
        return _for_backbone(backbone, resolve_file(Path(text).expanduser()))
    tags = ", ".join(backbone.tags[:8]) or "none"
    raise WeightsError(
        f"unknown weights '{text}' for {backbone.id}; tags: {tags}; "
        "or pass a file (.pth, .pt, .bin, .safetensors), a run directory, or none"
    )


def _looks_like_path(text: str) -> bool:
    return os.sep in text or text.endswith(FILE_SUFFIXES) or Path(text).expanduser().exists()


def chosen_tag(backbone: Backbone, tag: str | None = None) -> str | None:
    """The tag default weights mean: the one the name gave (``resnet34.a1_in1k``), else the
    backbone's first; None when it has none.

    >>> chosen_tag(backbone, None)
    'IMAGENET1K_V1'
    """
    return tag or backbone.default_tag


def check_tag(backbone: Backbone, tag: str) -> dict:
    """The weights spec of ``tag``; a WeightsError listing the tags when there is none."""
    if tag not in backbone.weights:
        tags = ", ".join(backbone.tags[:8]) or "none"
        raise WeightsError(f"{backbone.id} has no weights tagged '{tag}'; tags: {tags}")
    return backbone.weights[tag]


def _resolve_tag(backbone: Backbone, tag: str) -> Resolved:
    spec = check_tag(backbone, tag)
    path = find_cached(spec) or download(backbone, tag, spec)
    build_kwargs = dict(spec.get("build_kwargs") or {})
    return Resolved(path, tag, spec, spec.get("num_classes"), build_kwargs=build_kwargs)


def resolve_file(path: Path) -> Resolved:
    """A weights file, a zoo run directory, or a run's ``best.pt``."""
    if path.is_dir() and (path / "zoo.json").is_file() and not (path / "best.pt").is_file():
        return _hf_folder(path)
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
    checkpoint = _read_torch_file(path)
    meta = _run_meta(checkpoint)
    if meta is None:
        known = checkpoint is not None or path.suffix == ".safetensors"  # nothing read twice
        provenance = checkpoints.read_provenance(path, checkpoint) if known else None
        return Resolved(path, checkpoint=checkpoint, provenance=provenance)
    return Resolved(
        path,
        spec=dict(meta.get("preprocessing") or {}),
        num_classes=meta.get("num_classes"),
        class_names=meta.get("class_names"),
        run=meta,
        checkpoint=checkpoint,
    )


def _hf_folder(path: Path) -> Resolved:
    """A folder ``zoo export --format hf`` wrote: zoo.json holds the run's meta."""
    try:
        meta = json.loads((path / "zoo.json").read_text())
    except ValueError as exc:
        raise WeightsError(f"{path / 'zoo.json'} is damaged ({exc}); export again") from None
    return Resolved(
        path / "model.safetensors",
        spec=dict(meta.get("preprocessing") or {}),
        num_classes=meta.get("num_classes"),
        class_names=meta.get("class_names"),
        build_kwargs=dict(meta.get("build_kwargs") or {}),
        run=meta,
    )


def _read_torch_file(path: Path) -> Any:
    """A ``.pt``/``.pth`` file's contents (a zoo run's best.pt is one), else None: read now, once,
    so that a bad file fails before anything is built."""
    if path.suffix not in (".pt", ".pth"):
        return None
    return checkpoints.read_checkpoint(path)


def _run_meta(checkpoint: Any) -> dict | None:
    """A zoo ``best.pt``'s meta dict, or None for any other file."""
    meta = checkpoint.get("meta") if isinstance(checkpoint, dict) else None
    return meta if isinstance(meta, dict) and "state_dict" in checkpoint else None


def _for_backbone(backbone: Backbone, resolved: Resolved) -> Resolved:
    """Check a file's Resolved against the backbone; complete a run's with how it was built.
    (A plain file's head size is read from its tensors when the model is built.)"""
    if resolved.run is None:
        return resolved
    saved_id = resolved.run.get("id")
    if saved_id and saved_id != backbone.id:
        raise WeightsError(
            f"{resolved.path} is a run of {saved_id}, not {backbone.id}; create {saved_id} "
            "from it, or move its weights with `zoo transfer`"
        )
    resolved.build_kwargs = _run_build_kwargs(backbone, resolved)
    return resolved


def _run_build_kwargs(backbone: Backbone, resolved: Resolved) -> dict:
    """The factory arguments a run's model was built with (googlenet's transform_input)."""
    meta = resolved.run or {}
    if isinstance(meta.get("build_kwargs"), dict):
        return dict(meta["build_kwargs"])
    try:
        config = json.loads((resolved.path.parent / "config.json").read_text(encoding="utf-8"))
        weights = dict(config.get("weights") or {})
    except (OSError, ValueError, TypeError, AttributeError):
        return {}
    if isinstance(weights.get("build_kwargs"), dict):
        return dict(weights["build_kwargs"])
    spec = backbone.weights.get(str(weights.get("tag")))
    return dict((spec or {}).get("build_kwargs") or {})
