"""The backtest API: Prices in, :class:`~jaxsim.engine.result.BacktestResult` out.

The imperative shell around the compiled program of :mod:`jaxsim.engine.program`: it validates and
trims the prices (:func:`prepare_stock`), builds the static setup (:func:`make_setup`), runs the
program on a batch of stocks, makes one ``device_get`` and builds the results.

Multi-stock (:func:`backtest_many`): stocks are grouped by (row count, crypto rule) so that every
stock's contexts get exactly the padding they get alone (padding stocks to a common length would
change Toto's output); with a context cap every stock is first trimmed to the rows the cap reads, so
all stocks of one rule share one group. A group's stock axis is sharded over the available devices
with :class:`jax.sharding.NamedSharding` and processed in chunks of ``chunk_size`` stocks with a tqdm
bar (only in this shell, never inside compiled code).

Settings come as one :class:`jaxsim.config.BacktestConfig` (``config=``) or as its fields in keyword
form (``n_sims=10, protocol="walk_forward"``), see :func:`jaxsim.config.resolve_config`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import zlib
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxsim.config import BacktestConfig, resolve_config
from jaxsim.data.prices import Prices, as_prices, price_table
from jaxsim.engine.forecasted_pnl import source_names
from jaxsim.engine.program import BacktestSetup, run_program, trace_count
from jaxsim.engine.result import BacktestResult
from jaxsim.errors import ConfigError, PriceDataError
from jaxsim.forecast.grid import ForecastGrid, trim_start
from jaxsim.forecast.interface import Forecaster, StockArrays
from jaxsim.sim.maxdiff import default_optimizer
from jaxsim.sim.metrics import DEFAULT_SPREAD
from jaxsim.sim.simulation import PRICE_WINDOW, StrategyConfig, default_fee, is_crypto
from jaxsim.sim.strategy import check_names, strategy_table

__all__ = [
    "PreparedStock",
    "prepare_stock",
    "make_setup",
    "stock_arrays",
    "stock_key",
    "stock_keys",
    "with_config_samples",
    "backtest",
    "backtest_many",
]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PreparedStock:
    """One stock ready for the program (host arrays, trimmed to the rows the program reads).

    Attributes:
      symbol: the symbol (or None).
      start: rows dropped from the front (context cap).
      prices: ``(T', 8)`` float32 rows of :func:`jaxsim.data.prices.price_table`.
      dates: ``(T',)`` datetime64[D].
      fee, spread: the resolved trading fee and SPREAD.
      crypto: the crypto rule applies.
      n_sims: N of this stock (``config.n_sims``, or the full history's for ``"all"``; 0: from the config).
    """

    symbol: str | None
    start: int
    prices: np.ndarray
    dates: np.ndarray
    fee: float
    spread: float
    crypto: bool
    n_sims: int = 0


def prepare_stock(
    prices: Prices, config: BacktestConfig, *, symbol: str | None = None, fee=None, spread=None
) -> PreparedStock:
    """Validate and trim one stock for ``config`` (fee/spread None: the per-symbol rule / DEFAULT_SPREAD).

    ``fee``/``spread`` are this stock's settings (a multi-stock config may hold per-stock tuples);
    ``symbol`` overrides ``prices.symbol`` (it selects the crypto rule and default fee).
    """
    if not isinstance(prices, Prices):
        raise PriceDataError(
            f"backtest needs jaxsim.data.prices.Prices (load it with jaxsim.load_prices(...)); "
            f"got {type(prices).__name__}"
        )
    symbol = symbol if symbol is not None else prices.symbol
    table = price_table(prices)
    n_sims = config.sims_for(len(table))  # "all": every origin with min_context returns
    ForecastGrid(len(table), n_sims, config.max_context)  # validates the history length
    start = trim_start(len(table), n_sims, config.max_context, PRICE_WINDOW)
    crypto = bool(symbol) and is_crypto(symbol)
    return PreparedStock(
        symbol,
        start,
        table[start:],
        np.asarray(prices.dates)[start:],
        float(default_fee(symbol or "") if fee is None else fee),
        float(DEFAULT_SPREAD if spread is None else spread),
        crypto,
        n_sims,
    )


def make_setup(prep: PreparedStock, config: BacktestConfig) -> BacktestSetup:
    """The static setup (compile key) of the program for a stock shaped like ``prep``."""
    n_sims = prep.n_sims or config.sims_for(len(prep.prices) + prep.start)
    return BacktestSetup(
        grid=ForecastGrid(len(prep.prices), n_sims, config.max_context),
        targets=config.targets,
        aggregate=config.aggregate,
        protocol=config.protocol,
        strategy=StrategyConfig(crypto=prep.crypto),
        optimizer=default_optimizer() if config.optimizer is None else config.optimizer,
        strategies=check_names(config.strategies),
        return_samples=config.return_samples,
        sim_chunk=config.sim_chunk,
    )


def stock_arrays(forecaster: Forecaster, preps: Sequence[PreparedStock]) -> StockArrays:
    """Host arrays of a batch of same-shape stocks (leading axis B), with the forecaster's calendar features."""
    return StockArrays(
        np.stack([p.prices for p in preps]), np.stack([forecaster.calendar_features(p.dates) for p in preps])
    )


def stock_key(key, symbol: str):
    """The PRNG key of ``symbol`` in a run with ``key`` (the default ``"symbol"`` rule):
    ``fold_in(key, crc32(symbol))``."""
    return jax.random.fold_in(key, np.uint32(zlib.crc32(symbol.encode())))


def stock_keys(key, symbols: Sequence[str], rule: str | None = None) -> list:
    """Each stock's PRNG key under ``rule`` (:attr:`jaxsim.config.BacktestConfig.stock_key`):
    ``"symbol"``/None :func:`stock_key`; ``"index"`` ``fold_in(key, i)`` for the i-th stock."""
    if rule == "index":
        return [jax.random.fold_in(key, np.uint32(i)) for i in range(len(symbols))]
    return [stock_key(key, s) for s in symbols]


def with_config_samples(forecaster: Forecaster, config: BacktestConfig) -> Forecaster:
    """The forecaster with ``config.num_samples`` applied when set (an explicit override; None keeps its own)."""
    if config.num_samples is None or config.num_samples == forecaster.draws_per_context():
        return forecaster
    return forecaster.with_draws_per_context(config.num_samples)


def _run_key(key, config: BacktestConfig):
    return jax.random.key(config.seed) if key is None else key


def _result(prep: PreparedStock, setup: BacktestSetup, arrays, sources, forecaster, config, extra):
    chronological = setup.protocol == "walk_forward"
    meta = {
        "forecaster": forecaster.kind,
        "forecast_path": forecaster.forecast_path(setup.grid),
        "n_sims_setting": config.n_sims,
        "min_context": config.min_context,
        "sim_chunk": setup.sim_chunk,
        "targets": list(setup.targets),
        "aggregate": setup.aggregate,
        "num_samples": forecaster.draws_per_context(),
        "num_samples_override": config.num_samples,
        "fee": prep.fee,
        "spread": prep.spread,
        "crypto": prep.crypto,
        "n_rows": int(len(prep.prices) + prep.start),
        "rows_trimmed": prep.start,
        "max_context": setup.grid.max_context,
        "first_date": str(prep.dates[0]),
        "last_date": str(prep.dates[-1]),
        "forecasted_pnl_source": {
            s.name: str(name) for s, name in zip(strategy_table(setup.strategies), source_names(sources))
        },
        "user_strategies": [s.name for s in setup.strategies],
        "user_strategy_kinds": {s.name: s.kind for s in setup.strategies},
        "forecasted_pnl_order": "chronological"
        if chronological
        else "row order, newest first (docs/deviations.md#forecasted-pnl-order)",
        **extra,
    }
    return BacktestResult.from_arrays(prep.symbol, setup.protocol, arrays, prep.dates[setup.grid.ends], meta)


def backtest(
    prices,
    forecaster: Forecaster,
    config: BacktestConfig | None = None,
    *,
    symbol: str | None = None,
    key=None,
    **settings,
):
    """Walk-forward backtest of one stock (or several: a list or dict of ``Prices``).

    Runs the N simulations of the original ``backtest_forecasts`` (docs/backtest.md#walk-forward-geometry): simulation k
    ends at row T-2-k and scores eight strategies on its six evaluation days, then forecasts each strategy's
    P&L. The work is one compiled program (:mod:`jaxsim.engine.program`), compiled once per distinct
    setup and input shape.

    Args:
      prices: a :class:`jaxsim.data.prices.Prices`, a DataFrame, a price file path or a bundled sample
        name (:func:`jaxsim.data.prices.as_prices`); a list/tuple/dict of them runs :func:`backtest_many`.
      forecaster: from :mod:`jaxsim.forecast.forecasters` (naive, historical_mean, from_function, toto,
        kronos); its own settings (e.g. Toto's ``num_samples``) are used.
      config: a :class:`jaxsim.config.BacktestConfig` (every setting, with the reason for its default).
      symbol: overrides ``prices.symbol`` (it selects the crypto rule and default fee).
      key: the run's PRNG key (default ``jax.random.key(config.seed)``); the stock uses
        :func:`stock_key` ``(key, symbol)``, as in :func:`backtest_many` and :func:`jaxsim.run_many`,
        and per-context keys are folded from that.
      **settings: the fields of :class:`~jaxsim.config.BacktestConfig` as keywords (``n_sims``,
        ``protocol``, ``targets``, ``aggregate``, ``fee``, ``spread``, ``max_context``,
        ``optimizer``, ``num_samples``, ``seed``, ``stock_key``); with ``config`` too they must agree.

    Returns:
      :class:`jaxsim.engine.result.BacktestResult` (a dict symbol -> result for several stocks).
    """
    config = resolve_config(config, settings)
    if isinstance(prices, (list, tuple, dict)):
        return backtest_many(prices, forecaster, config, key=key)
    prices = as_prices(prices, symbol=symbol)
    (key,) = stock_keys(_run_key(key, config), [symbol or prices.symbol], config.stock_key)  # the one key rule
    forecaster = with_config_samples(forecaster, config)
    prep = prepare_stock(prices, config, symbol=symbol, fee=config.fee_of(0), spread=config.spread_of(0))
    setup = make_setup(prep, config)
    stocks = jax.tree.map(jnp.asarray, stock_arrays(forecaster, [prep]))
    keys = jax.tree.map(lambda k: k[None], key)
    traces = trace_count()
    t0 = time.perf_counter()
    out = jax.block_until_ready(run_program(forecaster, stocks, [prep.fee], [prep.spread], keys, setup))
    seconds = time.perf_counter() - t0
    records, sources = jax.device_get(out)
    arrays = {k: np.asarray(v[0]) for k, v in records.items()}
    return _result(
        prep, setup, arrays, sources[0], forecaster, config, {"seconds": seconds, "compiled": trace_count() > traces}
    )


def backtest_many(
    prices: Sequence | Mapping,
    forecaster: Forecaster,
    config: BacktestConfig | None = None,
    *,
    key=None,
    keys=None,
    chunk_size: int | None = None,
    devices=None,
    progress: bool = True,
    on_result: Callable | None = None,
    on_plan: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
    **settings,
):
    """Backtest many stocks: a vmapped stock axis sharded over devices, in chunks.

    Stock s uses :func:`stock_key` ``(key, s)`` (the default ``config.stock_key``), so its result
    equals ``backtest(prices_of_s, ..., key=key)`` whichever stocks run with it; ``"index"`` gives
    stock i ``fold_in(key, i)`` instead. Stocks are grouped by (rows after trimming, crypto rule):
    each group is one compiled program, and runs in chunks of ``chunk_size`` stocks (default: all
    of the group, rounded up to a multiple of the device count), with a tqdm bar when there is more
    than one chunk. ``config.fee``/``spread`` may be scalars or per-stock sequences. ``keys`` (one
    PRNG key per stock) overrides the key rule, so a caller that batches a subset of a larger run (a
    resumed :func:`jaxsim.engine.runs.run_many`) keeps each stock's draws. ``config``/``**settings``
    as in :func:`backtest`.

    Args:
      prices: a sequence of price sources, or a mapping symbol -> source; a source is a ``Prices``,
        a DataFrame, a file path or a bundled sample name (:func:`jaxsim.data.prices.as_prices`).
      on_plan: called once with ``{(rows, crypto): [symbols]}`` before anything runs (each group
        compiles one program).
      on_result: called as ``on_result(symbol, result)`` as each stock's result is ready.
      should_stop: checked before every chunk; when it returns True the call returns the results
        finished so far.

    Returns:
      dict symbol -> :class:`jaxsim.engine.result.BacktestResult`, in input order.
    """
    config = resolve_config(config, settings)
    if isinstance(prices, Mapping):
        names = [str(k) for k in prices]
        items = [as_prices(v, symbol=k) for k, v in zip(names, prices.values())]
    else:
        items = [as_prices(p) for p in prices]
        names = [p.symbol for p in items]
    if len(set(names)) != len(names):
        raise ConfigError(f"backtest_many needs distinct symbols, got {names}")
    n = len(items)
    for name in ("fee", "spread"):
        value = getattr(config, name)
        if isinstance(value, tuple) and len(value) != n:
            raise ConfigError(f"backtest_many: got {len(value)} values of {name} for {n} stocks")
    key = _run_key(key, config)
    if keys is not None:
        per_stock = list(keys)
        if len(per_stock) != n:
            raise ConfigError(f"backtest_many: got {len(per_stock)} keys for {n} stocks")
    else:
        per_stock = stock_keys(key, names, config.stock_key)
    forecaster = with_config_samples(forecaster, config)
    preps = [
        prepare_stock(p, config, symbol=s, fee=config.fee_of(i), spread=config.spread_of(i))
        for i, (p, s) in enumerate(zip(items, names))
    ]
    devices = list(devices or jax.local_devices())  # a process drives its own devices (multi-process runs)
    mesh = Mesh(np.array(devices), ("stock",))
    along_stocks, replicated = NamedSharding(mesh, PartitionSpec("stock")), NamedSharding(mesh, PartitionSpec())

    groups: dict[tuple, list[int]] = {}
    for i, prep in enumerate(preps):  # with n_sims="all" equal row counts also mean equal N
        groups.setdefault((len(prep.prices), prep.n_sims, prep.crypto), []).append(i)
    if len(groups) > 1:
        log.info("backtest_many: %d stocks in %d shape groups (rows, N, crypto): %s", n, len(groups), list(groups))
    if on_plan is not None:
        on_plan({g: [names[i] for i in members] for g, members in groups.items()})
    plan = []
    for members in groups.values():
        size = chunk_size or len(members)
        size = -(-size // len(devices)) * len(devices)  # a multiple of the device count
        plan += [
            members[j : j + size] + [members[j : j + size][-1]] * (size - len(members[j : j + size]))
            for j in range(0, len(members), size)
        ]
    bar = _progress(len(plan), enabled=progress and len(plan) > 1)
    params = jax.device_put(forecaster, replicated)
    results = {}
    for chunk in plan:
        if should_stop is not None and should_stop():
            break
        setup = make_setup(preps[chunk[0]], config)
        stocks = stock_arrays(forecaster, [preps[i] for i in chunk])
        chunk_keys = jnp.stack([per_stock[i] for i in chunk])
        args = jax.device_put(
            (
                stocks,
                np.array([preps[i].fee for i in chunk], np.float32),
                np.array([preps[i].spread for i in chunk], np.float32),
                chunk_keys,
            ),
            along_stocks,
        )
        t0 = time.perf_counter()
        out = jax.block_until_ready(run_program(params, *args, setup))
        seconds = time.perf_counter() - t0
        records, sources = jax.device_get(out)
        for b, i in enumerate(chunk):
            if names[i] not in results:
                arrays = {k: np.asarray(v[b]) for k, v in records.items()}
                results[names[i]] = _result(
                    preps[i],
                    setup,
                    arrays,
                    sources[b],
                    forecaster,
                    config,
                    {"seconds_chunk": seconds, "chunk_stocks": len(chunk), "devices": len(devices)},
                )
                if on_result is not None:
                    on_result(names[i], results[names[i]])
        bar.update(1)
    bar.close()
    return {name: results[name] for name in names if name in results}


def _progress(total: int, enabled: bool):
    """A tqdm bar (leave=False), or a no-op when disabled or tqdm is missing."""
    try:
        from tqdm.auto import tqdm  # optional dependency
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
