"""The eight built-in strategies as data: one row per strategy, read by every layer.

A row says what the rest of the package needs to know about a strategy without running it: its names
(summary row, daily column, JSON key; record field prefix), how it trades (the
:class:`jaxsim.sim.strategy.UserStrategy` kind of its rule, hence on which day its final-day P&L is
realised), where its final-day P&L sits, its place in the best-strategy tie order and among the
walk-forward Sharpe columns, and for MaxDiff-like strategies the record fields of their fitted
multipliers. Its math lives in :attr:`Strategy.module`, whose ``RECORDS`` maps the row to the function
that scores it; the simulation, the engine, the result tables and the CLI loop over the rows. Adding a
built-in strategy is writing its math and adding one row here.

Pure data (no JAX), so the CLI's JSON writer can read it cheaply.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

__all__ = [
    "OOS_PREFIX",
    "KINDS",
    "SIGNALS_MODULE",
    "MAXDIFF_MODULE",
    "Fit",
    "Strategy",
    "SIMPLE",
    "ALL_SIGNALS",
    "BUY_HOLD",
    "UNPROFIT_SHUTDOWN",
    "ENTRY_TAKEPROFIT",
    "HIGHLOW",
    "MAXDIFF",
    "MAXDIFF_ALWAYS_ON",
    "STRATEGIES",
    "BEST_TIE_ORDER",
    "FITTED",
    "WALK_FORWARD_SHARPE",
    "WALK_FORWARD_SUMMARY",
    "strategy",
    "with_user",
]

# Out-of-sample fields (the final day's position and P&L, the newest forecasts) start with this; the
# result keeps them apart from the records (:attr:`jaxsim.report.result.BacktestResult.oos`).
OOS_PREFIX = "oos_"
# How a strategy trades: positions on the close-to-close return, limit orders scored by the profit
# function, or one round trip a day (:mod:`jaxsim.sim.strategy`).
KINDS = ("signals", "limits", "day_trades")
SIGNALS_MODULE = "jaxsim.sim.strategies"
MAXDIFF_MODULE = "jaxsim.sim.maxdiff"


class Fit(NamedTuple):
    """Record fields of a strategy whose limit levels carry multipliers fitted on its scoring days.

    Its other fit fields follow the prefix: ``<prefix>_close_at_eod``, ``_baseline_return``,
    ``_optimized_return``, ``_turnover``.

    Attributes:
      label: its name in the summary's log lines.
      high_multiplier, low_multiplier: the fitted (mh, ml).
      high_price, low_price: the limit prices ``predicted_high (1 + mh)``, ``predicted_low (1 + ml)``.
    """

    label: str
    high_multiplier: str
    low_multiplier: str
    high_price: str
    low_price: str


@dataclasses.dataclass(frozen=True)
class Strategy:
    """One strategy's row.

    Attributes:
      name: display name (the summary table's row, the daily frame's column, the JSON key).
      prefix: record field prefix: ``<prefix>_return``, ``_sharpe``, ``_avg_daily_return`` (the
        series its forecasted P&L is forecast from), ``_annual_return``, ``_forecasted_pnl``.
      final_day: the record field of its final-day P&L (for entry/take-profit and highlow it is the
        six-day total / 6, as the original computes it: see ``final_day_average``).
      tie_rank: None when the strategy is not a best-strategy candidate; else its place in the tie
        order (0 wins a tie).
      kind: how it trades, one of :data:`KINDS` (None: not known, a user strategy's row). A
        ``"signals"`` strategy's final day is the return R_5 = r_C[e], realised on row e; the order
        kinds' final day is t_5 = e - 1. A built-in ``"limits"`` strategy (MaxDiff) has no position
        field: its fill is read from its P&L; a user one's is its filled position.
      levels: the levels of its day-trade rule (``"own"``: High levels relative to the previous High,
        Low to the previous Low, as the original's forecasts are).
      final_day_average: the ``final_day`` field is the six-day average, so the day's own P&L is the
        out-of-sample field :attr:`last_day_field` (docs/deviations.md#kept-finalday-average).
      walk_forward_rank: None, or its place among the records' ``walk_forward_<prefix>_sharpe`` columns.
      fit: the fitted-multiplier fields (MaxDiff-like strategies), else None.
      aliases: other prefixes of its record fields.
      module: the module that implements its math.
    """

    name: str
    prefix: str
    final_day: str
    tie_rank: int | None = None
    kind: str | None = None
    levels: str = "close"
    final_day_average: bool = False
    walk_forward_rank: int | None = None
    fit: Fit | None = None
    aliases: tuple[str, ...] = ()
    module: str | None = None

    def __iter__(self):
        """A row unpacks as its first four columns, ``name, prefix, final_day, tie_rank``."""
        return iter((self.name, self.prefix, self.final_day, self.tie_rank))

    @property
    def best_candidate(self) -> bool:
        return self.tie_rank is not None

    @property
    def signal(self) -> bool:
        """Its final day is realised on row e (a ``"signals"`` strategy), not on t_5 = e - 1."""
        return self.kind == "signals"

    def field(self, what: str) -> str:
        """The record field ``<prefix>_<what>``."""
        return f"{self.prefix}_{what}"

    @property
    def position_field(self) -> str:
        """Out-of-sample field of the position held on the final day (for a user ``"limits"`` strategy the
        filled position; none for MaxDiff)."""
        return f"{OOS_PREFIX}position_{self.prefix}"

    @property
    def last_day_field(self) -> str:
        """Out-of-sample field of the final day's own P&L (with ``final_day_average``)."""
        return f"{OOS_PREFIX}finalday_{self.prefix}"

    @property
    def entry_field(self) -> str:
        """Out-of-sample field of a ``"day_trades"`` (or user ``"limits"``) strategy's final-day entry level
        (relative to the previous close; :func:`jaxsim.sim.strategies.day_trade_fills`,
        :func:`jaxsim.sim.profit.limit_fills`)."""
        return f"{OOS_PREFIX}entry_{self.prefix}"

    @property
    def exit_field(self) -> str:
        """Out-of-sample field of a ``"day_trades"`` strategy's final-day exit level (as :attr:`entry_field`)."""
        return f"{OOS_PREFIX}exit_{self.prefix}"

    @property
    def walk_forward_sharpe(self) -> str:
        """The records' column of its mean Sharpe (docs/backtest.md#walk-forward-stats)."""
        return f"walk_forward_{self.prefix}_sharpe"


_MAXDIFF_PROFIT = "maxdiffprofit"  # MaxDiff's profit fields are named maxdiffprofit_*

SIMPLE = Strategy("simple", "simple_strategy", "simple_strategy_finalday", 4, "signals", module=SIGNALS_MODULE)
ALL_SIGNALS = Strategy(
    "all_signals", "all_signals_strategy", "all_signals_strategy_finalday", 3, "signals", module=SIGNALS_MODULE
)
BUY_HOLD = Strategy("buy_hold", "buy_hold", "buy_hold_finalday", kind="signals", module=SIGNALS_MODULE)
UNPROFIT_SHUTDOWN = Strategy(
    "unprofit_shutdown", "unprofit_shutdown", "unprofit_shutdown_finalday", kind="signals", module=SIGNALS_MODULE
)
ENTRY_TAKEPROFIT = Strategy(
    "entry_takeprofit",
    "entry_takeprofit",
    "entry_takeprofit_finalday",
    1,
    "day_trades",
    levels="own",
    final_day_average=True,
    walk_forward_rank=1,
    module=SIGNALS_MODULE,
)
HIGHLOW = Strategy(
    "highlow",
    "highlow",
    "highlow_finalday_return",
    0,
    "day_trades",
    levels="own",
    final_day_average=True,
    walk_forward_rank=0,
    module=SIGNALS_MODULE,
)
MAXDIFF = Strategy(
    "maxdiff",
    "maxdiff",
    "maxdiff_finalday_return",
    2,
    "limits",
    walk_forward_rank=2,
    fit=Fit(
        "MaxDiff",
        f"{_MAXDIFF_PROFIT}_profit_high_multiplier",
        f"{_MAXDIFF_PROFIT}_profit_low_multiplier",
        f"{_MAXDIFF_PROFIT}_high_price",
        f"{_MAXDIFF_PROFIT}_low_price",
    ),
    aliases=(_MAXDIFF_PROFIT,),
    module=MAXDIFF_MODULE,
)
MAXDIFF_ALWAYS_ON = Strategy(
    "maxdiffalwayson",
    "maxdiffalwayson",
    "maxdiffalwayson_finalday_return",
    kind="limits",
    walk_forward_rank=3,
    fit=Fit(
        "MaxDiffAlwaysOn",
        "maxdiffalwayson_high_multiplier",
        "maxdiffalwayson_low_multiplier",
        "maxdiffalwayson_high_price",
        "maxdiffalwayson_low_price",
    ),
    module=MAXDIFF_MODULE,
)

# In the original's table order. The best strategy is the argmax of mean return over the five
# candidates, ties going to highlow > entry_takeprofit > maxdiff > all_signals > simple.
STRATEGIES = (SIMPLE, ALL_SIGNALS, BUY_HOLD, UNPROFIT_SHUTDOWN, ENTRY_TAKEPROFIT, HIGHLOW, MAXDIFF, MAXDIFF_ALWAYS_ON)
# Candidate names, first wins a tie.
BEST_TIE_ORDER = tuple(s.name for s in sorted((s for s in STRATEGIES if s.best_candidate), key=lambda s: s.tie_rank))
# The strategies with fitted multipliers: under legacy fitted on the days they are scored on
# (docs/deviations.md#kept-in-sample-fit), re-scored with earlier fits under walk_forward.
FITTED = tuple(s for s in STRATEGIES if s.fit is not None)
# The records' walk_forward_<prefix>_sharpe columns, in the original's order.
WALK_FORWARD_SHARPE = tuple(
    sorted((s for s in STRATEGIES if s.walk_forward_rank is not None), key=lambda s: s.walk_forward_rank)
)
# The strategy behind the original's walk_forward_oos_sharpe and walk_forward_turnover columns.
WALK_FORWARD_SUMMARY = SIMPLE


def strategy(name: str) -> Strategy:
    """The entry of ``name`` (KeyError naming the known strategies otherwise)."""
    for s in STRATEGIES:
        if s.name == name:
            return s
    raise KeyError(f"unknown strategy {name!r}; known: {[s.name for s in STRATEGIES]}")


def with_user(names=(), kinds=None) -> tuple[Strategy, ...]:
    """The eight built-ins followed by the user strategies called ``names`` (their record prefix is the
    name, their final-day field ``<name>_finalday``; never best-strategy candidates). ``kinds`` maps a
    user strategy's name to its kind (:data:`KINDS`) where known."""
    kinds = kinds or {}
    return STRATEGIES + tuple(Strategy(n, n, f"{n}_finalday", kind=kinds.get(n)) for n in names)
