"""Return evaluators of the strategy stage (docs/backtest.md#strategy-notation, #e-cmp): E_sum and E_cmp.

* :func:`evaluate_daily_returns` (E_sum, the original's ``_evaluate_daily_returns``): summed total,
  ddof-0 Sharpe. Used by entry+take-profit, highlow, MaxDiff and always-on.
* :func:`evaluate_signals` (E_cmp, ``evaluate_strategy``): signals times returns minus a cost per unit
  of position change; compounded total, ddof-1 Sharpe. Used by simple, all-signals, buy & hold and
  unprofit shutdown.

Both take one simulation's ``(days,)`` vectors and return a :class:`ReturnMetrics`; the Sharpe is 0
whenever the std is 0 or non-finite, exactly as the original.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "DEFAULT_SPREAD",
    "MIXED_FEE_FACTOR",
    "ReturnMetrics",
    "evaluate_daily_returns",
    "signal_cost",
    "evaluate_signals",
]

Array = jax.Array

# The original's module-global SPREAD at import (ask/bid ratio); the backtest sets it per symbol.
DEFAULT_SPREAD = 1.0008711461252937
# Fee factor of E_cmp when long, short and flat all occur in the signals (docs/backtest.md#e-cmp).
MIXED_FEE_FACTOR = 0.523


class ReturnMetrics(NamedTuple):
    """total, Sharpe, average daily and annual return of a daily P&L series, and the series."""

    total: Array
    sharpe: Array
    avg_daily: Array
    annual: Array
    daily: Array


def _finite_mean(x: Array) -> Array:
    finite = jnp.isfinite(x)
    count = jnp.sum(finite).astype(x.dtype)
    return jnp.where(count > 0, jnp.sum(jnp.where(finite, x, 0.0)) / jnp.maximum(count, 1), 0.0)


def _sharpe(x: Array, ddof: int, scale: float) -> Array:
    n = x.shape[-1]
    mean = jnp.mean(x)
    if n - ddof <= 0:  # static: the std is NaN, so the original reports 0
        return jnp.zeros((), jnp.float32)
    std = jnp.sqrt(jnp.sum(jnp.square(x - mean)) / (n - ddof))
    ok = jnp.isfinite(std) & (std != 0)
    return jnp.where(ok, mean / jnp.where(ok, std, 1.0) * scale, 0.0)


def evaluate_daily_returns(daily: Array, days_per_year) -> ReturnMetrics:
    r"""E_sum: summed total and ddof-0 Sharpe of a daily P&L series.

    .. math::

        total = \sum_i x_i,\quad Sharpe = \frac{\bar x}{\sigma_0(x)}\sqrt{\max(D, 1)}
        \ (0 \text{ if } \sigma_0 = 0 \text{ or non-finite}),\quad
        avg = \text{mean of finite } x_i,\quad annual = avg\cdot D.

    Args:
      daily: x, shape ``(days,)``.
      days_per_year: D (252 stocks, 365 crypto); a static number.

    Returns:
      :class:`ReturnMetrics` of float32 scalars and ``daily`` = x.
    """
    x = jnp.asarray(daily, jnp.float32)
    if x.shape[-1] == 0:
        z = jnp.zeros((), jnp.float32)
        return ReturnMetrics(z, z, z, z, x)
    avg = _finite_mean(x)
    return ReturnMetrics(jnp.sum(x), _sharpe(x, 0, max(float(days_per_year), 1.0) ** 0.5), avg, avg * days_per_year, x)


def signal_cost(signals: Array, *, fee, spread) -> Array:
    r"""Per-day trading cost of E_cmp: :math:`|s_i - s_{i-1}|\,(fee' + |1 - SPREAD|/2)`, s_{-1} = 0.

    ``fee' = 0.523 fee`` when the signals contain a positive, a negative AND a zero value, else fee.
    """
    s = jnp.asarray(signals, jnp.float32)
    mixed = jnp.any(s > 0) & jnp.any(s < 0) & jnp.any(s == 0)
    fee = jnp.asarray(fee, jnp.float32)
    unit = jnp.where(mixed, MIXED_FEE_FACTOR * fee, fee) + jnp.abs(1.0 - jnp.asarray(spread, jnp.float32)) / 2
    change = jnp.abs(jnp.diff(s, prepend=jnp.zeros((1,), jnp.float32)))
    return change * unit


def evaluate_signals(signals: Array, returns: Array, *, fee, spread=DEFAULT_SPREAD, days_per_year=252) -> ReturnMetrics:
    r"""E_cmp: net P&L of a signal series, compounded total and ddof-1 Sharpe (docs/backtest.md#e-cmp).

    .. math::

        net_i = s_i R_i - |s_i - s_{i-1}|\,c,\quad c = fee' + |1 - SPREAD|/2,\quad s_{-1} = 0

        total = \prod_i (1 + net_i) - 1,\quad Sharpe = \frac{\overline{net}}{\sigma_1(net)}\sqrt{D}
        \ (0 \text{ if } \sigma_1 = 0 \text{ or NaN}),\quad avg = \text{mean of finite } net_i,
        \quad annual = avg\cdot D.

    with ``fee' = 0.523 fee`` if s holds a positive, a negative and a zero value, else fee. There is
    no closing cost at the end. When the lengths differ the original keeps the LAST min-length items
    of both; lengths are static here, so that rule is applied by slicing.

    Args:
      signals: s, shape ``(days,)`` (+1 long, -1 short, 0 flat).
      returns: R, shape ``(days,)``.
      fee: trading fee (dynamic scalar).
      spread: SPREAD, the ask/bid ratio (dynamic scalar).
      days_per_year: D (static).

    Returns:
      :class:`ReturnMetrics` with ``daily`` = net.
    """
    s = jnp.asarray(signals, jnp.float32)
    r = jnp.asarray(returns, jnp.float32)
    n = min(s.shape[-1], r.shape[-1])
    s, r = s[s.shape[-1] - n :], r[r.shape[-1] - n :]
    if n == 0:
        z = jnp.zeros((), jnp.float32)
        return ReturnMetrics(z, z, z, z, s)
    net = s * r - signal_cost(s, fee=fee, spread=spread)
    avg = _finite_mean(net)
    total = jnp.prod(1.0 + net) - 1.0
    return ReturnMetrics(total, _sharpe(net, 1, float(days_per_year) ** 0.5), avg, avg * days_per_year, net)
