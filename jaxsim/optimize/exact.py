r"""The exact multiplier solver: enumerate the cells of the piecewise affine objective.

Why it is possible: each indicator of PF depends on only one of ``mh`` (``[hp' < h]``,
``[hp' <= h]``, the clamp of ``hp``) or ``ml``, so ``J`` is affine on every cell of the product of
two 1-D breakpoint sets ``{h_i - hp_i, -hp_i, 10 - hp_i}`` and ``{l_i - lp_i, -lp_i, -1 - lp_i}``.
The supremum is therefore a cell corner approached from inside a cell; we evaluate every corner
nudged a few float32 ulps to each side, plus the bounds and 0.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from jaxsim.optimize.objective import BOUND, MultiplierProblem, best_on_grid, grid_values, make_problem
from jaxsim.sim.profit import TRADING_FEE

__all__ = ["axis_candidates", "problem_candidates", "ExactOptimizer", "exact_optimizer"]

_NUDGE_ULPS = 4.0  # how far inside a cell a corner is evaluated, in float32 ulps of the levels


def _ulp(x):
    x = jnp.abs(x)
    return jnp.nextafter(x, jnp.float32(jnp.inf)) - x


def axis_candidates(actual, pred, lo_clamp, hi_clamp, *, bound=BOUND):
    r"""Sorted 1-D candidate multipliers for one axis: each breakpoint and its two nudges.

    Breakpoints ``b`` solve ``pred + m = level`` for ``level`` in (the actual extreme, each clamp
    bound). Candidates are ``b``, ``b +- 4 ulp`` (inside each adjacent cell in float32), clipped
    to ``[-bound, bound]``, plus ``-bound, 0, bound``.

    Args:
      actual: realised ``h`` (or ``l``), any shape ``(..., days)``; flattened.
      pred: predicted ``hp`` (or ``lp``), same shape.
      lo_clamp, hi_clamp: PF's clamp of this level (``0, 10`` for ``hp``; ``-1, 0`` for ``lp``).
      bound: keyword-only bound ``b``.

    Returns:
      float32 sorted ``(9 * actual.size + 3,)``.
    """
    a = jnp.ravel(jnp.asarray(actual, jnp.float32))
    p = jnp.ravel(jnp.asarray(pred, jnp.float32))
    levels = jnp.concatenate([a, jnp.full_like(a, lo_clamp), jnp.full_like(a, hi_clamp)])
    preds = jnp.tile(p, 3)
    b = levels - preds
    d = _NUDGE_ULPS * _ulp(jnp.maximum(jnp.maximum(jnp.abs(levels), jnp.abs(preds)), jnp.abs(b)))
    ends = jnp.array([-bound, 0.0, bound], jnp.float32)
    cands = jnp.clip(jnp.concatenate([b - d, b, b + d, ends]), -bound, bound)
    return jnp.sort(cands)


def problem_candidates(problem: MultiplierProblem, *, bound=BOUND):
    """``(mh candidates, ml candidates)`` of :func:`axis_candidates` over all of ``problem``."""
    return (axis_candidates(problem.high, problem.high_pred, 0.0, 10.0, bound=bound),
            axis_candidates(problem.low, problem.low_pred, -1.0, 0.0, bound=bound))


@dataclasses.dataclass(frozen=True)
class ExactOptimizer:
    r"""Exact solver by breakpoint enumeration (a hashable value; build it with :func:`exact_optimizer`).

    ``J`` is affine on every cell of the product of the two 1-D breakpoint sets (module docstring),
    so ``sup J`` over ``[-b, b]^2`` is the value at some cell corner approached from inside a cell.
    All ``(9 d + 3)^2`` candidate pairs from :func:`axis_candidates` (``d`` = days) are evaluated
    with the exact PF in one vectorised call and the best is returned (ties: smallest
    ``|mh| + |ml|``). Strict fills make the supremum a limit: the returned point is within a few
    float32 ulps of a breakpoint, on its profitable side.

    Attributes:
      bounds: ``b``.
    """

    bounds: float = BOUND

    def __call__(self, close, high, high_pred, low, low_pred, positions, *, close_at_eod=False,
                 fee=TRADING_FEE):
        """``(2,)`` multipliers of one problem (the optimizer protocol of :mod:`jaxsim.optimize`)."""
        problem = make_problem(close, high, high_pred, low, low_pred, positions)
        mh, ml = problem_candidates(problem, bound=self.bounds)
        values = grid_values(problem, mh, ml, close_at_eod=close_at_eod, fee=fee)
        return best_on_grid(values, mh, ml)[0]


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
