from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner
from conftest import run_zoo

from zoo.cli import cli
from zoo.training import TrainConfig

INFO_KEYS = {
    "id",
    "source",
    "arch",
    "num_params",
    "input_size",
    "mean",
    "std",
    "head",
    "freeze_points",
    "tags",
    "default_tag",
    "cached",
    "weights_path",
    "also",
}


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_help_and_import_do_not_import_torch():
    code = (
        "import sys, zoo, zoo.cli; from click.testing import CliRunner; "
        "CliRunner().invoke(zoo.cli.cli, ['--help']); "
        "print(sorted(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_command_has_help_with_an_example():
    for command in cli.commands:
        result = invoke(command, "--help")
        assert result.exit_code == 0 and f"zoo {command}" in result.output, command


def test_list_json_rows():
    rows = json.loads(invoke("list", "resnet34", "--json").output)
    assert [r["id"] for r in rows] == ["torchvision:resnet34", "timm:resnet34"]


def test_list_text():
    result = invoke("list", "resnet34")
    assert "torchvision:resnet34" in result.output and "IMAGENET1K_V1" in result.output


def test_list_with_a_source_no_package_provides_is_one_clear_line():
    result = invoke("list", "--source", "bogus")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip() == "Error: unknown source 'bogus'; sources: torchvision, timm"
    assert invoke("list", "--source", "timm", "resnet34").exit_code == 0


def test_info_json_has_the_contract_keys():
    data = json.loads(invoke("info", "resnet34", "--json").output)
    assert set(data) >= INFO_KEYS
    assert data["freeze_points"][-1] == "layer4"
    assert data["weights_path"].endswith("hub/checkpoints/resnet34-b627a593.pth")


def test_info_text():
    result = invoke("info", "timm:convnext_tiny")
    assert "head:          head.fc (768 -> 1000)" in result.output


def test_plugins_json():
    rows = json.loads(invoke("plugins", "--json").output)
    assert [(r["name"], r["status"]) for r in rows[:2]] == [("torchvision", "ok"), ("timm", "ok")]
    assert rows[1]["backbones"] > 1000


def test_plugins_text_renders_the_library_rows(tiny):
    lines = invoke("plugins").output.splitlines()
    assert lines[0].split()[:2] == ["torchvision", "zoo"]
    assert lines[-1].split() == ["tiny", "-", "1", "backbones", "ok"]


def test_finetune_options_take_their_choices_and_defaults_from_trainconfig():
    params = {p.name: p for p in cli.commands["finetune"].params}
    defaults = TrainConfig()
    for name, choices in TrainConfig.CHOICES.items():
        assert tuple(params[name].type.choices) == choices
    for name in ("epochs", "batch_size", "seed", "step_size", "device", "optimizer"):
        assert params[name].show_default == str(getattr(defaults, name)), name
    assert params["lr"].show_default == "0.001" and params["weight_decay"].show_default == "0"
    # None: finetune passes on only what was typed; a resumed run reads the rest.
    options = [p for p in params.values() if p.name not in ("name", "resume", "config")]
    assert {p.name for p in options} <= set(defaults.to_dict())
    assert all(p.default is None for p in options)
    assert all(p.opts[-1] == TrainConfig.flag(p.name) for p in options if not p.secondary_opts)


def test_a_choice_outside_trainconfigs_is_refused_listing_them():
    result = CliRunner().invoke(cli, ["finetune", "tiny:tinynet", "--optimizer", "lamb"])
    assert result.exit_code == 2
    assert "'lamb' is not one of 'sgd', 'adam', 'adamw', 'rmsprop'" in result.stderr


def test_unknown_backbone_is_one_line_without_traceback():
    result = run_zoo("info", "resnet43")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: unknown backbone 'resnet43'; did you mean resnet34,")


def test_debug_shows_the_traceback():
    result = run_zoo("--debug", "info", "resnet43")
    assert result.returncode == 1 and "Traceback" in result.stderr
