"""Metadata computed on this machine where no source publishes it: params and GFLOPs counted
on the meta device by ``zoo info`` and ``zoo compare``, kept in ``$ZOO_HOME/computed.json``
so that later listings can filter and sort on them without building anything.

The file is thrown away with the backbone index (when installed distributions change);
backbones of plugins registered in-process are kept in memory only.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING

from zoo.env import zoo_home
from zoo.registry import _index as index

if TYPE_CHECKING:
    from zoo.registry._registry import Backbone

_memory: dict[str, dict] = {}
_loaded_from: str | None = None  # the ZOO_HOME the memory was read from


def _path():
    return zoo_home() / "computed.json"


def entry_name(backbone_id: str, tag: str | None) -> str:
    return f"{backbone_id}.{tag}" if tag else backbone_id


def _load() -> dict[str, dict]:
    global _loaded_from
    if _loaded_from != str(_path()):
        _memory.clear()
        _loaded_from = str(_path())
        with contextlib.suppress(OSError, ValueError, KeyError):
            data = json.loads(_path().read_text())
            if data["fingerprint"] == index.fingerprint():
                _memory.update(data["rows"])
    return _memory


def get(backbone_id: str, tag: str | None) -> dict:
    """What was computed for this backbone and tag (``params``, ``gflops``), or {}."""
    return _load().get(entry_name(backbone_id, tag), {})


def put(backbone: Backbone, tag: str | None, values: dict) -> None:
    """Remember ``values``; on disk too for a plugin that is installed, not registered
    in-process (whose code may change at any time)."""
    keep = index.plugin_key(backbone.source) is not None
    rows = _load()
    values = {k: v for k, v in values.items() if v is not None}
    rows[entry_name(backbone.id, tag)] = {**values, "kept": keep}
    kept = {name: row for name, row in rows.items() if row.get("kept")}
    if not keep:
        return
    from zoo.files import atomic_write_bytes

    data = {"fingerprint": index.fingerprint(), "rows": kept}
    with contextlib.suppress(OSError):  # a read-only home only costs the next computation
        atomic_write_bytes(_path(), json.dumps(data).encode())
