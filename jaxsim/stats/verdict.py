"""A plain-language verdict on a strategy set: does any strategy beat zero beyond noise and selection?

Rule (documented so a reader can check the sentence against the numbers):

1. A strategy *beats zero at* ``level`` when the lower bound of its bootstrap confidence interval
   (at ``level``) of the mean daily return is above 0.
2. If none does: "no strategy beats zero at 95% (N strategies tried)".
3. Else the one among them with the highest Sharpe ratio is named, with the deflated Sharpe ratio of
   the best pick when it is given: "maxdiff beats zero at 95% (DSR 0.97 after 8 strategies tried)";
   when that DSR is below ``level`` the line adds "but not after correcting for 8 strategies tried".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from jaxsim.errors import ConfigError

__all__ = ["verdict"]


def verdict(
    names: Sequence[str],
    mean_lower: Sequence[float],
    sharpe: Sequence[float],
    *,
    dsr: float | None = None,
    n_trials: int | None = None,
    level: float = 0.95,
) -> str:
    """The verdict line (see the module docstring for the rule).

    Args:
      names: strategy names, N of them.
      mean_lower: (N,) lower bounds of the bootstrap CI of each strategy's mean daily return.
      sharpe: (N,) Sharpe ratios (any convention; only their order is used).
      dsr: deflated Sharpe ratio of the best pick (optional).
      n_trials: number of strategies tried (default N).
      level: confidence level the intervals were computed at.
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
    winners = [i for i, lo in enumerate(lows) if math.isfinite(lo) and lo > 0]
    if not winners:
        return f"no strategy beats zero at {pct} ({tried})"
    best = max(winners, key=lambda i: sharpes[i] if math.isfinite(sharpes[i]) else -math.inf)
    line = f"{names[best]} beats zero at {pct}"
    if dsr is None or not math.isfinite(dsr):
        return f"{line} ({tried})"
    if dsr >= level:
        return f"{line} (DSR {dsr:.2f} after {tried})"
    return f"{line} but not after correcting for {tried} (DSR {dsr:.2f})"
