"""Reading image files: every image as 8-bit RGB the way it is meant to be seen, and the
files that cannot be read, with the reason, found up front.

    >>> load_rgb("scans/xray.png").mode
    'RGB'
    >>> find_unreadable(["ok.jpg", "empty.jpg"])
    [('empty.jpg', 'empty file (0 bytes)')]
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
# The files ``find_unreadable`` decoded whole in this process, as (path, size, mtime, inode,
# PIL's pixel limit): unchanged, they are not decoded again (``zoo compare`` screens the same
# images for each backbone).
_READABLE: set[tuple] = set()
MAX_REMEMBERED = 200_000


def load_rgb(path: str | os.PathLike, min_side: int | None = None) -> Image.Image:
    """Read an image fully as 8-bit RGB, the way it is meant to be seen.

    With ``min_side``, a JPEG at least twice that size on both sides is decoded at 1/2, 1/4
    or 1/8 scale (PIL's ``draft``: the decoder skips the detail), never below ``min_side``:
    several times faster for photos much larger than the model's input.

    EXIF orientation is applied; transparency is composited onto white; 16-bit images (``I;16``
    and ``I``, which PIL uses for 16-bit PGM and TIFF) are scaled from 0..65535 to 0..255; float
    (``F``) images are read as 0..1 when all their values lie in that range, as 0..255 otherwise.
    Images over ``PIL.Image.MAX_IMAGE_PIXELS`` are refused as decompression bombs, and truncated
    files raise rather than being padded.

    Example:
        >>> load_rgb("scans/xray.png").mode
        'RGB'
    """
    from PIL import Image, ImageOps

    with _bomb_warnings_as_errors(), Image.open(path) as im:
        _refuse_bomb(im)
        if min_side:
            im.draft(im.mode, (min_side, min_side))
        im.load()
        try:
            upright = ImageOps.exif_transpose(im)
        except Exception:  # a damaged EXIF block should not cost the image its pixels
            upright = im.copy()
        return _to_rgb(upright)


@contextmanager
def _bomb_warnings_as_errors() -> Iterator[None]:
    # Warning filters are process-wide and catch_warnings is not thread-safe, so only the main
    # thread changes them; _refuse_bomb refuses warning-level bombs in every thread anyway.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _refuse_bomb(im: Image.Image) -> None:
    # PIL only warns between MAX_IMAGE_PIXELS and twice that; zoo refuses from the first limit.
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    if limit and im.width * im.height > limit:
        raise Image.DecompressionBombError(
            f"{im.width}x{im.height} pixels is over the decompression-bomb limit of {limit}"
            " (PIL.Image.MAX_IMAGE_PIXELS)"
        )


def _to_rgb(im: Image.Image) -> Image.Image:
    from PIL import Image

    if im.mode.startswith("I"):
        return _grey_to_rgb(im, scale=1 / 257, top=65535)
    if im.mode == "F":
        return _grey_to_rgb(im, scale=None, top=255)
    if im.mode in ALPHA_MODES or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        white.alpha_composite(rgba)
        return white.convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def _grey_to_rgb(im: Image.Image, *, scale: float | None, top: float) -> Image.Image:
    # PIL's own convert clips these modes to 0..255, which turns a 16-bit mid grey white.
    import numpy as np
    from PIL import Image

    values = np.nan_to_num(np.asarray(im, dtype=np.float32), nan=0.0, posinf=top, neginf=0.0)
    values = np.clip(values, 0, top)
    if scale is None:  # float: 0..1 if everything fits there, else PIL's 0..255 convention
        scale = 255.0 if values.size and values.max() <= 1.0 else 1.0
    grey = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


def find_unreadable(
    paths: Iterable[str | os.PathLike], workers: int | None = None
) -> list[tuple[str, str]]:
    """The files that cannot be read in full, each with the reason, in the order given.

    Each file is decoded completely with ``load_rgb`` on a thread pool (decoding releases the
    GIL), so truncated files, empty files, non-images and decompression bombs are all caught.
    A file this process found readable before is not decoded again while its size, modification
    time, inode and PIL's pixel limit stay the same.

    Example:
        >>> find_unreadable(["ok.jpg", "empty.jpg"])
        [('empty.jpg', 'empty file (0 bytes)')]
    """
    paths = [os.fspath(p) for p in paths]
    workers = workers or min(8, (os.cpu_count() or 1) + 2)
    with _bomb_warnings_as_errors(), ThreadPoolExecutor(max_workers=workers) as pool:
        reasons = list(pool.map(_why_unreadable, paths))
    return [
        (path, reason) for path, reason in zip(paths, reasons, strict=True) if reason is not None
    ]


def _why_unreadable(path: str) -> str | None:
    from PIL import Image

    try:
        try:
            stat = os.stat(path)
        except FileNotFoundError:  # a labels CSV can name a file that is gone
            return "file not found"
        if stat.st_size == 0:
            return "empty file (0 bytes)"
        seen = (path, stat.st_size, stat.st_mtime_ns, stat.st_ino, Image.MAX_IMAGE_PIXELS)
        if seen in _READABLE:
            return None
        load_rgb(path)
        if len(_READABLE) < MAX_REMEMBERED:
            _READABLE.add(seen)
    except Image.UnidentifiedImageError:
        return "not an image, or in a format PIL cannot read"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        return f"refused as a possible decompression bomb: {e}"
    except Exception as e:  # decoders raise many types; any failure means the file is unusable
        return str(e) or type(e).__name__
    return None
