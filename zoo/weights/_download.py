"""Downloading weights, only when the network is allowed (not ``ZOO_OFFLINE=1``), with the
source's own mechanism and hash check, and a bounded wait."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.env import flag
from zoo.errors import WeightsNotFoundError

if TYPE_CHECKING:
    from zoo.registry import Backbone

from zoo.weights._cache import _hf_files, candidates, expected_path, torch_hub_dir

log = logging.getLogger("zoo")

DOWNLOAD_TIMEOUT_S = 30  # a stalled transfer gives up after this long without data
PROBE_TIMEOUT_S = 5  # the host must answer this fast (DNS included) before a download starts
_HASH_IN_NAME = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's rule: resnet18-f37072fd.pth


def offline() -> bool:
    """Whether every network attempt is forbidden (``ZOO_OFFLINE=1``)."""
    return flag("ZOO_OFFLINE")


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
        except Exception as exc:  # not there under this name: try the next one
            last = exc
    raise last
