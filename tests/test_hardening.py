"""Crash-safe runs, exact resume, Ctrl-C, NaN, and a clear line for every bad input."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import run_zoo
from images import make_image_folder, write_empty, write_png_bomb, write_truncated

import zoo
from zoo.runs import RunDir

PLAIN = ["--weights", "none", "--image-size", "32", "--batch-size", "8", "--workers", "0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_image_folder(
        tmp_path_factory.mktemp("data"), ["a", "b", "c"], per_class=(16, 6), layout="train-valid"
    )


@pytest.fixture
def env(plugin_site) -> dict:
    return {"PYTHONPATH": str(plugin_site), "PYTHONUNBUFFERED": "1"}


def start(args, env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "zoo", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def epochs_done(run: Path) -> int:
    path = run / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_for(condition, timeout=120.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def assert_every_file_loads(run: Path, temporaries_allowed: bool = True) -> None:
    for path in run.iterdir():
        if path.name.startswith(".") and path.suffix == ".tmp" and temporaries_allowed:
            continue  # a kill mid-write leaves its temporary; the run's own files stay whole
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            [json.loads(line) for line in path.read_text().splitlines()]
        elif path.suffix == ".pt":
            torch.load(path, weights_only=True)
        elif path.suffix == ".png":
            from PIL import Image

            Image.open(path).load()
        elif path.suffix == ".md":  # the model card: whole, so it ends with its last line
            assert path.read_text().startswith("# ") and path.read_text().endswith("`.\n")
        else:
            raise AssertionError(f"unexpected file {path.name} (a temporary file left over?)")


def test_sigkill_at_random_moments_never_leaves_a_broken_file(data, env, tmp_path):
    run = tmp_path / "run"
    args = [
        "finetune",
        "tinyplug:plainnet",
        "--data",
        str(data),
        "--epochs",
        "6",
        *PLAIN,
        "-o",
        str(run),
    ]
    rng = random.Random(4)
    for attempt in range(4):
        proc = start(args if attempt == 0 else ["finetune", "--resume", str(run)], env)
        if attempt == 0:
            wait_for(lambda: (run / "last.pt").exists())
        time.sleep(rng.uniform(0.0, 2.5))
        proc.kill()
        proc.wait()
        assert_every_file_loads(run)
    result = run_zoo("finetune", "--resume", str(run), env=env)
    assert result.returncode == 0, result.stderr
    assert_every_file_loads(run, temporaries_allowed=False)
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 6
    assert [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]


KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")


def test_resume_removes_only_the_temporaries_of_dead_writers(tmp_path):
    from zoo.files import remove_stale_temporaries

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = tmp_path / f".best.pt.{int(gone.stdout)}.ab12cd34.tmp"
    live = tmp_path / f".last.pt.{os.getpid()}.ab12cd34.tmp"
    other = tmp_path / ".notes.tmp"
    for path in (dead, live, other):
        path.write_bytes(b"partial")
    assert remove_stale_temporaries(tmp_path) == [dead]
    assert not dead.exists() and live.exists() and other.exists()


def test_killed_and_resumed_run_ends_like_an_unbroken_one(data, env, with_site, tmp_path):
    options = {
        "epochs": 4,
        "weights": "none",
        "image_size": 32,
        "batch_size": 8,
        "scheduler": "cosine",
        "lr": 0.05,
    }
    whole = zoo.finetune(
        "tinyplug:plainnet", str(data), output=str(tmp_path / "whole"), workers=0, **options
    )
    run = tmp_path / "broken"
    proc = start(
        [
            "finetune",
            "tinyplug:plainnet",
            "--data",
            str(data),
            "--epochs",
            "4",
            "--weights",
            "none",
            "--image-size",
            "32",
            "--batch-size",
            "8",
            "--scheduler",
            "cosine",
            "--lr",
            "0.05",
            "--workers",
            "2",
            "-o",
            str(run),
        ],
        env,
    )
    wait_for(lambda: epochs_done(run) >= 2)
    proc.kill()
    proc.wait()
    assert epochs_done(run) < 4
    resumed = zoo.finetune(resume=str(run), workers=0)
    assert len(resumed.metrics) == 4
    for a, b in zip(whole.metrics, resumed.metrics, strict=True):
        for key in KEYS:
            assert a[key] == pytest.approx(b[key], abs=1e-6), (a["epoch"], key)


def test_ctrl_c_saves_and_prints_the_resume_command(data, env, tmp_path):
    run = tmp_path / "run"
    proc = start(
        [
            "finetune",
            "tinyplug:plainnet",
            "--data",
            str(data),
            "--epochs",
            "50",
            *PLAIN,
            "-o",
            str(run),
        ],
        env,
    )
    wait_for(lambda: epochs_done(run) >= 1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"zoo finetune --resume {run}" in err and "Traceback" not in err
    assert_every_file_loads(run)
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["progress"]["epoch"] == epochs_done(run) >= 1


def test_nan_loss_stops_with_epoch_and_step(data, env, tmp_path):
    run = tmp_path / "run"
    result = run_zoo(
        "finetune",
        "tinyplug:plainnet",
        "--data",
        str(data),
        "--epochs",
        "3",
        *PLAIN,
        "--lr",
        "1e30",
        "-o",
        str(run),
        env=env,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: loss is ")
    assert any(word in lines[0] for word in ("nan", "inf")) and "at epoch 1, step" in lines[0]
    assert_every_file_loads(run)


def _weights(tmp_path: Path, kind: str) -> str:
    path = tmp_path / f"{kind}.pth"
    if kind == "garbage":
        path.write_bytes(os.urandom(2000))
    elif kind == "truncated":
        torch.save(torch.nn.Linear(50, 50).state_dict(), path)
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "booby-trapped":

        class Payload:
            def __reduce__(self):
                return (os.system, (f"touch {tmp_path / 'pwned'}",))

        torch.save({"state_dict": Payload()}, path)
    elif kind == "other-arch":
        torch.save(__import__("torchvision").models.resnet18().state_dict(), path)
    return str(path)


BAD_INPUTS = {
    "missing-data": (["--data", "{tmp}/nowhere"], "nowhere"),
    "empty-data": (["--data", "{empty}"], "no"),
    "unknown-backbone": (["--data", "{data}"], "did you mean"),
    "unknown-freeze-point": (["--data", "{data}", "--freeze-until", "layer9"], "valid: stem"),
    "zero-epochs": (["--data", "{data}", "--epochs", "0"], "--epochs must be positive"),
    "negative-batch": (["--data", "{data}", "--batch-size", "-4"], "--batch-size must be"),
    "zero-lr": (["--data", "{data}", "--lr", "0"], "--lr must be positive"),
    "absent-device": (["--data", "{data}", "--device", "cuda:7"], "not available"),
    "missing-weights": (["--data", "{data}", "--weights", "{tmp}/gone.pth"], "gone.pth"),
    "garbage-weights": (["--data", "{data}", "--weights", "{garbage}"], "garbage.pth"),
    "truncated-weights": (["--data", "{data}", "--weights", "{truncated}"], "truncated.pth"),
    "booby-trapped-weights": (["--data", "{data}", "--weights", "{booby-trapped}"], "arbitrary"),
    "other-arch-weights": (["--data", "{data}", "--weights", "{other-arch}"], "coverage"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_clear_line(case, data, env, tmp_path):
    args, expected = BAD_INPUTS[case]
    (tmp_path / "empty").mkdir()
    values = {"tmp": str(tmp_path), "data": str(data), "empty": str(tmp_path / "empty")}
    for kind in ("garbage", "truncated", "booby-trapped", "other-arch"):
        if "{" + kind + "}" in " ".join(args):
            values[kind] = _weights(tmp_path, kind)
    name = (
        "resnet43"
        if case == "unknown-backbone"
        else ("resnet34" if case.endswith("weights") else "tinyplug:plainnet")
    )
    args = [a.format(**values) for a in args]
    defaults = [] if "--weights" in args else ["--weights", "none"]
    result = run_zoo(
        "finetune",
        name,
        *args,
        *defaults,
        "--epochs" if "--epochs" not in args else "--seed",
        "1",
        "-o",
        str(tmp_path / "run"),
        env=env,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and expected in lines[0]
    assert not (tmp_path / "run").exists(), "nothing is written for a run that cannot start"
    assert not (tmp_path / "pwned").exists()


def test_resume_on_a_folder_that_is_not_a_run(tmp_path):
    result = run_zoo("finetune", "--resume", str(tmp_path))
    assert result.returncode == 1 and "is not a zoo run" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_output_into_an_existing_run_is_refused_and_kept(data, env, tmp_path):
    run = tmp_path / "run"
    first = run_zoo(
        "finetune",
        "tinyplug:plainnet",
        "--data",
        str(data),
        "--epochs",
        "1",
        *PLAIN,
        "-o",
        str(run),
        env=env,
    )
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    again = run_zoo(
        "finetune",
        "tinyplug:plainnet",
        "--data",
        str(data),
        "--epochs",
        "1",
        *PLAIN,
        "-o",
        str(run),
        env=env,
    )
    assert again.returncode == 1 and "already holds a run" in again.stderr
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_corrupt_empty_and_bomb_images_are_skipped(tmp_path, env):
    data = make_image_folder(tmp_path / "data", ["a", "b"], per_class=(6, 3), layout="train-valid")
    write_truncated(data / "train/a/corrupt.png")
    write_empty(data / "train/b/empty.jpg")
    write_png_bomb(data / "train/b/bomb.png")
    result = run_zoo(
        "finetune",
        "tinyplug:plainnet",
        "--data",
        str(data),
        "--epochs",
        "1",
        *PLAIN,
        "-o",
        str(tmp_path / "run"),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    skipped = json.loads((tmp_path / "run/summary.json").read_text())["skipped_files"]
    assert sorted(Path(p).name for p in skipped) == ["bomb.png", "corrupt.png", "empty.jpg"]


@pytest.mark.parametrize("command", ["finetune", "transfer", "evaluate --png"])
def test_a_path_the_system_refuses_is_one_clear_line_naming_it(command, data, env, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "out"  # under a file: no system can create it
    if command == "finetune":
        args = ["finetune", "tinyplug:plainnet", "--data", str(data), *PLAIN, "--epochs", "1"]
        args += ["-o", str(target)]
    elif command == "transfer":
        weights = tmp_path / "w.pth"
        torch.save(__import__("torchvision").models.resnet18().state_dict(), weights)
        args = ["transfer", str(weights), "--into", "resnet18", "-o", str(target / "w.pt")]
    else:
        run = tmp_path / "run"
        zoo.finetune(
            "resnet18",
            str(data),
            output=str(run),
            epochs=1,
            image_size=32,
            weights="none",
            workers=0,
            augment=False,
        )
        args = ["evaluate", str(run), "--data", str(data / "valid"), "--workers", "0"]
        args += ["--png", str(target / "cm.png")]
    result = run_zoo(*args, env=env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and str(target) in lines[0] and ".tmp" not in lines[0]
    if command == "finetune":  # refused up front, before the model and the data load
        assert f"cannot be made: {blocker} is a file, not a folder" in lines[0]
    else:
        assert "permissions" in lines[0]


def test_a_head_larger_than_the_classes_found_evaluates_and_predicts(data, tmp_path):
    from zoo.runs import evaluate, predict

    run = zoo.finetune(
        "resnet18",
        str(data),
        output=str(tmp_path / "run"),
        epochs=1,
        image_size=32,
        weights="none",
        workers=0,
        augment=False,
        num_classes=5,
    )
    report = evaluate(run.run_dir, data / "valid", workers=0)
    assert report["classes"] == ["a", "b", "c", "output_3", "output_4"]
    assert len(report["confusion_matrix"]) == 5 and sum(map(sum, report["confusion_matrix"])) == 18
    rows = predict(run.run_dir, sorted((data / "valid").glob("*/*"))[:2], top_k=5)
    assert all(len(r["top"]) == 5 for r in rows)
    names = {t["class"] for t in rows[0]["top"]}
    assert names == {"a", "b", "c", "output_3", "output_4"}


# --- issue 20: no silent restart, an extended cosine schedule, Ctrl-C, finite options ----------

TINY = [*PLAIN, "--device", "cpu"]


def cli(*args):
    from click.testing import CliRunner

    from zoo.cli import cli as zoo_cli

    return CliRunner().invoke(zoo_cli, [str(a) for a in args])


def tiny_run(tiny, data, run, *args):
    result = cli("finetune", tiny, "--data", data, *TINY, "-o", run, *args)
    assert result.exit_code == 0, result.output
    return result


def test_resume_refuses_a_run_that_ran_epochs_but_lost_last_pt(tiny, data, tmp_path):
    run = tmp_path / "run"
    tiny_run(tiny, data, run, "--epochs", "2")
    (run / "last.pt").unlink()
    kept = {name: (run / name).read_bytes() for name in ("metrics.jsonl", "best.pt")}
    result = cli("finetune", "--resume", run, "--epochs", "3")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and "last.pt is missing" in lines[0]
    assert "already ran 2 epochs" in lines[0] and "another -o" in lines[0]
    assert {name: (run / name).read_bytes() for name in kept} == kept
    assert not (run / "last.pt").exists()


def test_extending_a_cosine_run_keeps_its_learning_rate_decreasing(tiny, data, tmp_path):
    run = tmp_path / "run"
    tiny_run(tiny, data, run, "--scheduler", "cosine", "--lr", "0.1", "--epochs", "3")
    assert cli("finetune", "--resume", run, "--epochs", "6").exit_code == 0
    lrs = [row["lr"] for row in RunDir(run).metrics()]
    assert lrs[:3] == pytest.approx([0.1, 0.075, 0.025])
    assert len(lrs) == 6 and all(a > b > 0 for a, b in zip(lrs, lrs[1:], strict=False)), lrs
    # Extended again, it goes on decreasing from where it is.
    assert cli("finetune", "--resume", run, "--epochs", "7").exit_code == 0
    more = [row["lr"] for row in RunDir(run).metrics()]
    assert more[:6] == lrs and 0 < more[6] < lrs[5]


def test_a_run_killed_in_epoch_1_resumed_longer_gets_the_longer_schedule(tiny, data, tmp_path):
    from zoo.training import Reporter, TrainConfig
    from zoo.training._setup import start_run

    run = tmp_path / "run"
    options = {"weights": "none", "image_size": 32, "workers": 0, "device": "cpu", "lr": 0.1}
    config = TrainConfig(tiny, str(data), output=str(run), epochs=2, scheduler="cosine", **options)
    start_run(config.check(), Reporter())  # config.json and an epoch-0 last.pt, as if killed
    assert cli("finetune", "--resume", run, "--epochs", "4").exit_code == 0
    lrs = [row["lr"] for row in RunDir(run).metrics()]
    assert lrs == pytest.approx([0.1, 0.1 * (2 + 2**0.5) / 4, 0.05, 0.1 * (2 - 2**0.5) / 4])


@pytest.mark.parametrize(
    "option", [("--lr", "nan"), ("--lr", "inf"), ("--momentum", "nan"), ("--weight-decay", "inf")]
)
def test_an_option_that_is_not_a_finite_number_is_refused(option, tiny, data, tmp_path):
    result = cli("finetune", tiny, "--data", data, *TINY, "-o", tmp_path / "run", *option)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0] == f"Error: {option[0]} must be a finite number, got {option[1]}"
    assert not (tmp_path / "run").exists()


def _press_ctrl_c(monkeypatch, times: int) -> None:
    """Ctrl-C ``times`` times during the first training step."""
    from zoo import compute

    real = compute.train_epoch

    def train_epoch(*args, **kwargs):
        for _ in range(times):
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(compute, "train_epoch", train_epoch)


@pytest.mark.parametrize(("times", "holds"), [(1, "epoch 0"), (2, "the last epoch saved")])
def test_ctrl_c_is_a_stop_not_an_error_exit_130(times, holds, tiny, data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    _press_ctrl_c(monkeypatch, times)
    result = cli("finetune", tiny, "--data", data, *TINY, "-o", run, "--epochs", "2")
    assert result.exit_code == 130, result.output
    assert "Aborted!" not in result.output and "Error" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("stopped by Ctrl-C; ") and f"last.pt holds {holds}" in last
    assert f"zoo finetune --resume {run}" in last


def test_ctrl_c_before_the_run_starts_exits_130_without_aborted(tiny, monkeypatch):
    import zoo.training

    def finetune(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(zoo.training, "finetune", finetune)
    result = cli("finetune", tiny)
    assert result.exit_code == 130 and "Aborted!" not in result.output
    assert result.stderr.strip() == "stopped by Ctrl-C"


def test_config_records_the_precision_auto_resolved_to_and_resume_keeps_it(tiny, data, tmp_path):
    from zoo.compute import resolve_precision

    run = tmp_path / "run"
    tiny_run(tiny, data, run, "--epochs", "1")
    resolved = resolve_precision("auto", torch.device("cpu")).name
    assert RunDir(run).read_config()["options"]["precision"] == resolved != "auto"
    assert cli("finetune", "--resume", run, "--epochs", "2").exit_code == 0
    assert RunDir(run).read_config()["options"]["precision"] == resolved
    assert cli("finetune", "--resume", run, "--epochs", "3", "--precision", "fp32").exit_code == 0
    assert RunDir(run).read_config()["options"]["precision"] == "fp32"
