"""``zoo lr-find`` on the embedded dataset: at most 100 steps, a picture, a suggestion inside
the range tried, no run directory left behind; its bad ranges refused."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from zoo.cli import cli
from zoo.training._lr_find import smooth, steepest


def test_lr_find_on_the_embedded_dataset(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    png = tmp_path / "lr.png"
    args = ["lr-find", tiny, "--weights", "none", "--workers", "0", "--batch-size", "4"]
    result = CliRunner().invoke(cli, [*args, "--png", str(png), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    lrs, losses = report["lrs"], report["losses"]
    assert 6 <= len(lrs) <= 100 and len(losses) == len(lrs)
    assert lrs == sorted(lrs) and lrs[0] == pytest.approx(1e-7)
    assert report["diverged"] == (len(lrs) < 100)
    assert lrs[0] <= report["suggestion"] <= lrs[-1]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(tmp_path) == ["lr.png"]  # no run directory, no runs/ folder
    text = CliRunner().invoke(cli, [*args, "--steps", "8", "--end-lr", "1e-2"])
    assert text.exit_code == 0, text.output
    assert "8 steps from 1e-07 to 0.01 (the end of the range)" in text.stdout
    assert "suggested learning rate:" in text.stdout and (tmp_path / "lr-find.png").is_file()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--steps", "101"], "--steps must be between 2 and 100"),
        (["--start-lr", "1", "--end-lr", "0.1"], "0 < start < end"),
        (["--label-smoothing", "2"], "--label-smoothing must be in [0, 1)"),
        (["--labels", "tags.csv", "--multi-label"], "does not take --multi-label"),
    ],
)
def test_a_bad_range_is_one_line(tiny, tmp_path, args, words):
    result = CliRunner().invoke(cli, ["lr-find", tiny, "--png", str(tmp_path / "x.png"), *args])
    assert result.exit_code == 1 and result.output.count("Error:") == 1, result.output
    assert words in result.output and not (tmp_path / "x.png").exists()


def test_the_suggestion_is_the_steepest_fall_before_the_minimum():
    lrs = [10.0**e for e in range(-6, 2)]
    losses = [2.3, 2.3, 2.2, 1.6, 1.0, 0.9, 3.0, 9.0]
    smoothed = smooth(losses, beta=0.0)
    assert smoothed == pytest.approx(losses)
    assert steepest(lrs, smoothed) == pytest.approx(1e-3)  # from 2.2 to 1.0 around it
