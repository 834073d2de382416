"""Labels from a CSV file (zoo.data._csv): the same split and the same run as class folders,
the screening, and every malformed CSV as one clear line before anything is written."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from images import make_image_folder, write_image, write_not_an_image

import zoo
from zoo.cli import cli
from zoo.data import (
    drop_unreadable,
    embedded_dataset,
    read_label_rows,
    scan_image_folder,
    scan_labels_csv,
)
from zoo.errors import DataError
from zoo.runs import evaluate

FAST = {"weights": "none", "image_size": 32, "batch_size": 32, "workers": 0, "precision": "fp32"}
PER_EPOCH = ("seconds", "train_images_per_s")  # wall-clock figures, never equal twice


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def folder_rows(split, parts=("train", "valid")) -> list[list[str]]:
    """CSV rows (image path, class name, split) for a scanned folder's samples."""
    return [
        [path, split.classes[label], part] for part in parts for path, label in getattr(split, part)
    ]


def test_a_csv_copy_of_the_embedded_dataset_trains_like_its_folders(tiny, tmp_path):
    root = tmp_path / "shapes"  # every third image of the embedded dataset, to stay quick
    for path in sorted(embedded_dataset().glob("*/*/*"))[::3]:
        target = root / path.relative_to(path.parents[2])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    folders = scan_image_folder(root)
    rows = [[str(Path(p).relative_to(root)), *rest] for p, *rest in folder_rows(folders)]
    labels = write_csv(root / "shapes.csv", ["image", "label", "split"], rows)
    from_csv = scan_labels_csv(labels)
    assert (from_csv.classes, from_csv.train, from_csv.valid) == (
        folders.classes,
        folders.train,
        folders.valid,
    )
    options = {**FAST, "epochs": 2, "lr": 0.05, "optimizer": "adam", "seed": 3, "augment": False}
    a = zoo.finetune(tiny, str(root), output=str(tmp_path / "folders"), **options)
    b = zoo.finetune(tiny, labels=str(labels), output=str(tmp_path / "csv"), **options)
    strip = [{k: v for k, v in row.items() if k not in PER_EPOCH} for row in a.metrics]
    assert strip == [{k: v for k, v in row.items() if k not in PER_EPOCH} for row in b.metrics]
    assert b.summary["best_val_acc"] == a.summary["best_val_acc"]
    assert b.summary["best_epoch"] == a.summary["best_epoch"]
    # evaluate takes the CSV's valid rows, and agrees with the valid folder
    by_csv = evaluate(b.run_dir, labels=labels, workers=0)
    assert by_csv["images"] == len(folders.valid) == 50
    assert by_csv["accuracy"] == evaluate(b.run_dir, root / "valid", workers=0)["accuracy"]


def test_without_a_split_column_the_split_is_stratified_like_folders(tmp_path):
    root = make_image_folder(tmp_path / "data", ["a", "b", "c"], per_class=9)
    folders = scan_image_folder(root, val_split=0.25, seed=7)
    rows = [[str(Path(p).relative_to(root)), lab] for p, lab in _named(folders)]
    labels = write_csv(root / "labels.csv", ["image", "label"], rows[::-1])  # order is no cue
    from_csv = scan_labels_csv(labels, val_split=0.25, seed=7)
    assert (from_csv.train, from_csv.valid) == (folders.train, folders.valid)
    assert from_csv.layout == "csv" and not from_csv.multi_label


def _named(split):
    return [(p, split.classes[label]) for p, label in split.train + split.valid]


def test_paths_relative_to_the_csv_or_absolute_and_bad_files_screened(tmp_path):
    data = tmp_path / "data"
    for i in range(3):
        write_image(data / "img" / f"a{i}.png", seed=i)
        write_image(tmp_path / "elsewhere" / f"b{i}.png", seed=10 + i)
    write_not_an_image(data / "img" / "broken.png")
    rows = [[f"img/a{i}.png", "a", "train" if i else "valid"] for i in range(3)]
    rows += [[str(tmp_path / "elsewhere" / f"b{i}.png"), "b", "train" if i else "val"]
             for i in range(3)]  # fmt: skip
    rows += [["img/broken.png", "a", "train"], ["img/gone.png", "b", "train"]]
    split = scan_labels_csv(write_csv(data / "labels.csv", ["image", "label", "split"], rows))
    assert split.classes == ["a", "b"]
    assert str(data / "img" / "a0.png") in [p for p, _ in split.valid]
    split, skipped = drop_unreadable(split)
    assert sorted((Path(p).name, why) for p, why in skipped)[1] == ("gone.png", "file not found")
    assert sorted(Path(p).name for p, _ in skipped) == ["broken.png", "gone.png"]
    assert len(split.train) == 4 and len(split.valid) == 2


def test_multi_label_rows_are_multi_hot_and_may_hold_no_label(tmp_path):
    for i in range(4):
        write_image(tmp_path / f"{i}.png", seed=i)
    rows = [["0.png", "cat|dog"], ["1.png", " dog | cat | dog "], ["2.png", ""], ["3.png", "cat"]]
    labels = write_csv(tmp_path / "tags.csv", ["Image", " Label "], rows)
    assert read_label_rows(labels, multi_label=True)[1].labels == ("dog", "cat")
    split = scan_labels_csv(labels, multi_label=True, val_split=0.5)
    assert split.classes == ["cat", "dog"] and split.multi_label
    got = dict(split.train + split.valid)
    assert got[str(tmp_path / "0.png")] == got[str(tmp_path / "1.png")] == (1.0, 1.0)
    assert got[str(tmp_path / "2.png")] == (0.0, 0.0)
    assert got[str(tmp_path / "3.png")] == (1.0, 0.0)


BAD = {
    "missing column": (
        ["image", "class"],
        [["a0.png", "a"]],
        "has no 'label' column (its header: image, class)",
    ),
    "unknown split": (
        ["image", "label", "split"],
        [["a0.png", "a", "train"], ["b0.png", "b", "test"]],
        "line 3: split 'test' is not train or valid",
    ),
    "missing outside the folder": (
        ["image", "label"],
        [["a0.png", "a"], ["../nowhere/b9.png", "b"]],
        "line 3: image '../nowhere/b9.png' does not exist",
    ),
    "duplicate row": (
        ["image", "label"],
        [["a0.png", "a"], ["b0.png", "b"], ["./a0.png", "b"]],
        "line 4: image '{data}/a0.png' is already on line 2",
    ),
    "empty label": (
        ["image", "label"],
        [["a0.png", "a"], ["b0.png", ""]],
        "line 3: the label is empty",
    ),
    "header only": (["image", "label"], [], "has a header but no rows"),
    "a label with no training image": (
        ["image", "label", "split"],
        [["a0.png", "a", "train"], ["b0.png", "b", "train"], ["a1.png", "c", "valid"]],
        "label 'c' in",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_csv_is_one_clear_line_before_anything_is_written(tiny, tmp_path, case):
    header, rows, message = BAD[case]
    data = tmp_path / "data"
    for name in ("a0", "a1", "b0", "b1"):
        write_image(data / f"{name}.png", seed=len(name))
    labels = write_csv(data / "labels.csv", header, rows)
    out = tmp_path / "run"
    args = ["finetune", tiny, "--labels", str(labels), "--weights", "none", "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert message.format(data=data) in lines[0]
    assert not out.exists()
    with pytest.raises(DataError):
        scan_labels_csv(labels)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--labels", "x.csv", "--data", "."], "--labels FILE.csv stands in for --data"),
        (["--multi-label"], "--multi-label needs --labels FILE.csv"),
        (["--labels", "x.csv", "--threshold", "1.5"], "--threshold must be between 0 and 1"),
        (["--labels", "no-such.csv"], "labels file 'no-such.csv' does not exist"),
    ],
)
def test_labels_options_are_checked_up_front(tiny, tmp_path, args, message):
    result = CliRunner().invoke(cli, ["finetune", tiny, "-o", str(tmp_path / "r"), *args])
    assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "r").exists()


def test_lr_find_takes_a_labels_csv(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    split = scan_image_folder(embedded_dataset())
    labels = write_csv(
        tmp_path / "csv" / "shapes.csv", ["image", "label", "split"], folder_rows(split)
    )
    args = ["lr-find", tiny, "--labels", str(labels), "--weights", "none", "--workers", "0"]
    result = CliRunner().invoke(cli, [*args, "--batch-size", "4", "--steps", "8", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["lrs"]) == len(report["losses"]) > 0
    assert report["lrs"][0] <= report["suggestion"] <= report["lrs"][-1]
