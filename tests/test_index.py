"""The backbone index: zoo list without importing timm, rebuilt when installs change."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from conftest import run_zoo

from zoo.registry import _index as index

PROBE = (
    "import sys, zoo; rows = zoo.list_backbones(['resnet34']); "
    "print(len(rows), 'timm' in sys.modules, 'torch' in sys.modules)"
)


def probe(env=None):
    import os
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return out.stdout.split()


def test_listing_uses_the_index_and_not_timm(tmp_path):
    env = {"ZOO_HOME": str(tmp_path / "zoo")}
    assert probe(env) == ["2", "True", "True"]  # first run builds the index
    assert (tmp_path / "zoo" / "index.json").is_file()
    assert probe(env) == ["2", "False", "False"]  # then neither timm nor torch is imported


def test_index_is_rebuilt_when_installed_distributions_change(tmp_path):
    env = {"ZOO_HOME": str(tmp_path / "zoo")}
    probe(env)
    site = tmp_path / "site"
    (site / "newdist-1.0.dist-info").mkdir(parents=True)
    assert probe({**env, "PYTHONPATH": str(site)}) == ["2", "True", "True"]


def test_refresh_rebuilds(tmp_path):
    env = {"ZOO_HOME": str(tmp_path / "zoo")}
    probe(env)
    result = run_zoo("list", "--refresh", "resnet34", env=env)
    assert result.returncode == 0 and "timm:resnet34" in result.stdout


def test_unreadable_index_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    (tmp_path / "index.json").write_text("{not json")
    assert index.load().data["plugins"] == {}


def test_editing_a_built_in_plugin_invalidates_the_index():
    plugin = Path(index.__file__).parent.parent / "default_plugins" / "timm.py"
    before, stat = index.fingerprint(), plugin.stat()
    try:
        os.utime(plugin, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert index.fingerprint() != before
    finally:
        os.utime(plugin, ns=(stat.st_atime_ns, stat.st_mtime_ns))
