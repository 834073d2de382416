"""The environment variables zoo reads, read one way: flags, numbers and cache folders.

``ZOO_OFFLINE``, ``ZOO_NO_PLUGINS``: a flag is on for any value but empty, ``0``, ``false``,
``no`` or ``off`` (so ``ZOO_NO_PLUGINS=0`` leaves plugins on).
``ZOO_HOME``: zoo's own files (default ``~/.cache/zoo``).
``ZOO_FEATURE_CACHE_MB``: the RAM the caches may take, in MB.
``XDG_CACHE_HOME``: where torch's and Hugging Face's caches are, unless ``TORCH_HOME`` and
``HF_HOME`` say otherwise (default ``~/.cache``).
"""

from __future__ import annotations

import os
from pathlib import Path

from zoo.errors import ZooError

_OFF = ("", "0", "false", "no", "off")


def flag(name: str) -> bool:
    """Whether the flag ``name`` is set to anything but an 'off' value.

    >>> os.environ["ZOO_OFFLINE"] = "1"; flag("ZOO_OFFLINE")
    True
    """
    return os.environ.get(name, "").strip().lower() not in _OFF


def number(name: str) -> float | None:
    """The number in ``name``, None when unset or empty; a ZooError naming the variable when
    it is not a number of at least 0."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise ZooError(f"{name}={text!r} is not a number of 0 or more; set it to one, or unset it")
    return value


def cache_home() -> Path:
    """``$XDG_CACHE_HOME``, else ``~/.cache``: where torch and Hugging Face keep their caches
    when ``TORCH_HOME`` and ``HF_HOME`` are unset (zoo's own files go to ``zoo_home()``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()


def zoo_home() -> Path:
    """Where zoo keeps its own files: ``$ZOO_HOME``, default ``~/.cache/zoo``."""
    home = os.environ.get("ZOO_HOME")
    return Path(home or Path.home() / ".cache" / "zoo").expanduser()
