"""What a built-in strategy is scored on: one simulation's six evaluation days and the scoring rules.

Every built-in strategy module maps each of its table rows (:mod:`jaxsim.sim.strategy_table`) to a
function ``record(days: SimulationDays, rules: Scoring) -> dict`` of its record fields (its
``RECORDS``), so :func:`jaxsim.sim.simulation.simulation_fields` scores every row with one loop.
The quantities are those of docs/backtest.md#strategy-notation, built by
:func:`jaxsim.sim.simulation.simulation_days`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

__all__ = ["SimulationDays", "Scoring", "RecordFunction"]

Array = jax.Array


class SimulationDays(NamedTuple):
    """One simulation's evaluation days t_i = e-6+i, i = 0..5 (e = its last row), ``(6,)`` unless noted.

    Attributes:
      close_pred, high_pred, low_pred: fC, fH, fL, the forecasts P_X[0..5] of r_X[t_i].
      actual_close, actual_high, actual_low: aC, aH, aL = r_X[t_i] (rows e-6..e-1).
      returns: R_i = r_C[t_i + 1] (rows e-5..e), the signal strategies' returns.
      k_high, k_low: MaxDiff's close-relative offsets kH, kL of rows e-7..e-2.
      high_price, low_price: the predicted prices H[e] (1 + P_H[6]), L[e] (1 + P_L[6]) (scalars).
      enough_history: bool scalar, at least days + 2 valid rows.
    """

    close_pred: Array
    high_pred: Array
    low_pred: Array
    actual_close: Array
    actual_high: Array
    actual_low: Array
    returns: Array
    k_high: Array
    k_low: Array
    high_price: Array
    low_price: Array
    enough_history: Array


class Scoring(NamedTuple):
    """The rules a simulation is scored under.

    Attributes:
      fee, spread: trading fee and SPREAD (dynamic scalars).
      crypto: crypto rules (no shorts; static). days_per_year: 252 or 365 (static).
      optimizer: MaxDiff's multiplier optimizer (static; the protocol of :mod:`jaxsim.sim.simulation`).
      fits: the multipliers of the strategies with fitted multipliers, ``{row: (2, 2)}`` per eod
        policy, fitted together by :func:`jaxsim.sim.maxdiff.fit_rules`; None: each strategy fits
        its own with ``optimizer``.
    """

    fee: Any
    spread: Any
    crypto: bool
    days_per_year: int
    optimizer: Callable
    fits: Any = None


RecordFunction = Callable[[SimulationDays, Scoring], dict]
