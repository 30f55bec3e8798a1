r"""Forecast skill of one target: point errors against the naive (zero-return) forecaster, direction,
and the calibration of the forecast distribution.

Inputs per target: ``point`` ``(T,)`` forecasts of the return, ``realised`` ``(T,)`` realised
returns, an optional ``mask`` ``(T,)`` of valid days and optional ``draws`` ``(T, S)`` samples of the
forecast distribution (samples on the last axis, as :class:`jaxsim.forecast.interface.Forecast`).
vmap over targets and stocks.

* MAE, RMSE and skill scores :math:`1 - \mathrm{MAE}/\mathrm{MAE}_0`, :math:`1 - \mathrm{RMSE}/\mathrm{RMSE}_0`
  where the naive forecaster predicts 0 (:math:`\mathrm{MAE}_0 = \overline{|y|}`,
  :math:`\mathrm{RMSE}_0 = \sqrt{\overline{y^2}}`); > 0 beats it, the naive forecaster scores exactly 0.
* Directional accuracy: share of days with :math:`\operatorname{sign}\hat y = \operatorname{sign} y`
  among days where both are non-zero (a zero realised move has no direction, a zero forecast makes
  no call), with the one-sided binomial p-value :math:`P(X\ge k)`, :math:`X\sim\mathrm{Bin}(n, 1/2)`.
* CRPS of the draws (:func:`crps_ensemble`), coverage of the 10-90% band of the draws, PIT
  histogram (10 equal bins of :math:`F(y)`, the draws' empirical CDF at the realised value).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import betainc

from jaxsim.stats.masked import masked_count, masked_mean, valid_mask

__all__ = ["crps_ensemble", "binomial_sf", "pit_values", "SkillStats", "forecast_skill"]

Array = jax.Array


def crps_ensemble(draws: Array, observed: Array, fair: bool = False, presorted: bool = False) -> Array:
    r"""CRPS of an ensemble ``draws`` ``(..., S)`` for ``observed`` ``(...)`` (energy form, sorted O(S log S)):

    .. math:: \mathrm{CRPS} = \frac1S\sum_i|x_i-y| - \frac{1}{2S^2}\sum_{i,j}|x_i-x_j|,
              \qquad \sum_{i,j}|x_i-x_j| = 2\sum_{i=1}^S(2i-S-1)x_{(i)}

    (the CRPS of the empirical distribution, as ``properscoring.crps_ensemble``). ``fair=True``
    divides the second term by :math:`2S(S-1)` instead (unbiased for the underlying distribution).
    A single draw gives :math:`|x-y|`. ``presorted``: the draws are already sorted ascending.
    """
    x = jnp.asarray(draws) if presorted else jnp.sort(jnp.asarray(draws), axis=-1)
    y = jnp.asarray(observed, x.dtype)
    S = x.shape[-1]
    i = jnp.arange(1, S + 1, dtype=x.dtype)
    pair_sum = 2 * jnp.sum((2 * i - S - 1) * x, axis=-1)
    denom = 2 * S * (S - 1) if fair and S > 1 else 2 * S * S
    return jnp.mean(jnp.abs(x - y[..., None]), axis=-1) - pair_sum / denom


def binomial_sf(k: Array, n: Array, p: float = 0.5) -> Array:
    r"""One-sided p-value :math:`P(X\ge k)` for :math:`X\sim\mathrm{Bin}(n,p)`: :math:`I_p(k, n-k+1)`; 1 for k = 0."""
    dtype = jnp.result_type(float)  # float64 under enable_x64, else float32
    k = jnp.asarray(k, dtype)
    n = jnp.asarray(n, dtype)
    safe = jnp.maximum(k, 1)
    return jnp.where(k <= 0, 1.0, betainc(safe, jnp.maximum(n - k + 1, 1e-30), p))


def pit_values(draws: Array, observed: Array) -> Array:
    r"""PIT :math:`F(y) = (\#\{x_i<y\} + \tfrac12\#\{x_i=y\})/S` of each day, ``(...)`` in [0, 1]."""
    x = jnp.asarray(draws)
    y = jnp.asarray(observed, x.dtype)[..., None]
    return jnp.mean((x < y) + 0.5 * (x == y), axis=-1)


class SkillStats(NamedTuple):
    """Skill of one target's forecasts (NaN where the inputs do not define the number)."""

    n_days: Array  # valid days
    mae: Array
    rmse: Array
    mae_naive: Array  # MAE of the zero forecast
    rmse_naive: Array
    mae_skill: Array  # 1 - MAE / MAE_naive
    rmse_skill: Array  # 1 - RMSE / RMSE_naive
    direction_n: Array  # days with a call and a move
    direction_accuracy: Array  # share of those with the right sign
    direction_pvalue: Array  # P(X >= hits), X ~ Bin(direction_n, 1/2)
    crps: Array  # mean CRPS of the draws (NaN without draws)
    crps_naive: Array  # mean CRPS of the zero forecast, = MAE_naive
    crps_skill: Array  # 1 - CRPS / CRPS_naive
    coverage_80: Array  # share of days inside the draws' [q0.1, q0.9] band
    pit_counts: Array  # (n_bins,) int32 PIT histogram


def forecast_skill(
    point: Array,
    realised: Array,
    mask: Array | None = None,
    draws: Array | None = None,
    band: tuple[Array, Array] | None = None,
    n_bins: int = 10,
) -> SkillStats:
    """:class:`SkillStats` of ``point`` ``(T,)`` forecasts against ``realised`` ``(T,)`` (see the module doc).

    ``draws`` ``(T, S)`` are optional: without them the CRPS and PIT fields are NaN / 0. ``band``
    ``(q0.1 (T,), q0.9 (T,))`` gives the 10-90% band directly (e.g. a quantile forecaster's);
    otherwise it is the draws' quantiles, and without either the coverage is NaN. A day is valid
    when ``mask`` holds and every input of that day is finite.
    """
    f = jnp.asarray(point)
    if not jnp.issubdtype(f.dtype, jnp.floating):
        f = f.astype(jnp.float32)
    y = jnp.asarray(realised, f.dtype)
    m = valid_mask(f, mask) & jnp.isfinite(y)
    if draws is not None:
        draws = jnp.asarray(draws, f.dtype)
        m = m & jnp.all(jnp.isfinite(draws), axis=-1)
    f, y = jnp.where(m, f, 0), jnp.where(m, y, 0)
    mae, mae0 = masked_mean(jnp.abs(f - y), m), masked_mean(jnp.abs(y), m)
    rmse, rmse0 = jnp.sqrt(masked_mean((f - y) ** 2, m)), jnp.sqrt(masked_mean(y**2, m))

    def skill(score, naive):
        return jnp.where(naive > 0, 1 - score / jnp.where(naive > 0, naive, 1), jnp.nan)

    called = m & (f != 0) & (y != 0)
    n_dir = masked_count(called)
    hits = masked_count(called & (jnp.sign(f) == jnp.sign(y)))
    acc = jnp.where(n_dir > 0, hits.astype(f.dtype) / jnp.maximum(n_dir, 1).astype(f.dtype), jnp.nan)
    pval = binomial_sf(hits, n_dir).astype(f.dtype)
    nan = jnp.full((), jnp.nan, f.dtype)
    lo = hi = None
    if band is not None:
        lo, hi = (jnp.asarray(b, f.dtype) for b in band)
    if draws is None:
        crps, pit = nan, jnp.zeros(n_bins, jnp.int32)
    else:
        d = jnp.where(m[:, None], draws, 0)
        crps = masked_mean(crps_ensemble(d, y), m)
        if band is None:
            lo, hi = jnp.quantile(d, jnp.array([0.1, 0.9], f.dtype), axis=-1)
        u = pit_values(d, y)
        bins = jnp.clip(jnp.floor(u * n_bins).astype(jnp.int32), 0, n_bins - 1)  # F = 1 goes in the top bin
        pit = jnp.zeros(n_bins, jnp.int32).at[bins].add(m.astype(jnp.int32))
    cov = nan if lo is None else masked_mean(((y >= lo) & (y <= hi)).astype(f.dtype), m)
    return SkillStats(
        masked_count(m),
        mae,
        rmse,
        mae0,
        rmse0,
        skill(mae, mae0),
        skill(rmse, rmse0),
        n_dir,
        acc,
        pval,
        crps,
        mae0,
        skill(crps, mae0),
        cov,
        pit,
    )
