r"""Your own strategy: a pure function of one simulation, scored by jaxsim's fee and fill rules.

A user strategy is a :class:`UserStrategy` (frozen, hashable: part of the compile key) wrapping
``fn(inputs, params) -> output`` written for ONE simulation; jaxsim vmaps it over simulations and
stocks inside the compiled backtest program.

What ``fn`` sees (:class:`StrategyInputs`, e = the simulation's last row, evaluation days
``t_i = e-6+i``, i = 0..5, docs/backtest.md#strategy-notation):

* ``point[x]``: ``(7,)`` point forecasts P_X[0..6] per target x (P_X[i] forecasts r_X[t_i] from the
  rows before t_i; P_X[6] forecasts r_X[e]);
* ``band[x]``: ``(7,)`` P60-P40 width of the draws (0 for point forecasters);
* ``draws[x]``: ``(7, S)`` the draws themselves, only when ``needs_draws`` (a point forecaster
  gives ``S = 1``, its point); else None;
* ``prices``: ``(22, 5)`` rows e-21..e of [open, high, low, close, volume]; window index j holds
  row e-21+j, so row t_i is index ``15 + i``; ``prices_valid`` is False before the data starts.

What it returns, by ``kind`` (what may be read for day i is checked by
:func:`jaxsim.research.lookahead.check_no_lookahead`):

* ``"signals"``: positions ``s`` ``(6,)`` held over the close-to-close return
  ``R_i = r_C[t_i + 1]`` (the built-in signal strategies' returns, docs/backtest.md#e-cmp), so
  ``s_i`` may read rows up to t_i (window index ``<= 15 + i``) and forecasts P_X[<= i+1]. Scored
  with E_cmp (:func:`jaxsim.sim.metrics.evaluate_signals`: position-change fee and spread).
* ``"limits"``: :class:`Limits` ``(high, low, positions)``, each ``(6,)``: the sell (take-profit)
  and buy levels of day t_i relative to the previous close and the position, placed before the
  open of t_i, so they may read rows up to t_i - 1 (window index ``<= 14 + i``) and forecasts
  P_X[<= i]. Scored by PF (:func:`jaxsim.sim.profit.profit_values`, docs/backtest.md#profit-function)
  on ``c = aC``, ``h = aH + kH``, ``l = aL - kL`` (the MaxDiff quantities,
  docs/backtest.md#maxdiff-offsets) and E_sum.

* ``"day_trades"``: :class:`DayTrades` ``(side, entry, take_profit)``: one round trip per day, in
  the fill rules of the original's entry + take-profit and highlow strategies
  (docs/backtest.md#strategies), placed before the open of t_i (the same reading rules as
  ``"limits"``). ``side`` ``(6,)``: +1 long, -1 short, 0 none (|side| scales the day's P&L and
  fee). ``entry``: None buys (sells) at the previous close; a level is a limit order, filled at it
  when the day's low (high) reaches it, else the position opens at the close (no P&L, the fee is
  still paid). ``take_profit``: None exits at the close; a level exits there when the day's high
  (low) reaches it, else at the close. Long P&L = exit - entry price, short = entry - exit; a day
  whose side differs from the previous day's pays ``fee`` once more for closing the previous side
  (:func:`jaxsim.sim.strategies.side_switch_fees`), all scored by E_sum. Levels are relative to the
  previous close (as :class:`Limits`); with ``levels="own"``, High levels are relative to the
  previous High and Low levels to the previous Low, as the original's forecasts are
  (what :func:`builtin_strategies` uses to reproduce those two built-ins exactly).

Record fields of a strategy named ``name`` (the pattern of the built-ins,
docs/backtest.md#record-fields): ``<name>_return``, ``_sharpe``, ``_avg_daily_return``,
``_annual_return``, ``_finalday`` (the last day's P&L; for signals ``s_5 R_5 - 2 fee SPREAD`` as
the built-ins), ``_profit_values`` ``(6,)`` (the daily P&L) and ``_turnover`` (mean ``|s|``); out of
the records, the final day's position ``oos_position_<name>`` (for limits the filled position:
:func:`jaxsim.sim.profit.limit_fills`) and for day trades and limits its fill levels
``oos_exit_<name>`` and, with an entry level (always for limits), ``oos_entry_<name>`` (relative to the
previous close: :func:`day_trade_fills`, :func:`~jaxsim.sim.profit.limit_fills`; trades.csv's prices).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxsim.errors import ConfigError
from jaxsim.forecast.returns import window_returns
from jaxsim.sim import maxdiff
from jaxsim.sim import strategies as builtin
from jaxsim.sim.metrics import evaluate_daily_returns, evaluate_signals
from jaxsim.sim.profit import limit_fills, profit_values
from jaxsim.sim.simulation import N_DAYS, StrategyConfig, window_offsets
from jaxsim.sim.strategy_table import (
    ALL_SIGNALS,
    BUY_HOLD,
    ENTRY_TAKEPROFIT,
    HIGHLOW,
    KINDS,
    MAXDIFF,
    OOS_PREFIX,
    SIMPLE,
    STRATEGIES,
    UNPROFIT_SHUTDOWN,
    Strategy,
    with_user,
)
from jaxsim.sim.surrogate import soft_profit_values

__all__ = [
    "KINDS",
    "LEVELS",
    "FIRST_DAY_ROW",
    "StrategyInputs",
    "Limits",
    "DayTrades",
    "Outcomes",
    "UserStrategy",
    "user_strategy",
    "outcomes",
    "limit_offsets",
    "strategy_output",
    "day_trade_pnl",
    "day_trade_fills",
    "day_pnl",
    "soft_day_pnl",
    "strategy_fields",
    "strategy_records",
    "strategy_views",
    "check_names",
    "strategy_table",
    "builtin_strategies",
]

Array = jax.Array
f32 = jnp.float32

LEVELS = ("close", "own")
FIRST_DAY_ROW = 15  # window index of row t_0 = e-6 in the 22-row price window


class StrategyInputs(NamedTuple):
    """One simulation as a user strategy sees it (see the module docstring)."""

    point: dict
    band: dict
    draws: dict | None
    prices: Array
    prices_valid: Array


class Limits(NamedTuple):
    """Output of a ``"limits"`` strategy: levels relative to the previous close and positions, ``(6,)``."""

    high: Array
    low: Array
    positions: Array


class DayTrades(NamedTuple):
    """Output of a ``"day_trades"`` strategy (see the module docstring): ``(6,)`` each; ``entry`` None
    enters at the previous close, ``take_profit`` None exits at the close."""

    side: Array
    entry: Array | None = None
    take_profit: Array | None = None


class Outcomes(NamedTuple):
    """What a simulation's six days realised (computed by jaxsim, never shown to ``fn`` separately).

    Attributes:
      returns: R_i = r_C[t_i + 1] (signals), ``(6,)``.
      close, high, low: PF's c, h, l of day t_i (limits), ``(6,)``.
      own_high, own_low: r_H[t_i], r_L[t_i], the High (Low) versus the previous High (Low).
    """

    returns: Array
    close: Array
    high: Array
    low: Array
    own_high: Array
    own_low: Array


@dataclasses.dataclass(frozen=True)
class UserStrategy:
    """A strategy to run in the compiled program.

    Attributes:
      name: record prefix and summary row; must not clash with a built-in.
      kind: ``"signals"`` or ``"limits"``.
      fn: ``fn(inputs: StrategyInputs, params) -> (6,) positions | Limits`` for one simulation
        (pure, traceable; keep the same object to reuse compiled programs).
      params: default parameters (a pytree of arrays or floats; excluded from the hash).
      needs_draws: pass the forecast draws as ``inputs.draws``.
      close_at_eod: limits only: PF exits every filled position at the close.
      levels: day_trades only: ``"close"`` (levels relative to the previous close) or ``"own"``
        (High levels to the previous High, Low levels to the previous Low).
    """

    name: str
    kind: str
    fn: Callable
    params: Any = dataclasses.field(default=None, compare=False, hash=False)
    needs_draws: bool = False
    close_at_eod: bool = False
    levels: str = "close"

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ConfigError(f"a strategy name must be an identifier (it prefixes record fields), got {self.name!r}")
        if self.kind not in KINDS:
            raise ConfigError(f"strategy kind must be one of {KINDS}, got {self.kind!r}")
        if self.levels not in LEVELS or (self.levels != "close" and self.kind != "day_trades"):
            raise ConfigError(
                f"strategy {self.name!r}: levels must be one of {LEVELS} ('own' for day_trades only), "
                f"got {self.levels!r}"
            )
        if not callable(self.fn):
            raise ConfigError(f"strategy {self.name!r}: fn must be callable fn(inputs, params)")

    def replace(self, **changes) -> UserStrategy:
        return dataclasses.replace(self, **changes)


def user_strategy(
    name: str, kind: str, params=None, *, needs_draws: bool = False, close_at_eod: bool = False, levels: str = "close"
):
    """Decorator: ``@user_strategy("band", "limits", params={"k": 0.5})`` turns ``fn`` into a :class:`UserStrategy`."""

    def wrap(fn):
        return UserStrategy(name, kind, fn, params, needs_draws, close_at_eod, levels)

    return wrap


def outcomes(prices: Array, prices_valid: Array) -> Outcomes:
    """The realised quantities of one simulation's six days from its price window."""
    prices = jnp.asarray(prices, f32)
    valid = jnp.asarray(prices_valid, bool)
    high, low, close = prices[:, 1], prices[:, 2], prices[:, 3]
    r_close, r_high, r_low = (window_returns(x, valid) for x in (close, high, low))
    k_high, k_low = maxdiff.close_relative_offsets(high[-8:-2], low[-8:-2], close[-8:-2])
    return Outcomes(
        r_close[-6:], r_close[-7:-1], r_high[-7:-1] + k_high, r_low[-7:-1] - k_low, r_high[-7:-1], r_low[-7:-1]
    )


def limit_offsets(inputs: StrategyInputs) -> tuple[Array, Array]:
    """``(kH, kL)``, ``(6,)``: the close-relative offsets |1 - H/C|, |1 - L/C| of the row before each day.

    A High (Low) forecast is a change versus the previous High (Low); ``fH + kH`` and ``fL - kL`` are
    the predicted high and low relative to the previous close, the units of :class:`Limits`
    (docs/backtest.md#maxdiff-offsets). They read rows t_i - 1 only.
    """
    # rows e-7..e-2 = window rows FIRST_DAY_ROW-1 .. FIRST_DAY_ROW+4; with the engine's residual columns
    # these are MaxDiff's own offsets (docs/deviations.md#float64-offsets)
    return window_offsets(jnp.asarray(inputs.prices, f32))


def strategy_output(strategy: UserStrategy, inputs: StrategyInputs, params=None):
    """The strategy's output for one simulation (``params`` None: its defaults), checked and float32."""
    out = strategy.fn(inputs, strategy.params if params is None else params)
    if strategy.kind == "limits":
        if not isinstance(out, Limits):
            raise ConfigError(f"limits strategy {strategy.name!r} must return jaxsim.Limits(high, low, positions)")
        out = Limits(*(jnp.broadcast_to(jnp.asarray(x, f32), (N_DAYS,)) for x in out))
    elif strategy.kind == "day_trades":
        if not isinstance(out, DayTrades):
            raise ConfigError(
                f"day_trades strategy {strategy.name!r} must return "
                "jaxsim.DayTrades(side, entry=None, take_profit=None)"
            )
        out = DayTrades(*(None if x is None else jnp.broadcast_to(jnp.asarray(x, f32), (N_DAYS,)) for x in out))
    else:
        out = jnp.asarray(out, f32)
        if out.shape != (N_DAYS,):
            raise ConfigError(f"signals strategy {strategy.name!r} must return ({N_DAYS},) positions, got {out.shape}")
    return out


def day_trade_pnl(trades: DayTrades, realised: Outcomes, *, fee, levels: str = "close", temperature=None) -> Array:
    r"""Daily P&L ``(6,)`` of :class:`DayTrades` (module docstring): the built-ins' fill rule,
    :func:`jaxsim.sim.strategies.day_trade_daily`, on the realised close and the high/low of ``levels``.
    ``temperature`` None: exact indicators; else each indicator is :math:`\sigma(d / T)` of the
    distance d past its level (the smooth tuning objective).
    """
    h, l = (realised.own_high, realised.own_low) if levels == "own" else (realised.high, realised.low)
    return builtin.day_trade_daily(
        trades.side, trades.entry, trades.take_profit, realised.close, h, l, fee=fee, temperature=temperature
    )


def day_trade_fills(trades: DayTrades, realised: Outcomes, *, levels: str = "close") -> tuple[Array, Array]:
    """The fill levels ``(entry, exit)`` ``(6,)`` of :func:`day_trade_pnl`'s round trips, relative to
    the previous close (:func:`jaxsim.sim.strategies.day_trade_fills`)."""
    h, l = (realised.own_high, realised.own_low) if levels == "own" else (realised.high, realised.low)
    return builtin.day_trade_fills(trades.side, trades.entry, trades.take_profit, realised.close, h, l)


def day_pnl(strategy: UserStrategy, output, realised: Outcomes, *, fee, spread) -> Array:
    """Exact daily P&L ``(6,)`` of a strategy output: E_cmp net returns, PF or the day-trade rules."""
    if strategy.kind == "signals":
        return evaluate_signals(output, realised.returns, fee=fee, spread=spread).daily
    if strategy.kind == "day_trades":
        return day_trade_pnl(output, realised, fee=fee, levels=strategy.levels)
    return profit_values(
        realised.close,
        realised.high,
        output.high,
        realised.low,
        output.low,
        output.positions,
        close_at_eod=strategy.close_at_eod,
        fee=fee,
    )


def soft_day_pnl(strategy: UserStrategy, output, realised: Outcomes, *, fee, spread, temperature) -> Array:
    """Smooth daily P&L (the tuning objective): E_cmp net returns are already smooth in the positions
    (``|s_i - s_{i-1}|`` has a subgradient); limits use the surrogate PF (:mod:`jaxsim.sim.surrogate`)."""
    if strategy.kind == "signals":
        return day_pnl(strategy, output, realised, fee=fee, spread=spread)
    if strategy.kind == "day_trades":
        return day_trade_pnl(output, realised, fee=fee, levels=strategy.levels, temperature=temperature)
    return soft_profit_values(
        realised.close,
        realised.high,
        output.high,
        realised.low,
        output.low,
        output.positions,
        temperature=temperature,
        close_at_eod=strategy.close_at_eod,
        fee=fee,
    )


_DEFAULT_CONFIG = StrategyConfig()  # strategy_fields' default config (one shared instance)


def strategy_fields(
    strategy: UserStrategy,
    inputs: StrategyInputs,
    params=None,
    *,
    fee,
    spread,
    config: StrategyConfig = _DEFAULT_CONFIG,
) -> dict[str, Array]:
    """The record fields of one simulation (see the module docstring); ``params`` None: the defaults."""
    realised = outcomes(inputs.prices, inputs.prices_valid)
    out = strategy_output(strategy, inputs, params)
    name, days = strategy.name, config.days_per_year
    if strategy.kind == "signals":
        m = evaluate_signals(out, realised.returns, fee=fee, spread=spread, days_per_year=days)
        finalday = out[-1] * realised.returns[-1] - 2.0 * jnp.asarray(fee, f32) * jnp.asarray(spread, f32)
        positions = out
    else:
        m = evaluate_daily_returns(day_pnl(strategy, out, realised, fee=fee, spread=spread), days)
        finalday = m.daily[-1]
        positions = out.positions if strategy.kind == "limits" else out.side
    fields = {
        f"{name}_return": m.total,
        f"{name}_sharpe": m.sharpe,
        f"{name}_avg_daily_return": m.avg_daily,
        f"{name}_annual_return": m.annual,
        f"{name}_finalday": finalday,
        f"{name}_profit_values": m.daily,
        f"{name}_turnover": jnp.mean(jnp.abs(positions)),
    }
    if strategy.kind == "limits":  # the final day's filled position and fill levels (exposure, trades.csv)
        held, entry, exit_ = limit_fills(
            realised.close,
            realised.high,
            out.high,
            realised.low,
            out.low,
            out.positions,
            close_at_eod=strategy.close_at_eod,
        )
        fields[f"{OOS_PREFIX}position_{name}"] = held[-1]
        fields[f"{OOS_PREFIX}entry_{name}"] = entry[-1]
        fields[f"{OOS_PREFIX}exit_{name}"] = exit_[-1]
        return fields
    fields[f"{OOS_PREFIX}position_{name}"] = positions[-1]  # out-of-sample fields, kept out of the records
    if strategy.kind == "day_trades":  # the final day's fill levels, for trades.csv's prices
        entry, exit_ = day_trade_fills(out, realised, levels=strategy.levels)
        fields[f"{OOS_PREFIX}exit_{name}"] = exit_[-1]
        if out.entry is not None:  # without an entry level the entry is the previous close
            fields[f"{OOS_PREFIX}entry_{name}"] = entry[-1]
    return fields


def strategy_records(
    user: tuple, views: StrategyInputs, *, fee, spread, config: StrategyConfig, params=None
) -> dict[str, Array]:
    """Record fields of every strategy in ``user`` over a leading simulation axis of ``views``."""
    records = {}
    for i, s in enumerate(user):
        p = None if params is None else params[i]
        records.update(jax.vmap(lambda v: strategy_fields(s, v, p, fee=fee, spread=spread, config=config))(views))
    return records


def strategy_views(targets, point, band, samples, index, windows, valid, *, draws: bool) -> StrategyInputs:
    """The batched :class:`StrategyInputs` of a stock's N simulations.

    Args:
      targets: target names (order of the leading axis of ``point``/``band``/``samples``).
      point, band: ``(X, O)`` per origin; samples: ``(X, O, S)`` draws or None (point forecaster).
      index: ``(N, 7)`` origin of each simulation's forecasts (:func:`jaxsim.forecast.grid.sim_forecast_index`).
      windows, valid: ``(N, 22, 5)`` price windows and their masks.
      draws: static; include the draws.
    """
    pts = {x: point[i][index] for i, x in enumerate(targets)}
    bands = {x: band[i][index] for i, x in enumerate(targets)}
    zeros = jnp.zeros_like(pts["close"])
    for x in ("close", "high", "low"):  # missing high/low are zeros, as the built-ins see them
        pts.setdefault(x, zeros)
        bands.setdefault(x, zeros)
    sample_views = None
    if draws:
        sample_views = {
            x: (samples[i][index] if samples is not None else point[i][index][..., None]) for i, x in enumerate(targets)
        }
    return StrategyInputs(pts, bands, sample_views, windows, valid)


def check_names(user: tuple) -> tuple:
    """``user`` as a tuple of :class:`UserStrategy` with distinct names that clash with no built-in."""
    user = tuple(user or ())
    names = [s.name for s in user if isinstance(s, UserStrategy)]
    if len(names) != len(user):
        raise ConfigError("strategies= takes jaxsim.UserStrategy values (see jaxsim.user_strategy)")
    taken = {s.name for s in STRATEGIES} | {s.prefix for s in STRATEGIES}
    clash = [n for n in names if n in taken]
    if clash or len(set(names)) != len(names):
        raise ConfigError(
            f"user strategy names must be distinct and differ from the built-ins {sorted(taken)}, got {names}"
        )
    return user


def strategy_table(user: tuple = ()) -> tuple[Strategy, ...]:
    """:data:`jaxsim.sim.strategy_table.STRATEGIES` extended by the user strategies (not best-strategy candidates)."""
    return with_user(tuple(s.name for s in user), {s.name: s.kind for s in user})


# ------------------------------------------------------------------ the built-ins through the interface
def _forecasts(v):
    return v.point["close"][:N_DAYS], v.point["high"][:N_DAYS], v.point["low"][:N_DAYS]


def _simple(v, p):
    return builtin.simple_signals(v.point["close"][:N_DAYS], crypto=p["crypto"])


def _all_signals(v, p):
    return builtin.all_signals(*_forecasts(v), crypto=p["crypto"])


def _buy_hold(v, p):
    del p
    return builtin.buy_hold_signals(v.point["close"][:N_DAYS])


def _unprofit_shutdown(v, p):
    # R_{i-1} = r_C[t_i] is known at the close of t_i, when s_i is chosen
    r = outcomes(v.prices, v.prices_valid).returns
    return builtin.unprofit_shutdown_signals(v.point["close"][:N_DAYS], r, crypto=p["crypto"])


def _maxdiff_baseline(v, p):
    # MaxDiff's levels without multipliers (its baseline, docs/backtest.md#maxdiff)
    k_high, k_low = limit_offsets(v)
    hp, lp = v.point["high"][:N_DAYS] + k_high, v.point["low"][:N_DAYS] - k_low
    return Limits(hp, lp, maxdiff.maxdiff_positions(hp, lp, crypto=p["crypto"]))


def _entry_takeprofit(v, p):
    # 5.5: enter at the previous close on the forecast's side, take profit at the predicted high (low)
    del p
    return DayTrades(*builtin.entry_takeprofit_orders(*_forecasts(v)))


def _highlow(v, p):
    # 5.6: a limit entry at the predicted low (long) or high (short), out at the close
    return DayTrades(*builtin.highlow_orders(*_forecasts(v), crypto=p["crypto"]))


# the built-ins whose record is a position or limit rule -> that rule (always-on, two legs, has none)
_INTERFACE_RULES = {
    SIMPLE: _simple,
    ALL_SIGNALS: _all_signals,
    BUY_HOLD: _buy_hold,
    UNPROFIT_SHUTDOWN: _unprofit_shutdown,
    ENTRY_TAKEPROFIT: _entry_takeprofit,
    HIGHLOW: _highlow,
    MAXDIFF: _maxdiff_baseline,
}


def builtin_strategies(crypto: bool = False) -> dict[str, UserStrategy]:
    """The built-ins that ARE a position or limit rule, as :class:`UserStrategy` values (name ->
    strategy, named ``<built-in>_via_interface``). Their records equal the built-ins' fields: simple,
    all_signals and unprofit_shutdown all fields; buy_hold its Sharpe/avg/annual (its return is an
    unconditional hold); MaxDiff's ``maxdiff_baseline_return`` (before the multiplier fit);
    entry_takeprofit and highlow (``"day_trades"`` in the original's ``levels="own"``) their return,
    Sharpe, avg and annual, and as final day the day-t_5 P&L (``oos_finalday_*``; the records'
    final-day field is the six-day average, docs/deviations.md#kept-finalday-average). MaxDiff's
    fitted multipliers are a search over this limits rule (:mod:`jaxsim.sim.maxdiff`); at a
    simulation's fitted multipliers the rule's daily P&L is MaxDiff's optimised series (always-on:
    the sum of a +1 and a -1 leg), as the tests check."""
    p = {"crypto": crypto}
    return {
        s.name: UserStrategy(f"{s.name}_via_interface", s.kind, rule, p, levels=s.levels)
        for s, rule in _INTERFACE_RULES.items()
    }
