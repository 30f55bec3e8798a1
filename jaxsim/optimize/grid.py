"""A brute-force grid search over the multipliers (a baseline for the exact solver)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from jaxsim.optimize.objective import BOUND, best_on_grid, make_problem, robust_grid_values
from jaxsim.sim.profit import TRADING_FEE

__all__ = ["GridOptimizer", "grid_optimizer"]


@dataclasses.dataclass(frozen=True)
class GridOptimizer:
    """Brute-force ``n x n`` grid over ``[-b, b]^2`` (``linspace``) with the exact PF (hashable value).

    Grid points on knife edges (:mod:`jaxsim.optimize.objective`) are skipped; ties (values within a
    few float32 steps, :mod:`jaxsim.sim.ties`) go to the smallest ``|mh| + |ml|``, then the smaller
    ``mh``, then ``ml``.

    Attributes:
      n: points per axis.
      bounds: ``b``.
    """

    n: int
    bounds: float = BOUND

    def __call__(self, close, high, high_pred, low, low_pred, positions, *, close_at_eod=False, fee=TRADING_FEE):
        """``(2,)`` multipliers of one problem (the optimizer protocol of :mod:`jaxsim.optimize`)."""
        problem = make_problem(close, high, high_pred, low, low_pred, positions)
        g = jnp.linspace(-self.bounds, self.bounds, self.n, dtype=jnp.float32)
        return best_on_grid(robust_grid_values(problem, g, g, close_at_eod=close_at_eod, fee=fee), g, g)[0]


def grid_optimizer(n, *, bounds=BOUND) -> GridOptimizer:
    """Brute-force ``n x n`` grid over ``[-b, b]^2`` with the exact PF; a baseline.

    Returns a :class:`GridOptimizer` (callable with the optimizer protocol of :mod:`jaxsim.optimize`).
    """
    return GridOptimizer(int(n), float(bounds))
