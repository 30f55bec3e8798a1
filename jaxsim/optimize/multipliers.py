r"""MaxDiff multiplier search: an optax optimiser on a smooth surrogate, an exact solver, a grid.

The MaxDiff strategies (spec 5.7, 5.8) shift the predicted levels by additive multipliers
``m = (mh, ml)`` in ``[-b, b]^2`` (``b = 0.03``) chosen to maximise

.. math::

    J(m) = \sum_p \sum_i PF(c_i, h_i, hp_i + mh, l_i, lp_i + ml, q_{p,i};\ eod, fee)

with ``q`` of shape ``(P, days)`` (``P = 1`` entry/exit; ``P = 2`` always-on: a buy row and a sell
row). The original used scipy DIRECT (spec 6), which misses the optimum of this piecewise linear,
discontinuous objective. Every optimiser here is a callable with the protocol

``optimizer(close, high, high_pred, low, low_pred, positions, *, close_at_eod, fee) -> (2,)``

on one simulation's ``(days,)`` vectors; it is pure, jittable and vmappable (``close_at_eod`` is a
static bool). Factories: :func:`optax_optimizer` (default of MaxDiff), :func:`exact_optimizer`,
:func:`grid_optimizer`. For user code: :func:`exact_objective`, :func:`surrogate_objective` (jax.grad
friendly) and :func:`tune_multipliers` (one shared ``m`` over a batch of simulations or stocks).

Why an exact solver is possible: each indicator of PF depends on only one of ``mh`` (``[hp' < h]``,
``[hp' <= h]``, the clamp of ``hp``) or ``ml``, so ``J`` is affine on every cell of the product of
two 1-D breakpoint sets ``{h_i - hp_i, -hp_i, 10 - hp_i}`` and ``{l_i - lp_i, -lp_i, -1 - lp_i}``.
The supremum is therefore a cell corner approached from inside a cell; we evaluate every corner
nudged a few float32 ulps to each side, plus the bounds and 0.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxsim.errors import ConfigError
from jaxsim.sim.profit import TRADING_FEE, profit_values
from jaxsim.sim.surrogate import soft_profit_values

__all__ = ["BOUND", "MultiplierProblem", "make_problem", "exact_objective", "surrogate_objective",
           "axis_candidates", "problem_candidates", "exact_optimizer", "grid_optimizer", "SearchConfig",
           "default_adam", "optax_optimizer", "tune_multipliers"]

from jaxsim.sim.profit import MULTIPLIER_BOUND as BOUND  # noqa: E402 -- the original's bounds, [-0.03, 0.03]^2
_NUDGE_ULPS = 4.0  # how far inside a cell a corner is evaluated, in float32 ulps of the levels


class MultiplierProblem(NamedTuple):
    """Inputs of one multiplier search (a pytree; add leading axes for batches).

    Attributes:
      close, high, high_pred, low, low_pred: ``(..., days)`` adjusted MaxDiff quantities (spec 5.7
        step 3): ``c``, ``h``, ``hp``, ``l``, ``lp``.
      positions: ``(..., P, days)`` position rows ``q_p`` whose PF sums form the objective.
    """

    close: jax.Array
    high: jax.Array
    high_pred: jax.Array
    low: jax.Array
    low_pred: jax.Array
    positions: jax.Array


def make_problem(close, high, high_pred, low, low_pred, positions) -> MultiplierProblem:
    """Builds a float32 :class:`MultiplierProblem`; ``(..., days)`` positions become one row."""
    f32 = jnp.float32
    c, h, hp, l, lp, q = (jnp.asarray(a, f32) for a in (close, high, high_pred, low, low_pred, positions))
    if q.ndim == c.ndim:
        q = q[..., None, :]
    if q.shape[-1] != c.shape[-1] or q.ndim != c.ndim + 1:
        raise ConfigError(f"positions of shape {q.shape} do not match prices of shape {c.shape}")
    return MultiplierProblem(c, h, hp, l, lp, q)


def _grid_values(problem, mh, ml, *, close_at_eod, fee, soft_temperature=None):
    """``J`` of one problem on the product grid ``mh (Nh,) x ml (Nl,)`` -> ``(Nh, Nl)``."""
    sl = (slice(None), None, None, None)
    hp = problem.high_pred + mh[sl]  # (Nh, 1, 1, days)
    lp = problem.low_pred + ml[None, :, None, None]  # (1, Nl, 1, days)
    args = (problem.close, problem.high, hp, problem.low, lp, problem.positions)
    if soft_temperature is None:
        pf = profit_values(*args, close_at_eod=close_at_eod, fee=fee)
    else:
        pf = soft_profit_values(*args, temperature=soft_temperature, close_at_eod=close_at_eod, fee=fee)
    return jnp.sum(pf, axis=(-2, -1))


def exact_objective(mults, problem: MultiplierProblem, *, close_at_eod=False, fee=TRADING_FEE):
    r"""Exact objective ``J(m)`` summed over any leading batch axes of ``problem``.

    Args:
      mults: ``(2,)`` multipliers ``(mh, ml)``.
      problem: a :class:`MultiplierProblem`, optionally with leading batch axes.
      close_at_eod: keyword-only static bool (PF mode).
      fee: keyword-only fee per unit of position.

    Returns:
      float32 scalar ``sum_batch sum_p sum_i PF``.
    """
    m = jnp.asarray(mults, jnp.float32)
    pf = profit_values(problem.close[..., None, :], problem.high[..., None, :],
                       problem.high_pred[..., None, :] + m[0], problem.low[..., None, :],
                       problem.low_pred[..., None, :] + m[1], problem.positions,
                       close_at_eod=close_at_eod, fee=fee)
    return jnp.sum(pf)


def surrogate_objective(mults, problem: MultiplierProblem, *, temperature, close_at_eod=False,
                        fee=TRADING_FEE):
    r"""Smooth objective ``J_T(m) = sum_batch sum_p sum_i PF_T`` (:mod:`jaxsim.sim.surrogate`).

    Differentiable in ``mults`` (use ``jax.grad``); ``J_T -> J`` pointwise as ``T -> 0``.

    Args:
      mults: ``(2,)`` multipliers ``(mh, ml)``.
      problem: a :class:`MultiplierProblem`, optionally with leading batch axes.
      temperature: keyword-only relaxation width ``T`` in return units.
      close_at_eod: keyword-only static bool.
      fee: keyword-only fee per unit of position.

    Returns:
      float32 scalar.
    """
    m = jnp.asarray(mults, jnp.float32)
    pf = soft_profit_values(problem.close[..., None, :], problem.high[..., None, :],
                            problem.high_pred[..., None, :] + m[0], problem.low[..., None, :],
                            problem.low_pred[..., None, :] + m[1], problem.positions,
                            temperature=temperature, close_at_eod=close_at_eod, fee=fee)
    return jnp.sum(pf)


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


def _best_on_grid(values, mh, ml):
    """Argmax of ``values (Nh, Nl)``; exact ties go to the smallest ``|mh| + |ml|``; NaN loses."""
    values = jnp.where(jnp.isnan(values), -jnp.inf, values)
    best = jnp.max(values)
    size = jnp.abs(mh)[:, None] + jnp.abs(ml)[None, :]
    idx = jnp.argmin(jnp.where(values >= best, size, jnp.inf))
    i, j = jnp.unravel_index(idx, values.shape)
    return jnp.stack([mh[i], ml[j]]), best


def exact_optimizer(*, bounds=BOUND):
    r"""Exact solver by breakpoint enumeration; returns an optimiser callable.

    ``J`` is affine on every cell of the product of the two 1-D breakpoint sets (module docstring),
    so ``sup J`` over ``[-b, b]^2`` is the value at some cell corner approached from inside a cell.
    All ``(9 d + 3)^2`` candidate pairs from :func:`axis_candidates` (``d`` = days) are evaluated
    with the exact PF in one vectorised call and the best is returned (ties: smallest
    ``|mh| + |ml|``). Strict fills make the supremum a limit: the returned point is within a few
    float32 ulps of a breakpoint, on its profitable side.

    Args:
      bounds: keyword-only ``b``.

    Returns:
      ``optimizer(close, high, high_pred, low, low_pred, positions, *, close_at_eod=False,
      fee=0.0005) -> (2,)`` (see the module docstring).
    """

    def optimizer(close, high, high_pred, low, low_pred, positions, *, close_at_eod=False,
                  fee=TRADING_FEE):
        problem = make_problem(close, high, high_pred, low, low_pred, positions)
        mh, ml = problem_candidates(problem, bound=bounds)
        return _best_on_grid(_grid_values(problem, mh, ml, close_at_eod=close_at_eod, fee=fee), mh, ml)[0]

    return optimizer


def grid_optimizer(n, *, bounds=BOUND):
    """Brute-force ``n x n`` grid over ``[-b, b]^2`` (``linspace``) with the exact PF; a baseline.

    Returns an optimiser callable with the protocol of the module docstring.
    """

    def optimizer(close, high, high_pred, low, low_pred, positions, *, close_at_eod=False,
                  fee=TRADING_FEE):
        problem = make_problem(close, high, high_pred, low, low_pred, positions)
        g = jnp.linspace(-bounds, bounds, n, dtype=jnp.float32)
        return _best_on_grid(_grid_values(problem, g, g, close_at_eod=close_at_eod, fee=fee), g, g)[0]

    return optimizer


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


def _search(exact_fn, grid_fn, soft_fn, cands, cfg: SearchConfig, opt):
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
            updates, state = opt.update(soft_grad(m, t), state, m)
            m = optax.projections.projection_box(optax.apply_updates(m, updates), lo, hi)
            v = exact_fn(m)
            better = v > best_v
            return (m, state, jnp.where(better, m, best_m), jnp.where(better, v, best_v)), None

        init = (m0, opt.init(m0), m0, exact_fn(m0))
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
        pm, pv = _best_on_grid(grid_fn(wh, wl), wh, wl)
        return jnp.where(pv > v, pm, m), jnp.maximum(pv, v)

    pm, pv = jax.vmap(polish)(ends[order], values[order])
    all_m = jnp.concatenate([ends, pm])
    all_v = jnp.concatenate([values, pv])
    if cfg.polish_starts:  # also polish the grid starts themselves (pooled objectives are rugged)
        sm, sv = jax.vmap(polish)(starts, coarse.ravel()[top])
        all_m, all_v = jnp.concatenate([all_m, sm]), jnp.concatenate([all_v, sv])
    # (0, 0) competes too, and exact ties go to the smallest |mh| + |ml| (as in _best_on_grid): a flat
    # objective (no fills at any offset) reports "no shift" rather than an arbitrary corner.
    zero = jnp.zeros((1, 2), jnp.float32)
    all_m = jnp.concatenate([all_m, zero])
    all_v = jnp.concatenate([all_v, exact_fn(zero[0])[None]])
    all_v = jnp.where(jnp.isnan(all_v), -jnp.inf, all_v)
    size = jnp.sum(jnp.abs(all_m), axis=-1)
    k = jnp.argmin(jnp.where(all_v >= jnp.max(all_v), size, jnp.inf))
    return all_m[k], all_v[k]


def optax_optimizer(*, bounds=BOUND, grid=16, starts=16, steps=120, optimizer=None,
                    temperatures=(1e-3, 1e-5), polish=16, polish_width=6, line_sweeps=2,
                    line_width=32):
    r"""Multi-start annealed surrogate ascent with optax, re-scored exactly (MaxDiff's default).

    1. Evaluate the exact ``J`` on a ``grid x grid`` lattice over ``[-b, b]^2`` and start from the
       ``starts`` best points.
    2. From each start (vmapped), run ``steps`` projected optax steps ascending the smooth
       objective ``J_T`` (:func:`surrogate_objective`) while the temperature anneals geometrically
       from ``T_0`` to ``T_1``: ``m <- Pi_[-b,b]^2(m + u_t)``, ``(u_t, s) = opt.update(-grad J_{T_t}(m), s)``.
       Every iterate is scored with the exact ``J``; each start keeps its best exact point.
    3. Exact polish of the ``polish`` best ascents: ``line_sweeps`` rounds of exact line search
       over the breakpoint candidates of one axis at a time (:func:`axis_candidates`, the
       ``2 line_width`` nearest), then the ``2 w x 2 w`` nearest candidate pairs
       (``w = polish_width``): the corners of the cell reached and of its neighbours, approached
       from inside. On one axis ``J`` is piecewise affine, so its best candidate is exact.
    4. Return the point with the largest exact ``J`` (never worse than the best grid point).

    On 1,000 real-data six-day cases (``benchmarks/results/optimizer.md``) the default is within
    1e-5 of the exact supremum in 99.8-100% of cases and never below DIRECT. Ablation: the ascent
    alone ends 1e-4-1e-3 short (it stops inside the cell, off the strict-fill limit; 4-13% within
    1e-5); ascent + local corner polish 97.9-98.9%; grid + local polish without ascent 96.5-98.2%;
    with the line search the ascent adds nothing measurable on single simulations, but it does on
    pooled objectives (:func:`tune_multipliers`). For single six-day problems
    :func:`exact_optimizer` is exact and ~10x cheaper; this search is the scalable, differentiable
    path.

    Args:
      bounds: keyword-only ``b``.
      grid: coarse lattice size per axis.
      starts: number of ascents.
      steps: optax steps per ascent.
      optimizer: an ``optax.GradientTransformation`` (default :func:`default_adam`, adam
        with cosine decay from 5e-4).
      temperatures: ``(T_0, T_1)`` of the geometric annealing, in return units.
      polish: how many of the best ascents are polished.
      polish_width: candidates taken on each side of a polished point, per axis.
      line_sweeps: rounds of per-axis exact line search in the polish (0 disables it).
      line_width: candidates taken on each side in a line search.

    Returns:
      ``optimizer(close, high, high_pred, low, low_pred, positions, *, close_at_eod=False,
      fee=0.0005) -> (2,)`` (module docstring); pure, jittable, vmappable.
    """
    if grid * grid < starts or steps < 1 or not (temperatures[0] > 0 and temperatures[1] > 0):
        raise ConfigError(f"bad optax_optimizer settings: grid={grid} starts={starts} steps={steps} "
                          f"temperatures={temperatures}")
    cfg = SearchConfig(bounds, grid, starts, steps, tuple(temperatures), polish, polish_width,
                       line_sweeps, line_width)
    opt = default_adam(steps) if optimizer is None else optimizer

    def run(close, high, high_pred, low, low_pred, positions, *, close_at_eod=False, fee=TRADING_FEE):
        problem = make_problem(close, high, high_pred, low, low_pred, positions)
        return _search_problem(problem, cfg, opt, close_at_eod=close_at_eod, fee=fee)[0]

    return run


def _search_problem(problem, cfg, opt, *, close_at_eod, fee):
    """:func:`_search` on ``problem``, summing over any leading batch axes (shared ``m``)."""
    batch_ndim = problem.close.ndim - 1
    kw = dict(close_at_eod=close_at_eod, fee=fee)
    exact_fn = lambda m: exact_objective(m, problem, **kw)
    soft_fn = lambda m, t: surrogate_objective(m, problem, temperature=t, **kw)

    def grid_fn(mh, ml):
        one = lambda p: _grid_values(p, mh, ml, **kw)
        for _ in range(batch_ndim):
            one = jax.vmap(one)
        return jnp.sum(one(problem), axis=tuple(range(batch_ndim)))

    return _search(exact_fn, grid_fn, soft_fn, problem_candidates(problem, bound=cfg.bounds), cfg, opt)


def tune_multipliers(problems: MultiplierProblem, *, optimizer=None, steps=300,
                     temperatures=(1e-3, 1e-5), close_at_eod=False, fee=TRADING_FEE, bounds=BOUND,
                     shared=True, grid=16, starts=16, polish=16, polish_width=6,
                     line_sweeps=2, line_width=32):
    r"""Fits multipliers over a batch of problems (simulations and/or stocks) with optax.

    ``shared=True`` fits one pair for the whole batch (the original's unused "GPU batch" idea):

    .. math::

        m^\star = \arg\max_{m \in [-b, b]^2} \sum_{n} J_n(m)

    by the search of :func:`optax_optimizer` applied to the summed objective (surrogate ascent with
    the user's optax ``optimizer``, exact re-scoring and polish on the pooled breakpoints; the grid
    starts are polished too, since the pooled objective has many more local maxima).
    ``shared=False`` fits each problem independently (vmapped). Compiled once per call; wrap the
    call site in your own loop over calls, not over problems.

    Args:
      problems: :class:`MultiplierProblem` with leading batch axes ``(..., days)`` /
        ``(..., P, days)`` (see :func:`make_problem`).
      optimizer: keyword-only ``optax.GradientTransformation`` (default adam, cosine decay).
      steps: optax steps per start.
      temperatures: ``(T_0, T_1)`` annealing range.
      close_at_eod: static PF mode.
      fee: fee per unit of position.
      bounds: ``b``.
      shared: one pair for the batch (True) or one per problem (False).
      grid, starts, polish, polish_width, line_sweeps, line_width: as in :func:`optax_optimizer`.

    Returns:
      ``(2,)`` float32 ``(mh, ml)`` if ``shared`` else ``(..., 2)``; each is the best *exact* point found.
    """
    cfg = SearchConfig(bounds, grid, starts, steps, tuple(temperatures), polish, polish_width,
                       line_sweeps, line_width, polish_starts=True)
    opt = default_adam(steps) if optimizer is None else optimizer
    problems = MultiplierProblem(*(jnp.asarray(a, jnp.float32) for a in problems))

    @jax.jit
    def fit(p, fee):
        if shared:
            return _search_problem(p, cfg, opt, close_at_eod=close_at_eod, fee=fee)[0]
        one = lambda q: _search_problem(q, cfg, opt, close_at_eod=close_at_eod, fee=fee)[0]
        for _ in range(p.close.ndim - 1):
            one = jax.vmap(one)
        return one(p)

    return fit(problems, jnp.float32(fee))
