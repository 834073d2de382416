"""``zoo list``, ``zoo info`` and ``zoo plugins``: what the registry holds."""

from __future__ import annotations

import click

from zoo.cli._render import emit_json, json_option


@click.command(name="list")
@click.argument("patterns", nargs=-1)
@click.option("--source", "-s", help="Only backbones from this source (torchvision, timm, ...).")
@click.option("--pretrained", is_flag=True, help="Only architectures with published weights.")
@click.option("--cached", is_flag=True, help="Only backbones with weights on this machine.")
@click.option("--refresh", is_flag=True, help="Rebuild the backbone index first.")
@json_option("Print JSON rows.")
def list_command(patterns, source, pretrained, cached, refresh, as_json):
    """List backbones, filtered by fnmatch PATTERNS on the arch (or on SOURCE:ARCH).

    \b
    zoo list 'resnet*'
    zoo list 'timm:convnext*' --pretrained
    zoo list --cached --json
    """
    from zoo import registry

    if refresh:
        registry.clear_index()
    rows = registry.list_backbones(
        list(patterns), source=source, pretrained=pretrained, cached=cached
    )
    if as_json:
        return emit_json(rows)
    if not rows:
        click.echo("no backbones match", err=True)
        return
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        tag = r["default_tag"] or "-"
        more = f" (+{len(r['tags']) - 1} tags)" if len(r["tags"]) > 1 else ""
        others = [t for t in r["cached_tags"] if t != r["default_tag"]]
        mark = ("  cached" if r["cached"] else "") + (
            f"  cached: {', '.join(others)}" if others else ""
        )
        click.echo(f"{r['id']:<{width}}  {tag}{more}{mark}")


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
        f"input size:    {tuple(data['input_size'])}, {data['interpolation']}, "
        f"crop {data['crop_pct']:.3f}",
        f"mean / std:    {tuple(round(x, 4) for x in data['mean'])} / "
        f"{tuple(round(x, 4) for x in data['std'])}",
        f"head:          {head['module']} ({head['in_features']} -> {head['out_features']}){aux}",
        f"freeze points: {', '.join(data['freeze_points'])}, backbone",
        f"tags:          {', '.join(data['tags']) or 'none'}",
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
