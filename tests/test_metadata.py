"""Backbone metadata (params, GFLOPs, top-1/5, input size, license): what the sources publish,
what plugins register, what zoo info computes, and zoo list's filters and sort."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT

import zoo
from zoo.cli import cli
from zoo.errors import ListingError
from zoo.registry import parse_count

TIMM_TABLES = Path("/work/shared/data/timm")  # timm's results/ CSVs, where this machine has them
KEYS = ("params", "gflops", "top1", "top5", "input_size", "license")


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def listed(*args: str) -> list[dict]:
    result = invoke("list", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


class MetaPlugin:
    """Backbones with registered metadata, some of it missing."""

    @staticmethod
    def net():
        from torch import nn

        return nn.Sequential(
            nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
        )

    @zoo.hookimpl
    def register_backbones(self, register):
        rows = {
            "small": dict(params=250_000, gflops=0.2, top1=70.5, top5=89.0, license="mit"),
            "mid": dict(params=5_500_000, gflops=1.5, top1=79.0),
            "big": dict(params=30_000_000, gflops=4.0, top1=82.25),
            "unknown": dict(top5=95.0),  # no params, GFLOPs or top-1 published
        }
        for name, fields in rows.items():
            register(name, self.net, input_size=(3, 32, 32), **fields)


@pytest.fixture
def meta():
    from zoo import plugins

    plugins.register(MetaPlugin(), "meta")
    yield "meta"
    plugins.unregister("meta")


# --- what the sources publish -------------------------------------------------------------


def test_torchvision_rows_carry_the_weights_meta():
    from torchvision.models import ResNet50_Weights

    (row,) = listed("resnet50", "--source", "torchvision")
    published = ResNet50_Weights.DEFAULT.meta
    assert row["default_tag"] == "IMAGENET1K_V2"
    assert row["params"] == published["num_params"] == 25557032
    assert row["gflops"] == published["_ops"] and math.isclose(row["gflops"], 4.09, abs_tol=0.01)
    assert row["top1"] == published["_metrics"]["ImageNet-1K"]["acc@1"] == 80.858
    assert row["top5"] == published["_metrics"]["ImageNet-1K"]["acc@5"]
    assert row["input_size"] == [3, 224, 224]


def _results_row(name: str, size: int) -> dict:
    with open(TIMM_TABLES / "results-imagenet.csv", newline="") as f:
        return next(
            r for r in csv.DictReader(f) if r["model"] == name and r["img_size"] == str(size)
        )


@pytest.mark.skipif(not TIMM_TABLES.is_dir(), reason="timm's CSV tables are not on this machine")
def test_timm_rows_carry_the_tables_row_at_the_tags_input_size():
    (row,) = listed("convnext_tiny", "--source", "timm")
    table = _results_row(f"convnext_tiny.{row['default_tag']}", row["input_size"][-1])
    assert row["top1"] == float(table["top1"]) and row["top5"] == float(table["top5"])
    assert row["params"] == round(float(table["param_count"]) * 1e6)
    assert row["gflops"] > 0 and row["license"]


@pytest.mark.skipif(not TIMM_TABLES.is_dir(), reason="timm's CSV tables are not on this machine")
def test_the_shipped_timm_table_is_what_the_script_builds(tmp_path):
    spec = importlib.util.spec_from_file_location("build", ROOT / "scripts/build_timm_metadata.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    shipped = json.loads(script.OUT.read_text())
    assert shipped["results"] == script.read_results(TIMM_TABLES)
    assert shipped["benchmarks"] == script.read_benchmarks(TIMM_TABLES)
    assert "aa4b585" in shipped["source"]


def test_plugin_rows_carry_the_fields_it_registered(meta):
    rows = {r["arch"]: r for r in listed("meta:*")}
    assert rows["small"]["params"] == 250_000 and rows["small"]["license"] == "mit"
    assert rows["small"]["top1"] == 70.5 and rows["small"]["top5"] == 89.0
    assert rows["small"]["input_size"] == [3, 32, 32]
    assert all(rows["unknown"][k] is None for k in ("params", "gflops", "top1", "license"))


def test_a_plugin_field_of_the_wrong_type_keeps_the_plugin_out():
    from zoo import plugins

    class Bad:
        @zoo.hookimpl
        def register_backbones(self, register):
            register("net", MetaPlugin.net, params="lots")

    plugins.register(Bad(), "bad")
    try:
        status = {p["name"]: p["status"] for p in zoo.list_plugins()}["bad"]
        assert "params must be a number" in status
    finally:
        plugins.unregister("bad")


# --- filters and sort -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("30M", 30_000_000), ("300K", 300_000), ("5.5M", 5_500_000), ("1.2G", 1_200_000_000),
     ("25557032", 25557032), ("0.5", 0.5), ("5.5m", 5_500_000)],
)  # fmt: skip
def test_counts_parse_with_units(text, value):
    assert parse_count(text) == value


@pytest.mark.parametrize("text", ["", "M", "3x", "-5M", "0", "nan", "inf"])
def test_counts_that_are_not_positive_numbers_are_refused(text):
    with pytest.raises(ListingError, match="not a positive number"):
        parse_count(text)


def test_filters_leave_out_what_is_beyond_them_and_what_is_unknown(meta):
    def arches(*args):
        return [r["arch"] for r in listed("meta:*", *args)]

    assert arches("--max-params", "300K") == ["small"]
    assert arches("--max-params", "5.5M") == ["small", "mid"]
    assert arches("--max-params", "30000000") == ["small", "mid", "big"]
    assert arches("--max-gflops", "1.5") == ["small", "mid"]
    assert arches("--min-top1", "79") == ["mid", "big"]
    assert arches("--min-top1", "75", "--max-params", "10M") == ["mid"]


def test_sort_orders_best_top1_first_others_smallest_first_unknown_last(meta):
    def arches(key):
        return [r["arch"] for r in listed("meta:*", "--sort", key)]

    assert arches("top1") == ["big", "mid", "small", "unknown"]
    assert arches("params") == ["small", "mid", "big", "unknown"]
    assert arches("gflops") == ["small", "mid", "big", "unknown"]
    assert arches("name") == ["big", "mid", "small", "unknown"]


def test_plain_list_shows_params_gflops_and_top1_columns(meta):
    lines = invoke("list", "meta:*", "--sort", "params").stdout.splitlines()
    assert lines[0].split() == ["id", "params", "GFLOPs", "top-1", "weights"]
    assert lines[1].split()[:4] == ["meta:small", "250.0K", "0.20", "70.50"]
    assert lines[3].split()[:4] == ["meta:big", "30.0M", "4.00", "82.25"]
    assert lines[4].split()[:4] == ["meta:unknown", "-", "-", "-"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [(["--max-params", "lots"], "--max-params 'lots' is not a positive number"),
     (["--max-gflops", "-1"], "--max-gflops '-1' is not a positive number"),
     (["--min-top1", "high"], "--min-top1 'high' is not a positive number")],
)  # fmt: skip
def test_bad_filter_values_are_one_line(args, fragment):
    result = invoke("list", *args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {fragment}; give one like 30M")


def test_an_unknown_sort_key_is_a_usage_error():
    result = invoke("list", "--sort", "speed")
    assert result.exit_code == 2 and "'speed' is not one of" in result.stderr


# --- zoo info ---------------------------------------------------------------------------------


def test_info_shows_the_metadata_and_top1_of_every_tag():
    data = json.loads(invoke("info", "torchvision:mobilenet_v2", "--json").stdout)
    (row,) = listed("mobilenet_v2", "--source", "torchvision")
    assert {k: data[k] for k in KEYS} == {k: row[k] for k in KEYS}
    from torchvision.models import MobileNet_V2_Weights

    assert data["top1_by_tag"] == {
        w.name: w.meta["_metrics"]["ImageNet-1K"]["acc@1"] for w in MobileNet_V2_Weights
    }
    text = invoke("info", "torchvision:mobilenet_v2").stdout
    assert "IMAGENET1K_V1 (71.878)" in text and f"top-1 {row['top1']:.3f}" in text
    tag = json.loads(invoke("info", "mobilenet_v2.IMAGENET1K_V1", "--json").stdout)
    assert tag["top1"] == 71.878 and tag["top1"] != data["top1"]


def test_info_counts_what_nobody_published_and_list_then_knows_it(meta):
    assert listed("meta:unknown")[0]["gflops"] is None
    data = json.loads(invoke("info", "meta:unknown", "--json").stdout)
    params = 3 * 4 * 9 + 4 + 4 * 3 + 3
    assert data["params"] == data["num_params"] == params
    flops = 30 * 30 * 4 * 27 + 4 * 3  # conv at 32 px (no padding), then the linear head
    assert math.isclose(data["gflops"], flops / 1e9, rel_tol=1e-3)
    (row,) = listed("meta:unknown")
    assert row["params"] == params and row["gflops"] == data["gflops"] and row["top5"] == 95.0
    assert [r["arch"] for r in listed("meta:*", "--max-params", "1K")] == ["unknown"]


@pytest.mark.parametrize(
    ("value", "text"), [(4.089, "4.09"), (0.2, "0.20"), (0.0013, "0.0013"), (None, "-")]
)
def test_gflops_show_tiny_models_as_more_than_zero(value, text):
    from zoo.cli._backbones import gflops_text

    assert gflops_text(value) == text
