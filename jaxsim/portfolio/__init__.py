"""The walk-forward portfolio (docs/portfolio.md): many stocks' out-of-sample backtests -> one account.

* :mod:`.rules`: the rules as frozen, hashable values (``Original``, ``TopK``, ``InverseVol``,
  ``ScoreProportional``, ``Smooth``).
* :mod:`.core`: the replay, pure JAX over arrays date x stock x strategy (one ``lax.scan``).
* :mod:`.inputs`: backtest results or a run folder -> arrays on the union calendar (the pandas edge).
* :mod:`.result`: :class:`PortfolioResult` (frames, stats, plot, files, tomorrow's plan).
* :mod:`.api`: :func:`portfolio`, the entry point (``jaxsim.portfolio``).
* :mod:`.tuning`: :func:`tune_portfolio` (``jaxsim.tune_portfolio``), optax on earlier days.
"""

import sys
import types

from jaxsim.portfolio.api import portfolio
from jaxsim.portfolio.result import PortfolioResult
from jaxsim.portfolio.rules import InverseVol, Original, ScoreProportional, Smooth, TopK
from jaxsim.portfolio.tuning import PortfolioTuneResult, tune_portfolio

__all__ = [
    "portfolio",
    "PortfolioResult",
    "tune_portfolio",
    "PortfolioTuneResult",
    "Original",
    "TopK",
    "InverseVol",
    "ScoreProportional",
    "Smooth",
]


class _CallableModule(types.ModuleType):
    """``jaxsim.portfolio`` is this package and the function at once: importing a submodule sets the
    package as ``jaxsim.portfolio``, so the package itself answers ``jaxsim.portfolio(results, ...)``."""

    def __call__(self, *args, **kwargs):
        """:func:`jaxsim.portfolio.api.portfolio`."""
        return portfolio(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
