"""The inputs of :mod:`jaxsim.report.plots`, computed from a :class:`~jaxsim.report.result.BacktestResult`.

* :func:`daily_returns`: date x strategy out-of-sample daily P&L (the result's ``daily`` frame, else the
  chronological final days of the simulations).
* :func:`benchmark_close`: the close prices buy-and-hold is drawn from.
* :func:`forecast_frames`: per target, the one-step forecast of each simulation's last day and what
  happened.
* :func:`maxdiff_landscape`: one simulation's MaxDiff objective ``J(mh, ml)`` on a grid, from the
  exact objective of :mod:`jaxsim.optimize.objective` on the problem the simulation solved.
* :func:`sharpe_bootstrap`: stationary-bootstrap Sharpe ratios per strategy
  (:func:`jaxsim.stats.bootstrap.bootstrap_distribution`).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsim.data.prices import price_table
from jaxsim.engine.walk_forward import limit_arguments
from jaxsim.errors import ConfigError
from jaxsim.layout import ORIGINS_PER_SIM
from jaxsim.optimize.objective import BOUND, exact_objective, grid_values, make_problem
from jaxsim.sim.maxdiff import fit_positions
from jaxsim.sim.simulation import N_DAYS, PRICE_WINDOW, SimulationInputs
from jaxsim.sim.strategy_table import FITTED, MAXDIFF, with_user
from jaxsim.stats.bootstrap import bootstrap_distribution, default_statistics

__all__ = [
    "daily_returns",
    "benchmark_close",
    "forecast_frames",
    "Landscape",
    "LANDSCAPE_FIELDS",
    "maxdiff_problem",
    "maxdiff_problems",
    "maxdiff_landscape",
    "sharpe_bootstrap",
]

# strategy -> (high multiplier, low multiplier, eod policy, sum of the final six-day P&L) record fields
LANDSCAPE_FIELDS = {
    s.name: (s.fit.high_multiplier, s.fit.low_multiplier, s.field("close_at_eod"), s.field("optimized_return"))
    for s in FITTED
}


def daily_returns(result) -> pd.DataFrame:
    """Date x strategy daily P&L, oldest first (fractions): the result's out-of-sample ``daily`` frame
    where it has one, else each simulation's final-day field."""
    daily = getattr(result, "daily", None)
    if isinstance(daily, pd.DataFrame):
        return daily
    chrono = result.records.iloc[::-1]
    frame = pd.DataFrame(
        {
            s.name: chrono[s.final_day].to_numpy(np.float64)
            for s in with_user(result.metadata.get("user_strategies", ()))
        },
        index=pd.DatetimeIndex(chrono["date"], name="date"),
    )
    return frame


def benchmark_close(result, prices=None) -> pd.Series | None:
    """Close prices by date: from ``prices`` (a :class:`jaxsim.data.prices.Prices`) when given, so the
    first day's move counts, else the records' ``close`` (each simulation's last close; None when
    the records have none)."""
    if prices is not None:
        return pd.Series(np.asarray(prices.close, np.float64), index=pd.DatetimeIndex(prices.dates), name="close")
    closes = getattr(result, "closes", None)  # the result's own closes (with the one before the first day)
    if isinstance(closes, pd.Series) and len(closes):
        return closes
    if "close" not in result.records:
        return None
    chrono = result.records.iloc[::-1]
    return pd.Series(chrono["close"].to_numpy(np.float64), index=pd.DatetimeIndex(chrono["date"]), name="close")


def forecast_frames(result) -> dict[str, pd.DataFrame]:
    """Per target, date x fields of each simulation's last day e, oldest first.

    From the result's ``forecasts`` frame (date x (target, field): ``point``, ``band``, ``q0.1``,
    ``q0.5``, ``q0.9``, ``realised``, ...) where it has one. Else from the records, the close only:
    ``point`` is the forecast of ``r_C[e]`` (``predicted_close / close - 1``), ``band`` the P60-P40
    width of its draws (``close_ci_band[6]``) and ``realised`` ``C[e] / C[e-1] - 1`` (NaN for the
    oldest simulation, whose previous close is not in the records). Only the close has the last
    close in the records.
    """
    forecasts = getattr(result, "forecasts", None)
    if isinstance(forecasts, pd.DataFrame) and len(forecasts.columns):
        targets = list(dict.fromkeys(forecasts.columns.get_level_values(0)))
        return {str(t): forecasts[t] for t in targets}
    missing = [c for c in ("close", "predicted_close") if c not in result.records]
    if missing:
        raise ConfigError(f"the records have no {', '.join(missing)} column: no close forecast to plot")
    rec = result.records.iloc[::-1]
    close = rec["close"].to_numpy(np.float64)
    point = rec["predicted_close"].to_numpy(np.float64) / close - 1.0
    frame = pd.DataFrame({"point": point}, index=pd.DatetimeIndex(rec["date"], name="date"))
    if "close_ci_band" in rec:
        frame["band"] = [float(np.asarray(b, np.float64).ravel()[-1]) for b in rec["close_ci_band"]]
    frame["realised"] = np.concatenate([[np.nan], close[1:] / close[:-1] - 1.0])
    return {"close": frame}


def _row_of(prices, date) -> int:
    dates = np.asarray(prices.dates, "datetime64[D]")
    d = np.datetime64(pd.Timestamp(date).date(), "D")
    e = int(np.searchsorted(dates, d))
    if e >= len(dates) or dates[e] != d:
        raise ConfigError(f"the prices have no row dated {d}: pass the prices the backtest ran on")
    return e


def _predictions(records: pd.DataFrame, target: str, sim: int) -> np.ndarray:
    name = f"{target}_predictions"
    p = np.zeros(ORIGINS_PER_SIM, np.float32)  # missing targets are zeros, as the program fills them
    if name in records:
        p[:N_DAYS] = np.asarray(records[name].iloc[sim], np.float32).ravel()[:N_DAYS]
    return p


def maxdiff_problem(result, prices, *, sim: int = 0, strategy: str = MAXDIFF.name):
    """The :class:`~jaxsim.optimize.objective.MultiplierProblem` simulation ``sim`` scores ``strategy`` on.

    Rebuilt from the prices the backtest ran on (its 22-row window up to the simulation's last row)
    and the simulation's high/low forecasts, exactly as the program builds it: levels relative to the
    previous close, ``c = aC, h = aH + kH, l = aL - kL, hp = fH + kH, lp = fL - kL``; positions
    ``q = [lp < hp] * (+1 if |hp| > |lp| else -1, crypto 0)`` (MaxDiff) or the rows ``+1`` and
    ``-1`` (crypto 0) (always-on).
    """
    inputs = _simulation_inputs(result, prices, sim=sim, strategy=strategy)
    return _problem(inputs, strategy, crypto=bool(result.metadata.get("crypto", False)))


@partial(jax.jit, static_argnames=("strategy", "crypto"))
def _problems(inputs: SimulationInputs, *, strategy: str, crypto: bool):
    return jax.vmap(lambda i: _problem(i, strategy, crypto=crypto))(inputs)


def maxdiff_problems(result, prices, *, strategy: str = MAXDIFF.name):
    """:func:`maxdiff_problem` of every simulation, stacked along a leading ``(N,)`` axis (one program)."""
    inputs = [_simulation_inputs(result, prices, sim=k, strategy=strategy) for k in range(len(result.records))]
    stacked = jax.tree.map(lambda *a: np.stack(a), *inputs)
    crypto = bool(result.metadata.get("crypto", False))
    return jax.device_get(_problems(stacked, strategy=strategy, crypto=crypto))


def _simulation_inputs(result, prices, *, sim: int, strategy: str) -> SimulationInputs:
    """Host arrays of simulation ``sim``'s :class:`SimulationInputs` (what :func:`maxdiff_problem` reads)."""
    if strategy not in LANDSCAPE_FIELDS:
        raise ConfigError(f"strategy must be one of {sorted(LANDSCAPE_FIELDS)}, got {strategy!r}")
    records = result.records
    if not 0 <= sim < len(records):
        raise ConfigError(f"sim must be in [0, {len(records)}), got {sim}")
    e = _row_of(prices, records["date"].iloc[sim])
    table = price_table(prices)
    rows = e - PRICE_WINDOW + 1 + np.arange(PRICE_WINDOW)
    valid = rows >= 0
    window = np.where(valid[:, None], table[np.clip(rows, 0, None)], 0.0).astype(np.float32)
    zeros = np.zeros(ORIGINS_PER_SIM, np.float32)
    return SimulationInputs(
        zeros, _predictions(records, "high", sim), _predictions(records, "low", sim), zeros, window, valid
    )


def _problem(inputs: SimulationInputs, strategy: str, *, crypto: bool):
    """The :class:`~jaxsim.optimize.objective.MultiplierProblem` of one simulation's inputs (traceable)."""
    (ac, ah, al, fh, fl, kh, kl, _, _), _ = limit_arguments(inputs)
    c, h, l, hp, lp = ac, ah + kh, al - kl, fh + kh, fl - kl
    row = next(s for s in FITTED if s.name == strategy)
    return make_problem(c, h, hp, l, lp, fit_positions(row, hp, lp, crypto=crypto))


@partial(jax.jit, static_argnames=("strategy", "crypto", "close_at_eod", "resolution"))
def _landscape(inputs, chosen, fee, *, strategy, crypto, close_at_eod, resolution):
    """The grid, ``J`` on it and ``J(chosen)`` of one simulation's problem, as one program."""
    problem = _problem(inputs, strategy, crypto=crypto)
    g = jnp.linspace(-BOUND, BOUND, resolution, dtype=jnp.float32)
    values = grid_values(problem, g, g, close_at_eod=close_at_eod, fee=fee)
    return g, values, exact_objective(chosen, problem, close_at_eod=close_at_eod, fee=fee)


class Landscape(NamedTuple):
    """One simulation's objective on a grid and the multipliers it used.

    Attributes:
      mh, ml: ``(n,)`` grid axes over ``[-0.03, 0.03]``; values: ``(n, n)`` ``J(mh[i], ml[j])``.
      chosen: ``(2,)`` the recorded ``(mh, ml)``; chosen_value: ``J(chosen)`` (exact objective).
      recorded_value: the record's optimised six-day P&L (equals ``chosen_value`` up to float32).
      close_at_eod: the recorded eod policy the objective uses.
    """

    mh: np.ndarray
    ml: np.ndarray
    values: np.ndarray
    chosen: np.ndarray
    chosen_value: float
    recorded_value: float
    close_at_eod: bool


def maxdiff_landscape(result, prices, *, sim: int = 0, strategy: str = MAXDIFF.name, resolution: int = 81) -> Landscape:
    """The exact objective of simulation ``sim``'s MaxDiff problem on a ``resolution`` x ``resolution`` grid.

    Under ``walk_forward`` the recorded multipliers were fitted on an earlier window, so the chosen
    point need not be this landscape's maximum; under ``legacy`` it is the optimizer's answer here.
    """
    if resolution < 2:
        raise ConfigError(f"resolution must be >= 2, got {resolution}")
    inputs = _simulation_inputs(result, prices, sim=sim, strategy=strategy)
    f_mh, f_ml, f_eod, f_value = LANDSCAPE_FIELDS[strategy]
    r = result.records.iloc[sim]
    eod = bool(r[f_eod])
    chosen = np.array([r[f_mh], r[f_ml]], np.float32)
    crypto = bool(result.metadata.get("crypto", False))
    fee = np.float32(result.metadata["fee"])
    static = dict(strategy=strategy, crypto=crypto, close_at_eod=eod, resolution=int(resolution))
    g, values, value = jax.device_get(_landscape(inputs, chosen, fee, **static))
    grid = np.asarray(g, np.float64)
    return Landscape(
        grid, grid, np.asarray(values, np.float64), chosen.astype(np.float64), float(value), float(r[f_value]), eod
    )


@partial(jax.jit, static_argnames=("n_resamples",))
def _sharpes(key, values, n_resamples):  # (T, N): every column resampled with the same key, NaN days masked
    mask = jnp.isfinite(values)

    def one(x, m):
        samples, _ = bootstrap_distribution(key, x, m, n_resamples=n_resamples)
        return samples.sharpe, default_statistics(jnp.where(m, x, 0), m).sharpe

    return jax.vmap(one, in_axes=(1, 1))(values, mask)


def sharpe_bootstrap(
    daily: pd.DataFrame, key=None, *, n_resamples: int = 1000
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Stationary-bootstrap Sharpe ratios (Politis-White block length) of each column of ``daily``.

    Every column is resampled with the same ``key`` (default ``jax.random.key(0)``); NaN days are
    masked out.

    Returns:
      ``(samples, estimates)``: strategy -> ``(n_resamples,)`` annualised Sharpe ratios, and
      strategy -> the Sharpe ratio of the series itself.
    """
    key = jax.random.key(0) if key is None else key
    samples, estimate = jax.device_get(_sharpes(key, daily.to_numpy(np.float64).astype(np.float32), n_resamples))
    names = [str(c) for c in daily.columns]
    return ({n: samples[i] for i, n in enumerate(names)}, {n: float(estimate[i]) for i, n in enumerate(names)})
