"""Weights: choosing a file for a backbone (a tag, a file, a run), finding it in the local
caches, and downloading it when the network is allowed."""

from __future__ import annotations

from zoo.weights._cache import (
    LocalFiles,
    candidates,
    expected_path,
    find_cached,
    hf_hub_cache,
    torch_hub_dir,
)
from zoo.weights._download import download, offline
from zoo.weights._resolve import (
    FILE_SUFFIXES,
    Resolved,
    check_tag,
    chosen_tag,
    resolve,
    resolve_file,
)

__all__ = [
    "FILE_SUFFIXES",
    "LocalFiles",
    "Resolved",
    "candidates",
    "check_tag",
    "chosen_tag",
    "download",
    "expected_path",
    "find_cached",
    "hf_hub_cache",
    "offline",
    "resolve",
    "resolve_file",
    "torch_hub_dir",
]
