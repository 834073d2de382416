"""zoo.data on real image files written into tmp_path: folders, decoding, the embedded dataset."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageFile

from tests.images import (
    make_image_folder,
    write_empty,
    write_image,
    write_not_an_image,
    write_png_bomb,
    write_truncated,
)
from zoo.data import (
    CLASSES,
    COUNTS,
    NAME,
    ImageDataset,
    Preprocessing,
    build_transform,
    drop_unreadable,
    embedded_dataset,
    find_unreadable,
    load_rgb,
    scan_eval_folder,
    scan_image_folder,
)
from zoo.errors import DataError

PETS = ["cat", "dog", "fox"]


def parts(samples: list[tuple[str, int]], root: Path) -> list[tuple[str, ...]]:
    return [Path(p).relative_to(root).parts for p, _ in samples]


# ---------------------------------------------------------------- layouts


@pytest.mark.parametrize("valid_name", ["valid", "val"])
def test_train_valid_layout_is_used_as_is(tmp_path, valid_name):
    layout = "train-valid" if valid_name == "valid" else "train-val"
    root = make_image_folder(tmp_path / "pets", PETS, per_class=(4, 2), layout=layout)
    split = scan_image_folder(root)
    assert split.layout == "train-valid"
    assert split.classes == PETS
    assert len(split.train) == 12 and len(split.valid) == 6
    assert {p[0] for p in parts(split.train, root)} == {"train"}
    assert {p[0] for p in parts(split.valid, root)} == {valid_name}
    for path, label in split.train + split.valid:
        assert Path(path).parent.name == PETS[label]


def test_hidden_files_and_folders_are_ignored(tmp_path):
    root = make_image_folder(tmp_path / "pets", ["cat", "dog"], per_class=3, layout="train-valid")
    write_image(root / ".ipynb_checkpoints" / "x.png")  # hidden at the top
    write_image(root / "train" / ".hidden_class" / "a.png")  # would be a third class
    write_image(root / "train" / "cat" / ".ipynb_checkpoints" / "cat_000-checkpoint.png")
    write_image(root / "train" / "cat" / "._cat_000.png")  # macOS resource fork
    (root / "train" / "dog" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    split = scan_image_folder(root)
    assert split.classes == ["cat", "dog"]
    assert len(split.train) == 6
    assert not any(part.startswith(".") for p in parts(split.train, root) for part in p)

    flat = make_image_folder(tmp_path / "flat", ["cat", "dog"], per_class=5)
    write_image(flat / ".ipynb_checkpoints" / "x.png")
    write_image(flat / "cat" / ".thumbs" / "t.png")
    assert scan_image_folder(flat).classes == ["cat", "dog"]
    assert len(scan_image_folder(flat).train + scan_image_folder(flat).valid) == 10


def test_images_are_found_by_extension_in_subfolders(tmp_path):
    root = make_image_folder(tmp_path / "pets", ["cat", "dog"], per_class=3)
    write_image(root / "cat" / "more" / "UPPER.JPG")
    (root / "cat" / "notes.txt").write_text("not an image")
    split = scan_image_folder(root)
    found = [Path(p).name for p, _ in split.train + split.valid]
    assert "UPPER.JPG" in found and "notes.txt" not in found
    assert len(found) == 7


def test_split_is_stratified_repeatable_and_seeded(tmp_path):
    root = make_image_folder(tmp_path / "pets", PETS, per_class=10)
    split = scan_image_folder(root, val_split=0.2, seed=0)
    assert split.layout == "split"
    assert split.classes == PETS
    for label in range(3):
        assert sum(1 for _, lab in split.valid if lab == label) == 2
        assert sum(1 for _, lab in split.train if lab == label) == 8
    train, valid = {p for p, _ in split.train}, {p for p, _ in split.valid}
    assert not train & valid and len(train | valid) == 30
    assert scan_image_folder(root, val_split=0.2, seed=0) == split
    assert scan_image_folder(root, val_split=0.2, seed=1).valid != split.valid
    assert sorted(p.name for p in root.rglob("*.png")) == sorted(
        Path(p).name for p in train | valid
    )  # nothing moved


def test_small_classes_keep_a_train_image_and_one_image_is_train_only(tmp_path):
    root = make_image_folder(tmp_path / "pets", ["cat", "dog"], per_class=6)
    write_image(root / "eel" / "only.png")
    write_image(root / "fox" / "a.png")
    write_image(root / "fox" / "b.png")
    split = scan_image_folder(root, val_split=0.9)
    counts = {name: [0, 0] for name in split.classes}
    for part, samples in enumerate([split.train, split.valid]):
        for _, label in samples:
            counts[split.classes[label]][part] += 1
    assert counts == {"cat": [1, 5], "dog": [1, 5], "eel": [1, 0], "fox": [1, 1]}


# ---------------------------------------------------------------- errors


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(DataError, match="'.*nowhere' does not exist"):
        scan_image_folder(tmp_path / "nowhere")
    with pytest.raises(DataError, match="is not a folder"):
        scan_image_folder(write_image(tmp_path / "a.png"))


def test_folder_without_images_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images in '.*empty'"):
        scan_image_folder(tmp_path / "empty")
    (tmp_path / "text" / "cat").mkdir(parents=True)
    (tmp_path / "text" / "cat" / "a.txt").write_text("x")
    (tmp_path / "text" / "dog").mkdir()
    with pytest.raises(DataError, match="no images in '.*text'"):
        scan_image_folder(tmp_path / "text")


def test_empty_class_folder_is_named(tmp_path):
    root = make_image_folder(tmp_path / "pets", ["cat", "dog"], per_class=2, layout="train-valid")
    for image in (root / "train" / "dog").iterdir():
        image.unlink()
    (root / "train" / "dog" / ".DS_Store").write_bytes(b"x")
    with pytest.raises(DataError) as error:
        scan_image_folder(root)
    assert str(error.value) == (
        f"class folder '{root / 'train' / 'dog'}' has no images; add images or remove the folder"
    )


def test_a_single_class_is_an_error(tmp_path):
    root = make_image_folder(tmp_path / "pets", ["cat"], per_class=5)
    with pytest.raises(DataError, match=r"only one class \('cat'\)"):
        scan_image_folder(root)


def test_valid_classes_must_match_train_classes(tmp_path):
    root = make_image_folder(tmp_path / "pets", PETS, per_class=2, layout="train-valid")
    extra = write_image(root / "valid" / "owl" / "a.png").parent
    with pytest.raises(DataError, match="'.*owl' has no match in '.*train'"):
        scan_image_folder(root)
    for folder in (extra, root / "valid" / "fox"):
        for image in folder.iterdir():
            image.unlink()
        folder.rmdir()
    with pytest.raises(DataError, match=r"'.*valid/fox' is missing.*\(missing: fox\)"):
        scan_image_folder(root)


def test_test_folder_validates_and_train_alone_is_split(tmp_path):
    root = make_image_folder(tmp_path / "pets", PETS, per_class=(4, 2), layout="train-valid")
    (root / "valid").rename(root / "test")
    split = scan_image_folder(root)
    assert split.layout == "train-valid"
    assert {Path(p).parts[-3] for p, _ in split.valid} == {"test"}
    shutil.rmtree(root / "test")
    split = scan_image_folder(root, val_split=0.5)
    assert split.layout == "split" and split.classes == sorted(PETS)
    assert len(split.valid) == 2 * len(PETS)  # half of each class's 4 train/ images
    assert all(Path(p).parts[-3] == "train" for p, _ in split.train + split.valid)


def test_a_bad_fraction_is_an_error(tmp_path):
    flat = make_image_folder(tmp_path / "flat", PETS, per_class=2)
    with pytest.raises(DataError, match="val_split must be between 0 and 1"):
        scan_image_folder(flat, val_split=1.0)


def test_eval_folder_labels_follow_the_model_classes(tmp_path):
    root = make_image_folder(tmp_path / "valid", ["dog", "cat"], per_class=2)
    samples = scan_eval_folder(root, ["ant", "cat", "dog"])
    assert [(Path(p).parent.name, label) for p, label in samples] == [
        ("cat", 1),
        ("cat", 1),
        ("dog", 2),
        ("dog", 2),
    ]
    with pytest.raises(DataError, match="'.*dog' is not one of the model's classes \\(ant, cat\\)"):
        scan_eval_folder(root, ["ant", "cat"])
    with pytest.raises(DataError, match="does not exist"):
        scan_eval_folder(tmp_path / "nowhere", ["cat"])


# ---------------------------------------------------------------- reading images

MODES = [
    ("1", "png"),
    ("L", "png"),
    ("P", "png"),
    ("P", "gif"),
    ("LA", "png"),
    ("RGBA", "png"),
    ("RGBA", "webp"),
    ("CMYK", "jpg"),
    ("CMYK", "tif"),
    ("I;16", "png"),
    ("I;16", "tif"),
    ("I", "tif"),
    ("F", "tif"),
    ("RGB", "jpg"),
    ("RGB", "bmp"),
    ("L", "pgm"),
]


@pytest.mark.parametrize(("mode", "ext"), MODES)
def test_every_mode_reaches_the_model_as_rgb_of_the_right_size(tmp_path, mode, ext):
    path = write_image(tmp_path / f"image.{ext}", mode=mode, size=(40, 30))
    assert Image.open(path).mode.startswith(mode[0])  # the file really is in that mode
    pre = Preprocessing(input_size=(3, 24, 24))
    image, label = ImageDataset([(str(path), 3)], build_transform(pre, train=False))[0]
    assert load_rgb(path).mode == "RGB"
    assert image.shape == (3, 24, 24) and image.dtype == torch.float32
    assert label == 3


def grey_level(path: Path) -> int:
    red, green, blue = load_rgb(path).getpixel((1, 1))
    assert red == green == blue
    return red


def test_16_bit_midscale_is_mid_grey_not_white(tmp_path):
    assert grey_level(write_image(tmp_path / "mid.png", mode="I;16", color=32768)) == 128
    assert grey_level(write_image(tmp_path / "top.tif", mode="I;16", color=65535)) == 255
    assert grey_level(write_image(tmp_path / "mid.tif", mode="I", color=32768)) == 128
    pgm = tmp_path / "ten-bit.pgm"  # PIL scales a 10-bit PGM to 16 bits, mode I
    pgm.write_bytes(b"P5 2 2 1023\n" + bytes([2, 0]) * 4)
    assert Image.open(pgm).mode == "I" and grey_level(pgm) == 128


def test_float_images_are_scaled(tmp_path):
    assert grey_level(write_image(tmp_path / "unit.tif", mode="F", color=0.5)) == 128
    assert grey_level(write_image(tmp_path / "byte.tif", mode="F", color=200.0)) == 200


def test_transparency_is_composited_onto_white(tmp_path):
    clear = write_image(tmp_path / "clear.png", mode="RGBA", color=(0, 0, 0, 0))
    assert load_rgb(clear).getpixel((0, 0)) == (255, 255, 255)
    half = write_image(tmp_path / "half.png", mode="LA", color=(0, 128))
    assert load_rgb(half).getpixel((0, 0)) == (127, 127, 127)
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([255, 0, 0, 0, 0, 255])
    palette.putpixel((0, 0), 0)
    palette.save(tmp_path / "palette.png", transparency=1)
    rgb = load_rgb(tmp_path / "palette.png")
    assert rgb.getpixel((0, 0)) == (255, 0, 0) and rgb.getpixel((5, 5)) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: turn 90 degrees clockwise to view
    image.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    upright = load_rgb(tmp_path / "phone.jpg")
    assert upright.size == (20, 40)
    top, bottom = upright.getpixel((10, 5)), upright.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60  # red came up to the top
    assert bottom[2] > 200 and bottom[0] < 60


def broken_folder(root: Path) -> list[Path]:
    """Good images in several formats, and the three broken files; returns the broken ones."""
    for mode, ext in MODES[:6]:
        write_image(root / f"good-{mode.replace(';', '')}.{ext}", mode=mode)
    return [
        write_truncated(root / "truncated.jpg"),
        write_not_an_image(root / "text.jpg"),
        write_empty(root / "empty.jpg"),
    ]


def test_find_unreadable_reports_exactly_the_broken_files(tmp_path):
    broken = broken_folder(tmp_path)
    truncated_png = write_truncated(tmp_path / "truncated.png", keep=0.6)
    paths = sorted(tmp_path.iterdir())
    found = dict(find_unreadable(paths, workers=3))
    assert sorted(found) == sorted(str(p) for p in [*broken, truncated_png])
    assert "truncated" in found[str(broken[0])]
    assert found[str(broken[1])].startswith("not an image")
    assert found[str(broken[2])] == "empty file (0 bytes)"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_a_file_found_readable_is_not_decoded_again_until_it_changes(tmp_path, monkeypatch):
    from zoo.data import _images

    decoded = []
    real = _images.load_rgb
    monkeypatch.setattr(_images, "load_rgb", lambda path: decoded.append(path) or real(path))
    good, other = write_image(tmp_path / "good.jpg"), write_image(tmp_path / "other.png")
    assert find_unreadable([good, other]) == [] and len(decoded) == 2
    write_truncated(other)  # the same path, now broken
    found = find_unreadable([good, other])
    assert [path for path, _ in found] == [str(other)]
    assert decoded[2:] == [str(other)]  # the unchanged file was not decoded again


@pytest.mark.parametrize(
    ("size", "level"), [((10_000, 10_000), "warning"), ((20_000, 10_000), "error")]
)
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bombs_are_refused(tmp_path, size, level):
    bomb = write_png_bomb(tmp_path / "bomb.png", *size)
    pixels = size[0] * size[1]
    assert (pixels > 2 * Image.MAX_IMAGE_PIXELS) == (level == "error")
    with pytest.raises((Image.DecompressionBombError, Image.DecompressionBombWarning)):
        load_rgb(bomb)
    reasons = dict(find_unreadable([bomb], workers=2))
    assert "decompression bomb" in reasons[str(bomb)]
    refused: list[BaseException] = []

    def in_a_thread() -> None:  # threads leave warning filters alone: the size check must hold
        try:
            load_rgb(bomb)
        except Exception as e:
            refused.append(e)

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert isinstance(refused[0], Image.DecompressionBombError)


def test_drop_unreadable_skips_them_and_names_an_emptied_class(tmp_path):
    root = make_image_folder(
        tmp_path / "pets", ["cat", "dog"], per_class=(3, 1), layout="train-valid"
    )
    broken = broken_folder(root / "train" / "cat")
    split, skipped = drop_unreadable(scan_image_folder(root))
    assert sorted(p for p, _ in skipped) == sorted(str(p) for p in broken)
    assert len(split.train) == 3 + 6 + 3 and len(split.valid) == 2
    assert not {p for p, _ in split.train} & {str(p) for p in broken}

    for image in (root / "train" / "dog").iterdir():
        write_empty(image)
    with pytest.raises(DataError, match="class 'dog' has no readable training images: all 3"):
        drop_unreadable(scan_image_folder(root))


# ---------------------------------------------------------------- transforms and datasets


@pytest.mark.parametrize(("train", "augment"), [(False, False), (True, True), (True, False)])
def test_transforms_give_the_configured_size(tmp_path, train, augment):
    path = write_image(tmp_path / "wide.jpg", size=(90, 50))
    for input_size in [(3, 32, 32), (3, 24, 40)]:
        pre = Preprocessing(input_size=input_size, interpolation="bicubic")
        tensor = build_transform(pre, train=train, augment=augment)(load_rgb(path))
        assert tensor.shape == input_size and type(tensor) is torch.Tensor


def test_transforms_normalise_and_train_without_augment_is_eval(tmp_path):
    path = write_image(tmp_path / "white.png", color=(255, 255, 255), size=(50, 40))
    pre = Preprocessing(input_size=(3, 16, 16), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    white = build_transform(pre, train=False)(load_rgb(path))
    assert torch.allclose(white, torch.full((3, 16, 16), 2.0))
    pattern = write_image(tmp_path / "pattern.png", size=(50, 40))
    evaluate = build_transform(pre, train=False)(load_rgb(pattern))
    plain_train = build_transform(pre, train=True, augment=False)(load_rgb(pattern))
    assert torch.equal(evaluate, plain_train)


def test_image_dataset_is_a_picklable_torch_dataset(tmp_path):
    root = make_image_folder(tmp_path / "pets", ["cat", "dog"], per_class=3)
    split = scan_image_folder(root)
    dataset = ImageDataset(split.train, build_transform(Preprocessing((3, 16, 16)), train=True))
    assert isinstance(dataset, torch.utils.data.Dataset)
    assert len(dataset) == 4 and dataset.targets == [0, 0, 1, 1]
    assert pickle.loads(pickle.dumps(dataset)).samples == dataset.samples
    images, labels = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4)))
    assert images.shape == (4, 3, 16, 16) and labels.tolist() == [0, 0, 1, 1]


def test_image_dataset_names_a_file_that_went_bad(tmp_path):
    path = write_not_an_image(tmp_path / "x.jpg")
    with pytest.raises(DataError, match="cannot read '.*x.jpg'"):
        ImageDataset([(str(path), 0)])[0]


def test_importing_zoo_data_stays_cheap():
    code = "import sys, zoo.data; print(sorted({'torch', 'PIL'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- the embedded dataset


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return embedded_dataset(tmp_path_factory.mktemp("datasets"))


def test_embedded_dataset_has_the_documented_layout(shapes):
    split = scan_image_folder(shapes)
    assert shapes.name == NAME
    assert split.layout == "train-valid" and split.classes == sorted(CLASSES)
    assert len(split.train) == COUNTS["train"] * len(CLASSES)
    assert len(split.valid) == COUNTS["valid"] * len(CLASSES)
    assert find_unreadable([p for p, _ in split.train[::25]]) == []
    assert load_rgb(split.train[0][0]).size == (64, 64)
    assert not [p for p in shapes.parent.iterdir() if p.name.startswith(".")]  # no scratch left


def test_embedded_dataset_is_deterministic_and_respects_zoo_home(shapes, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    again = embedded_dataset()
    assert again == tmp_path / "home" / "datasets" / NAME
    files = sorted(p.relative_to(shapes) for p in shapes.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((shapes / f).read_bytes() == (again / f).read_bytes() for f in files)


def test_embedded_dataset_is_reused(shapes):
    marker = shapes / "train" / "circle" / "circle_000.jpg"
    before = marker.stat().st_mtime_ns
    assert embedded_dataset(shapes.parent) == shapes
    assert marker.stat().st_mtime_ns == before  # reused, not drawn again


# ---------------------------------------------------------------- zoo's own output is no data


def _fake_run(folder: Path, *extra: str) -> None:
    folder.mkdir(parents=True)
    for name in ("config.json", *extra):
        (folder / name).write_text("{}")
    write_image(folder / "curves.png")


@pytest.mark.parametrize("layout", ["split", "train-valid"])
def test_scan_leaves_out_a_folder_holding_a_run_and_says_so(tmp_path, layout):
    root = make_image_folder(tmp_path / "pets", ["cat", "dog"], 3, layout=layout)
    classes_dir = root if layout == "split" else root / "train"
    _fake_run(classes_dir / "runs" / "tinynet-1", "metrics.jsonl")
    _fake_run(classes_dir / "killed", "last.pt")  # killed in its first epoch: no metrics yet
    split = scan_image_folder(root, val_split=0.34)
    assert split.classes == ["cat", "dog"]
    assert split.left_out == [str(classes_dir / "killed"), str(classes_dir / "runs")]


def test_scan_leaves_out_the_excluded_folders(tmp_path):
    root = make_image_folder(tmp_path / "pets", ["cat", "dog", "out"], 3)
    split = scan_image_folder(root, exclude=[root / "out"])
    assert split.classes == ["cat", "dog"] and split.left_out == [str(root / "out")]


def test_a_folder_with_a_config_json_alone_is_still_a_class(tmp_path):
    root = make_image_folder(tmp_path / "pets", ["cat", "dog"], 3)
    (root / "dog" / "config.json").write_text("{}")
    assert scan_image_folder(root).classes == ["cat", "dog"]


# ---------------------------------------------------------------- decoding at reduced size


def _photo(path: Path, size=(1024, 768), fmt="JPEG") -> Path:
    import numpy as np

    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    smooth = np.stack([x * 255 / size[0], y * 255 / size[1], (x + y) * 127 / sum(size)], -1)
    Image.fromarray(smooth.astype("uint8")).save(path, fmt, quality=95)
    return path


def test_a_large_jpeg_is_decoded_at_reduced_size_never_below_the_side_asked(tmp_path):
    from zoo.data import load_rgb

    photo = _photo(tmp_path / "photo.jpg")
    assert load_rgb(photo).size == (1024, 768)
    assert load_rgb(photo, min_side=200).size == (512, 384)  # 1/2: 1/4 would give 192
    assert load_rgb(photo, min_side=90).size == (128, 96)  # 1/8
    assert load_rgb(photo, min_side=500).size == (1024, 768)  # 1/2 would be too small
    png = _photo(tmp_path / "photo.png", fmt="PNG")
    assert load_rgb(png, min_side=90).size == (1024, 768)  # only JPEG decoders can


def test_reduced_decoding_only_where_a_random_crop_follows():
    from zoo.data import Preprocessing, decode_side

    pre = Preprocessing(input_size=(3, 96, 96))
    # Evaluation decodes every pixel, as an exported model is given the whole image.
    assert decode_side(pre, train=False) is None
    assert decode_side(pre, train=True, augment=False) is None
    # A random resized crop may keep 0.245 of a side and stretch it to the input size.
    side = decode_side(pre, train=True, augment=True)
    assert side * (0.08 * 3 / 4) ** 0.5 >= 96
    assert side < 96 * 5
