"""Caches that let an epoch skip work it has done before: the frozen-prefix cut, the feature
store and the feature cache built on it, the decoded-pixel cache, and the batch source that
serves an epoch's batches from whichever of them a run uses (``choose_batch_source``)."""

from __future__ import annotations

from zoo.training.cache._features import FeatureCache, plan_cache
from zoo.training.cache._pixels import ImageCache, plan_image_cache
from zoo.training.cache._source import BatchSource, choose_batch_source
from zoo.training.cache._split import Split, split_frozen_prefix
from zoo.training.cache._store import FeatureStore, cache_folder, cache_key, file_signature

__all__ = [
    "BatchSource",
    "FeatureCache",
    "FeatureStore",
    "ImageCache",
    "Split",
    "cache_folder",
    "cache_key",
    "choose_batch_source",
    "file_signature",
    "plan_cache",
    "plan_image_cache",
    "split_frozen_prefix",
]
