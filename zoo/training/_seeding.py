"""Seeding and saving every random generator a run uses (Python, NumPy, torch)."""

from __future__ import annotations

import random


def seed_everything(seed: int, epoch: int = 0) -> None:
    """Seed Python, NumPy and torch from (seed, epoch)."""
    import numpy as np
    import torch

    value = seed * 100_003 + epoch
    random.seed(value)
    np.random.seed(value % 2**32)
    torch.manual_seed(value)


def rng_state() -> dict:
    import numpy as np
    import torch

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "torch": torch.get_rng_state(),
        "numpy": [kind, keys.tolist(), pos, has_gauss, gauss],
    }


def restore_rng(state: dict | None) -> None:
    import numpy as np
    import torch

    if not state:
        return
    random.setstate(_tuples(state["python"]))
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value
