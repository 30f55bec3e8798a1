"""The backtest result: per-simulation records, the per-strategy summary, best strategy, plot, save,
and the out-of-sample frames and statistics (daily P&L, equity, stats, uncertainty, forecasts, skill).

Everything here runs after the compiled program has returned (numpy and pandas; the statistics call
the jitted :mod:`jaxsim.stats` functions).

* ``records``: one row per simulation, row 0 the most recent (docs/backtest.md#record-fields names;
  docs/backtest.md#walk-forward-stats's walk-forward constants broadcast to every row). Six-day series
  (``*_profit_values``, ``close_ci_band``) are lists in one cell each.
* ``summary``: one row per strategy (docs/backtest.md#summary-table), the original's table, kept for
  comparability: column means over the N simulations, each of a different six-day quantity (see
  :attr:`BacktestResult.summary`). It is not the statistics of the equity curve: use ``stats()``.
* ``best_strategy``: docs/backtest.md#best-strategy.
* ``daily`` / ``equity`` / ``exposure``: the out-of-sample daily P&L per strategy
  (:func:`jaxsim.report.evaluation.daily_frame` gives the rule), its equity and the days with a position.
* ``stats()``: backtesting.py's stats table per strategy; ``uncertainty()``: bootstrap intervals,
  PSR/DSR, PBO and the verdict; ``forecasts`` / ``draws`` / ``skill()``: each simulation's newest
  forecast against its realisation.
* ``trades()``: the round trips (:mod:`jaxsim.report.trades`); ``report(path)``: the HTML page
  (:mod:`jaxsim.report.html`); ``save(dir)``: every file of an ``--out`` folder (docs/output.md).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from jaxsim.atomic import write_folder
from jaxsim.data.prices import as_prices
from jaxsim.engine.oos import PREFIX
from jaxsim.errors import ConfigError
from jaxsim.report import evaluation, plot_data, seeds
from jaxsim.sim.strategy_table import (
    BEST_TIE_ORDER,
    FITTED,
    MAXDIFF,
    WALK_FORWARD_SHARPE,
    WALK_FORWARD_SUMMARY,
    with_user,
)

__all__ = ["BacktestResult", "records_frame", "summary_frame", "best_strategy", "SUMMARY_DESCRIPTION", "SUMMARY_UNITS"]

# row 0's limit prices of the fitted strategies, then the predicted prices
LIMIT_PRICE_FIELDS = (
    *(field for s in FITTED for field in (s.fit.high_price, s.fit.low_price)),
    "predicted_close",
    "predicted_high",
    "predicted_low",
)


def records_frame(arrays: dict[str, np.ndarray], dates) -> pd.DataFrame:
    """Per-simulation DataFrame from ``(N, ...)`` arrays; ``dates`` are the rows e_k (``(N,)``)."""
    n = len(dates)
    columns: dict[str, Any] = {"date": pd.to_datetime(np.asarray(dates))}
    for name, value in arrays.items():
        value = np.asarray(value)
        if value.ndim == 1:
            columns[name] = value
        else:
            columns[name] = [row.tolist() for row in value.reshape(n, -1)]
    frame = pd.DataFrame(columns)
    # docs/backtest.md#walk-forward-stats: walk-forward constants broadcast to every row.
    frame["walk_forward_oos_sharpe"] = frame[WALK_FORWARD_SUMMARY.field("sharpe")].mean()
    frame["walk_forward_turnover"] = frame[WALK_FORWARD_SUMMARY.field("return")].abs().mean()
    for s in WALK_FORWARD_SHARPE:
        frame[s.walk_forward_sharpe] = frame[s.field("sharpe")].mean()
    return frame


def summary_frame(records: pd.DataFrame, protocol: str, user: tuple | list = ()) -> pd.DataFrame:
    """Per-strategy column means (docs/backtest.md#summary-table): Return, Sharpe, AnnualRet, ForecastRet, FinalDay.

    ``user`` names the user strategies (:mod:`jaxsim.sim.strategy`) whose rows follow the eight built-ins.
    """
    rows = []
    for s in with_user(user):
        forecast = f"{s.prefix}_forecasted_pnl"
        rows.append(
            {
                "Strategy": s.name,
                "Return": records[f"{s.prefix}_return"].mean(),
                "Sharpe": records[f"{s.prefix}_sharpe"].mean(),
                "AnnualRet": records[f"{s.prefix}_annual_return"].mean(),
                "ForecastRet": records[forecast].mean() if forecast in records else np.nan,
                "FinalDay": records[s.final_day].mean(),
            }
        )
    frame = pd.DataFrame(rows).set_index("Strategy")
    frame.attrs["protocol"] = protocol
    frame.attrs["description"] = SUMMARY_DESCRIPTION
    return frame


SUMMARY_DESCRIPTION = (
    "the original's six-day-window table: each column is the mean over the N simulations of a quantity of "
    "that simulation's six evaluation days (Return: their total; Sharpe: of the six daily values x sqrt(252); "
    "AnnualRet: their mean daily return x 252; fractions), not statistics of the equity curve (stats())"
)
# the command line's units of the summary table: column -> (printed name, scale)
SUMMARY_UNITS = {
    "Return": ("Return [%]", 100.0),
    "Sharpe": ("Sharpe", 1.0),
    "AnnualRet": ("AnnualRet [%]", 100.0),
    "ForecastRet": ("ForecastRet [%]", 100.0),
    "FinalDay": ("FinalDay [%]", 100.0),
}


def best_strategy(summary: pd.DataFrame) -> str:
    """Argmax of mean return over the candidates of :data:`jaxsim.sim.strategy_table.STRATEGIES`
    (docs/backtest.md#best-strategy).

    A non-finite mean counts as -inf; ties go by the table's tie order (highlow > entry_takeprofit >
    maxdiff > all_signals > simple).
    """
    best, best_value = None, -np.inf
    for name in BEST_TIE_ORDER:
        value = float(summary.loc[name, "Return"])
        value = value if np.isfinite(value) else -np.inf
        if best is None or value > best_value:
            best, best_value = name, value
    return best


@dataclasses.dataclass
class BacktestResult:
    """Result of one stock's backtest.

    Attributes:
      symbol: the symbol (or None).
      protocol: ``"legacy"`` or ``"walk_forward"``.
      records: per-simulation DataFrame, row 0 the most recent.
      summary: the original's per-strategy table (docs/backtest.md#summary-table), each column the
        mean over the N simulations of a per-simulation number:

        * ``Return``: the simulation's total over its six evaluation days, compounded for simple,
          all_signals, buy_hold and unprofit_shutdown, summed for entry_takeprofit, highlow and the
          MaxDiffs (adjusted = baseline + 0.3 optimised); buy_hold's is an unconditional hold
          ``prod(1 + R) - 1 - fee``, while its other columns use the forecast-gated signals.
        * ``Sharpe``: mean over std of the six daily values times sqrt(252) (365 for crypto); six
          overlapping values, so 10-30 is common and it is not the Sharpe of the equity curve.
        * ``AnnualRet``: the six-day mean daily return times 252 (365).
        * ``ForecastRet``: the forecasted next daily return of the strategy
          (docs/backtest.md#forecasted-pnl), one value per stock.
        * ``FinalDay``: the mean of the final-day field (entry_takeprofit, highlow: the six-day
          average, docs/deviations.md#kept-finalday-average).

        Fractions, not percent (the command line prints percent: :meth:`summary_text`).
        ``summary.attrs["protocol"]`` names the protocol, ``summary.attrs["description"]`` says what
        the table is (:data:`SUMMARY_DESCRIPTION`).
      best_strategy: name of the best strategy (docs/backtest.md#best-strategy).
      limit_prices: row 0's MaxDiff / always-on limit prices and predicted close/high/low.
      metadata: run settings (forecaster, targets, fee, spread, N, sample count, timings) and, per
        strategy, which rule gave the forecasted P&L (``forecasted_pnl_source``).
      oos: the program's out-of-sample arrays (``oos_*``, :mod:`jaxsim.engine.oos`), row order as
        ``records``; empty for results built without them.
    """

    symbol: str | None
    protocol: str
    records: pd.DataFrame
    summary: pd.DataFrame
    best_strategy: str
    limit_prices: dict[str, float]
    metadata: dict[str, Any]
    oos: dict[str, np.ndarray] = dataclasses.field(default_factory=dict, repr=False, compare=False)
    seeds: tuple = dataclasses.field(default=(), repr=False, compare=False)

    def with_seeds(self, results) -> BacktestResult:
        """This result holding every forecast seed's result (``results[0]`` is this one's seed)."""
        return dataclasses.replace(self, seeds=tuple(results))

    @property
    def seed_results(self) -> tuple[BacktestResult, ...]:
        """Every forecast seed's result (``n_seeds`` > 1), this one first; ``(self,)`` for one seed."""
        return self.seeds or (self,)

    def seed_spread(self, quantiles: tuple[float, float] = (0.1, 0.9)) -> pd.DataFrame:
        """How much each statistic moves with the forecast seed (docs/protocols.md#seeds).

        Rows ``(strategy, statistic)``: the summary's ``Return`` and ``Sharpe`` (six-day means) and every
        numeric row of :meth:`stats`; columns ``mean``, ``min``, ``max``, the ``quantiles`` band
        (``q10``, ``q90``) and one column per seed (``seed 0``, ...). One seed gives min = max = mean.
        """
        return seeds.seed_spread_frame(
            [r.seed_table() for r in self.seed_results],
            [r.metadata.get("seed", j) for j, r in enumerate(self.seed_results)],
            quantiles,
        )

    def seed_table(self) -> pd.DataFrame:
        """One seed's statistics, strategy x statistic (the rows :meth:`seed_spread` compares)."""
        stats = self.stats().T
        numeric = stats.apply(pd.to_numeric, errors="coerce")
        numeric = numeric.loc[:, numeric.notna().any()].astype(float)
        summary = self.summary[["Return", "Sharpe"]].add_prefix("Summary ")
        return summary.join(numeric)

    def seed_verdict(self, key=None, n_resamples: int = 1000, level: float = 0.95) -> str:
        """The verdict pooled over the forecast seeds: a strategy beats zero only if its bootstrap
        interval of the mean daily return lies above 0 for every seed (docs/protocols.md#seeds);
        strategies fitted in-sample (``legacy``) never count."""
        found = [r.uncertainty(key, n_resamples=n_resamples, level=level) for r in self.seed_results]
        return seeds.pooled_verdict(found, level)

    def header_lines(self) -> list[str]:
        """What was run: the stock, the evaluated dates, N, protocol, forecaster and seed(s)."""
        m, d = self.metadata, self.daily.index
        span = f"{d[0].date()} .. {d[-1].date()}" if len(d) else "no days"
        n = self.n_sims
        sims = f"{n} simulations" + (
            " (the full history: one per trading day)" if m.get("n_sims_setting") == "all" else ""
        )
        used = [r.metadata.get("seed", 0) for r in self.seed_results]
        seed_text = f"seed {used[0]}" if len(used) == 1 else f"seeds {used[0]}..{used[-1]} ({len(used)})"
        if m.get("key_given"):
            seed_text = "the run key passed as key="
        protocol = {
            "walk_forward": "walk_forward (MaxDiff fitted on earlier days only)",
            "legacy": "legacy (the original's: MaxDiff fitted in-sample, on the days it is scored on)",
        }.get(self.protocol, self.protocol)
        lines = [
            f"{self.symbol or '?'}: evaluated {span}, {sims}",
            f"protocol {protocol}; forecaster {m.get('forecaster_label', m.get('forecaster', '?'))}; {seed_text}",
        ]
        if isinstance(m.get("n_sims_setting"), int) and n < 252:
            lines.append(f"note: {n} trading days (about {n / 21:.0f} months): annualised figures extrapolate them")
        return lines

    @classmethod
    def from_arrays(cls, symbol, protocol, arrays, dates, metadata) -> BacktestResult:
        oos = {k: np.asarray(v) for k, v in arrays.items() if k.startswith(PREFIX)}
        arrays = {k: v for k, v in arrays.items() if not k.startswith(PREFIX)}
        records = records_frame(arrays, dates)
        if (
            "close_prediction_source" not in records
        ):  # docs/backtest.md#record-fields: which model produced the close forecast
            records.insert(2, "close_prediction_source", metadata.get("forecaster", "unknown"))
        summary = summary_frame(records, protocol, metadata.get("user_strategies", ()))
        limits = {k: float(records[k].iloc[0]) for k in LIMIT_PRICE_FIELDS if k in records}
        return cls(symbol, protocol, records, summary, best_strategy(summary), limits, dict(metadata), oos)

    @property
    def n_sims(self) -> int:
        return len(self.records)

    # ------------------------------------------------------------------ out-of-sample frames and stats
    @functools.cached_property
    def daily(self) -> pd.DataFrame:
        """Out-of-sample daily P&L, date x strategy (fractions; NaN: no value that day).

        One final evaluation day per simulation, chronological; the rule per strategy (which day,
        which field, walk_forward's fitted days only) is :func:`jaxsim.report.evaluation.daily_frame`'s.
        """
        return evaluation.daily_frame(self.records, self.oos, self.protocol, self.metadata.get("user_strategy_kinds"))

    @property
    def equity(self) -> pd.DataFrame:
        """Equity per strategy from 1: ``cumprod(1 + daily)``, flat on days without a value."""
        return (1.0 + self.daily.fillna(0.0)).cumprod()

    @functools.cached_property
    def exposure(self) -> pd.DataFrame:
        """Days with a position, date x strategy (bool), for ``Exposure Time [%]`` and ``# Trades``."""
        return evaluation.exposure_frame(self.daily, self.oos, self.metadata.get("user_strategy_kinds"))

    @property
    def closes(self) -> pd.Series | None:
        """Closes over the daily frame's dates (plus the close before the first) for Buy & Hold."""
        return evaluation.buy_hold_closes(self.records, self.oos, self.metadata.get("pnl_start_date"))

    def stats(self, prices=None) -> pd.DataFrame:
        """backtesting.py's statistics of :attr:`daily` and :meth:`trades`, one column per strategy.

        Rows: Start (the close the equity starts from), End, Duration, Exposure Time [%], Return [%],
        Buy & Hold Return [%] (the stock's closes over the same dates), Return (Ann.) [%], Volatility
        (Ann.) [%], CAGR [%], Sharpe Ratio, Sortino Ratio (backtesting.py's compounded formulas),
        Sharpe (empyrical), Sortino (empyrical) (empyrical's and quantstats' arithmetic ones), Calmar
        Ratio, Max. Drawdown [%], Max. Drawdown Duration (calendar Timedelta), # Trades (round trips),
        Win Rate [%], Profit Factor, Expectancy [%] (over the round trips)
        (:func:`jaxsim.stats.frames.stats_frame`; docs/statistics.md maps every row to its convention).
        Annualised with 252 days (365 under the crypto rule). ``prices``: as :meth:`trades`' (with
        them, an always-on day that filled both sides counts two round trips).
        """
        return self._stats(self.trades(prices))

    def _stats(self, trades: pd.DataFrame) -> pd.DataFrame:
        return evaluation.stats_table(
            self.daily,
            exposure=self.exposure,
            close=self.closes,
            trades=trades,
            periods_per_year=evaluation.periods_per_year(self.metadata),
        )

    def uncertainty(
        self, key=None, *, n_resamples: int = 1000, level: float = 0.95, n_trials: int | None = None, n_blocks: int = 16
    ) -> evaluation.Uncertainty:
        """Bootstrap intervals (Sharpe, CAGR, mean daily return), PSR/DSR of the best-Sharpe pick, PBO
        (CSCV), Hansen's SPA and Romano-Wolf's StepM against zero and buy & hold (arch.bootstrap)
        over the strategies of :attr:`daily`, and the verdict line with its rule (docs/statistics.md).

        Keyed and reproducible: the same ``key`` (default ``jax.random.key(seed)``, the run's seed
        where the metadata records one, else 0) gives the same numbers, the SPA / StepM p-values
        included (their numpy seed is drawn from the key). ``n_trials``: strategies tried (default 8,
        the table's). See :class:`jaxsim.report.evaluation.Uncertainty`.
        """
        key = jax.random.key(int(self.metadata.get("seed", 0))) if key is None else key
        return evaluation.uncertainty(
            key,
            self.daily,
            n_resamples=n_resamples,
            level=level,
            n_trials=n_trials,
            n_blocks=n_blocks,
            periods_per_year=evaluation.periods_per_year(self.metadata),
        )

    @functools.cached_property
    def forecasts(self) -> pd.DataFrame:
        """Each simulation's newest forecast and its realisation, date x (target, field): ``point``,
        ``band`` (P60-P40), ``q0.1``/``q0.5``/``q0.9``, ``realised`` (the price return r_X[e]),
        ``crps``, ``pit`` (:func:`jaxsim.report.evaluation.forecasts_frame`)."""
        return evaluation.forecasts_frame(self.records, self.oos, self.metadata.get("targets", ()))

    @property
    def draws(self) -> evaluation.LabelledArray | None:
        """The draws behind :attr:`forecasts`, dims ``("target", "date", "sample")``; None unless the
        backtest ran with ``return_samples=True``."""
        return evaluation.draws_array(self.records, self.oos, self.metadata.get("targets", ()))

    def skill(self, n_bins: int = 10) -> pd.DataFrame:
        """Forecast skill per target (:func:`jaxsim.report.evaluation.skill_frame`): MAE, RMSE and their
        skill against the zero-return forecast, directional accuracy with its binomial p-value, CRPS
        and its skill, coverage of the 10-90% band, PIT histogram."""
        return evaluation.skill_frame(self.forecasts, self.draws, n_bins=n_bins)

    def maxdiff_lines(self) -> list[str]:
        """Row 0's log lines of docs/backtest.md#maxdiff-log-line, #maxdiff-always-on (4 decimals)."""
        r = self.records.iloc[0]
        if "walk_forward_fitted" in self.records and not bool(r["walk_forward_fitted"]):
            # walk_forward with N <= 6: row 0 has no earlier fitted window, nothing was optimised for it
            return [
                f"{s.fit.label}: no fitted window (walk_forward needs N >= 7 simulations): default multipliers "
                f"(0, 0) -> return={r[s.field('return')]:.4f}"
                for s in FITTED
            ]
        return [
            f"{s.fit.label}: baseline={r[s.field('baseline_return')]:.4f} "
            f"optimized={r[s.field('optimized_return')]:.4f} (mult_h={r[s.fit.high_multiplier]:.4f} "
            f"mult_l={r[s.fit.low_multiplier]:.4f} close_at_eod={bool(r[s.field('close_at_eod')])}) "
            f"-> adjusted={r[s.field('return')]:.4f}"
            for s in FITTED
        ]

    def summary_text(self, units: bool = True) -> str:
        """The table the original prints, plus the protocol and best strategy.

        The title line says what the table is (:attr:`summary`: means of six-day windows). ``units``:
        returns in percent with the unit in the column name (``AnnualRet [%]``, 2 decimals); False
        prints the original's bare fractions (4 decimals).
        """
        title = (
            f"Backtest summary for {self.symbol or '?'} ({self.n_sims} simulations, protocol {self.protocol}): "
            "the original's six-day-window means, not the equity curve's statistics (result.stats())"
        )
        if units:
            shown = pd.DataFrame(
                {
                    SUMMARY_UNITS[c][0] if c in SUMMARY_UNITS else c: v * SUMMARY_UNITS.get(c, ("", 1.0))[1]
                    for c, v in self.summary.items()
                }
            )
            table = shown.to_string(
                formatters={c: (lambda v: f"{v:.4f}") if c == "Sharpe" else (lambda v: f"{v:.2f}") for c in shown}
            )
        else:
            table = self.summary.to_string(float_format=lambda v: f"{v:.4f}")
        return "\n".join(
            [
                *self.header_lines(),
                title,
                table,
                *self.maxdiff_lines(),
                f"Best strategy: {self.best_strategy} (the original's rule: the highest mean Return in this table; "
                "the verdict below judges the out-of-sample daily P&L instead)",
            ]
        )

    def plot(
        self,
        kind: str = "equity",
        *,
        prices=None,
        sim: int = 0,
        strategy: str = MAXDIFF.name,
        resolution: int = 81,
        key=None,
        n_resamples: int = 1000,
    ):
        """A figure of the result (:mod:`jaxsim.report.plots`); never touches pyplot or the backend.

        Args:
          kind: ``"equity"`` (equity per strategy, drawdown panel, buy-and-hold), ``"fan"`` (one-step
            forecast bands, point and realised return), ``"heatmap"`` (simulation ``sim``'s MaxDiff
            objective ``J(mh, ml)`` with the chosen multipliers; needs ``prices``) or ``"bootstrap"``
            (bootstrap distribution of each strategy's Sharpe ratio).
          prices: the prices the backtest ran on, as anything :func:`jaxsim.backtest` accepts (a
            ``Prices``, a DataFrame, a file path or a bundled sample name; :func:`jaxsim.as_prices`):
            needed by the heatmap; for equity, the buy-and-hold line then starts from the close before
            the first day.
          sim, strategy, resolution: heatmap: the simulation (0 = most recent), ``"maxdiff"`` or
            ``"maxdiffalwayson"``, grid points per axis.
          key, n_resamples: bootstrap: PRNG key (default ``jax.random.key(0)``) and resample count.

        Returns:
          a :class:`jaxsim.report.plots.PlotFigure` (a matplotlib Figure; shows inline in Jupyter).
        """
        from jaxsim.report import plots  # deferred: matplotlib loads only when a figure is drawn

        if prices is not None:
            prices = as_prices(prices, symbol=self.symbol)  # an unnamed frame is this result's stock
        name = self.symbol or ""
        if kind == "equity":
            return plots.equity_figure(
                plot_data.daily_returns(self),
                plot_data.benchmark_close(self, prices),
                title=f"{name} equity per strategy (final-day P&L, {self.protocol})",
            )
        if kind == "fan":
            return plots.fan_figure(
                plot_data.forecast_frames(self),
                title=f"{name} one-step forecasts ({self.metadata.get('forecaster', '?')})",
            )
        if kind == "heatmap":
            if prices is None:
                raise ConfigError("plot('heatmap') needs prices=: the Prices the backtest ran on")
            land = plot_data.maxdiff_landscape(self, prices, sim=sim, strategy=strategy, resolution=resolution)
            date = pd.Timestamp(self.records["date"].iloc[sim]).date()
            return plots.heatmap_figure(
                land.mh,
                land.ml,
                land.values,
                land.chosen,
                title=f"{name} {strategy} J(mh, ml), simulation {sim} ({date}, "
                f"eod={land.close_at_eod}, {self.protocol})",
            )
        if kind == "bootstrap":
            samples, estimates = plot_data.sharpe_bootstrap(plot_data.daily_returns(self), key, n_resamples=n_resamples)
            return plots.bootstrap_figure(
                samples, estimates, title=f"{name} bootstrap Sharpe ({n_resamples} stationary-bootstrap resamples)"
            )
        raise ConfigError(f"plot kind must be 'equity', 'fan', 'heatmap' or 'bootstrap', got {kind!r}")

    def trades(self, prices=None) -> pd.DataFrame:
        """The round trips, one row per strategy and out-of-sample day with a position, oldest first
        (:func:`jaxsim.report.trades.trades_frame`: strategy, side, entry/exit date and price, return,
        kind). ``prices``: the prices the backtest ran on (a DataFrame, path or
        :class:`~jaxsim.data.prices.Prices`), for the MaxDiff fill prices."""
        from jaxsim.report.trades import trades_frame

        return trades_frame(self, _as_prices(prices, self.symbol))

    def table_files(self, prices=None) -> dict[str, bytes]:
        """The out-of-sample tables as files, every one oldest first with flat column names:
        ``daily.csv`` (date x strategy), ``equity.csv`` (:attr:`equity`), ``trades.csv``
        (:meth:`trades`), ``stats.csv`` (:meth:`stats`), ``uncertainty.json`` (:meth:`uncertainty`
        with the default key, 1000 resamples, bootstrap intervals included), and, when the program
        returned forecasts, ``forecasts.csv`` (``<target>_<field>`` columns) and ``skill.csv``
        (:meth:`skill`)."""
        from jaxsim.report.html import flat_forecasts

        trades = self.trades(prices)
        files = {
            "daily.csv": self.daily.to_csv().encode(),
            "equity.csv": self.equity.to_csv().encode(),
            "trades.csv": trades.to_csv(index=False).encode(),
            "stats.csv": self._stats(trades).to_csv().encode(),
            "uncertainty.json": json.dumps(self.uncertainty().as_dict(), indent=2, default=str).encode(),
        }
        if len(self.forecasts.columns):
            files["forecasts.csv"] = flat_forecasts(self.forecasts).to_csv().encode()
            files["skill.csv"] = self.skill().to_csv().encode()
        return files

    def files(self, plot=True, prices=None, report=True) -> dict[str, bytes]:
        """The result as files: ``records.csv`` (one row per simulation, oldest first),
        ``summary.csv``, ``metadata.json``, the :meth:`table_files`, ``report.html`` (:meth:`report`)
        [, ``seed_spread.csv`` with several forecast seeds, and ``<kind>.png``].

        ``plot``: True writes ``equity.png``; a sequence of kinds of :meth:`plot` that need no prices
        (``"equity"``, ``"fan"``, ``"bootstrap"``) writes one PNG each; False none. ``prices``: the
        prices the backtest ran on: the report then shows the MaxDiff heatmap and trades.csv the
        MaxDiff fill prices. ``report``: False leaves ``report.html`` out.
        """
        prices = _as_prices(prices, self.symbol)
        meta = {
            "symbol": self.symbol,
            "protocol": self.protocol,
            "n_sims": self.n_sims,
            "best_strategy": self.best_strategy,
            "limit_prices": self.limit_prices,
            **self.metadata,
        }
        files = {
            # oldest first, as every table of a result folder (docs/output.md)
            "records.csv": self.records.iloc[::-1].to_csv(index=False).encode(),
            "summary.csv": self.summary.to_csv().encode(),
            "metadata.json": json.dumps(meta, indent=2, default=str).encode(),
        }
        files.update(self.table_files(prices))
        if len(self.seeds) > 1:  # n_seeds > 1: every statistic's spread over the forecast seeds
            files["seed_spread.csv"] = self.seed_spread().to_csv().encode()
        kinds = ("equity",) if plot is True else tuple(plot or ())
        bad = [k for k in kinds if k not in ("equity", "fan", "bootstrap")]
        if bad:
            raise ConfigError(f"plots to write must be among 'equity', 'fan', 'bootstrap', got {bad}")
        figures = self._report_figures(prices, files) if report else {}
        if kinds:
            from jaxsim.report.plots import figure_png  # deferred: matplotlib, as in plot()

            for kind in kinds:
                files[f"{kind}.png"] = figures[kind] if kind in figures else figure_png(self.plot(kind))
        if report:
            from jaxsim.report.html import REPORT, report_html

            files[REPORT] = report_html(files, figures).encode()
        return files

    def _report_figures(self, prices, files) -> dict[str, bytes]:
        """The report's figures as PNG: equity, fan (with forecasts), heatmap (with prices)."""
        from jaxsim.report.plots import figure_png

        figures = {"equity": figure_png(self.plot("equity", prices=prices))}
        if "forecasts.csv" in files:
            figures["fan"] = figure_png(self.plot("fan"))
        if prices is not None and MAXDIFF.field("close_at_eod") in self.records:
            try:
                figures["heatmap"] = figure_png(self.plot("heatmap", prices=prices, resolution=41))
            except ConfigError:  # other prices than the backtest's: the page says the figure is missing
                pass
        return figures

    def report(self, path, prices=None) -> Path:
        """Write the HTML report to ``path`` (a file, or a folder to hold ``report.html``), atomically.

        One self-contained page (figures embedded, nothing loaded from the network; printable):
        header, verdict, statistics, uncertainty, equity and drawdown, forecasts and skill, the
        MaxDiff heatmap (with ``prices``, the prices the backtest ran on), trades
        (:mod:`jaxsim.report.html`). Returns the written path.
        """
        from jaxsim.atomic import write_file
        from jaxsim.report.html import REPORT

        path = Path(path)
        if path.is_dir() or not path.suffix:
            path = path / REPORT
        files = self.files(plot=False, prices=prices)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file(path, files[REPORT])
        return path

    def save(self, directory, plots=True, prices=None) -> dict[str, Path]:
        """Write :meth:`files` (``records.csv``, ``summary.csv``, ``metadata.json``, the tables,
        ``report.html`` and ``equity.png``) atomically.

        ``plots`` as :meth:`files`' ``plot`` (e.g. ``("equity", "fan")``); ``prices`` as its
        ``prices`` (the heatmap in the report, MaxDiff fill prices in trades.csv).

        Every file is rendered first, then written with :func:`jaxsim.atomic.write_folder`: a
        new folder appears complete, and in an existing one each file is replaced by a rename, so a
        reader never sees a partial file and a failed save leaves the previous files as they were.
        Permissions follow the umask (0644 / 0755 under 022).

        Returns:
          the written paths by kind: the file's stem (``"records"``, ``"report"``, ``"equity"`` for
          equity.png, ...), its full name where a PNG took the stem (``"equity.csv"``).
        """
        out = Path(directory)
        files = self.files(plot=plots, prices=prices)
        write_folder(out, files, exist_ok=True)
        pngs = {name.split(".")[0] for name in files if name.endswith(".png")}
        return {
            (name if name.split(".")[0] in pngs and not name.endswith(".png") else name.split(".")[0]): out / name
            for name in files
        }


def _as_prices(prices, symbol):
    """``prices`` as a :class:`~jaxsim.data.prices.Prices` (None stays None): whatever backtest accepts."""
    if prices is None:
        return None
    from jaxsim.data.prices import Prices, as_prices

    return prices if isinstance(prices, Prices) else as_prices(prices, symbol=symbol)
