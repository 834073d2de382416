"""Finding weights: a tag in the local caches, a file, or a zoo run; loading them safely.

Local first: torchvision's files in ``$TORCH_HOME/hub/checkpoints``, timm's in the Hugging
Face cache (or the torch hub cache), plugin files where the plugin says. A download happens
only when the network is allowed (not ``ZOO_OFFLINE=1``), with the source's own mechanism
and hash check, and a bounded wait.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import WeightsError, WeightsNotFoundError

if TYPE_CHECKING:
    from torch import nn

    from zoo.registry import Backbone

log = logging.getLogger("zoo")

FILE_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt")
DOWNLOAD_TIMEOUT_S = 30  # a stalled transfer gives up after this long without data
PROBE_TIMEOUT_S = 5  # the host must answer this fast (DNS included) before a download starts
_HASH_IN_NAME = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's rule: resnet18-f37072fd.pth


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
    _sha256: str | None = None

    def identity(self) -> dict:
        """What config.json records about these weights."""
        out = {"tag": self.tag, "path": str(self.path), "sha256": self.sha256()}
        if self.build_kwargs:  # so a run of googlenet is rebuilt with transform_input
            out["build_kwargs"] = dict(self.build_kwargs)
        return out

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
    if text != "default" and text.lstrip(".") in backbone.weights:
        return _resolve_tag(backbone, text.lstrip("."))
    if text == "default":
        chosen = tag or backbone.default_tag
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


def check_tag(backbone: Backbone, tag: str) -> dict:
    """The weights spec of ``tag``; a WeightsError listing the tags when there is none."""
    if tag not in backbone.weights:
        tags = ", ".join(backbone.tags[:8]) or "none"
        raise WeightsError(f"{backbone.id} has no weights tagged '{tag}'; tags: {tags}")
    return backbone.weights[tag]


def _resolve_tag(backbone: Backbone, tag: str) -> Resolved:
    spec = check_tag(backbone, tag)
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
        run=meta,
    )


def _run_meta(path: Path) -> dict | None:
    """A zoo ``best.pt``'s meta dict, or None for any other file."""
    if path.suffix not in (".pt", ".pth"):
        return None
    from zoo.checkpoints import read_checkpoint

    obj = read_checkpoint(path)
    meta = obj.get("meta") if isinstance(obj, dict) else None
    return meta if isinstance(meta, dict) and "state_dict" in obj else None


def _for_backbone(backbone: Backbone, resolved: Resolved) -> Resolved:
    """Complete a file's Resolved with what only the backbone can tell."""
    if resolved.run is None:
        resolved.num_classes = _file_num_classes(backbone, resolved.path)
        return resolved
    saved_id = resolved.run.get("id")
    if saved_id and saved_id != backbone.id:
        raise WeightsError(
            f"{resolved.path} is a run of {saved_id}, not {backbone.id}; create {saved_id} "
            "from it, or move its weights with `zoo transfer`"
        )
    resolved.build_kwargs = _run_build_kwargs(backbone, resolved)
    return resolved


def _file_num_classes(backbone: Backbone, path: Path) -> int | None:
    """The number of classes a plain weights file's head has, when that head fits the arch.

    So that a file saved from a 10-class model gives a 10-class model, not a random head.
    """
    from zoo.checkpoints import read_state_dict
    from zoo.models import build_structure, describe

    state = read_state_dict(path)  # first: a bad file fails before anything is built
    model = build_structure(backbone)
    head = describe(model, backbone).head
    want = getattr(model.get_submodule(head), "weight", None)
    have = state.get(f"{head}.weight")
    if want is None or have is None or have.shape[1:] != want.shape[1:]:
        return None
    return int(have.shape[0])


def _run_build_kwargs(backbone: Backbone, resolved: Resolved) -> dict:
    """The factory arguments a run's model was built with (googlenet's transform_input)."""
    meta = resolved.run or {}
    if isinstance(meta.get("build_kwargs"), dict):
        return dict(meta["build_kwargs"])
    try:
        config = json.loads((resolved.path.parent / "config.json").read_text())
        weights = dict(config.get("weights") or {})
    except (OSError, ValueError, TypeError, AttributeError):
        return {}
    if isinstance(weights.get("build_kwargs"), dict):
        return dict(weights["build_kwargs"])
    spec = backbone.weights.get(str(weights.get("tag")))
    return dict((spec or {}).get("build_kwargs") or {})


def _missing_hint(backbone: Backbone, tag: str, spec: dict) -> str:
    where = str(expected_path(spec))
    if spec.get("hf_hub_id"):
        where += f" (Hugging Face repo {spec['hf_hub_id']}, with refs/main naming <revision>)"
        if spec.get("url"):
            where += f" or {candidates(spec)[-1]}"
    return (
        f"no weights for {backbone.id}.{tag} at {where}; put the file there, "
        "pass --weights PATH, or --weights none"
    )


def download(backbone: Backbone, tag: str, spec: dict) -> Path:
    """Fetch a tag's file with its source's own mechanism, or explain where to put it."""
    hint = _missing_hint(backbone, tag, spec)
    if offline():
        raise WeightsNotFoundError(hint + " (offline: ZOO_OFFLINE is set, nothing downloaded)")
    if not (spec.get("url") or spec.get("hf_hub_id")):
        raise WeightsNotFoundError(hint)
    try:
        if spec.get("hf_hub_id"):
            return _download_hf(spec)
        return _download_url(spec)
    except Exception as exc:  # no network, a refused host, a bad hash: all end the same
        reason = (str(exc).strip().splitlines() or [""])[0][:160]
        raise WeightsNotFoundError(
            f"{hint} (download failed: {type(exc).__name__}: {reason})"
        ) from exc


def _probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise OSError unless the host of ``url`` (or its proxy) accepts a connection within
    ``timeout``; socket timeouts do not bound DNS look-ups, this does."""
    import socket
    import threading
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    outcome: list[OSError | None] = []

    def connect() -> None:
        try:
            socket.create_connection((parts.hostname, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise TimeoutError(f"{parts.hostname} did not answer within {timeout:g} s")
    if outcome[0] is not None:
        raise outcome[0]


def _download_url(spec: dict) -> Path:
    import socket

    from torch.hub import download_url_to_file

    target = torch_hub_dir() / "checkpoints" / (spec.get("filename") or Path(spec["url"]).name)
    _probe(spec["url"])
    target.parent.mkdir(parents=True, exist_ok=True)
    match = _HASH_IN_NAME.search(target.name)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        download_url_to_file(
            spec["url"], str(target), hash_prefix=match.group(1) if match else None, progress=True
        )
    finally:
        socket.setdefaulttimeout(old)
    return target


def _download_hf(spec: dict) -> Path:
    from huggingface_hub import constants, hf_hub_download

    repo, _, revision = spec["hf_hub_id"].partition("@")
    if not constants.HF_HUB_OFFLINE:  # huggingface_hub refuses at once by itself then
        _probe(constants.ENDPOINT)
    last = None
    for name in _hf_files(spec):
        try:
            return Path(
                hf_hub_download(
                    repo, name, revision=revision or None, etag_timeout=DOWNLOAD_TIMEOUT_S
                )
            )
        except Exception as exc:  # try the next file name, as timm does
            last = exc
    raise last


def load_into(model: nn.Module, resolved: Resolved, heads: list[str]) -> None:
    """Load ``resolved`` into ``model``: a tag or a run strictly; a user file by transfer,
    requiring every parameter outside the heads (and auxiliary head branches)."""
    from zoo.checkpoints import read_state_dict

    state = read_state_dict(resolved.path)
    if resolved.tag is not None or resolved.run is not None:
        _load_strict(model, state, resolved, heads)
    else:
        _load_fitting(model, state, resolved, heads)


def _head_prefixes(heads: list[str]) -> tuple[str, ...]:
    # An auxiliary head is a whole branch (googlenet's aux1), all of it optional in a file.
    return tuple(h + "." for h in heads[:1]) + tuple(h.split(".")[0] + "." for h in heads[1:])


def _load_fitting(model: nn.Module, state: dict, resolved: Resolved, heads: list[str]) -> None:
    from zoo.transfer import transfer

    report = transfer(model, state)
    missing = [
        k
        for k in report.missing + list(report.shape_mismatched)
        if not k.startswith(_head_prefixes(heads))
    ]
    if missing:
        raise WeightsError(
            f"{resolved.path} does not fit {type(model).__name__}: {len(report.loaded)} tensors "
            f"matched, coverage {report.coverage:.1%}, {len(missing)} backbone tensors missing "
            f"or of another shape (first: {missing[0]}); is it for another architecture? "
            "Use `zoo transfer` for partial weights"
        )


def _load_strict(model: nn.Module, state: dict, resolved: Resolved, heads: list[str]) -> None:
    try:
        model.load_state_dict(state, strict=True)
        return
    except RuntimeError as exc:
        error = exc
    for candidate in (_timm_filter(model, state), state):
        if candidate is not None and _load_headless(model, candidate, heads):
            return
    first = str(error).splitlines()[1:2] or [str(error)]
    raise WeightsError(
        f"{resolved.path} does not match {type(model).__name__}: "
        f"{first[0].strip()}; is it for another architecture?"
    )


def _load_headless(model: nn.Module, state: dict, heads: list[str]) -> bool:
    """Load ``state`` if it fits exactly or lacks only the heads (feature-only weights, such
    as timm's ``num_classes=0`` tags); those heads are then freshly initialised."""
    from zoo.heads import adapt_head, head_features

    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    fits = all(k in expected and expected[k].shape == v.shape for k, v in state.items())
    if not fits or any(not k.startswith(_head_prefixes(heads)) for k in missing):
        return False
    model.load_state_dict(state, strict=False)
    prefixes = _head_prefixes(heads)
    fresh = [
        h for h, p in zip(heads, prefixes, strict=True) if any(k.startswith(p) for k in missing)
    ]
    for head in fresh:
        adapt_head(model, head, head_features(model, head)[1])
    if fresh:
        log.warning("the weights have no classifier; %s freshly initialised", ", ".join(fresh))
    return True


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
