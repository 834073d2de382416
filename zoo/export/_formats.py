"""Writing the deployable module (``zoo.runs.deployable``) as ONNX or as a ``torch.export``
program, with the run's class names and preprocessing in the file's metadata."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

ONNX_OPSET = 18


def example_and_shapes(trained):
    """An example batch (uint8, of a size unlike the input size) and the dynamic dimensions:
    any batch, any height and width."""
    import torch
    from torch.export import Dim

    _, height, width = trained.preprocessing.input_size
    example = torch.randint(0, 256, (2, 3, height + 37, width + 61), dtype=torch.uint8)
    dims = {0: Dim("batch", min=1), 2: Dim("height", min=8), 3: Dim("width", min=8)}
    return example, {"images": dims}


def export_program(trained):
    """The deployable module as a ``torch.export.ExportedProgram``."""
    import torch

    from zoo.runs import deployable

    example, shapes = example_and_shapes(trained)
    module = without_unused(deployable(trained), example)
    with _quiet():
        return torch.export.export(module, (example,), dynamic_shapes=shapes)


def without_unused(module, example):
    """A copy of ``module`` whose submodules that inference never calls, nor any of their
    children (inception's and googlenet's auxiliary heads), are replaced by empty ones, so
    their weights stay out of the file as they stay out of the graph; ``module`` itself when
    the copy does not give the same output."""
    import copy

    import torch
    from torch import nn

    pruned, called = copy.deepcopy(module), set()
    hooks = [
        m.register_forward_hook(lambda m, i, o, name=name: called.add(name))
        for name, m in pruned.named_modules()
    ]
    with torch.inference_mode():
        want = pruned(example)
    for hook in hooks:
        hook.remove()
    for name in _unused(pruned, called):
        parent, _, child = name.rpartition(".")
        setattr(pruned.get_submodule(parent), child, nn.Identity())
    with torch.inference_mode():
        return pruned if torch.equal(pruned(example), want) else module


def _unused(module, called: set[str]) -> list[str]:
    names = [name for name, _ in module.named_modules() if name]
    unused = [
        n for n in names if n not in called and not any(c.startswith(n + ".") for c in called)
    ]
    # the outermost ones only
    return [n for n in unused if n.rpartition(".")[0] not in unused]


def write_pt2(trained, path: Path, metadata: dict[str, str]) -> None:
    import torch

    program = export_program(trained)
    torch.export.save(program, str(path), extra_files=metadata)


def write_onnx(trained, path: Path, metadata: dict[str, str]) -> None:
    import onnx
    import torch

    from zoo.runs import deployable

    example, shapes = example_and_shapes(trained)
    with _quiet():
        torch.onnx.export(
            deployable(trained),
            (example,),
            str(path),
            dynamo=True,
            opset_version=ONNX_OPSET,
            input_names=["images"],
            output_names=["probabilities"],
            dynamic_shapes=shapes,
            verbose=False,
        )
    model = onnx.load(str(path))
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


@contextlib.contextmanager
def _quiet():
    """torch.onnx and torch.export print their progress and warnings; zoo's output stays its own
    (and ``--json`` stdout stays JSON)."""
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        yield
