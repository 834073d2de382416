"""An example zoo plugin, written as a template for plugin authors.

A plugin is one module with a ``register_backbones`` hook, plus an entry point in group
``zoo`` in its ``pyproject.toml``:

    [project.entry-points.zoo]
    tinyplug = "tinyplug"

Its backbones are then listed as ``tinyplug:plainnet`` and ``tinyplug:bareseq``. Import
torch inside the factories, not at the top, so ``zoo list`` stays fast.
"""

from __future__ import annotations

import zoo


def plainnet():
    """A small CNN that names its head and stages itself."""
    from torch import nn

    class PlainNet(nn.Module):
        def __init__(self, num_classes: int = 10) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
            self.block1 = nn.Sequential(
                nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU()
            )
            self.block2 = nn.Sequential(
                nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU()
            )
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(32, num_classes)

        def forward(self, x):
            x = self.block2(self.block1(self.stem(x)))
            return self.classifier(self.pool(x).flatten(1))

    return PlainNet()


def bareseq():
    """A bare nn.Sequential: zoo finds its head and freeze points by itself."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )


@zoo.hookimpl
def register_backbones(register):
    register(
        "plainnet",
        plainnet,
        head="classifier",
        stages=["stem", "block1", "block2"],
        weights={"demo": "~/.cache/tinyplug/plainnet-demo.safetensors"},
        input_size=(3, 32, 32),
        description="a three-stage CNN for 32 px images",
    )
    register("bareseq", bareseq, input_size=(3, 32, 32))
