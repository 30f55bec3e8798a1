"""A plain-language verdict on a strategy set: does any strategy beat zero beyond noise and selection?

Rule (documented so a reader can check the sentence against the numbers):

1. A strategy *beats zero at* ``level`` when the lower bound of its bootstrap confidence interval
   (at ``level``) of the mean daily return is above 0.
2. If none does: "no strategy beats zero at 95% (N strategies tried)".
3. Else the one among them with the highest Sharpe ratio is named, with the deflated Sharpe ratio of
   the best pick when it is given: "maxdiff beats zero at 95% (DSR 0.97 after 8 strategies tried)";
   when that DSR is below ``level`` the line adds "but not after correcting for 8 strategies tried".
4. A strategy fitted on the days it is scored (``in_sample``: MaxDiff and always-on under
   ``legacy``) is never named as beating anything; the line says they were not tested.
5. :func:`spa_clause` adds Hansen's SPA and Romano-Wolf's StepM against each benchmark (zero, buy &
   hold): "SPA vs zero p 0.43, vs buy_hold p 0.02: simple beats buy_hold (StepM at 5%)". The rule:
   a strategy beats a benchmark when StepM at size 1 - ``level`` names it (family-wise over every
   strategy tested); the SPA p-value below 1 - ``level`` says at least one does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from jaxsim.errors import ConfigError

__all__ = ["verdict", "spa_clause", "SPA_RULE"]

SPA_RULE = (
    "a strategy beats a benchmark when Romano-Wolf's StepM names it at size 1 - level; "
    "Hansen's SPA p-value (consistent) below 1 - level says at least one strategy does"
)


def verdict(
    names: Sequence[str],
    mean_lower: Sequence[float],
    sharpe: Sequence[float],
    *,
    dsr: float | None = None,
    n_trials: int | None = None,
    level: float = 0.95,
    in_sample: Sequence[str] = (),
) -> str:
    """The verdict line (see the module docstring for the rule).

    Args:
      names: strategy names, N of them.
      mean_lower: (N,) lower bounds of the bootstrap CI of each strategy's mean daily return.
      sharpe: (N,) Sharpe ratios (any convention; only their order is used).
      dsr: deflated Sharpe ratio of the best pick (optional).
      n_trials: number of strategies tried (default N).
      level: confidence level the intervals were computed at.
      in_sample: strategies fitted on the days they are scored: never named as beating zero.
    """
    names = [str(n) for n in names]
    lows, sharpes = [float(x) for x in mean_lower], [float(x) for x in sharpe]
    if not (len(names) == len(lows) == len(sharpes)) or not names:
        raise ConfigError(
            f"verdict needs one name, CI bound and Sharpe per strategy, got {len(names)}, {len(lows)}, {len(sharpes)}"
        )
    n = len(names) if n_trials is None else int(n_trials)
    pct = f"{100 * level:g}%"
    tried = f"{n} strateg{'y' if n == 1 else 'ies'} tried"
    fitted = [n for n in names if n in set(in_sample)]
    note = f"; {', '.join(fitted)} fitted in sample, not tested" if fitted else ""
    winners = [i for i, lo in enumerate(lows) if math.isfinite(lo) and lo > 0 and names[i] not in fitted]
    if not winners:
        return f"no strategy beats zero at {pct} ({tried}{note})"
    best = max(winners, key=lambda i: sharpes[i] if math.isfinite(sharpes[i]) else -math.inf)
    line = f"{names[best]} beats zero at {pct}"
    if dsr is None or not math.isfinite(dsr):
        return f"{line} ({tried}{note})"
    if dsr >= level:
        return f"{line} (DSR {dsr:.2f} after {tried}{note})"
    return f"{line} but not after correcting for {tried} (DSR {dsr:.2f}{note})"


def spa_clause(tests, level: float = 0.95) -> str:
    """The SPA / StepM part of the verdict (rule 5 of the module docstring).

    ``tests``: objects with ``benchmark``, ``pvalue`` (NaN: not tested) and ``superior`` (StepM's
    strategies), e.g. :class:`jaxsim.stats.spa.SPAResult`.
    """
    tests = list(tests)
    if not tests:
        return ""
    size = f"{100 * (1 - level):g}%"
    ps = ", ".join(
        f"vs {t.benchmark} p {t.pvalue:.2f}" if math.isfinite(t.pvalue) else f"vs {t.benchmark} not tested"
        for t in tests
    )
    wins = [
        f"{', '.join(t.superior)} beat{'s' if len(t.superior) == 1 else ''} {t.benchmark}" for t in tests if t.superior
    ]
    found = "; ".join(wins) if wins else "none beats " + " or ".join(t.benchmark for t in tests)
    return f"SPA {ps}: {found} (StepM at {size})"
