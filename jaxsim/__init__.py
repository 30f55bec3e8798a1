"""jaxsim: a JAX-native walk-forward backtester driven by time-series foundation models.

Importing the package does no JAX computation and reads no files: public names are loaded from
their modules on first use (PEP 562), so ``import jaxsim`` stays cheap for the CLI and notebooks.

Public names:

* :func:`load_prices`, :class:`Prices`: daily OHLC(V) from CSV/Parquet/DataFrame, validated.
* :func:`sample`, :func:`available_samples`: bundled public-domain sample series (offline).
* :func:`backtest`, :func:`backtest_many`, :class:`BacktestResult`: the one-call walk-forward backtest
  of one stock or many (:mod:`jaxsim.engine`, :mod:`jaxsim.report`).
* :func:`run_many`, :class:`RunReport`: resumable, chunked multi-stock runs that write each stock's
  results atomically (:mod:`jaxsim.runs`).
* :mod:`jaxsim.forecasters`: ``naive()``, ``historical_mean()``, ``toto(dir)``, ``kronos(dir, tok)``,
  ``from_function(fn)``, ``default()`` (the embedded model).
* :func:`tune_multipliers`, :func:`optax_optimizer`, :func:`exact_optimizer`,
  :func:`surrogate_objective`: MaxDiff multiplier optimisation (:mod:`jaxsim.optimize`).
* :mod:`jaxsim.errors`: the typed errors (``JaxsimError``, ``PriceDataError``, ...).
"""

import importlib

from jaxsim import errors as errors

__version__ = "0.1.0"

# public name -> module that defines it (imported on first attribute access); a name equal to the
# module's last component is the module itself
_LAZY = {
    "Prices": "jaxsim.data",
    "load_prices": "jaxsim.data",
    "sample": "jaxsim.data",
    "available_samples": "jaxsim.data",
    "backtest": "jaxsim.engine",
    "backtest_many": "jaxsim.engine",
    "BacktestResult": "jaxsim.report",
    "forecasters": "jaxsim.forecasters",
    "run_many": "jaxsim.runs",
    "RunReport": "jaxsim.runs",
    "tune_multipliers": "jaxsim.optimize",
    "optax_optimizer": "jaxsim.optimize",
    "exact_optimizer": "jaxsim.optimize",
    "surrogate_objective": "jaxsim.optimize",
}

__all__ = ["Prices", "load_prices", "sample", "available_samples", "errors", "backtest", "backtest_many",
           "BacktestResult", "forecasters", "run_many", "RunReport", "tune_multipliers", "optax_optimizer", "exact_optimizer",
           "surrogate_objective"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jaxsim' has no attribute {name!r}")
    imported = importlib.import_module(module)
    value = imported if module.rsplit(".", 1)[-1] == name else getattr(imported, name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
