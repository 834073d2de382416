"""timm's published results, shipped inside zoo as data (``timm_metadata.json``, rebuilt from
timm's CSV tables by ``scripts/build_timm_metadata.py``, which says where they came from).

GMACs are timm's ``infer_gmacs``: a multiply-add counted once, as torchvision's ``_ops``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

TABLE = Path(__file__).with_name("timm_metadata.json")


@functools.cache
def _tables() -> dict:
    return json.loads(TABLE.read_text())


def tag_metadata(name: str, input_size) -> dict:
    """``params``, ``gflops``, ``top1``, ``top5`` of ``arch.tag`` at ``input_size`` (C, H, W):
    the results row at that size, the benchmark's GMACs at that size, None where missing."""
    arch = name.partition(".")[0]
    size = str(input_size[-1]) if input_size else None
    row = _tables()["results"].get(name, {}).get(size)
    bench = _tables()["benchmarks"].get(arch, {})
    millions = row[2] if row else bench.get("params_m")
    return {
        "params": round(millions * 1e6) if millions is not None else None,
        "gflops": bench.get("gmacs", {}).get(size),
        "top1": row[0] if row else None,
        "top5": row[1] if row else None,
    }
