"""Warnings for backtests that run but whose numbers mean little (degenerate setups).

* Short contexts: the oldest simulation's first forecast sees ``T - N - 8`` returns. Below one
  Toto patch (64 returns) the model reads mostly padding, and with a handful of returns any model's
  forecast is noise; the earliest simulations are then not comparable with the recent ones.
* ``walk_forward`` without a fitted window: simulation k takes MaxDiff's multipliers from
  simulation k + 6, so the 6 oldest simulations have none (they use the defaults (0, 0); records
  mark them ``walk_forward_fitted = False``). The summary averages over all N simulations; these
  lines say how many of them were not fitted, and with N <= 6 that none was.

Pure functions of the setup (the grid's geometry, no JAX computation); the command line prints them
as ``warning: ...`` on stderr and the library logs them.
"""

from __future__ import annotations

import numpy as np

from jaxsim.engine.walk_forward import FIT_LAG
from jaxsim.forecast.grid import ForecastGrid

__all__ = ["PATCH", "earliest_context", "context_lengths", "setup_warnings"]

PATCH = 64  # Toto's patch length, in returns


def context_lengths(n_rows: int, n_sims: int, max_context: int | None = None) -> np.ndarray:
    """Context length (returns) of each of the N+6 forecast origins, oldest first (the grid's)."""
    return ForecastGrid(int(n_rows), int(n_sims), max_context).context_lengths()


def earliest_context(n_rows: int, n_sims: int, max_context: int | None = None) -> int:
    """Returns in the context of the earliest forecast: ``T - N - 8`` (capped at ``max_context``)."""
    return int(context_lengths(n_rows, n_sims, max_context)[0])


def setup_warnings(
    n_rows: int,
    n_sims: int,
    *,
    protocol: str = "legacy",
    max_context: int | None = None,
    symbol: str | None = None,
    patch: int = PATCH,
) -> list[str]:
    """Warnings about a backtest of ``n_rows`` rows and ``n_sims`` simulations (before it runs)."""
    name = f"{symbol}: " if symbol else ""
    out = []
    first = earliest_context(n_rows, n_sims, max_context)
    if 1 <= first < patch:
        lengths = context_lengths(n_rows, n_sims, max_context)
        out.append(
            f"{name}the earliest simulation forecasts from {first} return(s), less than one {patch}-return "
            f"patch ({int(np.sum(lengths < patch))} of {len(lengths)} forecast contexts are shorter); "
            "use fewer --sims or a longer history for comparable simulations"
        )
    if protocol == "walk_forward":
        fitted = max(0, int(n_sims) - FIT_LAG)
        if fitted == 0:
            out.append(
                f"{name}walk_forward with {n_sims} simulation(s): none has an earlier fitted window "
                f"(that needs N >= 7), so MaxDiff and always-on use the default multipliers (0, 0) "
                f"everywhere"
            )
        else:
            out.append(
                f"{name}walk_forward: the {int(n_sims) - fitted} oldest of {n_sims} simulations have no "
                f"earlier fitted window and use the default multipliers (0, 0); the MaxDiff means "
                f"include them (records: walk_forward_fitted)"
            )
    return out
