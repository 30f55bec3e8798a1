"""The one-call walk-forward backtest: one compiled program per (setup, shapes).

Program for one stock (a pure function of forecaster params, price arrays and a key):

1. forecasts at the N+6 unique origins per target (:mod:`jaxsim.forecast.forecasters`, :mod:`jaxsim.forecast.grid`);
2. draws -> point forecast (aggregation spec) and P60-P40 band (spec 2.2);
3. each simulation k gathers its 7 forecasts (origins N-1-k .. N+5-k) and its price window;
4. ``jax.vmap(evaluate_simulation)`` over the N simulations gives the spec 7.1 record fields;
5. ``walk_forward`` only: MaxDiff and always-on are re-scored with multipliers and eod policy fitted
   on an earlier, non-overlapping window (:mod:`jaxsim.engine.walk_forward`).

After it, in one more jitted call per batch of stocks, each strategy's forecasted P&L (spec 7.2 step
3, :mod:`jaxsim.engine.forecasted_pnl`) is forecast from its ``avg_daily_return`` column.

The stock axis is a ``jax.vmap`` of that program; a single stock is a batch of one. The program is
jitted with the :class:`BacktestSetup` static, so it compiles once per distinct setup and input
shape (T, N, S, forecaster config) and a second stock of the same shape does not retrace.

Multi-stock (:func:`backtest_many`): stocks are grouped by (row count, crypto rule) so that every
stock's contexts get exactly the padding they get alone (padding stocks to a common length would
change Toto's output); with a context cap every stock is first trimmed to the rows the cap reads, so
all stocks of one rule share one group. A group's stock axis is sharded over the available devices
with :class:`jax.sharding.NamedSharding` and processed in chunks of ``chunk_size`` stocks with a tqdm
bar (only in this shell, never inside compiled code).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.errors import ConfigError
from jaxsim.sim.maxdiff import default_optimizer
from jaxsim.forecast.interface import PRICE_COLUMN, Forecaster, StockArrays, point_and_band
from jaxsim.sim.simulation import PRICE_WINDOW, SimulationInputs, StrategyConfig, evaluate_simulation
from jaxsim.forecast.grid import ForecastGrid, price_windows, sim_forecast_index, trim_start

__all__ = ["BacktestSetup", "PROTOCOLS", "DEFAULT_TARGETS", "run_program", "backtest", "backtest_many",
           "default_optimizer", "trace_count"]

log = logging.getLogger(__name__)

PROTOCOLS = ("legacy", "walk_forward")
DEFAULT_TARGETS = ("close", "high", "low")  # Open is forecast only when asked for (no strategy uses it)
# The original's module-level SPREAD at import (ask/bid ratio, spec 5.0).
DEFAULT_SPREAD = 1.0008711461252937

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
      aggregate: sample aggregation spec (spec 2.4), e.g. ``"trimmed_mean_10"``.
      protocol: ``"legacy"`` or ``"walk_forward"``.
      strategy: static strategy switches (crypto rule).
      optimizer: multiplier optimizer (a stable object: it is part of the compile key).
    """

    grid: ForecastGrid
    targets: tuple[str, ...] = DEFAULT_TARGETS
    aggregate: str = "trimmed_mean_10"
    protocol: str = "legacy"
    strategy: StrategyConfig = StrategyConfig()
    optimizer: Callable = None

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        bad = [x for x in self.targets if x not in PRICE_COLUMN]
        if bad or "close" not in self.targets or len(set(self.targets)) != len(self.targets):
            raise ConfigError(f"targets must be distinct names from {tuple(PRICE_COLUMN)} including 'close', "
                              f"got {self.targets}")


def stock_program(forecaster: Forecaster, stock: StockArrays, fee, spread, key, setup: BacktestSetup):
    """Records of one stock: a dict of ``(N, ...)`` arrays named as in spec 7.1.

    Pure function of (forecaster params, stock arrays, fee, spread, key); everything static comes from
    ``setup``. Row k is simulation k (k = 0: the most recent, ending at row T-2).
    """
    grid = setup.grid
    forecast = forecaster.forecast(stock, grid, setup.targets, key)
    point, width = point_and_band(forecast, setup.aggregate)  # (X, N+6) each
    index = sim_forecast_index(grid)  # (N, 7) origin of r_X[e-6+i]
    preds = {x: point[i][index] for i, x in enumerate(setup.targets)}
    close_band = width[setup.targets.index("close")][index]
    zeros = jnp.zeros_like(preds["close"])  # the original fills missing high/low with zeros (spec 2.5)
    windows, valid = price_windows(stock.prices, grid, PRICE_WINDOW)
    inputs = SimulationInputs(preds["close"], preds.get("high", zeros), preds.get("low", zeros), close_band,
                              windows, valid)

    def one(sim_inputs):
        return evaluate_simulation(sim_inputs, fee=fee, spread=spread, config=setup.strategy,
                                   optimizer=setup.optimizer)

    records = dict(jax.vmap(one)(inputs))
    if setup.protocol == "walk_forward":
        from jaxsim.engine.walk_forward import walk_forward_records

        records.update(walk_forward_records(inputs, records, fee=fee, config=setup.strategy,
                                            optimizer=setup.optimizer))
    last = windows[:, -1, :]  # row e of each simulation
    for x in setup.targets:
        # X[e] * (1 + P_X[6]): the forecast of the move INTO row e applied to row e (bug 10.3, kept).
        records.setdefault(f"predicted_{x}", last[:, PRICE_COLUMN[x]] * (1.0 + preds[x][:, 6]))
        records.setdefault(f"{x}_predictions", preds[x][:, :6])  # P_X[0..5] (spec 2.5 x_predictions)
    records.setdefault("close", last[:, PRICE_COLUMN["close"]])
    return records


def _batched_program(forecaster, stocks, fees, spreads, keys, setup):
    _TRACES["count"] += 1  # Python side effect: runs once per trace, never at run time
    log.info("tracing backtest program: %s, %d stocks", setup.grid, stocks.prices.shape[0])
    return jax.vmap(stock_program, in_axes=(None, 0, 0, 0, 0, None))(forecaster, stocks, fees, spreads, keys, setup)


_compiled_program = jax.jit(_batched_program, static_argnames=("setup",))


def run_program(forecaster, stocks: StockArrays, fees, spreads, keys, setup: BacktestSetup):
    """Run the compiled program on a batch of stocks (leading axis B on every array of ``stocks``).

    Compiled once per distinct ``setup``, forecaster config and input shape.

    Returns:
      dict of ``(B, N, ...)`` arrays.
    """
    return _compiled_program(forecaster, stocks, jnp.asarray(fees, jnp.float32), jnp.asarray(spreads, jnp.float32),
                             keys, setup=setup)



# ----------------------------------------------------------------------------------------------------
# Imperative shell: Prices in, BacktestResult out.


@dataclasses.dataclass(frozen=True)
class _Prepared:
    symbol: str | None
    start: int  # rows dropped from the front (context cap)
    prices: np.ndarray  # (T', 5) float32
    dates: np.ndarray  # (T',) datetime64[D]
    fee: float
    spread: float
    crypto: bool


def _prepare(prices, *, n_sims, symbol, fee, spread, max_context) -> _Prepared:
    from jaxsim.data.prices import Prices
    from jaxsim.errors import PriceDataError
    from jaxsim.sim.simulation import default_fee, is_crypto

    if not isinstance(prices, Prices):
        raise PriceDataError(f"backtest needs jaxsim.data.prices.Prices (load it with jaxsim.load_prices(...)); "
                             f"got {type(prices).__name__}")
    symbol = symbol if symbol is not None else getattr(prices, "symbol", None)
    volume = prices.volume if prices.volume is not None else np.zeros_like(prices.close)
    table = np.stack([prices.open, prices.high, prices.low, prices.close, volume], axis=1).astype(np.float32)
    ForecastGrid(len(table), n_sims, max_context)  # validates the history length
    start = trim_start(len(table), n_sims, max_context, PRICE_WINDOW)
    crypto = bool(symbol) and is_crypto(symbol)
    return _Prepared(symbol, start, table[start:], np.asarray(prices.dates)[start:],
                     float(default_fee(symbol or "") if fee is None else fee),
                     float(DEFAULT_SPREAD if spread is None else spread), crypto)


def _with_samples(forecaster, num_samples):
    """Apply ``num_samples`` to Toto (draws per context). User functions keep theirs; Kronos averages
    its own ``sample_count`` paths (as the original) and ignores it."""
    if forecaster.kind == "toto":
        if forecaster.num_samples != num_samples:
            return dataclasses.replace(forecaster, num_samples=int(num_samples))
    return forecaster


def _stamps(forecaster, dates) -> np.ndarray:
    if getattr(forecaster, "needs_stamps", False):
        from jaxsim.models.kronos.predict import time_features

        return np.asarray(time_features(dates), np.float32)
    return np.zeros((len(dates), 0), np.float32)


def _setup(prep: _Prepared, *, n_sims, max_context, targets, aggregate, protocol, optimizer) -> BacktestSetup:
    return BacktestSetup(grid=ForecastGrid(len(prep.prices), n_sims, max_context),
                         targets=tuple(targets or DEFAULT_TARGETS), aggregate=aggregate, protocol=protocol,
                         strategy=StrategyConfig(crypto=prep.crypto), optimizer=optimizer or default_optimizer())


def _to_host(out, b):
    return {k: np.asarray(v[b]) for k, v in out.items()}


def _forecasted_pnl(forecaster, out, keys, protocol):
    """Spec 7.2 step 3 for a batch of stocks (one model call): adds ``<name>_forecasted_pnl`` columns
    (one value broadcast to the N rows) to ``out`` and returns each stock's metadata entries."""
    from jaxsim.engine.forecasted_pnl import forecasted_pnl, strategy_series
    from jaxsim.engine.result import STRATEGIES

    prefixes = [prefix for _, prefix, _ in STRATEGIES]
    chronological = protocol == "walk_forward"
    values, sources = forecasted_pnl(forecaster, strategy_series(out, prefixes), keys, chronological=chronological)
    n_rows = out[f"{prefixes[0]}_avg_daily_return"].shape[-1]
    for j, prefix in enumerate(prefixes):
        out[f"{prefix}_forecasted_pnl"] = np.repeat(values[:, j, None], n_rows, axis=1)
    order = "chronological" if chronological else "row order, newest first (bug 10.11)"
    return [{"forecasted_pnl_source": {name: str(sources[b, j]) for j, (name, _, _) in enumerate(STRATEGIES)},
             "forecasted_pnl_order": order} for b in range(len(values))]


def _result(prep: _Prepared, setup: BacktestSetup, arrays, forecaster, n_sims, extra):
    from jaxsim.engine.result import BacktestResult

    ends = setup.grid.ends
    meta = {"forecaster": forecaster.kind, "targets": list(setup.targets), "aggregate": setup.aggregate,
            "num_samples": getattr(forecaster, "num_samples", None), "fee": prep.fee, "spread": prep.spread,
            "crypto": prep.crypto, "n_rows": int(len(prep.prices) + prep.start), "rows_trimmed": prep.start,
            "max_context": setup.grid.max_context, "first_date": str(prep.dates[0]),
            "last_date": str(prep.dates[-1]), **extra}
    return BacktestResult.from_arrays(prep.symbol, setup.protocol, arrays, prep.dates[ends], meta)


def backtest(prices, forecaster: Forecaster, *, n_sims: int = 50, symbol: str | None = None,
             protocol: str = "legacy", targets: Sequence[str] | None = None, num_samples: int = 3072,
             aggregate: str = "trimmed_mean_10", fee: float | None = None, spread: float | None = None,
             key=None, max_context: int | None = None, optimizer=None):
    """Walk-forward backtest of one stock (or several: a list or dict of ``Prices``).

    Runs the N simulations of the original ``backtest_forecasts`` (spec 1.2): simulation k ends at
    row T-2-k and scores eight strategies on its six evaluation days. The work is one compiled
    program (see the module docstring), compiled once per distinct setup and input shape.

    Args:
      prices: a :class:`jaxsim.data.prices.Prices`; a list/tuple/dict of them runs :func:`backtest_many`.
      forecaster: from :mod:`jaxsim.forecast.forecasters` (naive, historical_mean, from_function, toto, kronos).
      n_sims: N simulations (the original's default 50 covers the last ~10 weeks of trading).
      symbol: overrides ``prices.symbol`` (it selects the crypto rule and default fee).
      protocol: ``"legacy"`` (multipliers fitted in-sample, as the original) or ``"walk_forward"``
        (fitted on an earlier window, :mod:`jaxsim.engine.walk_forward`).
      targets: forecast targets (default close, high, low; add ``"open"`` to forecast it too).
      num_samples: draws per context for Toto (default 3072); Kronos averages its own sample_count.
      aggregate: sample aggregation spec (spec 2.4), default ``"trimmed_mean_10"``.
      fee: per-side trading fee; None picks the original's rule (0.0015 for the 5 crypto symbols,
        else 0.0005: a fee of 0.0005 costs 5 bps of the position per charged side).
      spread: the ask/bid ratio the original calls SPREAD (default 1.0008711461252937, its value at
        import; the original's cached-data path used 1.05).
      key: PRNG key (default ``jax.random.key(0)``); per-context keys are folded from it.
      max_context: cap on the context length (None: the whole history, as the original).
      optimizer: multiplier optimizer (default :func:`default_optimizer`).

    Returns:
      :class:`jaxsim.engine.result.BacktestResult` (a dict symbol -> result for several stocks).
    """
    if isinstance(prices, (list, tuple, dict)):
        return backtest_many(prices, forecaster, n_sims=n_sims, protocol=protocol, targets=targets,
                             num_samples=num_samples, aggregate=aggregate, fee=fee, spread=spread, key=key,
                             max_context=max_context, optimizer=optimizer)
    key = jax.random.key(0) if key is None else key
    forecaster = _with_samples(forecaster, num_samples)
    prep = _prepare(prices, n_sims=n_sims, symbol=symbol, fee=fee, spread=spread, max_context=max_context)
    setup = _setup(prep, n_sims=n_sims, max_context=max_context, targets=targets, aggregate=aggregate,
                   protocol=protocol, optimizer=optimizer)
    stocks = StockArrays(jnp.asarray(prep.prices)[None], jnp.asarray(_stamps(forecaster, prep.dates))[None])
    keys = jax.tree.map(lambda k: k[None], key)
    traces = trace_count()
    t0 = time.perf_counter()
    out = run_program(forecaster, stocks, [prep.fee], [prep.spread], keys, setup)
    out = jax.block_until_ready(out)
    seconds = time.perf_counter() - t0
    out = {k: np.asarray(v) for k, v in jax.device_get(out).items()}
    pnl_meta = _forecasted_pnl(forecaster, out, keys, protocol)
    return _result(prep, setup, _to_host(out, 0), forecaster, n_sims,
                   {"seconds": seconds, "compiled": trace_count() > traces, **pnl_meta[0]})


def backtest_many(prices: Sequence | Mapping, forecaster: Forecaster, *, n_sims: int = 50,
                  protocol: str = "legacy", targets=None, num_samples: int = 3072,
                  aggregate: str = "trimmed_mean_10", fee=None, spread=None, key=None, max_context=None,
                  optimizer=None, chunk_size: int | None = None, devices=None, progress: bool = True,
                  keys=None):
    """Backtest many stocks: a vmapped stock axis sharded over devices, in chunks.

    Stock i (in input order) uses ``jax.random.fold_in(key, i)``, so its result equals
    ``backtest(prices[i], ..., key=jax.random.fold_in(key, i))``. Stocks are grouped by (rows after
    trimming, crypto rule); each group runs in chunks of ``chunk_size`` stocks (default: all of the
    group, rounded up to a multiple of the device count), with a tqdm bar when there is more than
    one chunk. ``fee``/``spread`` may be scalars or per-stock sequences. ``keys`` (one PRNG key per
    stock) overrides the ``fold_in(key, i)`` rule, so a caller that batches a subset of a larger run
    (a resumed :func:`jaxsim.engine.runs.run_many`) keeps each stock's draws.

    Returns:
      dict symbol -> :class:`jaxsim.engine.result.BacktestResult`, in input order.
    """
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    items = list(prices.values()) if isinstance(prices, Mapping) else list(prices)
    names = list(prices.keys()) if isinstance(prices, Mapping) else [p.symbol for p in items]
    if len(set(names)) != len(names):
        raise ConfigError(f"backtest_many needs distinct symbols, got {names}")
    n = len(items)
    fees = list(fee) if isinstance(fee, (list, tuple)) else [fee] * n
    spreads = list(spread) if isinstance(spread, (list, tuple)) else [spread] * n
    key = jax.random.key(0) if key is None else key
    stock_keys = None if keys is None else list(keys)
    if stock_keys is not None and len(stock_keys) != n:
        raise ConfigError(f"backtest_many: got {len(stock_keys)} keys for {n} stocks")
    forecaster = _with_samples(forecaster, num_samples)
    preps = [_prepare(p, n_sims=n_sims, symbol=s, fee=f, spread=sp, max_context=max_context)
             for p, s, f, sp in zip(items, names, fees, spreads)]
    devices = list(devices or jax.devices())
    mesh = Mesh(np.array(devices), ("stock",))
    along_stocks, replicated = NamedSharding(mesh, PartitionSpec("stock")), NamedSharding(mesh, PartitionSpec())

    groups: dict[tuple, list[int]] = {}
    for i, prep in enumerate(preps):
        groups.setdefault((len(prep.prices), prep.crypto), []).append(i)
    if len(groups) > 1:
        log.info("backtest_many: %d stocks in %d shape groups (rows, crypto): %s", n, len(groups), list(groups))
    plan = []
    for members in groups.values():
        size = chunk_size or len(members)
        size = -(-size // len(devices)) * len(devices)  # a multiple of the device count
        plan += [members[j:j + size] + [members[j:j + size][-1]] * (size - len(members[j:j + size]))
                 for j in range(0, len(members), size)]
    bar = _progress(len(plan), enabled=progress and len(plan) > 1)
    params = jax.device_put(forecaster, replicated)
    results = {}
    for chunk in plan:
        first = preps[chunk[0]]
        setup = _setup(first, n_sims=n_sims, max_context=max_context, targets=targets, aggregate=aggregate,
                       protocol=protocol, optimizer=optimizer)
        stocks = StockArrays(np.stack([preps[i].prices for i in chunk]),
                             np.stack([_stamps(forecaster, preps[i].dates) for i in chunk]))
        if stock_keys is None:
            keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.asarray(chunk, jnp.uint32))
        else:
            keys = jnp.stack([stock_keys[i] for i in chunk])
        args = jax.device_put((stocks, np.array([preps[i].fee for i in chunk], np.float32),
                               np.array([preps[i].spread for i in chunk], np.float32), keys), along_stocks)
        t0 = time.perf_counter()
        out = jax.device_get(jax.block_until_ready(run_program(params, *args, setup)))
        seconds = time.perf_counter() - t0
        out = {k: np.asarray(v) for k, v in out.items()}
        pnl_meta = _forecasted_pnl(forecaster, out, keys, protocol)
        for b, i in enumerate(chunk):
            if names[i] not in results:
                results[names[i]] = _result(preps[i], setup, _to_host(out, b), forecaster, n_sims,
                                            {"seconds_chunk": seconds, "chunk_stocks": len(chunk),
                                             "devices": len(devices), **pnl_meta[b]})
        bar.update(1)
    bar.close()
    return {name: results[name] for name in names}


def _progress(total: int, enabled: bool):
    """A tqdm bar (leave=False), or a no-op when disabled or tqdm is missing."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        enabled = False
    if not enabled:
        class _Null:
            def update(self, _):
                pass

            def close(self):
                pass

        return _Null()
    return tqdm(total=total, desc="backtest chunks", leave=False)
