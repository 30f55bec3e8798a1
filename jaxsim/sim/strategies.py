"""The six signal and limit-order strategies of one simulation (docs/backtest.md#strategies).

Notation of docs/backtest.md#strategy-notation: for the six evaluation days i = 0..5, fC, fH, fL are the forecasts of
r_C, r_H, r_L at t_i; aC, aH, aL the realised changes r_X[t_i]; R_i = r_C[t_i + 1] (``actual_returns``).
High/Low quantities are changes of the High (Low) series versus the previous High (Low).

Kept as the original computes it (docs/deviations.md#kept-one-day-shift): simple, all-signals, buy & hold and unprofit
shutdown are scored on R, one day LATER than the day their forecast targets; entry+take-profit and highlow use
the aligned aC/aH/aL. Deliberate deviation (docs/deviations.md#no-inplace-fee-mutation): the original's
entry+take-profit subtracts its fee in place from an element of the shared forecast/actual tensors, so highlow (which
runs next) sees altered inputs. That mutation is NOT reproduced: every function here is pure.

Each ``*_strategy`` function returns the record fields of docs/backtest.md#record-fields for its strategy
(``<prefix>_return``, ``_sharpe``, ``_avg_daily_return``, ``_annual_return`` and a final-day field, named by
its row of :mod:`jaxsim.sim.strategy_table`) and the out-of-sample fields of its final day (the position held,
``oos_position_<prefix>``, and for entry+take-profit and highlow the day's own P&L, ``oos_finalday_<prefix>``,
and its fill levels relative to the previous close, ``oos_exit_<prefix>`` and, with a limit entry (highlow),
``oos_entry_<prefix>``).
All functions take one simulation's ``(days,)`` vectors; vmap outside. :data:`RECORDS` maps each row to its
scoring function on :class:`jaxsim.sim.scoring.SimulationDays`.

The day-trade fill rule of entry+take-profit and highlow (and of ``"day_trades"`` user strategies,
:mod:`jaxsim.sim.strategy`) is :func:`day_trade_daily`; the two strategies only choose its orders.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsim.sim.metrics import DEFAULT_SPREAD, ReturnMetrics, evaluate_daily_returns, evaluate_signals
from jaxsim.sim.scoring import RecordFunction, Scoring, SimulationDays
from jaxsim.sim.strategy_table import (
    ALL_SIGNALS,
    BUY_HOLD,
    ENTRY_TAKEPROFIT,
    HIGHLOW,
    SIMPLE,
    UNPROFIT_SHUTDOWN,
    Strategy,
)

__all__ = [
    "simple_signals",
    "simple_strategy",
    "all_signals",
    "all_signals_strategy",
    "buy_hold_signals",
    "buy_hold_strategy",
    "unprofit_shutdown_signals",
    "unprofit_shutdown_strategy",
    "entry_takeprofit_daily",
    "entry_takeprofit_strategy",
    "highlow_daily",
    "highlow_strategy",
    "side_switch_fees",
    "day_trade_daily",
    "day_trade_fills",
    "entry_takeprofit_orders",
    "highlow_orders",
    "RECORDS",
]

Array = jax.Array
f32 = jnp.float32


def _vec(*xs):
    return tuple(jnp.asarray(x, f32) for x in xs)


def _fields(row: Strategy, m: ReturnMetrics) -> dict[str, Array]:
    return {
        row.field("return"): m.total,
        row.field("sharpe"): m.sharpe,
        row.field("avg_daily_return"): m.avg_daily,
        row.field("annual_return"): m.annual,
    }


def _signal_finalday(signals: Array, returns: Array, fee, spread) -> Array:
    """``s_5 R_5 - 2 fee SPREAD`` (the original's final-day field of 5.1, 5.2, 5.4)."""
    fee, spread = _vec(fee, spread)
    return signals[-1] * returns[-1] - 2.0 * fee * spread


def _signal_fields(row: Strategy, signals: Array, returns: Array, *, fee, spread, days_per_year) -> dict[str, Array]:
    """E_cmp fields of signals s on R, the final-day field ``s_5 R_5 - 2 fee SPREAD`` and the final
    day's position s_5 (applied to R_5 = r_C[e])."""
    m = evaluate_signals(signals, returns, fee=fee, spread=spread, days_per_year=days_per_year)
    return {
        **_fields(row, m),
        row.final_day: _signal_finalday(signals, returns, fee, spread),
        row.position_field: signals[-1],
    }


# --------------------------------------------------------------------------------------------- 5.1
def simple_signals(close_pred: Array, *, crypto: bool = False) -> Array:
    r"""Simple signals :math:`s_i = +1` if :math:`fC_i > 0` else :math:`-1` (fC = 0 -> short);
    crypto: 1 if :math:`fC_i > 0` else 0. Shape ``(days,)``."""
    (fc,) = _vec(close_pred)
    return jnp.where(fc > 0, 1.0, 0.0 if crypto else -1.0).astype(f32)


def simple_strategy(
    close_pred: Array, returns: Array, *, fee, spread=DEFAULT_SPREAD, crypto: bool = False, days_per_year=252
) -> dict[str, Array]:
    r"""Simple strategy (5.1): :math:`E_{cmp}(s, R)` with :math:`s_i = \operatorname{sgn}^{\pm}(fC_i)`.

    .. math::

        s_i = \begin{cases} +1 & fC_i > 0 \\ -1\ (\text{crypto: } 0) & fC_i \le 0 \end{cases},\qquad
        \text{finalday} = s_5 R_5 - 2\,fee\,SPREAD.

    Args:
      close_pred: fC, ``(days,)``.
      returns: R = r_C[t_i + 1], ``(days,)``.
      fee, spread: dynamic scalars; crypto, days_per_year: static.

    Returns:
      ``simple_strategy_{return,sharpe,avg_daily_return,annual_return,finalday}`` and
      ``oos_position_simple_strategy`` (s_5).
    """
    (r,) = _vec(returns)
    s = simple_signals(close_pred, crypto=crypto)
    return _signal_fields(SIMPLE, s, r, fee=fee, spread=spread, days_per_year=days_per_year)


# --------------------------------------------------------------------------------------------- 5.2
def all_signals(close_pred: Array, high_pred: Array, low_pred: Array, *, crypto: bool = False) -> Array:
    r""":math:`s_i = +1` if fC, fH, fL are all > 0; -1 (stocks only) if all < 0; else 0."""
    fc, fh, fl = _vec(close_pred, high_pred, low_pred)
    long = (fc > 0) & (fh > 0) & (fl > 0)
    short = (fc < 0) & (fh < 0) & (fl < 0) & (not crypto)
    return jnp.where(long, 1.0, jnp.where(short, -1.0, 0.0)).astype(f32)


def all_signals_strategy(
    close_pred: Array,
    high_pred: Array,
    low_pred: Array,
    returns: Array,
    *,
    fee,
    spread=DEFAULT_SPREAD,
    crypto: bool = False,
    days_per_year=252,
) -> dict[str, Array]:
    r"""All-signals strategy (5.2): :math:`E_{cmp}(s, R)` with

    .. math::

        s_i = [fC_i > 0 \land fH_i > 0 \land fL_i > 0] - [\text{stock}]\,[fC_i < 0 \land fH_i < 0
        \land fL_i < 0],\qquad \text{finalday} = s_5 R_5 - 2\,fee\,SPREAD.

    Returns:
      ``all_signals_strategy_{return,sharpe,avg_daily_return,annual_return,finalday}`` and
      ``oos_position_all_signals_strategy`` (s_5).
    """
    (r,) = _vec(returns)
    s = all_signals(close_pred, high_pred, low_pred, crypto=crypto)
    return _signal_fields(ALL_SIGNALS, s, r, fee=fee, spread=spread, days_per_year=days_per_year)


# --------------------------------------------------------------------------------------------- 5.3
def buy_hold_signals(close_pred: Array) -> Array:
    r""":math:`b_i = [fC_i > 0]` (fC = 0 -> flat)."""
    (fc,) = _vec(close_pred)
    return (fc > 0).astype(f32)


def buy_hold_strategy(
    close_pred: Array, returns: Array, *, fee, spread=DEFAULT_SPREAD, days_per_year=252
) -> dict[str, Array]:
    r"""Buy & hold (5.3). Sharpe, avg and annual come from :math:`E_{cmp}(b, R)`,
    :math:`b_i = [fC_i > 0]`, but the return is an unconditional hold (ignores b and SPREAD):

    .. math::

        \text{buy\_hold\_return} = \prod_i (1 + R_i) - 1 - fee,\qquad
        \text{buy\_hold\_finalday} = R_5 - fee.

    Returns:
      ``buy_hold_{return,sharpe,avg_daily_return,annual_return,finalday}`` and
      ``oos_position_buy_hold`` (1: the hold is unconditional).
    """
    r, fee_ = _vec(returns, fee)
    m = evaluate_signals(buy_hold_signals(close_pred), r, fee=fee, spread=spread, days_per_year=days_per_year)
    out = _fields(BUY_HOLD, m)
    out[BUY_HOLD.field("return")] = jnp.prod(1.0 + r) - 1.0 - fee_
    out[BUY_HOLD.final_day] = r[-1] - fee_
    out[BUY_HOLD.position_field] = jnp.ones((), f32)
    return out


# --------------------------------------------------------------------------------------------- 5.4
def unprofit_shutdown_signals(close_pred: Array, returns: Array, *, crypto: bool = False) -> Array:
    r"""Unprofit-shutdown state machine (lax.scan over days).

    .. math::

        s_0 = 1,\qquad s_i = \begin{cases} \operatorname{sgn}(fC_i)\,[\text{correct}_{i-1}] & s_{i-1} \ne 0\\
        \operatorname{sgn}(fC_i) & s_{i-1} = 0\end{cases},\quad
        \text{correct}_j = (R_j > 0 \land fC_j > 0) \lor (R_j < 0 \land fC_j < 0).

    Crypto: negative signals are set to 0 AFTER the loop (the loop itself used the -1s).
    """
    fc, r = _vec(close_pred, returns)
    correct = ((r > 0) & (fc > 0)) | ((r < 0) & (fc < 0))

    def step(prev, x):
        f, was_correct = x
        s = jnp.where((prev == 0) | was_correct, jnp.sign(f), 0.0)
        return s, s

    first = jnp.ones((), f32)
    _, rest = jax.lax.scan(step, first, (fc[1:], correct[:-1]))
    s = jnp.concatenate([first[None], rest])
    return jnp.maximum(s, 0.0) if crypto else s


def unprofit_shutdown_strategy(
    close_pred: Array, returns: Array, *, fee, spread=DEFAULT_SPREAD, crypto: bool = False, days_per_year=252
) -> dict[str, Array]:
    r"""Unprofit shutdown (5.4): :math:`E_{cmp}(s, R)` with the state machine of
    :func:`unprofit_shutdown_signals`; finalday = :math:`s_5 R_5 - 2\,fee\,SPREAD`.

    Returns:
      ``unprofit_shutdown_{return,sharpe,avg_daily_return,annual_return,finalday}`` and
      ``oos_position_unprofit_shutdown`` (s_5).
    """
    (r,) = _vec(returns)
    s = unprofit_shutdown_signals(close_pred, r, crypto=crypto)
    return _signal_fields(UNPROFIT_SHUTDOWN, s, r, fee=fee, spread=spread, days_per_year=days_per_year)


# ------------------------------------------------------------------------------------- 5.5 / 5.6
def side_switch_fees(side: Array, fee) -> Array:
    r"""Fee memory of 5.5/5.6, vectorised: the remembered side is the previous day's side (reset to
    none = 0 on a flat day), so day i pays :math:`fee\,[side_i \ne 0 \land side_i \ne side_{i-1}]
    (1 + [side_{i-1} \ne 0])` (open, plus close of the previous side)."""
    (fee,) = _vec(fee)
    prev = jnp.concatenate([jnp.zeros((1,), f32), side[:-1]])
    switched = (side != 0) & (side != prev)
    return jnp.where(switched, fee * (1.0 + (prev != 0).astype(f32)), 0.0)


def day_trade_daily(side, entry, take_profit, close, high, low, *, fee, temperature=None) -> Array:
    r"""Daily P&L ``(days,)`` of one round trip a day: THE fill rule of entry+take-profit (5.5), highlow
    (5.6) and ``"day_trades"`` user strategies (:class:`jaxsim.sim.strategy.DayTrades`).

    Orders are placed before the open of day i: ``side`` (+1 long, -1 short, 0 none; |side| scales
    the P&L and fee), ``entry`` (None: in at the previous close; a level: a limit order, filled when
    the day's low (high) reaches it, else the position opens at the close and makes nothing) and
    ``take_profit`` (None: out at the close; a level: out there when the day's high (low) reaches it).
    Prices ``close``, ``high``, ``low`` are the day's changes relative to the levels' base. For one
    unit long with :math:`\phi = [l \le e]` (1 without an entry level) and :math:`\tau = [h \ge x]`
    (0 without a take-profit), a short mirrored:

    .. math::

        \text{fill} = \phi\,e + (1 - \phi)\,c,\qquad
        \text{exit} = \phi\,(\tau\,x + (1 - \tau)\,c) + (1 - \phi)\,c,\qquad
        g = |s|\,\operatorname{sgn}(s)\,(\text{exit} - \text{fill}) - |s|\,\text{fees}(\operatorname{sgn} s)

    (e = 0 without an entry level), with the side-switch fees of :func:`side_switch_fees`.
    ``temperature`` None: exact indicators (selects, so the original's values are reproduced bit for
    bit); else each indicator is :math:`\sigma(d / T)` of the distance d past its level (the smooth
    tuning objective).
    """
    sign = jnp.sign(jnp.asarray(side, f32))
    size = jnp.abs(jnp.asarray(side, f32))

    def reached(price, level):  # weight of "price went past level", price >= level
        return (price >= level).astype(f32) if temperature is None else jax.nn.sigmoid((price - level) / temperature)

    def pick(w, at_level, otherwise):
        return jnp.where(w > 0, at_level, otherwise) if temperature is None else w * at_level + (1 - w) * otherwise

    def leg(up: bool):  # P&L of one unit long (up) or short
        exit_ = close
        if take_profit is not None:
            exit_ = pick(reached(high, take_profit) if up else reached(take_profit, low), take_profit, close)
        if entry is None:  # in at the previous close (0); a short's P&L written -exit, as the original's
            return exit_ if up else -exit_
        filled = reached(entry, low) if up else reached(high, entry)
        fill = pick(filled, entry, close)
        exit_ = pick(filled, exit_, close)
        return exit_ - fill if up else fill - exit_

    g = jnp.where(sign > 0, leg(True), jnp.where(sign < 0, leg(False), 0.0))
    return size * g - size * side_switch_fees(sign, fee)


def day_trade_fills(side, entry, take_profit, close, high, low) -> tuple[Array, Array]:
    r"""The fill levels ``(entry, exit)``, ``(days,)`` each, of :func:`day_trade_daily`'s round trips
    (exact indicators), in the units of its prices: changes relative to the levels' base, the previous
    close (0: the previous close itself; ``close``: the day's close). Entry: the limit level when it
    filled, else the close; without an entry level the previous close (0). Exit: the take-profit level
    when reached after a fill, else the close. So :func:`day_trade_daily` is
    ``side (exit - entry) - |side| fees`` on every day with a side (0 where the side is 0)."""
    (close, high, low) = _vec(close, high, low)
    long = jnp.asarray(side, f32) > 0
    tp_exit = close
    if take_profit is not None:  # day_trade_daily's reached(): high >= level (long), level >= low (short)
        (tp,) = _vec(take_profit)
        tp_exit = jnp.where(jnp.where(long, high >= tp, tp >= low), tp, close)
    if entry is None:
        return jnp.zeros_like(close), tp_exit
    (level,) = _vec(entry)
    filled = jnp.where(long, level >= low, high >= level)
    return jnp.where(filled, level, close), jnp.where(filled, tp_exit, close)


def _truncate(*xs):
    n = min(x.shape[-1] for x in xs)
    return tuple(x[:n] for x in xs)


def entry_takeprofit_orders(close_pred, high_pred, low_pred) -> tuple[Array, None, Array]:
    r"""Orders of entry + take-profit (5.5): ``(side, entry, take_profit)`` with
    :math:`side_i = +1` if :math:`fC_i > 0` else -1 (shorts also for crypto: no crypto flag), in at the
    previous close (entry None), take profit at fH (long) or fL (short)."""
    fc, fh, fl = _vec(close_pred, high_pred, low_pred)
    side = jnp.where(fc > 0, 1.0, -1.0).astype(f32)
    return side, None, jnp.where(side > 0, fh, fl)


def highlow_orders(close_pred, high_pred, low_pred, *, crypto: bool = False) -> tuple[Array, Array, None]:
    r"""Orders of highlow (5.6): ``(side, entry, take_profit)`` with :math:`side_i = +1` if
    :math:`fC_i > 0`, -1 if :math:`fC_i < 0` (stocks only), else 0; a limit entry at fL (long) or fH
    (short), out at the close (take_profit None)."""
    fc, fh, fl = _vec(close_pred, high_pred, low_pred)
    short_ok = (fc < 0) & (not crypto)
    side = jnp.where(fc > 0, 1.0, jnp.where(short_ok, -1.0, 0.0)).astype(f32)
    return side, jnp.where(side > 0, fl, fh), None


def _day_trade_fields(row: Strategy, orders: tuple, realised: tuple, *, fee, days_per_year) -> dict[str, Array]:
    """E_sum fields of the day-trade P&L g of ``orders`` on ``realised`` (close, high, low), the final-day
    field total / len(g) (an average, docs/deviations.md#kept-finalday-average), and the final day t_5's
    own side, P&L and fill levels (:func:`day_trade_fills`, relative to C[t_5 - 1]; the entry level only
    with a limit entry)."""
    daily = day_trade_daily(*orders, *realised, fee=fee)
    entry, exit_ = day_trade_fills(*orders, *realised)
    m = evaluate_daily_returns(daily, days_per_year)
    out = {
        **_fields(row, m),
        row.final_day: m.total / daily.shape[-1],
        row.position_field: orders[0][-1],
        row.last_day_field: daily[-1],
        row.exit_field: exit_[-1],
    }
    if orders[1] is not None:  # a limit entry; without one the entry is the previous close
        out[row.entry_field] = entry[-1]
    return out


def entry_takeprofit_daily(close_pred, high_pred, low_pred, actual_close, actual_high, actual_low, *, fee) -> Array:
    r"""Daily P&L of entry + take-profit (5.5): :func:`day_trade_daily` of
    :func:`entry_takeprofit_orders` on the realised aC, aH, aL; shorts also for crypto (no crypto flag).

    .. math::

        side_i = +1 \text{ if } fC_i > 0 \text{ else } -1,\qquad
        g_i = \begin{cases} fH_i\,[aH_i \ge fH_i] + aC_i\,[aH_i < fH_i] & side_i = +1\\
        -fL_i\,[aL_i \le fL_i] - aC_i\,[aL_i > fL_i] & side_i = -1\end{cases}

    minus ``fee`` when the side differs from the previous day's, plus another ``fee`` if there was a
    previous side.
    """
    fc, fh, fl, ac, ah, al = _truncate(*_vec(close_pred, high_pred, low_pred, actual_close, actual_high, actual_low))
    return day_trade_daily(*entry_takeprofit_orders(fc, fh, fl), ac, ah, al, fee=fee)


def entry_takeprofit_strategy(
    close_pred, high_pred, low_pred, actual_close, actual_high, actual_low, *, fee, days_per_year=252
) -> dict[str, Array]:
    r"""Entry + take-profit (5.5): :math:`E_{sum}(g)` of :func:`entry_takeprofit_daily`;
    ``entry_takeprofit_finalday`` = total / len(g) (an average, docs/deviations.md#kept-finalday-average).

    Returns:
      ``entry_takeprofit_{return,sharpe,avg_daily_return,annual_return,finalday}``,
      ``oos_position_entry_takeprofit`` (side_5), ``oos_finalday_entry_takeprofit`` (g_5) and
      ``oos_exit_entry_takeprofit`` (day t_5's exit level; the entry is the previous close).
    """
    fc, fh, fl, ac, ah, al = _truncate(*_vec(close_pred, high_pred, low_pred, actual_close, actual_high, actual_low))
    orders = entry_takeprofit_orders(fc, fh, fl)
    return _day_trade_fields(ENTRY_TAKEPROFIT, orders, (ac, ah, al), fee=fee, days_per_year=days_per_year)


def highlow_daily(
    close_pred, high_pred, low_pred, actual_close, actual_high, actual_low, *, fee, crypto: bool = False
) -> Array:
    r"""Daily P&L of highlow (5.6): :func:`day_trade_daily` of :func:`highlow_orders` on the realised
    aC, aH, aL: a limit entry at the predicted low (long) / high (short), exit at the close.

    .. math::

        g_i = \begin{cases} aC_i - (fL_i\,[aL_i \le fL_i] + aC_i\,[aL_i > fL_i]) & fC_i > 0\\
        (fH_i\,[aH_i \ge fH_i] + aC_i\,[aH_i < fH_i]) - aC_i & fC_i < 0,\ \text{stock}\\
        0\ (\text{side reset to none}) & \text{otherwise}\end{cases}

    with the side-switch fees of 5.5 (an unfilled limit still trades at the close and pays).
    """
    fc, fh, fl, ac, ah, al = _truncate(*_vec(close_pred, high_pred, low_pred, actual_close, actual_high, actual_low))
    return day_trade_daily(*highlow_orders(fc, fh, fl, crypto=crypto), ac, ah, al, fee=fee)


def highlow_strategy(
    close_pred,
    high_pred,
    low_pred,
    actual_close,
    actual_high,
    actual_low,
    *,
    fee,
    crypto: bool = False,
    days_per_year=252,
) -> dict[str, Array]:
    r"""Highlow (5.6): :math:`E_{sum}(g)` of :func:`highlow_daily`;
    ``highlow_finalday_return`` = total / len(g) (docs/deviations.md#kept-finalday-average).

    Returns:
      ``highlow_{return,sharpe,avg_daily_return,annual_return}``, ``highlow_finalday_return``,
      ``oos_position_highlow`` (side_5), ``oos_finalday_highlow`` (g_5) and ``oos_entry_highlow``,
      ``oos_exit_highlow`` (day t_5's fill levels).
    """
    fc, fh, fl, ac, ah, al = _truncate(*_vec(close_pred, high_pred, low_pred, actual_close, actual_high, actual_low))
    orders = highlow_orders(fc, fh, fl, crypto=crypto)
    return _day_trade_fields(HIGHLOW, orders, (ac, ah, al), fee=fee, days_per_year=days_per_year)


# ------------------------------------------------------------------------- scored by the simulation
def _signal_kw(rules: Scoring) -> dict:
    return dict(fee=rules.fee, spread=rules.spread, days_per_year=rules.days_per_year)


def _simple_record(d: SimulationDays, rules: Scoring) -> dict[str, Array]:
    return simple_strategy(d.close_pred, d.returns, crypto=rules.crypto, **_signal_kw(rules))


def _all_signals_record(d: SimulationDays, rules: Scoring) -> dict[str, Array]:
    return all_signals_strategy(
        d.close_pred, d.high_pred, d.low_pred, d.returns, crypto=rules.crypto, **_signal_kw(rules)
    )


def _buy_hold_record(d: SimulationDays, rules: Scoring) -> dict[str, Array]:
    return buy_hold_strategy(d.close_pred, d.returns, **_signal_kw(rules))


def _unprofit_shutdown_record(d: SimulationDays, rules: Scoring) -> dict[str, Array]:
    return unprofit_shutdown_strategy(d.close_pred, d.returns, crypto=rules.crypto, **_signal_kw(rules))


def _day_trade_args(d: SimulationDays) -> tuple:
    return d.close_pred, d.high_pred, d.low_pred, d.actual_close, d.actual_high, d.actual_low


def _entry_takeprofit_record(d: SimulationDays, rules: Scoring) -> dict[str, Array]:
    return entry_takeprofit_strategy(*_day_trade_args(d), fee=rules.fee, days_per_year=rules.days_per_year)


def _highlow_record(d: SimulationDays, rules: Scoring) -> dict[str, Array]:
    return highlow_strategy(*_day_trade_args(d), fee=rules.fee, crypto=rules.crypto, days_per_year=rules.days_per_year)


# table row -> its fields for one simulation (jaxsim.sim.simulation.simulation_fields)
RECORDS: dict[Strategy, RecordFunction] = {
    SIMPLE: _simple_record,
    ALL_SIGNALS: _all_signals_record,
    BUY_HOLD: _buy_hold_record,
    UNPROFIT_SHUTDOWN: _unprofit_shutdown_record,
    ENTRY_TAKEPROFIT: _entry_takeprofit_record,
    HIGHLOW: _highlow_record,
}
