"""Writing run files atomically: a temporary file in the same folder, fsync, rename.

A process killed at any moment leaves either the previous whole file or the new whole file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor


@contextlib.contextmanager
def _atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` durably."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # pid + random token: two processes writing the same file never share a temp file.
    # (os.urandom rather than secrets: the CLI imports this, and secrets costs milliseconds.)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        named = _naming(exc, tmp, path)
        if named is exc:
            raise
        raise named from exc
    finally:
        tmp.unlink(missing_ok=True)
    # So the rename itself survives a power cut; not every platform can open a folder.
    with contextlib.suppress(OSError):
        _fsync(path.parent)


def _naming(exc: OSError, tmp: str | os.PathLike, path: Path) -> OSError:
    """``exc`` about the file the user asked for, not the temporary file beside it."""
    if exc.filename is None or Path(exc.filename) != Path(tmp):
        return exc
    return OSError(exc.errno, exc.strerror, str(path))


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files left in ``folder`` by writers that were killed; return them.

    Only files whose writing process is gone are removed, so a live writer is never disturbed.
    """
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        parts = tmp.name.split(".")
        # ".<name>.<pid>.<token>.tmp": the pid is third from the end.
        if len(parts) < 5 or not parts[-3].isdigit() or process_alive(int(parts[-3])):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename.

    >>> atomic_write_bytes("runs/x/notes.txt", b"hello\\n")  # doctest: +SKIP
    """
    # "x": never write through a file someone else created under this name.
    with _atomic_path(path) as tmp, open(tmp, "xb") as f:
        f.write(data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically.

    >>> write_json("runs/x/summary.json", {"best_val_acc": 0.93})  # doctest: +SKIP
    """
    atomic_write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode())


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically.

    >>> save_torch({"state_dict": model.state_dict()}, "runs/x/best.pt")  # doctest: +SKIP
    """
    import torch

    with _atomic_path(path) as tmp, open(tmp, "xb") as f:
        torch.save(obj, f)


def save_safetensors(
    state_dict: Mapping[str, Tensor], path: str | os.PathLike, metadata: dict | None = None
) -> None:
    """Save a state dict as ``.safetensors`` atomically; tied or sliced tensors are copied.
    ``metadata`` values that are not strings are stored as JSON.

    >>> save_safetensors(model.state_dict(), "resnet34-9.safetensors")  # doctest: +SKIP
    """
    from safetensors.torch import save_file

    text = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    with _atomic_path(path) as tmp:
        save_file(_standalone(state_dict), tmp, metadata=text or None)


def sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _standalone(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    import torch

    # safetensors refuses tensors that share memory or are views into a bigger storage.
    seen: set[int] = set()
    out = {}
    for key, tensor in state_dict.items():
        t = tensor.detach()
        storage = t.untyped_storage()
        whole = storage.nbytes() == t.numel() * t.element_size()
        if storage.data_ptr() in seen or not whole or not t.is_contiguous():
            t = t.clone(memory_format=torch.contiguous_format)
        seen.add(t.untyped_storage().data_ptr())
        out[key] = t
    return out
