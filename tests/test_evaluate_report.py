"""What a finished run tells about itself: evaluate's precision/recall/F1, --top-losses and
--tta, the model card README.md, and --tensorboard events."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import TinyPlugin, run_zoo
from images import make_image_folder

from zoo.cli import cli


def invoke(*args):
    """The CLI in this process, where the in-process tiny plugin is registered."""
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 2-epoch run of tiny:tinynet with --tensorboard, on 3 classes with 4 valid images each."""
    import zoo
    from zoo import plugins

    plugins.register(TinyPlugin(), "tiny")
    root = tmp_path_factory.mktemp("report")
    data = make_image_folder(root / "d", ["a", "b", "c"], (4, 4), "train-valid", (40, 30), ".jpg")
    result = zoo.finetune(
        "tiny:tinynet", str(data), weights="none", epochs=2, batch_size=4, workers=0,
        output=str(root / "run"), tensorboard=True,
    )  # fmt: skip
    yield result.run_dir, data
    plugins.unregister("tiny")


def test_class_metrics_against_a_matrix_worked_by_hand():
    from zoo.runs import class_metrics

    # rows true a, b, c; columns predicted a, b, c: c is never predicted
    m = class_metrics([[5, 1, 0], [2, 3, 0], [1, 0, 0]], ["a", "b", "c"])
    a, b, c = (m["per_class"][k] for k in "abc")
    assert a == pytest.approx({"precision": 5 / 8, "recall": 5 / 6, "f1": 5 / 7, "support": 6})
    assert b == pytest.approx({"precision": 3 / 4, "recall": 3 / 5, "f1": 2 / 3, "support": 5})
    assert c == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["macro"]["precision"] == pytest.approx(11 / 24)
    assert m["macro"]["f1"] == pytest.approx((5 / 7 + 2 / 3) / 3)
    assert m["weighted"]["precision"] == pytest.approx(0.625)
    assert m["weighted"]["recall"] == pytest.approx((5 + 3) / 12)


def test_evaluate_json_has_per_class_keys(tiny_run):
    run, data = tiny_run
    out = invoke("evaluate", run, "--data", data / "valid", "--json", "--workers", "0")
    report = json.loads(out.stdout)
    matrix = report["confusion_matrix"]
    for i, name in enumerate(report["classes"]):
        row = report["per_class"][name]
        assert row["support"] == sum(matrix[i]) == 4
        predicted = sum(r[i] for r in matrix)
        assert row["precision"] == pytest.approx(matrix[i][i] / predicted if predicted else 0.0)
    assert set(report["macro"]) == set(report["weighted"]) == {"precision", "recall", "f1"}
    text = invoke("evaluate", run, "--data", data / "valid", "--workers", "0").stdout
    assert "precision" in text and "weighted" in text


def test_top_losses_draws_eight_tiles(tiny_run, tmp_path):
    from PIL import Image

    from zoo.runs import evaluate

    run, data = tiny_run
    png = tmp_path / "top.png"
    report = evaluate(run, data / "valid", workers=0, top_losses=8, top_losses_png=png)
    rows = report["top_losses"]
    assert len(rows) == 8
    assert [r["loss"] for r in rows] == sorted((r["loss"] for r in rows), reverse=True)
    assert Image.open(png).size == (960, 560)  # 4 x 2 tiles of 2.4 x 2.8 inches at 100 dpi
    default = invoke("evaluate", run, "--data", data / "valid", "--top-losses", 2, "--workers", 0)
    assert (run / "top-losses-valid.png").is_file(), default.output
    assert "top losses drawn to" in default.stdout


def test_tta_changes_probabilities_and_repeats(tiny_run):
    from zoo.runs import evaluate, predict

    run, data = tiny_run
    plain = evaluate(run, data / "valid", workers=0)
    flipped = [evaluate(run, data / "valid", workers=0, tta=True) for _ in range(2)]
    assert flipped[0]["loss"] == flipped[1]["loss"] != plain["loss"]
    image = [str(data / "valid" / "a")]
    once, twice, without = (predict(run, image, tta=t) for t in (True, True, False))
    assert once == twice and once != without


def test_model_card_matches_summary(tiny_run):
    from zoo.runs import evaluate

    run, data = tiny_run
    card = (run / "README.md").read_text()
    summary = json.loads((run / "summary.json").read_text())
    assert f"Best validation accuracy: {summary['best_val_acc']:.4f}" in card
    assert "tiny:tinynet" in card and "a, b, c" in card
    report = evaluate(run, data / "valid", workers=0)
    card = (run / "README.md").read_text()
    assert f"Accuracy {report['accuracy']:.4f}" in card
    assert f"| a | {report['per_class']['a']['precision']:.4f} |" in card
    assert not list(run.glob("*.tmp*")) and not list(run.glob(".*tmp*"))


def test_tensorboard_scalars_equal_metrics(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, _ = tiny_run
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "train_images_per_s"):
        scalars = events.Scalars(key)
        assert [s.step for s in scalars] == [1, 2]
        assert [s.value for s in scalars] == pytest.approx([r[key] for r in rows], rel=1e-6)


def test_tensorboard_missing_names_pip_command(tmp_path):
    blocker = tmp_path / "block" / "tensorboard"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('blocked for a test')\n")
    out = run_zoo(
        "finetune", "resnet18", "--weights", "none", "--tensorboard", "-o", str(tmp_path / "r"),
        env={"PYTHONPATH": str(blocker.parent)},
    )  # fmt: skip
    assert out.returncode == 1 and not (tmp_path / "r").exists()
    assert "pip install 'zoo[tensorboard]'" in out.stderr.strip().splitlines()[-1]
