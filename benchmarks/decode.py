"""What one DataLoader worker decodes and augments per second: the cores a GPU needs.

Generated photo-like JPEGs (smooth gradients plus noise, quality 90) at ``--photo`` size go
through zoo's own dataset and transforms in this one process, as a worker runs them: the
training transform (random resized crop to ``--image-size`` and flip, then normalised) and the
evaluation one (resize and centre crop), each with zoo's reduced-size JPEG decoding
(``draft``) and without. A GPU that trains at R img/s needs about R / (train img/s) workers.

    .venv/bin/python benchmarks/decode.py
    .venv/bin/python benchmarks/decode.py --photo 1600x1200 --images 64 --json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def make_photos(
    folder: Path, count: int, size: tuple[int, int], seed: int = 0
) -> list[tuple[str, int]]:
    """``count`` JPEGs in ``folder``: a colour per image over a shaded ramp, plus noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    ramp = np.linspace(0, 1, width)[None, :, None] * np.linspace(0.3, 1, height)[:, None, None]
    samples = []
    for i in range(count):
        colour = rng.uniform(40, 215, 3)
        noise = rng.normal(0, 10, (height, width, 3))
        pixels = np.clip(colour * (0.5 + ramp) + noise, 0, 255).astype("uint8")
        path = folder / f"{i}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        samples.append((str(path), 0))
    return samples


def rate(samples, image_size: int, *, train: bool, draft: bool, rounds: int) -> float:
    """Images per second through ``ImageDataset`` with zoo's transform, one process."""
    from zoo.data import ImageDataset, Preprocessing, build_transform, decode_side

    pre = Preprocessing(input_size=(3, image_size, image_size))
    side = decode_side(pre, train=train, augment=True) if draft else None
    dataset = ImageDataset(samples, build_transform(pre, train=train, augment=True), side)
    dataset[0]  # imports and first-call costs out of the timing
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(len(dataset)):
            dataset[i]
        best = max(best, len(dataset) / (time.perf_counter() - start))
    return best


def measure(photo: tuple[int, int], image_size: int, images: int, rounds: int = 2) -> dict:
    import torch

    torch.set_num_threads(1)  # as in a DataLoader worker
    with tempfile.TemporaryDirectory(prefix="zoo-decode-") as tmp:
        samples = make_photos(Path(tmp), images, photo)
        return {
            "photo": f"{photo[0]}x{photo[1]}",
            "image_size": image_size,
            **{
                f"{phase}{'' if draft else '_full_decode'}_img_per_s": rate(
                    samples, image_size, train=phase == "train", draft=draft, rounds=rounds
                )
                for phase in ("train", "eval")
                for draft in (True, False)
            },
        }


def describe(r: dict) -> str:
    return (
        f"one worker, {r['photo']} JPEGs to {r['image_size']} px: train (random resized crop, "
        f"flip) {r['train_img_per_s']:.0f} img/s ({r['train_full_decode_img_per_s']:.0f} "
        f"decoding at full size), eval (resize, centre crop) {r['eval_img_per_s']:.0f} img/s "
        f"({r['eval_full_decode_img_per_s']:.0f})"
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", default="500x375", help="the JPEGs' size, WxH")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    o = parser.parse_args(argv)
    width, height = (int(x) for x in o.photo.lower().split("x"))
    result = measure((width, height), o.image_size, o.images)
    print(json.dumps(result) if o.json else describe(result))
    return result


if __name__ == "__main__":
    main()
