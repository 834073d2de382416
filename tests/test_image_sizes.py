"""Every family at every size (issue 20, defects 1 and 2): a model zoo builds for an image size
either trains and evaluates at it, or zoo refuses before any file is written, naming the
smallest size that works. ViTs are built for the size, pretrained position embeddings
resampled.

Steps at 32 px run on real tensors; larger sizes on the meta device, where every layer
checks shapes as on real ones without the seconds a 224 px step of vgg takes on a CPU.
"""

from __future__ import annotations

import os
import re

import pytest
import timm
import torch
import torchvision
from click.testing import CliRunner
from images import make_image_folder
from safetensors.torch import save_file
from test_weights import randomised, save_hf_snapshot, save_hub_file, use_homes

import zoo
from zoo.cli import cli
from zoo.errors import ImageSizeError
from zoo.runs import evaluate, predict

SIZES = (32, 64, 128, 224)
# The families the seeds name (a small member of each), timm resnet, convnext, efficientnet
# and a ViT, torchvision's vit_b_16 and swin_t.
FAMILIES = [
    "alexnet",
    "vgg11",
    "squeezenet1_1",
    "densenet121",
    "inception_v3",
    "googlenet",
    "shufflenet_v2_x0_5",
    "mobilenet_v2",
    "resnet18",
    "resnext50_32x4d",
    "wide_resnet50_2",
    "mnasnet0_5",
    "timm:resnet18",
    "timm:convnext_atto",
    "timm:efficientnet_b0",
    "timm:vit_tiny_patch16_224",
    "vit_b_16",
    "swin_t",
]
REAL_UP_TO = 32  # px: real tensors up to here, the meta device above


def logits_of(result):
    return [result] if isinstance(result, torch.Tensor) else [t for t in result if t is not None]


def train_and_eval_step(model, size: int, device: str) -> None:
    """A train step, then (on real tensors; on meta it is a part of the train step's graph)
    an eval step."""
    images = torch.randn(2, 3, size, size, device=device)
    labels = torch.tensor([0, 1], device=device)
    model.train()
    loss = sum(torch.nn.functional.cross_entropy(x, labels) for x in logits_of(model(images)))
    loss.backward()
    if device != "meta":
        model.eval()
        with torch.no_grad():
            assert model(images).shape == (2, 3)


def create(name: str, size: int, device: str):
    with torch.device(device):
        return zoo.create(name, num_classes=3, weights=None, image_size=size)


def smallest_named(error: ImageSizeError) -> int:
    found = re.search(r"the smallest size that works is (\d+) px", str(error))
    assert found, str(error)
    return int(found.group(1))


@pytest.mark.parametrize("name", FAMILIES)
def test_a_family_trains_at_every_size_or_names_the_smallest_that_works(name):
    sizes = (*SIZES, 299) if name == "inception_v3" else SIZES
    named = set()
    for size in sizes:
        device = "cpu" if size <= REAL_UP_TO else "meta"
        try:
            model = create(name, size, device)
        except ImageSizeError as error:
            assert "\n" not in str(error)
            named.add(smallest_named(error))
            assert size < min(named)
            continue
        train_and_eval_step(model, size, device)
    if named:
        (smallest,) = named  # one answer, whatever size was asked for
        create(name, smallest, "meta")  # it does work there ...
        with pytest.raises(ImageSizeError):
            create(name, smallest - 1, "meta")  # ... and is the smallest


@pytest.mark.parametrize("name", ["timm:vit_tiny_patch16_224", "vit_b_16", "swin_t"])
def test_transformers_work_at_every_size(name):
    for size in SIZES:
        create(name, size, "meta")  # no ImageSizeError


def test_inception_below_its_size_is_refused_before_any_file_is_written(tmp_path):
    data = make_image_folder(tmp_path / "pets", ["cat", "dog"], 2)
    out = tmp_path / "run"
    args = ["finetune", "inception_v3", "--weights", "none", "--data", str(data)]
    result = CliRunner().invoke(cli, [*args, "--image-size", "64", "-o", str(out)])
    assert result.exit_code == 1, result.output
    line = result.output.strip()
    assert line.startswith("Error: ") and "\n" not in line
    assert "inception_v3 cannot take 64 px images; the smallest size that works is 299 px" in line
    assert not out.exists()


def test_a_vit_run_at_32_px_trains_evaluates_and_predicts(tmp_path):
    data = make_image_folder(tmp_path / "pets", ["cat", "dog"], (3, 2), layout="train-valid")
    out = tmp_path / "run"
    result = zoo.finetune(
        "timm:vit_tiny_patch16_224", str(data), epochs=1, image_size=32, weights=None,
        workers=0, output=str(out), batch_size=2,
    )  # fmt: skip
    assert result.run_dir == out
    metrics = evaluate(out, data / "valid", device="cpu")
    assert metrics["accuracy"] == pytest.approx(result.summary["best_val_acc"])
    image = next((data / "valid" / "cat").iterdir())
    assert len(predict(out, [image], top_k=1, device="cpu")) == 1


def test_timm_vit_weights_are_resampled_for_another_size(tmp_path, monkeypatch):
    name = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"
    saved = randomised(timm.create_model("vit_tiny_patch16_224"), seed=3)
    save_hf_snapshot(tmp_path / "hf", timm.models.get_pretrained_cfg(name).hf_hub_id, saved)
    use_homes(monkeypatch, tmp_path)
    model = zoo.create(f"timm:{name}", num_classes=3, image_size=64)
    assert model.pos_embed.shape == (1, 1 + 4 * 4, 192)
    assert torch.equal(model.pos_embed[0, 0], saved["pos_embed"][0, 0])  # the class token's
    expected = timm.layers.resample_abs_pos_embed(saved["pos_embed"], (4, 4), num_prefix_tokens=1)
    assert torch.allclose(model.pos_embed, expected)
    assert torch.equal(model.blocks[0].attn.qkv.weight, saved["blocks.0.attn.qkv.weight"])


def test_torchvision_vit_weights_are_resampled_for_another_size(tmp_path, monkeypatch):
    weights = torchvision.models.ViT_B_16_Weights.IMAGENET1K_V1
    with torch.device("meta"):
        shapes = torchvision.models.vit_b_16().state_dict()
    saved = {k: torch.rand(v.shape) for k, v in shapes.items()}
    save_hub_file(tmp_path / "torch", os.path.basename(weights.url), saved)
    use_homes(monkeypatch, tmp_path)
    model = zoo.create("vit_b_16", num_classes=3, image_size=32)
    embedding = model.encoder.pos_embedding
    assert embedding.shape == (1, 1 + 2 * 2, 768)
    assert torch.equal(embedding[0, 0], saved["encoder.pos_embedding"][0, 0])
    assert model.zoo_spec.build_kwargs == {"image_size": 32}


def test_a_vit_weights_file_of_another_size_is_resampled(tmp_path):
    saved = randomised(timm.create_model("vit_tiny_patch16_224"), seed=4)
    path = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in saved.items()}, path)
    model = zoo.create("timm:vit_tiny_patch16_224", num_classes=3, weights=path, image_size=32)
    assert model.pos_embed.shape == (1, 1 + 2 * 2, 192)
    assert torch.equal(model.blocks[0].attn.qkv.weight, saved["blocks.0.attn.qkv.weight"])
