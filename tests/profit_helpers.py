"""The original's older ``loss_utils`` profit helpers (docs/backtest.md#legacy-profit-helpers, golden case B).

The backtester does not call them; they are here only so that golden case B checks their formulas.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxsim.sim.profit import TRADING_FEE


def legacy_trading_profits_list(y, positions, *, fee=TRADING_FEE):
    r"""Per-element :math:`q_+ y + q_- y - |q|\,fee` (``get_trading_profits_list``, fee 0.0005)."""
    y, q = (jnp.asarray(a, jnp.float32) for a in (y, positions))
    return jnp.clip(q, 0.0, 10.0) * y + jnp.clip(q, -10.0, 0.0) * y - jnp.abs(q) * fee


def legacy_trading_profit(y, positions, *, fee=TRADING_FEE):
    """Mean of :func:`legacy_trading_profits_list` (``calculate_trading_profit_torch``)."""
    return jnp.mean(legacy_trading_profits_list(y, positions, fee=fee))


def legacy_trading_profit_buy_only(y, positions, *, fee=TRADING_FEE):
    r"""Mean of :math:`q_+ y - |q|\,fee` (``calculate_trading_profit_torch_buy_only``)."""
    y, q = (jnp.asarray(a, jnp.float32) for a in (y, positions))
    return jnp.mean(jnp.clip(q, 0.0, 10.0) * y - jnp.abs(q) * fee)


def legacy_buysell_profit_values(close, high, high_pred, low, low_pred, positions):
    r"""Older PF variant without an entry-fill test (``..._with_buysell_profit_values``):

    .. math::

        q_+ (hp'[hp' \le h] + c\,[hp' > h]) + q_- (lp'[lp' \ge l] + c\,[lp' < l]) - 0.0005\,|q|.
    """
    f32 = jnp.float32
    c, h, hp, l, lp, q = (jnp.asarray(a, f32) for a in (close, high, high_pred, low, low_pred, positions))
    hp = jnp.clip(hp, 0.0, 10.0)
    lp = jnp.clip(lp, -1.0, 0.0)
    long = jnp.clip(q, 0.0, 10.0) * jnp.where(hp <= h, hp, c)
    short = jnp.clip(q, -10.0, 0.0) * jnp.where(lp >= l, lp, c)
    return long + short - jnp.abs(q) * TRADING_FEE
