"""zoo export: ONNX and pt2 with the preprocessing inside, equal to zoo's PyTorch path; the
hf folder; predicting with exported files; the export's bad-input rows."""

from __future__ import annotations

import json
import os

import pytest
from conftest import run_zoo
from images import make_image_folder

# Exporting a model to ONNX takes 30-120 s here: the other families run with ZOO_TEST_SLOW=1
# (all passed on 2026-12-02: 15 tests in 15 min on a 2-core machine at load 5).
SLOW = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("ZOO_TEST_SLOW"), reason="set ZOO_TEST_SLOW=1"),
]

# (backbone, image size, (train, valid) images per class): inception's auxiliary head needs
# its native 299 px to train, the ViT its native 224.
BACKBONES = [
    pytest.param("torchvision:resnet18", 48, (2, 2), id="torchvision:resnet18"),
    pytest.param("torchvision:mobilenet_v2", 48, (2, 2), marks=SLOW, id="torchvision:mobilenet_v2"),
    pytest.param(
        "torchvision:inception_v3", 299, (2, 1), marks=SLOW, id="torchvision:inception_v3"
    ),
    pytest.param("timm:convnext_tiny", 48, (2, 1), marks=SLOW, id="timm:convnext_tiny"),
    pytest.param(
        "timm:vit_tiny_patch16_224", None, (2, 1), marks=SLOW, id="timm:vit_tiny_patch16_224"
    ),
]
COUNTS = {(2, 2), (2, 1)}


def _train(name, data, out, size, **extra):
    import zoo

    options = {"image_size": size} if size else {}
    zoo.finetune(
        name, str(data), weights="none", epochs=1, batch_size=2, workers=0, output=str(out),
        **options, **extra,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("export-data")
    return {
        counts: make_image_folder(
            root / f"d{counts[0]}{counts[1]}", ["a", "b"], counts, "train-valid", (70, 52), ".jpg"
        )
        for counts in COUNTS
    }


@pytest.fixture(scope="module")
def resnet_run(images, tmp_path_factory):
    return _train("torchvision:resnet18", images[(2, 2)], tmp_path_factory.mktemp("r") / "run", 48)


def _agree(run_dir, exported, images):
    """zoo's PyTorch path and the exported file on every image, one at a time."""
    from zoo.data import load_rgb, to_uint8, walk_images
    from zoo.runs import open_classifier

    ours, _ = open_classifier(run_dir, "cpu")
    theirs, classes = open_classifier(exported, "cpu")
    for path in walk_images(images)[0]:
        x = to_uint8(load_rgb(path))[None]
        want, got = ours(x), theirs(x)
        assert (want - got).abs().max() <= 1e-4, path
        assert want.argmax(1).item() == got.argmax(1).item(), path
    return classes


@pytest.mark.parametrize(
    "name,size,counts", BACKBONES, ids=lambda v: v if isinstance(v, str) else ""
)
def test_onnx_and_pt2_equal_zoo(name, size, counts, images, tmp_path):
    from zoo.export import export

    run = _train(name, images[counts], tmp_path / "run", size)
    for fmt in ("onnx", "pt2"):
        report = export(run, fmt)
        assert report["check"]["max_abs_diff"] <= 1e-4
        assert report["check"]["top_class_mismatches"] == 0
        assert report["check"]["images"] == 2 * counts[1]
        assert _agree(run, report["path"], images[counts] / "valid") == ["a", "b"]


def test_example_plugin_backbone_exports(with_site, images, tmp_path):
    from zoo.export import export

    run = _train("tinyplug:plainnet", images[(2, 2)], tmp_path / "run", None)
    for fmt in ("onnx", "pt2"):
        _agree(run, export(run, fmt)["path"], images[(2, 2)] / "valid")


def test_predict_onnx_equals_predict_run(resnet_run, images, tmp_path):
    from zoo.export import export

    out = tmp_path / "m.onnx"
    export(resnet_run, "onnx", out)
    valid = str(images[(2, 2)] / "valid")
    rows = [
        json.loads(run_zoo("predict", src, valid, "--json", "--top-k", "2").stdout)
        for src in (str(resnet_run), str(out))
    ]
    assert len(rows[0]) == 4
    for ours, theirs in zip(*rows, strict=True):
        assert [t["class"] for t in ours["top"]] == [t["class"] for t in theirs["top"]]
        for a, b in zip(ours["top"], theirs["top"], strict=True):
            assert round(a["probability"], 4) == round(b["probability"], 4)


def test_hf_folder_loads_in_timm_and_zoo(images, tmp_path):
    import timm
    import torch

    import zoo
    from zoo.export import export
    from zoo.runs import load_trained

    run = _train("timm:convnext_tiny", images[(2, 1)], tmp_path / "run", 48)
    folder = tmp_path / "hf"
    export(run, "hf", folder)
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in folder.iterdir()}
    config = json.loads((folder / "config.json").read_text())
    assert config["label_names"] == ["a", "b"] and config["architecture"] == "convnext_tiny"
    theirs = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    ours = load_trained(run, "cpu").model
    again = zoo.create("timm:convnext_tiny", weights=str(folder)).eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.inference_mode():
        assert torch.equal(theirs(x), ours(x))
        assert torch.equal(again(x), ours(x))
    line = run_zoo("predict", str(folder), str(images[(2, 1)] / "valid" / "a"), "--json")
    assert json.loads(line.stdout)[0]["top"][0]["class"] in ("a", "b")


# ------------------------------------------------------------------ bad input, one line each


def _error(result):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_unknown_format_refused(resnet_run):
    line = _error(run_zoo("export", str(resnet_run), "--format", "tflite"))
    assert "tflite" in line and "onnx" in line


def test_existing_output_refused_unless_force(resnet_run, tmp_path):
    out = tmp_path / "taken.pt2"
    out.write_text("mine")
    line = _error(run_zoo("export", str(resnet_run), "--format", "pt2", "-o", str(out)))
    assert "--force" in line and out.read_text() == "mine"
    done = run_zoo("export", str(resnet_run), "--format", "pt2", "-o", str(out), "--force")
    assert done.returncode == 0, done.stderr
    assert "largest probability difference" in done.stdout and out.stat().st_size > 1000


def test_run_without_best_refused(resnet_run, tmp_path):
    line = _error(run_zoo("export", str(tmp_path), "--format", "onnx"))
    assert "best.pt" in line


@pytest.mark.parametrize("suffix", [".onnx", ".pt2"])
def test_damaged_export_refused(suffix, tmp_path, images):
    bad = tmp_path / f"model{suffix}"
    bad.write_bytes(b"\x00garbage" * 50)
    line = _error(run_zoo("predict", str(bad), str(images[(2, 2)] / "valid")))
    assert str(bad) in line and "damaged" in line


def test_missing_extra_names_pip_command(resnet_run, tmp_path):
    blocker = tmp_path / "block" / "onnxscript"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('blocked for a test')\n")
    env = {"PYTHONPATH": str(blocker.parent)}
    line = _error(run_zoo("export", str(resnet_run), "--format", "onnx", env=env))
    assert "pip install 'zoo[export]'" in line and "onnxscript" in line


def test_unexportable_graph_names_operation(tmp_path, images):
    """A backbone whose forward branches on its data cannot be traced: the error says why
    and suggests the other format; nothing is left behind."""
    code = tmp_path / "branchy.py"
    code.write_text(
        "import sys, zoo, torch\n"
        "from torch import nn\n"
        "class Branchy(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__(); self.conv = nn.Conv2d(3, 4, 3); self.fc = nn.Linear(4, 10)\n"
        "    def forward(self, x):\n"
        "        x = self.conv(x).mean((2, 3))\n"
        "        return self.fc(x) if x.sum() > 0 else self.fc(-x)\n"
        "class P:\n"
        "    @zoo.hookimpl\n"
        "    def register_backbones(self, register):\n"
        "        register('branchy', Branchy, input_size=(3, 32, 32), head='fc')\n"
        "from zoo import plugins\n"
        "plugins.register(P(), 'bx')\n"
        "from zoo.cli import main\n"
        "sys.argv = ['zoo'] + sys.argv[1:]\n"
        "main()\n"
    )
    import subprocess
    import sys

    def zoo_(*args):
        return subprocess.run([sys.executable, str(code), *args], capture_output=True, text=True)

    run = tmp_path / "run"
    data = str(images[(2, 2)])
    train = zoo_("finetune", "bx:branchy", "--data", data, "--weights", "none", "--epochs", "1",
                 "--batch-size", "2", "--workers", "0", "-o", str(run))  # fmt: skip
    assert train.returncode == 0, train.stderr
    line = _error(zoo_("export", str(run), "--format", "pt2"))
    assert "cannot export bx:branchy to pt2" in line and "--format onnx" in line
    assert not (run / "model.pt2").exists()
