"""The eight strategies of one simulation as data: names, record fields, best-strategy rule.

Both the compiled backtest (which forecasts each strategy's P&L from its ``avg_daily_return``
column) and the result tables (summary, best strategy, equity curves) read this table.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Strategy", "STRATEGIES", "BEST_TIE_ORDER", "strategy", "with_user"]


class Strategy(NamedTuple):
    """One strategy's entry.

    Attributes:
      name: display name (the summary table's row).
      prefix: record field prefix: ``<prefix>_return``, ``_sharpe``, ``_avg_daily_return``,
        ``_annual_return``, ``_forecasted_pnl``.
      final_day: the record field of its final-day P&L (for entry/take-profit and highlow it is the
        six-day total / 6, as the original computes it).
      tie_rank: None when the strategy is not a best-strategy candidate; else its place in the tie
        order (0 wins a tie).
    """

    name: str
    prefix: str
    final_day: str
    tie_rank: int | None = None

    @property
    def best_candidate(self) -> bool:
        return self.tie_rank is not None


# In the original's table order. The best strategy is the argmax of mean return over the five
# candidates, ties going to highlow > entry_takeprofit > maxdiff > all_signals > simple.
STRATEGIES = (
    Strategy("simple", "simple_strategy", "simple_strategy_finalday", 4),
    Strategy("all_signals", "all_signals_strategy", "all_signals_strategy_finalday", 3),
    Strategy("buy_hold", "buy_hold", "buy_hold_finalday"),
    Strategy("unprofit_shutdown", "unprofit_shutdown", "unprofit_shutdown_finalday"),
    Strategy("entry_takeprofit", "entry_takeprofit", "entry_takeprofit_finalday", 1),
    Strategy("highlow", "highlow", "highlow_finalday_return", 0),
    Strategy("maxdiff", "maxdiff", "maxdiff_finalday_return", 2),
    Strategy("maxdiffalwayson", "maxdiffalwayson", "maxdiffalwayson_finalday_return"),
)
# Candidate names, first wins a tie.
BEST_TIE_ORDER = tuple(s.name for s in sorted((s for s in STRATEGIES if s.best_candidate), key=lambda s: s.tie_rank))


def strategy(name: str) -> Strategy:
    """The entry of ``name`` (KeyError naming the known strategies otherwise)."""
    for s in STRATEGIES:
        if s.name == name:
            return s
    raise KeyError(f"unknown strategy {name!r}; known: {[s.name for s in STRATEGIES]}")


def with_user(names=()) -> tuple[Strategy, ...]:
    """The eight built-ins followed by the user strategies called ``names`` (their record prefix is the
    name, their final-day field ``<name>_finalday``; never best-strategy candidates)."""
    return STRATEGIES + tuple(Strategy(n, n, f"{n}_finalday") for n in names)
