"""A torchvision backbone needs only torchvision: once the backbone index is built, `zoo info`
and `zoo predict` of a torchvision run import no timm, from whatever folder zoo starts in."""

from __future__ import annotations

import os
import subprocess
import sys

from images import make_image_folder

import zoo
from zoo.training import Reporter

# Both commands in one process (torch imports once), each checked for timm after it ran.
PROBE = """
import sys
from zoo.cli import main
run, image = sys.argv[1:]
for args in (["info", "resnet18"], ["predict", run, image]):
    sys.argv = ["zoo", *args]
    try:
        main()
    except SystemExit as done:
        assert not done.code, done.code
    print(args[0], "imported timm:", "timm" in sys.modules)
"""


def test_info_and_predict_of_a_torchvision_backbone_import_no_timm(tmp_path):
    data = make_image_folder(tmp_path / "data", ["a", "b"], per_class=(2, 2), layout="train-valid")
    # Builds the index, as any first `zoo` command does (that one lists timm's backbones).
    zoo.finetune(
        "torchvision:resnet18",
        str(data),
        weights="none",
        epochs=1,
        image_size=32,
        batch_size=4,
        workers=0,
        output=str(tmp_path / "run"),
        reporter=Reporter(),  # silent
    )
    # Started from a folder holding another project's metadata (a clone's zoo.egg-info):
    # what is installed did not change, so neither does the index.
    (tmp_path / "elsewhere" / "other.egg-info").mkdir(parents=True)
    image = next((data / "valid" / "a").iterdir())
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "run"), str(image)],
        cwd=tmp_path / "elsewhere",
        capture_output=True,
        text=True,
        env={**os.environ, "ZOO_OFFLINE": "1", "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "torchvision:resnet18" in done.stdout and str(image) in done.stdout
    assert "info imported timm: False" in done.stdout
    assert "predict imported timm: False" in done.stdout
