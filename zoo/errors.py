"""The exceptions zoo raises for problems a user can fix.

The CLI turns every ``ZooError`` into one line on stderr and a non-zero exit; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations


class ZooError(Exception):
    """A problem the user can act on; the message says what was wrong and what to do."""

    label = "Error: "  # what the CLI prints before the message


class UnknownBackboneError(ZooError):
    """No backbone is registered under the given name."""


class PluginError(ZooError):
    """A plugin registered something invalid (a duplicate id, a bad field)."""


class FreezePointError(ZooError):
    """A freeze point that the backbone does not have."""


class HeadError(ZooError):
    """The classifier head could not be found or adapted."""


class WeightsError(ZooError):
    """Weights that cannot be found, read or trusted."""


class WeightsNotFoundError(WeightsError):
    """The weights file is not where it was looked for."""


class UnsafeCheckpointError(WeightsError):
    """A checkpoint that would need arbitrary unpickling to read."""


class CheckpointError(WeightsError):
    """A checkpoint that is truncated, garbage or of an unexpected layout."""


class TransferError(ZooError):
    """Weights that do not fit the model well enough (strict or min-coverage failed)."""


class DataError(ZooError):
    """An image folder that cannot be trained or evaluated on."""


class RunError(ZooError):
    """A run directory that is missing, not a run, or would be overwritten."""


class TrainingError(ZooError):
    """Training that had to stop (a NaN or infinite loss, a bad option)."""


class NonFiniteLoss(TrainingError):
    """The loss became NaN or infinite."""


class Interrupted(TrainingError):
    """Ctrl-C: the run stopped; last.pt holds the last finished epoch. A deliberate stop, not
    a failure: the CLI prints it without the ``Error:`` label and exits 130."""

    exit_code = 130
    label = ""

    def __init__(self, run_dir, epoch: int | None) -> None:
        holds = f"epoch {epoch}" if epoch is not None else "the last epoch saved"
        super().__init__(
            f"stopped by Ctrl-C; {run_dir}/last.pt holds {holds}. Resume with: "
            f"zoo finetune --resume {run_dir}"
        )


class FeatureStoreError(ZooError):
    """Features that cannot be stored or read back as asked."""


class NotSplittable(ZooError):
    """The model has no frozen prefix worth caching; the message says why."""


class ImageSizeError(ZooError):
    """A backbone that cannot take images of the size asked for; the message names the
    smallest size that works."""


class ExportError(ZooError):
    """A model that cannot be exported, an export that failed its check, or an exported file
    that cannot be read."""


class ExtraMissingError(ZooError):
    """An optional extra (``zoo[export]``, ``zoo[tensorboard]``) that is not installed."""

    def __init__(self, extra: str, package: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the {package} package, which is not installed; "
            f"install it with: pip install 'zoo[{extra}]'"
        )


class ListingError(ZooError):
    """A listing filter or sort that cannot be applied (a count that is not one)."""


class CompareError(ZooError):
    """A bake-off that cannot start: nothing to compare, too many, no weights for any."""


class StopRequested(Exception):  # noqa: N818 - a signal between zoo's own layers, not an error
    """Ctrl-C arrived; the step in flight finished. Not a ZooError: the trainer turns it into
    Interrupted."""


def one_line(message: str) -> str:
    """``message`` as the one line a user sees: several lines (another library's words,
    quoted) are joined with '; '."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())
