r"""The MaxDiff multiplier objective: problems, the exact ``J`` and its smooth surrogate ``J_T``.

MaxDiff shifts the predicted levels by additive multipliers ``m = (mh, ml)`` in ``[-b, b]^2``
(``b = 0.03``) chosen to maximise

.. math::

    J(m) = \sum_p \sum_i PF(c_i, h_i, hp_i + mh, l_i, lp_i + ml, q_{p,i};\ eod, fee)

with ``q`` of shape ``(P, days)`` (``P = 1`` entry/exit; ``P = 2`` always-on: a buy row and a sell
row).

The robust supremum. ``J`` jumps where a shifted level meets a realised extreme: PF's fills are
strict (``hp' < h``, ``lp' > l``) and its take-profit tests are not (``hp' <= h``, ``lp' >= l``).
At a point where ``hp' == h`` (or ``lp' == l``) exactly, with the level not clamped, the take-profit
passes but the fill of the other side does not, so no fee is charged: a *knife edge* whose value can
exceed the limits from every neighbouring cell and that no nearby multiplier attains (it depends on
float32 rounding). Every optimizer here reports the supremum over open neighbourhoods instead: it
only returns points strictly inside a cell of ``J``'s breakpoint arrangement, where ``J`` is the
cell's affine value, and it rejects any candidate that sits on a knife edge of a day with a position
(:func:`knife_edges`). A tie while the level is clamped (``hp' = 0 = h`` for every ``mh`` below the
clamp) holds on an open interval and is an ordinary value.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsim.errors import ConfigError
from jaxsim.sim import ties
from jaxsim.sim.profit import MULTIPLIER_BOUND, TRADING_FEE, by_policy, profit_values
from jaxsim.sim.surrogate import soft_profit_values

__all__ = [
    "BOUND",
    "MultiplierProblem",
    "make_problem",
    "exact_objective",
    "surrogate_objective",
    "grid_values",
    "separable_terms",
    "separable_grid_values",
    "knife_edges",
    "knife_masks",
    "robust_grid_values",
    "robust_objective",
    "best_on_grid",
]

BOUND = MULTIPLIER_BOUND  # the original's multiplier bounds, [-0.03, 0.03]^2 (defined once, in sim.profit)


class MultiplierProblem(NamedTuple):
    """Inputs of one multiplier search (a pytree; add leading axes for batches).

    Attributes:
      close, high, high_pred, low, low_pred: ``(..., days)`` adjusted MaxDiff quantities ``c``, ``h``,
        ``hp``, ``l``, ``lp`` (levels relative to the previous close, offsets added).
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


def grid_values(problem: MultiplierProblem, mh, ml, *, close_at_eod, fee, soft_temperature=None):
    """``J`` of one problem (no batch axes) on the product grid ``mh (Nh,) x ml (Nl,)`` -> ``(Nh, Nl)``."""
    sl = (slice(None), None, None, None)
    hp = problem.high_pred + mh[sl]  # (Nh, 1, 1, days)
    lp = problem.low_pred + ml[None, :, None, None]  # (1, Nl, 1, days)
    args = (problem.close, problem.high, hp, problem.low, lp, problem.positions)

    def values(eod):
        if soft_temperature is None:
            pf = profit_values(*args, close_at_eod=eod, fee=fee)
        else:
            pf = soft_profit_values(*args, temperature=soft_temperature, close_at_eod=eod, fee=fee)
        return jnp.sum(pf, axis=(-2, -1))

    return by_policy(close_at_eod, values)


def _position_sums(q):
    """Per-day sums over position rows of ``q+``, ``q-`` and ``|q|`` (PF is linear in each)."""
    return (
        jnp.sum(jnp.clip(q, 0.0, 10.0), axis=-2),
        jnp.sum(jnp.clip(q, -10.0, 0.0), axis=-2),
        jnp.sum(jnp.abs(q), axis=-2),
    )


def separable_terms(problem: MultiplierProblem, mh, ml, *, close_at_eod, fee):
    r"""Per-axis factors of ``J`` on one problem (no batch axes): ``J(mh_a, ml_b) = f_a . g_b + r_a + s_b``.

    Every PF indicator depends on one axis only, so with ``S = [hp' < h]``, ``U = [hp' <= h]``,
    ``B = [lp' > l]``, ``D = [lp' >= l]`` and the row sums ``Q+, Q-, |Q|`` of the positions,

    .. math::

        \text{intraday:}\ PF = Q_+ B (X - lp') + Q_- S (Y - hp') - fee |Q| B S,\quad
        X = U\,hp' + (1 - U)\,c,\ Y = D\,lp' + (1 - D)\,c

        \text{eod:}\ PF = (Q_+ (c - lp') - fee |Q|) B + (Q_- (c - hp') - fee |Q|) S + fee |Q| B S

    summed over days: ``3 days`` (intraday) or ``days`` (eod) columns.

    Args:
      problem: one :class:`MultiplierProblem`.
      mh, ml: ``(Nh,)``, ``(Nl,)`` multipliers of each axis.
      close_at_eod, fee: keyword-only PF settings.

    Returns:
      ``(f (Nh, K), r (Nh,), g (Nl, K), s (Nl,))``.
    """
    c, h, hp, l, lp = problem.close, problem.high, problem.high_pred, problem.low, problem.low_pred
    qp, qm, qa = _position_sums(problem.positions)
    fee = jnp.asarray(fee, jnp.float32)
    hpx = jnp.clip(hp[None, :] + mh[:, None], 0.0, 10.0)  # (Nh, days)
    lpx = jnp.clip(lp[None, :] + ml[:, None], -1.0, 0.0)  # (Nl, days)
    s = (hpx < h).astype(jnp.float32)
    b = (lpx > l).astype(jnp.float32)
    if close_at_eod:
        rh = jnp.sum((qm * (c - hpx) - fee * qa) * s, axis=-1)
        rl = jnp.sum((qp * (c - lpx) - fee * qa) * b, axis=-1)
        return fee * qa * s, rh, b, rl
    x = jnp.where(hpx <= h, hpx, c)
    y = jnp.where(lpx >= l, lpx, c)
    rh = -jnp.sum(qm * s * hpx, axis=-1)
    rl = -jnp.sum(qp * b * lpx, axis=-1)
    f = jnp.concatenate([x, qm * s, -fee * qa * s], axis=-1)
    g = jnp.concatenate([qp * b, y, b], axis=-1)
    return f, rh, g, rl


def separable_grid_values(problem: MultiplierProblem, mh, ml, *, close_at_eod, fee):
    """``J`` of one problem on the grid ``mh (Nh,) x ml (Nl,)`` as one matrix product -> ``(Nh, Nl)``.

    ``J = f g^T + r + s`` (:func:`separable_terms`). Equal to :func:`grid_values` up to float32
    summation order (~1e-8): use it to rank candidates and re-score the chosen ones with
    :func:`exact_objective`.
    """

    def values(eod):
        f, r, g, s = separable_terms(problem, mh, ml, close_at_eod=eod, fee=fee)
        cross = jnp.matmul(f, g.T, precision=jax.lax.Precision.HIGHEST)  # no TF32 on accelerators
        return cross + r[:, None] + s[None, :]

    return by_policy(close_at_eod, values)


def knife_edges(actual, pred, mults, lo_clamp, hi_clamp, active):
    """Which of ``mults (N,)`` put an active day's unclamped shifted level exactly on its extreme.

    ``pred + m == actual`` in float32 (PF's own sum) with ``lo_clamp < pred + m < hi_clamp``, on a
    day where ``active`` (some position is non-zero): the knife edges of the module docstring.

    Args:
      actual, pred, active: ``(..., days)`` (flattened): ``h, hp`` (or ``l, lp``) and the day mask.
      mults: ``(N,)`` candidate multipliers of this axis.
      lo_clamp, hi_clamp: PF's clamp of the level (``0, 10`` for ``hp``; ``-1, 0`` for ``lp``).

    Returns:
      bool ``(N,)``.
    """
    a, p, act = (jnp.ravel(x) for x in (actual, pred, active))
    x = p[None, :] + mults[:, None]
    tie = (x == a[None, :]) & (x > lo_clamp) & (x < hi_clamp) & act[None, :]
    return jnp.any(tie, axis=-1)


def knife_masks(problem: MultiplierProblem, mh, ml):
    """``(knife_edges of mh (Nh,), knife_edges of ml (Nl,))`` over all days of ``problem``."""
    active = jnp.any(problem.positions != 0, axis=-2)
    return (
        knife_edges(problem.high, problem.high_pred, mh, 0.0, 10.0, active),
        knife_edges(problem.low, problem.low_pred, ml, -1.0, 0.0, active),
    )


def robust_grid_values(problem: MultiplierProblem, mh, ml, *, close_at_eod, fee, separable=False):
    """``J`` on the grid ``mh x ml`` summed over any leading batch axes, ``-inf`` on knife edges and NaN.

    ``separable=True`` uses :func:`separable_grid_values` (faster, float32 summation order differs),
    else :func:`grid_values`. Returns ``(Nh, Nl)``.
    """
    kw = dict(close_at_eod=close_at_eod, fee=fee)
    one = (lambda p: separable_grid_values(p, mh, ml, **kw)) if separable else (lambda p: grid_values(p, mh, ml, **kw))
    batch_ndim = problem.close.ndim - 1
    for _ in range(batch_ndim):
        one = jax.vmap(one)
    values = jnp.sum(one(problem), axis=tuple(range(batch_ndim)))
    kh, kl = knife_masks(problem, mh, ml)
    bad = kh[:, None] | kl[None, :] | jnp.isnan(values)
    return jnp.where(bad, -jnp.inf, values)


def robust_objective(mults, problem: MultiplierProblem, *, close_at_eod=False, fee=TRADING_FEE):
    """:func:`exact_objective`, or ``-inf`` where ``mults`` sits on a knife edge (or ``J`` is NaN)."""
    m = jnp.asarray(mults, jnp.float32)
    v = exact_objective(m, problem, close_at_eod=close_at_eod, fee=fee)
    kh, kl = knife_masks(problem, m[:1], m[1:])
    return jnp.where(kh[0] | kl[0] | jnp.isnan(v), -jnp.inf, v)


def best_on_grid(values, mh, ml):
    """The best point of ``values (Nh, Nl)`` over ``mh x ml`` by the tie rule of :mod:`jaxsim.sim.ties`
    (values within a few float32 steps of the best are tied: smallest ``|mh| + |ml|``, then the
    smaller ``mh``, then ``ml`` where the axes ascend); NaN loses.

    Returns ``((2,) point, its value)``.
    """
    idx = ties.choose(values, ties.multiplier_size(mh[:, None], ml[None, :]))
    i, j = jnp.unravel_index(idx, values.shape)
    return jnp.stack([mh[i], ml[j]]), jnp.where(jnp.isnan(values), -jnp.inf, values)[i, j]


def exact_objective(mults, problem: MultiplierProblem, *, close_at_eod=False, fee=TRADING_FEE):
    r"""Exact objective ``J(m)`` summed over any leading batch axes of ``problem``.

    Args:
      mults: ``(2,)`` multipliers ``(mh, ml)``.
      problem: a :class:`MultiplierProblem`, optionally with leading batch axes.
      close_at_eod: keyword-only PF mode: a static bool, or a traced bool scalar (both policies'
        sums computed and selected, :func:`jaxsim.sim.profit.by_policy`; vmappable over policies).
      fee: keyword-only fee per unit of position.

    Returns:
      float32 scalar ``sum_batch sum_p sum_i PF``.
    """
    m = jnp.asarray(mults, jnp.float32)
    args = (
        problem.close[..., None, :],
        problem.high[..., None, :],
        problem.high_pred[..., None, :] + m[0],
        problem.low[..., None, :],
        problem.low_pred[..., None, :] + m[1],
        problem.positions,
    )
    return by_policy(close_at_eod, lambda eod: jnp.sum(profit_values(*args, close_at_eod=eod, fee=fee)))


def surrogate_objective(mults, problem: MultiplierProblem, *, temperature, close_at_eod=False, fee=TRADING_FEE):
    r"""Smooth objective ``J_T(m) = sum_batch sum_p sum_i PF_T`` (:mod:`jaxsim.sim.surrogate`).

    Differentiable in ``mults`` (use ``jax.grad``); ``J_T -> J`` pointwise as ``T -> 0``.

    Args:
      mults: ``(2,)`` multipliers ``(mh, ml)``.
      problem: a :class:`MultiplierProblem`, optionally with leading batch axes.
      temperature: keyword-only relaxation width ``T`` in return units.
      close_at_eod: keyword-only static bool, or a traced bool (:func:`jaxsim.sim.profit.by_policy`).
      fee: keyword-only fee per unit of position.

    Returns:
      float32 scalar.
    """
    m = jnp.asarray(mults, jnp.float32)
    args = (
        problem.close[..., None, :],
        problem.high[..., None, :],
        problem.high_pred[..., None, :] + m[0],
        problem.low[..., None, :],
        problem.low_pred[..., None, :] + m[1],
        problem.positions,
    )
    return by_policy(
        close_at_eod,
        lambda eod: jnp.sum(soft_profit_values(*args, temperature=temperature, close_at_eod=eod, fee=fee)),
    )
