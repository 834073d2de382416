"""Image folders for fine-tuning: find the classes and files, screen out the unreadable ones
up front (``zoo.data._images`` reads them), and turn images into the tensors a backbone expects.

    >>> split = scan_image_folder("pets", val_split=0.2, seed=0)
    >>> split, skipped = drop_unreadable(split)
    >>> train = ImageDataset(split.train, build_transform(pre, train=True, augment=True))
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from zoo.data._images import find_unreadable
from zoo.data._walk import IMAGE_EXTENSIONS, walk_images
from zoo.errors import DataError

VALID_NAMES = ("valid", "val")


@dataclass
class DataSplit:
    """The classes of an image folder and its (path, label) samples for training and validation."""

    classes: list[str]  # class names, sorted; a label is an index into this list
    train: list[tuple[str, int]]  # (image path, label), grouped by class, paths sorted
    valid: list[tuple[str, int]]  # same, for the validation phase
    layout: str  # "train-valid": train/ and valid/ (or val/) folders; "split": split by fraction
    # folders that would have been classes but hold zoo's own output (a run) or were excluded
    left_out: list[str] = field(default_factory=list)
    # labels are multi-hot tuples (a labels CSV with --multi-label), not class indices
    multi_label: bool = False


# ---------------------------------------------------------------- scanning folders


def scan_image_folder(
    root: str | os.PathLike,
    *,
    val_split: float = 0.2,
    seed: int = 0,
    exclude: Iterable[str | os.PathLike] = (),
) -> DataSplit:
    """Find the classes and images of ``root``, in either of two layouts.

    ``root/train/<class>/*`` with ``root/valid/<class>/*`` (or ``root/val/``, else
    ``root/test/``) is used as is; ``root/train/`` alone is split as below. Otherwise
    ``root/<class>/*`` is split per class: ``val_split`` of each class's images go to
    validation, chosen by ``seed`` (same seed, same split; files are never moved). Every class
    keeps at least one training image and, when it has two or more, gets at least one validation
    image; a class with a single image is trained on but not validated. Names starting with a
    dot are ignored, and images are found by extension, in subfolders too.

    zoo's own output is never data: a folder that is or holds a run directory (``runs/`` when
    training from inside the data folder), and the folders in ``exclude`` (a run's
    ``--output``), are left out of the classes and listed in ``left_out``.

    Example:
        >>> split = scan_image_folder("pets", val_split=0.2, seed=0)
        >>> split.classes, len(split.train), len(split.valid)
        (['cat', 'dog'], 160, 40)
    """
    root = _existing_folder(root)
    skip = {Path(p).resolve() for p in exclude}
    folders = _train_valid_folders(root)
    if folders is None:
        return _split_layout(root, val_split, seed, skip)
    if folders[1] is None:  # train/ alone: split it as a folder of classes
        return _split_layout(folders[0], val_split, seed, skip)
    return _train_valid_layout(*folders, skip)


def scan_eval_folder(root: str | os.PathLike, class_names: list[str]) -> list[tuple[str, int]]:
    """The (path, label) samples of ``root/<class>/*``, labelled by position in ``class_names``.

    Every class folder must be one of ``class_names`` (the model's classes); some may be absent.

    Example:
        >>> scan_eval_folder("pets/valid", ["cat", "dog"])[:1]
        [('pets/valid/cat/001.jpg', 0)]
    """
    root = _existing_folder(root)
    found = _scan_classes(root, set(), [])
    unknown = sorted(set(found) - set(class_names))
    if unknown:
        hint = ""
        if set(unknown) <= {"train", "test", *VALID_NAMES}:
            hint = f" (to evaluate on a train/valid layout, pass '{root / unknown[-1]}')"
        raise DataError(
            f"class folder '{root / unknown[0]}' is not one of the model's classes"
            f" ({_names(class_names)}); rename or remove it{hint}"
        )
    _require_images(root, found)
    index = {name: i for i, name in enumerate(class_names)}
    return [(path, index[name]) for name in sorted(found) for path in found[name]]


def _existing_folder(root: str | os.PathLike) -> Path:
    root = Path(root)
    if not root.is_dir():
        problem = "is not a folder" if root.exists() else "does not exist"
        raise DataError(
            f"data folder '{root}' {problem}; pass a folder with one subfolder per class"
        )
    return root


def _train_valid_folders(root: Path) -> tuple[Path, Path | None] | None:
    """train/ and its validation folder (valid/, val/, else test/; None: split train/), or
    None when ``root`` holds the classes themselves."""
    names = {p.name for p in _subfolders(root)}
    valid = [name for name in VALID_NAMES if name in names]
    if "train" not in names and not valid:
        return None
    if "train" not in names:
        raise DataError(f"found '{root / valid[0]}' but no '{root / 'train'}'; add a train folder")
    if len(valid) > 1:
        raise DataError(f"both '{root / 'valid'}' and '{root / 'val'}' exist; keep only one")
    if not valid and "test" in names:  # a test/ set is the validation set when there is no other
        valid = ["test"]
    return root / "train", (root / valid[0] if valid else None)


def _train_valid_layout(train_dir: Path, valid_dir: Path, skip: set[Path]) -> DataSplit:
    left_out: list[str] = []
    train, valid = (
        _scan_classes(train_dir, skip, left_out),
        _scan_classes(valid_dir, skip, left_out),
    )
    _require_images(train_dir, train)
    _require_two_classes(train_dir, train)
    missing, extra = sorted(set(train) - set(valid)), sorted(set(valid) - set(train))
    if missing:
        raise DataError(
            f"class folder '{valid_dir / missing[0]}' is missing; every class in '{train_dir}'"
            f" needs a folder in '{valid_dir}' (missing: {_names(missing)})"
        )
    if extra:
        raise DataError(
            f"class folder '{valid_dir / extra[0]}' has no match in '{train_dir}';"
            " add it there or remove it"
        )
    _require_images(valid_dir, valid)
    classes = sorted(train)
    return DataSplit(
        classes, _label(classes, train), _label(classes, valid), "train-valid", left_out
    )


def _split_layout(root: Path, val_split: float, seed: int, skip: set[Path]) -> DataSplit:
    if not 0 < val_split < 1:
        raise DataError(f"val_split must be between 0 and 1 (exclusive), got {val_split}")
    left_out: list[str] = []
    found = _scan_classes(root, skip, left_out)
    _require_images(root, found)
    _require_two_classes(root, found)
    train: dict[str, list[str]] = {}
    valid: dict[str, list[str]] = {}
    for name, paths in found.items():
        shuffled = list(paths)
        # Seeded per class, so adding a class leaves the other classes' splits unchanged.
        random.Random(f"{seed}:{name}").shuffle(shuffled)
        n_valid = _valid_count(len(paths), val_split)
        valid[name], train[name] = sorted(shuffled[:n_valid]), sorted(shuffled[n_valid:])
    if not any(valid.values()):
        raise DataError(
            f"no validation images: every class in '{root}' has a single image;"
            " add images or use train/ and valid/ folders"
        )
    classes = sorted(found)
    return DataSplit(classes, _label(classes, train), _label(classes, valid), "split", left_out)


def _valid_count(n: int, fraction: float) -> int:
    if n < 2:
        return 0
    return min(n - 1, max(1, round(n * fraction)))


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_dir())


def _scan_classes(folder: Path, skip: set[Path], left_out: list[str]) -> dict[str, list[str]]:
    """Each subfolder's images, by name; a subfolder that is or holds a zoo run, or is in
    ``skip``, is no class: its path goes to ``left_out``."""
    found = {}
    for sub in _subfolders(folder):
        files, holds_run = ([], False) if sub.resolve() in skip else walk_images(sub)
        if holds_run or sub.resolve() in skip:
            left_out.append(str(sub))
        else:
            found[sub.name] = files
    return found


def _require_images(folder: Path, found: dict[str, list[str]]) -> None:
    if not any(found.values()):
        exts = ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
        raise DataError(
            f"no images in '{folder}'; expected one subfolder per class holding image files"
            f" ({exts})"
        )
    for name, paths in found.items():
        if not paths:
            raise DataError(
                f"class folder '{folder / name}' has no images; add images or remove the folder"
            )


def _require_two_classes(folder: Path, found: dict[str, list[str]]) -> None:
    if len(found) < 2:
        raise DataError(
            f"only one class ('{next(iter(found))}') in '{folder}'; a classifier needs at least"
            " two class folders"
        )


def _label(classes: list[str], found: dict[str, list[str]]) -> list[tuple[str, int]]:
    return [(path, label) for label, name in enumerate(classes) for path in found[name]]


def _names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names)} in all)"


# ---------------------------------------------------------------- screening


def drop_unreadable(
    split: DataSplit, workers: int | None = None
) -> tuple[DataSplit, list[tuple[str, str]]]:
    """``split`` without its unreadable files, and those files with the reasons.

    Raises ``DataError`` if that leaves a class with no training images (or, with train/valid
    folders, no validation images), or no validation images at all.

    Example:
        >>> split, skipped = drop_unreadable(scan_image_folder("pets"))
        >>> skipped
        [('pets/cat/broken.jpg', 'image file is truncated (12 bytes not processed)')]
    """
    skipped = find_unreadable([p for p, _ in split.train + split.valid], workers)
    bad = {path for path, _ in skipped}
    train = [s for s in split.train if s[0] not in bad]
    valid = [s for s in split.valid if s[0] not in bad]
    _require_readable(split.classes, split.train, train, "training", skipped)
    if split.layout == "train-valid":
        _require_readable(split.classes, split.valid, valid, "validation", skipped)
    if not valid:
        raise DataError("no readable validation images left; replace the unreadable files")
    return replace(split, train=train, valid=valid), skipped


def _require_readable(
    classes: list[str],
    before: list[tuple[str, int]],
    after: list[tuple[str, int]],
    phase: str,
    skipped: list[tuple[str, str]],
) -> None:
    left = {i for _, label in after for i in class_indices(label)}
    for label in sorted({i for _, lab in before for i in class_indices(lab)} - left):
        lost = [path for path, lab in before if label in class_indices(lab)]
        raise DataError(
            f"class '{classes[label]}' has no readable {phase} images: all {len(lost)} are"
            f" unreadable (such as '{lost[0]}': {dict(skipped)[lost[0]]}); replace them"
        )


def class_indices(label) -> tuple[int, ...]:
    """The classes of a sample's label: a class index, or a multi-hot tuple (multi-label)."""
    if isinstance(label, tuple):
        return tuple(i for i, x in enumerate(label) if x)
    return (label,)
