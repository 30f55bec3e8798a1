"""The compiled walk-forward backtest program: one compilation per (setup, shapes).

Program for one stock (a pure function of forecaster params, price arrays and a key):

1. forecasts at the N+6 unique origins per target (:mod:`jaxsim.forecast.forecasters`, :mod:`jaxsim.forecast.grid`);
2. draws -> point forecast (aggregation spec) and P60-P40 band (docs/backtest.md#draws-and-band),
   a chunk of origins at a time for Toto (:meth:`~jaxsim.forecast.interface.Forecaster.forecast_summary`);
3. each simulation k gathers its 7 forecasts (origins N-1-k .. N+5-k) and its price window;
4. ``simulation_fields`` vmapped over the N simulations, ``sim_chunk`` at a time (:func:`map_sims`),
   gives the docs/backtest.md#record-fields record fields and the strategies' out-of-sample fields of
   their final day (:mod:`jaxsim.engine.oos`);
5. ``walk_forward`` only: MaxDiff and always-on are re-scored with multipliers and eod policy fitted
   on an earlier, non-overlapping window (:mod:`jaxsim.engine.walk_forward`);
6. each strategy's forecasted P&L (docs/backtest.md#forecasted-pnl, :mod:`jaxsim.engine.forecasted_pnl`) is
   forecast from its ``avg_daily_return`` column, in the same program.

The stock axis is a ``jax.vmap`` of that program; a single stock is a batch of one. The program is
jitted with the :class:`BacktestSetup` static, so it compiles once per distinct setup and input
shape (T, N, S, forecaster config) and a second stock of the same shape does not retrace; T is the
stock's length bucket (docs/compilation.md#length-buckets), so stocks of different lengths share it.

The shell around it (Prices in, results out, multi-stock batching) is :mod:`jaxsim.shell.api`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.config import DEFAULT_SIM_CHUNK, DEFAULT_TARGETS, PROTOCOLS
from jaxsim.engine.chunks import map_sims
from jaxsim.engine.compilation import ProgramCache
from jaxsim.engine.forecasted_pnl import stock_forecasted_pnl, strategy_series
from jaxsim.engine.oos import oos_fields
from jaxsim.engine.walk_forward import walk_forward_records
from jaxsim.errors import ConfigError
from jaxsim.forecast.grid import ForecastGrid, price_windows, sim_forecast_index
from jaxsim.forecast.interface import Forecaster, StockArrays, origin_realised, summarize_forecast
from jaxsim.layout import PRICE_COLUMN
from jaxsim.optimize.search import default_optimizer
from jaxsim.sim.simulation import PRICE_WINDOW, SimulationInputs, StrategyConfig, simulation_fields
from jaxsim.sim.strategy import strategy_records, strategy_table, strategy_views

__all__ = [
    "BacktestSetup",
    "map_sims",
    "stock_program",
    "real_sims",
    "batched_program",
    "compiled_program",
    "run_program",
    "program_token",
    "COMPILE_MESSAGE",
    "trace_count",
]

log = logging.getLogger(__name__)
Array = jax.Array

_TRACES = {"count": 0}


def trace_count() -> int:
    """How many times the backtest program has been traced (compiled) in this process."""
    return _TRACES["count"]


@dataclasses.dataclass(frozen=True)
class BacktestSetup:
    """Static description of one compiled backtest program (hashable).

    Attributes:
      grid: walk-forward geometry (T, N, context cap).
      targets: forecast targets, e.g. ``("close", "high", "low")``; close is required.
      aggregate: sample aggregation spec (docs/backtest.md#aggregation-specs), e.g. ``"trimmed_mean_10"``.
      protocol: ``"legacy"`` or ``"walk_forward"``.
      strategy: static strategy switches (crypto rule).
      optimizer: multiplier optimizer (a stable object: it is part of the compile key). None is
        :func:`jaxsim.optimize.default_optimizer`, resolved here and nowhere else.
      strategies: extra user strategies (:class:`jaxsim.sim.strategy.UserStrategy`, hashable).
      return_samples: also return each simulation's newest forecast draws (``oos_<x>_draws``).
      sim_chunk: simulations per step of the simulation stage (:func:`map_sims`); N <= sim_chunk is
        one vmap.
      padded_sims: ``n_sims="all"`` on a length bucket: each NaN row before a stock's first row
        (:func:`jaxsim.shell.plan.stock_arrays`) stands for one masked simulation at the old end, so
        only simulations k < N - (NaN rows) are real (:func:`real_sims`).
      n_seeds: forecast seeds per stock (K). K > 1: each stock's key is a ``(K,)`` key array and the
        program is vmapped over it (:func:`batched_program`), outputs ``(B, K, ...)``.
    """

    grid: ForecastGrid
    targets: tuple[str, ...] = DEFAULT_TARGETS
    aggregate: str = "trimmed_mean_10"
    protocol: str = "legacy"
    strategy: StrategyConfig = StrategyConfig()
    optimizer: Callable = None
    strategies: tuple = ()
    return_samples: bool = False
    sim_chunk: int = DEFAULT_SIM_CHUNK
    padded_sims: bool = False
    n_seeds: int = 1

    def __post_init__(self):
        if self.optimizer is None:
            object.__setattr__(self, "optimizer", default_optimizer())
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        bad = [x for x in self.targets if x not in PRICE_COLUMN]
        if bad or "close" not in self.targets or len(set(self.targets)) != len(self.targets):
            raise ConfigError(
                f"targets must be distinct names from {tuple(PRICE_COLUMN)} including 'close', got {self.targets}"
            )


def real_sims(stock: StockArrays, setup: BacktestSetup) -> Array:
    """How many of the program's N simulations are the stock's own (int32 scalar; docs/compilation.md#length-buckets).

    A stock shorter than its program's rows is preceded by NaN rows; with ``padded_sims`` each of
    them is one masked simulation at the old end, otherwise every simulation is real.
    """
    n = setup.grid.n_sims
    if not setup.padded_sims:
        return jnp.int32(n)
    pad = jnp.argmax(jnp.isfinite(stock.prices[:, PRICE_COLUMN["close"]]))  # leading NaN rows
    return (n - pad).astype(jnp.int32)


def stock_program(forecaster: Forecaster, stock: StockArrays, fee, spread, key, setup: BacktestSetup):
    """Records of one stock and the rule of each strategy's forecasted P&L.

    Pure function of (forecaster params, stock arrays, fee, spread, key); everything static comes from
    ``setup``. Row k is simulation k (k = 0: the most recent, ending at row T-2).

    Returns:
      ``(records, pnl_sources)``: a dict of ``(N, ...)`` arrays named as in docs/backtest.md#record-fields (with the
      ``<prefix>_forecasted_pnl`` columns, one value broadcast to the N rows), and int32 ``(8,)``
      codes of :data:`jaxsim.engine.forecasted_pnl.SOURCES` in the order of
      :data:`jaxsim.sim.strategy_table.STRATEGIES`.
    """
    grid = setup.grid
    if setup.return_samples or any(s.needs_draws for s in setup.strategies):  # asked for: all draws at once
        forecast = forecaster.forecast(stock, grid, setup.targets, key)
        summary = summarize_forecast(forecast, origin_realised(stock, grid, setup.targets), setup.aggregate)
    else:  # draws reduced a chunk of origins at a time where the forecaster can (Toto)
        forecast = None
        summary = forecaster.forecast_summary(stock, grid, setup.targets, key, setup.aggregate)
    point, width = summary.point, summary.band  # (X, N+6)
    index = sim_forecast_index(grid)  # (N, 7) origin of r_X[e-6+i]
    point_at = point[:, index]  # (X, N, 7): one gather for every target
    preds = {x: point_at[i] for i, x in enumerate(setup.targets)}
    close_band = width[setup.targets.index("close")][index]
    zeros = jnp.zeros_like(
        preds["close"]
    )  # the original fills missing high/low with zeros (docs/backtest.md#forecast-fields)
    windows, valid = price_windows(stock.prices, grid, PRICE_WINDOW)
    inputs = SimulationInputs(
        preds["close"], preds.get("high", zeros), preds.get("low", zeros), close_band, windows, valid
    )

    def one(sim_inputs):
        return simulation_fields(sim_inputs, fee=fee, spread=spread, config=setup.strategy, optimizer=setup.optimizer)

    records = dict(map_sims(one, inputs, setup.sim_chunk))
    n_real = real_sims(stock, setup)
    if setup.protocol == "walk_forward":
        records.update(
            walk_forward_records(
                inputs,
                records,
                fee=fee,
                config=setup.strategy,
                optimizer=setup.optimizer,
                chunk=setup.sim_chunk,
                n_real=n_real if setup.padded_sims else None,
            )
        )
    last = windows[:, -1, :]  # row e of each simulation
    for x in setup.targets:
        # X[e] * (1 + P_X[6]): the forecast of the move INTO row e applied to row e
        # (docs/deviations.md#kept-predicted-price).
        records.setdefault(f"predicted_{x}", last[:, PRICE_COLUMN[x]] * (1.0 + preds[x][:, 6]))
        records.setdefault(
            f"{x}_predictions", preds[x][:, :6]
        )  # P_X[0..5] (docs/backtest.md#forecast-fields x_predictions)
    records.setdefault("close", last[:, PRICE_COLUMN["close"]])
    records.update(
        oos_fields(
            summary,
            forecast,
            index[:, 6],
            inputs,
            targets=setup.targets,
            return_samples=setup.return_samples,
        )
    )
    # --- user strategies (jaxsim.sim.strategy): evaluated per simulation, merged as <name>_* fields;
    # their forecasted P&L comes with the built-ins' below (strategy_table appends them to the eight).
    if setup.strategies:
        views = strategy_views(
            setup.targets,
            point,
            width,
            None if forecast is None else forecast.samples,
            index,
            windows,
            valid,
            draws=any(s.needs_draws for s in setup.strategies),
        )
        records.update(strategy_records(setup.strategies, views, fee=fee, spread=spread, config=setup.strategy))
    prefixes = [s.prefix for s in strategy_table(setup.strategies)]
    # --- end of user strategies
    series = strategy_series(records, prefixes)  # (P, N)
    if setup.padded_sims:  # masked simulations are not values of the series (non-finite: dropped)
        series = jnp.where(jnp.arange(grid.n_sims) < n_real, series, jnp.nan)
    values, sources = stock_forecasted_pnl(forecaster, series, key, chronological=setup.protocol == "walk_forward")
    n = grid.n_sims
    for j, prefix in enumerate(prefixes):
        records[f"{prefix}_forecasted_pnl"] = jnp.broadcast_to(values[j], (n,))
    return records, sources


def batched_program(forecaster, stocks, fees, spreads, keys, setup):
    """:func:`stock_program` vmapped over a leading stock axis (not jitted; see :data:`compiled_program`).

    With ``setup.n_seeds`` K > 1, ``keys`` is ``(B, K)`` and each stock's program is vmapped over its K
    keys too: the work that does not depend on the key (the model's forward pass over the contexts,
    the price windows) is traced once and stays unbatched; the draws and all that follows them are
    per seed. Outputs gain a K axis after B.
    """
    _TRACES["count"] += 1  # Python side effect: runs once per trace, never at run time
    log.info("tracing backtest program: %s, %d stocks", setup.grid, stocks.prices.shape[0])
    one_stock = stock_program
    if setup.n_seeds > 1:
        one_stock = jax.vmap(stock_program, in_axes=(None, None, None, None, 0, None))
    return jax.vmap(one_stock, in_axes=(None, 0, 0, 0, 0, None))(forecaster, stocks, fees, spreads, keys, setup)


# The jitted program, ``setup`` static: ``compiled_program.lower(forecaster, stocks, fees, spreads, keys,
# setup=setup)`` gives XLA's view (benchmarks); :func:`run_program` is the call.
compiled_program = jax.jit(batched_program, static_argnames=("setup",))


COMPILE_MESSAGE = "compiling the backtest program (first run for this shape; cached afterwards)"
_PROGRAMS = ProgramCache(batched_program, name="backtest", message=COMPILE_MESSAGE)


def program_token(forecaster: Forecaster, setup: BacktestSetup) -> str | None:
    """A stable name of everything static in the program, or None when some part has none.

    Programs stored on disk (:mod:`jaxsim.engine.compilation`) are keyed by it (with the jaxsim
    sources, the forecaster's structure and the argument shapes), so only programs built from
    jaxsim's own forecasters and the default optimizer, without user strategies, are stored: a user
    function, strategy or optimizer could change without the key noticing.
    """
    cls = type(forecaster)
    if not forecaster.defined_by_jaxsim() or setup.strategies:  # user code: its name may not change with it
        return None
    if setup.optimizer != default_optimizer():
        return None
    static = ", ".join(
        f"{f.name}={getattr(setup, f.name)!r}" for f in dataclasses.fields(setup) if f.name != "optimizer"
    )
    return f"{cls.__module__}.{cls.__qualname__}|BacktestSetup({static})"


def _float32(x):
    """``x`` as float32: a float32 jax array stays (it may be sharded), anything else is converted on
    the host (``jnp.asarray`` would compile a conversion program)."""
    if isinstance(x, jax.Array) and x.dtype == jnp.float32:
        return x
    return np.asarray(x, np.float32)


def run_program(forecaster, stocks: StockArrays, fees, spreads, keys, setup: BacktestSetup):
    """Run the compiled program on a batch of stocks (leading axis B on every array of ``stocks``).

    Compiled once per distinct ``setup``, forecaster config and input shape, and reported while it
    compiles (:func:`jaxsim.engine.compilation.compile_notice`); with
    :func:`jaxsim.engine.compilation.enable_compilation_cache` the program is also kept on disk for
    later processes.

    Returns:
      ``(records, pnl_sources)``: a dict of ``(B, N, ...)`` arrays and ``(B, 8)`` int32 codes.
    """
    return _PROGRAMS(
        forecaster,
        stocks,
        _float32(fees),
        _float32(spreads),
        keys,
        static=setup,
        token=program_token(forecaster, setup),
    )
