"""Every setting of a backtest in one frozen, hashable value: :class:`BacktestConfig`.

:func:`jaxsim.backtest`, :func:`jaxsim.backtest_many` and :func:`jaxsim.run_many` take
``config=BacktestConfig(...)``; their keyword arguments (``n_sims=10``, ...) are a convenience that
builds the config (:func:`resolve_config`). Pure Python: the command line imports it to build its
parser without loading JAX.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxsim.errors import ConfigError, InsufficientHistoryError
from jaxsim.layout import PRICE_COLUMN

__all__ = [
    "PROTOCOLS",
    "DEFAULT_TARGETS",
    "STOCK_KEY_RULES",
    "ALL_SIMS",
    "DEFAULT_MIN_CONTEXT",
    "DEFAULT_SIM_CHUNK",
    "DEFAULT_LENGTH_BUCKET",
    "LIKE_ORIGINAL",
    "BacktestConfig",
    "FIELDS",
    "resolve_config",
    "sims_for_rows",
]

PROTOCOLS = ("legacy", "walk_forward")
DEFAULT_TARGETS = ("close", "high", "low")
STOCK_KEY_RULES = ("index", "symbol")
ALL_SIMS = "all"  # n_sims="all": every origin with at least min_context returns is a simulation
DEFAULT_MIN_CONTEXT = 64  # one Toto patch
DEFAULT_SIM_CHUNK = 256  # simulations per step of the chunked simulation stage
DEFAULT_LENGTH_BUCKET = 512  # rows: stocks are padded to the next multiple (one program per bucket)
# The original's settings (``--like-original``): MaxDiff fitted in-sample, its last 50 simulations.
# Its summary table is then comparable number for number (docs/protocols.md#defaults).
LIKE_ORIGINAL = {"protocol": "legacy", "n_sims": 50}


def sims_for_rows(n_rows: int, min_context: int) -> int:
    """N of ``n_sims="all"`` on ``n_rows`` rows: the earliest simulation's first origin T-N-7 has
    exactly ``min_context`` context returns r[1..T-N-8], so N = T - 8 - min_context (the inverse of
    :func:`jaxsim.data.prices.required_rows`)."""
    return int(n_rows) - 8 - int(min_context)


def _per_stock(value, name):
    """A fee/spread: None, a float, or a per-stock tuple of floats/None (lists become tuples)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple(None if v is None else float(v) for v in value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, None or a per-stock sequence, got {value!r}") from None


@dataclasses.dataclass(frozen=True)
class BacktestConfig:
    """The settings of a walk-forward backtest (frozen and hashable; equal when the settings are).

    Attributes:
      n_sims: ``"all"`` (default): every origin whose context has at least ``min_context`` returns,
        N = T - 8 - min_context per stock (the full history; Toto serves every origin from at most 64
        prefix-shared passes per target, :mod:`jaxsim.forecast.prefix`), or an integer N (the
        original's 50 is about the last ten weeks of trading; simulation k ends at row T-2-k).
        The default is the full history because 50 days say little: docs/protocols.md#defaults.
      protocol: ``"walk_forward"`` (default: MaxDiff's multipliers fitted on an earlier,
        non-overlapping window, :mod:`jaxsim.engine.walk_forward`: no look-ahead) or ``"legacy"``
        (fitted in-sample on the days they are scored on, as the original; :data:`LIKE_ORIGINAL`
        gives the original's settings).
      targets: forecast targets (default close, high, low: the series the eight strategies read;
        add ``"open"`` to forecast it too). Close is required.
      aggregate: how a context's draws become a point forecast (default ``"trimmed_mean_10"``: the
        original's aggregation, a mean with the top and bottom 10% dropped).
      fee: per-side trading fee. None (default) is the original's per-symbol rule: 0.0015 for the
        five crypto symbols, else 0.0005 (5 bps of the position per charged side). A per-stock tuple
        is accepted by the multi-stock entry points.
      spread: the ask/bid ratio the original calls SPREAD. None (default) is its value at import,
        :data:`jaxsim.sim.metrics.DEFAULT_SPREAD`; the original's cached-data path used 1.05.
      max_context: cap on the forecast context length (default None: the whole history, as the
        original; a cap makes stocks of different lengths share one compiled program).
      optimizer: the MaxDiff multiplier search (default None: the default optimizer,
        :func:`jaxsim.optimize.default_optimizer`). It is part of the compile key, so pass the
        same (or an equal) object to reuse the compiled program.
      num_samples: an explicit override of the forecaster's draws per context (default None: the
        forecaster's own setting, e.g. ``toto(dir, num_samples=256)`` draws 256). Recorded in the
        result metadata; only forecasters that draw samples accept it.
      seed: the run's PRNG seed when no ``key=`` is passed (default 0): the key is
        ``jax.random.key(seed)``.
      n_seeds: forecast seeds per stock (default 1). K > 1 runs the seeds ``seed, seed+1, ...,
        seed+K-1`` as one vmapped key axis of the same compiled program (the model's forward pass is
        shared; the draws and everything after them are per seed); seed j of stock s equals a run
        with ``seed=seed+j``. The result is seed ``seed``'s, with every seed's in
        :attr:`jaxsim.report.result.BacktestResult.seeds` and the spread in ``seed_spread()``
        (docs/protocols.md#seeds). Needs ``key=None`` (the keys come from the seeds).
      stock_key: how a stock's key is derived from the run key. None (default) or ``"symbol"``:
        stock s uses ``fold_in(key, crc32(s))`` in every entry point (:func:`jaxsim.backtest`,
        :func:`jaxsim.backtest_many`, :func:`jaxsim.run_many`, the command line), so a stock and a
        seed give the same numbers however they are run, whichever other stocks run with it and
        whether a run was resumed. ``"index"``: stock i of a :func:`jaxsim.backtest_many` call gets
        ``fold_in(key, i)`` (a one-stock :func:`jaxsim.backtest` is stock 0); refused by
        :func:`jaxsim.run_many`, whose chunks would change the index.
      strategies: extra user strategies run in the same compiled program
        (:class:`jaxsim.sim.strategy.UserStrategy`, default none); each adds ``<name>_*`` record
        fields and a summary row like a built-in. They are part of the compile key.
      return_samples: also return the draws of each simulation's newest forecast (default False:
        ``(N, S)`` floats per target; the quantiles 0.1/0.5/0.9, CRPS and PIT are always returned),
        as :attr:`jaxsim.report.result.BacktestResult.draws`.
      min_context: with ``n_sims="all"``, the fewest context returns the earliest simulation's first
        forecast sees (default 64: one Toto patch, the shortest context the model is given one full
        token of history; shorter contexts are mostly padding). Ignored for an integer ``n_sims``.
      sim_chunk: simulations evaluated per step of the simulation stage (strategies, optimizer,
        walk-forward re-score; default 256: a fixed memory budget whatever N is, and N <= 256, e.g.
        the default 50, is one vmap as before).
      length_bucket: stocks run on programs of a whole number of buckets of this many rows
        (default 512): a stock's rows are padded at the front to the next multiple with rows that
        hold nothing (masked; ``n_sims="all"`` pads the simulations with them), so stocks of
        different lengths share one compiled program and a result equals the stock's exact-length
        run within float rounding (docs/compilation.md#length-buckets). None: one program per exact
        length. Forecasters whose output could depend on the padding (Kronos, user functions) always
        run at their exact length.
    """

    n_sims: int | str = ALL_SIMS
    protocol: str = "walk_forward"
    targets: tuple[str, ...] = DEFAULT_TARGETS
    aggregate: str = "trimmed_mean_10"
    fee: Any = None
    spread: Any = None
    max_context: int | None = None
    optimizer: Any = None
    num_samples: int | None = None
    seed: int = 0
    n_seeds: int = 1
    stock_key: str | None = None
    strategies: tuple = ()
    return_samples: bool = False
    min_context: int = DEFAULT_MIN_CONTEXT
    sim_chunk: int = DEFAULT_SIM_CHUNK
    length_bucket: int | None = DEFAULT_LENGTH_BUCKET

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        if isinstance(self.n_sims, str) and self.n_sims.strip().lower() == ALL_SIMS:
            put("n_sims", ALL_SIMS)
        elif isinstance(self.n_sims, (bool, str)) or int(self.n_sims) != self.n_sims or self.n_sims < 1:
            raise ConfigError(f"n_sims must be an integer >= 1 or {ALL_SIMS!r}, got {self.n_sims!r}")
        else:
            put("n_sims", int(self.n_sims))
        for name in ("min_context", "sim_chunk"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
            put(name, int(value))
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        targets = DEFAULT_TARGETS if self.targets is None else self.targets
        targets = (targets,) if isinstance(targets, str) else tuple(targets)
        bad = [x for x in targets if x not in PRICE_COLUMN]
        if bad or "close" not in targets or len(set(targets)) != len(targets):
            raise ConfigError(
                f"targets must be distinct names from {tuple(PRICE_COLUMN)} including 'close', got {targets}"
            )
        put("targets", targets)
        if not isinstance(self.aggregate, str):
            raise ConfigError(f"aggregate must be an aggregation spec string, got {self.aggregate!r}")
        put("fee", _per_stock(self.fee, "fee"))
        put("spread", _per_stock(self.spread, "spread"))
        if self.max_context is not None:
            if int(self.max_context) != self.max_context or self.max_context < 1:
                raise ConfigError(f"max_context must be an integer >= 1 or None, got {self.max_context!r}")
            put("max_context", int(self.max_context))
        if self.num_samples is not None:
            if int(self.num_samples) != self.num_samples or self.num_samples < 1:
                raise ConfigError(f"num_samples must be an integer >= 1 or None, got {self.num_samples!r}")
            put("num_samples", int(self.num_samples))
        if self.length_bucket is not None:
            value = self.length_bucket
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ConfigError(f"length_bucket must be an integer >= 1 or None, got {value!r}")
            put("length_bucket", int(value))
        put("seed", int(self.seed))
        if isinstance(self.n_seeds, bool) or int(self.n_seeds) != self.n_seeds or self.n_seeds < 1:
            raise ConfigError(f"n_seeds must be an integer >= 1, got {self.n_seeds!r}")
        put("n_seeds", int(self.n_seeds))
        put("return_samples", bool(self.return_samples))
        if self.stock_key is not None and self.stock_key not in STOCK_KEY_RULES:
            raise ConfigError(f"stock_key must be one of {STOCK_KEY_RULES} or None, got {self.stock_key!r}")
        put("strategies", () if self.strategies is None else tuple(self.strategies))

    def replace(self, **changes) -> BacktestConfig:
        """A copy with ``changes`` applied (validated like a new config)."""
        return dataclasses.replace(self, **changes)

    def sims_for(self, n_rows: int) -> int:
        """N for a stock of ``n_rows`` rows: ``n_sims``, or :func:`sims_for_rows` for ``"all"``."""
        if self.n_sims == ALL_SIMS:
            n = sims_for_rows(n_rows, self.min_context)
            if n < 1:
                raise InsufficientHistoryError(
                    f"{n_rows} rows are too few for n_sims='all' with min_context={self.min_context}: "
                    f"one simulation needs {9 + self.min_context} rows (N + 8 + min_context)"
                )
            return n
        return self.n_sims

    def fee_of(self, i: int):
        """Stock i's fee setting (None: the per-symbol rule)."""
        return self.fee[i] if isinstance(self.fee, tuple) else self.fee

    def spread_of(self, i: int):
        """Stock i's spread setting (None: the default SPREAD)."""
        return self.spread[i] if isinstance(self.spread, tuple) else self.spread


FIELDS = tuple(f.name for f in dataclasses.fields(BacktestConfig))


def resolve_config(config: BacktestConfig | None, settings: dict) -> BacktestConfig:
    """The config of a call: ``config``, or one built from keyword ``settings``.

    Precedence: a keyword given together with ``config`` must equal the config's value (so
    ``backtest(p, f, config=c, n_sims=c.n_sims)`` is fine); a conflicting one raises ConfigError
    rather than silently winning or losing.
    """
    unknown = sorted(set(settings) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown backtest settings {unknown}; known: {list(FIELDS)}")
    if config is None:
        return BacktestConfig(**settings)
    if not isinstance(config, BacktestConfig):
        raise ConfigError(f"config must be a jaxsim.BacktestConfig, got {type(config).__name__}")
    given = BacktestConfig(**{**{f: getattr(config, f) for f in FIELDS}, **settings})  # normalised
    conflicts = sorted(k for k in settings if getattr(given, k) != getattr(config, k))
    if conflicts:
        raise ConfigError(
            f"settings {conflicts} given both in config= and as keywords with different values; pass each setting once"
        )
    return config
