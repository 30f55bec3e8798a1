"""jaxsim: a JAX-native walk-forward backtester driven by time-series foundation models.

Importing the package does no JAX computation and reads no files: public names are loaded from
their modules on first use (PEP 562), so ``import jaxsim`` stays cheap for the CLI and notebooks.

Public names:

* :func:`load_prices`, :class:`Prices`: daily OHLC(V) from CSV/Parquet/DataFrame, validated.
* :func:`sample`, :func:`available_samples`: bundled public-domain sample series (offline).
* :func:`as_prices`: a Prices, DataFrame, file path or sample name as :class:`Prices` (what
  :func:`backtest` accepts).
* :func:`enable_compilation_cache`: keep compiled programs on disk for later processes
  (:mod:`jaxsim.engine.compilation`; the command line turns it on by default).
* :func:`backtest`, :func:`backtest_many`, :class:`BacktestResult`: the one-call walk-forward backtest
  of one stock or many (:mod:`jaxsim.shell.api`, :mod:`jaxsim.report.result`).
* :class:`BacktestConfig`: every setting of a backtest with its default and the reason for it
  (:mod:`jaxsim.config`); the entry points take ``config=`` or the same settings as keywords.
* :func:`compare`, :class:`Comparison`: one stock backtested with several forecasters (the naive,
  historical-mean and volatility baselines by default), strategy stats and forecast skill side by side
  (:mod:`jaxsim.shell.compare`).
* :func:`run_many`, :class:`RunReport`: resumable, chunked multi-stock runs that write each stock's
  results atomically (:mod:`jaxsim.shell.runs`).
* :mod:`jaxsim.forecasters` (the package :mod:`jaxsim.forecast`): ``naive()``, ``historical_mean()``,
  ``volatility()``, ``toto(dir)``, ``kronos(dir, tok)``, ``from_function(fn)``, ``default()`` (the embedded model).
* :func:`tune_multipliers`, :func:`optax_optimizer`, :func:`exact_optimizer`,
  :func:`surrogate_objective`: MaxDiff multiplier optimisation (:mod:`jaxsim.optimize`).
* :class:`UserStrategy`, :func:`user_strategy`, :class:`StrategyInputs`, :class:`Limits`, :class:`DayTrades`: your own
  strategy in the compiled program (:mod:`jaxsim.sim.strategy`; ``backtest(..., strategies=(s,))``);
  :func:`tune`, :class:`TuneResult`, :func:`simulation_data`: walk-forward gradient tuning of its
  parameters (:mod:`jaxsim.research.tune`); :func:`check_no_lookahead`: the look-ahead guard rail.
* :func:`portfolio`, :class:`PortfolioResult`: the walk-forward portfolio of many backtested stocks,
  one cash pool, and tomorrow's orders (:mod:`jaxsim.portfolio`, docs/portfolio.md);
  :func:`tune_portfolio`: a smooth rule's settings fitted by optax on earlier days, later days reported.
* :mod:`jaxsim.errors`: the typed errors (``JaxsimError``, ``PriceDataError``, ...).
"""

import importlib

from jaxsim import errors as errors
from jaxsim.engine.xla_cpu import apply_xla_flags

# XLA:CPU's YNNPACK fusions crash some backtests (a stack overflow in jaxlib 0.10): single dots
# only, set before jax starts its CPU backend (jaxsim.engine.xla_cpu; no jax import here)
apply_xla_flags()

__version__ = "0.1.0"

# public name -> module that defines it (imported on first attribute access)
_LAZY = {
    "Prices": "jaxsim.data.prices",
    "load_prices": "jaxsim.data.prices",
    "sample": "jaxsim.data.prices",
    "available_samples": "jaxsim.data.prices",
    "as_prices": "jaxsim.data.prices",
    "enable_compilation_cache": "jaxsim.engine.compilation",
    "backtest": "jaxsim.shell.api",
    "backtest_many": "jaxsim.shell.api",
    "BacktestConfig": "jaxsim.config",
    "BacktestResult": "jaxsim.report.result",
    "run_many": "jaxsim.shell.runs",
    "compare": "jaxsim.shell.compare",
    "Comparison": "jaxsim.report.comparison",
    "RunReport": "jaxsim.shell.runs",
    "tune_multipliers": "jaxsim.optimize",
    "optax_optimizer": "jaxsim.optimize",
    "exact_optimizer": "jaxsim.optimize",
    "surrogate_objective": "jaxsim.optimize",
    "UserStrategy": "jaxsim.sim.strategy",
    "StrategyInputs": "jaxsim.sim.strategy",
    "Limits": "jaxsim.sim.strategy",
    "DayTrades": "jaxsim.sim.strategy",
    "user_strategy": "jaxsim.sim.strategy",
    "simulation_data": "jaxsim.research.strategy_data",
    "tune": "jaxsim.research.tune",
    "TuneResult": "jaxsim.research.tune",
    "check_no_lookahead": "jaxsim.research.lookahead",
    "PortfolioResult": "jaxsim.portfolio.result",
    "tune_portfolio": "jaxsim.portfolio.tuning",
}
# public name -> module that IS the value (``jaxsim.forecasters.toto(...)``)
_LAZY_MODULES = {
    "forecasters": "jaxsim.forecast",
    # the room jaxsim/portfolio/ is also the function: calling the module calls jaxsim.portfolio.api.portfolio
    "portfolio": "jaxsim.portfolio",
}

__all__ = [
    "Prices",
    "load_prices",
    "sample",
    "available_samples",
    "as_prices",
    "enable_compilation_cache",
    "errors",
    "backtest",
    "backtest_many",
    "BacktestConfig",
    "BacktestResult",
    "forecasters",
    "run_many",
    "RunReport",
    "compare",
    "Comparison",
    "tune_multipliers",
    "optax_optimizer",
    "exact_optimizer",
    "surrogate_objective",
    "UserStrategy",
    "StrategyInputs",
    "Limits",
    "DayTrades",
    "user_strategy",
    "simulation_data",
    "tune",
    "TuneResult",
    "check_no_lookahead",
    "portfolio",
    "PortfolioResult",
    "tune_portfolio",
]


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        value = importlib.import_module(_LAZY_MODULES[name])
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'jaxsim' has no attribute {name!r}")
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_LAZY_MODULES))
