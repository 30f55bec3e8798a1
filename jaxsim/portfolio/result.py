"""The portfolio's result: labelled frames of the replay, statistics, figure, files and tomorrow's plan.

Built after the replay's one ``device_get`` (numpy and pandas). Frames are chronological (oldest first),
indexed by the union calendar's dates.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from jaxsim.report import evaluation
from jaxsim.sim.strategy_table import (
    ALL_SIGNALS,
    BUY_HOLD,
    ENTRY_TAKEPROFIT,
    HIGHLOW,
    MAXDIFF,
    MAXDIFF_ALWAYS_ON,
    SIMPLE,
    UNPROFIT_SHUTDOWN,
)

__all__ = ["PortfolioResult", "plan_frame", "PLAN_COLUMNS"]

PLAN_COLUMNS = ("date", "symbol", "strategy", "side", "entry_price", "exit_price", "weight", "shares")
_SIGNALS = tuple(s.name for s in (SIMPLE, ALL_SIGNALS, BUY_HOLD, UNPROFIT_SHUTDOWN))


def _side_and_prices(strategy: str, row: pd.Series, crypto: bool) -> tuple[str, float, float]:
    """Side, entry and exit limit prices of ``strategy`` on the plan's day from row 0's forecasts
    (NaN price: at the day's close / market; docs/portfolio.md#plan)."""
    close, move = float(row["close"]), float(row["predicted_close"]) - float(row["close"])
    get = lambda field: float(row[field]) if field in row and pd.notna(row[field]) else math.nan  # noqa: E731
    up = "long" if move > 0 else ("flat" if crypto else "short")
    if strategy == MAXDIFF.name:
        high, low = get(MAXDIFF.fit.high_price), get(MAXDIFF.fit.low_price)
        # the side of the dominant limit (docs/backtest.md#maxdiff step 4)
        long = abs(high / close - 1.0) > abs(low / close - 1.0)
        if not long and crypto:
            return "flat", math.nan, math.nan
        return ("long", low, high) if long else ("short", high, low)
    if strategy == MAXDIFF_ALWAYS_ON.name:
        fit = MAXDIFF_ALWAYS_ON.fit
        return ("long" if crypto else "both"), get(fit.low_price), get(fit.high_price)
    if strategy == BUY_HOLD.name:
        return "long", close, math.nan
    if strategy == ENTRY_TAKEPROFIT.name:
        return up, close, get("predicted_high") if up == "long" else get("predicted_low")
    if strategy == HIGHLOW.name:
        if move == 0:
            return "flat", math.nan, math.nan
        return up, (get("predicted_low") if up == "long" else get("predicted_high")), math.nan
    return up, close, math.nan  # signal strategies (and user strategies): close to close


def plan_frame(date, weights: dict, choices: dict, rows: dict, crypto: dict, equity: float) -> pd.DataFrame:
    """Orders for ``date``: one row per symbol with a weight > 0 (largest first, then by symbol)."""
    out = []
    for symbol, weight in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0])):
        if not weight > 0:
            continue
        strategy, row = choices[symbol], rows[symbol]
        side, entry, exit_ = _side_and_prices(strategy, row, crypto[symbol])
        price = entry if math.isfinite(entry) and entry > 0 else float(row["close"])
        step = 0.001 if crypto[symbol] else 1.0
        shares = math.floor(weight * equity / price / step) * step if side != "flat" else 0.0
        out.append((pd.Timestamp(date), symbol, strategy, side, entry, exit_, float(weight), shares))
    return pd.DataFrame(out, columns=list(PLAN_COLUMNS))


@dataclasses.dataclass
class PortfolioResult:
    """The walk-forward portfolio (docs/portfolio.md).

    Attributes:
      rule: the rule that made the decisions (:mod:`jaxsim.portfolio.rules`).
      weights: date x symbol: the stock's weight for that day, decided at the previous close (fraction
        of the equity then).
      choices: date x symbol: the strategy each weight earns (None: no strategy chosen).
      scores: date x symbol: the stock's score (the rule's ranking key; NaN: none).
      contributions: date x symbol: weight x the chosen strategy's daily P&L.
      costs: date: the rebalance cost charged to the day (docs/portfolio.md#costs).
      daily: date: contributions summed minus costs.
      benchmark: date: the universe's equal-weight buy & hold (the mean close-to-close return of the
        stocks trading that day).
      plan: tomorrow's orders (:data:`PLAN_COLUMNS`), for ``equity``.
      strategy_weights: date x (symbol, strategy): the full weights (the smooth rule mixes strategies).
      metadata: the rule, the window, the plan's equity, the symbols.
    """

    rule: Any
    weights: pd.DataFrame
    choices: pd.DataFrame
    scores: pd.DataFrame
    contributions: pd.DataFrame
    costs: pd.Series
    daily: pd.Series
    benchmark: pd.Series
    plan: pd.DataFrame
    strategy_weights: pd.DataFrame = dataclasses.field(repr=False)
    metadata: dict = dataclasses.field(default_factory=dict)
    plan_inputs: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def equity(self) -> pd.Series:
        """Equity from 1: ``cumprod(1 + daily)``."""
        return (1.0 + self.daily).cumprod().rename("equity")

    def plan_for(self, equity: float) -> pd.DataFrame:
        """:attr:`plan` with shares for ``equity`` (the same decision, other share counts)."""
        p = self.plan_inputs
        return plan_frame(p["date"], p["weights"], p["choices"], p["rows"], p["crypto"], float(equity))

    def returns_frame(self) -> pd.DataFrame:
        """date x (``portfolio``, ``equal_weight``): the two daily return series."""
        return pd.DataFrame({"portfolio": self.daily, "equal_weight": self.benchmark})

    def stats(self) -> pd.DataFrame:
        """backtesting.py-style statistics (:func:`jaxsim.report.evaluation.stats_table`) of the portfolio
        and of the equal-weight buy & hold, one column each."""
        frame = self.returns_frame()
        exposure = pd.DataFrame(
            {"portfolio": self.weights.sum(axis=1) > 0, "equal_weight": self.benchmark.notna()}, index=frame.index
        )
        return evaluation.stats_table(
            frame, exposure=exposure, periods_per_year=self.metadata.get("periods_per_year", 252)
        )

    def uncertainty(self, key=None, *, n_trials: int | None = None, n_resamples: int = 1000, level: float = 0.95):
        """Bootstrap intervals, PSR/DSR and PBO of the portfolio and the equal-weight buy & hold
        (:func:`jaxsim.report.evaluation.uncertainty`, as a single stock's ``uncertainty()``).

        ``n_trials``: every rule (and setting) tried before this one, plus the benchmark, so the DSR
        deflates for the search (default 2: this rule and the benchmark). Keyed: the same ``key``
        (default ``jax.random.key(0)``) gives the same numbers.
        """
        import jax

        frame = self.returns_frame()
        return evaluation.uncertainty(
            jax.random.key(0) if key is None else key,
            frame,
            n_resamples=n_resamples,
            level=level,
            n_trials=n_trials or frame.shape[1],
            n_blocks=8 if len(frame) < 128 else 16,
            periods_per_year=self.metadata.get("periods_per_year", 252),
        )

    def plot(self, figsize=(10, 6.5)):
        """Equity against the universe's equal-weight buy & hold, and the weights over time (stacked)."""
        from jaxsim.report.plots import PlotFigure, equity_from_returns  # deferred: matplotlib

        fig = PlotFigure(figsize=figsize, layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
        top.plot(self.daily.index, equity_from_returns(self.daily), label=f"portfolio ({self.metadata.get('rule')})")
        top.plot(self.benchmark.index, equity_from_returns(self.benchmark), label="equal-weight buy & hold", ls="--")
        top.set_ylabel("equity")
        top.legend(loc="upper left")
        top.set_title("Walk-forward portfolio")
        w = self.weights.fillna(0.0)
        bottom.stackplot(w.index, w.to_numpy().T, labels=list(w.columns), step="post")
        bottom.set_ylabel("weight")
        bottom.set_ylim(0, 1)
        bottom.legend(loc="upper left", fontsize="small", ncol=min(len(w.columns), 6))
        return fig

    def files(self) -> dict[str, bytes]:
        """``portfolio.csv`` (daily, costs, equity, equal weight), ``weights.csv``, ``choices.csv``,
        ``plan.csv``, ``portfolio_stats.csv``, ``portfolio.json`` (the rule and settings)."""
        table = pd.DataFrame(
            {"daily": self.daily, "costs": self.costs, "equity": self.equity, "equal_weight": self.benchmark}
        )
        meta = {**self.metadata, "rule_settings": dataclasses.asdict(self.rule)}
        return {
            "portfolio.csv": table.to_csv().encode(),
            "weights.csv": self.weights.to_csv().encode(),
            "choices.csv": self.choices.to_csv().encode(),
            "plan.csv": self.plan.to_csv(index=False).encode(),
            "portfolio_stats.csv": self.stats().to_csv().encode(),
            "portfolio.json": json.dumps(meta, indent=2, default=str).encode(),
        }

    def save(self, directory) -> dict[str, Any]:
        """Write :meth:`files` into ``directory`` atomically (each file replaced by a rename)."""
        from pathlib import Path

        from jaxsim.atomic import write_folder

        out = Path(directory)
        files = self.files()
        write_folder(out, files, exist_ok=True)
        return {name: out / name for name in files}


def _labelled(values: np.ndarray, dates, symbols) -> pd.DataFrame:
    return pd.DataFrame(values, index=dates, columns=pd.Index(symbols, name="symbol"))


def build_result(rule, replay, labels, stocks, benchmark: pd.Series, equity: float) -> PortfolioResult:
    """The :class:`PortfolioResult` of a replay (numpy arrays) with its labels."""
    dates, symbols, strategies = labels.dates, list(labels.symbols), list(labels.strategies)
    names = np.asarray([*strategies, None], dtype=object)  # index -1 -> None
    full = np.asarray(replay.weights, np.float64)
    weights = _labelled(full.sum(-1), dates, symbols)
    choice = np.asarray(replay.choice)
    choices = _labelled(names[choice], dates, symbols)
    columns = pd.MultiIndex.from_product([symbols, strategies], names=["symbol", "strategy"])
    strategy_weights = pd.DataFrame(full.reshape(len(dates), -1), index=dates, columns=columns)
    plan = replay.plan
    plan_weights = dict(zip(symbols, np.asarray(plan.weights, np.float64).sum(-1)))
    plan_choices = dict(zip(symbols, names[np.asarray(plan.choice)]))
    rows = {s.symbol: s.records.iloc[0] for s in stocks}
    crypto = {s.symbol: bool(s.metadata.get("crypto")) for s in stocks}
    plan_inputs = {
        "date": labels.next_date,
        "weights": plan_weights,
        "choices": plan_choices,
        "rows": rows,
        "crypto": crypto,
    }
    crypto_all = all(crypto.values())
    metadata = {
        "rule": type(rule).__name__,
        "window": rule.window,
        "symbols": symbols,
        "strategies": strategies,
        "plan_date": str(labels.next_date.date()),
        "plan_equity": equity,
        "periods_per_year": 365 if crypto_all else 252,
    }
    return PortfolioResult(
        rule=rule,
        weights=weights,
        choices=choices,
        scores=_labelled(np.asarray(replay.score, np.float64), dates, symbols),
        contributions=_labelled(np.asarray(replay.contributions, np.float64), dates, symbols),
        costs=pd.Series(np.asarray(replay.costs, np.float64), index=dates, name="costs"),
        daily=pd.Series(np.asarray(replay.daily, np.float64), index=dates, name="portfolio"),
        benchmark=benchmark.rename("equal_weight"),
        plan=plan_frame(labels.next_date, plan_weights, plan_choices, rows, crypto, equity),
        strategy_weights=strategy_weights,
        metadata=metadata,
        plan_inputs=plan_inputs,
    )
