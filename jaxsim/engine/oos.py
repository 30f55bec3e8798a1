"""Out-of-sample fields of the compiled program: each simulation's newest forecast, its realisation,
and each strategy's position and P&L on its final day.

Returned with the records under names starting with :data:`PREFIX`; the result keeps them apart
from the original's record fields (:attr:`jaxsim.report.result.BacktestResult.oos`). The forecast
fields are computed here, inside :func:`jaxsim.engine.program.stock_program` (cheap next to the
forecasts); the strategy fields come with the records, from the strategy functions
:func:`jaxsim.sim.simulation.simulation_fields` runs (nothing is scored twice).

Per simulation k (last row e = e_k) and target x:

* ``oos_<x>_point``: P_X[6], the one-step forecast of r_X[e] made from rows up to e-1 (the newest
  forecast of the simulation, never seen by any earlier row);
* ``oos_<x>_band``: its P60-P40 band (docs/backtest.md#draws-and-band; 0 for point forecasters);
* ``oos_<x>_quantiles``: ``(N, 3)`` quantiles 0.1, 0.5, 0.9 of its draws (the point three times
  for a point forecaster);
* ``oos_<x>_realised``: r_X[e] (docs/backtest.md#return-transform);
* ``oos_<x>_crps``: CRPS of the draws at r_X[e] (:func:`jaxsim.stats.skill.crps_ensemble`);
* ``oos_<x>_pit``: PIT F(r_X[e]) of the draws (:func:`jaxsim.stats.skill.pit_values`);
* ``oos_<x>_draws``: ``(N, S)`` the draws themselves, only with ``return_samples``.

Per strategy (a row of :mod:`jaxsim.sim.strategy_table`), on the simulation's final evaluation day
(docs/backtest.md#strategy-notation):

* ``oos_position_<prefix>`` (:attr:`~jaxsim.sim.strategy_table.Strategy.position_field`): the position
  held: s_5 for the signal strategies (applied to R_5 = r_C[e]), 1 for buy_hold (an unconditional
  hold), the side of the day-trade strategies (entry_takeprofit, highlow) on t_5 = e-1 (0 = none). A
  built-in ``"limits"`` strategy's (MaxDiff's) fill is read from its P&L instead (non-zero = filled); a
  user ``"limits"`` strategy's field is its filled position (:func:`jaxsim.sim.profit.limit_fills`).
* ``oos_finalday_<prefix>`` (:attr:`~jaxsim.sim.strategy_table.Strategy.last_day_field`), for the
  strategies whose record final-day field is the six-day average
  (docs/deviations.md#kept-finalday-average): the P&L g_5 of day t_5 itself.
* ``oos_exit_<prefix>`` and, with a limit entry (highlow), ``oos_entry_<prefix>``
  (:attr:`~jaxsim.sim.strategy_table.Strategy.exit_field`, ``entry_field``), for the day-trade
  strategies (and ``"day_trades"`` and ``"limits"`` user strategies): day t_5's exit and entry levels,
  changes relative to C[t_5 - 1] (:func:`jaxsim.sim.strategies.day_trade_fills`,
  :func:`jaxsim.sim.profit.limit_fills`; trades.csv's prices, :mod:`jaxsim.report.trades`). Without an
  entry level the entry is C[t_5 - 1] itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsim.forecast.interface import DRAW_QUANTILES, Forecast, ForecastSummary
from jaxsim.forecast.returns import window_returns
from jaxsim.layout import PRICE_COLUMN
from jaxsim.sim.simulation import SimulationInputs
from jaxsim.sim.strategy_table import OOS_PREFIX, STRATEGIES

__all__ = ["PREFIX", "QUANTILES", "SIGNAL_STRATEGIES", "oos_fields"]

PREFIX = OOS_PREFIX
QUANTILES = DRAW_QUANTILES
# prefixes of the strategies whose final day is R_5 = r_C[e] (row e); the others' final day is t_5 = e-1
SIGNAL_STRATEGIES = tuple(s.prefix for s in STRATEGIES if s.signal)

Array = jax.Array


def oos_fields(
    summary: ForecastSummary,
    forecast: Forecast | None,
    origin: Array,
    inputs: SimulationInputs,
    *,
    targets: tuple[str, ...],
    return_samples: bool = False,
) -> dict[str, Array]:
    """The forecast ``oos_*`` fields of one stock (see the module docstring; the strategies' come
    with the records).

    Args:
      summary: the forecasts at every origin, reduced (:class:`ForecastSummary`, ``(X, O)`` fields).
      forecast: the full forecasts (draws ``(X, O, S)`` or points ``(X, O)``) when ``return_samples``.
      origin: ``(N,)`` origin index of each simulation's P_X[6] (column 6 of the simulation index).
      inputs: the :class:`SimulationInputs` of the N simulations (leading axis N).
      targets: forecast target names, in ``summary``'s order.
      return_samples: also return the draws (``(N, S)`` per target).
    """
    f32 = jnp.float32
    prices, valid = jnp.asarray(inputs.prices, f32), jnp.asarray(inputs.prices_valid, bool)
    returns = jax.vmap(lambda w, v: jax.vmap(lambda col: window_returns(col, v), in_axes=1, out_axes=1)(w))(
        prices, valid
    )  # (N, W, C): r of every window row
    # one gather per summary field for every target: (X, O, ...) -> (X, N, ...)
    at = jax.tree.map(lambda a: a[:, origin], summary)
    out: dict[str, Array] = {}
    for i, x in enumerate(targets):
        out[f"{PREFIX}{x}_point"] = at.point[i]
        out[f"{PREFIX}{x}_band"] = at.band[i]
        out[f"{PREFIX}{x}_quantiles"] = at.quantiles[i]
        out[f"{PREFIX}{x}_realised"] = returns[:, -1, PRICE_COLUMN[x]]
        out[f"{PREFIX}{x}_crps"] = at.crps[i]
        out[f"{PREFIX}{x}_pit"] = at.pit[i]
        if return_samples:
            draws = forecast.point[..., None] if forecast.samples is None else forecast.samples
            out[f"{PREFIX}{x}_draws"] = jnp.asarray(draws[i][origin], f32)
    return out
