"""A fine-tuning session: model, data, optimizer and run directory, from new or resumed."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path

from zoo import compute
from zoo.data import Preprocessing, make_loaders
from zoo.errors import DataError, Interrupted, RunError, StopRequested
from zoo.runs import RunDir
from zoo.training import _distributed as distributed
from zoo.training._config import TrainConfig
from zoo.training._progress import Reporter
from zoo.training._seeding import restore_rng, rng_state, seed_everything


@dataclass
class Progress:
    """Where the run stands: saved in last.pt."""

    epoch: int = 0  # epochs finished
    best_val_acc: float = -1.0
    best_epoch: int = 0
    seconds: float = 0.0  # wall time of the epochs run so far
    rows: list[dict] = field(default_factory=list)  # metrics.jsonl


class Session:
    def __init__(self, config: TrainConfig, reporter: Reporter) -> None:
        self.config = config
        self.dist = distributed.from_environment()
        self.reporter = reporter if self.dist.is_main else Reporter()  # rank 0 talks
        self._stop = False

    # ------------------------------------------------------------------ setting up

    @classmethod
    def start(cls, config: TrainConfig, reporter: Reporter, run: RunDir | None = None) -> Session:
        """A new run; every check that can fail comes before its directory is made."""
        from zoo.models import create
        from zoo.training._finetune import config_record, new_run_dir

        self = cls(config, reporter)
        if run is None and config.output:
            RunDir.check_free(config.output)
        self._choose_device()
        distributed.barrier(self.dist)  # every rank checked --output before rank 0 writes
        data = self._data_folder()
        self._load_data(data)
        seed_everything(config.seed)
        self.model = create(
            config.name,
            num_classes=self.num_classes,
            weights=config.weights,
            freeze_until=config.freeze_until,
            train_bn=config.train_bn,
        )
        spec = self.model.zoo_spec
        self.build_kwargs = spec.weights.get("build_kwargs") or {}
        self.preprocessing = _preprocessing(spec.preprocessing, config.image_size)
        self._prepare()
        self.run = run or new_run_dir(config, spec.id.split(":", 1)[1], self.dist)
        self._write(
            lambda: self.run.write_config(
                config_record(
                    config,
                    backbone_id=spec.id,
                    weights=spec.resolved.identity() if spec.resolved else {},
                    classes=self.classes,
                    preprocessing=self.preprocessing.to_dict(),
                    data=str(data),
                    skipped=self.skipped,
                )
            )
        )
        self.progress = Progress()
        self._save_last()  # epoch 0: a run killed in its first epoch can still be resumed
        return self

    @classmethod
    def resume(
        cls,
        run: RunDir,
        record: dict,
        config: TrainConfig,
        reporter: Reporter,
        epochs: int | None = None,
    ) -> Session:
        """Continue ``run`` (its checked ``record``) with ``config``; ``epochs``: --epochs."""
        from zoo.models import create

        if not run.file("last.pt").is_file():  # killed before its first save: start it over
            return cls.start(config, reporter, run=run)
        self = cls(config, reporter)
        self.run = run
        state = run.read_last()
        self._check_epochs(state["progress"]["epoch"], epochs)
        self._choose_device()
        self._load_data(Path(record["data"]))
        if self.classes != record["class_names"]:
            raise RunError(
                f"the classes in {record['data']} changed since the run started "
                f"({', '.join(record['class_names'])}); restore the folder"
            )
        self.model = create(
            record["id"],
            num_classes=record["num_classes"],
            weights=None,
            freeze_until=config.freeze_until,
            train_bn=config.train_bn,
            build_kwargs=record["weights"].get("build_kwargs"),
        )
        self.build_kwargs = record["weights"].get("build_kwargs") or {}
        self.preprocessing = Preprocessing.from_dict(record["preprocessing"])
        self.model.load_state_dict(state["model"])
        self._prepare()
        self._restore(state)
        # Rank 0 records what the run now runs with: an extended run says so in config.json.
        self._write(lambda: run.write_config({**record, "options": config.to_dict()}))
        return self

    def _check_epochs(self, done: int, asked: int | None) -> None:
        """Refuse to shorten a run; say so when there is nothing left to run."""
        ran = f"{self.run.path} already ran {done} epoch{'s' if done != 1 else ''}"
        extend = f"pass --epochs {done + 1} or more to extend it"
        if asked is not None and asked < done:
            raise RunError(f"{ran}, more than --epochs {asked}; {extend}")
        if done >= self.config.epochs:
            self.config.epochs = done  # a config.json from before runs were extended in it
            self.reporter.note(f"{ran}; {extend}")

    def _data_folder(self) -> Path:
        if self.config.data is not None:
            return Path(self.config.data)
        from zoo.data import embedded_dataset

        path = embedded_dataset()
        self.reporter.note(f"no --data given: using the embedded shapes dataset in {path}")
        return path

    def _load_data(self, folder: Path) -> None:
        from zoo.data import drop_unreadable, scan_image_folder

        split = scan_image_folder(folder, val_split=self.config.val_split, seed=self.config.seed)
        split, skipped = drop_unreadable(split)
        for path, reason in skipped:
            self.reporter.note(f"skipping unreadable {path}: {reason}")
        if not split.valid:
            raise DataError(
                f"{folder} gives no validation images; add a valid/ folder or more images per class"
            )
        self.split, self.skipped, self.classes = split, skipped, split.classes
        self.num_classes = self.config.num_classes or len(self.classes)
        if self.num_classes < len(self.classes):
            raise DataError(
                f"--num-classes {self.num_classes} is fewer than the "
                f"{len(self.classes)} classes found in {folder}"
            )

    def _choose_device(self) -> None:
        from zoo.compute import resolve_device, resolve_precision

        if self.dist.enabled:
            self.device = distributed.setup(self.dist, self.config.device)
        else:
            self.device = resolve_device(self.config.device)
        self.precision = resolve_precision(self.config.precision, self.device)

    def _prepare(self) -> None:
        """Device, precision, loaders, optimizer and scheduler."""
        import torch

        from zoo.compute import memory_format, prepare_backends
        from zoo.training._optim import build_optimizer, build_scheduler
        from zoo.training.cache._features import plan_cache
        from zoo.training.cache._pixels import plan_image_cache

        config = self.config
        prepare_backends(self.device)
        self.memory_format = memory_format(self.model, self.device)
        self.model.to(self.device, memory_format=self.memory_format or torch.preserve_format)
        self.optimizer = build_optimizer(self.model.parameters(), config)
        self.scheduler = build_scheduler(self.optimizer, config)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.precision.scaler else None
        self.cache, why = plan_cache(
            config,
            self.model,
            self.split.train + self.split.valid,
            self.preprocessing,
            self.precision,
            self.device,
            distributed=self.dist.enabled,
            n_train=len(self.split.train),
        )
        self.images, images_line = plan_image_cache(
            config,
            self.split,
            self.preprocessing,
            self.device,
            features=self.cache is not None,
            distributed=self.dist.enabled,
        )
        self.loaders = make_loaders(
            self.split,
            self.preprocessing,
            config,
            self.device,
            self.dist.rank,
            self.dist.world,
            raw=self.images.parts if self.images else (),
        )
        self.train_model = distributed.wrap(self.model, self.dist, self.device)
        frozen = sum(p.numel() for p in self.model.parameters() if not p.requires_grad)
        self.counts = (frozen, sum(p.numel() for p in self.model.parameters()) - frozen)
        self.reporter.note(
            f"{self.model.zoo_spec.id}: {len(self.classes)} classes, "
            f"{len(self.split.train)} train / {len(self.split.valid)} valid images; "
            f"{self.counts[0]:,} frozen and {self.counts[1]:,} trainable parameters; "
            f"{self.device.type}, {self.precision.name}"
            + (", channels_last" if self.memory_format else "")
            + (f", {self.dist.world} processes" if self.dist.enabled else "")
        )
        self.reporter.note(why)
        if images_line:
            self.reporter.note(images_line)

    def _restore(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        p = state["progress"]
        self.progress = Progress(
            p["epoch"],
            p["best_val_acc"],
            p["best_epoch"],
            p["seconds"],
            self.run.metrics()[: p["epoch"]],
        )
        restore_rng(state.get("rng"))

    # ------------------------------------------------------------------ training

    def fit(self):
        from zoo.training._finetune import FinetuneResult

        previous = _catch_sigint(self)
        try:
            while self.progress.epoch < self.config.epochs and not self._patience_ran_out():
                self._run_epoch(self.progress.epoch + 1)
        except StopRequested:
            raise Interrupted(self.run.path, self.progress.epoch) from None
        finally:
            signal.signal(signal.SIGINT, previous) if previous is not None else None
            distributed.shutdown(self.dist)
        summary = self._summary()
        self.reporter.done(summary, str(self.run.path))
        return FinetuneResult(self.run.path, summary, self.progress.rows)

    def _patience_ran_out(self) -> bool:
        patience, p = self.config.patience, self.progress
        if patience and p.epoch - p.best_epoch >= patience:
            self.reporter.note(f"stopping early: no better valid accuracy in {patience} epochs")
            return True
        return False

    def _run_epoch(self, epoch: int) -> None:
        from zoo.training._optim import step_scheduler

        seed_everything(self.config.seed, epoch)  # dropout and anything else in the model
        self.loaders.set_epoch(epoch)
        lr = self.optimizer.param_groups[0]["lr"]
        n, cache = self.config.epochs, self.cache
        train_model, train_batches = self.train_model, self.loaders.train
        valid_model, valid_batches = self.model, self.loaders.valid
        if cache is not None:  # the suffix on the frozen part's outputs, stored once
            train_model, train_batches = (
                cache.split.suffix_train,
                cache.batches(train_batches, part="train"),
            )
            valid_model, valid_batches = (
                cache.split.suffix_eval,
                cache.batches(valid_batches, part="valid"),
            )
        elif self.images is not None:  # pixels that repeat, decoded once
            if "train" in self.images.parts:
                train_batches = self.images.batches(train_batches, part="train")
            if "valid" in self.images.parts:
                valid_batches = self.images.batches(valid_batches, part="valid")
        with self.reporter.phase("train", epoch, n, len(self.loaders.train.sampler)) as update:
            train = compute.train_epoch(
                train_model,
                train_batches,
                self.optimizer,
                device=self.device,
                precision=self.precision,
                scaler=self.scaler,
                epoch=epoch,
                update=update,
                stop=lambda: self._stop,
                memory_format=self.memory_format,
            )
        with self.reporter.phase("valid", epoch, n, len(self.loaders.valid.sampler)) as update:
            valid = compute.evaluate(
                valid_model,
                valid_batches,
                device=self.device,
                precision=self.precision,
                update=update,
                memory_format=self.memory_format,
            )
        train, valid = self._reduce(train), self._reduce(valid)
        step_scheduler(self.scheduler, valid.loss)
        row = {
            "epoch": epoch,
            "train_loss": train.loss,
            "train_acc": train.accuracy,
            "val_loss": valid.loss,
            "val_acc": valid.accuracy,
            "lr": lr,
            "seconds": train.seconds + valid.seconds,
            "train_images_per_s": train.count / max(train.seconds, 1e-9),
        }
        self._finish_epoch(row)

    def _reduce(self, result: compute.PhaseResult) -> compute.PhaseResult:
        """Sums over every rank, so metrics cover the whole data set (one image, one count)."""
        if not self.dist.enabled:
            return result
        loss_sum, correct, count = distributed.sum_across(
            self.dist, [result.loss_sum, result.correct, result.count]
        )
        return compute.PhaseResult(loss_sum, int(correct), int(count), result.seconds)

    def _write(self, action) -> None:
        """Run a write on rank 0 only."""
        if self.dist.is_main:
            action()

    def _finish_epoch(self, row: dict) -> None:
        p = self.progress
        p.epoch, p.seconds = row["epoch"], p.seconds + row["seconds"]
        p.rows.append(row)
        improved = row["val_acc"] > p.best_val_acc  # the same on every rank: reduced metrics
        if improved:
            p.best_val_acc, p.best_epoch = row["val_acc"], row["epoch"]
        if self.dist.is_main:
            self.run.write_metrics(p.rows)
            if improved:
                self.run.save_best(_cpu_state(self.model), self._meta())
            self._save_last()
            self.run.write_summary(self._summary())
            self.run.draw_curves(p.rows, self.model.zoo_spec.id)
        self.reporter.epoch(row, self.config.epochs)

    def _meta(self) -> dict:
        return {
            "id": self.model.zoo_spec.id,
            "num_classes": self.num_classes,
            "class_names": self.classes,
            "preprocessing": self.preprocessing.to_dict(),
            "build_kwargs": self.build_kwargs,
        }

    def _save_last(self) -> None:
        if not self.dist.is_main:
            return
        p = self.progress
        self.run.save_last(
            {
                "model": _cpu_state(self.model),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "progress": {
                    "epoch": p.epoch,
                    "best_val_acc": p.best_val_acc,
                    "best_epoch": p.best_epoch,
                    "seconds": p.seconds,
                },
                "rng": rng_state(),
                "meta": self._meta(),
            }
        )

    def _summary(self) -> dict:
        p = self.progress
        return {
            "id": self.model.zoo_spec.id,
            "best_val_acc": max(p.best_val_acc, 0.0),
            "best_epoch": p.best_epoch,
            "epochs_run": p.epoch,
            "seconds": p.seconds,
            "train_images_per_s": (
                sum(r["train_images_per_s"] for r in p.rows) / len(p.rows) if p.rows else 0.0
            ),
            "frozen_params": self.counts[0],
            "trainable_params": self.counts[1],
            "skipped_files": [path for path, _ in self.skipped],
        }


def _catch_sigint(session: Session):
    """First Ctrl-C: finish the step, save, stop. A second one stops at once."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        if session._stop:
            raise KeyboardInterrupt
        session._stop = True

    return signal.signal(signal.SIGINT, handler)


def _preprocessing(pre: Preprocessing, image_size: int | None) -> Preprocessing:
    return pre.with_image_size(image_size) if image_size else pre


def _cpu_state(model) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
