"""``jaxsim.portfolio``: the walk-forward portfolio of many backtested stocks (docs/portfolio.md)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsim.errors import ConfigError
from jaxsim.forecast.interface import Forecaster
from jaxsim.portfolio.core import PortfolioInputs, replay
from jaxsim.portfolio.inputs import (
    StockFrames,
    build_inputs,
    stocks_from_folder,
    stocks_from_results,
    with_daily_forecasts,
)
from jaxsim.portfolio.result import PortfolioResult, build_result
from jaxsim.portfolio.rules import rule_from_name, split_rule

__all__ = ["portfolio", "load_stocks", "run_replay", "equal_weight_returns"]


def load_stocks(results) -> list[StockFrames]:
    """``results`` (a dict symbol -> BacktestResult, or a run / stock folder path) as stock frames."""
    if isinstance(results, (str, Path)):
        return stocks_from_folder(results)
    if isinstance(results, Mapping):
        return stocks_from_results(results)
    raise ConfigError(
        f"portfolio needs a dict symbol -> BacktestResult or a run folder path, got {type(results).__name__}"
    )


def run_replay(inputs: PortfolioInputs, rule):
    """The replay of ``rule`` on numpy ``inputs``, in float64 (:func:`jaxsim.portfolio.core.replay`);
    numpy outputs."""
    skeleton, params = split_rule(rule)
    with jax.enable_x64(True):  # accounting to 1e-8 per day needs float64
        arrays = PortfolioInputs(*(None if a is None else jnp.asarray(a) for a in inputs))
        out = replay(arrays, {k: jnp.float64(v) for k, v in params.items()}, skeleton)
        return jax.device_get(out)


def equal_weight_returns(stocks: list[StockFrames], dates: pd.DatetimeIndex) -> pd.Series:
    """The universe's equal-weight buy & hold: each day the mean close-to-close return of the stocks with
    a row that day and the day before (rebalanced daily; 0 before any stock has two rows)."""
    returns = []
    for s in stocks:
        close = pd.Series(np.asarray(s.records["close"], np.float64), index=pd.DatetimeIndex(s.records["date"]))
        returns.append(close.sort_index().pct_change().reindex(dates))
    return pd.concat(returns, axis=1).mean(axis=1, skipna=True).fillna(0.0)


def portfolio(
    results, rule="original", *, equity: float = 100_000.0, forecaster=None, **rule_settings
) -> PortfolioResult:
    """Replay a portfolio rule walk-forward over every day of many stocks' out-of-sample backtests.

    Each day d the rule sees only data up to the close of d-1: per (stock, strategy) rolling
    statistics of the out-of-sample daily P&L over the last ``window`` days and the forecasted P&L as
    of d-1; it picks a strategy per stock, selects stocks and sizes them; the day's P&L is the sum of
    weight x the chosen strategy's P&L on d, minus the cost of the rebalance (one cash pool, leverage
    <= 1). See docs/portfolio.md for the rule, the alignment and every simplification.

    Args:
      results: a dict symbol -> :class:`jaxsim.BacktestResult` (``backtest_many``), or a run folder
        written by ``run_many`` / ``jaxsim backtest --symbols ... --out DIR`` (or one stock folder).
      rule: a rule name (``"original"``, ``"top_k"``, ``"inverse_vol"``, ``"score_proportional"``,
        ``"smooth"``) or a rule value from :mod:`jaxsim.portfolio.rules`.
      equity: the account size the plan's share counts are for.
      forecaster: None: the forecasted P&L is the rule's point rule on the window (``forecast_point``);
        a forecaster (e.g. the backtests' own, ``jaxsim.forecasters.default()``): each strategy's
        forecasted P&L as of every day by the backtest's rule on its series up to that day
        (docs/portfolio.md#forecast; one extra compiled program, its cost is there too).
      **rule_settings: fields of the rule (e.g. ``window=30``, ``k=5``) overriding its defaults.

    Returns:
      :class:`jaxsim.portfolio.result.PortfolioResult`.
    """
    rule = rule_from_name(rule, **rule_settings)
    if forecaster is not None and not isinstance(forecaster, Forecaster):
        raise ConfigError(
            f"portfolio: forecaster must be None or a jaxsim forecaster (jaxsim.forecasters.*), "
            f"got {type(forecaster).__name__}"
        )
    if not (isinstance(equity, (int, float)) and np.isfinite(equity) and equity > 0):
        raise ConfigError(f"equity must be a positive number, got {equity!r}")
    stocks = load_stocks(results)
    legacy = [s.symbol for s in stocks if s.protocol == "legacy"]
    if legacy:  # MaxDiff's multipliers fitted on the days it is scored: its daily P&L is in sample
        warnings.warn(
            f"portfolio: {', '.join(legacy)} ran under protocol 'legacy' (in-sample MaxDiff fits, "
            "docs/deviations.md#kept-in-sample-fit); backtest with protocol='walk_forward' for an out-of-sample replay",
            stacklevel=2,
        )
    inputs, labels = build_inputs(stocks)
    if forecaster is not None:
        inputs = with_daily_forecasts(inputs, stocks, forecaster)
    out = run_replay(inputs, rule)
    result = build_result(rule, out, labels, stocks, equal_weight_returns(stocks, labels.dates), float(equity))
    result.metadata["forecasted_pnl"] = f"point rule {rule.forecast_point!r}" if forecaster is None else forecaster.kind
    return result
