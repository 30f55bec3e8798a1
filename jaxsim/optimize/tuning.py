r"""Pooled, gradient-based multiplier tuning over a batch of problems (simulations and/or stocks)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxsim.optimize.objective import BOUND, MultiplierProblem
from jaxsim.optimize.search import SearchConfig, search_problem
from jaxsim.sim.profit import TRADING_FEE

__all__ = ["tune_multipliers", "trace_count"]

_TRACES = {"count": 0}


def trace_count() -> int:
    """How many times the :func:`tune_multipliers` program has been traced in this process."""
    return _TRACES["count"]


@functools.partial(jax.jit, static_argnames=("cfg", "tx", "close_at_eod", "shared"))
def _fit(problems, fee, *, cfg, tx, close_at_eod, shared):
    # one module-level jit: static args are hashable settings, so a call with the same shapes and
    # settings reuses the compiled program
    _TRACES["count"] += 1  # Python side effect: runs once per trace
    if shared:
        return search_problem(problems, cfg, tx, close_at_eod=close_at_eod, fee=fee)[0]
    one = lambda q: search_problem(q, cfg, tx, close_at_eod=close_at_eod, fee=fee)[0]
    for _ in range(problems.close.ndim - 1):
        one = jax.vmap(one)
    return one(problems)


def tune_multipliers(
    problems: MultiplierProblem,
    *,
    tx=None,
    steps=300,
    temperatures=(1e-3, 1e-5),
    close_at_eod=False,
    fee=TRADING_FEE,
    bounds=BOUND,
    shared=True,
    grid=16,
    starts=16,
    polish=16,
    polish_width=6,
    line_sweeps=2,
    line_width=32,
):
    r"""Fits multipliers over a batch of problems (simulations and/or stocks) with optax.

    ``shared=True`` fits one pair for the whole batch (the original's unused "GPU batch" idea):

    .. math::

        m^\star = \arg\max_{m \in [-b, b]^2} \sum_{n} J_n(m)

    by the search of :func:`jaxsim.optimize.search.optax_optimizer` applied to the summed objective
    (surrogate ascent with the optax transform ``tx`` from every start, exact re-scoring and polish
    on the pooled breakpoints; the grid starts are polished too, since the pooled objective has many
    more local maxima). Like every optimizer here it returns the robust supremum: the exact re-score
    gives ``-inf`` to knife edges (:mod:`jaxsim.optimize.objective`), so the result sits inside a cell. ``shared=False``
    fits each problem independently (vmapped). Compiled once per shape and settings (a custom ``tx`` is part of the
    compile key by identity: build it once and reuse it).

    Args:
      problems: :class:`MultiplierProblem` with leading batch axes ``(..., days)`` /
        ``(..., P, days)`` (see :func:`jaxsim.optimize.objective.make_problem`).
      tx: keyword-only ``optax.GradientTransformation`` (default adam, cosine decay).
      steps: optax steps per start.
      temperatures: ``(T_0, T_1)`` annealing range.
      close_at_eod: static PF mode.
      fee: fee per unit of position.
      bounds: ``b``.
      shared: one pair for the batch (True) or one per problem (False).
      grid, starts, polish, polish_width, line_sweeps, line_width: as in
        :func:`jaxsim.optimize.search.optax_optimizer`.

    Returns:
      ``(2,)`` float32 ``(mh, ml)`` if ``shared`` else ``(..., 2)``; each is the best *exact* point found
      (never a knife edge).
    """
    cfg = SearchConfig(
        float(bounds),
        int(grid),
        int(starts),
        int(steps),
        tuple(float(t) for t in temperatures),
        int(polish),
        int(polish_width),
        int(line_sweeps),
        int(line_width),
        polish_starts=True,
        ascents=None,
        corners=False,
    )
    problems = MultiplierProblem(*(jnp.asarray(a, jnp.float32) for a in problems))
    return _fit(problems, jnp.float32(fee), cfg=cfg, tx=tx, close_at_eod=bool(close_at_eod), shared=bool(shared))
