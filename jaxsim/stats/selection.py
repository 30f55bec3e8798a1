r"""Selection-bias statistics: probabilistic and deflated Sharpe ratio, probability of backtest overfitting.

* :func:`probabilistic_sharpe_ratio` (Bailey & Lopez de Prado 2012): probability that the true
  Sharpe ratio exceeds a benchmark given the estimate, its sample size and the returns' skewness
  and kurtosis.
* :func:`expected_max_sharpe`, :func:`deflated_sharpe_ratio` (Bailey & Lopez de Prado 2014): the PSR
  against the Sharpe ratio the best of N unskilled trials reaches by luck.
* :func:`pbo_cscv` (Bailey, Borwein, Lopez de Prado & Zhu 2015): combinatorially symmetric
  cross-validation over a ``(T, N)`` matrix of strategies' daily returns.

Sharpe ratios here are per period (daily, not annualised): :math:`\widehat{SR} = \bar r / s`.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr, ndtri

from jaxsim.errors import ConfigError
from jaxsim.stats.masked import masked_count, masked_mean, masked_skew_kurtosis, masked_std, valid_mask

__all__ = [
    "EULER_GAMMA",
    "probabilistic_sharpe_ratio",
    "expected_max_sharpe",
    "deflated_sharpe_ratio",
    "SelectionStats",
    "selection_stats",
    "PBOResult",
    "pbo_cscv",
]

Array = jax.Array
EULER_GAMMA = 0.5772156649015329


def probabilistic_sharpe_ratio(
    sharpe: Array,
    benchmark: Array | float,
    n_obs: Array | int,
    skew: Array | float = 0.0,
    kurtosis: Array | float = 3.0,
) -> Array:
    r"""PSR: :math:`\Phi\Big(\dfrac{(\widehat{SR}-SR^*)\sqrt{T-1}}{\sqrt{1-\hat\gamma_3\widehat{SR}
    + \frac{\hat\gamma_4-1}{4}\widehat{SR}^2}}\Big)`.

    Args:
      sharpe: per-period Sharpe estimate :math:`\widehat{SR}`.
      benchmark: per-period benchmark :math:`SR^*` (0: "beats zero").
      n_obs: number of returns T.
      skew: :math:`\hat\gamma_3`; kurtosis: :math:`\hat\gamma_4` (non-excess, 3 for a Gaussian).
    """
    sr = jnp.asarray(sharpe)
    var = 1 - skew * sr + (kurtosis - 1) / 4 * sr**2
    return ndtr((sr - benchmark) * jnp.sqrt(jnp.asarray(n_obs, sr.dtype) - 1) / jnp.sqrt(var))


def expected_max_sharpe(sharpe_variance: Array | float, n_trials: Array | int) -> Array:
    r"""Expected maximum of N unskilled trials' Sharpe ratios (false strategy theorem):

    .. math:: SR_0 = \sqrt{V[\widehat{SR}_n]}\Big((1-\gamma)\Phi^{-1}(1-\tfrac1N)
              + \gamma\Phi^{-1}(1-\tfrac1{Ne})\Big),

    :math:`\gamma` the Euler-Mascheroni constant; 0 for N = 1. ``sharpe_variance`` is the variance
    of the trials' per-period Sharpe ratios.
    """
    v = jnp.asarray(sharpe_variance)
    if not jnp.issubdtype(v.dtype, jnp.floating):
        v = v.astype(jnp.float32)
    n = jnp.maximum(jnp.asarray(n_trials, v.dtype), 1)
    z = (1 - EULER_GAMMA) * ndtri(1 - 1 / n) + EULER_GAMMA * ndtri(1 - 1 / (n * math.e))
    return jnp.where(n > 1, jnp.sqrt(v) * jnp.where(n > 1, z, 0), 0)


def deflated_sharpe_ratio(
    sharpe: Array,
    sharpe_variance: Array | float,
    n_trials: Array | int,
    n_obs: Array | int,
    skew: Array | float = 0.0,
    kurtosis: Array | float = 3.0,
) -> Array:
    r"""DSR = :func:`probabilistic_sharpe_ratio` of the selected strategy against
    :math:`SR_0` = :func:`expected_max_sharpe` (all per period)."""
    return probabilistic_sharpe_ratio(sharpe, expected_max_sharpe(sharpe_variance, n_trials), n_obs, skew, kurtosis)


class SelectionStats(NamedTuple):
    """The best-Sharpe pick of a strategy set and its selection-corrected significance."""

    best: Array  # index of the strategy with the highest Sharpe (int32)
    sharpe: Array  # (N,) per-period Sharpe ratios (ddof 1)
    psr: Array  # (N,) PSR against 0 of each strategy
    dsr: Array  # DSR of the best pick given n_trials
    sr0: Array  # expected max Sharpe under the null (per period)
    n_trials: Array


def selection_stats(
    returns: Array, mask: Array | None = None, n_trials: int | Array | None = None, columns: Array | None = None
) -> SelectionStats:
    """PSR of every strategy and DSR of the best pick from a ``(T, N)`` matrix of daily returns.

    The trials' Sharpe variance is the ddof-1 variance of the N columns' Sharpe ratios; ``n_trials``
    (default N) may exceed N when more configurations were tried than are reported. Skewness and
    kurtosis are each strategy's own (population moments).

    ``columns``: optional ``(N,)`` bool, the strategies that take part (a traced stand-in for
    ``returns[:, columns]``, so that one compiled program serves every subset): the others get NaN
    Sharpe and PSR and stay out of the pick and the Sharpe variance; ``n_trials`` then defaults to
    their number and ``best`` indexes all N columns.
    """
    r = jnp.asarray(returns)
    if r.ndim != 2:
        raise ConfigError(f"selection_stats takes a (T, n_strategies) matrix, got shape {r.shape}")
    x = r.T  # (N, T): reductions run over the last axis
    m = valid_mask(x, None if mask is None else jnp.asarray(mask).T)
    x = jnp.where(m, x, 0)
    sr = masked_mean(x, m) / masked_std(x, m, ddof=1)
    skew, kurt = masked_skew_kurtosis(x, m)
    n = masked_count(m)
    psr = probabilistic_sharpe_ratio(sr, 0.0, n, skew, kurt)
    if columns is None:
        n_tr = jnp.asarray(x.shape[0] if n_trials is None else n_trials, jnp.int32)
        v = jnp.nanvar(sr, ddof=1) if x.shape[0] > 1 else jnp.zeros((), sr.dtype)
    else:
        live = jnp.asarray(columns, bool)
        n_live = masked_count(live)
        sr, psr = jnp.where(live, sr, jnp.nan), jnp.where(live, psr, jnp.nan)
        n_tr = jnp.asarray(n_live if n_trials is None else n_trials, jnp.int32)
        v = jnp.where(n_live > 1, jnp.nanvar(sr, ddof=1), jnp.zeros((), sr.dtype))
    best = jnp.nanargmax(sr).astype(jnp.int32)
    sr0 = expected_max_sharpe(v, n_tr)
    dsr = probabilistic_sharpe_ratio(sr[best], sr0, n[best], skew[best], kurt[best])
    return SelectionStats(best, sr, psr, dsr, sr0, n_tr)


class PBOResult(NamedTuple):
    """CSCV output: PBO and, per split c, the logit, the in-sample pick and its out-of-sample rank."""

    pbo: Array  # share of splits with logit <= 0
    logits: Array  # (C,) log(w / (1 - w)), w = OOS rank of the IS best / (N + 1)
    is_best: Array  # (C,) int32 strategy chosen in sample
    oos_rank: Array  # (C,) its out-of-sample rank, 1 (worst) .. N (best)


def _block_moments(returns: Array, mask: Array | None, n_blocks: int, rows: Array | None):
    """Per block and strategy: valid days, sum and sum of squares, each ``(S, N)``, and the block size.

    The used rows (``rows``, default all) are taken in order; their oldest ``n mod S`` are dropped
    and the rest cut into S blocks of ``n // S`` (traced: the rows may be a traced mask). Each block
    is gathered into a ``(S, T // S, N)`` array, zero beyond its size.
    """
    r = jnp.asarray(returns)
    if not jnp.issubdtype(r.dtype, jnp.floating):
        r = r.astype(jnp.float32)
    m = valid_mask(r, mask)
    T, N = r.shape
    used = jnp.ones(T, bool) if rows is None else jnp.asarray(rows, bool)
    order = jnp.argsort(~used, stable=True)  # the used rows first, in order
    n = masked_count(used)
    size = n // n_blocks
    drop = n - size * n_blocks  # the oldest days that do not fill a block
    j = jnp.arange(T // n_blocks)
    inside = j[None, :] < size  # (1, T // S)
    at = order[jnp.where(inside, drop + jnp.arange(n_blocks)[:, None] * size + j[None, :], 0)]  # (S, T // S)
    keep = inside[..., None] & m[at]
    r = jnp.where(keep, r[at], 0)
    w = keep.astype(r.dtype)
    return jnp.sum(w, 1), jnp.sum(r, 1), jnp.sum(r * r, 1), size  # each (S, N)


def pbo_cscv(returns: Array, mask: Array | None = None, n_blocks: int = 16, rows: Array | None = None) -> PBOResult:
    r"""Probability of backtest overfitting by combinatorially symmetric cross-validation.

    The ``(T, N)`` matrix is cut into ``n_blocks`` = S consecutive blocks of :math:`\lfloor T/S\rfloor`
    days (the oldest :math:`T \bmod S` days are dropped). For each of the :math:`\binom{S}{S/2}`
    ways to pick S/2 blocks as the in-sample set (the rest is out of sample): :math:`n^*` = the
    strategy with the best in-sample per-period Sharpe ratio (ddof 1; ties: lowest index), its
    out-of-sample rank :math:`\omega` among the N strategies (1 = worst; ties count in its favour,
    so identical strategies rank N), :math:`\bar\omega = \omega/(N+1)`, logit
    :math:`\lambda = \log(\bar\omega/(1-\bar\omega))`. PBO = share of splits with :math:`\lambda\le 0`.

    Deterministic (every split is used). The splits are built on the host at trace time; S <= 20.

    ``rows``: optional ``(T,)`` bool, the days to use (a traced stand-in for ``returns[rows]``, e.g.
    the days every strategy has a value, so that one compiled program serves every such subset):
    the blocks are cut from those days as above; PBO is NaN when they leave fewer than 2 days per block.
    """
    r = jnp.asarray(returns)
    if r.ndim != 2:
        raise ConfigError(f"pbo_cscv takes a (T, n_strategies) matrix, got shape {r.shape}")
    if n_blocks < 2 or n_blocks % 2 or n_blocks > 20:
        raise ConfigError(f"n_blocks must be even and in [2, 20], got {n_blocks}")
    if rows is None and r.shape[0] < 2 * n_blocks:
        raise ConfigError(f"pbo_cscv needs at least 2 days per block: {r.shape[0]} days for {n_blocks} blocks")
    combos = np.array(list(itertools.combinations(range(n_blocks), n_blocks // 2)))
    ins = np.zeros((len(combos), n_blocks), np.float32)
    ins[np.arange(len(combos))[:, None], combos] = 1
    cnt, s1, s2, size = _block_moments(r, mask, n_blocks, rows)
    ins = jnp.asarray(ins, s1.dtype)

    def sharpe(sel):  # (C, S) block selection -> (C, N) per-period Sharpe
        n, a, b = sel @ cnt, sel @ s1, sel @ s2
        mean = a / jnp.maximum(n, 1)
        var = (b - n * mean**2) / jnp.maximum(n - 1, 1)
        return jnp.where((n > 1) & (var > 0), mean / jnp.sqrt(jnp.where(var > 0, var, 1)), -jnp.inf)

    sr_is, sr_oos = sharpe(ins), sharpe(1 - ins)
    best = jnp.argmax(sr_is, axis=1).astype(jnp.int32)
    chosen = jnp.take_along_axis(sr_oos, best[:, None], axis=1)
    rank = jnp.sum(sr_oos <= chosen, axis=1).astype(jnp.int32)
    n_strat = r.shape[1]
    w = rank.astype(s1.dtype) / (n_strat + 1)
    logits = jnp.log(w / (1 - w))
    pbo = jnp.mean((logits <= 0).astype(logits.dtype))
    return PBOResult(jnp.where(size >= 2, pbo, jnp.nan), logits, best, rank)
