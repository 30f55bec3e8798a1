"""Compare forecasters on one stock: same prices, protocol, settings and key for each.

:func:`compare` backtests the stock once per forecaster (the naive zero-return forecaster and the
historical mean are added by default, as the baselines a forecaster must beat) and puts the best
strategy's out-of-sample stats and the close forecast's skill side by side.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pandas as pd

from jaxsim.config import BacktestConfig, resolve_config
from jaxsim.engine.api import backtest
from jaxsim.engine.result import BacktestResult
from jaxsim.errors import ConfigError

__all__ = ["BASELINES", "STAT_ROWS", "SKILL_FIELDS", "Comparison", "compare", "comparison_row"]

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
    "CRPS Skill",
    "Coverage 10-90 [%]",
)


def _baselines() -> dict:
    from jaxsim import forecasters

    return {"naive": forecasters.naive(), "historical-mean": forecasters.historical_mean()}


BASELINES = ("naive", "historical-mean")


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The output of :func:`compare`.

    Attributes:
      table: one row per forecaster: ``Best Strategy`` (the original's rule,
        docs/backtest.md#best-strategy), its :data:`STAT_ROWS` from ``stats()``, the close forecast's
        :data:`SKILL_FIELDS` (prefixed ``Close``) and the ``Verdict`` line.
      stats: every strategy's ``stats()``, columns (forecaster, strategy).
      skill: every target's ``skill()``, rows (forecaster, target).
      results: forecaster name -> :class:`~jaxsim.engine.result.BacktestResult`.
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
    row["Verdict"] = result.uncertainty(key, n_resamples=n_resamples).verdict
    return row


def compare(
    prices,
    forecasters: Mapping | None = None,
    config: BacktestConfig | None = None,
    *,
    key=None,
    baselines: bool = True,
    n_resamples: int = 1000,
    symbol: str | None = None,
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
      baselines: add the naive (zero-return) and historical-mean forecasters unless named already.
      n_resamples: bootstrap resamples of each verdict.
      symbol: overrides ``prices.symbol``.

    Returns:
      :class:`Comparison`.
    """
    import jax

    config = resolve_config(config, settings)
    if forecasters is None:
        from jaxsim import forecasters as registry

        forecasters = {"default": registry.default()}
    models = dict(forecasters)
    if baselines:
        for name, f in _baselines().items():
            models.setdefault(name, f)
    if not models:
        raise ConfigError("compare needs at least one forecaster")
    key = jax.random.key(config.seed) if key is None else key
    results = {name: backtest(prices, f, config, key=key, symbol=symbol) for name, f in models.items()}
    rows = {name: comparison_row(r, key=key, n_resamples=n_resamples) for name, r in results.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "forecaster"
    stats = pd.concat({name: r.stats() for name, r in results.items()}, axis=1, names=["forecaster", "strategy"])
    skill = pd.concat({name: r.skill() for name, r in results.items()}, names=["forecaster", "target"])
    return Comparison(table, stats, skill, results)
