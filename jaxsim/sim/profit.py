"""The core profit function PF of the original backtester (docs/backtest.md#profit-function).

P&L is in units of a fraction of the previous close: a long that buys at ``lp'`` and sells at
``hp'`` earns ``hp' - lp'`` (not divided by the entry price). :func:`profit_values` mirrors
``loss_utils.calculate_profit_torch_with_entry_buysell_profit_values``; its sum over days
(:func:`total_profit`) is the MaxDiff multiplier objective.

Functions are written for one example, ``(days,)`` vectors, and batch with ``jax.vmap``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "TRADING_FEE",
    "CRYPTO_TRADING_FEE",
    "MULTIPLIER_BOUND",
    "profit_values",
    "limit_fills",
    "total_profit",
    "policies",
    "by_policy",
]

Array = jax.Array

TRADING_FEE = 0.0005  # the original's loss_utils.TRADING_FEE, charged once per filled trade
CRYPTO_TRADING_FEE = 0.0015  # fee for the five active crypto symbols (docs/backtest.md#crypto-rules)
# The MaxDiff multipliers (mh, ml) shift PF's predicted high/low levels within [-0.03, 0.03]^2, as the original.
MULTIPLIER_BOUND = 0.03


def profit_values(close, high, high_pred, low, low_pred, positions, *, close_at_eod=False, fee=TRADING_FEE):
    r"""Daily P&L of limit entries at the predicted low/high with take-profit or close exits.

    With ``hp' = clip(hp, 0, 10)``, ``lp' = clip(lp, -1, 0)``, ``q+ = clip(q, 0, 10)``,
    ``q- = clip(q, -10, 0)``, ``BuyFill = [lp' > l]`` and ``SellFill = [hp' < h]``:

    .. math::

        \text{eod:}\quad PF = q_+ (c - lp')\,BuyFill + q_- (c - hp')\,SellFill
              - fee\,|q|\,[BuyFill \lor SellFill]

        \text{intraday:}\quad PF = q_+ BuyFill\,\big((hp' - lp')[hp' \le h] + (c - lp')[hp' > h]\big)
              + q_- SellFill\,\big((lp' - hp')[lp' \ge l] + (c - hp')[lp' < l]\big)
              - fee\,|q|\,[BuyFill \land SellFill]

    Fills are strict (the price must go *through* the limit) while the take-profit tests are
    non-strict (touching the target is enough), exactly as the original compares them.

    Args:
      close: realised close-to-close change ``c``, shape ``(days,)``.
      high: realised high relative to the previous close ``h``, shape ``(days,)``.
      high_pred: predicted high level ``hp`` (sell limit / take-profit), shape ``(days,)``.
      low: realised low relative to the previous close ``l``, shape ``(days,)``.
      low_pred: predicted low level ``lp`` (buy limit / take-profit), shape ``(days,)``.
      positions: position ``q`` per day (+1 long, -1 short, 0 flat; sizes allowed), ``(days,)``.
      close_at_eod: keyword-only; True exits every filled position at the close.
      fee: keyword-only; fee per unit of position, charged once (one side).

    Returns:
      float32 array ``(days,)`` of daily P&L.

    Example (golden case A, days 0-2: both levels crossed, high not reached, low not filled):
      >>> import jax.numpy as jnp
      >>> pf = profit_values(close=jnp.array([0.01, 0.01, 0.01]), high=jnp.array([0.03, 0.015, 0.03]),
      ...                    high_pred=jnp.array([0.02, 0.02, 0.02]), low=jnp.array([-0.03, -0.03, -0.005]),
      ...                    low_pred=jnp.array([-0.02, -0.02, -0.02]), positions=jnp.array([1.0, 1.0, 1.0]))
      >>> [round(float(v), 6) for v in pf]
      [0.0395, 0.03, 0.0]

    Note: kept quirks of the original (docs/deviations.md#kept-pf-fee-rules): in eod mode an *unfilled* trade pays the
    fee when the opposite level is crossed; intraday, a filled long that exits at the close pays none.
    """
    f32 = jnp.float32
    c, h, hp, l, lp, q = (jnp.asarray(a, f32) for a in (close, high, high_pred, low, low_pred, positions))
    fee = jnp.asarray(fee, f32)
    hp = jnp.clip(hp, 0.0, 10.0)
    lp = jnp.clip(lp, -1.0, 0.0)
    q_long = jnp.clip(q, 0.0, 10.0)
    q_short = jnp.clip(q, -10.0, 0.0)
    buy_fill = lp > l
    sell_fill = hp < h
    buy, sell = buy_fill.astype(f32), sell_fill.astype(f32)  # 1/0 multipliers (NaN * 0 stays NaN)
    if close_at_eod:
        pnl = q_long * (c - lp) * buy + q_short * (c - hp) * sell
        traded = buy_fill | sell_fill
    else:
        long_exit = jnp.where(hp <= h, hp - lp, c - lp)
        short_exit = jnp.where(lp >= l, lp - hp, c - hp)
        pnl = q_long * buy * long_exit + q_short * sell * short_exit
        traded = buy_fill & sell_fill
    return pnl - fee * jnp.abs(q) * traded.astype(f32)


def limit_fills(close, high, high_pred, low, low_pred, positions, *, close_at_eod=False) -> tuple[Array, Array, Array]:
    r"""The round trips of :func:`profit_values`: ``(held, entry, exit)``, ``(days,)`` each.

    ``held`` is the position of a filled order (``q``, clipped to [-10, 10] as PF's, where
    :math:`q > 0 \land BuyFill` or :math:`q < 0 \land SellFill`, else 0); ``entry`` its fill level
    (lp' long, hp' short) and ``exit`` where it left (intraday: the take-profit hp' (lp') when
    :math:`hp' \le h` (:math:`lp' \ge l`), else the close c; eod: always c), in PF's units: changes
    relative to the previous close. So :func:`profit_values` is ``held (exit - entry)`` minus its fee
    term on every day (0 where ``held`` is 0; the fee rules charge some unfilled days,
    docs/deviations.md#kept-pf-fee-rules).
    Where nothing filled, ``entry`` and ``exit`` are the close.
    """
    f32 = jnp.float32
    c, h, hp, l, lp, q = (jnp.asarray(a, f32) for a in (close, high, high_pred, low, low_pred, positions))
    hp = jnp.clip(hp, 0.0, 10.0)
    lp = jnp.clip(lp, -1.0, 0.0)
    long = (q > 0) & (lp > l)
    short = (q < 0) & (hp < h)
    if close_at_eod:
        exit_ = c
    else:
        exit_ = jnp.where(long, jnp.where(hp <= h, hp, c), jnp.where(short & (lp >= l), lp, c))
    filled = long | short
    entry = jnp.where(long, lp, jnp.where(short, hp, c))
    return jnp.where(filled, jnp.clip(q, -10.0, 10.0), 0.0), entry, jnp.where(filled, exit_, c)


def total_profit(close, high, high_pred, low, low_pred, positions, *, close_at_eod=False, fee=TRADING_FEE):
    """Sum over days of :func:`profit_values`: the original's
    ``calculate_trading_profit_torch_with_entry_buysell`` and the MaxDiff objective."""
    return jnp.sum(profit_values(close, high, high_pred, low, low_pred, positions, close_at_eod=close_at_eod, fee=fee))


def policies(close_at_eod) -> tuple[bool, ...]:
    """The static eod policies ``close_at_eod`` stands for: itself if a Python (or numpy) bool, else
    (a traced bool, e.g. vmapped over both policies) ``(False, True)``."""
    if isinstance(close_at_eod, (bool, np.bool_)):
        return (bool(close_at_eod),)
    return (False, True)


def by_policy(close_at_eod, fn):
    """``fn(close_at_eod)`` for a static policy; for a traced bool, ``fn(False)`` and ``fn(True)``
    (pytrees of one structure) selected elementwise by it.

    Each policy's values are then exactly its static ones (the selection is the last operation), so
    the multiplier optimizers can be vmapped over both policies (one program instead of two) and
    return what the two static calls would.
    """
    branches = policies(close_at_eod)
    if len(branches) == 1:
        return fn(branches[0])
    eod = jnp.asarray(close_at_eod, bool)
    return jax.tree.map(lambda a, b: jnp.where(eod, b, a), fn(False), fn(True))
