"""What the commands share: ``--json`` output, and the library's defaults for their options."""

from __future__ import annotations

import inspect
import json

import click


def emit_json(data) -> None:
    """Print ``data`` as indented JSON on stdout, and nothing else there."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def json_option(help: str):
    """The ``--json`` flag, passed to the command as ``as_json``."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def defaults_of(function) -> dict:
    """The keyword defaults of a library function, so that an option's default is written
    once, where the work is done."""
    params = inspect.signature(function).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
