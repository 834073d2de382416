"""``--format hf``: a folder to upload to a model hub: timm's ``config.json``, the weights as
``model.safetensors``, the model card ``README.md``, and ``zoo.json`` (what zoo needs to
rebuild the model: id, classes, preprocessing)."""

from __future__ import annotations

from pathlib import Path

from zoo.files import save_safetensors, write_json


def write_hf(trained, folder: Path) -> None:
    """Write the folder; ``timm.create_model("local-dir:FOLDER", pretrained=True)`` loads a
    timm backbone's, ``zoo predict FOLDER`` and ``zoo.create(id, weights=FOLDER)`` any."""
    from zoo.runs import hf_config, read_run_meta, write_card

    folder.mkdir(parents=True)
    meta = read_run_meta(trained.checkpoint)
    write_json(folder / "config.json", hf_config(meta))
    write_json(folder / "zoo.json", meta)
    save_safetensors(trained.model.state_dict(), folder / "model.safetensors")
    write_card(trained.checkpoint.parent, folder / "README.md")
