"""A store for the cached boundary tensors of every image, and the key that finds it again.

The store holds, for each image index, one row per boundary tensor of a ``Split``.
It lives in RAM as float32 when that fits a byte cap, else in RAM as bfloat16 (half the
bytes), else on disk as float16 memory maps. A disk store is written under a temporary name
and renamed into place only once every row is in, so a later run with the same key finds
either a whole store or none.

    >>> key = cache_key(model="resnet34", weights="random:0", freeze_until="layer3",
    ...                 preprocessing=pre, files=file_signature(paths), precision="fp32")
    >>> folder = cache_folder(key)
    >>> store = FeatureStore.open(folder) or FeatureStore.create(
    ...     len(paths), split.boundary_shapes, cap_bytes=2 << 30, folder=folder)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import FeatureStoreError
from zoo.training.cache._store_files import META, array_name, map_existing, sweep, to_fp16

if TYPE_CHECKING:
    from collections.abc import Sequence

    from torch import Tensor

FORMAT = 2  # bump when the layout on disk or the key's meaning changes (2: the tensor resize)


def cache_key(
    *,
    model: str,
    weights: str,
    freeze_until: str,
    preprocessing: dict,
    files: Sequence,
    precision: str,
    **extra: Any,
) -> str:
    """The sha256 of everything the cached features depend on, as canonical JSON.

    ``weights`` is the weights file's sha256 or ``"random:<seed>"``; ``files`` are the
    images in store-row order (row i is files[i]: order matters, not only the set), best
    from ``file_signature``; ``extra`` parts (the split's boundary) count too.

    >>> key = cache_key(model="resnet34", weights="random:0", freeze_until="layer3",
    ...                 preprocessing={"input_size": [3, 112, 112]}, files=[], precision="fp32")
    >>> len(key)
    64
    """
    parts = {
        "format": FORMAT,
        "model": model,
        "weights": weights,
        "freeze_until": freeze_until,
        "preprocessing": preprocessing,
        "files": files,
        "precision": precision,
        **extra,
    }
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def file_signature(paths: Sequence[str | os.PathLike]) -> list[tuple[str, int, int]]:
    """(path, size, mtime in ns) of each file, in the given order: a changed, added or
    removed image changes the key.

    >>> file_signature(["pets/cat/001.jpg"])  # doctest: +SKIP
    [('pets/cat/001.jpg', 20412, 1763788800000000000)]
    """
    out = []
    for path in paths:
        stat = os.stat(path)
        out.append((str(path), stat.st_size, stat.st_mtime_ns))
    return out


def cache_folder(key: str) -> Path:
    """Where the disk store of ``key`` lives: ``$ZOO_HOME/features/<key>``."""
    from zoo.env import zoo_home

    return zoo_home() / "features" / key


class FeatureStore:
    """Rows of boundary tensors by image index; ``kind`` says where and how they are kept."""

    def __init__(self, kind: str, shapes, arrays: list, folder: Path | None = None) -> None:
        import numpy as np

        self.kind = kind  # "ram-fp32", "ram-bf16" or "disk-fp16"
        self.shapes = [tuple(s) for s in shapes]  # one per boundary tensor, batch dim left out
        self.count = len(arrays[0])  # rows: images
        self.folder = folder  # the disk store's final folder; None in RAM
        self._arrays = arrays  # torch tensors in RAM, numpy memory maps on disk
        self._filled = np.zeros(self.count, dtype=bool)
        self._partial: Path | None = None  # where a disk store is written until complete
        self.meta: dict = {}  # the cache key's parts, kept in a disk store's meta.json

    @classmethod
    def create(
        cls,
        count: int,
        shapes: Sequence[Sequence[int]],
        *,
        cap_bytes: int,
        folder: str | os.PathLike | None = None,
        meta: dict | None = None,
    ) -> FeatureStore:
        """An empty store for ``count`` images: float32 in RAM if it fits ``cap_bytes``, else
        bfloat16 in RAM, else float16 on disk in ``folder`` (with ``meta``, the key's parts,
        in its meta.json). The disk store appears at ``folder`` once every row is put.

        >>> store = FeatureStore.create(500, [(256, 7, 7)], cap_bytes=1 << 30)
        >>> store.kind, store.nbytes
        ('ram-fp32', 25088000)
        """
        import torch

        if count < 1:
            raise FeatureStoreError("a feature store needs at least one image")
        fp32 = count * sum(math.prod(s) for s in shapes) * 4
        for kind, dtype in (("ram-fp32", torch.float32), ("ram-bf16", torch.bfloat16)):
            if fp32 // 4 * dtype.itemsize <= cap_bytes:
                return cls(kind, shapes, [torch.empty(count, *s, dtype=dtype) for s in shapes])
        if folder is None:
            raise FeatureStoreError(
                f"features of {count} images need {fp32 // 2:,} bytes in half precision, over "
                f"the cap of {cap_bytes:,}; give a folder for a disk store or raise the cap"
            )
        return cls._create_on_disk(count, shapes, Path(folder), meta or {})

    @classmethod
    def _create_on_disk(cls, count: int, shapes, folder: Path, meta: dict) -> FeatureStore:
        import numpy as np

        folder.parent.mkdir(parents=True, exist_ok=True)
        sweep(folder)
        partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        partial.mkdir()
        arrays = [
            np.memmap(partial / array_name(i), dtype=np.float16, mode="w+", shape=(count, *s))
            for i, s in enumerate(shapes)
        ]
        store = cls("disk-fp16", shapes, arrays, folder)
        store._partial, store.meta = partial, meta
        return store

    @classmethod
    def open(
        cls, folder: str | os.PathLike, *, count: int | None = None, shapes=None
    ) -> FeatureStore | None:
        """The complete disk store in ``folder``, read-only; None if it is missing, was never
        completed, is damaged, or holds another ``count`` or ``shapes`` than asked.

        >>> FeatureStore.open(cache_folder(key), count=500, shapes=[(256, 7, 7)]).kind
        'disk-fp16'
        """
        import numpy as np

        folder = Path(folder)
        try:
            meta = json.loads((folder / META).read_text())
            found = [tuple(s) for s in meta["shapes"]]
            if meta["format"] != FORMAT or not meta["complete"]:
                return None
            if (count is not None and count != meta["count"]) or (
                shapes is not None and [tuple(s) for s in shapes] != found
            ):
                return None
            arrays = [
                map_existing(folder / array_name(i), meta["count"], shape)
                for i, shape in enumerate(found)
            ]
        except (OSError, ValueError, KeyError, TypeError):  # missing, garbage, truncated
            return None
        store = cls("disk-fp16", found, arrays, folder)
        store._filled = np.ones(store.count, dtype=bool)
        store.meta = meta.get("parts", {})
        return store

    @property
    def complete(self) -> bool:
        """Whether every image's row has been put."""
        return bool(self._filled.all())

    @property
    def nbytes(self) -> int:
        """Bytes the rows take: in RAM for the RAM kinds, on disk for the disk kind."""
        return sum(int(a.nbytes) for a in self._arrays)

    def has(self, indices: Sequence[int] | Tensor) -> bool:
        """Whether the rows of every image in ``indices`` have been put.

        >>> store.has([4, 9])
        False
        """
        import torch

        return bool(self._filled[torch.as_tensor(indices, dtype=torch.long).numpy()].all())

    def put(self, indices: Sequence[int] | Tensor, tensors: Sequence[Tensor]) -> None:
        """Store one batch: ``tensors[k]`` holds boundary tensor k of the images ``indices``.

        >>> store.put([4, 9], split.features(images))  # images: the batch of images 4 and 9
        """
        import torch

        if self.complete:
            raise FeatureStoreError("this feature store is complete and read-only")
        rows = torch.as_tensor(indices, dtype=torch.long).cpu()
        self._check(rows, tensors)
        for array, tensor in zip(self._arrays, tensors, strict=True):
            tensor = tensor.detach().cpu()
            if self.kind == "disk-fp16":
                array[rows.numpy()] = to_fp16(tensor).numpy()
            else:
                array[rows] = tensor.to(array.dtype)
        self._filled[rows.numpy()] = True
        if self.complete and self._partial is not None:
            self._finish()

    def get(self, indices: Sequence[int] | Tensor) -> list[Tensor]:
        """The boundary tensors of the images ``indices``, as new float32 tensors.

        >>> logits = split.suffix(train=True)(*store.get([4, 9]))
        """
        import torch

        rows = torch.as_tensor(indices, dtype=torch.long).cpu()
        if not self._filled[rows.numpy()].all():
            raise FeatureStoreError("features asked for before they were put")
        if self.kind == "disk-fp16":
            return [torch.from_numpy(a[rows.numpy()]).float() for a in self._arrays]
        return [a[rows].float() for a in self._arrays]  # indexing copies: callers may modify

    def _check(self, rows: Tensor, tensors: Sequence[Tensor]) -> None:
        if len(tensors) != len(self.shapes):
            raise FeatureStoreError(f"expected {len(self.shapes)} tensors, got {len(tensors)}")
        for shape, tensor in zip(self.shapes, tensors, strict=True):
            if tuple(tensor.shape) != (len(rows), *shape):
                raise FeatureStoreError(
                    f"expected a tensor of shape {(len(rows), *shape)}, got {tuple(tensor.shape)}"
                )
        if len(rows) and (rows.min() < 0 or rows.max() >= self.count):
            raise FeatureStoreError(f"image indices must lie in 0..{self.count - 1}")

    def _finish(self) -> None:
        """Flush, describe, and rename the partial folder into place (atomic on one disk)."""
        for array in self._arrays:
            array.flush()
        meta = {"format": FORMAT, "complete": True, "count": self.count, "shapes": self.shapes}
        (self._partial / META).write_text(json.dumps({**meta, "parts": self.meta}, default=str))
        try:
            os.rename(self._partial, self.folder)
        except OSError:  # the folder exists: a damaged leftover, or another run's same store
            if FeatureStore.open(self.folder) is None:
                shutil.rmtree(self.folder, ignore_errors=True)
                os.rename(self._partial, self.folder)
            else:
                shutil.rmtree(self._partial, ignore_errors=True)  # ours maps stay readable
        self._partial = None
