"""The portfolio's pandas edge: backtest results (or a run folder) -> arrays on the union calendar.

Alignment (docs/portfolio.md#alignment). A stock's daily frame (:attr:`BacktestResult.daily`) has one
row per simulation date e_k, the P&L earned on that day (MaxDiff, always-on, entry/take-profit and
highlow: scored by the simulation ending one row later, so known one trading day late); its records
(row 0 the newest) carry, per simulation dated e_k, the per-simulation average daily return of each
strategy (the series the forecasted P&L forecasts) and the forecasts made at the close of e_k for the stock's next row
(``predicted_close``, ``realized_volatility_pct``, the limit prices). Both are placed on the union of
all stocks' dates; a stock has a value only on its own dates (``trading``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from jaxsim.engine.daily_forecasted_pnl import daily_forecasted_pnl
from jaxsim.errors import ConfigError
from jaxsim.portfolio.core import PortfolioInputs
from jaxsim.sim.strategy_table import with_user

__all__ = [
    "StockFrames",
    "Labels",
    "stocks_from_results",
    "stocks_from_folder",
    "build_inputs",
    "plan_date",
    "stock_keys",
    "with_daily_forecasts",
]

# record fields the portfolio reads (besides each strategy's <prefix>_avg_daily_return)
NEEDED_RECORD_FIELDS = ("date", "close", "predicted_close", "realized_volatility_pct")


@dataclasses.dataclass(frozen=True)
class StockFrames:
    """What the portfolio needs of one stock: its ``daily`` frame (date x strategy, oldest first), its
    ``records`` (row 0 the newest) and its run ``metadata`` (fee, spread, crypto, last_date)."""

    symbol: str
    daily: pd.DataFrame
    records: pd.DataFrame
    metadata: dict
    protocol: str | None = None


@dataclasses.dataclass(frozen=True)
class Labels:
    """Labels of the replay's axes: ``dates`` (the union calendar), ``symbols``, ``strategies``, and the
    plan's ``next_date``."""

    dates: pd.DatetimeIndex
    symbols: tuple[str, ...]
    strategies: tuple[str, ...]
    next_date: pd.Timestamp


def stocks_from_results(results: Mapping) -> list[StockFrames]:
    """A dict symbol -> :class:`~jaxsim.report.result.BacktestResult` as :class:`StockFrames`."""
    if not isinstance(results, Mapping) or not results:
        raise ConfigError("portfolio needs a non-empty dict symbol -> BacktestResult, or a run folder")
    stocks = []
    for symbol, result in results.items():
        if not hasattr(result, "daily") or not hasattr(result, "records"):
            raise ConfigError(f"portfolio: {symbol!r} is not a BacktestResult (got {type(result).__name__})")
        stocks.append(
            StockFrames(
                str(symbol), result.daily, result.records, dict(result.metadata), getattr(result, "protocol", None)
            )
        )
    return stocks


def _stock_folder(folder: Path) -> StockFrames:
    missing = [name for name in ("daily.csv", "records.csv", "metadata.json") if not (folder / name).is_file()]
    if missing:
        raise ConfigError(
            f"portfolio: {folder} lacks {', '.join(missing)} (a stock folder of jaxsim backtest --out / run_many "
            "holds them; rerun the backtest with --out to write them)"
        )
    daily = pd.read_csv(folder / "daily.csv", index_col=0, parse_dates=True)
    daily.index.name = "date"
    records = pd.read_csv(folder / "records.csv", parse_dates=["date"]).iloc[::-1].reset_index(drop=True)
    metadata = json.loads((folder / "metadata.json").read_text())
    return StockFrames(str(metadata.get("symbol") or folder.name), daily, records, metadata, metadata.get("protocol"))


def stocks_from_folder(path) -> list[StockFrames]:
    """A run folder (``<SYMBOL>/`` stock folders, docs/output.md#run-folder) or one stock folder."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"portfolio: no such run folder: {path}")
    if (path / "daily.csv").is_file():
        return [_stock_folder(path)]
    folders = sorted(p for p in path.iterdir() if p.is_dir() and (p / "metadata.json").is_file())
    if not folders:
        raise ConfigError(f"portfolio: {path} holds no stock folders (<SYMBOL>/ with metadata.json)")
    return [_stock_folder(p) for p in folders]


def _check(stocks: list[StockFrames]) -> tuple[str, ...]:
    strategies = tuple(stocks[0].daily.columns)
    for s in stocks:
        if tuple(s.daily.columns) != strategies:
            raise ConfigError(
                f"portfolio: {s.symbol}'s strategies {list(s.daily.columns)} differ from {stocks[0].symbol}'s "
                f"{list(strategies)} (run every stock with the same strategies)"
            )
        missing = [f for f in NEEDED_RECORD_FIELDS if f not in s.records]
        if missing:
            raise ConfigError(f"portfolio: {s.symbol}'s records lack {missing}")
        if len(s.daily) == 0:
            raise ConfigError(f"portfolio: {s.symbol} has no out-of-sample days")
    if len({s.symbol for s in stocks}) != len(stocks):
        raise ConfigError("portfolio: a symbol appears twice")
    return strategies


def plan_date(stocks: list[StockFrames], last: pd.Timestamp, active: np.ndarray) -> pd.Timestamp:
    """The plan's day: the row after the newest simulation's (the data's final row, which no simulation
    uses, docs/backtest.md#walk-forward-geometry) where the metadata names it, else the next weekday (the
    next day when every active stock is crypto)."""
    after = [
        pd.Timestamp(s.metadata["last_date"])
        for s, a in zip(stocks, active)
        if a and s.metadata.get("last_date") and pd.Timestamp(s.metadata["last_date"]) > last
    ]
    if after:
        return min(after)
    crypto = all(bool(s.metadata.get("crypto")) for s, a in zip(stocks, active) if a)
    return last + (pd.Timedelta(days=1) if crypto else pd.offsets.BDay(1))


def build_inputs(stocks: list[StockFrames]) -> tuple[PortfolioInputs, Labels]:
    """Float64 numpy :class:`~jaxsim.portfolio.core.PortfolioInputs` on the union calendar, and the labels."""
    strategies = _check(stocks)
    dates = pd.DatetimeIndex(sorted(set().union(*(s.daily.index for s in stocks))), name="date")
    n_dates, n_stocks, n_strats = len(dates), len(stocks), len(strategies)
    pnl = np.full((n_dates, n_stocks, n_strats), np.nan)
    series = np.full_like(pnl, np.nan)
    trading = np.zeros((n_dates, n_stocks), bool)
    edge = np.full((n_dates, n_stocks), np.nan)
    sigma = np.full_like(edge, np.nan)
    known = np.full_like(pnl, np.nan)
    user = [c for c in strategies if c not in {x.name for x in with_user()}]
    table = with_user(user, stocks[0].metadata.get("user_strategy_kinds") or {})
    prefixes = {s.name: s.prefix for s in table}
    # t_5 strategies: the backtest ending on e scores them up to e - 1: known one trading day late
    late = np.array([not next(s for s in table if s.name == name).signal for name in strategies])
    for i, s in enumerate(stocks):
        rows = dates.get_indexer(s.daily.index)
        values = s.daily.to_numpy(np.float64)
        pnl[rows, i, :] = values
        known[rows, i, :] = np.where(late, np.vstack([np.full((1, len(strategies)), np.nan), values[:-1]]), values)
        trading[rows, i] = True
        rec = s.records.set_index(pd.DatetimeIndex(s.records["date"])).reindex(s.daily.index)
        for j, name in enumerate(strategies):
            field = f"{prefixes[name]}_avg_daily_return"
            if field in rec:
                series[rows, i, j] = rec[field].to_numpy(np.float64)
        close = rec["close"].to_numpy(np.float64)
        edge[rows, i] = np.abs(rec["predicted_close"].to_numpy(np.float64) - close) / close * 100.0
        sigma[rows, i] = rec["realized_volatility_pct"].to_numpy(np.float64)
    fee = np.array([float(s.metadata.get("fee") or 0.0) for s in stocks])
    spread = np.array([float(s.metadata.get("spread") or 1.0) for s in stocks])
    crypto = np.array([bool(s.metadata.get("crypto")) for s in stocks])
    active = trading[-1].copy()  # stocks with a row on the calendar's last day may trade the next
    inputs = PortfolioInputs(pnl, known, series, trading, edge, sigma, fee, np.abs(spread - 1.0) * 1e4, crypto, active)
    labels = Labels(dates, tuple(s.symbol for s in stocks), strategies, plan_date(stocks, dates[-1], active))
    return inputs, labels


def stock_keys(stocks: list[StockFrames]) -> list:
    """Each stock's backtest key (``metadata["stock_key"]``, the key its forecasted P&L drew with), or,
    for results that do not record it, the symbol rule's key of the run's seed
    (:func:`jaxsim.shell.plan.stock_key`)."""
    from jaxsim.shell.plan import stock_key

    keys = []
    for s in stocks:
        data = s.metadata.get("stock_key")
        if data is not None:
            keys.append(jax.random.wrap_key_data(np.asarray(data, np.uint32)))
        else:
            keys.append(stock_key(jax.random.key(int(s.metadata.get("seed") or 0)), s.symbol))
    return keys


def with_daily_forecasts(inputs: PortfolioInputs, stocks: list[StockFrames], forecaster, stock_chunk: int = 8):
    """``inputs`` with ``forecast``: each strategy's forecasted P&L from its series up to each date of
    the union calendar, by ``forecaster`` (:func:`jaxsim.engine.daily_forecasted_pnl.daily_forecasted_pnl`;
    a stock's missing days are NaN, which the rule drops, so a date's value is that of the stock's
    own series up to it)."""
    series = np.transpose(inputs.series, (1, 2, 0))  # (S, J, D), oldest first
    keys = jax.numpy.stack(stock_keys(stocks))
    values, _ = daily_forecasted_pnl(forecaster, series, keys, stock_chunk=stock_chunk)
    return inputs._replace(forecast=np.transpose(values, (2, 0, 1)))
