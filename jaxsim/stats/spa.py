"""Hansen's test of superior predictive ability (SPA) and Romano-Wolf's StepM, from ``arch.bootstrap``.

Do any strategies beat a benchmark once every strategy tried is accounted for? The tests take the
daily losses ``-r`` of the strategies (the models) and of the benchmark and resample the loss
differences with the stationary bootstrap (``arch.bootstrap.SPA`` / ``StepM``, studentized, not
nested):

* SPA (Hansen 2005): the null is "no strategy beats the benchmark"; its consistent p-value below
  ``1 - level`` rejects it (some strategy does). The lower and upper p-values bracket it.
* StepM (Romano & Wolf 2005): the strategies that beat the benchmark with the family-wise error
  rate held at ``1 - level``.

Benchmarks: ``None`` = zero (no position, losses 0), or one column of the frame (``buy_hold``).
Days: those on which the benchmark and every tested strategy have a value. A strategy whose daily
difference from the benchmark never varies is left out (nothing to studentize: it is the benchmark
plus a constant). The bootstrap is seeded with an integer, so the same seed gives the same p-values;
the mean block length is the mean of arch's ``optimal_block_length`` (stationary) of the loss
differences, rounded, at least 1.

Host code (numpy and pandas, as arch is): it runs after the compiled programs.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

__all__ = ["SPAResult", "spa_test", "block_size"]

MIN_DAYS = 10  # fewer common days: no test (NaN p-values)


@dataclasses.dataclass(frozen=True)
class SPAResult:
    """One benchmark's SPA p-values and StepM set.

    Attributes:
      benchmark: ``"zero"`` or the benchmark column's name.
      models: the strategies tested (in the frame's order).
      pvalue: SPA's consistent p-value (NaN when not tested); lower / upper: its lower and upper.
      superior: StepM's strategies that beat the benchmark at ``level``.
      left_out: strategies not tested (no values, in sample, or a constant difference).
      n_days, block_size, reps, seed, level: what the bootstrap ran on.
    """

    benchmark: str
    models: tuple[str, ...]
    pvalue: float
    lower: float
    upper: float
    superior: tuple[str, ...]
    left_out: tuple[str, ...]
    n_days: int
    block_size: int
    reps: int
    seed: int
    level: float

    @property
    def rejects(self) -> bool:
        """SPA's rule: some strategy beats the benchmark (consistent p-value < 1 - level)."""
        return math.isfinite(self.pvalue) and self.pvalue < 1 - self.level

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.update(models=list(self.models), superior=list(self.superior), left_out=list(self.left_out))
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def block_size(loss_diff: np.ndarray) -> int:
    """Mean block length: the mean over columns of arch's stationary ``optimal_block_length``, >= 1."""
    from arch.bootstrap import optimal_block_length

    b = optimal_block_length(loss_diff)["stationary"].to_numpy(np.float64)
    b = b[np.isfinite(b)]
    return max(1, int(round(float(b.mean())))) if len(b) else 1


def spa_test(
    daily: pd.DataFrame,
    benchmark: str | None = None,
    *,
    seed: int,
    reps: int = 1000,
    level: float = 0.95,
    exclude=(),
) -> SPAResult:
    """SPA p-values and the StepM set of ``daily``'s strategies against ``benchmark`` (see the module).

    Args:
      daily: date x strategy daily returns (fractions, NaN: no value).
      benchmark: a column of ``daily`` (left out of the models), or None for zero.
      seed: the bootstrap's integer seed (SPA and StepM each start from it).
      reps: bootstrap resamples. level: 1 - the size of the tests.
      exclude: strategies never tested (e.g. fitted in sample).
    """
    from arch.bootstrap import SPA, StepM

    name = "zero" if benchmark is None else str(benchmark)
    candidates = [c for c in daily.columns if c != benchmark]
    left_out = [c for c in candidates if c in set(exclude) or daily[c].notna().sum() == 0]
    models = [c for c in candidates if c not in left_out]
    bench = pd.Series(0.0, index=daily.index) if benchmark is None else daily[benchmark]
    days = bench.notna() & daily[models].notna().all(axis=1) if models else bench.notna()
    losses = -daily.loc[days, models].astype(np.float64)
    bench_loss = -bench[days].astype(np.float64)
    diff = losses.sub(bench_loss, axis=0)
    varies = (diff.std(ddof=0) > 0).to_numpy() if len(diff) else np.zeros(len(models), bool)
    left_out += [m for m, v in zip(models, varies) if not v]
    models = [m for m, v in zip(models, varies) if v]
    nan = float("nan")
    if not models or int(days.sum()) < MIN_DAYS:
        return SPAResult(name, tuple(models), nan, nan, nan, (), tuple(left_out), int(days.sum()), 0, reps, seed, level)
    losses, diff = losses[models], diff[models]
    b = block_size(diff.to_numpy())
    spa = SPA(bench_loss, losses, block_size=b, reps=reps, bootstrap="stationary", seed=seed)
    spa.compute()
    p = spa.pvalues
    stepm = StepM(bench_loss, losses, size=1 - level, block_size=b, reps=reps, bootstrap="stationary", seed=seed)
    stepm.compute()
    superior = set(stepm.superior_models)
    return SPAResult(
        name,
        tuple(models),
        float(p["consistent"]),
        float(p["lower"]),
        float(p["upper"]),
        tuple(m for m in models if m in superior),
        tuple(left_out),
        int(days.sum()),
        b,
        reps,
        seed,
        level,
    )
