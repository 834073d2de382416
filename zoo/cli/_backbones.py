"""``zoo list``, ``zoo info`` and ``zoo plugins``: what the registry holds."""

from __future__ import annotations

import click

from zoo.cli._render import emit_json, json_option


def filter_options(command):
    """The metadata filters and sort order ``zoo list`` and ``zoo compare`` share."""
    from zoo.registry import SORT_KEYS

    options = [
        click.option(
            "--max-params", help="At most this many parameters: 30M, 300K, 5.5M, 25557032."
        ),
        click.option(
            "--max-gflops", help="At most this many GFLOPs per image (a multiply-add is one)."
        ),
        click.option("--min-top1", help="At least this ImageNet-1k top-1 accuracy, in %."),
        click.option(
            "--sort",
            type=click.Choice(SORT_KEYS),
            help="Order: top1 best first, the others smallest first, unknown values last.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command(name="list")
@click.argument("patterns", nargs=-1)
@click.option("--source", "-s", help="Only backbones from this source (torchvision, timm, ...).")
@click.option("--pretrained", is_flag=True, help="Only architectures with published weights.")
@click.option("--cached", is_flag=True, help="Only backbones with weights on this machine.")
@filter_options
@click.option("--refresh", is_flag=True, help="Rebuild the backbone index first.")
@json_option("Print JSON rows.")
def list_command(patterns, source, pretrained, cached, refresh, as_json, **filters):
    """List backbones, filtered by fnmatch PATTERNS on the arch (or on SOURCE:ARCH), with
    their default weights' parameters, GFLOPs and ImageNet-1k top-1 (- where unknown).

    \b
    zoo list 'resnet*'
    zoo list 'timm:convnext*' --pretrained
    zoo list --min-top1 80 --max-params 30M --sort params
    zoo list --cached --json
    """
    from zoo import registry

    if refresh:
        registry.clear_index()
    rows = registry.list_backbones(
        list(patterns), source=source, pretrained=pretrained, cached=cached, **filters
    )
    if as_json:
        return emit_json(rows)
    if not rows:
        click.echo("no backbones match", err=True)
        return
    click.echo("\n".join(_list_lines(rows)))


def _list_lines(rows: list[dict]) -> list[str]:
    width = max(len(r["id"]) for r in rows)
    lines = [f"{'id':<{width}}  {'params':>7}  {'GFLOPs':>7}  {'top-1':>6}  weights"]
    for r in rows:
        tag = r["default_tag"] or "-"
        more = f" (+{len(r['tags']) - 1} tags)" if len(r["tags"]) > 1 else ""
        others = [t for t in r["cached_tags"] if t != r["default_tag"]]
        mark = ("  cached" if r["cached"] else "") + (
            f"  cached: {', '.join(others)}" if others else ""
        )
        numbers = (
            f"{count(r['params']):>7}  {gflops_text(r['gflops']):>7}  {_number(r['top1'], 2):>6}"
        )
        lines.append(f"{r['id']:<{width}}  {numbers}  {tag}{more}{mark}")
    return lines


def count(value: float | None) -> str:
    """25557032 -> 25.6M; None -> -."""
    if value is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return str(int(value))


def gflops_text(value: float | None) -> str:
    """4.089 -> 4.09, 0.0013 -> 0.0013 (a tiny model is not 0.00); None -> -."""
    if value is None:
        return "-"
    return f"{value:.2f}" if value >= 0.01 else f"{value:.2g}"


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@click.command()
@click.argument("name")
@json_option("Print a JSON object.")
def info(name, as_json):
    """Describe backbone NAME: parameters, preprocessing, head, freeze points, weights.

    \b
    zoo info resnet34
    zoo info timm:convnext_tiny --json
    """
    from zoo import models

    data = models.info(name)
    if as_json:
        return emit_json(data)
    click.echo("\n".join(_info_lines(data)))


def _info_lines(data: dict) -> list[str]:
    head = data["head"]
    also = f"  (also: {', '.join(data['also'])})" if data["also"] else ""
    aux = f", auxiliary: {', '.join(data['aux_heads'])}" if data["aux_heads"] else ""
    cached = "  (cached)" if data["cached"] else "  (not cached)" if data["weights_path"] else ""
    return [
        f"id:            {data['id']}{also}",
        f"description:   {data['description'] or '(none given)'}",
        f"parameters:    {data['num_params']:,}",
        f"cost:          {gflops_text(data['gflops'])} GFLOPs per image at "
        f"{data['input_size'][-1]} px",
        f"ImageNet-1k:   top-1 {_number(data['top1'], 3)}, top-5 {_number(data['top5'], 3)}",
        f"license:       {data['license'] or 'not published'}",
        f"input size:    {tuple(data['input_size'])}, {data['interpolation']}, "
        f"crop {data['crop_pct']:.3f}",
        f"mean / std:    {tuple(round(x, 4) for x in data['mean'])} / "
        f"{tuple(round(x, 4) for x in data['std'])}",
        f"head:          {head['module']} ({head['in_features']} -> {head['out_features']}){aux}",
        f"freeze points: {', '.join(data['freeze_points'])}, backbone",
        f"tags:          {_tags(data) or 'none'}",
        f"tag:           {data['tag'] or 'none'}"
        + (f" (ImageNet-1K top-1 {data['top1']})" if data.get("top1") else ""),
        f"weights:       {data['weights_path'] or 'none published'}{cached}",
    ]


@click.command()
@json_option("Print JSON rows.")
def plugins(as_json):
    """List plugins: name, distribution, version, backbones, status.

    \b
    zoo plugins
    zoo plugins --json
    """
    from zoo.registry import list_plugins

    rows = list_plugins()
    if as_json:
        return emit_json(rows)
    for r in rows:
        dist = f"{r['distribution']} {r['version'] or ''}".strip() if r["distribution"] else "-"
        click.echo(f"{r['name']:<14} {dist:<22} {r['backbones']:>5} backbones  {r['status']}")


def _tags(data: dict) -> str:
    """Each tag with its top-1 where published: ``IMAGENET1K_V2 (80.858)``."""
    top1 = data["top1_by_tag"]
    return ", ".join(t + (f" ({top1[t]})" if top1.get(t) is not None else "") for t in data["tags"])
