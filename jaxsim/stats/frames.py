"""pandas edge of :mod:`jaxsim.stats`: labelled tables from date-indexed daily returns.

The array functions do the work; these wrappers only align dates, move columns to the batch axis and
label the result. A daily-returns frame has one row per date (sorted ``DatetimeIndex``), one column
per strategy, the day's simple return as a fraction, and NaN on days a strategy has no value.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsim.errors import ConfigError
from jaxsim.stats.bootstrap import BootstrapCI, BootstrapStats, bootstrap_ci
from jaxsim.stats.performance import PERIODS_PER_YEAR, STAT_LABELS, PerformanceStats, performance_stats
from jaxsim.stats.selection import SelectionStats, pbo_cscv, selection_stats
from jaxsim.stats.verdict import verdict

__all__ = [
    "stats_frame",
    "table_stats",
    "bootstrap_frame",
    "bootstrap_table",
    "daily_verdict",
    "UncertaintySettings",
    "UncertaintyArrays",
    "column_cis",
    "uncertainty_arrays",
]


@dataclasses.dataclass(frozen=True)
class UncertaintySettings:
    """The static part of :func:`uncertainty_arrays` (one compiled program per value and input shape).

    Attributes:
      n_resamples: bootstrap resamples. level: confidence level of the intervals.
      periods_per_year: annualisation factor of the Sharpe ratio and CAGR.
      n_blocks: CSCV blocks of the PBO (even, 2..20); 0 computes no PBO (NaN).
    """

    n_resamples: int = 1000
    level: float = 0.95
    periods_per_year: float = PERIODS_PER_YEAR
    n_blocks: int = 0


class UncertaintyArrays(NamedTuple):
    """:func:`uncertainty_arrays`' output: per-column bootstrap intervals (each field ``(N,)``), the
    selection statistics of the live columns and the PBO (NaN without blocks)."""

    ci: BootstrapCI
    selection: SelectionStats
    pbo: jax.Array


def column_cis(key: jax.Array, values: jax.Array, settings: UncertaintySettings) -> BootstrapCI:
    """:func:`jaxsim.stats.bootstrap.bootstrap_ci` of each column of a ``(T, N)`` matrix, vmapped
    over the columns with the same ``key`` (NaN days masked out)."""
    return jax.vmap(
        lambda r: bootstrap_ci(
            key, r, n_resamples=settings.n_resamples, level=settings.level, periods_per_year=settings.periods_per_year
        ),
        in_axes=1,
    )(values)


def uncertainty_arrays(key, values, live, rows, n_trials, settings: UncertaintySettings) -> UncertaintyArrays:
    """Bootstrap intervals, selection statistics and PBO of a ``(T, N)`` daily matrix, as one program.

    Args:
      key: PRNG key of the bootstrap (every column resampled with it).
      values: ``(T, N)`` daily returns, NaN where a strategy has no value.
      live: ``(N,)`` bool, the columns that take part in the Sharpe pick and the DSR
        (:func:`jaxsim.stats.selection.selection_stats`' ``columns``).
      rows: ``(T,)`` bool, the days of the PBO (:func:`jaxsim.stats.selection.pbo_cscv`'s ``rows``).
      n_trials: strategies tried (int32 scalar).
      settings: the static :class:`UncertaintySettings`.

    Every input but ``settings`` is traced, so one compiled program serves every result of the same
    shape whatever its live columns and complete days.
    """
    ci = column_cis(key, values, settings)
    sel = selection_stats(values, n_trials=n_trials, columns=live)
    if settings.n_blocks:
        pbo = pbo_cscv(values, n_blocks=settings.n_blocks, rows=rows).pbo
    else:
        pbo = jnp.full((), jnp.nan, ci.block_length.dtype)
    return UncertaintyArrays(ci, sel, pbo)


# compiled once per input shape and option set (the shell's jit boundary; the core functions stay plain);
# their array arguments go in as numpy (jnp.asarray would compile a transfer program per shape)
def table_stats(values, exposure, close, years, periods_per_year) -> PerformanceStats:
    """:func:`stats_frame`'s program: :func:`jaxsim.stats.performance.performance_stats` of ``(N, T)``
    values (strategies on the batch axis), ``periods_per_year`` static."""
    return performance_stats(values, exposure=exposure, close=close, years=years, periods_per_year=periods_per_year)


_table_stats = jax.jit(table_stats, static_argnames=("periods_per_year",))
_column_cis = jax.jit(column_cis, static_argnames=("settings",))
_uncertainty = jax.jit(uncertainty_arrays, static_argnames=("settings",))


def _as_frame(daily) -> tuple[pd.DataFrame, bool]:
    if isinstance(daily, pd.Series):
        return daily.to_frame(daily.name if daily.name is not None else "strategy"), True
    if not isinstance(daily, pd.DataFrame):
        raise ConfigError(f"daily returns must be a pandas Series or DataFrame, got {type(daily).__name__}")
    return daily, False


def _check_index(df: pd.DataFrame) -> None:
    if not isinstance(df.index, pd.DatetimeIndex):
        raise ConfigError("daily returns need a DatetimeIndex (one row per date)")
    if len(df) == 0:
        raise ConfigError("daily returns are empty")
    if not df.index.is_monotonic_increasing or df.index.has_duplicates:
        raise ConfigError("daily returns' dates must be sorted and unique")


def _buy_hold_closes(close: pd.Series, index: pd.DatetimeIndex) -> np.ndarray:
    # the last close before the first day (the day-1 P&L starts from it), else the first day's, to the last day
    close = close.sort_index()
    before = close.loc[: index[0] - pd.Timedelta(1, "ns")]
    start = before.index[-1] if len(before) else index[0]
    return close.loc[start : index[-1]].to_numpy(dtype=np.float64)


def stats_frame(
    daily: pd.DataFrame | pd.Series,
    *,
    exposure: pd.DataFrame | pd.Series | None = None,
    close: pd.Series | None = None,
    periods_per_year: float = PERIODS_PER_YEAR,
    program=None,
):
    """backtesting.py-style stats: rows ``Start``, ``End``, ``Duration`` and :data:`STAT_LABELS`, one
    column per strategy (a Series for a Series input).

    ``Duration`` is End - Start; ``CAGR [%]`` uses calendar years, Duration in days / 365.25 (as
    backtesting.py); ``Max. Drawdown Duration`` counts trading days (rows with a value); ``Buy & Hold
    Return [%]`` comes from ``close`` (from the last close before Start to End; NaN without ``close``).
    ``exposure``: boolean frame of days with a position (default: non-zero return days).
    ``program``: what runs :func:`table_stats` ``(values, exposure, close, years, periods_per_year)``
    (default: its jit, compiled once per input shape; the report layer passes one kept on disk).
    """
    df, single = _as_frame(daily)
    _check_index(df)
    values = df.to_numpy(dtype=np.float64).T  # (N, T): strategies on the batch axis
    exp = None
    if exposure is not None:
        e, _ = _as_frame(exposure)
        aligned = e.reindex(index=df.index, columns=df.columns).astype("boolean").fillna(False)
        exp = aligned.to_numpy(bool).T
    start, end = df.index[0], df.index[-1]
    duration = end - start
    years = duration / pd.Timedelta(days=365.25)
    c = None if close is None else _buy_hold_closes(close, df.index)
    s = jax.device_get((program or _table_stats)(values, exp, c, years, periods_per_year))
    out = pd.DataFrame(index=["Start", "End", "Duration", *STAT_LABELS.values()], columns=df.columns, dtype=object)
    out.loc["Start"], out.loc["End"], out.loc["Duration"] = start, end, duration
    for field, label in STAT_LABELS.items():
        vals = np.asarray(getattr(s, field))
        out.loc[label] = [v.item() for v in np.broadcast_to(vals, (len(df.columns),))]
    return out.iloc[:, 0].rename(df.columns[0]) if single else out


def bootstrap_frame(
    key: jax.Array,
    daily: pd.DataFrame | pd.Series,
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    periods_per_year: float = PERIODS_PER_YEAR,
) -> pd.DataFrame:
    """Bootstrap estimate and percentile interval of mean daily return [%], Sharpe and CAGR [%].

    Rows: (statistic, "estimate" | "lower" | "upper") plus "Block Length"; one column per strategy.
    Every strategy uses the same key (see :func:`jaxsim.stats.bootstrap.bootstrap_ci`).
    """
    df, _ = _as_frame(daily)
    _check_index(df)
    settings = UncertaintySettings(n_resamples, level, periods_per_year)
    return bootstrap_table(jax.device_get(_column_cis(key, df.to_numpy(dtype=np.float64), settings)), df.columns)


def bootstrap_table(ci: BootstrapCI, columns) -> pd.DataFrame:
    """:func:`bootstrap_frame`'s table of per-column intervals ``ci`` (host arrays, each ``(N,)``)."""
    labels = {
        "mean_daily": ("Mean Daily Return [%]", 100.0),
        "sharpe": ("Sharpe Ratio", 1.0),
        "cagr": ("CAGR [%]", 100.0),
    }
    rows, data = [], []
    for field in BootstrapStats._fields:
        label, scale = labels[field]
        for part in ("estimate", "lower", "upper"):
            rows.append((label, part))
            data.append(scale * np.asarray(getattr(getattr(ci, part), field), np.float64))
    rows.append(("Block Length", "estimate"))
    data.append(np.asarray(ci.block_length, np.float64))
    return pd.DataFrame(np.stack(data), index=pd.MultiIndex.from_tuples(rows), columns=columns)


def daily_verdict(
    key: jax.Array, daily: pd.DataFrame, *, n_trials: int | None = None, n_resamples: int = 1000, level: float = 0.95
) -> str:
    """The :func:`jaxsim.stats.verdict.verdict` line of a daily-returns frame: bootstrap intervals of
    each column's mean daily return (same ``key`` for every column), the DSR of the best-Sharpe column
    given ``n_trials`` (default: the number of columns)."""
    df, _ = _as_frame(daily)
    _check_index(df)
    x = df.to_numpy(dtype=np.float64)
    n = len(df.columns) if n_trials is None else n_trials
    every_column, every_day = np.ones(x.shape[1], bool), np.ones(x.shape[0], bool)
    out = _uncertainty(key, x, every_column, every_day, np.int32(n), UncertaintySettings(n_resamples, level))
    lower, sharpe, dsr = jax.device_get((out.ci.lower.mean_daily, out.selection.sharpe, out.selection.dsr))
    return verdict(list(df.columns), lower, sharpe, dsr=float(dsr), n_trials=int(n), level=level)
