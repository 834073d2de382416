"""Multi-label classification (--labels FILE.csv --multi-label): the metrics against values
worked out by hand and scikit-learn's, a real run on shapes with several shapes per image,
evaluate and predict in this mode, exact resume, and torchrun."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import torchrun_env
from images import make_multilabel_shapes
from sklearn.metrics import average_precision_score

import zoo
import zoo.errors
from zoo.cli import cli
from zoo.compute import average_precision, multilabel_metrics, positive_weights
from zoo.data import read_label_rows
from zoo.runs import evaluate, predict
from zoo.training import reporter_for

PER_EPOCH = ("seconds", "train_images_per_s")


# ---------------------------------------------------------------- metrics


def test_average_precision_by_hand_ties_included():
    # ranks 1..4: hit, miss, hit, miss -> precision 1 at recall 1/2, 2/3 at recall 1
    assert average_precision(torch.tensor([0.9, 0.8, 0.7, 0.6]), torch.tensor([1, 0, 1, 0])) == (
        pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    )
    # a tie at 0.5 counts both images at once: precision 1/2 at recall 1/2, then 2/3 at 1
    assert average_precision(torch.tensor([0.5, 0.5, 0.2]), torch.tensor([1, 0, 1])) == (
        pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    )
    assert average_precision(torch.tensor([0.3, 0.1]), torch.tensor([0, 0])) is None


def test_average_precision_agrees_with_scikit_learn():
    generator = torch.Generator().manual_seed(0)
    for case in range(40):
        n = 5 + case
        scores = torch.rand(n, generator=generator)
        if case % 2:  # coarse scores: many ties
            scores = (scores * 4).round() / 4
        targets = torch.randint(0, 2, (n,), generator=generator)
        targets[0] = 1
        expected = average_precision_score(targets.numpy(), scores.numpy())
        assert average_precision(scores, targets) == pytest.approx(expected, abs=1e-12)


def test_precision_recall_f1_by_hand():
    scores = torch.tensor([[0.9, 0.6, 0.1], [0.8, 0.2, 0.1], [0.3, 0.7, 0.2], [0.6, 0.4, 0.1]])
    targets = torch.tensor([[1, 1, 0], [0, 0, 0], [1, 1, 0], [1, 0, 0]]).float()
    m = multilabel_metrics(scores, targets, threshold=0.5, names=["a", "b", "c"])
    a, b, c = m["per_label"]
    # a: predicted for images 0, 1, 3; present in 0, 2, 3 -> tp 2, fp 1, fn 1
    assert (a["precision"], a["recall"], a["f1"], a["support"]) == (2 / 3, 2 / 3, 2 / 3, 3)
    # ranked 0.9 (hit), 0.8 (miss), 0.6 (hit), 0.3 (hit): 1/3 * (1 + 2/3 + 3/4)
    assert a["ap"] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    # b: predicted for 0 and 2, both right
    assert (b["precision"], b["recall"], b["f1"], b["ap"]) == (1.0, 1.0, 1.0, 1.0)
    # c: never present, never predicted: nothing is defined
    assert (c["precision"], c["recall"], c["f1"], c["ap"], c["support"]) == (None,) * 4 + (0,)
    assert m["map"] == pytest.approx(((1 + 2 / 3 + 3 / 4) / 3 + 1) / 2)
    assert m["f1_micro"] == pytest.approx(2 * 4 / (2 * 4 + 1 + 1))  # tp 4, fp 1, fn 1
    assert m["f1_macro"] == pytest.approx((2 / 3 + 1) / 2)


def test_positive_weights_are_negatives_over_positives():
    rows = [(1.0, 0.0, 0.0), (1.0, 1.0, 0.0), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0)]
    assert positive_weights(rows).tolist() == pytest.approx([1 / 3, 3.0, 1.0])


# ---------------------------------------------------------------- a real run


@pytest.fixture(scope="module")
def shapes_csv(tmp_path_factory):
    return make_multilabel_shapes(tmp_path_factory.mktemp("tags"), 64, 32, size=64)


@pytest.fixture(scope="module")
def ml_run(mobilenet_v2_file, shapes_csv, tmp_path_factory):
    """MobileNetV2 with its ImageNet weights, frozen up to features.13 (so the feature cache
    runs), on images holding several shapes each."""
    out = io.StringIO()
    result = zoo.finetune(
        "mobilenet_v2.IMAGENET1K_V1",
        labels=str(shapes_csv),
        multi_label=True,
        freeze_until="features.13",
        augment=False,
        image_size=64,
        batch_size=16,
        epochs=5,
        lr=0.01,
        scheduler="none",
        workers=0,
        precision="fp32",
        output=str(tmp_path_factory.mktemp("runs") / "tags"),
        reporter=reporter_for(out),
    )
    return result, out.getvalue()


def test_multi_label_run_learns_the_shapes(ml_run):
    result, printed = ml_run
    assert "caching features" in printed
    rows = result.metrics
    assert all({"val_map", "val_f1_micro", "val_f1_macro"} <= set(r) for r in rows)
    best = max(rows, key=lambda r: r["val_map"])
    assert result.summary["best_epoch"] == best["epoch"]
    assert result.summary["best_val_map"] == best["val_map"] >= 0.9
    assert result.summary["best_val_acc"] == best["val_acc"]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["options"]["multi_label"] and config["options"]["threshold"] == 0.5
    assert "best valid mAP" in printed


def test_predict_lists_the_shapes_present(ml_run, shapes_csv):
    result, _ = ml_run
    valid = [r for r in read_label_rows(shapes_csv, multi_label=True) if r.split == "valid"]
    rows = predict(result.run_dir, [r.path for r in valid])
    found = [{x["label"] for x in row["labels"]} for row in rows]
    right = sum(f == set(r.labels) for f, r in zip(found, valid, strict=True))
    assert right >= 0.75 * len(valid), (right, len(valid))
    for row in rows:
        probabilities = [x["probability"] for x in row["labels"]]
        assert probabilities == sorted(probabilities, reverse=True)
        assert all(p >= 0.5 for p in probabilities)
    cli_rows = json.loads(
        CliRunner().invoke(cli, ["predict", str(result.run_dir), valid[0].path, "--json"]).output
    )
    assert cli_rows == rows[:1]
    text = CliRunner().invoke(cli, ["predict", str(result.run_dir), valid[0].path]).output
    assert text.startswith(f"{valid[0].path}: ")


def test_evaluate_json_per_label_metrics_match_the_predictions(ml_run, shapes_csv):
    result, _ = ml_run
    run = str(result.run_dir)
    args = ["evaluate", run, "--labels", str(shapes_csv), "--workers", "0", "--json"]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, (out.output, out.exception)
    report = json.loads(out.output)
    assert report["images"] == 32 and report["threshold"] == 0.5
    assert report["map"] == pytest.approx(result.summary["best_val_map"], abs=1e-4)
    # The same figures, counted here from every label's probability (--threshold near 0).
    valid = [r for r in read_label_rows(shapes_csv, multi_label=True) if r.split == "valid"]
    paths, labels = [r.path for r in valid], {r.path: set(r.labels) for r in valid}
    rows = predict(run, paths, threshold=1e-12)
    for name in report["classes"]:
        p = [next(x["probability"] for x in row["labels"] if x["label"] == name) for row in rows]
        t = [name in labels[path] for path in paths]
        tp = sum(pi >= 0.5 and ti for pi, ti in zip(p, t, strict=True))
        fp = sum(pi >= 0.5 and not ti for pi, ti in zip(p, t, strict=True))
        fn = sum(pi < 0.5 and ti for pi, ti in zip(p, t, strict=True))
        got = report["per_label"][name]
        assert got["support"] == tp + fn
        assert got["precision"] == pytest.approx(tp / (tp + fp))
        assert got["recall"] == pytest.approx(tp / (tp + fn))
        assert got["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
        assert got["ap"] == pytest.approx(average_precision_score(t, p), abs=1e-6)
    text = CliRunner().invoke(cli, ["evaluate", run, "--labels", str(shapes_csv)]).output
    assert text.startswith("mAP ") and "precision  recall" in text
    refused = CliRunner().invoke(cli, ["evaluate", run, "--data", str(shapes_csv.parent)])
    assert refused.exit_code == 1 and "multi-label run" in refused.output


# ---------------------------------------------------------------- resume and torchrun


FAST = {
    "multi_label": True,
    "weights": "none",
    "image_size": 32,
    "batch_size": 8,
    "workers": 0,
    "precision": "fp32",
    "augment": False,  # the decoded-pixel cache serves both parts
    "scheduler": "step",
    "step_size": 2,
    "lr": 0.05,
}


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    return make_multilabel_shapes(tmp_path_factory.mktemp("small"), 24, 12, seed=1)


def test_a_resumed_multi_label_run_ends_like_an_unbroken_one(tiny, small_csv, tmp_path):
    out = io.StringIO()
    whole = zoo.finetune(
        tiny, labels=str(small_csv), epochs=3, output=str(tmp_path / "w"),
        reporter=reporter_for(out), **FAST,
    )  # fmt: skip
    assert "caching decoded images" in out.getvalue()
    zoo.finetune(tiny, labels=str(small_csv), epochs=1, output=str(tmp_path / "r"), **FAST)
    last = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    assert last["progress"]["epoch"] == 1
    with pytest.raises(zoo.errors.RunError, match="only --epochs"):  # another CSV: refused
        zoo.finetune(resume=str(tmp_path / "r"), labels=str(tmp_path / "other.csv"), epochs=3)
    resumed = zoo.finetune(resume=str(tmp_path / "r"), labels=str(small_csv), epochs=3)
    for a, b in zip(whole.metrics, resumed.metrics, strict=True):
        for key in set(a) - set(PER_EPOCH):
            assert a[key] == pytest.approx(b[key], abs=1e-6), (a["epoch"], key)
    assert resumed.summary["best_val_map"] == pytest.approx(whole.summary["best_val_map"])


def test_torchrun_multi_label_gathers_the_whole_valid_set(
    small_csv, plugin_site, with_site, tmp_path
):
    run = tmp_path / "run"
    env = torchrun_env(plugin_site)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-port", "29548", "-m", "zoo", "finetune", "tinyplug:plainnet",
        "--labels", str(small_csv), "--multi-label", "--weights", "none", "--epochs", "2",
        "--image-size", "32", "--batch-size", "4", "--workers", "0", "--lr", "0.05",
        "--freeze-until", "backbone", "--precision", "fp32", "-o", str(run),
    ]  # fmt: skip
    # A frozen backbone keeps BatchNorm statistics the same on both ranks, so rank 0's best.pt
    # is the model every rank validated: val_map must be that of the whole valid set.
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-6000:]
    assert "2 processes" in done.stdout and done.stdout.count("best valid mAP") == 1
    summary = json.loads((run / "summary.json").read_text())
    report = evaluate(run, labels=small_csv, workers=0)
    assert report["images"] == 12
    assert report["map"] == pytest.approx(summary["best_val_map"], abs=1e-6)
    assert report["accuracy"] == pytest.approx(summary["best_val_acc"], abs=1e-9)


def test_compare_takes_a_labels_csv_and_ranks_multi_label_runs_by_map(
    mobilenet_v2_file, shapes_csv, tmp_path
):
    out = tmp_path / "bake"
    args = [
        "compare", "mobilenet_v2.IMAGENET1K_V1", "--labels", str(shapes_csv), "--multi-label",
        "--image-size", "32", "--epochs", "1", "--workers", "0", "--precision", "fp32",
        "-o", str(out), "--json",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    summary = json.loads(Path(row["run_dir"], "summary.json").read_text())
    assert row["val_map"] == summary["best_val_map"] > 0
    config = json.loads(Path(row["run_dir"], "config.json").read_text())
    assert config["options"]["multi_label"] and config["options"]["labels"] == str(shapes_csv)
    assert (out / "compare.png").is_file()
    text = CliRunner().invoke(cli, [*args[:-3], "-o", str(tmp_path / "again")]).output
    header = [line for line in text.splitlines() if line.startswith("id ")]
    assert header and header[0].split()[:3] == ["id", "val_map", "val_acc"], text
