"""The backtest API: Prices in, :class:`~jaxsim.report.result.BacktestResult` out.

The imperative shell around the compiled program of :mod:`jaxsim.engine.program`: the one pipeline
(:func:`jaxsim.shell.plan.make_plan`) validates and trims the prices, derives each stock's N, key,
shape group and static setup; this module runs the program on each group, makes one ``device_get``
per chunk and builds the results.

Multi-stock (:func:`backtest_many`): stocks are grouped by (rows, N, crypto rule) so that every
stock's contexts get exactly the padding they get alone (padding stocks to a common length would
change Toto's output); with a context cap every stock is first trimmed to the rows the cap reads, so
all stocks of one rule share one group. A group's stock axis is sharded over the available devices
with :class:`jax.sharding.NamedSharding` and processed in chunks of ``chunk_size`` stocks with a tqdm
bar (only in this shell, never inside compiled code).

Settings come as one :class:`jaxsim.config.BacktestConfig` (``config=``) or as its fields in keyword
form (``n_sims=10, protocol="walk_forward"``), see :func:`jaxsim.config.resolve_config`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxsim.config import BacktestConfig, resolve_config
from jaxsim.engine.forecasted_pnl import source_names
from jaxsim.engine.program import BacktestSetup, run_program, trace_count
from jaxsim.forecast import forecasters
from jaxsim.report.result import BacktestResult
from jaxsim.shell.plan import Plan, PreparedStock, make_plan, stack_keys
from jaxsim.sim.strategy import strategy_table

__all__ = ["backtest", "backtest_many"]

log = logging.getLogger(__name__)


def _key_list(key) -> list[int]:
    """A PRNG key's raw data as a list (the report's record of the stock key)."""
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    return np.asarray(jax.random.key_data(key) if typed else key).ravel().tolist()


def _result(prep: PreparedStock, setup: BacktestSetup, arrays, sources, forecaster, config, extra):
    n = setup.grid.n_sims  # the program's N: a length bucket's masked simulations follow the stock's own
    arrays = {k: (v[: prep.n_sims] if v.ndim and v.shape[0] == n else v) for k, v in arrays.items()}
    ends = len(prep.prices) - 2 - np.arange(prep.n_sims)  # simulation k ends at the stock's row T-2-k
    chronological = setup.protocol == "walk_forward"
    meta = {
        "forecaster": forecaster.kind,
        "forecaster_label": getattr(forecaster, "label", None) or forecaster.kind,
        "forecast_path": forecaster.forecast_path(setup.grid),
        "n_sims_setting": config.n_sims,
        "seed": config.seed,
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
        "program_rows": setup.grid.n_rows,
        "program_sims": n,
        "first_date": str(prep.dates[0]),
        "last_date": str(prep.dates[-1]),
        # the close the out-of-sample equity starts from: the day before the oldest simulation's date
        "pnl_start_date": str(prep.dates[ends[-1] - 1]),
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
    return BacktestResult.from_arrays(prep.symbol, setup.protocol, arrays, prep.dates[ends], meta)


def _results(prep: PreparedStock, setup: BacktestSetup, arrays, sources, forecaster, config, extra, key):
    """One stock's result from its program outputs; with ``setup.n_seeds`` K > 1 the outputs carry a
    leading seed axis: seed 0's result, holding every seed's (``seeds``)."""
    if setup.n_seeds == 1:
        return _result(prep, setup, arrays, sources, forecaster, config, {**extra, "stock_key": _key_list(key)})
    per_seed = [
        _result(
            prep,
            setup,
            {k: v[j] for k, v in arrays.items()},
            sources[j],
            forecaster,
            config,
            {**extra, "seed": config.seed + j, "n_seeds": setup.n_seeds, "stock_key": _key_list(key[j])},
        )
        for j in range(setup.n_seeds)
    ]
    return per_seed[0].with_seeds(per_seed)


def backtest(
    prices, forecaster=None, config: BacktestConfig | None = None, *, symbol: str | None = None, key=None, **settings
):
    """Walk-forward backtest of one stock (or several: a list or dict of ``Prices``).

    Runs the N simulations of the original ``backtest_forecasts`` (docs/backtest.md#walk-forward-geometry):
    simulation k ends at row T-2-k and scores eight strategies on its six evaluation days, then forecasts
    each strategy's P&L. The work is one compiled program (:mod:`jaxsim.engine.program`), compiled once
    per distinct setup and input shape.

    Args:
      prices: a :class:`jaxsim.data.prices.Prices`, a DataFrame, a price file path or a bundled sample
        name (:func:`jaxsim.data.prices.as_prices`); a list/tuple/dict of them runs :func:`backtest_many`.
      forecaster: from :mod:`jaxsim.forecast.forecasters` (naive, historical_mean, volatility,
        from_function, toto, kronos); its own settings (e.g. Toto's ``num_samples``) are used. None:
        the embedded default model (``jaxsim.forecasters.default()``), as ``jaxsim backtest``.
      config: a :class:`jaxsim.config.BacktestConfig` (every setting, with the reason for its default).
      symbol: overrides ``prices.symbol`` (it selects the crypto rule and default fee).
      key: the run's PRNG key (default ``jax.random.key(config.seed)``); the stock uses
        :func:`jaxsim.shell.plan.stock_key` ``(key, symbol)``, as in :func:`backtest_many`,
        :func:`jaxsim.run_many` and :func:`jaxsim.simulation_data`, and per-context keys are folded
        from that.
      **settings: the fields of :class:`~jaxsim.config.BacktestConfig` as keywords (``n_sims``,
        ``protocol``, ``targets``, ``aggregate``, ``fee``, ``spread``, ``max_context``,
        ``optimizer``, ``num_samples``, ``seed``, ``stock_key``); with ``config`` too they must agree.

    Returns:
      :class:`jaxsim.report.result.BacktestResult` (a dict symbol -> result for several stocks).
    """
    config = resolve_config(config, settings)
    forecaster = forecasters.default() if forecaster is None else forecaster
    if isinstance(prices, (list, tuple, dict)):
        return backtest_many(prices, forecaster, config, key=key)
    plan = make_plan(prices, forecaster, config, key=key, symbol=symbol)
    setup = plan.setup(0)
    stocks = jax.device_put(plan.arrays([0]))  # a transfer; jnp.asarray would compile a program per shape
    keys = stack_keys(plan.keys[:1])
    prep = plan.stocks[0]
    traces = trace_count()
    t0 = time.perf_counter()
    out = jax.block_until_ready(run_program(plan.forecaster, stocks, [prep.fee], [prep.spread], keys, setup))
    seconds = time.perf_counter() - t0
    records, sources = jax.device_get(out)
    arrays = {k: np.asarray(v[0]) for k, v in records.items()}
    extra = {"seconds": seconds, "compiled": trace_count() > traces, **({"key_given": True} if key is not None else {})}
    return _results(prep, setup, arrays, sources[0], plan.forecaster, config, extra, plan.keys[0])


def backtest_many(
    prices: Sequence | Mapping,
    forecaster=None,
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

    Stock s uses :func:`jaxsim.shell.plan.stock_key` ``(key, s)`` (the default ``config.stock_key``), so
    its result equals ``backtest(prices_of_s, ..., key=key)`` whichever stocks run with it; ``"index"``
    gives stock i ``fold_in(key, i)`` instead. Stocks are grouped by (program rows, N, crypto rule):
    each group is one compiled program, and runs in chunks of ``chunk_size`` stocks (default: the whole
    group; rounded up to a multiple of the device count), with a tqdm bar when there is more than one
    chunk. On one device ``chunk_size=1`` calls exactly :func:`backtest`'s program of each length
    bucket, so the universe and single-stock runs share compiled programs
    (docs/compilation.md#shared-programs). ``config.fee``/``spread`` may be scalars or per-stock
    sequences. ``keys`` (one PRNG key per stock) overrides the key rule, so a caller that batches a
    subset of a larger run (a resumed :func:`jaxsim.shell.runs.run_many`) keeps each stock's draws.
    ``config``/``**settings`` as in :func:`backtest`.

    Args:
      prices: a sequence of price sources, or a mapping symbol -> source; a source is a ``Prices``,
        a DataFrame, a file path or a bundled sample name (:func:`jaxsim.data.prices.as_prices`).
      forecaster: as in :func:`backtest` (None: the embedded default model).
      on_plan: called once with ``{(rows, N, crypto): [symbols]}`` before anything runs (each group
        compiles one program).
      on_result: called as ``on_result(symbol, result)`` as each stock's result is ready.
      should_stop: checked before every chunk; when it returns True the call returns the results
        finished so far.

    Returns:
      dict symbol -> :class:`jaxsim.report.result.BacktestResult`, in input order.
    """
    config = resolve_config(config, settings)
    forecaster = forecasters.default() if forecaster is None else forecaster  # as backtest
    plan = make_plan(prices, forecaster, config, key=key, keys=keys, caller="backtest_many")
    names = plan.names
    if len(plan.groups) > 1:
        log.info(
            "backtest_many: %d stocks in %d shape groups (rows, N, crypto): %s",
            len(names),
            len(plan.groups),
            list(plan.groups),
        )
    if on_plan is not None:
        on_plan({g: [names[i] for i in members] for g, members in plan.groups.items()})
    devices = list(devices or jax.local_devices())  # a process drives its own devices (multi-process runs)
    chunks = plan.chunks(chunk_size, len(devices))
    bar = _progress(len(chunks), enabled=progress and len(chunks) > 1)
    params, place = _placement(plan.forecaster, devices)
    group_of = {i: g for g, members in plan.groups.items() for i in members}
    results = {}
    pending = None  # the chunk in flight: the next chunk of its group is dispatched before its results are built
    for chunk in chunks:
        if should_stop is not None and should_stop():
            break
        if pending is not None and group_of[chunk[0]] != group_of[pending[0][0]]:
            # another group's program compiles first: the pending results come out before that wait
            results.update(_finish_chunk(plan, *pending, len(devices), on_result, skip=results))
            bar.update(1)
            pending = None
        started = _start_chunk(plan, chunk, params, place)
        if pending is not None:
            results.update(_finish_chunk(plan, *pending, len(devices), on_result, skip=results))
            bar.update(1)
        pending = (chunk, *started)
    if pending is not None:
        results.update(_finish_chunk(plan, *pending, len(devices), on_result, skip=results))
        bar.update(1)
    bar.close()
    return {name: results[name] for name in names if name in results}


def _placement(forecaster, devices: Sequence) -> tuple[object, Callable]:
    """The forecaster's parameters and a function placing a chunk's arguments on ``devices``: the stock
    axis sharded over several devices; on one device the arguments :func:`backtest` passes (arrays on
    the device, fees and spreads on the host), so a chunk of one stock calls :func:`backtest`'s program."""
    if len(devices) == 1:

        def place(arrays, fees, spreads, keys):
            return jax.device_put(arrays, devices[0]), fees, spreads, keys

        return forecaster, place
    mesh = Mesh(np.array(devices), ("stock",))
    along_stocks, replicated = NamedSharding(mesh, PartitionSpec("stock")), NamedSharding(mesh, PartitionSpec())

    def place(arrays, fees, spreads, keys):
        return jax.device_put((arrays, fees, spreads, keys), along_stocks)

    return jax.device_put(forecaster, replicated), place


def _start_chunk(plan: Plan, chunk: list[int], params, place: Callable) -> tuple:
    """Dispatch one chunk of a shape group (padded stocks repeat a member): compiled (or loaded) first if
    its program is new, then running asynchronously, so the host builds the previous chunk's results
    meanwhile. Returns ``(setup, outputs, start time)``."""
    setup = plan.setup(chunk[0])
    preps = [plan.stocks[i] for i in chunk]
    fees = np.array([p.fee for p in preps], np.float32)
    spreads = np.array([p.spread for p in preps], np.float32)
    args = place(plan.arrays(chunk), fees, spreads, stack_keys([plan.keys[i] for i in chunk]))
    t0 = time.perf_counter()
    return setup, run_program(params, *args, setup), t0


def _finish_chunk(
    plan: Plan, chunk: list[int], setup: BacktestSetup, out, t0: float, n_devices: int, on_result, skip
) -> dict:
    """Wait for a dispatched chunk and build its results (``seconds_chunk``: dispatch to ready)."""
    out = jax.block_until_ready(out)
    seconds = time.perf_counter() - t0
    records, sources = jax.device_get(out)
    results = {}
    for b, i in enumerate(chunk):
        name = plan.names[i]
        if name in skip or name in results:  # a padding repeat
            continue
        arrays = {k: np.asarray(v[b]) for k, v in records.items()}
        extra = {"seconds_chunk": seconds, "chunk_stocks": len(chunk), "devices": n_devices}
        results[name] = _results(
            plan.stocks[i], setup, arrays, sources[b], plan.forecaster, plan.config, extra, plan.keys[i]
        )
        if on_result is not None:
            on_result(name, results[name])
    return results


def _progress(total: int, enabled: bool):
    """A tqdm bar (leave=False), or a no-op when disabled or tqdm is missing."""
    try:
        from tqdm.auto import tqdm  # deferred: only when a bar is shown, and tqdm may be missing
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
