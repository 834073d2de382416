"""zoo.runs plots: curves and confusion matrices land as real PNG files, atomically."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoo.runs import plot_confusion, plot_curves

ROOT = Path(__file__).resolve().parent.parent


def _rows(epochs: int) -> list[dict]:
    return [
        {
            "epoch": e,
            "train_loss": 0.7 * math.exp(-e / 5),
            "train_acc": 1 - 0.5 * math.exp(-e / 4),
            "val_loss": 0.6 * math.exp(-e / 7) + 0.2,
            "val_acc": 0.9 - 0.3 * math.exp(-e / 3) - (0.05 if e == epochs else 0),
            "lr": 0.001 * 0.1 ** ((e - 1) // 7),
        }
        for e in range(1, epochs + 1)
    ]


def _assert_png(path, min_size: tuple[int, int]) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
        # Not blank: a drawn figure has many distinct colours.
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 50
    assert width >= min_size[0] and height >= min_size[1]
    return width, height


def _leftovers(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if not name.endswith(".png"))


@pytest.mark.parametrize("epochs", [1, 3, 25])
def test_curves_png_for_any_number_of_epochs(tmp_path, epochs):
    path = plot_curves(_rows(epochs), tmp_path / "curves.png", title="tiny-20261122-101500")
    assert path == tmp_path / "curves.png"
    assert _assert_png(path, (900, 380)) == (1000, 420)
    assert _leftovers(tmp_path) == []


def test_curves_take_rows_out_of_order_and_create_the_folder(tmp_path):
    rows = list(reversed(_rows(4)))
    path = plot_curves(rows, tmp_path / "run" / "sub" / "curves.png")
    _assert_png(path, (900, 380))


def test_curves_tolerate_missing_values(tmp_path):
    rows = _rows(3)
    rows[1]["val_loss"] = None
    del rows[2]["lr"]
    _assert_png(plot_curves(rows, tmp_path / "curves.png"), (900, 380))


def test_curves_replace_an_existing_file_atomically(tmp_path):
    path = tmp_path / "curves.png"
    path.write_bytes(b"old")
    plot_curves(_rows(2), path)
    _assert_png(path, (900, 380))
    assert _leftovers(tmp_path) == []
    assert path.stat().st_mode & 0o044, "the PNG is readable by others, unlike mkstemp's 0600"


def test_curves_refuse_empty_rows(tmp_path):
    with pytest.raises(ValueError, match="no epochs"):
        plot_curves([], tmp_path / "curves.png")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("n", [2, 5, 30, 50])
def test_confusion_png_for_2_to_50_classes(tmp_path, n):
    rng = np.random.default_rng(n)
    matrix = rng.integers(0, 4, (n, n)) + np.diag(rng.integers(5, 20, n))
    names = [f"class_with_a_long_name_{i}" for i in range(n)]
    path = plot_confusion(matrix, names, tmp_path / "confusion.png", title="tiny")
    width, height = _assert_png(path, (500, 500))
    assert width <= 2000 and height <= 2000
    assert _leftovers(tmp_path) == []


def test_confusion_accepts_lists_and_empty_rows(tmp_path):
    path = plot_confusion([[3, 1, 0], [0, 0, 0], [1, 0, 4]], ["a", "b", "c"], tmp_path / "c.png")
    _assert_png(path, (500, 500))


def test_confusion_rejects_a_matrix_that_does_not_match_the_names(tmp_path):
    with pytest.raises(ValueError, match=r"expected \(3, 3\)"):
        plot_confusion([[1, 0], [0, 1]], ["a", "b", "c"], tmp_path / "c.png")
    assert os.listdir(tmp_path) == []


def test_confusion_rejects_fractions_instead_of_counts(tmp_path):
    with pytest.raises(ValueError, match="counts"):
        plot_confusion([[0.8, 0.2], [0.1, 0.9]], ["a", "b"], tmp_path / "c.png")


def test_failed_save_leaves_no_temporary_file(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", boom)
    with pytest.raises(OSError, match="disk full"):
        plot_curves(_rows(2), tmp_path / "curves.png")
    assert os.listdir(tmp_path) == []


def test_plotting_leaves_pyplot_and_the_backend_alone(tmp_path):
    code = (
        "import sys, matplotlib; matplotlib.use('svg');"
        "from zoo.runs import plot_curves, plot_confusion;"
        f"plot_curves({_rows(2)!r}, {str(tmp_path / 'a.png')!r});"
        f"plot_confusion([[1, 0], [0, 1]], ['a', 'b'], {str(tmp_path / 'b.png')!r});"
        "assert 'matplotlib.pyplot' not in sys.modules;"
        "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png"]


def test_importing_plots_does_not_import_matplotlib():
    code = "import sys, zoo.runs; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def _keep_figures(monkeypatch) -> list:
    """The figures the plots save, drawn, for looking at what landed on them."""
    import zoo.runs._plots as plots

    saved, save = [], plots._save_atomic
    monkeypatch.setattr(
        plots, "_save_atomic", lambda fig, path: saved.append(fig) or save(fig, path)
    )
    return saved


def test_confusion_title_wraps_to_fit_the_picture(tmp_path, monkeypatch):
    saved = _keep_figures(monkeypatch)
    title = "torchvision:resnet18 on /home/someone/datasets/a-rather-long-folder-name/valid"
    plot_confusion([[3, 1], [0, 4]], ["cat", "dog"], tmp_path / "cm.png", title=title)
    fig = saved[0]
    box = fig._suptitle.get_window_extent(fig.canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width
    assert fig._suptitle.get_text().replace("\n", " ").startswith("torchvision:resnet18 on")


@pytest.mark.parametrize(
    ("suffix", "magic"), [("pdf", b"%PDF"), ("svg", b"<?xml"), ("png", b"\x89PNG")]
)
def test_picture_format_follows_the_suffix(tmp_path, suffix, magic):
    path = plot_confusion([[3, 1], [0, 4]], ["cat", "dog"], tmp_path / f"cm.{suffix}")
    assert path.read_bytes().startswith(magic)


def test_a_suffix_matplotlib_cannot_write_is_one_line(tmp_path):
    from zoo.errors import ZooError

    with pytest.raises(ZooError, match=r"\.txt is not an image format") as raised:
        plot_confusion([[3, 1], [0, 4]], ["cat", "dog"], tmp_path / "cm.txt")
    assert "\n" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_missing_glyphs_in_class_names_do_not_warn(tmp_path):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_confusion([[3, 1], [0, 4]], ["猫", "🐶 dog"], tmp_path / "cm.png", title="猫 vs 🐶")
    assert [str(w.message) for w in caught] == []
    _assert_png(tmp_path / "cm.png", (300, 300))


def test_lr_labels_read_the_same_for_the_same_rate(tmp_path, monkeypatch):
    saved = _keep_figures(monkeypatch)
    # A cosine schedule's floats: 0.025 arrives as a hair above and a hair below.
    lrs = [0.1, 0.07500000000000001, 0.025000000000000005, 0.0, 0.024999999999999994, 0.075]
    rows = [{**row, "lr": lr} for row, lr in zip(_rows(6), lrs, strict=True)]
    plot_curves(rows, tmp_path / "curves.png")
    loss_ax = saved[0].axes[0]
    labels = [text.get_text() for text in loss_ax.texts if text.get_text().startswith("lr ")]
    assert labels == ["lr 0.075", "lr 0.025", "lr 0", "lr 0.025", "lr 0.075"]


@pytest.mark.parametrize("speeds", [(35.0, 48.0, 62.0, 150.0, 210.0), (5.0, 60.0, 4800.0)])
def test_the_compare_picture_writes_speeds_as_plain_numbers(speeds):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from zoo.bakeoff._plot import compare_figure

    rows = [
        {"id": f"m{i}", "val_acc": 0.9 - 0.01 * i, "images_per_s": s} for i, s in enumerate(speeds)
    ]
    fig = compare_figure(rows)
    FigureCanvasAgg(fig).draw()
    axis = fig.axes[0].xaxis
    labels = [t.get_text() for minor in (False, True) for t in axis.get_ticklabels(minor=minor)]
    shown = [text for text in labels if text]
    assert len(shown) >= 2
    assert all(float(text) > 0 for text in shown), shown  # 60, 200: not 6×10^1
