"""Entry-point discovery with real installed distributions."""

from __future__ import annotations

import json
import textwrap

import torch
from conftest import run_zoo

import zoo
from zoo import plugins


def test_example_plugin_is_listed_through_its_entry_point(plugin_site):
    env = {"PYTHONPATH": str(plugin_site)}
    listed = run_zoo("list", "tinyplug:*", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == ["tinyplug:plainnet", "tinyplug:bareseq"]
    shown = json.loads(run_zoo("plugins", "--json", env=env).stdout)
    row = next(r for r in shown if r["name"] == "tinyplug")
    assert row == {
        "name": "tinyplug",
        "distribution": "zoo-tinyplug",
        "version": "0.1.0",
        "builtin": False,
        "backbones": 2,
        "status": "ok",
    }


def test_example_plugin_backbones_create_freeze_and_train(with_site):
    plain = zoo.create("tinyplug:plainnet", num_classes=4, weights=None, freeze_until="block1")
    assert plain.zoo_spec.freeze_points == ["stem", "block1", "block2"]
    bare = zoo.create("bareseq", num_classes=4, weights=None, freeze_until="1")
    assert bare.zoo_spec.heads == ["8"] and bare.zoo_spec.freeze_points == ["0", "1", "3", "4"]
    for model, frozen in ((plain, plain.stem[0].weight), (bare, bare[0].weight)):
        model.train()
        before = frozen.clone()
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
        loss = torch.nn.functional.cross_entropy(
            model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3])
        )
        loss.backward()
        opt.step()
        assert torch.equal(before, frozen) and frozen.grad is None


def test_list_plugins_rows_count_each_plugins_backbones(tiny):
    rows = {row["name"]: row for row in zoo.list_plugins()}
    assert list(rows)[:2] == ["torchvision", "timm"]
    assert rows["torchvision"]["builtin"] is True and rows["torchvision"]["distribution"] == "zoo"
    assert rows["tiny"] == {
        "name": "tiny",
        "distribution": None,
        "version": None,
        "builtin": False,
        "backbones": 1,
        "status": "ok",
    }


def _fake_distribution(site, name, module_source):
    (site / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[zoo]\n{name} = {name}\n")


def test_plugin_that_fails_to_import_leaves_zoo_working(tmp_path):
    _fake_distribution(tmp_path, "brokenplug", "raise ImportError('needs a missing library')\n")
    result = run_zoo("list", "resnet34", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0 and "torchvision:resnet34" in result.stdout
    assert "brokenplug" in result.stderr and "needs a missing library" in result.stderr
    shown = json.loads(run_zoo("plugins", "--json", env={"PYTHONPATH": str(tmp_path)}).stdout)
    row = next(r for r in shown if r["name"] == "brokenplug")
    assert "failed to import: ImportError: needs a missing library" in row["status"]


def test_entry_point_with_misspelt_hook_is_kept_out_loudly(tmp_path):
    _fake_distribution(
        tmp_path,
        "typoplug",
        """
        import zoo

        @zoo.hookimpl
        def register_backbone(register):
            pass
    """,
    )
    result = run_zoo("plugins", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0
    assert "typoplug" in result.stderr and "register_backbone" in result.stderr


def test_zoo_no_plugins_skips_entry_points(with_site, monkeypatch):
    monkeypatch.setenv("ZOO_NO_PLUGINS", "1")
    plugins.reload_plugins()
    assert [p.name for p in plugins.plugin_infos()] == ["torchvision", "timm"]
