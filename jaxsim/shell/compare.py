"""Compare forecasters on one stock: same prices, protocol, settings and key for each.

:func:`compare` backtests the stock once per forecaster (:data:`BASELINES` are added by default,
as the baselines a forecaster must beat: the naive zero return (persistence of the price), the
historical mean (drift) and the 20-day historical-volatility Gaussian, whose CRPS and interval
coverage a forecast distribution has to beat) and puts the best
strategy's out-of-sample stats and the close forecast's skill side by side
(:class:`jaxsim.report.comparison.Comparison`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager

import jax
import pandas as pd

from jaxsim import forecast
from jaxsim.config import BacktestConfig, resolve_config
from jaxsim.data.prices import as_prices
from jaxsim.errors import ConfigError
from jaxsim.report.comparison import Comparison, comparison_row
from jaxsim.shell.api import backtest

__all__ = ["BASELINES", "compare"]

BASELINES = ("naive", "historical-mean", "volatility")


def _baselines() -> dict:
    return {
        "naive": forecast.naive(),
        "historical-mean": forecast.historical_mean(),
        "volatility": forecast.volatility(),
    }


def compare(
    prices,
    forecasters: Mapping | None = None,
    config: BacktestConfig | None = None,
    *,
    key=None,
    baselines: bool = True,
    n_resamples: int = 1000,
    symbol: str | None = None,
    progress: Callable[[str, int, int], AbstractContextManager] | None = None,
    **settings,
) -> Comparison:
    """Backtest one stock with each forecaster and tabulate strategy stats and forecast skill.

    Args:
      prices: a :class:`jaxsim.data.prices.Prices`.
      forecasters: name -> forecaster (default ``{"default": jaxsim.forecasters.default()}``).
      config: a :class:`~jaxsim.config.BacktestConfig` (or its fields as ``**settings``), the same
        for every forecaster.
      key: the PRNG key, the same for every forecaster (default ``jax.random.key(config.seed)``);
        also the bootstrap key of the verdicts.
      baselines: add :data:`BASELINES` (naive zero return, historical mean, ``volatility()``) unless
        named already.
      n_resamples: bootstrap resamples of each verdict.
      symbol: overrides ``prices.symbol``.
      progress: ``progress(name, i, n)``, a context manager around forecaster ``name``'s backtest
        (the i-th of n, from 1), e.g. to print what runs and how long it took (``jaxsim compare``).

    Returns:
      :class:`Comparison`.
    """
    config = resolve_config(config, settings)
    if forecasters is None:
        forecasters = {"default": forecast.default()}
    models = dict(forecasters)
    if baselines:
        for name, f in _baselines().items():
            models.setdefault(name, f)
    if not models:
        raise ConfigError("compare needs at least one forecaster")
    key = jax.random.key(config.seed) if key is None else key
    prices = as_prices(prices, symbol=symbol)  # loaded and validated once for every forecaster
    results = {}
    for i, (name, f) in enumerate(models.items(), start=1):
        with progress(name, i, len(models)) if progress is not None else contextlib.nullcontext():
            results[name] = backtest(prices, f, config, key=key, symbol=symbol)
    rows = {name: comparison_row(r, key=key, n_resamples=n_resamples) for name, r in results.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "forecaster"
    stats = pd.concat({name: r.stats() for name, r in results.items()}, axis=1, names=["forecaster", "strategy"])
    skill = pd.concat({name: r.skill() for name, r in results.items()}, names=["forecaster", "target"])
    return Comparison(table, stats, skill, results)
