"""A finished run's model, ready for inference, and the modules that wrap it: the deployable
model (preprocessing, model, probabilities) and test-time augmentation."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import RunError

if TYPE_CHECKING:
    from torch import Tensor, nn

    from zoo.data import Preprocessing


@dataclass
class Trained:
    """A model loaded from a run, with what it needs to read images."""

    model: nn.Module
    classes: list[str]
    preprocessing: Preprocessing
    checkpoint: Path
    multi_label: bool = False  # trained with --multi-label: sigmoid per label, not softmax
    threshold: float = 0.5  # multi-label: the run's --threshold


def load_trained(run_or_checkpoint: str | Path, device: str = "auto") -> Trained:
    """The best weights of a run directory (or of a ``best.pt`` file, or of a folder ``zoo
    export --format hf`` wrote), ready for inference. best.pt is read once: its meta here, and
    ``create`` loads the tensors read with it.

    >>> trained = load_trained("runs/resnet34-20261122-101500")
    """
    from zoo.compute import resolve_device
    from zoo.data import Preprocessing
    from zoo.models import create
    from zoo.weights import resolve_file

    path = Path(run_or_checkpoint)
    resolved = resolve_file(path)
    if resolved.class_names is None:
        raise RunError(
            f"{path} is not a zoo run or best.pt (no class names in it); "
            "pass the folder `zoo finetune` created"
        )
    meta = resolved.run
    model = create(meta["id"], num_classes=meta["num_classes"], weights=resolved)
    model.to(resolve_device(device)).eval()
    return Trained(
        model,
        output_names(meta["class_names"], meta["num_classes"]),
        Preprocessing.from_dict(meta["preprocessing"]),
        resolved.path,
        bool(meta.get("multi_label")),
        meta.get("threshold", 0.5),
    )


def output_names(class_names: list[str], num_classes: int) -> list[str]:
    """A name for each of the head's outputs: the classes trained on, then ``output_N`` for
    the outputs a larger ``--num-classes`` added, which no class was trained on.

    >>> output_names(["cat", "dog"], 4)
    ['cat', 'dog', 'output_2', 'output_3']
    """
    return list(class_names) + [f"output_{i}" for i in range(len(class_names), num_classes)]


def probabilities(logits: Tensor, multi_label: bool = False) -> Tensor:
    """The model's outputs as class probabilities: the one place zoo turns logits into them
    (predict, evaluate's top losses and TTA, every exported model); a multi-label run's are
    each label's own (sigmoid), not a distribution over the classes (softmax).

    >>> probabilities(torch.tensor([[0.0, 0.0]]))
    tensor([[0.5000, 0.5000]])
    """
    return logits.float().sigmoid() if multi_label else logits.float().softmax(-1)


def deployable(trained: Trained) -> nn.Module:
    """uint8 RGB images ``(N, 3, H, W)`` of any size -> class probabilities ``(N, classes)``:
    ``zoo.data.preprocess_module``, the model, ``probabilities``. What ``zoo predict`` runs and
    ``zoo export`` writes.

    >>> deployable(load_trained("runs/demo"))(torch.zeros(1, 3, 300, 200, dtype=torch.uint8))
    """
    from zoo.data import preprocess_module

    device = next(trained.model.parameters()).device
    pre = preprocess_module(trained.preprocessing).to(device)
    return _classes()[0](pre, trained.model, trained.multi_label).eval()


def with_flip(model: nn.Module, multi_label: bool = False) -> nn.Module:
    """Test-time augmentation for normalised input: the log of the mean of the probabilities
    of the image and of its horizontal flip (so a loss or a softmax on it reads as usual;
    for a multi-label model the logit of the mean, so that a sigmoid reads as usual)."""
    return _classes()[1](model, multi_label).eval()


@lru_cache(maxsize=1)
def _classes() -> tuple[type, type]:
    from torch import nn

    class Deployable(nn.Module):
        def __init__(self, preprocess: nn.Module, model: nn.Module, multi_label: bool) -> None:
            super().__init__()
            self.preprocess, self.model, self.multi_label = preprocess, model, multi_label

        def forward(self, images: Tensor, tta: bool = False) -> Tensor:
            x = self.preprocess(images)
            if tta:
                return probabilities(with_flip(self.model, self.multi_label)(x), self.multi_label)
            return probabilities(self.model(x), self.multi_label)

    class FlipAverage(nn.Module):
        def __init__(self, model: nn.Module, multi_label: bool) -> None:
            super().__init__()
            self.model, self.multi_label = model, multi_label

        def forward(self, x: Tensor) -> Tensor:
            both = (self.model(x), self.model(x.flip(-1)))
            mean = sum(probabilities(out, self.multi_label) for out in both) / 2
            if self.multi_label:
                return mean.clamp(1e-7, 1 - 1e-7).logit()
            return mean.clamp_min(1e-12).log()

    return Deployable, FlipAverage
