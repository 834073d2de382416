"""``zoo.finetune``: the seeds' train_model recipe on an image folder, with a run directory.

Each epoch has a train and a valid phase; the best weights are those with the highest valid
accuracy. Every random generator is re-seeded from (seed, epoch) at each epoch start, so an
epoch's randomness does not depend on whether the run was stopped and resumed before it.

The path through the code: ``finetune`` -> ``resume_plan`` (``_resume``, a resumed run only)
-> ``start_run``/``resume_run`` (``_setup``) -> ``fit`` (``_trainer``).
"""

from __future__ import annotations

from zoo.errors import TrainingError
from zoo.runs import RunDir
from zoo.training._config import TrainConfig
from zoo.training._options import resolve_options
from zoo.training._progress import Reporter, reporter_for
from zoo.training._resume import resume_plan
from zoo.training._setup import resume_run, start_run
from zoo.training._trainer import FinetuneResult, fit


def finetune(
    name: str | None = None,
    data: str | None = None,
    *,
    resume: str | None = None,
    reporter: Reporter | None = None,
    progress: bool = True,
    config: str | None = None,
    **options,
) -> FinetuneResult:
    """Fine-tune backbone ``name`` on the image folder ``data``; or continue run ``resume``.

    ``options`` are ``TrainConfig``'s fields (``epochs``, ``freeze_until``, ``lr``, ...);
    ``config`` a TOML file of more (``options`` win), ``recipe`` a bundle of them. It reports
    as ``zoo finetune`` does (bars on a terminal, epoch lines otherwise) unless
    ``progress=False`` or another ``reporter`` is given.

    >>> result = zoo.finetune("resnet34", "pets", freeze_until="layer3", epochs=5)
    >>> result.summary["best_val_acc"]
    0.93
    """
    if reporter is None:
        reporter = reporter_for() if progress else Reporter()
    if resume is not None:
        if config is not None:
            raise TrainingError("--config is for a new run; --resume takes the run's config.json")
        run = RunDir.open(resume)
        record, config = resume_plan(run, name, data, options)
        session = resume_run(run, record, config, reporter, epochs=options.get("epochs"))
    else:
        if name is None:
            raise TrainingError("name a backbone to fine-tune, or pass --resume RUN_DIR")
        settings = TrainConfig(name=name, data=data, **resolve_options(options, config)).check()
        session = start_run(settings, reporter)
    return fit(session)
