"""What user strategies see, for many stocks at once: :class:`SimulationData` (forecasts + price windows).

The forecast stage of the backtest program (forecasts at the N+6 origins, point and P60-P40 band,
each simulation's 7 forecasts and its 22-row price window) without the strategies, so that
:func:`jaxsim.research.tune.tune` and :func:`jaxsim.research.lookahead.check_no_lookahead` can evaluate
a user strategy many times on forecasts computed once. The views have the same shapes for every
stock (``(N, 7)`` forecasts, ``(N, 22, 5)`` windows), so stocks of different lengths are computed in
groups of equal length (one compile per length) and concatenated along the stock axis.

Stocks, N, keys and shape groups come from the one pipeline (:func:`jaxsim.shell.plan.make_plan`), so
the forecasts equal :func:`jaxsim.backtest`'s bit for bit (stock s: ``fold_in(key, crc32(s))``). With
``n_sims="all"`` stocks of different lengths have different N: the stock axis is padded to the
largest N with copies of a stock's oldest simulation, marked invalid in :attr:`SimulationData.valid`.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from jaxsim.config import BacktestConfig, resolve_config
from jaxsim.forecast.grid import ForecastGrid, price_windows, sim_forecast_index
from jaxsim.forecast.interface import Forecaster, StockArrays, point_and_band
from jaxsim.shell.plan import make_plan, stack_keys
from jaxsim.sim.simulation import PRICE_WINDOW
from jaxsim.sim.strategy import StrategyInputs, strategy_views

__all__ = ["ViewSetup", "SimulationData", "stock_views", "compiled_views", "simulation_data"]


@dataclasses.dataclass(frozen=True)
class ViewSetup:
    """Static description of the forecast stage (hashable, the compile key)."""

    grid: ForecastGrid
    targets: tuple[str, ...]
    aggregate: str
    draws: bool = False


def stock_views(forecaster: Forecaster, stock: StockArrays, key, setup: ViewSetup) -> StrategyInputs:
    """The :class:`~jaxsim.sim.strategy.StrategyInputs` of one stock's N simulations (leading axis N),
    computed exactly as :func:`jaxsim.engine.program.stock_program` computes them."""
    grid = setup.grid
    forecast = forecaster.forecast(stock, grid, setup.targets, key)
    point, width = point_and_band(forecast, setup.aggregate)
    windows, valid = price_windows(stock.prices, grid, PRICE_WINDOW)
    return strategy_views(
        setup.targets, point, width, forecast.samples, sim_forecast_index(grid), windows, valid, draws=setup.draws
    )


# Batched over a leading stock axis, ``setup`` static: one compile per (setup, forecaster config, B).
compiled_views = jax.jit(jax.vmap(stock_views, in_axes=(None, 0, 0, None)), static_argnames=("setup",))


@dataclasses.dataclass(frozen=True)
class SimulationData:
    """Every stock's simulations as user strategies see them.

    Attributes:
      symbols: stock names, in input order.
      views: :class:`StrategyInputs` with leading axes ``(B, N)``.
      fees, spreads: ``(B,)`` float32 per-stock trading fee and SPREAD.
      crypto: ``(B,)`` bool, the crypto rule (365 days per year).
      dates: ``(B, N)`` datetime64[D] of each simulation's last row e_k (row 0 the most recent;
        NaT where invalid).
      day_dates: ``(B, N, 6)`` dates of its evaluation days t_i = e_k-6+i.
      n_sims: N, the largest N of the stocks.
      valid: ``(B, N)`` bool, False for the padding of a stock with fewer simulations (only with
        ``n_sims="all"`` and stocks of different lengths).
    """

    symbols: tuple
    views: StrategyInputs
    fees: np.ndarray
    spreads: np.ndarray
    crypto: np.ndarray
    dates: np.ndarray
    day_dates: np.ndarray
    n_sims: int
    valid: np.ndarray

    @property
    def n_stocks(self) -> int:
        return len(self.symbols)


def simulation_data(
    prices, forecaster: Forecaster, config: BacktestConfig | None = None, *, key=None, draws: bool = False, **settings
) -> SimulationData:
    """Forecasts and price windows of every simulation of one or many stocks.

    Args:
      prices: one price source (a :class:`~jaxsim.data.prices.Prices`, DataFrame, path or sample
        name), a list or a dict symbol -> source.
      forecaster: any forecaster (:mod:`jaxsim.forecast`).
      config / **settings: as :func:`jaxsim.backtest_many` (``n_sims`` including ``"all"``,
        ``targets``, ``aggregate``, ``fee``, ``spread``, ``max_context``, ``num_samples``, ``seed``,
        ``stock_key``).
      key: PRNG key (default ``jax.random.key(config.seed)``).
      draws: also keep the draws (for strategies with ``needs_draws``).
    """
    config = resolve_config(config, settings)
    # exact lengths: these views build their own grids from each stock's rows (no length buckets)
    plan = make_plan(prices, forecaster, config.replace(length_bucket=None), key=key, caller="simulation_data")
    n_max = max(p.n_sims for p in plan.stocks)
    parts, dates, day_dates, valid = {}, {}, {}, {}
    for members in plan.groups.values():
        prep = plan.stocks[members[0]]
        grid = ForecastGrid(len(prep.prices), prep.n_sims, config.max_context)
        setup = ViewSetup(grid, config.targets, config.aggregate, bool(draws))
        stocks = jax.device_put(plan.arrays(members))  # a transfer (jnp.asarray compiles per shape)
        keys = stack_keys([plan.keys[i] for i in members])
        views = jax.device_get(compiled_views(plan.forecaster, stocks, keys, setup))
        pad = n_max - grid.n_sims  # the oldest simulation repeated, marked invalid
        take = np.concatenate([np.arange(grid.n_sims), np.full(pad, grid.n_sims - 1)])
        ends = grid.ends[take]
        for b, i in enumerate(members):
            parts[i] = jax.tree.map(lambda a, b=b: np.asarray(a[b])[take], views)
            valid[i] = np.arange(n_max) < grid.n_sims
            d = plan.stocks[i].dates
            dates[i] = np.where(valid[i], d[ends], np.datetime64("NaT"))
            day_dates[i] = np.where(
                valid[i][:, None], d[ends[:, None] - 6 + np.arange(6)[None, :]], np.datetime64("NaT")
            )
    order = range(len(plan.stocks))
    return SimulationData(
        plan.names,
        jax.tree.map(lambda *xs: np.stack(xs), *[parts[i] for i in order]),
        np.array([p.fee for p in plan.stocks], np.float32),
        np.array([p.spread for p in plan.stocks], np.float32),
        np.array([p.crypto for p in plan.stocks]),
        np.stack([dates[i] for i in order]),
        np.stack([day_dates[i] for i in order]),
        n_max,
        np.stack([valid[i] for i in order]),
    )
