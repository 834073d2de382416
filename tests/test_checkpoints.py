"""Reading checkpoints safely (nothing in a file runs) and writing run files atomically."""

from __future__ import annotations

import json
import os
import pickle
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torchvision

from zoo.checkpoints import extract_state_dict, read_checkpoint, read_state_dict
from zoo.errors import CheckpointError, UnsafeCheckpointError, WeightsNotFoundError, ZooError
from zoo.files import atomic_write_bytes, save_safetensors, save_torch, write_json

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def resnet18_state() -> dict[str, torch.Tensor]:
    return torchvision.models.resnet18(weights=None).state_dict()


@pytest.fixture
def small_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    return model.state_dict()


class _RunsShell:
    """Unpickling this calls os.system: the payload a malicious checkpoint would carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _assert_equal_states(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _save(state: dict[str, torch.Tensor], path: Path) -> None:
    if path.suffix == ".safetensors":
        save_safetensors(state, path)
    else:
        save_torch(state, path)


def _mapped_files() -> str:
    return Path("/proc/self/maps").read_text()


# --- reading -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".bin", ".ckpt"])
def test_torch_formats_read_back_exactly(tmp_path, resnet18_state, suffix):
    path = tmp_path / f"resnet18{suffix}"
    torch.save(resnet18_state, path)
    _assert_equal_states(read_state_dict(path), resnet18_state)


def test_safetensors_reads_back_exactly(tmp_path, resnet18_state):
    path = tmp_path / "resnet18.safetensors"
    save_safetensors(resnet18_state, path)
    _assert_equal_states(read_state_dict(path), resnet18_state)


def test_legacy_non_zip_torch_file_still_reads(tmp_path, small_state):
    path = tmp_path / "old.pth"
    torch.save(small_state, path, _use_new_zipfile_serialization=False)
    _assert_equal_states(read_state_dict(path), small_state)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("name", ["big.pt", "big.safetensors"])
def test_checkpoints_are_memory_mapped_not_copied(tmp_path, name):
    path = (tmp_path / name).resolve()
    state = {"w": torch.randn(512, 512)}
    _save(state, path)
    loaded = read_checkpoint(path)
    assert str(path) in _mapped_files()
    del loaded
    assert str(path) not in _mapped_files()


def test_wrappers_and_prefixes_are_unwrapped(small_state):
    wrapped = {"state_dict": {f"module._orig_mod.{k}": v for k, v in small_state.items()}}
    _assert_equal_states(extract_state_dict(wrapped), small_state)
    for key in ("model", "model_state_dict", "module"):
        checkpoint = {key: small_state, "epoch": 3, "optimizer": {"state": {}}}
        _assert_equal_states(extract_state_dict(checkpoint), small_state)


def test_ema_weights_are_used_only_without_plain_ones(small_state):
    ema = {k: v + 1 for k, v in small_state.items()}
    _assert_equal_states(extract_state_dict({"state_dict_ema": ema}), ema)
    both = {"state_dict_ema": ema, "state_dict": small_state}
    _assert_equal_states(extract_state_dict(both), small_state)


def test_prefix_is_stripped_only_when_it_starts_every_key(small_state):
    some = {"module.a": small_state["0.weight"], "b.module.c": small_state["0.bias"]}
    assert sorted(extract_state_dict(some)) == ["b.module.c", "module.a"]


def test_a_file_that_runs_code_when_unpickled_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    zipped, plain = tmp_path / "evil.pth", tmp_path / "evil.bin"
    torch.save({"state_dict": {}, "payload": _RunsShell(marker)}, zipped)
    # Protocol 4 is what torch's own loader only reports as an unsupported opcode.
    plain.write_bytes(pickle.dumps({"payload": _RunsShell(marker)}, protocol=4))
    for path in (zipped, plain):
        with pytest.raises(UnsafeCheckpointError) as excinfo:
            read_checkpoint(path)
        message = str(excinfo.value)
        assert str(path) in message and "system" in message
        assert "never runs code" in message and "state_dict" in message
        assert "safetensors" in message and "\n" not in message
    assert not marker.exists()


def test_a_whole_pickled_module_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(torchvision.models.resnet18(weights=None), path)
    with pytest.raises(UnsafeCheckpointError, match="arbitrary unpickling.*ResNet"):
        read_checkpoint(path)


def test_missing_file_is_weights_not_found(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="nope.pth"):
        read_checkpoint(tmp_path / "nope.pth")


def _truncated_copy(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


@pytest.mark.parametrize("kind", ["garbage", "empty", "truncated zip", "truncated safetensors"])
def test_broken_files_give_one_line_checkpoint_errors(tmp_path, small_state, kind):
    if kind == "garbage":
        path = tmp_path / "garbage.pth"
        path.write_bytes(random.Random(0).randbytes(4096))
    elif kind == "empty":
        path = tmp_path / "empty.pt"
        path.touch()
    elif kind == "truncated zip":
        save_torch(small_state, tmp_path / "whole.pt")
        path = _truncated_copy(tmp_path / "whole.pt", tmp_path / "half.pt")
    else:
        save_safetensors(small_state, tmp_path / "whole.safetensors")
        path = _truncated_copy(tmp_path / "whole.safetensors", tmp_path / "half.safetensors")
    with pytest.raises(CheckpointError) as excinfo:
        read_state_dict(path)
    assert str(path) in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_checkpoint_without_tensors_names_its_keys(tmp_path):
    path = tmp_path / "optim.pt"
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, path)
    with pytest.raises(CheckpointError, match="no tensors.*epoch, optimizer"):
        read_state_dict(path)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_random_and_mutated_files_only_raise_zoo_errors(tmp_path, small_state, suffix):
    good_path = tmp_path / f"good{suffix}"
    _save(small_state, good_path)
    good = good_path.read_bytes()
    rng = random.Random(suffix)
    refused = 0
    for i in range(40):
        data = bytearray(good)
        if i % 4 == 0:
            data = bytearray(rng.randbytes(rng.randint(1, 2048)))
        elif i % 4 == 1:
            data = data[: rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        path = tmp_path / f"fuzz{i}{suffix}"
        path.write_bytes(bytes(data))
        try:
            read_state_dict(path)
        except ZooError:
            refused += 1
    # Random bytes and truncations are always refused; some flipped bytes land in tensor data.
    assert refused >= 20


# --- writing -------------------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_atomic_write_replaces_the_file_with_ordinary_permissions(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("old")
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    plain = tmp_path / "plain.txt"
    plain.write_bytes(b"x")
    # A temp file made by mkstemp would be 0600; run files should be as readable as any other.
    assert path.stat().st_mode == plain.stat().st_mode
    assert _leftovers(tmp_path) == []


def test_write_json_round_trip(tmp_path):
    write_json(tmp_path / "run" / "config.json", {"id": "torchvision:resnet34", "lr": 0.001})
    assert json.loads((tmp_path / "run" / "config.json").read_text())["lr"] == 0.001
    assert _leftovers(tmp_path / "run") == []


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, small_state):
    path = tmp_path / "best.pt"
    save_torch({"state_dict": small_state}, path)
    before = path.read_bytes()
    with pytest.raises(Exception, match="lambda|pickle"):
        save_torch({"state_dict": small_state, "bad": lambda: 0}, path)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_saved_torch_file_loads_weights_only_and_mapped(tmp_path, small_state):
    path = tmp_path / "best.pt"
    save_torch({"state_dict": small_state, "meta": {"num_classes": 4}}, path)
    loaded = torch.load(path, weights_only=True, mmap=True)
    assert loaded["meta"] == {"num_classes": 4}
    _assert_equal_states(loaded["state_dict"], small_state)


def test_save_safetensors_copes_with_tied_and_strided_tensors(tmp_path):
    weight = torch.randn(6, 4)
    state = {"embed.weight": weight, "head.weight": weight, "t": weight.t(), "row": weight[2]}
    save_safetensors(state, tmp_path / "tied.safetensors")
    _assert_equal_states(read_checkpoint(tmp_path / "tied.safetensors"), state)


def test_concurrent_writers_never_collide(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from zoo.files import atomic_write_bytes, write_json
        folder, me = sys.argv[1], int(sys.argv[2])
        for i in range(30):
            write_json(f"{folder}/shared.json", {"writer": me, "i": i, "pad": "x" * 5000})
            atomic_write_bytes(f"{folder}/shared.bin", bytes([me]) * 20000)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(n)], env=env)
        for n in range(4)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    assert json.loads((tmp_path / "shared.json").read_text())["i"] == 29
    assert len(set((tmp_path / "shared.bin").read_bytes())) == 1
    assert _leftovers(tmp_path) == []
