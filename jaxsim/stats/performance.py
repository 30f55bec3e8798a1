r"""Performance statistics of a daily simple-return series, as backtesting.py reports them.

Input: ``returns`` ``(..., T)``, the fraction gained each day (0.01 = +1%), with an optional boolean
``mask`` (False = the day is missing and is treated as deleted; non-finite days are masked too).
Every function reduces over the last axis, is pure and jit/vmap-friendly, and keeps the input's
float dtype (float32 by default, float64 under ``jax.experimental.enable_x64``).

Notation: :math:`r_1..r_n` the valid days, :math:`P` = ``periods_per_year`` (252), equity
:math:`E_t = \prod_{s\le t}(1+r_s)` from :math:`E_0 = 1`, geometric mean daily return
:math:`g = \exp(\tfrac1n\sum\log(1+r_t)) - 1` (backtesting.py sets :math:`g=0` when some
:math:`1+r_t\le 0`).

Two conventions live side by side:

* backtesting.py (``_stats.compute_stats``, v0.6): :func:`annual_return`, :func:`annual_volatility`,
  :func:`sharpe_ratio`, :func:`sortino_ratio`, :func:`calmar_ratio`; these are the rows of
  :func:`performance_stats`.
* empyrical (arithmetic mean, ddof 1): :func:`arithmetic_sharpe_ratio`,
  :func:`arithmetic_sortino_ratio`, :func:`simple_annual_volatility` (the bootstrap and the
  deflated Sharpe ratio use the arithmetic Sharpe).

A "trade" of a daily series here is one day with a position: the engine opens and closes each
position within its simulation day, so a round trip lasts one day and its return is that day's
return. :func:`jaxsim.stats.frames.stats_frame` computes the table's ``# Trades``, ``Win Rate [%]``,
``Profit Factor``, ``Expectancy [%]``, ``Exposure Time [%]`` and ``Max. Drawdown Duration`` on the
host from the round trips and dates (backtesting.py's bar and calendar conventions); the fields of
the same names here are their daily-array counterparts.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsim.stats.masked import masked_count, masked_mean, masked_sum, masked_var, valid_mask

__all__ = [
    "PERIODS_PER_YEAR",
    "STAT_LABELS",
    "PerformanceStats",
    "equity_curve",
    "drawdown",
    "max_drawdown",
    "max_drawdown_duration",
    "total_return",
    "buy_and_hold_return",
    "exposure_time",
    "geometric_mean_return",
    "annual_return",
    "annual_volatility",
    "cagr",
    "sharpe_ratio",
    "sortino_ratio",
    "calmar_ratio",
    "TradeStats",
    "trade_stats",
    "arithmetic_sharpe_ratio",
    "arithmetic_sortino_ratio",
    "simple_annual_volatility",
    "performance_stats",
]

Array = jax.Array
PERIODS_PER_YEAR = 252  # trading days per year (backtesting.py's daily value without weekends)


def _prep(returns, mask):
    returns = jnp.asarray(returns)
    if not jnp.issubdtype(returns.dtype, jnp.floating):
        returns = returns.astype(jnp.float32)
    m = valid_mask(returns, mask)
    return jnp.where(m, returns, 0), m


def equity_curve(returns: Array, mask: Array | None = None) -> Array:
    r""":math:`E_t = \prod_{s\le t}(1+r_s)`, ``(..., T)``; flat on masked days."""
    r, _ = _prep(returns, mask)
    return jnp.cumprod(1 + r, axis=-1)


def drawdown(returns: Array, mask: Array | None = None) -> Array:
    r"""Drawdown fraction :math:`1 - E_t/\max(1, \max_{s\le t}E_s)` (>= 0), ``(..., T)``.

    The starting equity 1 counts as a peak, as in backtesting.py and empyrical.
    """
    eq = equity_curve(returns, mask)
    peak = jnp.maximum(jax.lax.cummax(eq, axis=eq.ndim - 1), 1)
    return 1 - eq / peak


def max_drawdown(returns: Array, mask: Array | None = None) -> Array:
    r"""Maximum drawdown as a negative fraction, :math:`-\max_t \mathrm{dd}_t` (backtesting.py's sign)."""
    return -jnp.max(drawdown(returns, mask), axis=-1)


def max_drawdown_duration(returns: Array, mask: Array | None = None) -> Array:
    r"""Longest drawdown in valid days (int32): from the last peak to the recovery day, or to the end.

    A drawdown that starts after peak day :math:`p` and is first back at the peak on day :math:`q`
    lasts :math:`q-p` days (backtesting.py counts the same bars; the start, day 0, is a peak). A
    drawdown still open on the last day lasts until it. 0 when equity never falls below its peak.
    """
    _, m = _prep(returns, mask)
    dd = drawdown(returns, mask)
    tau = jnp.cumsum(m, axis=-1, dtype=jnp.int32)  # valid days elapsed: masked days take no time
    at_peak = dd == 0
    last_peak = jax.lax.cummax(jnp.where(at_peak, tau, 0), axis=dd.ndim - 1)
    pad = [(0, 0)] * (dd.ndim - 1) + [(1, 0)]
    prev_last_peak = jnp.pad(last_peak, pad)[..., :-1]
    prev_dd = jnp.pad(dd, pad)[..., :-1]
    in_dd = (dd > 0) | (prev_dd > 0)  # below the peak, or the day it is regained
    return jnp.max(jnp.where(in_dd, tau - prev_last_peak, 0), axis=-1)


def total_return(returns: Array, mask: Array | None = None) -> Array:
    r"""Compounded return :math:`E_n - 1` (backtesting.py's ``Return [%]`` / 100)."""
    r, _ = _prep(returns, mask)
    return jnp.prod(1 + r, axis=-1) - 1


def buy_and_hold_return(close: Array, mask: Array | None = None) -> Array:
    r"""Buy & hold return :math:`c_\mathrm{last}/c_\mathrm{first} - 1` over the valid closes.

    Pass the closes from the day before the first return day to the last one, so that buy & hold
    spans the same days as the strategy. NaN without two valid closes.
    """
    c = jnp.asarray(close)
    m = valid_mask(c, mask)
    first = jnp.argmax(m, axis=-1)
    last = c.shape[-1] - 1 - jnp.argmax(jnp.flip(m, axis=-1), axis=-1)
    c_first = jnp.take_along_axis(c, first[..., None], axis=-1)[..., 0]
    c_last = jnp.take_along_axis(c, last[..., None], axis=-1)[..., 0]
    return jnp.where(masked_count(m) >= 2, c_last / c_first - 1, jnp.nan)


def _exposed(r: Array, m: Array, exposure: Array | None) -> Array:
    if exposure is None:
        return m & (r != 0)  # fallback: a day with a non-zero return had a position
    return m & jnp.broadcast_to(jnp.asarray(exposure, bool), m.shape)


def exposure_time(returns: Array, mask: Array | None = None, exposure: Array | None = None) -> Array:
    r"""Share of valid days with a position, in [0, 1].

    ``exposure`` is a boolean ``(..., T)`` "had a position that day"; without it a day counts as
    exposed when its return is non-zero (a flat day of an exposed strategy is then missed).
    """
    r, m = _prep(returns, mask)
    n = masked_count(m)
    return jnp.where(
        n > 0, masked_count(_exposed(r, m, exposure)).astype(r.dtype) / jnp.maximum(n, 1).astype(r.dtype), jnp.nan
    )


def geometric_mean_return(returns: Array, mask: Array | None = None) -> Array:
    r""":math:`g = \exp(\tfrac1n\sum_t\log(1+r_t)) - 1`; 0 when some :math:`1+r_t\le 0` (backtesting.py)."""
    r, m = _prep(returns, mask)
    ruined = jnp.any(m & (1 + r <= 0), axis=-1)
    g = jnp.expm1(masked_mean(jnp.log1p(jnp.where(m & (1 + r > 0), r, 0)), m))
    return jnp.where(ruined, 0, g)


def annual_return(returns: Array, mask: Array | None = None, periods_per_year: float = PERIODS_PER_YEAR) -> Array:
    r"""Annualised return :math:`(1+g)^P - 1` (backtesting.py; equals empyrical's ``annual_return``)."""
    g = geometric_mean_return(returns, mask)
    return jnp.expm1(periods_per_year * jnp.log1p(g))


def annual_volatility(returns: Array, mask: Array | None = None, periods_per_year: float = PERIODS_PER_YEAR) -> Array:
    r"""backtesting.py's annualised volatility of compounded returns (Lo 2002 style):

    .. math:: \sigma_a = \sqrt{\big(s^2 + (1+g)^2\big)^P - (1+g)^{2P}},

    :math:`s^2` the ddof-1 variance of the daily returns; evaluated as
    :math:`(1+g)^{P}\sqrt{\operatorname{expm1}(P\log(1 + s^2/(1+g)^2))}` for float32 accuracy.
    """
    r, m = _prep(returns, mask)
    g = geometric_mean_return(returns, mask)
    s2 = masked_var(r, m, ddof=1)
    base = jnp.square(1 + g)
    growth = jnp.exp(0.5 * periods_per_year * jnp.log(base))  # (1 + g) ** P
    return growth * jnp.sqrt(jnp.expm1(periods_per_year * jnp.log1p(s2 / base)))


def cagr(
    returns: Array,
    mask: Array | None = None,
    years: Array | float | None = None,
    periods_per_year: float = PERIODS_PER_YEAR,
) -> Array:
    r"""Compound annual growth rate :math:`E_n^{1/Y} - 1`.

    ``years`` :math:`Y` defaults to :math:`n/P` (then CAGR equals :func:`annual_return` and
    empyrical's ``cagr``); the pandas table passes calendar years, (End - Start) in days / 365.25, as
    backtesting.py does. NaN when :math:`Y \le 0`.
    """
    r, m = _prep(returns, mask)
    y = masked_count(m).astype(r.dtype) / periods_per_year if years is None else jnp.asarray(years, r.dtype)
    eq = jnp.prod(1 + r, axis=-1)
    return jnp.where(y > 0, jnp.power(eq, 1 / jnp.where(y > 0, y, 1)) - 1, jnp.nan)


def _nan_if_zero(den: Array) -> Array:
    return jnp.where(den == 0, jnp.nan, den)


def sharpe_ratio(returns: Array, mask: Array | None = None, periods_per_year: float = PERIODS_PER_YEAR) -> Array:
    r"""backtesting.py's Sharpe ratio (risk-free 0): :func:`annual_return` / :func:`annual_volatility`.

    NaN when the volatility is 0. For the empyrical value see :func:`arithmetic_sharpe_ratio`.
    """
    vol = annual_volatility(returns, mask, periods_per_year)
    return annual_return(returns, mask, periods_per_year) / _nan_if_zero(vol)


def _downside_deviation(r: Array, m: Array) -> Array:
    return jnp.sqrt(masked_mean(jnp.square(jnp.minimum(r, 0)), m))


def sortino_ratio(returns: Array, mask: Array | None = None, periods_per_year: float = PERIODS_PER_YEAR) -> Array:
    r"""backtesting.py's Sortino ratio:
    :math:`\big((1+g)^P-1\big) / \big(\sqrt{P}\sqrt{\tfrac1n\sum\min(r_t,0)^2}\big)`.

    +-inf when no day lost (division by a zero downside deviation, as backtesting.py).
    """
    r, m = _prep(returns, mask)
    return annual_return(returns, mask, periods_per_year) / (_downside_deviation(r, m) * jnp.sqrt(periods_per_year))


def calmar_ratio(returns: Array, mask: Array | None = None, periods_per_year: float = PERIODS_PER_YEAR) -> Array:
    r"""Calmar ratio :math:`\big((1+g)^P-1\big)/|\mathrm{MDD}|`; NaN without a drawdown."""
    return annual_return(returns, mask, periods_per_year) / _nan_if_zero(-max_drawdown(returns, mask))


class TradeStats(NamedTuple):
    """Per-trade statistics of a daily series (one trade = one exposed day)."""

    n_trades: Array  # int32
    win_rate: Array  # fraction of trades with r > 0; NaN without trades
    profit_factor: Array  # sum of gains / |sum of losses|; NaN without losses
    expectancy: Array  # arithmetic mean trade return; NaN without trades


def trade_stats(returns: Array, mask: Array | None = None, exposure: Array | None = None) -> TradeStats:
    r"""``# Trades``, win rate, profit factor :math:`\sum_{r>0} r / |\sum_{r<0} r|` and expectancy
    :math:`\bar r` over the exposed days (``exposure`` as in :func:`exposure_time`)."""
    r, m = _prep(returns, mask)
    t = _exposed(r, m, exposure)
    n = masked_count(t)
    win = jnp.where(n > 0, masked_count(t & (r > 0)).astype(r.dtype) / jnp.maximum(n, 1).astype(r.dtype), jnp.nan)
    gains = masked_sum(r, t & (r > 0))
    losses = -masked_sum(r, t & (r < 0))
    return TradeStats(n, win, gains / _nan_if_zero(losses), masked_mean(r, t))


def arithmetic_sharpe_ratio(
    returns: Array, mask: Array | None = None, periods_per_year: float = PERIODS_PER_YEAR
) -> Array:
    r"""empyrical's Sharpe ratio :math:`\sqrt{P}\,\bar r / s` (ddof-1 std, risk-free 0); NaN when s = 0."""
    r, m = _prep(returns, mask)
    return jnp.sqrt(periods_per_year) * masked_mean(r, m) / _nan_if_zero(jnp.sqrt(masked_var(r, m, ddof=1)))


def arithmetic_sortino_ratio(
    returns: Array, mask: Array | None = None, periods_per_year: float = PERIODS_PER_YEAR
) -> Array:
    r"""empyrical's Sortino ratio :math:`P\bar r / \big(\sqrt{P}\sqrt{\tfrac1n\sum\min(r_t,0)^2}\big)`."""
    r, m = _prep(returns, mask)
    return periods_per_year * masked_mean(r, m) / (_downside_deviation(r, m) * jnp.sqrt(periods_per_year))


def simple_annual_volatility(
    returns: Array, mask: Array | None = None, periods_per_year: float = PERIODS_PER_YEAR
) -> Array:
    r"""empyrical's annual volatility :math:`\sqrt{P}\,s` (ddof-1 std)."""
    r, m = _prep(returns, mask)
    return jnp.sqrt(periods_per_year) * jnp.sqrt(masked_var(r, m, ddof=1))


# field of PerformanceStats -> row label of the stats table: backtesting.py's names and units, plus
# empyrical's (= quantstats') arithmetic Sharpe and Sortino under their own labels (docs/statistics.md)
STAT_LABELS = {
    "exposure_time_pct": "Exposure Time [%]",
    "return_pct": "Return [%]",
    "buy_hold_return_pct": "Buy & Hold Return [%]",
    "return_ann_pct": "Return (Ann.) [%]",
    "volatility_ann_pct": "Volatility (Ann.) [%]",
    "cagr_pct": "CAGR [%]",
    "sharpe_ratio": "Sharpe Ratio",
    "sortino_ratio": "Sortino Ratio",
    "sharpe_empyrical": "Sharpe (empyrical)",
    "sortino_empyrical": "Sortino (empyrical)",
    "calmar_ratio": "Calmar Ratio",
    "max_drawdown_pct": "Max. Drawdown [%]",
    "max_drawdown_duration": "Max. Drawdown Duration",
    "n_trades": "# Trades",
    "win_rate_pct": "Win Rate [%]",
    "profit_factor": "Profit Factor",
    "expectancy_pct": "Expectancy [%]",
}


class PerformanceStats(NamedTuple):
    """The stats table of one or many daily series, in the table's units (percent where labelled [%]).

    Fields map to rows through :data:`STAT_LABELS`; ``max_drawdown_duration`` is in valid (trading)
    days here (the pandas table reports calendar time), ``n_trades`` and ``n_days`` are int32;
    ``sharpe_empyrical`` / ``sortino_empyrical`` are :func:`arithmetic_sharpe_ratio` /
    :func:`arithmetic_sortino_ratio`. Each field has the batch shape of the input.
    """

    exposure_time_pct: Array
    return_pct: Array
    buy_hold_return_pct: Array
    return_ann_pct: Array
    volatility_ann_pct: Array
    cagr_pct: Array
    sharpe_ratio: Array
    sortino_ratio: Array
    sharpe_empyrical: Array
    sortino_empyrical: Array
    calmar_ratio: Array
    max_drawdown_pct: Array
    max_drawdown_duration: Array
    n_trades: Array
    win_rate_pct: Array
    profit_factor: Array
    expectancy_pct: Array
    n_days: Array


def performance_stats(
    returns: Array,
    mask: Array | None = None,
    *,
    exposure: Array | None = None,
    close: Array | None = None,
    close_mask: Array | None = None,
    years: Array | float | None = None,
    periods_per_year: float = PERIODS_PER_YEAR,
) -> PerformanceStats:
    """Every row of the stats table for ``returns`` ``(..., T)`` (see the module docstring).

    Args:
      returns: daily simple returns ``(..., T)``.
      mask: valid days ``(..., T)`` (default: the finite days).
      exposure: days with a position ``(..., T)``; default ``returns != 0``.
      close: closes for ``Buy & Hold Return [%]`` (``(T_c,)`` or broadcastable batch); NaN if None.
      close_mask: valid closes.
      years: calendar length for ``CAGR [%]`` (default: valid days / ``periods_per_year``).
      periods_per_year: annualisation factor P.
    """
    r, m = _prep(returns, mask)
    ts = trade_stats(r, m, exposure)
    bh = jnp.full(r.shape[:-1], jnp.nan, r.dtype) if close is None else buy_and_hold_return(close, close_mask)
    return PerformanceStats(
        exposure_time_pct=100 * exposure_time(r, m, exposure),
        return_pct=100 * total_return(r, m),
        buy_hold_return_pct=jnp.broadcast_to(100 * bh, r.shape[:-1]).astype(r.dtype),
        return_ann_pct=100 * annual_return(r, m, periods_per_year),
        volatility_ann_pct=100 * annual_volatility(r, m, periods_per_year),
        cagr_pct=100 * cagr(r, m, years, periods_per_year),
        sharpe_ratio=sharpe_ratio(r, m, periods_per_year),
        sortino_ratio=sortino_ratio(r, m, periods_per_year),
        sharpe_empyrical=arithmetic_sharpe_ratio(r, m, periods_per_year),
        sortino_empyrical=arithmetic_sortino_ratio(r, m, periods_per_year),
        calmar_ratio=calmar_ratio(r, m, periods_per_year),
        max_drawdown_pct=100 * max_drawdown(r, m),
        max_drawdown_duration=max_drawdown_duration(r, m),
        n_trades=ts.n_trades,
        win_rate_pct=100 * ts.win_rate,
        profit_factor=ts.profit_factor,
        expectancy_pct=100 * ts.expectancy,
        n_days=masked_count(m),
    )
