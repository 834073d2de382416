"""Real ImageNet weights end to end: torchvision's own MobileNetV2 IMAGENET1K_V1 file, found in
the torch hub cache, fine-tuned on the embedded shapes dataset against random weights."""

from __future__ import annotations

import zoo

# Small and fast on two cores: 64 px images, the embedded dataset's 600 train / 150 valid.
RECIPE = {"image_size": 64, "batch_size": 32, "lr": 0.01, "workers": 0, "seed": 0}


def _best(tmp_path, name: str, weights: str, **options) -> float:
    result = zoo.finetune(
        "mobilenet_v2", weights=weights, output=str(tmp_path / name), **RECIPE, **options
    )
    return result.summary["best_val_acc"]


def test_info_says_the_real_file_is_cached_with_its_path(mobilenet_v2_file):
    info = zoo.info("mobilenet_v2.IMAGENET1K_V1")
    assert info["cached"] is True
    assert info["weights_path"] == str(mobilenet_v2_file)


def test_the_cli_shows_the_cached_path(mobilenet_v2_file):
    from click.testing import CliRunner

    from zoo.cli import cli

    result = CliRunner().invoke(cli, ["info", "mobilenet_v2.IMAGENET1K_V1"])
    assert result.exit_code == 0, result.output
    assert f"weights:       {mobilenet_v2_file}  (cached)" in result.output


def test_a_frozen_backbone_from_real_weights_beats_random_by_30_points(mobilenet_v2_file, tmp_path):
    frozen = {"freeze_until": "backbone", "augment": False, "epochs": 2}
    pretrained = _best(tmp_path, "pre", "IMAGENET1K_V1", **frozen)
    random = _best(tmp_path, "rand", "none", **frozen)
    print(f"frozen backbone: pretrained {pretrained:.1%}, random {random:.1%}")
    assert pretrained - random >= 0.30


def test_full_fine_tuning_from_real_weights_beats_random_at_equal_epochs(
    mobilenet_v2_file, tmp_path
):
    pretrained = _best(tmp_path, "pre", "IMAGENET1K_V1", epochs=2, precision="fp32")
    random = _best(tmp_path, "rand", "none", epochs=2, precision="fp32")
    print(f"full fine-tuning: pretrained {pretrained:.1%}, random {random:.1%}")
    assert pretrained > random
