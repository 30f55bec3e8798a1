"""MaxDiff multiplier search: the exact breakpoint solver, the optax-driven search and pooled tuning."""

from jaxsim.optimize.multipliers import (exact_objective, exact_optimizer, grid_optimizer, optax_optimizer,
                                         surrogate_objective, tune_multipliers)

__all__ = ["exact_optimizer", "optax_optimizer", "grid_optimizer", "tune_multipliers", "surrogate_objective",
           "exact_objective"]
