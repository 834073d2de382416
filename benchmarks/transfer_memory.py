"""Peak extra memory of ``zoo.transfer`` from a big checkpoint into an existing model.

Writes a synthetic checkpoint of about 540 MB as ``.pt`` and as ``.safetensors`` to a temporary
folder, then, for each, starts a fresh process that builds the model, and measures how far the
process's peak resident memory (``VmHWM``) rises while ``transfer(model, path)`` runs. Memory
mapping should keep that near the checkpoint's size; a loader that held the file twice would
show 2x. Target: at most 1.5x. The rise that remains is the file's pages mapped in: clean page
cache, which the kernel can drop under pressure, not a copy.

    .venv/bin/python benchmarks/transfer_memory.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS, WIDTH = 8, 4096  # 8 x 4096 x 4096 float32 = 537 MB of weights
TARGET_RATIO = 1.5


def _model():
    import torch

    return torch.nn.Sequential(*(torch.nn.Linear(WIDTH, WIDTH) for _ in range(LAYERS)))


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(path: str) -> dict:
    """In this process: build the model, then measure the peak RSS rise during transfer."""
    from zoo.transfer import transfer

    model = _model()  # initialised, so its own pages are resident before we measure
    # Writing 5 to clear_refs resets VmHWM, so the peak is the transfer's alone.
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    report = transfer(model, path, strict=True)
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    return {"extra_bytes": (peak - before) * 1024, "seconds": seconds, "cov": report.coverage}


def _write_checkpoints(folder: Path) -> list[Path]:
    import torch

    from zoo.files import save_safetensors, save_torch

    torch.manual_seed(0)
    state = {k: torch.randn_like(v) for k, v in _model().state_dict().items()}
    paths = [folder / "big.pt", folder / "big.safetensors"]
    save_torch(state, paths[0])
    save_safetensors(state, paths[1])
    return paths


def _run_child(path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    sys.path.insert(0, str(REPO))
    failed = False
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        paths = _write_checkpoints(Path(tmp))
        print(f"{'format':<13} {'checkpoint':>11} {'peak extra':>11} {'ratio':>6} {'seconds':>8}")
        for path in paths:
            size = path.stat().st_size
            result = _run_child(path)
            ratio = result["extra_bytes"] / size
            failed |= ratio > TARGET_RATIO or result["cov"] != 1.0
            print(
                f"{path.suffix:<13} {size / 1e6:>8.0f} MB {result['extra_bytes'] / 1e6:>8.0f} MB "
                f"{ratio:>5.2f}x {result['seconds']:>8.2f}"
            )
    print(f"target: ratio <= {TARGET_RATIO}x; {'FAILED' if failed else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sys.path.insert(0, str(REPO))
        print(json.dumps(measure(sys.argv[2])))
    else:
        sys.exit(main())
