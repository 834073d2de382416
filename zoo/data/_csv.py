"""Labels from a CSV file (``--labels FILE.csv``): columns ``image`` and ``label``, and
optionally ``split`` (``train`` or ``valid``/``val``). An image path is relative to the CSV's
folder, or absolute. With ``multi_label`` a label field holds any number of labels separated
by ``|`` (an empty field: no label), and a sample's label is a multi-hot tuple.

    >>> split = scan_labels_csv("pets/labels.csv", val_split=0.2, seed=0)
    >>> split = scan_labels_csv("photos/tags.csv", multi_label=True)
    >>> split.train[0]
    ('photos/img/0001.jpg', (1.0, 0.0, 1.0))
"""

from __future__ import annotations

import csv
import os
import random
from dataclasses import dataclass
from pathlib import Path

from zoo.data._folders import DataSplit, _names, _valid_count
from zoo.errors import DataError

SPLITS = {"train": "train", "valid": "valid", "val": "valid"}
SEPARATOR = "|"


@dataclass(frozen=True)
class LabelRow:
    """One row of a labels CSV."""

    path: str  # the image, resolved against the CSV's folder
    labels: tuple[str, ...]  # one label, or (multi-label) any number
    split: str | None  # "train" or "valid"; None without a split column
    line: int  # line number in the file, for messages


def read_label_rows(csv_path: str | os.PathLike, *, multi_label: bool = False) -> list[LabelRow]:
    """The rows of a labels CSV, checked: the columns, each split value, each label (one in
    single-label mode), no image listed twice, and no missing image outside the CSV's folder
    (a missing file inside it is screened later, like an unreadable one).

    Example:
        >>> read_label_rows("pets/labels.csv")[0]
        LabelRow(path='pets/cat/001.jpg', labels=('cat',), split=None, line=2)
    """
    path = Path(csv_path)
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "does not exist"
        raise DataError(f"labels file '{path}' {problem}; pass a CSV with columns image,label")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, skipinitialspace=True)
        columns = _check_header(path, reader.fieldnames)
        rows = [
            _row(path, record, reader.line_num, columns, multi_label)
            for record in reader
            if any((v or "").strip() for v in record.values() if isinstance(v, str))
        ]
    if not rows:
        raise DataError(f"labels file '{path}' has a header but no rows")
    _refuse_duplicates(path, rows)
    return rows


def _check_header(path: Path, fieldnames) -> dict[str, str]:
    """The file's name for each needed column (matched without case or spaces)."""
    if not fieldnames:
        raise DataError(f"labels file '{path}' is empty; its first line must be image,label")
    found = {name.strip().lower(): name for name in fieldnames if name}
    missing = [c for c in ("image", "label") if c not in found]
    if missing:
        raise DataError(
            f"labels file '{path}' has no {' or '.join(repr(c) for c in missing)} column (its "
            f"header: {', '.join(fieldnames)}); the columns are image, label and optionally split"
        )
    return {c: found[c] for c in ("image", "label", "split") if c in found}


def _row(path: Path, record: dict, line: int, columns: dict, multi_label: bool) -> LabelRow:
    where = f"{path} line {line}"
    image = (record.get(columns["image"]) or "").strip()
    if not image:
        raise DataError(f"{where}: the image field is empty; give each row an image path")
    field = (record.get(columns["label"]) or "").strip()
    labels = _labels(field, multi_label, where)
    split = None
    if "split" in columns:
        value = (record.get(columns["split"]) or "").strip()
        if value.lower() not in SPLITS:
            raise DataError(
                f"{where}: split '{value}' is not train or valid (val); fix the value, or "
                "leave the split column out to split by --val-split"
            )
        split = SPLITS[value.lower()]
    return LabelRow(_resolve(path, image, where), labels, split, line)


def _labels(field: str, multi_label: bool, where: str) -> tuple[str, ...]:
    if multi_label:
        return tuple(dict.fromkeys(x.strip() for x in field.split(SEPARATOR) if x.strip()))
    if not field:
        raise DataError(
            f"{where}: the label is empty; every row needs a label (with --multi-label, an "
            "empty field means no label)"
        )
    return (field,)


def _resolve(csv_path: Path, image: str, where: str) -> str:
    folder = csv_path.parent
    resolved = Path(os.path.normpath(folder / Path(image).expanduser()))
    if not resolved.exists() and not _inside(resolved, folder):
        raise DataError(
            f"{where}: image '{image}' does not exist (looked for '{resolved}'); paths are "
            f"relative to the CSV's folder '{folder}', or absolute"
        )
    return str(resolved)


def _inside(path: Path, folder: Path) -> bool:
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))


def _refuse_duplicates(path: Path, rows: list[LabelRow]) -> None:
    seen: dict[str, int] = {}
    for row in rows:
        key = os.path.normcase(os.path.abspath(row.path))
        if key in seen:
            raise DataError(
                f"{path} line {row.line}: image '{row.path}' is already on line {seen[key]}; "
                "list each image once (several labels go in one field, separated by '|', "
                "with --multi-label)"
            )
        seen[key] = row.line


# ---------------------------------------------------------------- samples


def scan_labels_csv(
    csv_path: str | os.PathLike,
    *,
    multi_label: bool = False,
    val_split: float = 0.2,
    seed: int = 0,
) -> DataSplit:
    """The classes and the train and valid samples a labels CSV gives.

    With a ``split`` column its values decide; without one, ``val_split`` of the images go to
    validation, stratified by each image's first label and chosen by ``seed`` as for class
    folders. Samples are ordered by first label, then path (as class folders are), so the
    order of the CSV's rows changes nothing. Every label needs a training image.

    Example:
        >>> split = scan_labels_csv("pets/labels.csv")
        >>> split.classes, len(split.train), len(split.valid)
        (['cat', 'dog'], 160, 40)
    """
    rows = read_label_rows(csv_path, multi_label=multi_label)
    classes = sorted({label for row in rows for label in row.labels})
    if not multi_label and len(classes) < 2:
        raise DataError(
            f"only one label ('{classes[0]}') in '{csv_path}'; a classifier needs at least two"
        )
    if not classes:
        raise DataError(f"no labels in '{csv_path}'; every label field is empty")
    has_split = rows[0].split is not None
    train, valid = _by_column(rows) if has_split else _by_fraction(rows, val_split, seed)
    _require_training_images(csv_path, classes, train)
    if not valid:
        raise DataError(f"'{csv_path}' gives no validation images; add valid rows or images")
    encode = _encoder(classes, multi_label)
    return DataSplit(
        classes,
        [(r.path, encode(r.labels)) for r in _ordered(train)],
        [(r.path, encode(r.labels)) for r in _ordered(valid)],
        "csv",
        multi_label=multi_label,
    )


def scan_eval_csv(
    csv_path: str | os.PathLike, class_names: list[str], *, multi_label: bool = False
) -> list[tuple[str, object]]:
    """The samples to evaluate on: the CSV's valid rows, or every row when it has no split
    column; each label must be one of ``class_names`` (the model's outputs).

    Example:
        >>> scan_eval_csv("pets/labels.csv", ["cat", "dog"])[:1]
        [('pets/cat/001.jpg', 0)]
    """
    rows = read_label_rows(csv_path, multi_label=multi_label)
    if rows[0].split is not None:
        rows = [r for r in rows if r.split == "valid"]
        if not rows:
            raise DataError(f"'{csv_path}' has no valid rows to evaluate on")
    unknown = sorted({x for r in rows for x in r.labels} - set(class_names))
    if unknown:
        raise DataError(
            f"label '{unknown[0]}' in '{csv_path}' is not one of the model's classes "
            f"({_names(class_names)})"
        )
    encode = _encoder(class_names, multi_label)
    return [(r.path, encode(r.labels)) for r in _ordered(rows)]


def _by_column(rows: list[LabelRow]) -> tuple[list[LabelRow], list[LabelRow]]:
    return [r for r in rows if r.split == "train"], [r for r in rows if r.split == "valid"]


def _by_fraction(rows: list[LabelRow], val_split: float, seed: int):
    if not 0 < val_split < 1:
        raise DataError(f"val_split must be between 0 and 1 (exclusive), got {val_split}")
    groups: dict[str, list[LabelRow]] = {}
    for row in sorted(rows, key=lambda r: r.path):
        groups.setdefault(row.labels[0] if row.labels else "", []).append(row)
    train, valid = [], []
    for name, members in sorted(groups.items()):
        # Seeded per first label, as class folders are: same seed, same split.
        random.Random(f"{seed}:{name}").shuffle(members)
        n_valid = _valid_count(len(members), val_split)
        valid += members[:n_valid]
        train += members[n_valid:]
    return train, valid


def _ordered(rows: list[LabelRow]) -> list[LabelRow]:
    return sorted(rows, key=lambda r: (r.labels[:1], r.path))


def _require_training_images(csv_path, classes: list[str], train: list[LabelRow]) -> None:
    trained = {label for row in train for label in row.labels}
    missing = [c for c in classes if c not in trained]
    if missing:
        raise DataError(
            f"label '{missing[0]}' in '{csv_path}' has no training image (labels without "
            f"one: {_names(missing)}); add train rows for it or remove its rows"
        )


def _encoder(classes: list[str], multi_label: bool):
    index = {name: i for i, name in enumerate(classes)}
    if not multi_label:
        return lambda labels: index[labels[0]]
    return lambda labels: multi_hot([index[x] for x in labels], len(classes))


def multi_hot(indices, width: int) -> tuple[float, ...]:
    """A multi-hot label: 1.0 at each index, 0.0 elsewhere.

    >>> multi_hot([0, 2], 4)
    (1.0, 0.0, 1.0, 0.0)
    """
    chosen = set(indices)
    return tuple(1.0 if i in chosen else 0.0 for i in range(width))
