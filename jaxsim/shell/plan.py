"""The one pipeline from (sources, forecaster, config, key) to what the compiled program runs on.

Every entry point goes through :func:`make_plan` (:func:`jaxsim.backtest`, :func:`jaxsim.backtest_many`,
:func:`jaxsim.run_many` in one process or many, :func:`jaxsim.simulation_data`, :func:`jaxsim.tune`,
:func:`jaxsim.check_no_lookahead`, :func:`jaxsim.compare`), so they agree on:

* the stock's name: the mapping key, else ``symbol=``, else the prices' own symbol, else ``stock<i>``;
* its rows: validated and trimmed to what the program reads (:func:`prepare_stock`);
* its N: ``config.n_sims``, or its full history's for ``n_sims="all"`` (:meth:`BacktestConfig.sims_for`),
  computed once, here;
* its PRNG key: the run key (``key=``, else ``jax.random.key(config.seed)``) folded with crc32 of the
  name (:func:`stock_key`; ``config.stock_key="index"`` folds with the stock's position instead), so a
  stock and a seed give the same draws however they are run;
* its shape group ``(program rows, program N, crypto)``: one compiled program per group
  (:attr:`Plan.groups`); the program rows are the stock's rows rounded up to ``config.length_bucket``
  (:func:`program_shape`, NaN rows in front, masked), so stocks of different lengths share a program;
* its static setup (:func:`make_setup`), the forecaster with ``config.num_samples`` applied.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Mapping, Sequence

import jax
import numpy as np

from jaxsim.config import ALL_SIMS, BacktestConfig
from jaxsim.data.prices import Prices, as_prices, price_table
from jaxsim.engine.compilation import ProgramCache
from jaxsim.engine.program import BacktestSetup
from jaxsim.errors import ConfigError, PriceDataError
from jaxsim.forecast.grid import ForecastGrid, trim_start
from jaxsim.forecast.interface import SERIES_FEW_VALUES, Forecaster, StockArrays
from jaxsim.sim.metrics import DEFAULT_SPREAD
from jaxsim.sim.simulation import PRICE_WINDOW, StrategyConfig, default_fee, is_crypto
from jaxsim.sim.strategy import check_names

__all__ = [
    "PreparedStock",
    "Plan",
    "make_plan",
    "program_shape",
    "prepare_stock",
    "shape_key",
    "make_setup",
    "stock_arrays",
    "run_key",
    "stock_key",
    "stock_keys",
    "stack_keys",
    "with_config_samples",
]


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
      n_sims: N of this stock (``config.n_sims``, or its full history's for ``"all"``).
      program_rows: rows of the program it runs on (``len(prices)`` rounded up to the length bucket,
        :func:`program_shape`); the missing rows are NaN rows before the first (masked).
      program_sims: N of that program (``n_sims``, plus one masked simulation per padding row for
        ``n_sims="all"``); the result keeps the first ``n_sims``.
    """

    symbol: str | None
    start: int
    prices: np.ndarray
    dates: np.ndarray
    fee: float
    spread: float
    crypto: bool
    n_sims: int
    program_rows: int
    program_sims: int

    @property
    def n_rows(self) -> int:
        """Rows of the stock before trimming."""
        return len(self.prices) + self.start


def program_shape(n_rows: int, n_sims: int, config: BacktestConfig, forecaster: Forecaster | None) -> tuple[int, int]:
    """``(rows, N)`` of the program a stock of ``n_rows`` rows (after trimming) and N = ``n_sims`` runs on.

    With ``config.length_bucket = b`` and a forecaster whose output does not depend on extra left
    padding (:attr:`Forecaster.padding_invariant`; None: assume it does not), the rows round up to
    the next multiple of b; ``n_sims="all"`` adds one simulation per added row (masked in the program,
    dropped from the result). Exact otherwise, and when bucketing would cross the strategy-series
    rule of :data:`~jaxsim.forecast.interface.SERIES_FEW_VALUES` (fewer values draw fewer samples).
    """
    bucket = config.length_bucket
    if bucket is None or (forecaster is not None and not forecaster.padding_invariant):
        return n_rows, n_sims
    rows = -(-n_rows // bucket) * bucket
    sims = n_sims + (rows - n_rows) if config.n_sims == ALL_SIMS else n_sims
    if n_sims < SERIES_FEW_VALUES <= sims:
        return n_rows, n_sims
    return rows, sims


def prepare_stock(
    prices: Prices,
    config: BacktestConfig,
    *,
    symbol: str | None = None,
    fee=None,
    spread=None,
    forecaster: Forecaster | None = None,
) -> PreparedStock:
    """Validate and trim one stock for ``config`` (fee/spread None: the per-symbol rule / DEFAULT_SPREAD).

    ``fee``/``spread`` are this stock's settings (a multi-stock config may hold per-stock tuples);
    ``symbol`` overrides ``prices.symbol`` (it selects the crypto rule and default fee); ``forecaster``
    decides whether the stock may run on a length bucket (:func:`program_shape`). Raises
    InsufficientHistoryError for a history too short for ``config`` (before any compute).
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
    rows, sims = program_shape(len(table) - start, n_sims, config, forecaster)
    return PreparedStock(
        symbol,
        start,
        table[start:],
        np.asarray(prices.dates)[start:],
        float(default_fee(symbol or "") if fee is None else fee),
        float(DEFAULT_SPREAD if spread is None else spread),
        crypto,
        n_sims,
        rows,
        sims,
    )


def shape_key(prep: PreparedStock) -> tuple[int, int, bool]:
    """The shape group of a prepared stock, ``(program rows, program N, crypto rule)``: stocks of one
    group share one compiled program (a length bucket, or one exact length)."""
    return prep.program_rows, prep.program_sims, prep.crypto


def make_setup(prep: PreparedStock, config: BacktestConfig) -> BacktestSetup:
    """The static setup (compile key) of the program for a stock shaped like ``prep``."""
    return BacktestSetup(
        grid=ForecastGrid(prep.program_rows, prep.program_sims, config.max_context),
        padded_sims=config.n_sims == ALL_SIMS,
        targets=config.targets,
        aggregate=config.aggregate,
        protocol=config.protocol,
        strategy=StrategyConfig(crypto=prep.crypto),
        optimizer=config.optimizer,  # None: the default, resolved by BacktestSetup
        strategies=check_names(config.strategies),
        return_samples=config.return_samples,
        sim_chunk=config.sim_chunk,
        n_seeds=config.n_seeds,
    )


def stock_arrays(forecaster: Forecaster, preps: Sequence[PreparedStock]) -> StockArrays:
    """Host arrays of a batch of same-shape stocks (leading axis B), with the forecaster's calendar
    features; each stock's rows are preceded by NaN rows (zero features) up to its program's rows."""

    def front(a, rows, fill):
        pad = np.full((rows - len(a),) + a.shape[1:], fill, a.dtype)
        return np.concatenate([pad, a])

    return StockArrays(
        np.stack([front(p.prices, p.program_rows, np.nan) for p in preps]),
        np.stack([front(forecaster.calendar_features(p.dates), p.program_rows, 0) for p in preps]),
    )


def run_key(key, config: BacktestConfig):
    """The run's PRNG key: ``key``, or ``jax.random.key(config.seed)`` when None."""
    return jax.random.key(config.seed) if key is None else key


def stock_key(key, symbol: str):
    """The PRNG key of ``symbol`` in a run with ``key``: ``fold_in(key, crc32(symbol))``."""
    return jax.random.fold_in(key, np.uint32(zlib.crc32(symbol.encode())))


_INT32 = np.iinfo(np.int32)


def _folded(base, data, seeded: bool):
    """``fold_in(key, d)`` for each ``d`` of ``data`` ((n,) uint32); the key is ``base``, or
    ``jax.random.key(base)`` when ``seeded`` (an int32 seed)."""
    key = jax.random.key(base) if seeded else base
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, data)


# one program per (n, seeded), kept on disk with the compiled programs when the cache is on
_FOLDED = ProgramCache(_folded, name="stock_keys", message=None)


def stock_keys(key, symbols: Sequence[str], rule: str | None = None, *, seed: int | None = None) -> list:
    """Each stock's PRNG key under ``rule`` (:attr:`jaxsim.config.BacktestConfig.stock_key`):
    ``"symbol"``/None :func:`stock_key`; ``"index"`` ``fold_in(key, i)`` for the i-th stock.

    With ``key`` None the run key is ``jax.random.key(seed)``. The keys come from one compiled
    program (equal to the one-at-a-time :func:`stock_key`) and are returned as separate host-built
    keys, so that indexing or stacking them compiles nothing.
    """
    if rule == "index":
        data = np.arange(len(symbols), dtype=np.uint32)
    else:
        data = np.array([zlib.crc32(s.encode()) for s in symbols], np.uint32)
    token = f"stock_keys|{jax.config.jax_default_prng_impl}"  # the impl of key(seed) and of raw keys
    if key is None and _INT32.min <= seed <= _INT32.max:
        batch = _FOLDED(np.int32(seed), data, static=True, token=token)
    else:  # a seed beyond int32: jax.random.key's own handling of a Python int
        batch = _FOLDED(jax.random.key(seed) if key is None else key, data, static=False, token=token)
    if not jax.dtypes.issubdtype(batch.dtype, jax.dtypes.prng_key):  # a raw uint32 key gives raw keys
        return [jax.device_put(d) for d in np.asarray(batch)]
    impl = jax.random.key_impl(batch)
    return [jax.random.wrap_key_data(d, impl=impl) for d in np.asarray(jax.random.key_data(batch))]


def stack_keys(keys: Sequence):
    """The keys as one ``(B,)`` key array (raw uint32 keys: ``(B, 2)``), assembled on the host: unlike
    ``jnp.stack`` it compiles no program per batch size."""
    if jax.dtypes.issubdtype(keys[0].dtype, jax.dtypes.prng_key):
        data = np.stack([np.asarray(jax.random.key_data(k)) for k in keys])
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(keys[0]))
    return np.stack([np.asarray(k) for k in keys])


def with_config_samples(forecaster: Forecaster, config: BacktestConfig) -> Forecaster:
    """The forecaster with ``config.num_samples`` applied when set (an explicit override; None keeps its own)."""
    if config.num_samples is None or config.num_samples == forecaster.draws_per_context():
        return forecaster
    return forecaster.with_draws_per_context(config.num_samples)


@dataclasses.dataclass(frozen=True)
class Plan:
    """Stocks prepared for a run, in input order (see the module docstring).

    Attributes:
      config: the run's settings.
      forecaster: the forecaster with ``config.num_samples`` applied.
      names: each stock's name (the key rule's input and the results' key).
      stocks: each stock's :class:`PreparedStock`.
      keys: each stock's PRNG key (``config.n_seeds`` > 1: a ``(K,)`` key array, seed j's at j).
      groups: shape group ``(rows, N, crypto)`` -> stock indices, in input order.
    """

    config: BacktestConfig
    forecaster: Forecaster
    names: tuple[str, ...]
    stocks: tuple[PreparedStock, ...]
    keys: tuple
    groups: Mapping[tuple[int, int, bool], tuple[int, ...]]

    def setup(self, i: int) -> BacktestSetup:
        """The static setup of stock i's group."""
        return make_setup(self.stocks[i], self.config)

    def arrays(self, members: Sequence[int]) -> StockArrays:
        """Host arrays of stocks ``members`` (one shape group), leading axis B."""
        return stock_arrays(self.forecaster, [self.stocks[i] for i in members])

    def chunks(self, chunk_size: int | None = None, multiple: int = 1) -> list[list[int]]:
        """Each group in chunks of ``chunk_size`` stocks (default, or when the group is smaller: the whole
        group), rounded up to a multiple of ``multiple`` (the device count) by repeating a chunk's last
        stock."""
        out = []
        for members in self.groups.values():
            size = min(chunk_size or len(members), len(members))
            size = -(-size // multiple) * multiple
            for j in range(0, len(members), size):
                chunk = list(members[j : j + size])
                out.append(chunk + [chunk[-1]] * (size - len(chunk)))
        return out


def _named_sources(sources, symbol: str | None) -> list[tuple[str | None, object]]:
    """(name or None, source) pairs of one source, a sequence or a mapping name -> source."""
    if isinstance(sources, Mapping):
        return [(str(k), v) for k, v in sources.items()]
    if isinstance(sources, (list, tuple)):
        return [(None, s) for s in sources]
    return [(symbol, sources)]


def make_plan(
    sources,
    forecaster: Forecaster,
    config: BacktestConfig,
    *,
    key=None,
    keys: Sequence | None = None,
    symbol: str | None = None,
    caller: str = "backtest",
) -> Plan:
    """Prepare every stock of a run (the one pipeline; module docstring).

    Args:
      sources: one price source (a :class:`~jaxsim.data.prices.Prices`, a DataFrame, a price file path
        or a bundled sample name), a list/tuple of them, or a mapping name -> source.
      forecaster: the run's forecaster (``config.num_samples`` is applied here).
      config: the run's :class:`~jaxsim.config.BacktestConfig`.
      key: the run key (default ``jax.random.key(config.seed)``).
      keys: one PRNG key per stock, overriding the key rule (a resumed or chunked run keeps each
        stock's own).
      symbol: the name of a single source (overrides its own symbol).
      caller: named in errors.
    """
    pairs = _named_sources(sources, symbol)
    items = [as_prices(src, symbol=name) for name, src in pairs]
    names = [name or p.symbol or f"stock{i}" for i, ((name, _), p) in enumerate(zip(pairs, items))]
    if len(set(names)) != len(names):
        raise ConfigError(f"{caller} needs distinct symbols, got {names}")
    n = len(items)
    for field in ("fee", "spread"):
        value = getattr(config, field)
        if isinstance(value, tuple) and len(value) != n:
            raise ConfigError(f"{caller}: got {len(value)} values of {field} for {n} stocks")
    if config.n_seeds > 1:  # seed j's keys are those of a run with seed + j (docs/protocols.md#seeds)
        if key is not None:
            raise ConfigError(
                f"{caller}: n_seeds={config.n_seeds} derives its keys from seed={config.seed} .. "
                f"{config.seed + config.n_seeds - 1}; pass seed=, not key="
            )
        if keys is not None and len(list(keys)) != n:
            raise ConfigError(f"{caller}: got {len(list(keys))} keys for {n} stocks")
        per_seed = [stock_keys(None, names, config.stock_key, seed=config.seed + j) for j in range(config.n_seeds)]
        keys = [stack_keys([seed_keys[i] for seed_keys in per_seed]) for i in range(n)]  # (K,) per stock
    elif keys is not None:
        keys = list(keys)
        if len(keys) != n:
            raise ConfigError(f"{caller}: got {len(keys)} keys for {n} stocks")
    else:
        keys = stock_keys(key, names, config.stock_key, seed=config.seed)
    stocks = [
        prepare_stock(p, config, symbol=name, fee=config.fee_of(i), spread=config.spread_of(i), forecaster=forecaster)
        for i, (p, name) in enumerate(zip(items, [name for name, _ in pairs]))
    ]
    groups: dict[tuple[int, int, bool], list[int]] = {}
    for i, prep in enumerate(stocks):
        groups.setdefault(shape_key(prep), []).append(i)
    return Plan(
        config,
        with_config_samples(forecaster, config),
        tuple(names),
        tuple(stocks),
        tuple(keys),
        {g: tuple(m) for g, m in groups.items()},
    )
