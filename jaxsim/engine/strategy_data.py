"""What user strategies see, for many stocks at once: :class:`SimulationData` (forecasts + price windows).

The forecast stage of the backtest program (forecasts at the N+6 origins, point and P60-P40 band,
each simulation's 7 forecasts and its 22-row price window) without the strategies, so that
:func:`jaxsim.engine.tune.tune` and :func:`jaxsim.engine.lookahead.check_no_lookahead` can evaluate
a user strategy many times on forecasts computed once. The views have the same shapes for every
stock (``(N, 7)`` forecasts, ``(N, 22, 5)`` windows), so stocks of different lengths are computed in
groups of equal length (one compile per length) and concatenated along the stock axis.

Keys follow :func:`jaxsim.backtest_many`: stock i gets ``fold_in(key, i)`` (``stock_key="symbol"``:
``fold_in(key, crc32(symbol))``), so the forecasts equal the backtest's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.config import BacktestConfig, resolve_config
from jaxsim.data.prices import Prices
from jaxsim.engine.api import prepare_stock, stock_arrays, stock_key, with_config_samples
from jaxsim.errors import ConfigError
from jaxsim.forecast.grid import ForecastGrid, price_windows, sim_forecast_index
from jaxsim.forecast.interface import Forecaster, StockArrays, point_and_band
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
      dates: ``(B, N)`` datetime64[D] of each simulation's last row e_k (row 0 the most recent).
      day_dates: ``(B, N, 6)`` dates of its evaluation days t_i = e_k-6+i.
      n_sims: N.
    """

    symbols: tuple
    views: StrategyInputs
    fees: np.ndarray
    spreads: np.ndarray
    crypto: np.ndarray
    dates: np.ndarray
    day_dates: np.ndarray
    n_sims: int

    @property
    def n_stocks(self) -> int:
        return len(self.symbols)


def _items(prices):
    if isinstance(prices, Prices):
        return [prices], [prices.symbol or "stock"]
    if isinstance(prices, Mapping):
        return list(prices.values()), list(prices.keys())
    items = list(prices)
    return items, [p.symbol if getattr(p, "symbol", None) else f"stock{i}" for i, p in enumerate(items)]


def simulation_data(
    prices, forecaster: Forecaster, config: BacktestConfig | None = None, *, key=None, draws: bool = False, **settings
) -> SimulationData:
    """Forecasts and price windows of every simulation of one or many stocks.

    Args:
      prices: one :class:`~jaxsim.data.prices.Prices`, a list or a dict symbol -> Prices.
      forecaster: any forecaster (:mod:`jaxsim.forecast`).
      config / **settings: as :func:`jaxsim.backtest_many` (``n_sims``, ``targets``, ``aggregate``,
        ``fee``, ``spread``, ``max_context``, ``num_samples``, ``seed``, ``stock_key``).
      key: PRNG key (default ``jax.random.key(config.seed)``).
      draws: also keep the draws (for strategies with ``needs_draws``).
    """
    config = resolve_config(config, settings)
    items, names = _items(prices)
    if len(set(names)) != len(names):
        raise ConfigError(f"simulation_data needs distinct symbols, got {names}")
    key = jax.random.key(config.seed) if key is None else key
    forecaster = with_config_samples(forecaster, config)
    preps = [
        prepare_stock(p, config, symbol=s, fee=config.fee_of(i), spread=config.spread_of(i))
        for i, (p, s) in enumerate(zip(items, names))
    ]
    groups: dict[int, list[int]] = {}
    for i, prep in enumerate(preps):
        groups.setdefault(len(prep.prices), []).append(i)
    parts: dict[int, StrategyInputs] = {}
    dates, day_dates = [None] * len(preps), [None] * len(preps)
    for rows, members in groups.items():
        grid = ForecastGrid(rows, config.n_sims, config.max_context)
        setup = ViewSetup(grid, config.targets, config.aggregate, bool(draws))
        stocks = jax.tree.map(jnp.asarray, stock_arrays(forecaster, [preps[i] for i in members]))
        if config.stock_key == "symbol":
            keys = jnp.stack([stock_key(key, names[i]) for i in members])
        else:
            keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.asarray(members, jnp.uint32))
        views = jax.device_get(compiled_views(forecaster, stocks, keys, setup))
        for b, i in enumerate(members):
            parts[i] = jax.tree.map(lambda a: a[b], views)
            dates[i] = preps[i].dates[grid.ends]
            day_dates[i] = preps[i].dates[grid.ends[:, None] - 6 + np.arange(6)[None, :]]
    views = jax.tree.map(lambda *xs: np.stack(xs), *[parts[i] for i in range(len(preps))])
    return SimulationData(
        tuple(names),
        views,
        np.array([p.fee for p in preps], np.float32),
        np.array([p.spread for p in preps], np.float32),
        np.array([p.crypto for p in preps]),
        np.stack(dates),
        np.stack(day_dates),
        config.n_sims,
    )
