"""The ``zoo`` command: a thin layer that parses options, calls the library, renders results.

Every ``ZooError`` becomes one line on stderr and exit status 1; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import json
import logging
import sys

import click

from zoo.errors import ZooError


class ZooGroup(click.Group):
    """Turns the library's errors into one clear line, in one place."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zoo")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """A model zoo for fine-tuning image classifiers.

    \b
    zoo list 'resnet*'
    zoo info resnet34
    zoo finetune resnet34 --data ./pets --freeze-until layer3
    """
    ctx.ensure_object(dict)["debug"] = debug
    logging.basicConfig(
        format="zoo: warning: %(message)s", level=logging.WARNING, stream=sys.stderr
    )


def emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2))


@cli.command(name="list")
@click.argument("patterns", nargs=-1)
@click.option("--source", "-s", help="Only backbones from this source (torchvision, timm, ...).")
@click.option("--pretrained", is_flag=True, help="Only architectures with published weights.")
@click.option("--cached", is_flag=True, help="Only backbones whose default weights are local.")
@click.option("--refresh", is_flag=True, help="Rebuild the backbone index first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows.")
def list_command(patterns, source, pretrained, cached, refresh, as_json):
    """List backbones, filtered by fnmatch PATTERNS on the arch (or on SOURCE:ARCH).

    \b
    zoo list 'resnet*'
    zoo list 'timm:convnext*' --pretrained
    zoo list --cached --json
    """
    from zoo import api, index

    if refresh:
        index.clear()
    rows = api.list_backbones(list(patterns), source=source, pretrained=pretrained, cached=cached)
    if as_json:
        return emit_json(rows)
    if not rows:
        click.echo("no backbones match", err=True)
        return
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        tag = r["default_tag"] or "-"
        more = f" (+{len(r['tags']) - 1} tags)" if len(r["tags"]) > 1 else ""
        mark = "  cached" if r["cached"] else ""
        click.echo(f"{r['id']:<{width}}  {tag}{more}{mark}")


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def info(name, as_json):
    """Describe backbone NAME: parameters, preprocessing, head, freeze points, weights.

    \b
    zoo info resnet34
    zoo info timm:convnext_tiny --json
    """
    from zoo import api

    data = api.info(name)
    if as_json:
        return emit_json(data)
    head = data["head"]
    lines = [
        f"id:            {data['id']}"
        + (f"  (also: {', '.join(data['also'])})" if data["also"] else ""),
        f"description:   {data['description']}",
        f"parameters:    {data['num_params']:,}",
        f"input size:    {tuple(data['input_size'])}, {data['interpolation']}, "
        f"crop {data['crop_pct']:.3f}",
        f"mean / std:    {tuple(round(x, 4) for x in data['mean'])} / "
        f"{tuple(round(x, 4) for x in data['std'])}",
        f"head:          {head['module']} ({head['in_features']} -> {head['out_features']})"
        + (f", auxiliary: {', '.join(data['aux_heads'])}" if data["aux_heads"] else ""),
        f"freeze points: {', '.join(data['freeze_points'])}, backbone",
        f"tags:          {', '.join(data['tags']) or 'none'}",
        f"weights:       {data['weights_path'] or 'none published'}"
        + ("  (cached)" if data["cached"] else "  (not cached)" if data["weights_path"] else ""),
    ]
    click.echo("\n".join(lines))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows.")
def plugins(as_json):
    """List plugins: name, distribution, version, backbones, status.

    \b
    zoo plugins
    zoo plugins --json
    """
    from zoo import plugins as plugin_mod
    from zoo.registry import get_registry

    registry = get_registry()
    rows = [
        {
            "name": p.name,
            "distribution": p.distribution,
            "version": p.version,
            "builtin": p.builtin,
            "backbones": len(registry.by_source.get(p.name, {})),
            "status": p.status,
        }
        for p in plugin_mod.plugin_infos()
    ]
    if as_json:
        return emit_json(rows)
    for r in rows:
        dist = f"{r['distribution']} {r['version'] or ''}".strip() if r["distribution"] else "-"
        click.echo(f"{r['name']:<14} {dist:<22} {r['backbones']:>5} backbones  {r['status']}")


def _parse_map(ctx, param, values):
    pairs = []
    for value in values:
        pattern, sep, replacement = value.partition("=")
        if not sep or not pattern:
            raise click.BadParameter(f"'{value}' is not REGEX=REPLACEMENT", ctx, param)
        pairs.append((pattern, replacement))
    return pairs


@cli.command()
@click.argument("source_weights", type=click.Path(dir_okay=False))
@click.option("--into", "into", required=True, help="The target backbone, e.g. resnet50.")
@click.option("--num-classes", type=click.IntRange(min=1), help="Classes of the target head.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the result (.safetensors, else a torch state dict).",
)
@click.option("--prefix", help="Use only keys under this prefix, e.g. backbone.")
@click.option(
    "--map",
    "key_map",
    multiple=True,
    callback=_parse_map,
    metavar="REGEX=REPL",
    help="Rewrite source keys by regex; repeatable, applied in order.",
)
@click.option("--strict", is_flag=True, help="Fail unless every key loads.")
@click.option(
    "--min-coverage",
    type=click.FloatRange(0, 1),
    help="Fail if less than this fraction of the parameters loads.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def transfer(
    source_weights, into, num_classes, output, prefix, key_map, strict, min_coverage, as_json
):
    """Load what fits of SOURCE_WEIGHTS into backbone INTO and report the rest.

    \b
    zoo transfer old-model.pth --into resnet50 --num-classes 9 -o resnet50-9.pt
    zoo transfer ckpt.safetensors --into resnet34 --prefix backbone. --min-coverage 0.9
    zoo transfer tf.pth --into resnet34 --map '^net\.=' --strict --json
    """
    from zoo import api

    report = api.transfer_checkpoint(
        source_weights,
        into,
        num_classes=num_classes,
        output=output,
        prefix=prefix,
        key_map=key_map,
        strict=strict,
        min_coverage=min_coverage,
    )
    if as_json:
        return emit_json({**report.to_dict(), "output": output})
    click.echo(report.summary())
    if output:
        click.echo(f"wrote {output}")


def main() -> None:
    cli(prog_name="zoo")
