"""Helpers that write real image files for tests: any PIL mode, whole class folders, and the
broken files a real dataset has (truncated, not an image, empty, decompression bombs).

    >>> make_image_folder(tmp_path / "pets", ["cat", "dog"], per_class=5, layout="train-valid")
    >>> write_image(tmp_path / "grey16.png", mode="I;16", color=32768)
"""

from __future__ import annotations

import colorsys
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

LAYOUTS = ("split", "train-valid", "train-val")
EXIF_ORIENTATION = 0x0112


def pattern(size: tuple[int, int], seed: int = 0, hue: float | None = None) -> np.ndarray:
    """A deterministic (height, width, 3) uint8 picture: a gradient in ``hue`` plus noise."""
    width, height = size
    rng = np.random.default_rng(seed)
    hue = rng.random() if hue is None else hue
    base = np.array(colorsys.hsv_to_rgb(hue, 0.8, 0.9)) * 255
    ramp = np.linspace(0.6, 1.0, width)[None, :, None]
    noise = rng.normal(0, 12, (height, width, 3))
    return np.clip(base * ramp + noise, 0, 255).astype(np.uint8)


def write_image(
    path: str | Path,
    mode: str = "RGB",
    size: tuple[int, int] = (32, 32),
    *,
    color: float | tuple | None = None,
    seed: int = 0,
    hue: float | None = None,
    exif_orientation: int | None = None,
    **save_options,
) -> Path:
    """Write a real image file in PIL ``mode`` (``I;16``, ``I`` and ``F`` included); the format
    follows the extension. ``color`` fills the image (an int for ``I;16``, a float for ``F``, a
    tuple with alpha for ``RGBA``); otherwise it holds a noisy gradient. ``size`` is (w, h)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if color is not None:
        image = Image.new(mode, size, color)
    else:
        image = _pattern_image(mode, size, seed, hue)
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = exif_orientation
        save_options["exif"] = exif.tobytes()
    image.save(path, **save_options)
    return path


def _pattern_image(mode: str, size: tuple[int, int], seed: int, hue: float | None) -> Image.Image:
    rgb = pattern(size, seed, hue)
    grey = rgb.mean(axis=2)
    if mode == "I;16":
        return Image.fromarray((grey * 257).astype(np.uint16))
    if mode == "I":
        return Image.fromarray((grey * 257).astype(np.int32))
    if mode == "F":
        return Image.fromarray((grey / 255).astype(np.float32))
    if mode == "P":
        return Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    return Image.fromarray(rgb).convert(mode)


def make_image_folder(
    root: str | Path,
    classes: list[str],
    per_class: int | tuple[int, int] = 4,
    layout: str = "split",
    size: tuple[int, int] = (32, 32),
    ext: str = ".png",
) -> Path:
    """Write an image folder: ``root/<class>/*`` ("split") or ``root/train/<class>/*`` and
    ``root/valid/<class>/*`` ("train-valid"; "train-val" names it ``val``). ``per_class`` is a
    count, or (train, valid) counts for the train layouts. Each class has its own hue, so a
    model can learn them apart."""
    root = Path(root)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    n_train, n_valid = per_class if isinstance(per_class, tuple) else (per_class, per_class)
    parts = {"split": [("", n_train)], "train-valid": [("train", n_train), ("valid", n_valid)]}
    parts["train-val"] = [("train", n_train), ("val", n_valid)]
    for part, count in parts[layout]:
        for label, name in enumerate(classes):
            for i in range(count):
                path = root / part / name / f"{name}_{i:03d}{ext}"
                seed = label * 1000 + i + (500 if part in ("valid", "val") else 0)
                write_image(path, size=size, seed=seed, hue=label / len(classes))
    return root


def write_truncated(path: str | Path, size: tuple[int, int] = (64, 64), keep: float = 0.5) -> Path:
    """A real image (format from the extension) cut after ``keep`` of its bytes."""
    path = write_image(path, size=size)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write_not_an_image(path: str | Path) -> Path:
    """A text file with an image's name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is not an image, whatever its name says\n")
    return path


def write_empty(path: str | Path) -> Path:
    """A zero-byte file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write_png_bomb(path: str | Path, width: int = 10_000, height: int = 10_000) -> Path:
    """A valid 1-bit PNG of ``width`` x ``height`` black pixels: a few KB on disk, far more
    decoded. The default (10^8 pixels) is over PIL's warning limit but under its error limit."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then 8 pixels a byte
    pixels = zlib.compress(row * height, 9)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    chunks = [(b"IHDR", header), (b"IDAT", pixels), (b"IEND", b"")]
    data = b"\x89PNG\r\n\x1a\n" + b"".join(_png_chunk(kind, body) for kind, body in chunks)
    path.write_bytes(data)
    return path


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


# ---------------------------------------------------------------- multi-label data

SHAPES = ("circle", "square", "triangle")


def draw_shapes(present: list[str], size: int = 32, seed: int = 0) -> Image.Image:
    """A noisy grey picture holding each shape in ``present`` (of ``SHAPES``), each in a random
    bright colour (so the colour says nothing of the shape), at a random place and scale."""
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(128, 20, (size, size, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    for name in present:
        colour = tuple(int(c * 255) for c in colorsys.hsv_to_rgb(rng.random(), 0.9, 0.95))
        r = rng.uniform(0.16, 0.24) * size
        x, y = rng.uniform(r, size - r, size=2)
        box = [x - r, y - r, x + r, y + r]
        if name == "circle":
            draw.ellipse(box, fill=colour)
        elif name == "square":
            draw.rectangle(box, fill=colour)
        else:
            draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)
    return image


def make_multilabel_shapes(
    root: str | Path, n_train: int = 48, n_valid: int = 24, size: int = 32, seed: int = 0
) -> Path:
    """Images with several shapes each under ``root/img/`` and ``root/tags.csv`` (image, label
    with the shapes present joined by '|', split). Each shape is present in an image with
    probability one half, independently; an image may hold none. Returns the CSV's path."""
    root = Path(root)
    (root / "img").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = ["image,label,split"]
    for i in range(n_train + n_valid):
        present = [name for name in SHAPES if rng.random() < 0.5]
        name = f"img/{i:04d}.png"
        draw_shapes(present, size, seed * 100_003 + i).save(root / name)
        lines.append(f"{name},{'|'.join(present)},{'train' if i < n_train else 'valid'}")
    (root / "tags.csv").write_text("\n".join(lines) + "\n")
    return root / "tags.csv"
