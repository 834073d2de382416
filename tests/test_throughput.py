"""benchmarks/throughput.py: zoo's training step on synthetic images, for real on the CPU."""

from __future__ import annotations

import json
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))


def test_measures_zoo_s_step_and_plain_fp32_and_names_the_device(tmp_path, capsys):
    import throughput

    out = tmp_path / "t.json"
    args = ["--arch", "resnet18", "--image-size", "32", "--batch-size", "4", "--steps", "2"]
    results = throughput.main([*args, "--warmup", "1", "--device", "cpu", "--json", str(out)])
    assert json.loads(out.read_text()) == results
    zoo, plain = results["settings"]["zoo"], results["settings"]["fp32 NCHW"]
    assert zoo["layout"] == "channels_last" and plain["layout"] == "NCHW"
    assert plain["precision"] == "fp32" and zoo["precision"] in ("fp32", "bf16")
    assert zoo["images_per_s"] > 0 and plain["images_per_s"] > 0
    assert zoo["peak_memory_mb"] is None  # GPU memory only
    assert results["speedup"] == zoo["images_per_s"] / plain["images_per_s"]
    printed = capsys.readouterr().out
    assert results["device"] in printed and "| zoo |" in printed and "| fp32 NCHW |" in printed


def test_without_a_gpu_make_bench_gpu_says_so_and_stops(capsys):
    import pytest
    import throughput
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert throughput.main([]) == {"device": None}
    assert "no CUDA GPU on this machine" in capsys.readouterr().out


def test_the_end_to_end_fine_tune_runs_on_generated_jpegs(tmp_path, capsys):
    import end_to_end

    out = tmp_path / "e2e.json"
    args = ["--device", "cpu", "--arch", "resnet18", "--images", "20", "--image-size", "32"]
    args += ["--batch-size", "10", "--epochs", "1", "--photo", "96x72", "--json", str(out)]
    result = end_to_end.main(args, step_images_per_s=1e9)
    assert json.loads(out.read_text()) == result
    assert result["images_per_s"] > 0 and result["workers"] <= 2  # two batches of ten
    assert 0 < result["loader_share"] <= 1 and result["device"] == "cpu"
    assert "img/s in the steady epoch" in capsys.readouterr().out
