"""The bake-off (``zoo compare``): several backbones linear-probed on the user's own data,
a leaderboard, and accuracy against speed drawn to ``compare.png``."""

from __future__ import annotations

from zoo.bakeoff._compare import compare
from zoo.bakeoff._plot import pareto_front, plot_compare

__all__ = ["compare", "pareto_front", "plot_compare"]
