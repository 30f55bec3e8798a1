r"""The optax-driven multiplier search: grid starts, annealed surrogate ascent, exact re-score, polish.

See :func:`optax_optimizer` for the steps. The same search run on a pooled objective is
:func:`jaxsim.optimize.tuning.tune_multipliers`.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxsim.errors import ConfigError
from jaxsim.optimize.exact import problem_candidates
from jaxsim.optimize.objective import (BOUND, MultiplierProblem, best_on_grid, exact_objective, grid_values,
                                       make_problem, surrogate_objective)
from jaxsim.sim.profit import TRADING_FEE

__all__ = ["SearchConfig", "default_adam", "search_problem", "OptaxOptimizer", "optax_optimizer"]


class SearchConfig(NamedTuple):
    """Static settings of the multi-start annealed surrogate search (see :func:`optax_optimizer`)."""

    bounds: float = BOUND
    grid: int = 16
    starts: int = 16
    steps: int = 120
    temperatures: tuple = (1e-3, 1e-5)
    polish: int = 16
    polish_width: int = 6
    line_sweeps: int = 2
    line_width: int = 32
    polish_starts: bool = False


def default_adam(steps, learning_rate=5e-4):
    """``optax.adam`` with a cosine-decayed step size: large moves first, fine ones at low ``T``."""
    return optax.adam(optax.cosine_decay_schedule(learning_rate, steps, alpha=0.02))


def _temperature_schedule(temperatures, steps):
    """Geometric annealing ``T_t = T_0 (T_1 / T_0)^{t / (steps - 1)}``."""
    t0, t1 = temperatures
    frac = jnp.arange(steps, dtype=jnp.float32) / max(steps - 1, 1)
    return jnp.float32(t0) * (jnp.float32(t1) / jnp.float32(t0)) ** frac


def _window(cands, x, width):
    """The ``2 * width`` sorted candidates nearest ``x`` (``width`` on each side where possible)."""
    width = min(width, cands.shape[0] // 2)
    idx = jnp.searchsorted(cands, x)
    start = jnp.clip(idx - width, 0, cands.shape[0] - 2 * width)
    return jax.lax.dynamic_slice(cands, (start,), (2 * width,))


def _search(exact_fn, grid_fn, soft_fn, cands, cfg: SearchConfig, tx):
    """Multi-start grid -> annealed projected optax ascent -> exact re-scoring -> corner polish.

    ``exact_fn(m)``, ``grid_fn(mh, ml) -> (Nh, Nl)`` (exact) and ``soft_fn(m, T)`` define the
    problem; ``cands`` are the 1-D breakpoint candidates used by the polish. Returns ``(m, J(m))``.
    """
    b = cfg.bounds
    g = jnp.linspace(-b, b, cfg.grid, dtype=jnp.float32)
    coarse = grid_fn(g, g)
    coarse = jnp.where(jnp.isnan(coarse), -jnp.inf, coarse)
    _, top = jax.lax.top_k(coarse.ravel(), cfg.starts)
    i, j = jnp.unravel_index(top, coarse.shape)
    starts = jnp.stack([g[i], g[j]], axis=-1)  # (starts, 2)
    temps = _temperature_schedule(cfg.temperatures, cfg.steps)
    lo, hi = jnp.full((2,), -b, jnp.float32), jnp.full((2,), b, jnp.float32)
    soft_grad = jax.grad(lambda m, t: -soft_fn(m, t))

    def ascend(m0):
        def step(carry, t):
            m, state, best_m, best_v = carry
            updates, state = tx.update(soft_grad(m, t), state, m)
            m = optax.projections.projection_box(optax.apply_updates(m, updates), lo, hi)
            v = exact_fn(m)
            better = v > best_v
            return (m, state, jnp.where(better, m, best_m), jnp.where(better, v, best_v)), None

        init = (m0, tx.init(m0), m0, exact_fn(m0))
        (m, _, best_m, best_v), _ = jax.lax.scan(step, init, temps)
        return best_m, best_v

    ends, values = jax.vmap(ascend)(starts)
    # Exact corner polish: the search lands in (or next to) the best cell; J is affine there, so its
    # supremum is at a nearby breakpoint candidate on each axis.
    _, order = jax.lax.top_k(values, min(cfg.polish, cfg.starts))

    def line(m, v, axis):
        # exact line search over the breakpoint candidates of one axis, the other held fixed
        w = _window(cands[axis], m[axis], cfg.line_width)
        vals = (grid_fn(w, m[1:]) if axis == 0 else grid_fn(m[:1], w)).ravel()
        k = jnp.argmax(vals)
        better = vals[k] > v
        return jnp.where(better, m.at[axis].set(w[k]), m), jnp.where(better, vals[k], v)

    def polish(m, v):
        for _ in range(cfg.line_sweeps):
            m, v = line(m, v, 0)
            m, v = line(m, v, 1)
        wh = _window(cands[0], m[0], cfg.polish_width)
        wl = _window(cands[1], m[1], cfg.polish_width)
        pm, pv = best_on_grid(grid_fn(wh, wl), wh, wl)
        return jnp.where(pv > v, pm, m), jnp.maximum(pv, v)

    pm, pv = jax.vmap(polish)(ends[order], values[order])
    all_m = jnp.concatenate([ends, pm])
    all_v = jnp.concatenate([values, pv])
    if cfg.polish_starts:  # also polish the grid starts themselves (pooled objectives are rugged)
        sm, sv = jax.vmap(polish)(starts, coarse.ravel()[top])
        all_m, all_v = jnp.concatenate([all_m, sm]), jnp.concatenate([all_v, sv])
    # (0, 0) competes too, and exact ties go to the smallest |mh| + |ml| (as in best_on_grid): a flat
    # objective (no fills at any offset) reports "no shift" rather than an arbitrary corner.
    zero = jnp.zeros((1, 2), jnp.float32)
    all_m = jnp.concatenate([all_m, zero])
    all_v = jnp.concatenate([all_v, exact_fn(zero[0])[None]])
    all_v = jnp.where(jnp.isnan(all_v), -jnp.inf, all_v)
    size = jnp.sum(jnp.abs(all_m), axis=-1)
    k = jnp.argmin(jnp.where(all_v >= jnp.max(all_v), size, jnp.inf))
    return all_m[k], all_v[k]


def search_problem(problem: MultiplierProblem, cfg: SearchConfig, tx=None, *, close_at_eod, fee):
    """The search of :func:`optax_optimizer` on ``problem``, summing over any leading batch axes (one
    shared ``m``); ``tx`` None is :func:`default_adam`. Returns ``((2,) m, J(m))``."""
    tx = default_adam(cfg.steps) if tx is None else tx
    batch_ndim = problem.close.ndim - 1
    kw = dict(close_at_eod=close_at_eod, fee=fee)
    exact_fn = lambda m: exact_objective(m, problem, **kw)
    soft_fn = lambda m, t: surrogate_objective(m, problem, temperature=t, **kw)

    def grid_fn(mh, ml):
        one = lambda p: grid_values(p, mh, ml, **kw)
        for _ in range(batch_ndim):
            one = jax.vmap(one)
        return jnp.sum(one(problem), axis=tuple(range(batch_ndim)))

    return _search(exact_fn, grid_fn, soft_fn, problem_candidates(problem, bound=cfg.bounds), cfg, tx)


@dataclasses.dataclass(frozen=True)
class OptaxOptimizer:
    """The optax-driven search of :func:`optax_optimizer` as a hashable value.

    Equal settings give equal values (and one compiled backtest). A custom ``tx`` compares by
    identity (optax transforms are tuples of functions): build it once and reuse it.

    Attributes:
      config: the static :class:`SearchConfig`.
      tx: the ``optax.GradientTransformation`` of the ascent; None is :func:`default_adam`.
    """

    config: SearchConfig = SearchConfig()
    tx: optax.GradientTransformation | None = None

    def __call__(self, close, high, high_pred, low, low_pred, positions, *, close_at_eod=False,
                 fee=TRADING_FEE):
        """``(2,)`` multipliers of one problem (the optimizer protocol of :mod:`jaxsim.optimize`)."""
        problem = make_problem(close, high, high_pred, low, low_pred, positions)
        return search_problem(problem, self.config, self.tx, close_at_eod=close_at_eod, fee=fee)[0]


def optax_optimizer(*, bounds=BOUND, grid=16, starts=16, steps=120, tx=None,
                    temperatures=(1e-3, 1e-5), polish=16, polish_width=6, line_sweeps=2,
                    line_width=32) -> OptaxOptimizer:
    r"""Multi-start annealed surrogate ascent with optax, re-scored exactly (MaxDiff's default).

    1. Evaluate the exact ``J`` on a ``grid x grid`` lattice over ``[-b, b]^2`` and start from the
       ``starts`` best points.
    2. From each start (vmapped), run ``steps`` projected optax steps ascending the smooth
       objective ``J_T`` (:func:`jaxsim.optimize.objective.surrogate_objective`) while the
       temperature anneals geometrically from ``T_0`` to ``T_1``: ``m <- Pi_[-b,b]^2(m + u_t)``,
       ``(u_t, s) = tx.update(-grad J_{T_t}(m), s)``. Every iterate is scored with the exact ``J``;
       each start keeps its best exact point.
    3. Exact polish of the ``polish`` best ascents: ``line_sweeps`` rounds of exact line search
       over the breakpoint candidates of one axis at a time
       (:func:`jaxsim.optimize.exact.axis_candidates`, the ``2 line_width`` nearest), then the
       ``2 w x 2 w`` nearest candidate pairs (``w = polish_width``): the corners of the cell reached
       and of its neighbours, approached from inside. On one axis ``J`` is piecewise affine, so its
       best candidate is exact.
    4. Return the point with the largest exact ``J`` (never worse than the best grid point).

    On 1,000 real-data six-day cases (``benchmarks/results/optimizer.md``) the default is within
    1e-5 of the exact supremum in 99.8-100% of cases and never below DIRECT. Ablation: the ascent
    alone ends 1e-4-1e-3 short (it stops inside the cell, off the strict-fill limit; 4-13% within
    1e-5); ascent + local corner polish 97.9-98.9%; grid + local polish without ascent 96.5-98.2%;
    with the line search the ascent adds nothing measurable on single simulations, but it does on
    pooled objectives (:func:`jaxsim.optimize.tuning.tune_multipliers`). For single six-day problems
    :func:`jaxsim.optimize.exact.exact_optimizer` is exact and ~10x cheaper; this search is the
    scalable, differentiable path.

    Args:
      bounds: keyword-only ``b``.
      grid: coarse lattice size per axis.
      starts: number of ascents.
      steps: optax steps per ascent.
      tx: an ``optax.GradientTransformation`` for the ascent (default :func:`default_adam`, adam
        with cosine decay from 5e-4).
      temperatures: ``(T_0, T_1)`` of the geometric annealing, in return units.
      polish: how many of the best ascents are polished.
      polish_width: candidates taken on each side of a polished point, per axis.
      line_sweeps: rounds of per-axis exact line search in the polish (0 disables it).
      line_width: candidates taken on each side in a line search.

    Returns:
      an :class:`OptaxOptimizer`: ``optimizer(close, high, high_pred, low, low_pred, positions, *,
      close_at_eod=False, fee=0.0005) -> (2,)``; pure, jittable, vmappable, hashable.
    """
    if grid * grid < starts or steps < 1 or not (temperatures[0] > 0 and temperatures[1] > 0):
        raise ConfigError(f"bad optax_optimizer settings: grid={grid} starts={starts} steps={steps} "
                          f"temperatures={temperatures}")
    cfg = SearchConfig(float(bounds), int(grid), int(starts), int(steps),
                       tuple(float(t) for t in temperatures), int(polish), int(polish_width),
                       int(line_sweeps), int(line_width))
    return OptaxOptimizer(cfg, tx)
