"""zoo.env: every environment variable read one way (flags, numbers, cache folders)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from images import make_image_folder

from zoo import plugins
from zoo.cli import cli
from zoo.env import cache_home, flag, number, zoo_home
from zoo.errors import ZooError
from zoo.weights import hf_hub_cache, torch_hub_dir


@pytest.mark.parametrize("value", ["", "0", "false", "No", " off ", "FALSE"])
def test_a_flag_is_off_for_empty_zero_and_no(monkeypatch, value):
    monkeypatch.setenv("ZOO_SOME_FLAG", value)
    assert flag("ZOO_SOME_FLAG") is False


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "anything"])
def test_a_flag_is_on_for_any_other_value(monkeypatch, value):
    monkeypatch.setenv("ZOO_SOME_FLAG", value)
    assert flag("ZOO_SOME_FLAG") is True


def test_an_unset_flag_is_off(monkeypatch):
    monkeypatch.delenv("ZOO_SOME_FLAG", raising=False)
    assert flag("ZOO_SOME_FLAG") is False


def test_zoo_no_plugins_0_leaves_plugins_on(with_site, monkeypatch):
    # The old reader took any value, "0" included, as "no plugins".
    monkeypatch.setenv("ZOO_NO_PLUGINS", "0")
    plugins.reload_plugins()
    assert "tinyplug" in [p.name for p in plugins.plugin_infos()]


def test_a_number_is_read_or_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("ZOO_SOME_MB", " 12.5 ")
    assert number("ZOO_SOME_MB") == 12.5
    monkeypatch.setenv("ZOO_SOME_MB", "")
    assert number("ZOO_SOME_MB") is None
    for bad in ("abc", "-1", "nan"):
        monkeypatch.setenv("ZOO_SOME_MB", bad)
        with pytest.raises(ZooError, match=f"ZOO_SOME_MB='{bad}' is not a number of 0 or more"):
            number("ZOO_SOME_MB")


def test_a_bad_feature_cache_mb_is_one_error_line_from_finetune(tiny, tmp_path, monkeypatch):
    data = make_image_folder(tmp_path / "data", ["a", "b"], per_class=(4, 2), layout="train-valid")
    monkeypatch.setenv("ZOO_FEATURE_CACHE_MB", "abc")
    args = [
        *("finetune", tiny, "--data", str(data), "-o", str(tmp_path / "run")),
        *("--epochs", "1", "--weights", "none", "--workers", "0", "--no-augment"),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == (
        "Error: ZOO_FEATURE_CACHE_MB='abc' is not a number of 0 or more; set it to one, or unset it"
    )
    assert not any(line.startswith("Error") for line in lines[:-1])


def _caches_under_xdg(monkeypatch, tmp_path) -> Path:
    for var in ("TORCH_HOME", "HF_HOME", "HF_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


def test_xdg_cache_home_moves_torch_and_hf_caches_as_they_move_them(monkeypatch, tmp_path):
    import torch

    xdg = _caches_under_xdg(monkeypatch, tmp_path)
    assert cache_home() == xdg
    assert torch_hub_dir() == xdg / "torch" / "hub" == Path(torch.hub.get_dir())
    assert hf_hub_cache() == xdg / "huggingface" / "hub"
    # huggingface_hub reads its environment once, at import: ask a fresh process.
    code = "from huggingface_hub import constants; print(constants.HF_HUB_CACHE)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert Path(out.stdout.strip()) == hf_hub_cache()


def test_xdg_cache_home_is_where_zoo_info_looks_for_weights(monkeypatch, tmp_path):
    xdg = _caches_under_xdg(monkeypatch, tmp_path)
    result = CliRunner().invoke(cli, ["info", "resnet18", "--json"])
    assert result.exit_code == 0, result.output
    path = Path(json.loads(result.stdout)["weights_path"])
    assert path.parent == xdg / "torch" / "hub" / "checkpoints"


def test_zoo_home_is_its_own_variable_not_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo"))
    assert zoo_home() == tmp_path / "zoo"
    monkeypatch.delenv("ZOO_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert zoo_home() == Path.home() / ".cache" / "zoo"
