r"""The optax-driven multiplier search: grid starts, annealed surrogate ascent, exact re-score, polish.

See :func:`optax_optimizer` for the steps. The same search run on a pooled objective is
:func:`jaxsim.optimize.tuning.tune_multipliers`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxsim.errors import ConfigError
from jaxsim.optimize.exact import pick, problem_candidates
from jaxsim.optimize.objective import (
    BOUND,
    MultiplierProblem,
    best_on_grid,
    knife_masks,
    make_problem,
    robust_grid_values,
    robust_objective,
    separable_terms,
    surrogate_objective,
)
from jaxsim.sim import ties
from jaxsim.sim.profit import TRADING_FEE, by_policy, policies

__all__ = ["SearchConfig", "default_adam", "search_problem", "OptaxOptimizer", "optax_optimizer", "default_optimizer"]


class SearchConfig(NamedTuple):
    """Static settings of the search (the defaults of :func:`optax_optimizer`; fields as its arguments)."""

    bounds: float = BOUND
    grid: int = 16
    starts: int = 8
    steps: int = 4
    temperatures: tuple = (1e-3, 1e-5)
    polish: int = 1
    polish_width: int = 0
    line_sweeps: int = 2
    line_width: int = 32
    polish_starts: bool = False
    ascents: int | None = 1  # how many of the best starts run the ascent (None: all)
    unroll: int = 1  # ascent steps unrolled per loop iteration (short ascents run faster unrolled)
    corners: bool = True  # one problem: start from the best cell corners instead of the lattice


def default_adam(steps, learning_rate=5e-4):
    """``optax.adam`` with a cosine-decayed step size: large moves first, fine ones at low ``T``."""
    return optax.adam(optax.cosine_decay_schedule(learning_rate, steps, alpha=0.02))


def _temperature_schedule(temperatures, steps):
    """Geometric annealing ``T_t = T_0 (T_1 / T_0)^{t / (steps - 1)}``."""
    t0, t1 = temperatures
    frac = jnp.arange(steps, dtype=jnp.float32) / max(steps - 1, 1)
    return jnp.float32(t0) * (jnp.float32(t1) / jnp.float32(t0)) ** frac


def _window_index(cands, x, width):
    """``(start, size)`` of the ``2 * width`` sorted candidates nearest ``x`` (``width`` on each side
    where possible); ``size`` is static."""
    width = min(width, cands.shape[0] // 2)
    idx = jnp.searchsorted(cands, x)
    return jnp.clip(idx - width, 0, cands.shape[0] - 2 * width), 2 * width


def _window(cands, x, width):
    """The ``2 * width`` sorted candidates nearest ``x`` (``width`` on each side where possible)."""
    start, size = _window_index(cands, x, width)
    return jax.lax.dynamic_slice_in_dim(cands, start, size)


def _size(m):
    """``|mh| + |ml|`` of points ``(..., 2)``."""
    return ties.multiplier_size(m[..., 0], m[..., 1])


def _best_pairs(values, mh, ml, k):
    """The ``k`` best points of the grid ``values (Nh, Nl)`` over ``mh x ml`` -> ``(k, 2)``, in the
    order of the tie rule (:func:`jaxsim.sim.ties.rank`)."""
    top = ties.rank(values, ties.multiplier_size(mh[:, None], ml[None, :]), min(k, values.size))
    i, j = jnp.unravel_index(top, values.shape)
    return jnp.stack([mh[i], ml[j]], axis=-1)


def _line_best(vals, cands, other):
    """Per row of ``vals (n, C)`` (the line through a point's ``other (n,)`` coordinate over the
    sorted ``cands (C,)``): the tie rule's candidate index and its value -> ``((n,), (n,))``."""
    size = ties.multiplier_size(cands[None, :], other[:, None])
    k = jax.vmap(ties.choose)(vals, size)
    return k, jnp.take_along_axis(vals, k[:, None], axis=-1)[:, 0]


def _ascents(starts, start_values, exact_fn, soft_grad, cfg: SearchConfig, tx):
    """Step 2: the best exact iterate of each projected surrogate ascent from the first starts.

    Returns ``(ends, end values)`` (exact, robust values).
    """
    n_asc = cfg.starts if cfg.ascents is None else min(cfg.ascents, cfg.starts)
    if cfg.steps == 0 or n_asc == 0:
        return starts[:0], start_values[:0]
    b = cfg.bounds
    lo, hi = jnp.full((2,), -b, jnp.float32), jnp.full((2,), b, jnp.float32)
    temps = _temperature_schedule(cfg.temperatures, cfg.steps)

    def ascend(m0, v0):
        def step(carry, t):
            m, state, best_m, best_v = carry
            updates, state = tx.update(soft_grad(m, t), state, m)
            m = optax.projections.projection_box(optax.apply_updates(m, updates), lo, hi)
            v = exact_fn(m)
            better = ties.prefer(v, _size(m), best_v, _size(best_m))
            return (m, state, jnp.where(better, m, best_m), jnp.where(better, v, best_v)), None

        init = (m0, tx.init(m0), m0, v0)
        (_, _, best_m, best_v), _ = jax.lax.scan(step, init, temps, unroll=cfg.unroll)
        return best_m, best_v

    return jax.vmap(ascend)(starts[:n_asc], start_values[:n_asc])  # top_k is sorted: the best first


class _Axis(NamedTuple):
    """One axis of the full-line polish: its sorted candidates and their knife edges; per eod policy
    (a dict keyed by it), the separable table and offset of the candidates (``f, r`` of ``mh`` or
    ``g, s`` of ``ml``, :func:`jaxsim.optimize.objective.separable_terms`) and the rows of the
    points' own coordinates (``point_*``)."""

    cands: jax.Array
    knife: jax.Array
    table: dict
    offset: dict
    point_knife: jax.Array
    point_table: dict
    point_offset: dict


def _full_line_polish(problem, cands, cfg: SearchConfig, *, close_at_eod, fee):
    """Step 3 on one problem: full-axis line searches, each one matrix product for all points.

    ``J(., ml)`` over every ``mh`` candidate is ``f . g(ml) + r + s(ml)``
    (:func:`jaxsim.optimize.objective.separable_terms`; the candidate tables are built once), and
    alike per ``ml``. The ``2 line_sweeps`` line searches are the steps of one loop: a step searches
    the first axis of its state (points ordered (searched, held)), then swaps the axes (one problem
    has as many candidates per axis, so both sides have one shape). A traced ``close_at_eod`` keeps
    the tables of both policies and selects their values (:func:`jaxsim.sim.profit.by_policy`).
    Returns ``polish(points (n, 2), values (n,)) -> (points, values)``.
    """
    branches = policies(close_at_eod)
    terms = lambda mh, ml: {e: separable_terms(problem, mh, ml, close_at_eod=e, fee=fee) for e in branches}
    dot = lambda a, b: jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)
    knife_all = knife_masks(problem, *cands)
    tables = terms(*cands)  # per policy: (f, r, g, s) over the candidates

    def line(_, state):
        m, v, side, held = state

        def values(e):
            return dot(held.point_table[e], side.table[e]) + side.offset[e][None, :] + held.point_offset[e][:, None]

        vals = jnp.where(side.knife[None, :] | held.point_knife[:, None], -jnp.inf, by_policy(close_at_eod, values))
        k, vk = _line_best(vals, side.cands, m[:, 1])
        new = jnp.stack([side.cands[k], m[:, 1]], -1)
        better = ties.prefer(vk, _size(new), v, _size(m))  # NaN never wins
        m = jnp.where(better[:, None], new, m)
        v = jnp.where(better, vk, v)
        take = lambda a, b: jnp.where(better.reshape((-1,) + (1,) * (a.ndim - 1)), a[k], b)
        side = side._replace(
            point_knife=take(side.knife, side.point_knife),
            point_table={e: take(side.table[e], side.point_table[e]) for e in branches},
            point_offset={e: take(side.offset[e], side.point_offset[e]) for e in branches},
        )
        return m[:, ::-1], v, held, side

    def polish(points, values):
        knife = knife_masks(problem, points[:, 0], points[:, 1])
        rows = terms(points[:, 0], points[:, 1])
        axes = tuple(
            _Axis(
                cands[a],
                knife_all[a],
                {e: tables[e][2 * a] for e in branches},
                {e: tables[e][2 * a + 1] for e in branches},
                knife[a],
                {e: rows[e][2 * a] for e in branches},
                {e: rows[e][2 * a + 1] for e in branches},
            )
            for a in (0, 1)
        )
        m, v, *_ = jax.lax.fori_loop(0, 2 * cfg.line_sweeps, line, (points, values, *axes))  # even: (mh, ml) again
        return m, v

    return polish


def _window_polish(grid_fn, cands, cfg: SearchConfig):
    """Step 3 on a pooled problem: line searches over the ``2 line_width`` candidates nearest the
    point, then the ``2 w x 2 w`` nearest candidate pairs, all with the exact ``J``."""

    def line(m, v, axis):
        w = _window(cands[axis], m[axis], cfg.line_width)
        vals = (grid_fn(w, m[1:]) if axis == 0 else grid_fn(m[:1], w)).ravel()
        k, vk = _line_best(vals[None], w, m[1 - axis : 2 - axis])
        new = m.at[axis].set(w[k[0]])
        better = ties.prefer(vk[0], _size(new), v, _size(m))
        return jnp.where(better, new, m), jnp.where(better, vk[0], v)

    def polish(m, v):
        for _ in range(cfg.line_sweeps):
            m, v = line(m, v, 0)
            m, v = line(m, v, 1)
        if cfg.polish_width > 0:
            wh = _window(cands[0], m[0], cfg.polish_width)
            wl = _window(cands[1], m[1], cfg.polish_width)
            pm, pv = best_on_grid(grid_fn(wh, wl), wh, wl)
            better = ties.prefer(pv, _size(pm), v, _size(m))
            m, v = jnp.where(better, pm, m), jnp.where(better, pv, v)
        return m, v

    return jax.vmap(polish)


def search_problem(problem: MultiplierProblem, cfg: SearchConfig, tx=None, *, close_at_eod, fee):
    """The search of :func:`optax_optimizer` on ``problem``; leading batch axes are summed (one
    shared ``m``, :func:`jaxsim.optimize.tuning.tune_multipliers`). ``tx`` None is
    :func:`default_adam`. Returns ``((2,) m, J(m))``, ``J`` exact.

    One problem: the polish line searches run over every candidate of an axis (one
    matrix-vector product each). Pooled: windows of candidates near the point, exact ``J``.
    """
    tx = default_adam(max(cfg.steps, 1)) if tx is None else tx
    kw = dict(close_at_eod=close_at_eod, fee=fee)
    exact_fn = lambda m: robust_objective(m, problem, **kw)

    def soft_grad(m, t):  # grad of -J_T; per policy, then selected (by_policy), when close_at_eod is traced
        grad = lambda eod: jax.grad(
            lambda x: -surrogate_objective(x, problem, temperature=t, close_at_eod=eod, fee=fee)
        )
        return by_policy(close_at_eod, lambda eod: grad(eod)(m))

    grid_fn = lambda mh, ml: robust_grid_values(problem, mh, ml, **kw)
    coarse_fn = lambda mh, ml: robust_grid_values(problem, mh, ml, separable=True, **kw)
    cands = problem_candidates(problem, bound=cfg.bounds)
    if cfg.corners and problem.close.ndim == 1:  # every cell corner, ranked by one matrix product
        starts = _best_pairs(coarse_fn(*cands), *cands, cfg.starts)
    else:
        g = jnp.linspace(-cfg.bounds, cfg.bounds, cfg.grid, dtype=jnp.float32)
        starts = _best_pairs(coarse_fn(g, g), g, g, cfg.starts)
    start_values = jax.vmap(exact_fn)(starts)
    ends, values = _ascents(starts, start_values, exact_fn, soft_grad, cfg, tx)
    if problem.close.ndim == 1:
        polish = _full_line_polish(problem, cands, cfg, **kw)
    else:
        polish = _window_polish(grid_fn, cands, cfg)
    # starts and ascent ends carry exact values; polished points are re-scored exactly (the full-line
    # polish ranks with the separable form). (0, 0) competes too, and ties (values within a few float32
    # steps, jaxsim.sim.ties: the same value rounds differently in another batch shape) go to the
    # smallest |mh| + |ml|, then the earlier point: a flat objective (no fills at any offset) reports
    # "no shift" rather than an arbitrary corner. Every step ranks and compares by the same rule.
    # Knife edges score -inf, so the result is the robust value of a cell interior.
    scored_m, scored_v = [starts, ends], [start_values, values]
    rescore = [jnp.zeros((1, 2), jnp.float32)]
    if cfg.polish > 0 and ends.shape[0] > 0:
        order = ties.rank(values, _size(ends), min(cfg.polish, ends.shape[0]))
        rescore.append(polish(ends[order], values[order])[0])
    if cfg.polish_starts:  # also polish the lattice starts themselves (rugged objectives)
        rescore.append(polish(starts, start_values)[0])
    rescore = jnp.concatenate(rescore)
    points = jnp.concatenate(scored_m + [rescore])
    return pick(points, jnp.concatenate(scored_v + [jax.vmap(exact_fn)(rescore)]))


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

    traced_eod = True  # close_at_eod may be a traced bool (jaxsim.sim.profit.by_policy): vmappable over policies

    def __call__(self, close, high, high_pred, low, low_pred, positions, *, close_at_eod=False, fee=TRADING_FEE):
        """``(2,)`` multipliers of one problem (the optimizer protocol of :mod:`jaxsim.optimize`)."""
        problem = make_problem(close, high, high_pred, low, low_pred, positions)
        return search_problem(problem, self.config, self.tx, close_at_eod=close_at_eod, fee=fee)[0]


def optax_optimizer(
    *,
    bounds=BOUND,
    corners=True,
    grid=16,
    starts=8,
    ascents=1,
    steps=4,
    tx=None,
    temperatures=(1e-3, 1e-5),
    polish=1,
    polish_starts=False,
    line_sweeps=2,
    polish_width=0,
    line_width=32,
    unroll=1,
) -> OptaxOptimizer:
    r"""Corner starts, annealed surrogate ascent with optax, exact re-score and polish (MaxDiff's default).

    1. Starts: with ``corners`` (one problem), rank every cell corner of ``J`` (the candidate pairs
       of :func:`jaxsim.optimize.exact.axis_candidates`, nudged into their cells) by one matrix
       product (:func:`jaxsim.optimize.objective.separable_grid_values`) and keep the ``starts``
       best; otherwise (pooled problems, or ``corners=False``) the ``starts`` best points of a
       ``grid x grid`` lattice over ``[-b, b]^2``. Each start is scored with the exact ``J``.
    2. From the best ``ascents`` starts, run ``steps`` projected optax steps ascending the smooth
       objective ``J_T`` (:func:`jaxsim.optimize.objective.surrogate_objective`) while the
       temperature anneals geometrically from ``T_0`` to ``T_1``: ``m <- Pi_[-b,b]^2(m + u_t)``,
       ``(u_t, s) = tx.update(-grad J_{T_t}(m), s)``. Every iterate is scored with the exact ``J``;
       each ascent keeps its best exact point.
    3. Polish the ``polish`` best ascent ends (and, with ``polish_starts``, every start):
       ``line_sweeps`` rounds of line search over every breakpoint candidate of one axis at a time
       (on one axis ``J`` is piecewise affine, so the best candidate is the line's robust
       supremum); on pooled problems the lines are windows of ``2 line_width`` candidates,
       optionally followed by the ``2 w x 2 w`` candidate pairs around the point
       (``w = polish_width``).
    4. Re-score every polished point exactly and return the best of starts, ends and polished
       points and ``(0, 0)``.

    Every choice (which starts, which ascent iterate, each line search, the final pick) follows the
    tie rule of :mod:`jaxsim.sim.ties`: values within a few float32 steps of the best are tied and
    go to the smallest ``|mh| + |ml|`` (then the earlier candidate), so the result does not depend
    on how XLA rounds the objective in a given batch shape.

    Robust supremum: every candidate is strictly inside a cell of ``J`` (breakpoints nudged into
    their cells, never bare) and points on a knife edge (``hp' == h`` or ``lp' == l`` exactly,
    unclamped, on a day with a position) score ``-inf`` in every step, so the returned value is
    attained by every nearby multiplier in its cell (:mod:`jaxsim.optimize.objective`).

    Design by measurement on the 1,000 real six-day cases of ``benchmarks/optimizer_quality.py``
    (``benchmarks/results/optimizer.md``): a 16 x 16 lattice with 10 starts, one 8-step ascent and
    full-axis line polish reached the robust supremum (1e-5) on 99.6-100% but fell below DIRECT on
    0.1% and cost 2.2x the exact solver; without the ascent its quality was the same. Ranking the
    cell corners instead never falls below the exact solver (its candidates are among the starts)
    and leaves room in the 2x budget for a short ascent. On single problems the ascent adds nothing
    measurable; it matters on pooled objectives (:func:`jaxsim.optimize.tuning.tune_multipliers`,
    many more local maxima), which use the lattice.

    Args:
      bounds: keyword-only ``b``.
      corners: one problem: start from the best cell corners (else from the lattice).
      grid: lattice size per axis (pooled problems, or ``corners=False``).
      starts: starting points kept.
      ascents: how many of the best starts run the ascent (None: all).
      steps: optax steps per ascent.
      tx: an ``optax.GradientTransformation`` for the ascent (default :func:`default_adam`, adam
        with cosine decay from 5e-4).
      temperatures: ``(T_0, T_1)`` of the geometric annealing, in return units.
      polish: how many of the best ascent ends are polished.
      polish_starts: also polish every start.
      line_sweeps: rounds of per-axis line search in the polish (0 disables it).
      polish_width: pooled problems: candidates taken on each side of a polished point, per axis,
        for the final 2-D polish (0 disables it).
      line_width: candidates on each side in a line search on pooled problems (one problem: all).
      unroll: ascent steps unrolled per loop iteration.

    Returns:
      an :class:`OptaxOptimizer`: ``optimizer(close, high, high_pred, low, low_pred, positions, *,
      close_at_eod=False, fee=0.0005) -> (2,)``; pure, jittable, vmappable, hashable.
    """
    if grid * grid < starts or steps < 0 or not (temperatures[0] > 0 and temperatures[1] > 0):
        raise ConfigError(
            f"bad optax_optimizer settings: grid={grid} starts={starts} steps={steps} temperatures={temperatures}"
        )
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
        bool(polish_starts),
        None if ascents is None else int(ascents),
        int(unroll),
        bool(corners),
    )
    return OptaxOptimizer(cfg, tx)


@functools.cache
def default_optimizer() -> OptaxOptimizer:
    """The optimizer of a backtest that names none: :func:`optax_optimizer` with its defaults (grid
    starts, annealed surrogate ascent, exact line-search polish and re-scoring). One cached value,
    equal to any other ``optax_optimizer()``; ``BacktestConfig(optimizer=None)`` resolves to it in
    :class:`jaxsim.engine.program.BacktestSetup`, the one place None is read."""
    return optax_optimizer()
