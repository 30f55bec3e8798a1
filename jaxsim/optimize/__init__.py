"""MaxDiff multiplier search: the exact breakpoint solver, the optax-driven search, a grid, pooled tuning.

Modules: :mod:`~jaxsim.optimize.objective` (the problem, ``J`` and its surrogate),
:mod:`~jaxsim.optimize.exact` (breakpoint enumeration), :mod:`~jaxsim.optimize.search` (the optax
search, MaxDiff's default), :mod:`~jaxsim.optimize.grid` (a baseline), :mod:`~jaxsim.optimize.tuning`
(one shared pair over a batch).

An optimizer is a hashable value (a frozen dataclass; equal settings compare equal, so they share a
compiled backtest) called with the protocol

``optimizer(close, high, high_pred, low, low_pred, positions, *, close_at_eod, fee) -> (2,)``

on one simulation's ``(days,)`` vectors; it is pure, jittable and vmappable (``close_at_eod`` is a
static bool). The word "optimizer" means this multiplier search only; an optax
``GradientTransformation`` is called ``tx``.
"""

from jaxsim.optimize.exact import ExactOptimizer, axis_candidates, exact_optimizer, problem_candidates
from jaxsim.optimize.grid import GridOptimizer, grid_optimizer
from jaxsim.optimize.objective import (
    BOUND,
    MultiplierProblem,
    exact_objective,
    knife_edges,
    knife_masks,
    make_problem,
    robust_objective,
    surrogate_objective,
)
from jaxsim.optimize.search import OptaxOptimizer, SearchConfig, default_adam, default_optimizer, optax_optimizer
from jaxsim.optimize.tuning import tune_multipliers

__all__ = [
    "exact_optimizer",
    "optax_optimizer",
    "default_optimizer",
    "grid_optimizer",
    "tune_multipliers",
    "surrogate_objective",
    "exact_objective",
    "ExactOptimizer",
    "OptaxOptimizer",
    "GridOptimizer",
    "SearchConfig",
    "default_adam",
    "MultiplierProblem",
    "make_problem",
    "BOUND",
    "axis_candidates",
    "problem_candidates",
    "knife_edges",
    "knife_masks",
    "robust_objective",
]
