"""Per-simulation diagnostics that are not strategies (docs/backtest.md#forecast-fields, #diagnostics).

All functions take one simulation's vectors and return float32 scalars; vmap outside.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = [
    "ATR_WINDOW",
    "DOLLAR_VOLUME_WINDOW",
    "val_loss",
    "realized_volatility_pct",
    "atr_pct_14",
    "dollar_volume_20d",
    "spread_bps_estimate",
    "calibration",
]

Array = jax.Array
f32 = jnp.float32

ATR_WINDOW = 14
DOLLAR_VOLUME_WINDOW = 20


def val_loss(actual: Array, pred: Array) -> Array:
    r"""``x_val_loss`` = :math:`\frac1n\sum_i |A_i - P_i|` over the six evaluation days (2.5)."""
    a, p = jnp.asarray(actual, f32), jnp.asarray(pred, f32)
    return jnp.mean(jnp.abs(a - p))


def realized_volatility_pct(returns: Array) -> Array:
    r"""``realized_volatility_pct`` = :math:`100\,\sigma_1(R)` (sample std, ddof 1) of
    R = r_C[e-5..e]."""
    r = jnp.asarray(returns, f32)
    n = r.shape[-1]
    if n < 2:  # the original's std is NaN
        return jnp.full((), jnp.nan, f32)
    return 100.0 * jnp.sqrt(jnp.sum(jnp.square(r - jnp.mean(r))) / (n - 1))


def atr_pct_14(high: Array, low: Array, close: Array, valid: Array) -> Array:
    r"""``atr_pct_14`` = :math:`100\,\overline{TR}_{14}[e] / C[e]` (3).

    :math:`TR_t = \max(H_t - L_t, |H_t - C_{t-1}|, |L_t - C_{t-1}|)`, :math:`H - L` on the first data
    row; mean over the last 14 rows. Needs more than 14 valid rows, else 0.

    Args:
      high, low, close: price window ending at row e, shape ``(W,)``, W >= 15.
      valid: bool ``(W,)``, False for rows before the start of the data.
    """
    h, l, c = (jnp.asarray(x, f32) for x in (high, low, close))
    valid = jnp.asarray(valid, bool)
    prev_c = jnp.concatenate([c[:1], c[:-1]])
    prev_valid = jnp.concatenate([jnp.zeros((1,), bool), valid[:-1]])
    tr = jnp.maximum(h - l, jnp.maximum(jnp.abs(h - prev_c), jnp.abs(l - prev_c)))
    tr = jnp.where(prev_valid, tr, h - l)
    atr = jnp.mean(tr[-ATR_WINDOW:])
    last = c[-1]
    ok = (jnp.sum(valid) > ATR_WINDOW) & (last != 0)
    return jnp.where(ok, 100.0 * atr / jnp.where(last == 0, 1.0, last), 0.0)


def dollar_volume_20d(close: Array, volume: Array, valid: Array) -> Array:
    """``dollar_vol_20d`` = mean of Close * Volume over the last 20 (valid) rows, 0 if none."""
    c, v = jnp.asarray(close, f32)[-DOLLAR_VOLUME_WINDOW:], jnp.asarray(volume, f32)[-DOLLAR_VOLUME_WINDOW:]
    ok = jnp.asarray(valid, bool)[-DOLLAR_VOLUME_WINDOW:]
    n = jnp.sum(ok).astype(f32)
    return jnp.where(n > 0, jnp.sum(jnp.where(ok, c * v, 0.0)) / jnp.maximum(n, 1.0), 0.0)


def spread_bps_estimate(spread) -> Array:
    """``spread_bps_estimate`` = |spread - 1| * 1e4."""
    return jnp.abs(jnp.asarray(spread, f32) - 1.0) * 1e4


def calibration(pred_close: Array, returns: Array) -> tuple[Array, Array, Array]:
    r"""Least-squares line :math:`R \approx slope\,P_C[0..5] + intercept` (numpy polyfit deg 1) and
    ``calibrated_expected_move_pct`` = :math:`slope\,P_C[6] + intercept`.

    Pairs the forecasts with the SHIFTED returns R as the original does (docs/backtest.md#diagnostics). With constant
    forecasts c != 0 polyfit's scaled least squares returns the minimum-norm solution
    slope = mean(R)/(2c), intercept = mean(R)/2, reproduced here; all-zero forecasts (polyfit yields
    NaN) fall back to slope 1, intercept 0 (a decision: the original's outcome there is a failure).

    Args:
      pred_close: P_C, shape ``(7,)``.
      returns: R = r_C[e-5..e], shape ``(6,)``.

    Returns:
      (slope, intercept, calibrated) float32 scalars.
    """
    p = jnp.asarray(pred_close, f32)
    r = jnp.asarray(returns, f32)
    n = min(p.shape[-1] - 1, r.shape[-1])
    if n < 2:
        one, zero = jnp.ones((), f32), jnp.zeros((), f32)
        return one, zero, p[-1] if p.shape[-1] else zero
    x, y = p[:n], r[:n]
    mx, my = jnp.mean(x), jnp.mean(y)
    sxx = jnp.sum(jnp.square(x - mx))
    sxy = jnp.sum((x - mx) * (y - my))
    varying = (jnp.max(x) > jnp.min(x)) & (sxx > 0)  # exact test: a float32 mean of equal values may be off
    const_nonzero = (~varying) & (x[0] != 0)
    slope = jnp.where(
        varying,
        sxy / jnp.where(varying, sxx, 1.0),
        jnp.where(const_nonzero, my / (2.0 * jnp.where(const_nonzero, x[0], 1.0)), 1.0),
    )
    intercept = jnp.where(varying, my - slope * mx, jnp.where(const_nonzero, my / 2.0, 0.0))
    return slope, intercept, slope * p[-1] + intercept
