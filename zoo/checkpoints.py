"""Reading checkpoints safely: nothing a file contains is ever executed.

Every checkpoint is read with ``safetensors`` or ``torch.load(weights_only=True)``; writing
run files lives in ``zoo.files``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import CheckpointError, UnsafeCheckpointError, WeightsNotFoundError

if TYPE_CHECKING:
    from torch import Tensor

# Dict keys that trainers wrap a state dict in; EMA weights only when no plain one is there.
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")
EMA_KEYS = ("state_dict_ema", "ema")
# Key prefixes added by DistributedDataParallel / DataParallel and by torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Where `zoo transfer` records a written file's provenance: safetensors metadata (as JSON), or
# an entry beside the state dict in a torch file.
PROVENANCE_KEY = "zoo_transfer"

_ZIP_MAGIC = b"PK\x03\x04"
# Messages torch's weights-only unpickler gives when a file needs objects it will not build.
_UNSAFE_PATTERNS = (
    r"GLOBAL (\S+) was not an allowed global",
    r"unsupported GLOBAL (\S+) whose module",
    r"call reduce for unrecognized function (.+?)(?: which|$)",
    r"Can only (?:create new object|build) .*(?:got|but got) (.+)",
)


def read_checkpoint(path: str | os.PathLike) -> Any:
    """Load a ``.safetensors`` or PyTorch checkpoint without running any code from it.

    Zip-format PyTorch files are memory-mapped, so a big checkpoint is not held twice.

    >>> obj = read_checkpoint("resnet34.pth")   # doctest: +SKIP
    >>> sorted(obj)[:2]                          # doctest: +SKIP
    ['bn1.bias', 'bn1.running_mean']
    """
    path = Path(path).expanduser()
    head = _read_head(path)
    if head.startswith(_ZIP_MAGIC):
        return _torch_load(path, mmap=True)
    if _looks_like_safetensors(head) or path.suffix == ".safetensors":
        return _safetensors_load(path)
    return _torch_load(path, mmap=False)


def read_provenance(path: str | os.PathLike, checkpoint: Any = None) -> dict | None:
    """What `zoo transfer` recorded about a file it wrote (source, sha256, coverage, mapping),
    else None. ``checkpoint``: a torch file's contents, when already read (else it is read).

    >>> read_provenance("lite0-10.safetensors")["coverage"]  # doctest: +SKIP
    0.9962
    """
    path = Path(path).expanduser()
    if checkpoint is None and not _safetensors_file(path):
        checkpoint = read_checkpoint(path)
    if checkpoint is not None:
        found = checkpoint.get(PROVENANCE_KEY) if isinstance(checkpoint, Mapping) else None
        return dict(found) if isinstance(found, Mapping) else None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            text = (f.metadata() or {}).get(PROVENANCE_KEY)
        found = json.loads(text) if text else None
    except Exception:  # safetensors raises its own error type; the tensors' loader says more
        return None
    return found if isinstance(found, dict) else None


def extract_state_dict(
    obj: Any, *, name: str = "checkpoint", strip_prefixes: tuple[str, ...] = WRAPPER_PREFIXES
) -> dict[str, Tensor]:
    """The tensors of a loaded checkpoint, with known wrappers and key prefixes removed.

    Unwraps ``state_dict``, ``model``, ``model_state_dict`` and ``module`` (EMA weights only
    when none of those is there) and strips ``module.`` / ``_orig_mod.`` when every key has it.

    >>> extract_state_dict({"state_dict": {"module.fc.bias": torch.zeros(2)}})  # doctest: +SKIP
    {'fc.bias': tensor([0., 0.])}
    """
    import torch

    for _ in range(4):  # wrappers nest at most a few levels (a trainer around a DDP model)
        if not isinstance(obj, Mapping):
            raise CheckpointError(
                f"{name} holds a {type(obj).__name__}, not a dict of tensors; "
                "save model.state_dict() instead"
            )
        inner = _wrapped(obj)
        if inner is None:
            break
        obj = inner
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        keys = ", ".join(map(str, list(obj)[:8])) or "none"
        raise CheckpointError(
            f"{name} holds no tensors at its top level (keys: {keys}); "
            "pass the dict that holds the model's weights"
        )
    return strip_key_prefixes(tensors, strip_prefixes)


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """The model weights in a checkpoint file, unwrapped: see ``extract_state_dict``.

    >>> read_state_dict("runs/resnet34-20261122-101500/best.pt")["fc.bias"].shape  # doctest: +SKIP
    torch.Size([9])
    """
    return extract_state_dict(read_checkpoint(path), name=str(path))


def strip_key_prefixes(
    state: dict[str, Tensor], prefixes: tuple[str, ...] = WRAPPER_PREFIXES
) -> dict[str, Tensor]:
    """Remove each prefix that starts every key, repeatedly (``module._orig_mod.x`` -> ``x``).

    >>> list(strip_key_prefixes({"module.fc.bias": t}))  # doctest: +SKIP
    ['fc.bias']
    """
    stripped = True
    while stripped and state:
        stripped = False
        for prefix in prefixes:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                stripped = True
    return state


def _wrapped(obj: Mapping) -> Mapping | None:
    for key in WRAPPER_KEYS + EMA_KEYS:
        if isinstance(obj.get(key), Mapping):
            return obj[key]
    return None


def _read_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        raise WeightsNotFoundError(f"no checkpoint at {path}; check the path") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a folder; pass the weights file inside it") from None
    except OSError as e:
        raise CheckpointError(f"{path} cannot be read ({e.strerror}); check the file") from None
    if not head:
        raise CheckpointError(
            f"{path} is empty (0 bytes); the save or download was cut short, get it again"
        )
    return head


def _safetensors_file(path: Path) -> bool:
    """Whether ``read_checkpoint`` reads ``path`` as safetensors."""
    head = _read_head(path)
    return not head.startswith(_ZIP_MAGIC) and (
        _looks_like_safetensors(head) or path.suffix == ".safetensors"
    )


def _looks_like_safetensors(head: bytes) -> bool:
    # An 8-byte little-endian header length, then the JSON header.
    return len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") > 1


def _safetensors_load(path: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(path, device="cpu")
    except Exception as e:  # the Rust reader raises several types; all mean a bad file
        raise CheckpointError(
            f"{path} is not a valid safetensors file ({_reason(e)}); download or save it again"
        ) from None


def _torch_load(path: Path, *, mmap: bool) -> Any:
    import pickle
    import warnings

    import torch

    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols it then refuses; the error below says it all.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        culprit = _unsafe_global(str(e)) or _foreign_global(path)
        if culprit:
            raise UnsafeCheckpointError(
                f"{path} needs arbitrary unpickling ({culprit}) and zoo never runs code from "
                "checkpoints; if it is a whole model (torch.save(model)), turn it into a state "
                f"dict where the code that defines {culprit} can be imported, and only if you "
                "trust the file: torch.save(torch.load(path, weights_only=False).state_dict(), "
                "'state.pth'), or save that state dict as .safetensors"
            ) from None
        error = e
    except Exception as e:  # corrupt files make torch raise almost anything; all mean the same
        error = e
    raise CheckpointError(
        f"{path} is corrupt or not a PyTorch checkpoint ({_reason(error)}); download it again, "
        "or re-save it with torch.save(model.state_dict(), path)"
    ) from None


def _unsafe_global(message: str) -> str | None:
    for pattern in _UNSAFE_PATTERNS:
        match = re.search(pattern, message)
        if match:
            return match.group(1).strip()
    return None


def _foreign_global(path: Path) -> str | None:
    """The first global a pickle names that torch's weights-only loader would not allow.

    Catches what torch only reports as an unsupported opcode (pickle protocols 0, 4 and 5).
    Parsing opcodes with pickletools builds nothing, so this is safe on any file.
    """
    import io
    import pickletools
    import zipfile

    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        allowed = _get_allowed_globals()
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
        else:
            data = path.read_bytes()
        stream, strings = io.BytesIO(data), []
        for _ in range(5):  # legacy torch files are several pickles in a row
            for op, arg, _pos in pickletools.genops(stream):
                if isinstance(arg, str) and ("STRING" in op.name or "UNICODE" in op.name):
                    strings.append(arg)
                elif op.name in ("GLOBAL", "INST", "STACK_GLOBAL"):
                    name = ".".join(strings[-2:]) if op.name == "STACK_GLOBAL" else arg
                    name = name.replace(" ", ".")
                    if name not in allowed:
                        return name
    except Exception:  # past the last pickle, or garbage: nothing foreign found
        return None
    return None


def _reason(error: BaseException) -> str:
    """The informative first line of a library's error, short enough for a one-line message."""
    text = str(error).strip()
    # torch's weights-only errors put the actual cause after several lines of advice.
    cause = re.search(r"WeightsUnpickler error:\s*(\S.*)", text)
    text = cause.group(1) if cause else text.splitlines()[0] if text else type(error).__name__
    return text.split(". ")[0].rstrip(".")[:120]
