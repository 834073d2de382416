"""Finding image files under a folder, leaving out zoo's own output: a run directory (its
curves and confusion matrices are images, but never data) and any folder holding one.

    >>> files, holds_run = walk_images("pets/cat")
    >>> expand_images(["cat.jpg", "more/"])   # a folder gives its images, sorted, recursively
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from zoo.errors import DataError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
# A folder holding config.json and one of these is a zoo run (a run killed in its first
# epoch has last.pt but no metrics.jsonl yet).
RUN_FILES = ("metrics.jsonl", "last.pt", "best.pt")


def looks_like_run(filenames: Iterable[str]) -> bool:
    """Whether a folder with these file names is a zoo run directory."""
    names = set(filenames)
    return "config.json" in names and any(name in names for name in RUN_FILES)


def walk_images(folder: str | os.PathLike) -> tuple[list[str], bool]:
    """The image files under ``folder`` (by extension, dot-names skipped), sorted, leaving out
    run directories; and whether there was one.

    Example:
        >>> walk_images("pets/cat")
        (['pets/cat/001.jpg', 'pets/cat/002.jpg'], False)
    """
    found: list[str] = []
    holds_run = False
    for dirpath, dirnames, filenames in os.walk(folder):
        if looks_like_run(filenames):
            holds_run = True
            dirnames[:] = []  # a run's files, and whatever is below it, are never data
            continue
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # prunes the walk too
        found += [
            os.path.join(dirpath, f)
            for f in filenames
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
        ]
    return sorted(found), holds_run


def expand_images(paths: Iterable[str | os.PathLike]) -> list[str]:
    """``paths`` in the order given, each folder replaced by the image files under it, sorted,
    subfolders included (run directories left out). A folder without images is a DataError.

    Example:
        >>> expand_images(["cat.jpg", "more"])
        ['cat.jpg', 'more/a.png', 'more/sub/b.jpg']
    """
    out: list[str] = []
    for path in paths:
        if not Path(path).is_dir():
            out.append(os.fspath(path))
            continue
        files, _ = walk_images(path)
        if not files:
            exts = ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
            raise DataError(f"no images in folder '{path}' ({exts})")
        out += files
    return out
