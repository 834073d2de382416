"""The run directory: config.json, metrics.jsonl, best.pt, last.pt, summary.json, curves.png.

Every file is written atomically (``zoo.files``), so a killed run leaves whole files.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from zoo.checkpoints import read_checkpoint
from zoo.errors import RunError
from zoo.files import atomic_write_bytes, remove_stale_temporaries, save_torch, write_json
from zoo.runs._plots import plot_curves

# What a resume reads from config.json, and the JSON type each must have.
CONFIG_FIELDS = {
    "id": str,
    "options": dict,
    "data": str,
    "class_names": list,
    "num_classes": int,
    "weights": dict,
    "preprocessing": dict,
}


def default_output(arch: str, root: str | Path = "runs") -> Path:
    """``runs/<arch>-<YYYYmmdd-HHMMSS>``, with a suffix if that already exists."""
    base = Path(root) / f"{arch}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def is_run(path: Path) -> bool:
    return (path / "config.json").is_file()


class RunDir:
    """Reads and writes one run's files."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @staticmethod
    def check_free(path: str | Path) -> None:
        """Refuse a folder that holds a run already, or a file."""
        path = Path(path)
        if is_run(path) or (path / "last.pt").exists():
            raise RunError(
                f"{path} already holds a run; resume it with "
                f"`zoo finetune --resume {path}` or choose another --output"
            )
        if path.exists() and not path.is_dir():
            raise RunError(f"--output {path} is a file, not a folder")
        _check_writable(path)

    @classmethod
    def create(cls, path: str | Path) -> RunDir:
        """A new run directory; refuses one that holds a run already."""
        cls.check_free(path)
        Path(path).mkdir(parents=True, exist_ok=True)
        return cls(Path(path))

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run, for resuming; temporary files of a killed writer are removed."""
        path = Path(path)
        if not is_run(path):
            raise RunError(
                f"{path} is not a zoo run (no config.json); pass the folder "
                "that `zoo finetune` created"
            )
        remove_stale_temporaries(path)
        return cls(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def write_config(self, config: dict) -> None:
        write_json(self.file("config.json"), config)

    def read_config(self) -> dict:
        """config.json, checked enough to resume from; RunError if it is damaged."""
        try:
            record = json.loads(self.file("config.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise self._damaged(f"not valid JSON: {exc}") from None
        if not isinstance(record, dict):
            raise self._damaged("not a JSON object")
        wrong = [k for k, kind in CONFIG_FIELDS.items() if not isinstance(record.get(k), kind)]
        if wrong:
            raise self._damaged(f"missing or malformed: {', '.join(wrong)}")
        return record

    def valid_set(self) -> tuple[str, list[tuple[str, int]]]:
        """The run's own validation set: its data folder and the (path, label) pairs it
        validated on (a --val-split run's held-out files); RunError if it has none."""
        record = self.read_config() if self.file("config.json").is_file() else {}
        if not record.get("valid_files"):
            raise RunError(
                f"{self.path} does not record its validation set (a run made before zoo did); "
                "pass --data FOLDER"
            )
        data = record.get("data") or record.get("options", {}).get("labels")
        return data, [(str(p), _label(label)) for p, label in record["valid_files"]]

    def _damaged(self, why: str) -> RunError:
        return RunError(
            f"{self.file('config.json')} is damaged ({why}); restore it from a copy of "
            "the run, or start a new run"
        )

    def metrics(self) -> list[dict]:
        path = self.file("metrics.jsonl")
        if not path.exists():
            return []
        return [
            json.loads(line)
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]

    def write_metrics(self, rows: list[dict]) -> None:
        """Rewrite metrics.jsonl with ``rows`` (a small file, written whole each epoch)."""
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        atomic_write_bytes(self.file("metrics.jsonl"), text.encode())

    def save_best(self, state_dict: dict, meta: dict) -> None:
        save_torch({"state_dict": state_dict, "meta": meta}, self.file("best.pt"))

    def save_last(self, state: dict) -> None:
        save_torch(state, self.file("last.pt"))

    def read_last(self) -> dict:
        return read_checkpoint(self.file("last.pt"))

    def write_summary(self, summary: dict) -> None:
        write_json(self.file("summary.json"), summary)

    def draw_curves(self, rows: list[dict], title: str) -> None:
        plot_curves(rows, self.file("curves.png"), title=title)

    def write_card(self) -> None:
        """README.md, the model card, from the files written so far."""
        from zoo.runs._card import write_card

        write_card(self.path)


def versions() -> dict:
    """Library versions for config.json."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("zoo", "torch", "torchvision", "timm"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def _check_writable(path: Path) -> None:
    """Refuse an output folder that cannot be made or written (checked before a run loads its
    model and data, not when its first file is due)."""
    import os

    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise RunError(f"--output {path} cannot be made: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunError(f"--output {path} cannot be written: {existing} is not writable")


def _label(value):
    """A recorded label: a class index, or a multi-label run's 0/1 tuple (a JSON list)."""
    return tuple(int(v) for v in value) if isinstance(value, list) else int(value)
