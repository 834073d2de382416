"""A run's data from either source: class folders (``--data``) or a labels CSV (``--labels``),
for every command that trains (``finetune``, ``compare``, ``lr-find``).

    >>> split = scan_training_data("pets", val_split=0.2, seed=0)
    >>> split = scan_training_data(None, labels="photos/tags.csv", multi_label=True)
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from zoo.data._csv import scan_labels_csv
from zoo.data._folders import DataSplit, scan_image_folder


def scan_training_data(
    data: str | os.PathLike | None,
    *,
    labels: str | os.PathLike | None = None,
    multi_label: bool = False,
    val_split: float = 0.2,
    seed: int = 0,
    exclude: Iterable[str | os.PathLike] = (),
) -> DataSplit:
    """The classes and the train and valid samples of ``labels`` (a CSV: image,label[,split])
    when given, else of the image folder ``data`` (``scan_image_folder``). Screen the result
    with ``drop_unreadable`` as for folders.

    Example:
        >>> split = scan_training_data(None, labels="pets/labels.csv")
        >>> split.layout
        'csv'
    """
    if labels is not None:
        return scan_labels_csv(labels, multi_label=multi_label, val_split=val_split, seed=seed)
    return scan_image_folder(data, val_split=val_split, seed=seed, exclude=exclude)


def data_folder_of(labels: str | os.PathLike) -> str:
    """The folder a labels CSV's relative image paths start from: the CSV's own."""
    return os.path.dirname(os.path.abspath(labels))
