"""jaxsim: a JAX-native walk-forward backtester driven by time-series foundation models.

Importing the package does no JAX computation and reads no files: public names are loaded from
their modules on first use (PEP 562), so ``import jaxsim`` stays cheap for the CLI and notebooks.

Public names:

* :func:`load_prices`, :class:`Prices`: daily OHLC(V) from CSV/Parquet/DataFrame, validated.
* :func:`sample`, :func:`available_samples`: bundled public-domain sample series (offline).
* :mod:`jaxsim.errors`: the typed errors (``JaxsimError``, ``PriceDataError``, ...).
"""

import importlib

from jaxsim import errors as errors

__version__ = "0.1.0"

# public name -> module that defines it (imported on first attribute access)
_LAZY = {
    "Prices": "jaxsim.data",
    "load_prices": "jaxsim.data",
    "sample": "jaxsim.data",
    "available_samples": "jaxsim.data",
}

__all__ = ["Prices", "load_prices", "sample", "available_samples", "errors"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jaxsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
