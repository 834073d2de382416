"""Where a run's options come from before ``TrainConfig`` checks them: the flags given, a
``--config`` TOML file, and the ``--recipe`` bundle, in that order of precedence.

    >>> resolve_options({"recipe": "modern", "lr": 3e-4}, config_file="recipe.toml")
    {'optimizer': 'adamw', ..., 'lr': 0.0003}
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from zoo.errors import TrainingError
from zoo.training._config import RECIPES, TrainConfig

# --recipe modern's values, chosen with `make bench-recipes` (README): on 100 images the batch
# size for small sets is what counts (AdamW with cosine: 61.9 % at batch 64, 78.5 % at 16);
# TrivialAugment, higher learning rates and --layer-decay did worse there.
RECIPE_VALUES: dict[str, dict] = {
    "seeds": {},
    "modern": {
        "optimizer": "adamw",
        "lr": 0.001,
        "weight_decay": 0.05,
        "scheduler": "cosine",
        "warmup_epochs": 1.0,
        "label_smoothing": 0.1,
        "ema": 0.999,  # warmed up by the step count: it averages even over a few steps
        "batch_size": None,  # 64, or less on a small training set (resolve_batch_size)
    },
}
# The Python types a TOML value may have for each kind of option (an int is a float too).
_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def resolve_options(given: dict, config_file: str | None = None) -> dict:
    """``given`` (the flags typed) over ``config_file``'s options over the recipe's values."""
    explicit = {**(read_options_file(config_file) if config_file else {}), **given}
    recipe = explicit.get("recipe", "seeds")
    if recipe not in RECIPES:
        raise TrainingError(f"--recipe must be one of {', '.join(RECIPES)}, got '{recipe}'")
    return {**RECIPE_VALUES[recipe], **explicit}


def read_options_file(path: str) -> dict:
    """The options of TOML file ``path``: config.json's ``options`` keys, type-checked."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    file = Path(path).expanduser()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as e:
        raise TrainingError(f"cannot read --config {path}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise TrainingError(f"--config {path} is not valid TOML: {e}") from None
    data = data.get("options", data)  # a config.json-like [options] table, or flat keys
    kinds = {f.name: str(f.type) for f in fields(TrainConfig)}
    for key, value in data.items():
        if key not in kinds:
            raise TrainingError(
                f"--config {path}: unknown option '{key}'; use config.json's option names "
                "(the flags in snake_case, e.g. label_smoothing)"
            )
        _check_type(path, key, value, kinds[key])
    return data


def _check_type(path: str, key: str, value, kind: str) -> None:
    """Refuse a value whose TOML type does not fit the option's annotation."""
    if kind.startswith("list"):
        ok = isinstance(value, list) and all(_is(v, "int") for v in value)
    else:
        ok = any(_is(value, k) for k in _TYPES if k in kind.split(" | "))
    if not ok:
        wanted = kind.replace(" | None", "")
        raise TrainingError(
            f"--config {path}: '{key}' must be {wanted}, got {type(value).__name__} {value!r}"
        )


def _is(value, kind: str) -> bool:
    if isinstance(value, bool):  # a bool is an int to Python, never to an option
        return kind == "bool"
    return isinstance(value, _TYPES[kind])
