"""The installed package wins over a `zoo/` folder in the current directory (the clone, seen
from the folder that holds it), for `python -m zoo` and `import zoo` alike."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT


def _clone_shaped(folder):
    """A `zoo/` folder shaped like the clone's top level: its files, its folders left empty."""
    clone = folder / "zoo"
    clone.mkdir()
    for entry in ROOT.iterdir():
        if entry.name.startswith(".") or entry.name == "zoo":
            continue
        if entry.is_dir():
            (clone / entry.name).mkdir()
        else:
            shutil.copy(entry, clone / entry.name)
    return folder


def _run(cwd, *args):
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("shape", ["empty", "clone"])
def test_python_m_zoo_works_from_the_folder_holding_the_clone(tmp_path, shape):
    if shape == "empty":
        (tmp_path / "zoo").mkdir()
    else:
        _clone_shaped(tmp_path)
    helped = _run(tmp_path, "-m", "zoo", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "Usage: zoo" in helped.stdout
    listed = _run(tmp_path, "-m", "zoo", "plugins")
    assert listed.returncode == 0, listed.stderr
    assert "torchvision" in listed.stdout


def test_import_zoo_finds_the_package_not_the_clone_folder(tmp_path):
    _clone_shaped(tmp_path)
    probe = "import zoo, zoo.plugins; print(zoo.__file__); zoo.plugins.load_plugins()"
    done = _run(tmp_path, "-c", probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(ROOT / "zoo" / "__init__.py")
