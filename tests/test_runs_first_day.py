"""Issue 20's first-day defects in data folders and finished runs: zoo's own output is never a
class, `zoo evaluate` says what it skipped, `zoo predict` skips what it cannot read and takes
folders."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from images import make_image_folder, write_image, write_not_an_image, write_truncated

import zoo
from zoo.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def train(tiny, data, **options):
    options = {"epochs": 1, "image_size": 32, "workers": 0, "weights": None, **options}
    return zoo.finetune(tiny, str(data), **options)


@pytest.fixture
def run(tmp_path, tiny):
    data = make_image_folder(tmp_path / "pets", ["cat", "dog"], (4, 2), layout="train-valid")
    return train(tiny, data, output=str(tmp_path / "run")).run_dir


# --- 5: zoo's own output becomes a class ------------------------------------------------------


def test_training_twice_inside_a_flat_folder_never_makes_the_runs_folder_a_class(
    tmp_path, tiny, monkeypatch
):
    data = make_image_folder(tmp_path / "pets", ["cat", "dog"], 4)
    monkeypatch.chdir(data)
    first = train(tiny, ".")  # default output: ./runs/tinynet-<time>, inside the data
    second = train(tiny, ".")
    assert first.run_dir.parent == second.run_dir.parent == Path("runs")
    assert any(first.run_dir.glob("*.png"))  # its curves, which used to become images
    for result in (first, second):
        config = json.loads((result.run_dir / "config.json").read_text())
        assert config["class_names"] == ["cat", "dog"]


def test_an_output_folder_inside_the_data_is_not_a_class_the_next_time(tmp_path, tiny):
    data = make_image_folder(tmp_path / "pets", ["cat", "dog"], 4)
    train(tiny, data, output=str(data / "out"))
    second = train(tiny, data, output=str(data / "out2"))
    config = json.loads((second.run_dir / "config.json").read_text())
    assert config["class_names"] == ["cat", "dog"]


def test_the_runs_own_empty_output_folder_inside_the_data_is_never_a_class(tmp_path, tiny):
    data = make_image_folder(tmp_path / "pets", ["cat", "dog"], 4)
    (data / "out").mkdir()  # made ahead of the run, still empty when the classes are found
    result = train(tiny, data, output=str(data / "out"))
    assert json.loads((result.run_dir / "config.json").read_text())["class_names"] == ["cat", "dog"]


def test_a_folder_holding_a_run_is_left_out_with_a_line(tmp_path, tiny, capsys):
    from zoo.training import reporter_for

    data = make_image_folder(tmp_path / "pets", ["cat", "dog"], 4)
    train(tiny, data, output=str(data / "runs" / "first"))
    train(tiny, data, output=str(tmp_path / "second"), reporter=reporter_for(sys.stderr))
    assert f"leaving out {data / 'runs'}: it holds a zoo run, not images" in capsys.readouterr().err


# --- 10: evaluate says what it skipped; predict skips and takes folders -------------------


def test_evaluate_names_the_unreadable_files_it_skipped(tmp_path, run):
    valid = tmp_path / "pets" / "valid"
    broken = write_truncated(valid / "cat" / "broken.png")
    result = invoke("evaluate", run, "--data", valid)
    assert result.exit_code == 0, result.output
    assert f"skipped 1 unreadable file: {broken}" in result.stdout
    assert "(4 images)" in result.stdout
    as_json = json.loads(invoke("evaluate", run, "--data", valid, "--json").stdout)
    assert as_json["skipped_files"] == [str(broken)]


def test_predict_skips_an_unreadable_image_and_classifies_the_others(tmp_path, run):
    good = write_image(tmp_path / "a.png")
    bad = write_not_an_image(tmp_path / "b.png")
    result = invoke("predict", run, good, bad, "--top-k", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith(f"{good}: ")
    assert len(result.stdout.splitlines()) == 1
    assert result.stderr.strip() == f"skipping unreadable {bad}: " + (
        "not an image, or in a format PIL cannot read"
    )
    rows = json.loads(invoke("predict", run, good, bad, "--json").stdout)
    assert [r["image"] for r in rows] == [str(good), str(bad)]
    assert rows[0]["top"] and rows[1]["top"] == [] and "PIL" in rows[1]["skipped"]


def test_predict_with_no_readable_image_is_one_error_line(tmp_path, run):
    bad = write_not_an_image(tmp_path / "b.png")
    empty = tmp_path / "c.jpg"
    empty.write_bytes(b"")
    result = invoke("predict", run, bad, empty)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [f"Error: none of the 2 images can be read: {bad}: " + lines[0].split(": ")[-1]]


def test_predict_takes_a_folder_of_images_sorted_and_recursive(tmp_path, run):
    folder = tmp_path / "unsorted"
    for name in ("b.png", "a.jpg", "sub/c.png"):
        write_image(folder / name)
    (folder / "notes.txt").write_text("not an image, not listed")
    result = invoke("predict", run, folder, "--json")
    assert result.exit_code == 0, result.output
    names = [row["image"] for row in json.loads(result.stdout)]
    assert names == [str(folder / "a.jpg"), str(folder / "b.png"), str(folder / "sub" / "c.png")]


def test_predict_on_a_folder_without_images_is_one_error_line(tmp_path, run):
    (tmp_path / "nothing").mkdir()
    result = invoke("predict", run, tmp_path / "nothing")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: no images in folder '{tmp_path / 'nothing'}'")
    assert len(result.stderr.strip().splitlines()) == 1
