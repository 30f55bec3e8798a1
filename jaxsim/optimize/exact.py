r"""The exact multiplier solver: enumerate the cells of the piecewise affine objective.

Why it is possible: each indicator of PF depends on only one of ``mh`` (``[hp' < h]``,
``[hp' <= h]``, the clamp of ``hp``) or ``ml``, so ``J`` is affine on every cell of the product of
two 1-D breakpoint sets ``{h_i - hp_i, -hp_i, 10 - hp_i}`` and ``{l_i - lp_i, -lp_i, -1 - lp_i}``.
The supremum over open neighbourhoods (the robust supremum, :mod:`jaxsim.optimize.objective`) is
therefore a cell corner approached from inside a cell: we evaluate every corner nudged a few float32
ulps into each adjacent cell (never the bare breakpoint, where a knife edge may pay one fee less),
plus the bounds and 0, and reject candidates on knife edges.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxsim.optimize.objective import BOUND, MultiplierProblem, make_problem, robust_grid_values, robust_objective
from jaxsim.sim import ties
from jaxsim.sim.profit import TRADING_FEE

__all__ = [
    "RESCORE",
    "axis_candidates",
    "problem_candidates",
    "pick",
    "solve_exact",
    "ExactOptimizer",
    "exact_optimizer",
]

_NUDGE_ULPS = 4.0  # how far inside a cell a corner is evaluated, in float32 ulps of the levels
RESCORE = 8  # candidates ranked best by the separable grid values that are re-scored exactly


def _ulp(x):
    x = jnp.abs(x)
    return jnp.nextafter(x, jnp.float32(jnp.inf)) - x


def axis_candidates(actual, pred, lo_clamp, hi_clamp, *, bound=BOUND):
    r"""Sorted 1-D candidate multipliers for one axis: each breakpoint nudged into both adjacent cells.

    Breakpoints ``b`` solve ``pred + m = level`` for ``level`` in (the actual extreme, each clamp
    bound). Candidates are ``b +- 4 ulp`` (inside each adjacent cell in float32; the bare ``b`` is
    not a candidate), clipped to ``[-bound, bound]``, plus ``-bound, 0, bound``.

    Args:
      actual: realised ``h`` (or ``l``), any shape ``(..., days)``; flattened.
      pred: predicted ``hp`` (or ``lp``), same shape.
      lo_clamp, hi_clamp: PF's clamp of this level (``0, 10`` for ``hp``; ``-1, 0`` for ``lp``).
      bound: keyword-only bound ``b``.

    Returns:
      float32 sorted ``(6 * actual.size + 3,)``.
    """
    a = jnp.ravel(jnp.asarray(actual, jnp.float32))
    p = jnp.ravel(jnp.asarray(pred, jnp.float32))
    levels = jnp.concatenate([a, jnp.full_like(a, lo_clamp), jnp.full_like(a, hi_clamp)])
    preds = jnp.tile(p, 3)
    b = levels - preds
    d = _NUDGE_ULPS * _ulp(jnp.maximum(jnp.maximum(jnp.abs(levels), jnp.abs(preds)), jnp.abs(b)))
    ends = jnp.array([-bound, 0.0, bound], jnp.float32)
    cands = jnp.clip(jnp.concatenate([b - d, b + d, ends]), -bound, bound)
    return jnp.sort(cands)


def problem_candidates(problem: MultiplierProblem, *, bound=BOUND):
    """``(mh candidates, ml candidates)`` of :func:`axis_candidates` over all of ``problem``."""
    return (
        axis_candidates(problem.high, problem.high_pred, 0.0, 10.0, bound=bound),
        axis_candidates(problem.low, problem.low_pred, -1.0, 0.0, bound=bound),
    )


def pick(points, values):
    """The best of ``points (K, 2)`` by ``values (K,)`` under the tie rule of :mod:`jaxsim.sim.ties`:
    values within a few float32 steps of the best are tied and go to the smallest ``|mh| + |ml|``,
    then to the earlier point (the order of ``points`` is fixed by the problem, not by the values).
    NaN loses.

    Returns ``((2,) point, value)``.
    """
    values = jnp.where(jnp.isnan(values), -jnp.inf, values)
    k = ties.choose(values, ties.multiplier_size(points[:, 0], points[:, 1]))
    return points[k], values[k]


@dataclasses.dataclass(frozen=True)
class ExactOptimizer:
    r"""Exact solver by breakpoint enumeration (a hashable value; build it with :func:`exact_optimizer`).

    ``J`` is affine on every cell of the product of the two 1-D breakpoint sets (module docstring),
    so its robust supremum over ``[-b, b]^2`` is the value at some cell corner approached from
    inside a cell. All ``(6 d + 3)^2`` candidate pairs of :func:`axis_candidates` (``d`` = days,
    summed over position rows) are ranked by one matrix product
    (:func:`jaxsim.optimize.objective.separable_grid_values`), candidates on knife edges are
    dropped, and the best ``RESCORE`` (in the order of the tie rule, :mod:`jaxsim.sim.ties`) plus
    ``(0, 0)`` are re-scored with the exact PF; the best exact value wins (:func:`pick`: values
    within a few float32 steps are tied and go to the smallest ``|mh| + |ml|``). The returned point
    is strictly inside a cell, within a few float32 ulps of its best corner: its value is attained by
    every nearby multiplier in that cell, never a knife edge.

    Attributes:
      bounds: ``b``.
    """

    bounds: float = BOUND

    traced_eod = True  # close_at_eod may be a traced bool (jaxsim.sim.profit.by_policy): vmappable over policies

    def __call__(self, close, high, high_pred, low, low_pred, positions, *, close_at_eod=False, fee=TRADING_FEE):
        """``(2,)`` multipliers of one problem (the optimizer protocol of :mod:`jaxsim.optimize`)."""
        problem = make_problem(close, high, high_pred, low, low_pred, positions)
        return solve_exact(problem, bounds=self.bounds, close_at_eod=close_at_eod, fee=fee)[0]


def solve_exact(problem: MultiplierProblem, *, bounds=BOUND, close_at_eod, fee):
    """The search of :class:`ExactOptimizer` on ``problem`` (leading batch axes are summed: one shared
    pair). Returns ``((2,) m, J(m))``."""
    mh, ml = problem_candidates(problem, bound=bounds)
    values = robust_grid_values(problem, mh, ml, close_at_eod=close_at_eod, fee=fee, separable=True)
    top = ties.rank(values, ties.multiplier_size(mh[:, None], ml[None, :]), min(RESCORE, values.size))
    i, j = jnp.unravel_index(top, values.shape)
    points = jnp.concatenate([jnp.stack([mh[i], ml[j]], axis=-1), jnp.zeros((1, 2), jnp.float32)])
    exact = jax.vmap(lambda m: robust_objective(m, problem, close_at_eod=close_at_eod, fee=fee))(points)
    return pick(points, exact)


def exact_optimizer(*, bounds=BOUND) -> ExactOptimizer:
    r"""Exact solver by breakpoint enumeration (see :class:`ExactOptimizer`).

    Two calls with the same settings return equal, hashable values, so a backtest with
    ``optimizer=exact_optimizer()`` compiles once.

    Args:
      bounds: keyword-only ``b``.

    Returns:
      an :class:`ExactOptimizer`: ``optimizer(close, high, high_pred, low, low_pred, positions, *,
      close_at_eod=False, fee=0.0005) -> (2,)``.
    """
    return ExactOptimizer(float(bounds))
