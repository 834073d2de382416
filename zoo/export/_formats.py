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

    module = deployable(trained)
    example, shapes = example_and_shapes(trained)
    with _quiet():
        return torch.export.export(module, (example,), dynamic_shapes=shapes)


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
