"""Forecast-seed uncertainty: how a backtest's statistics move with the forecaster's draws.

A run with ``BacktestConfig(n_seeds=K)`` holds K results, seed j's equal to a run with ``seed + j``
(docs/protocols.md#seeds). Here, after the program: the spread of every statistic over the seeds,
and the verdict pooled over them.

Pooling rule: a strategy *beats zero across seeds* when the lower bound of its bootstrap interval of
the mean daily return is above 0 for every seed (the weakest seed decides); strategies fitted
in-sample (MaxDiff and always-on under ``legacy``) never count.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["seed_spread_frame", "pooled_verdict"]


def seed_spread_frame(tables: Sequence[pd.DataFrame], seeds: Sequence[int], quantiles=(0.1, 0.9)) -> pd.DataFrame:
    """Mean, min, max and a quantile band of each (strategy, statistic) over the seeds.

    Args:
      tables: one strategy x statistic table per seed (same labels).
      seeds: the seed of each table (column names ``seed <s>``).
      quantiles: the band's lower and upper quantile (over seeds, linear interpolation).

    Returns:
      rows ``(strategy, statistic)``; columns ``mean``, ``min``, ``max``, ``q<lo>``, ``q<hi>`` and one per seed.
    """
    long = pd.concat([t.stack(future_stack=True).rename(f"seed {s}") for t, s in zip(tables, seeds)], axis=1)
    long.index.names = ["strategy", "statistic"]
    values = long.to_numpy(float)
    lo, hi = quantiles
    with warnings.catch_warnings():  # a statistic that is NaN for every seed (no trades) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = pd.DataFrame(
            {
                "mean": np.nanmean(values, axis=1) if values.size else [],
                "min": np.nanmin(values, axis=1) if values.size else [],
                "max": np.nanmax(values, axis=1) if values.size else [],
                f"q{round(100 * lo)}": np.nanquantile(values, lo, axis=1) if values.size else [],
                f"q{round(100 * hi)}": np.nanquantile(values, hi, axis=1) if values.size else [],
            },
            index=long.index,
        )
    return spread.join(long)


def pooled_verdict(found: Sequence, level: float = 0.95) -> str:
    """The verdict line over K seeds from each seed's
    :class:`~jaxsim.report.evaluation.Uncertainty` (module docstring for the rule)."""
    k = len(found)
    pct = f"{100 * level:g}%"
    beats = pd.concat([u.selection["Beats Zero"] for u in found], axis=1).fillna(False).astype(bool)
    in_sample = set().union(*(u.in_sample for u in found))
    beats = beats.loc[[s for s in beats.index if s not in in_sample]]
    counts = beats.sum(axis=1)
    every = [s for s in beats.index if counts[s] == k]
    rule = f"pooled over {k} forecast seeds: a strategy counts only if it beats zero in every seed"
    if in_sample:
        rule += f"; {', '.join(sorted(in_sample))} fitted in-sample, not tested"
    if every:
        sharpe = pd.concat([u.selection["Sharpe (daily)"] for u in found], axis=1).min(axis=1)
        best = max(every, key=lambda s: sharpe[s] if np.isfinite(sharpe[s]) else -np.inf)
        return f"Verdict ({rule}): {best} beats zero at {pct} in all {k} seeds"
    some = counts[counts > 0].sort_values(ascending=False)
    if len(some):
        top = ", ".join(f"{s} in {int(c)} of {k}" for s, c in some.items())
        return f"Verdict ({rule}): no strategy beats zero at {pct} in every seed (beats zero for some seeds: {top})"
    return f"Verdict ({rule}): no strategy beats zero at {pct} for any seed"
