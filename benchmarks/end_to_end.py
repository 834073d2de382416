"""`make bench-gpu`, second part: a whole `zoo finetune` on a folder of generated JPEGs.

Photo-like JPEGs (``decode.make_photos``, 500x375 by default) in 10 classes are fine-tuned
as a user would: resnet50 at 224 px, ``--precision auto``, channels_last, random resized crop
and flip (so every epoch decodes every training image), the default DataLoader workers. The
steady epoch (the last) gives the end-to-end img/s; against the step alone on images already
on the device (``throughput.measure``), the rest of the time is the input pipeline's share.
Also printed: the GPU's name, the workers used and the peak GPU memory.

    python benchmarks/end_to_end.py
    python benchmarks/end_to_end.py --images 1280 --epochs 2 --json e2e.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from decode import make_photos

CLASSES = 10


def make_folder(root: Path, images: int, photo: tuple[int, int]) -> Path:
    """root/{train,valid}/<class>/*.jpg: ``images`` training JPEGs, a fifth as many valid."""
    for part, count in (("train", images), ("valid", max(CLASSES, images // 5))):
        for c in range(CLASSES):
            folder = root / part / f"class{c}"
            folder.mkdir(parents=True, exist_ok=True)
            make_photos(folder, count // CLASSES, photo, seed=c)
    return root


def finetune(data: Path, o: argparse.Namespace, out: Path) -> dict:
    import torch

    import zoo
    from zoo.data import default_workers

    device = torch.device(o.device if o.device != "auto" else "cuda")
    gpu = device.type == "cuda"
    if gpu:
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    result = zoo.finetune(
        o.arch, str(data), output=str(out), weights="none", epochs=o.epochs,
        batch_size=o.batch_size, image_size=o.image_size, lr=0.01, precision="auto",
        device=o.device, compile=o.compile,
    )  # fmt: skip
    last = result.metrics[-1]
    return {
        "images_per_s": last["train_images_per_s"],
        "steady_epoch_s": last["seconds"],
        "run_s": time.perf_counter() - start,
        "precision": json.loads((out / "config.json").read_text())["options"]["precision"],
        "workers": default_workers(device, o.images // o.batch_size),
        "peak_memory_mb": torch.cuda.max_memory_allocated(device) / 2**20 if gpu else None,
        "device": torch.cuda.get_device_name(device) if gpu else "cpu",
    }


def main(argv: list[str] | None = None, step_images_per_s: float | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--images", type=int, default=5120, help="training JPEGs")
    parser.add_argument("--photo", default="500x375", help="the JPEGs' size, WxH")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--device", default="auto", help="auto (the first GPU), cuda:N, or cpu (a dry run)"
    )
    parser.add_argument("--compile", action="store_true", help="zoo finetune --compile")
    parser.add_argument("--json", help="also write the results here")
    o = parser.parse_args(argv)
    import torch

    if o.device == "auto" and not torch.cuda.is_available():
        print("end to end: no CUDA GPU on this machine; the script is ready for one")
        return None
    width, height = (int(x) for x in o.photo.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="zoo-e2e-") as tmp:
        data = make_folder(Path(tmp) / "data", o.images, (width, height))
        r = finetune(data, o, Path(tmp) / "run")
    if step_images_per_s:
        r["loader_share"] = max(0.0, 1 - r["images_per_s"] / step_images_per_s)
    print(describe(r, o))
    if o.json:
        Path(o.json).write_text(json.dumps(r, indent=2))
    return r


def describe(r: dict, o: argparse.Namespace) -> str:
    share = f", input pipeline {r['loader_share']:.0%} of the time" if "loader_share" in r else ""
    return (
        f"end to end on {r['device']}: {o.arch} at {o.image_size} px from {o.photo} JPEGs, "
        f"{r['precision']}, {r['workers']} workers: {r['images_per_s']:,.0f} img/s in the steady "
        f"epoch ({r['steady_epoch_s']:.1f}s){share}; peak GPU memory "
        f"{r['peak_memory_mb'] or 0:,.0f} MB; whole run {r['run_s']:.0f}s"
    )


if __name__ == "__main__":
    main()
