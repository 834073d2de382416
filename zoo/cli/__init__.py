"""The ``zoo`` command: a thin layer that parses options, calls the library, renders results.

Every ``ZooError``, and every ``OSError`` (a path the system refuses), becomes one line on
stderr and exit status 1; ``--debug`` shows the traceback instead. Ctrl-C is a stop, not an
error: one line without the ``Error:`` label, and exit status 130. Each command family lives
in its own module: backbones (list, info, plugins), transfer, finetune, runs (evaluate,
predict), export, compare, lr-find.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from zoo.cli._backbones import info, list_command, plugins
from zoo.cli._compare import compare
from zoo.cli._export import export
from zoo.cli._finetune import finetune
from zoo.cli._lr_find import lr_find
from zoo.cli._runs import evaluate, predict
from zoo.cli._transfer import transfer
from zoo.errors import ZooError, one_line


class ZooGroup(click.Group):
    """Turns the library's errors, and a path the system refuses, into one clear line, in
    one place."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (ZooError, OSError) as exc:
            # A closed pipe (zoo list | head) is click's to end quietly.
            if ctx.obj and ctx.obj.get("debug") or isinstance(exc, BrokenPipeError):
                raise
            click.echo(f"{getattr(exc, 'label', 'Error: ')}{_message(exc)}", err=True)
            ctx.exit(getattr(exc, "exit_code", 1))
        except KeyboardInterrupt:  # Ctrl-C outside a run's epochs: a stop, not click's Aborted!
            click.echo("stopped by Ctrl-C", err=True)
            ctx.exit(130)


def _message(exc: Exception) -> str:
    """A ZooError's own message, on one line; for an OSError (an output folder that cannot be
    created, a file that cannot be written or read) the system's reason and the path."""
    if not isinstance(exc, OSError):
        return one_line(str(exc))
    path = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{path}; check the path and its permissions (--debug: traceback)"


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zoo")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.option("--offline", is_flag=True, help="Forbid every network attempt (ZOO_OFFLINE=1).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, offline: bool) -> None:
    """A model zoo for fine-tuning image classifiers.

    \b
    zoo list 'resnet*'
    zoo info resnet34
    zoo finetune resnet34 --data ./pets --freeze-until layer3
    """
    ctx.ensure_object(dict)["debug"] = debug
    if offline:
        os.environ["ZOO_OFFLINE"] = "1"
    logging.basicConfig(
        format="zoo: warning: %(message)s", level=logging.WARNING, stream=sys.stderr
    )


for _command in (
    list_command, info, plugins, transfer, finetune, evaluate, predict, export, compare, lr_find,
):  # fmt: skip
    cli.add_command(_command)
del _command


def main() -> None:
    cli(prog_name="zoo")
