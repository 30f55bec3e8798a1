"""A smooth surrogate of the profit function PF (docs/backtest.md#profit-function) for gradient-based multiplier search.

:func:`soft_profit_values` mirrors :func:`jaxsim.sim.profit.profit_values` term by term, replacing each
0/1 comparison by a sigmoid of width ``temperature`` (in the same units as the price levels, a
fraction of the previous close) and each clamp by a softplus clamp. As ``temperature -> 0`` it
converges to the exact PF at *every* point, including the fill boundaries (see :func:`soft_step`).

The exact PF stays the function that golden tests pin and that optimisers re-score with; this
module only provides gradients that see through its jumps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsim.sim.profit import TRADING_FEE

__all__ = ["EDGE_SCALE", "edge_offset", "soft_step", "soft_clip", "soft_profit_values", "soft_total_profit"]


EDGE_SCALE = 1e-6  # epsilon of the edge offset: the soft steps are never off-centre by more than this


def edge_offset(temperature, *, scale=EDGE_SCALE):
    r"""Offset ``delta(T) = T ln(1 + eps/T)`` of a soft step's centre from the comparison boundary.

    ``delta <= eps`` (1e-6, a hundredth of a basis point) at every temperature, ``delta -> 0`` and
    ``delta / T -> infinity`` as ``T -> 0``. So a step centred ``delta`` inside the true side of a
    strict comparison tends to 0 *on* the boundary (where the strict test is false), one centred
    ``delta`` inside the false side of a non-strict comparison tends to 1 there (where the
    non-strict test is true), and at the working temperatures (``T >> eps``) the steps are centred.
    """
    t = jnp.asarray(temperature, jnp.float32)
    return t * jnp.log1p(scale / t)


def soft_step(x, temperature, *, strict):
    r"""Smooth indicator of ``[x > 0]`` (``strict=True``) or ``[x >= 0]`` (``strict=False``).

    .. math::

        s_T(x) = \sigma\big((x \mp \delta(T)) / T\big), \qquad \delta(T) = T \ln(1 + \epsilon/T)

    The centre sits on the side where the exact test flips, so the pointwise limit as ``T -> 0`` is
    the exact indicator for every ``x`` (0 at ``x = 0`` when strict, 1 when not).

    Args:
      x: signed distance to the boundary, any shape.
      temperature: positive width ``T`` in the units of ``x``.
      strict: keyword-only; whether the exact test is ``>`` (True) or ``>=`` (False).

    Returns:
      values in (0, 1), the shape of ``x``.
    """
    t = jnp.asarray(temperature, jnp.float32)
    shift = edge_offset(t)
    return jax.nn.sigmoid((x - shift) / t if strict else (x + shift) / t)


def soft_clip(x, lo, hi, temperature):
    r"""Softplus clamp ``y = x + T softplus((lo - x)/T) - T softplus((x - hi)/T)``.

    Within ``T ln 2`` of ``clip(x, lo, hi)`` everywhere (for ``hi - lo >> T``), equal in the limit
    ``T -> 0``, bit-identical to ``x`` well inside the bounds (written as corrections to ``x``, so
    a level that exactly touches a price stays exactly touching in float32), with a gradient that
    fades like ``exp((x - lo)/T)`` below ``lo`` instead of vanishing abruptly.
    """
    t = jnp.asarray(temperature, jnp.float32)
    return x + t * jax.nn.softplus((lo - x) / t) - t * jax.nn.softplus((x - hi) / t)


def soft_profit_values(
    close, high, high_pred, low, low_pred, positions, *, temperature, close_at_eod=False, fee=TRADING_FEE
):
    r"""Smooth PF: :func:`jaxsim.sim.profit.profit_values` with relaxed fills, exits and clamps.

    With ``s_T`` from :func:`soft_step` (strict for the fills, non-strict for the take-profit
    tests, as in the exact PF) and softplus clamps:

    .. math::

        hp' = \mathrm{softclip}_T(hp, 0, 10), \quad lp' = \mathrm{softclip}_T(lp, -1, 0)

        B = s_T^{>}(lp' - l), \quad S = s_T^{>}(h - hp'), \quad
        U = s_T^{\ge}(h - hp'), \quad D = s_T^{\ge}(lp' - l)

        \text{eod:}\quad PF_T = q_+ (c - lp') B + q_- (c - hp') S - fee\,|q|\,(B + S - BS)

        \text{intraday:}\quad PF_T = q_+ B\big((hp' - lp') U + (c - lp')(1 - U)\big)
            + q_- S\big((lp' - hp') D + (c - hp')(1 - D)\big) - fee\,|q|\,B S

    ``PF_T -> PF`` pointwise as ``T -> 0``. Positions are clamped exactly (they are not searched).

    Args:
      close, high, high_pred, low, low_pred, positions: as in :func:`jaxsim.sim.profit.profit_values`,
        broadcastable, typically ``(days,)``.
      temperature: keyword-only; positive relaxation width ``T`` in return units (e.g. 1e-3).
      close_at_eod: keyword-only static bool; True exits every filled position at the close.
      fee: keyword-only; fee per unit of position.

    Returns:
      float32 array of smooth daily P&L, the broadcast shape of the inputs.
    """
    f32 = jnp.float32
    c, h, hp, l, lp, q = (jnp.asarray(a, f32) for a in (close, high, high_pred, low, low_pred, positions))
    fee = jnp.asarray(fee, f32)
    t = jnp.asarray(temperature, f32)
    hp = soft_clip(hp, 0.0, 10.0, t)
    lp = soft_clip(lp, -1.0, 0.0, t)
    q_long = jnp.clip(q, 0.0, 10.0)
    q_short = jnp.clip(q, -10.0, 0.0)
    buy_fill = soft_step(lp - l, t, strict=True)  # [lp' > l]
    sell_fill = soft_step(h - hp, t, strict=True)  # [hp' < h]
    if close_at_eod:
        pnl = q_long * (c - lp) * buy_fill + q_short * (c - hp) * sell_fill
        traded = buy_fill + sell_fill - buy_fill * sell_fill  # soft OR
    else:
        take_high = soft_step(h - hp, t, strict=False)  # [hp' <= h]
        take_low = soft_step(lp - l, t, strict=False)  # [lp' >= l]
        long_exit = take_high * (hp - lp) + (1.0 - take_high) * (c - lp)
        short_exit = take_low * (lp - hp) + (1.0 - take_low) * (c - hp)
        pnl = q_long * buy_fill * long_exit + q_short * sell_fill * short_exit
        traded = buy_fill * sell_fill  # soft AND
    return pnl - fee * jnp.abs(q) * traded


def soft_total_profit(
    close, high, high_pred, low, low_pred, positions, *, temperature, close_at_eod=False, fee=TRADING_FEE
):
    """Sum of :func:`soft_profit_values` over all elements (days, and position rows if stacked)."""
    return jnp.sum(
        soft_profit_values(
            close,
            high,
            high_pred,
            low,
            low_pred,
            positions,
            temperature=temperature,
            close_at_eod=close_at_eod,
            fee=fee,
        )
    )
