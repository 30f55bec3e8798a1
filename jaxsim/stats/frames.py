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
    "calendar_drawdown_duration",
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


def _start_date(index: pd.DatetimeIndex, close: pd.Series | None, start) -> pd.Timestamp:
    """The bar the equity starts from (equity 1): ``start``, else the last close before the first day,
    else the weekday before it (a calendar day for data with weekends; holidays are not known)."""
    if start is not None:
        start = pd.Timestamp(start)
        if start >= index[0]:
            raise ConfigError(f"start {start.date()} must be before the first daily return ({index[0].date()})")
        return start
    if close is not None:
        before = close.sort_index().loc[: index[0] - pd.Timedelta(1, "ns")]
        if len(before):
            return before.index[-1]
    weekdays = bool((index.day_of_week < 5).all())
    return index[0] - (pd.offsets.BDay(1) if weekdays else pd.Timedelta(days=1))


def _buy_hold_closes(close: pd.Series, start: pd.Timestamp, index: pd.DatetimeIndex) -> np.ndarray:
    # from the close the equity starts from (if there is one, else the first day's) to the last day
    close = close.sort_index()
    first = start if start in close.index else index[0]
    return close.loc[first : index[-1]].to_numpy(dtype=np.float64)


def calendar_drawdown_duration(equity: pd.Series):
    """backtesting.py's ``Max. Drawdown Duration`` (``_stats.compute_drawdown_duration_peaks``) of a
    date-indexed equity curve whose first bar is the starting equity: the longest calendar time from
    a bar at the running peak to the next bar at the peak, or to the last bar when the drawdown is
    still open (runs of one bar between two peaks do not count, as there). ``NaT`` without a drawdown."""
    values = equity.to_numpy(np.float64)
    dd = 1 - values / np.maximum.accumulate(values)
    at_peak = np.unique(np.r_[np.flatnonzero(dd == 0), len(dd) - 1])
    prev, cur = at_peak[:-1], at_peak[1:]
    gap = cur > prev + 1
    if not gap.any():
        return pd.NaT
    return (equity.index[cur[gap]] - equity.index[prev[gap]]).max()


def _day_trades(df: pd.DataFrame, exposed: np.ndarray) -> pd.DataFrame:
    """One round trip per exposed day (entered and exited that day), returning the day's value."""
    rows = [
        (name, df.index[t], df.index[t], df.iat[t, j])
        for j, name in enumerate(df.columns)
        for t in np.flatnonzero(exposed[j])
    ]
    return pd.DataFrame(rows, columns=["strategy", "entry_date", "exit_date", "return"])


def _trade_rows(df: pd.DataFrame, bars: pd.DatetimeIndex, trades: pd.DataFrame) -> dict[str, list]:
    """backtesting.py's trade rows per column from the round trips: ``Exposure Time [%]`` (share of
    ``bars`` from a trade's entry bar to its exit bar, both counted), ``# Trades``, ``Win Rate [%]``
    (trades with a positive return), ``Profit Factor``, ``Expectancy [%]`` (mean trade return)."""
    out: dict[str, list] = {
        k: [] for k in ("Exposure Time [%]", "# Trades", "Win Rate [%]", "Profit Factor", "Expectancy [%]")
    }
    by_name = dict(tuple(trades.groupby("strategy", sort=False))) if len(trades) else {}
    for name in df.columns:
        t = by_name.get(name, trades.iloc[:0])
        ret = t["return"].to_numpy(np.float64)
        held = np.zeros(len(bars), bool)
        # an entry before the bars (or unknown, NaT: a close-to-close trade on the first day) is bar 0
        entry = np.searchsorted(bars, pd.DatetimeIndex(t["entry_date"]).fillna(bars[0]))
        exit_ = np.searchsorted(bars, pd.DatetimeIndex(t["exit_date"]))
        for a, b in zip(entry, exit_):
            held[a : b + 1] = True
        n = len(ret)
        losses = abs(ret[ret < 0].sum())
        out["Exposure Time [%]"].append(100 * held.mean())
        out["# Trades"].append(n)
        out["Win Rate [%]"].append(100 * float(np.mean(ret > 0)) if n else np.nan)
        out["Profit Factor"].append(ret[ret > 0].sum() / losses if losses else np.nan)
        out["Expectancy [%]"].append(100 * ret.mean() if n else np.nan)
    return out


def stats_frame(
    daily: pd.DataFrame | pd.Series,
    *,
    exposure: pd.DataFrame | pd.Series | None = None,
    close: pd.Series | None = None,
    trades: pd.DataFrame | None = None,
    start=None,
    periods_per_year: float = PERIODS_PER_YEAR,
    program=None,
):
    """backtesting.py's stats: rows ``Start``, ``End``, ``Duration`` and :data:`STAT_LABELS`, one column
    per strategy (a Series for a Series input); docs/statistics.md maps each row to its convention.

    Each column is what backtesting.py's ``compute_stats`` reports for bars ``[Start, *daily.index]``,
    equity ``[1, cumprod(1 + r)]`` (flat on a day without a value) and the round trips ``trades``:

    * ``Start``: the bar the equity starts from, the close before the first daily return
      (``start``; default: the last date of ``close`` before the first day, else the weekday before
      it); ``End``: the last day; ``Duration``: End - Start (a calendar ``Timedelta``); ``CAGR [%]``
      over Duration in days / 365.25.
    * ``Max. Drawdown Duration``: :func:`calendar_drawdown_duration`, a calendar ``Timedelta`` (NaT
      without a drawdown).
    * ``# Trades``: the round trips; ``Win Rate [%]``, ``Profit Factor``, ``Expectancy [%]`` over
      their returns; ``Exposure Time [%]``: the share of the bars from a trade's entry to its exit.
      ``trades``: a frame with columns ``strategy``, ``entry_date``, ``exit_date``, ``return``
      (:func:`jaxsim.report.trades.trades_frame`); default: one round trip per day with a position
      (``exposure``, a boolean frame; default: the days with a non-zero return).
    * ``Buy & Hold Return [%]``: ``close`` from Start to End (NaN without ``close``).
    * The return rows (Return, annualised return and volatility, Sharpe, Sortino, Calmar, Max.
      Drawdown) use the column's days with a value (:mod:`jaxsim.stats.performance`); ``Sharpe
      (empyrical)`` and ``Sortino (empyrical)`` are empyrical's (= quantstats') arithmetic ratios.

    ``program``: what runs :func:`table_stats` ``(values, exposure, close, years, periods_per_year)``
    (default: its jit, compiled once per input shape; the report layer passes one kept on disk).
    """
    df, single = _as_frame(daily)
    _check_index(df)
    values = df.to_numpy(dtype=np.float64).T  # (N, T): strategies on the batch axis
    valid = np.isfinite(values)
    if exposure is not None:
        e, _ = _as_frame(exposure)
        aligned = e.reindex(index=df.index, columns=df.columns).astype("boolean").fillna(False)
        exposed = aligned.to_numpy(bool).T & valid
    else:
        exposed = valid & (np.nan_to_num(values) != 0)
    begin = _start_date(df.index, close, start)
    end = df.index[-1]
    duration = end - begin
    years = duration / pd.Timedelta(days=365.25)
    c = None if close is None else _buy_hold_closes(close, begin, df.index)
    s = jax.device_get((program or _table_stats)(values, exposed, c, years, periods_per_year))
    out = pd.DataFrame(index=["Start", "End", "Duration", *STAT_LABELS.values()], columns=df.columns, dtype=object)
    out.loc["Start"], out.loc["End"], out.loc["Duration"] = begin, end, duration
    for field, label in STAT_LABELS.items():
        vals = np.asarray(getattr(s, field))
        out.loc[label] = [v.item() for v in np.broadcast_to(vals, (len(df.columns),))]
    bars = pd.DatetimeIndex([begin, *df.index])
    equity = np.vstack([np.ones(len(df.columns)), np.cumprod(1 + np.nan_to_num(values.T), axis=0)])
    out.loc["Max. Drawdown Duration"] = [
        calendar_drawdown_duration(pd.Series(equity[:, j], index=bars)) for j in range(len(df.columns))
    ]
    if trades is None:
        trades = _day_trades(df, exposed)
    for label, row in _trade_rows(df, bars, trades).items():
        out.loc[label] = row
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
