"""Forecasters side by side: the comparison table's rows and :class:`Comparison`.

One row per backtest result: the best strategy (the original's rule, docs/backtest.md#best-strategy),
its :data:`STAT_ROWS` of ``stats()``, the close forecast's :data:`SKILL_FIELDS` and the verdict
(under ``legacy`` only the strategies not fitted in sample are judged: :meth:`BacktestResult.uncertainty`'s rule). The
same row is the cross-stock table's (:mod:`jaxsim.report.cross_stock`); :func:`jaxsim.shell.compare.compare`
runs the backtests.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from jaxsim.report.result import BacktestResult

__all__ = ["STAT_ROWS", "SKILL_FIELDS", "Comparison", "comparison_row"]

# the best strategy's rows of BacktestResult.stats() in the comparison table
STAT_ROWS = (
    "Return [%]",
    "Buy & Hold Return [%]",
    "CAGR [%]",
    "Sharpe Ratio",
    "Max. Drawdown [%]",
    "Win Rate [%]",
    "Exposure Time [%]",
    "# Trades",
)
# the close target's columns of BacktestResult.skill() in the comparison table
SKILL_FIELDS = (
    "MAE Skill",
    "RMSE Skill",
    "Directional Accuracy [%]",
    "Direction p-value",
    "CRPS",  # of the forecast distribution (a point forecast: its absolute error)
    "CRPS Skill",  # 1 - CRPS / the zero forecast's
    "Coverage 10-90 [%]",  # share of days inside the 80% band (80 when calibrated; 0 for a point forecast)
)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The output of :func:`jaxsim.shell.compare.compare`.

    Attributes:
      table: one row per forecaster: ``Best Strategy`` (the original's rule,
        docs/backtest.md#best-strategy), its :data:`STAT_ROWS` from ``stats()``, the close forecast's
        :data:`SKILL_FIELDS` (prefixed ``Close``) and the ``Verdict`` line.
      stats: every strategy's ``stats()``, columns (forecaster, strategy).
      skill: every target's ``skill()``, rows (forecaster, target).
      results: forecaster name -> :class:`~jaxsim.report.result.BacktestResult`.
    """

    table: pd.DataFrame
    stats: pd.DataFrame
    skill: pd.DataFrame
    results: dict[str, BacktestResult]

    def __str__(self) -> str:
        return self.table.to_string(float_format=lambda v: f"{v:.4g}")


def comparison_row(result: BacktestResult, *, key=None, n_resamples: int = 1000) -> dict:
    """The :attr:`Comparison.table` row of one result (also the cross-stock table's row)."""
    stats = result.stats()
    best = result.best_strategy
    row = {"Best Strategy": best}
    row.update({label: stats.loc[label, best] for label in STAT_ROWS})
    skill = result.skill()
    if "close" in skill.index:
        row.update({f"Close {field}": skill.loc["close", field] for field in SKILL_FIELDS})
    row["Verdict"] = result.uncertainty(key, n_resamples=n_resamples).verdict  # in-sample fits never judged
    return row
