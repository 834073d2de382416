"""The partial loader: load what fits from a checkpoint into a model (by name, through key
rules, or paired by order), and report what loaded and what did not."""

from __future__ import annotations

from zoo.transfer._keys import KeyMap, read_key_map
from zoo.transfer._load import ARGUMENTS, FLAGS, MATCHES, transfer
from zoo.transfer._report import TransferReport

__all__ = ["ARGUMENTS", "FLAGS", "KeyMap", "MATCHES", "TransferReport", "read_key_map", "transfer"]
