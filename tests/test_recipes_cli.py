"""The recipe options through ``zoo finetune``: out-of-range values refused in one line before
anything starts, ``--config`` TOML files, ``--recipe``, and what config.json records."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from images import make_image_folder

from zoo.cli import cli
from zoo.training._options import RECIPE_VALUES


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return make_image_folder(root, ["a", "b"], per_class=(4, 2), layout="train-valid")


def finetune(*args):
    return CliRunner().invoke(cli, ["finetune", *map(str, args)])


def refused(result, *words):
    """Exit status 1 (2: click's usage error) and one Error: line that says it all."""
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    return (
        result.exit_code in (1, 2)
        and "Traceback" not in result.output
        and len(errors) == 1
        and all(w in errors[0] for w in words)
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--label-smoothing", "-0.1"], ["--label-smoothing", "[0, 1)"]),
        (["--label-smoothing", "1"], ["--label-smoothing", "[0, 1)"]),
        (["--ema", "0"], ["--ema", "(0, 1)"]),
        (["--ema", "1"], ["--ema", "(0, 1)"]),
        (["--layer-decay", "0"], ["--layer-decay", "(0, 1]"]),
        (["--layer-decay", "1.5"], ["--layer-decay", "(0, 1]"]),
        (["--unfreeze-after", "1"], ["--unfreeze-after needs --freeze-until"]),
        (["--unfreeze-after", "3", "--freeze-until", "1", "--epochs", "3"], ["--unfreeze-after"]),
        (["--mixup", "-1"], ["--mixup must not be negative"]),
        (["--cutmix", "-0.5"], ["--cutmix must not be negative"]),
        (["--warmup-epochs", "-1"], ["--warmup-epochs must not be negative"]),
        (["--recipe", "fancy"], ["'fancy' is not one of 'seeds', 'modern'"]),
        (["--augment-policy", "wild"], ["'wild' is not one of"]),
    ],
)
def test_a_bad_recipe_value_is_one_line_before_anything_starts(tiny, data, tmp_path, args, words):
    out = tmp_path / "run"
    result = finetune(tiny, "--data", data, "-o", out, *args)
    assert refused(result, *words), result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("label_smothing = 0.1\n", ["unknown option 'label_smothing'"]),
        ('epochs = "ten"\n', ["'epochs' must be int", "str"]),
        ("ema = true\n", ["'ema' must be float", "bool"]),
        ("balanced = 1\n", ["'balanced' must be bool"]),
        ("milestones = [2, 'x']\n", ["'milestones' must be list[int]"]),
        ("lr = \n", ["not valid TOML"]),
        ('recipe = "fancy"\n', ["--recipe must be one of seeds, modern"]),
    ],
)
def test_a_bad_config_file_is_one_line_before_anything_starts(tiny, data, tmp_path, text, words):
    config, out = tmp_path / "options.toml", tmp_path / "run"
    config.write_text(text)
    result = finetune(tiny, "--data", data, "-o", out, "--config", config)
    assert refused(result, *words), result.output
    assert not out.exists()
    assert refused(finetune(tiny, "--config", tmp_path / "missing.toml"), "cannot read")


def test_the_config_file_and_the_recipe_give_values_the_flags_override(tiny, data, tmp_path):
    config = tmp_path / "options.toml"
    config.write_text('recipe = "modern"\nlabel_smoothing = 0.2\nlr = 0.01\nepochs = 1\n')
    out = tmp_path / "run"
    args = ("--data", data, "-o", out, "--weights", "none", "--workers", "0")
    result = finetune(tiny, *args, "--config", config, "--lr", "0.02", "--batch-size", "4")
    assert result.exit_code == 0, result.output
    options = json.loads((out / "config.json").read_text())["options"]
    modern = RECIPE_VALUES["modern"]
    assert options["recipe"] == "modern" and options["optimizer"] == modern["optimizer"]
    assert options["ema"] == modern["ema"] and options["warmup_epochs"] == modern["warmup_epochs"]
    assert options["label_smoothing"] == 0.2  # the file over the recipe
    assert options["lr"] == 0.02  # the flag over the file
    assert options["epochs"] == 1 and options["unfreeze_after"] is None
    resumed = finetune("--resume", out, "--config", config)
    assert refused(resumed, "--config is for a new run")


def test_modern_picks_a_batch_size_that_makes_several_steps_an_epoch(tiny, data, tmp_path):
    out = tmp_path / "run"
    args = ("--data", data, "-o", out, "--weights", "none", "--workers", "0", "--epochs", "1")
    result = finetune(tiny, *args, "--recipe", "modern")
    assert result.exit_code == 0, result.output
    # 8 training images: the smallest batch, recorded as the number it resolved to.
    assert "batch size 16: --recipe modern keeps 8 optimizer steps an epoch on 8" in result.output
    assert json.loads((out / "config.json").read_text())["options"]["batch_size"] == 16
    given = finetune(tiny, *args[:3], tmp_path / "given", *args[4:], "--recipe", "modern",
                     "--batch-size", "4")  # fmt: skip
    assert given.exit_code == 0, given.output
    assert "batch size" not in given.output
    options = json.loads((tmp_path / "given" / "config.json").read_text())["options"]
    assert options["batch_size"] == 4


@pytest.mark.parametrize(
    ("n_train", "world", "expected"),
    [(100, 1, 16), (128, 1, 16), (300, 1, 38), (512, 1, 64), (5000, 1, 64), (600, 2, 38)],
)
def test_the_modern_batch_size_rule(n_train, world, expected):
    from zoo.training import Reporter, TrainConfig
    from zoo.training._recipe import resolve_batch_size

    config = TrainConfig(name="x", batch_size=None)
    resolve_batch_size(config, n_train, world, Reporter())
    assert config.batch_size == expected
    config = TrainConfig(name="x", batch_size=12)
    resolve_batch_size(config, n_train, world, Reporter())
    assert config.batch_size == 12
