"""Statistics of out-of-sample daily P&L and of forecasts: pure JAX functions of masked arrays.

* :mod:`~jaxsim.stats.masked`: masked reductions over the last axis (the shared building blocks).
* :mod:`~jaxsim.stats.performance`: backtesting.py's stats table (and empyrical's variants) of a
  daily return series: :func:`performance_stats`.
* :mod:`~jaxsim.stats.bootstrap`: stationary block bootstrap with the Politis-White block length,
  percentile intervals of mean daily return, Sharpe and CAGR: :func:`bootstrap_ci`.
* :mod:`~jaxsim.stats.selection`: probabilistic / deflated Sharpe ratio of the best pick and the
  probability of backtest overfitting (CSCV): :func:`selection_stats`, :func:`pbo_cscv`.
* :mod:`~jaxsim.stats.skill`: forecast skill against the zero forecast, direction, CRPS, coverage,
  PIT: :func:`forecast_skill`.
* :mod:`~jaxsim.stats.verdict`: the plain-language verdict line.
* :mod:`~jaxsim.stats.frames`: pandas tables (imported on first use: the array core needs no pandas).
"""

import importlib

from jaxsim.stats.bootstrap import (
    BootstrapCI,
    BootstrapStats,
    bootstrap_ci,
    bootstrap_distribution,
    optimal_block_length,
    percentile_interval,
    stationary_bootstrap_indices,
)
from jaxsim.stats.performance import STAT_LABELS, PerformanceStats, performance_stats
from jaxsim.stats.selection import (
    PBOResult,
    SelectionStats,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    pbo_cscv,
    probabilistic_sharpe_ratio,
    selection_stats,
)
from jaxsim.stats.skill import SkillStats, crps_ensemble, forecast_skill
from jaxsim.stats.verdict import verdict

__all__ = [
    "STAT_LABELS",
    "PerformanceStats",
    "performance_stats",
    "BootstrapStats",
    "BootstrapCI",
    "bootstrap_ci",
    "bootstrap_distribution",
    "optimal_block_length",
    "percentile_interval",
    "stationary_bootstrap_indices",
    "SelectionStats",
    "selection_stats",
    "PBOResult",
    "pbo_cscv",
    "probabilistic_sharpe_ratio",
    "expected_max_sharpe",
    "deflated_sharpe_ratio",
    "SkillStats",
    "forecast_skill",
    "crps_ensemble",
    "verdict",
    "stats_frame",
    "bootstrap_frame",
    "daily_verdict",
]

_FRAMES = {"stats_frame", "bootstrap_frame", "daily_verdict"}


def __getattr__(name: str):
    if name in _FRAMES:
        value = getattr(importlib.import_module("jaxsim.stats.frames"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jaxsim.stats' has no attribute {name!r}")
