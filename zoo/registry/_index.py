"""The backbone index: plugins' registered rows kept in ``$ZOO_HOME/index.json``.

Listing timm's 1,300 architectures means importing timm (seconds); the index keeps the rows
so ``zoo list`` does not. It is thrown away whenever the set of installed distributions
changes (or zoo's built-in plugins do), and ``zoo list --refresh`` rebuilds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from pathlib import Path

from zoo import plugins
from zoo.env import zoo_home

FORMAT = 2  # bump when the row layout changes


def index_path() -> Path:
    return zoo_home() / "index.json"


def fingerprint() -> str:
    """A hash of every installed distribution's name and version, and of zoo's built-ins."""
    names = []
    for entry in _installed_paths():
        try:
            names += [
                n for n in os.listdir(entry or ".") if n.endswith((".dist-info", ".egg-info"))
            ]
        except OSError:
            continue
    builtins = Path(__file__).parent.parent / "default_plugins"
    files = sorted([*builtins.glob("*.py"), *builtins.glob("*.json")])  # code and its tables
    stamps = [f"{p.name}:{p.stat().st_mtime_ns}" for p in files]
    # A set: a folder on the path twice (python -m from the clone) lists nothing new.
    return hashlib.sha256("\n".join(sorted(set(names)) + stamps).encode()).hexdigest()[:16]


def _installed_paths() -> list[str]:
    """sys.path without the current folder that ``python -m zoo`` or ``-c`` put first, unless
    it is on the path for good too: otherwise a folder holding a clone's ``zoo.egg-info``
    would throw the index away (and import timm to rebuild it) whenever zoo starts elsewhere."""
    first, *rest = sys.path or [""]
    started_here = not sys.flags.safe_path and first in ("", os.getcwd())
    return rest if started_here and first not in rest else [first, *rest]


def plugin_key(source: str) -> str | None:
    """What a plugin's cached rows are valid for; None for plugins that are never cached."""
    info = plugins.plugin_info(source)
    if info is None or info.error:
        return None
    if info.builtin:
        return f"builtin:{source}"
    if info.distribution:
        return f"{info.distribution}=={info.version}"
    return None  # registered in-process: its code may change at any time


class Index:
    """The loaded index file; ``save`` writes it back only if something changed."""

    def __init__(self, data: dict) -> None:
        self.data = data
        self.dirty = False

    def rows(self, source: str, key: str) -> list[dict] | None:
        entry = self.data["plugins"].get(source)
        return entry["rows"] if entry and entry["key"] == key else None

    def put(self, source: str, key: str, rows: list[dict]) -> None:
        self.data["plugins"][source] = {"key": key, "rows": rows}
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        from zoo.files import atomic_write_bytes

        with contextlib.suppress(OSError):  # a read-only home only costs speed
            atomic_write_bytes(index_path(), json.dumps(self.data).encode())
        self.dirty = False


def load() -> Index:
    """The index on disk, or an empty one if it is missing, stale or unreadable."""
    stamp = fingerprint()
    try:
        data = json.loads(index_path().read_text())
        if data.get("format") == FORMAT and data.get("fingerprint") == stamp:
            return Index(data)
    except (OSError, ValueError):
        pass
    return Index({"format": FORMAT, "fingerprint": stamp, "plugins": {}})


def clear() -> None:
    """Forget every cached row; the next listing asks the plugins again."""
    index_path().unlink(missing_ok=True)
