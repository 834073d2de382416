"""The small dataset embedded in zoo, used by ``zoo finetune`` when no ``--data`` is given.

Nothing is shipped or downloaded: the images (coloured shapes on textured backgrounds) are
drawn with PIL from a fixed seed, the same bytes every time, into ``$ZOO_HOME/datasets`` on
first use. A change to what is drawn must change ``NAME``, so old copies are never reused.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

NAME = "shapes-v2"
CLASSES = ("circle", "cross", "square", "star", "triangle")
IMAGE_SIZE = 64
COUNTS = {"train": 120, "valid": 30}  # images per class
SEED = 20261122
SUPERSAMPLE = 4  # shapes are drawn this much larger, then downsampled, for smooth edges

README = f"""\
{NAME}: the dataset embedded in zoo, drawn by zoo.data (no file was downloaded).
{len(CLASSES)} classes ({", ".join(CLASSES)}), {IMAGE_SIZE}x{IMAGE_SIZE} JPEG images,
{COUNTS["train"]} per class in train/ and {COUNTS["valid"]} per class in valid/: one shape of
random size, position and colour, lighter than its dark, noisy, textured background.
Delete this folder at will; zoo draws it again, identically.
"""


def embedded_dataset(root: str | os.PathLike | None = None) -> Path:
    """The embedded dataset's folder (a train/valid layout), drawn on first use.

    ``root`` is the folder that holds datasets, by default ``$ZOO_HOME/datasets``. The images
    are drawn into a temporary folder that is then renamed, so an interrupted run never leaves a
    half dataset behind, and later calls reuse the folder as it is.

    Example:
        >>> path = embedded_dataset()
        >>> path.name, sorted(p.name for p in (path / "train").iterdir())
        ('shapes-v2', ['circle', 'cross', 'square', 'star', 'triangle'])
    """
    from zoo.env import zoo_home

    parent = Path(root).expanduser() if root is not None else zoo_home() / "datasets"
    target = parent / NAME
    if target.is_dir():
        return target
    parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=parent))  # hidden: never scanned
    try:
        _draw_dataset(scratch)
        scratch.rename(target)
    except OSError:
        if not target.is_dir():  # otherwise another process finished first: use its copy
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _draw_dataset(folder: Path) -> None:
    for split_index, (split, count) in enumerate(COUNTS.items()):
        for label, name in enumerate(CLASSES):
            (folder / split / name).mkdir(parents=True)
            for i in range(count):
                image = draw_shape(name, seed=(SEED, split_index, label, i))
                image.save(folder / split / name / f"{name}_{i:03d}.jpg", quality=92)
    (folder / "README.txt").write_text(README)


def draw_shape(name: str, seed: tuple[int, ...] | int = 0, size: int = IMAGE_SIZE) -> Image.Image:
    """One ``size`` x ``size`` RGB image of the shape ``name`` (one of ``CLASSES``).

    Example:
        >>> draw_shape("star", seed=3).size
        (64, 64)
    """
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    background = _background(rng, size)
    ink = _brighter_colour(rng, background.reshape(-1, 3).mean(axis=0))
    big = size * SUPERSAMPLE
    radius = rng.uniform(0.3, 0.44) * big
    centre = rng.uniform(radius * 0.85, big - radius * 0.85, size=2)
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    if name == "circle":
        x, y = centre
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=255)
    else:
        draw.polygon(_outline(name, centre, radius, rng.uniform(-0.25, 0.25)), fill=255)
    alpha = np.asarray(mask.resize((size, size), Image.Resampling.BOX), np.float32)[..., None] / 255
    texture = rng.normal(0, 10, (size, size, 1))  # shade the shape too, so flat fill is no cue
    pixels = background * (1 - alpha) + (ink + texture) * alpha
    pixels += rng.normal(0, 6, pixels.shape)  # sensor noise over everything
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A dark base colour with a gradient, soft blotches and fine noise."""
    import numpy as np
    from PIL import Image

    base = rng.uniform(0, 110, 3)
    ramp = np.linspace(-1, 1, size)
    angle = rng.uniform(0, 2 * math.pi)
    gradient = (math.cos(angle) * ramp[None, :] + math.sin(angle) * ramp[:, None])[..., None]
    coarse = rng.normal(0, 1, (6, 6, 3)).astype(np.float32)
    blotches = np.stack(
        [
            np.asarray(Image.fromarray(c).resize((size, size), Image.Resampling.BICUBIC))
            for c in coarse.transpose(2, 0, 1)
        ],
        axis=-1,
    )
    fine = rng.normal(0, 1, (size, size, 3))
    texture = gradient * rng.uniform(5, 16, 3) + blotches * rng.uniform(4, 11) + fine * 6
    return np.clip(base + texture, 0, 255)


def _brighter_colour(rng: np.random.Generator, than: np.ndarray) -> np.ndarray:
    """A colour of random hue clearly brighter than ``than``.

    A from-scratch network learns the silhouettes in a few epochs when the shape is always the
    brighter side of its outline; with random polarity as well as random hue it only memorises.
    """
    import numpy as np

    luma = np.array([0.299, 0.587, 0.114])
    for _ in range(1000):
        colour = rng.uniform(0, 255, 3)
        if (colour - than) @ luma > 100:
            return colour
    return np.full(3, 255.0)  # white is always bright enough; practically never reached


def _outline(
    name: str, centre: np.ndarray, radius: float, turn: float
) -> list[tuple[float, float]]:
    """The polygon of ``name`` around ``centre``, rotated by ``turn`` radians."""
    if name == "square":
        points = [(1.0, math.pi / 4 + k * math.pi / 2) for k in range(4)]
    elif name == "triangle":
        points = [(1.0, math.pi / 2 + k * 2 * math.pi / 3) for k in range(3)]
    elif name == "star":
        points = [(1.0 if k % 2 == 0 else 0.42, math.pi / 2 + k * math.pi / 5) for k in range(10)]
    elif name == "cross":
        arm = 0.32  # half the arm width, as a fraction of the radius
        corners = [(arm, 1.0), (arm, arm), (1.0, arm)]  # one quarter of a plus sign, (x, y)
        points = []
        for k in range(4):
            for x, y in corners:
                a = math.atan2(y, x) - k * math.pi / 2  # clockwise, like each quarter
                points.append((math.hypot(x, y) / math.sqrt(1 + arm**2), a))
    else:
        raise ValueError(f"unknown shape {name!r}; expected one of {', '.join(CLASSES)}")
    cx, cy = centre
    return [
        (cx + r * radius * math.cos(a + turn), cy - r * radius * math.sin(a + turn))
        for r, a in points
    ]
