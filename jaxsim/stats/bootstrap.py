r"""Stationary block bootstrap (Politis & Romano 1994) with the Politis-White automatic block length.

The series is a ``(T,)`` array of daily returns with a validity mask; masked days are removed first
(the valid days, in order, are resampled as one circular series of length :math:`n`). Resamples are
drawn from an explicit PRNG key, vectorised over resamples (no Python loop), so the same key gives
the same intervals; vmap over strategies or stocks.

Resampling rule: each resampled day starts a new block with probability :math:`1/b` (the first day
always does) at a uniform random day, else continues with the day after the previous one (wrapping
around), so block lengths are geometric with mean :math:`b`.

Intervals are percentile intervals of the resampled statistic: :math:`[q_{\alpha/2}, q_{1-\alpha/2}]`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsim.stats.masked import compress, masked_count, masked_mean, masked_var, valid_mask

__all__ = [
    "BootstrapStats",
    "BootstrapCI",
    "optimal_block_length",
    "stationary_bootstrap_indices",
    "default_statistics",
    "bootstrap_distribution",
    "percentile_interval",
    "bootstrap_ci",
]

Array = jax.Array


def optimal_block_length(x: Array, mask: Array | None = None) -> Array:
    r"""Politis & White (2004) optimal mean block length of the stationary bootstrap, with the
    Patton, Politis & White (2009) correction; tuning constants of Patton's reference code.

    With :math:`n` valid days, :math:`\hat R(k) = n^{-1}\sum_t (x_t-\bar x)(x_{t+k}-\bar x)` and
    :math:`\hat\rho(k) = \hat R(k)/\hat R(0)`:

    * :math:`K_n = \max(5, \lfloor\log_{10} T\rfloor)`, :math:`m_\max = \lceil\sqrt n\rceil + K_n`,
      :math:`b_\max = \lceil\min(3\sqrt n, n/3)\rceil`;
    * :math:`\hat m` is the first lag that starts a run of :math:`K_n` lags (ending at most at
      :math:`m_\max`) with :math:`|\hat\rho(k)| < 2\sqrt{\log_{10}(n)/n}`;
      :math:`M = \min(2\max(\hat m, 1), m_\max)`, or :math:`m_\max` without such a run;
    * flat-top kernel :math:`\lambda(s) = 1` for :math:`|s|\le 1/2`, :math:`2(1-|s|)` up to 1, 0 beyond;
    * :math:`\hat G = \sum_{|k|\le M}\lambda(k/M)|k|\hat R(k)`,
      :math:`\hat g(0) = \sum_{|k|\le M}\lambda(k/M)\hat R(k)`, :math:`\hat D_{SB} = 2\hat g(0)^2`;
    * :math:`b = \min\big((2\hat G^2/\hat D_{SB})^{1/3} n^{1/3},\ b_\max\big)`.

    Args:
      x: ``(T,)`` series; mask: ``(T,)`` valid days (default: finite days).
    Returns:
      the block length (float scalar, not rounded, may be < 1 for anti-persistent series: the
      bootstrap floors it at 1; NaN for a constant series).
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    if x.ndim != 1:
        raise ValueError(f"optimal_block_length takes a (T,) series (vmap for more), got shape {x.shape}")
    T = x.shape[0]
    m = valid_mask(x, mask)
    xc, n = compress(x, m)
    nf = jnp.maximum(n, 1).astype(x.dtype)
    inside = jnp.arange(T) < n
    e = jnp.where(inside, xc - jnp.sum(xc) / nf, 0)
    kn = max(5, int(math.log10(max(T, 1))))  # static; equals the valid-days rule below 10**6 days
    n_lags = int(math.ceil(math.sqrt(T))) + kn  # static upper bound of m_max
    padded = jnp.pad(e, (0, n_lags))
    lags = jnp.arange(n_lags + 1)
    R = jax.vmap(lambda k: e @ jax.lax.dynamic_slice(padded, (k,), (T,)))(lags) / nf  # R[k], lag k
    m_max = jnp.ceil(jnp.sqrt(nf)).astype(jnp.int32) + kn
    b_max = jnp.ceil(jnp.minimum(3 * jnp.sqrt(nf), nf / 3))
    crit = 2 * jnp.sqrt(jnp.log10(nf) / nf)
    insig = (jnp.abs(R[1:] / R[0]) < crit).astype(jnp.int32)  # index i is lag i + 1
    csum = jnp.concatenate([jnp.zeros(1, jnp.int32), jnp.cumsum(insig)])
    start_lag = jnp.arange(1, n_lags - kn + 2)  # a run of kn lags starting here fits in n_lags
    run = (csum[start_lag - 1 + kn] - csum[start_lag - 1] == kn) & (start_lag + kn - 1 <= m_max)
    found = jnp.any(run)
    m_hat = start_lag[jnp.argmax(run)]
    M = jnp.minimum(jnp.where(found, 2 * jnp.maximum(m_hat, 1), m_max), m_max).astype(x.dtype)
    k = lags[1:].astype(x.dtype)
    s = k / M
    lam = jnp.where(s <= 0.5, 1.0, jnp.where(s <= 1, 2 * (1 - s), 0.0))
    G = jnp.sum(2 * lam * k * R[1:])
    g0 = R[0] + jnp.sum(2 * lam * R[1:])
    b = (2 * G**2 / (2 * g0**2)) ** (1 / 3) * nf ** (1 / 3)
    return jnp.minimum(b, b_max)


def stationary_bootstrap_indices(
    key: Array, n: Array | int, block_length: Array | float, n_resamples: int, length: int
) -> Array:
    """``(n_resamples, length)`` int32 indices into a circular series of ``n`` days (see module doc).

    ``n`` and ``block_length`` may be traced; ``n_resamples`` and ``length`` are static. Positions
    ``>= n`` of each row are filler for static shapes (a resample has ``n`` days).
    """
    k_start, k_new = jax.random.split(key)
    n = jnp.maximum(jnp.asarray(n, jnp.int32), 1)
    p = 1 / jnp.maximum(jnp.asarray(block_length, jnp.float32), 1)
    starts = jax.random.randint(k_start, (n_resamples, length), 0, n, dtype=jnp.int32)
    new = (jax.random.uniform(k_new, (n_resamples, length)) < p).at[:, 0].set(True)
    t = jnp.arange(length, dtype=jnp.int32)
    s = jax.lax.cummax(jnp.where(new, t, 0), axis=1)  # day the current block started
    return (jnp.take_along_axis(starts, s, axis=1) + t - s) % n


class BootstrapStats(NamedTuple):
    """Statistics the bootstrap reports by default (each over the series' valid days)."""

    mean_daily: Array  # arithmetic mean daily return
    sharpe: Array  # sqrt(P) * mean / std (ddof 1), empyrical's annualised Sharpe
    cagr: Array  # prod(1 + r) ** (P / n) - 1, the compounded annual return


def default_statistics(returns: Array, mask: Array, periods_per_year: float = 252) -> BootstrapStats:
    r"""Mean daily return, annualised Sharpe :math:`\sqrt P\bar r/s` and CAGR :math:`E_n^{P/n}-1` over the last axis."""
    r = jnp.where(mask, returns, 0)
    n = masked_count(mask).astype(r.dtype)
    mean = masked_mean(r, mask)
    sd = jnp.sqrt(masked_var(r, mask, ddof=1))
    sharpe = jnp.sqrt(periods_per_year) * mean / jnp.where(sd > 0, sd, jnp.nan)
    log_growth = jnp.sum(jnp.log1p(r), axis=-1)
    return BootstrapStats(mean, sharpe, jnp.expm1(log_growth * periods_per_year / n))


def bootstrap_distribution(
    key: Array,
    returns: Array,
    mask: Array | None = None,
    *,
    n_resamples: int = 1000,
    block_length: Array | float | None = None,
    statistic: Callable[[Array, Array], object] | None = None,
    periods_per_year: float = 252,
) -> tuple[object, Array]:
    """Statistic of ``n_resamples`` stationary-bootstrap resamples of one ``(T,)`` series.

    Args:
      key: PRNG key (the only source of randomness).
      returns, mask: the ``(T,)`` series and its valid days.
      n_resamples: static number of resamples R.
      block_length: mean block length; default :func:`optimal_block_length` (floored at 1).
      statistic: ``f(resamples (R, T), mask (R, T)) -> pytree of (R,)`` reducing the last axis;
        default :func:`default_statistics`.
    Returns:
      ``(pytree of (R,) resampled statistics, block length used)``.
    """
    returns = jnp.asarray(returns)
    m = valid_mask(returns, mask)
    xc, n = compress(returns, m)
    b = optimal_block_length(returns, m) if block_length is None else jnp.asarray(block_length, xc.dtype)
    b = jnp.where(jnp.isfinite(b), jnp.maximum(b, 1), 1)
    T = returns.shape[-1]
    idx = stationary_bootstrap_indices(key, n, b, n_resamples, T)
    rs_mask = jnp.broadcast_to(jnp.arange(T) < n, (n_resamples, T))
    resampled = jnp.where(rs_mask, xc[idx], 0)
    if statistic is None:
        return default_statistics(resampled, rs_mask, periods_per_year), b
    return statistic(resampled, rs_mask), b


def percentile_interval(samples: Array, level: float = 0.95) -> tuple[Array, Array]:
    """Percentile interval ``(q_{(1-level)/2}, q_{(1+level)/2})`` over the last axis (NaN samples ignored)."""
    q = jnp.nanquantile(samples, jnp.array([(1 - level) / 2, (1 + level) / 2], samples.dtype), axis=-1)
    return q[0], q[1]


class BootstrapCI(NamedTuple):
    """Point estimates, percentile interval bounds and the mean block length used."""

    estimate: BootstrapStats
    lower: BootstrapStats
    upper: BootstrapStats
    block_length: Array


def bootstrap_ci(
    key: Array,
    returns: Array,
    mask: Array | None = None,
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    block_length: Array | float | None = None,
    periods_per_year: float = 252,
) -> BootstrapCI:
    """Percentile confidence intervals of mean daily return, Sharpe and CAGR of one ``(T,)`` series.

    vmap over strategies and stocks (``jax.vmap(bootstrap_ci, in_axes=(None, 0, 0))`` shares the key:
    with equal block lengths the strategies are resampled on the same days).
    """
    returns = jnp.asarray(returns)
    if not jnp.issubdtype(returns.dtype, jnp.floating):
        returns = returns.astype(jnp.float32)
    m = valid_mask(returns, mask)
    samples, b = bootstrap_distribution(
        key, returns, m, n_resamples=n_resamples, block_length=block_length, periods_per_year=periods_per_year
    )
    bounds = [percentile_interval(s, level) for s in samples]
    estimate = default_statistics(returns, m, periods_per_year)
    return BootstrapCI(
        estimate, BootstrapStats(*(lo for lo, _ in bounds)), BootstrapStats(*(hi for _, hi in bounds)), b
    )
