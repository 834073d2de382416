"""Images for fine-tuning: class folders and their screening, decoding, the run's transforms
and preprocessing, the loaders and their seeded sampling, and the embedded shapes dataset."""

from __future__ import annotations

from zoo.data._csv import LabelRow, multi_hot, read_label_rows, scan_eval_csv, scan_labels_csv
from zoo.data._datasource import data_folder_of, scan_training_data
from zoo.data._embedded import CLASSES, COUNTS, NAME, draw_shape, embedded_dataset
from zoo.data._folders import (
    DataSplit,
    class_indices,
    drop_unreadable,
    scan_eval_folder,
    scan_image_folder,
)
from zoo.data._images import find_unreadable, load_rgb
from zoo.data._loaders import Loaders, batch_indices, default_workers, make_loaders, train_steps
from zoo.data._module import preprocess_module, to_uint8
from zoo.data._preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from zoo.data._sampling import BalancedSampler, EpochSampler, epoch_seed, seeded_dataset
from zoo.data._transforms import augment_policy, build_transform, decode_side, normalize_batch
from zoo.data._walk import IMAGE_EXTENSIONS, expand_images, looks_like_run, walk_images

__all__ = [
    "BalancedSampler",
    "CLASSES",
    "COUNTS",
    "DataSplit",
    "EpochSampler",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_EXTENSIONS",
    "Loaders",
    "NAME",
    "Preprocessing",
    "augment_policy",
    "batch_indices",
    "build_transform",
    "default_workers",
    "draw_shape",
    "drop_unreadable",
    "embedded_dataset",
    "epoch_seed",
    "expand_images",
    "find_unreadable",
    "load_rgb",
    "looks_like_run",
    "make_loaders",
    "normalize_batch",
    "scan_eval_folder",
    "scan_image_folder",
    "seeded_dataset",
    "train_steps",
    "walk_images",
    "decode_side",
    "LabelRow",
    "class_indices",
    "multi_hot",
    "read_label_rows",
    "scan_eval_csv",
    "scan_labels_csv",
    "data_folder_of",
    "scan_training_data",
    "preprocess_module",
    "to_uint8",
]


def __getattr__(name: str):
    if name == "ImageDataset":  # defined on first use: it subclasses torch's Dataset
        from zoo.data import _transforms

        return _transforms.ImageDataset
    raise AttributeError(f"module 'zoo.data' has no attribute {name!r}")
