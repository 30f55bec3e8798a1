r"""The MaxDiff multiplier objective: problems, the exact ``J`` and its smooth surrogate ``J_T``.

MaxDiff shifts the predicted levels by additive multipliers ``m = (mh, ml)`` in ``[-b, b]^2``
(``b = 0.03``) chosen to maximise

.. math::

    J(m) = \sum_p \sum_i PF(c_i, h_i, hp_i + mh, l_i, lp_i + ml, q_{p,i};\ eod, fee)

with ``q`` of shape ``(P, days)`` (``P = 1`` entry/exit; ``P = 2`` always-on: a buy row and a sell
row).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsim.errors import ConfigError
from jaxsim.sim.profit import MULTIPLIER_BOUND, TRADING_FEE, profit_values
from jaxsim.sim.surrogate import soft_profit_values

__all__ = ["BOUND", "MultiplierProblem", "make_problem", "exact_objective", "surrogate_objective",
           "grid_values", "best_on_grid"]

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
    if soft_temperature is None:
        pf = profit_values(*args, close_at_eod=close_at_eod, fee=fee)
    else:
        pf = soft_profit_values(*args, temperature=soft_temperature, close_at_eod=close_at_eod, fee=fee)
    return jnp.sum(pf, axis=(-2, -1))


def best_on_grid(values, mh, ml):
    """Argmax of ``values (Nh, Nl)``; exact ties go to the smallest ``|mh| + |ml|``; NaN loses.

    Returns ``((2,) point, value)``.
    """
    values = jnp.where(jnp.isnan(values), -jnp.inf, values)
    best = jnp.max(values)
    size = jnp.abs(mh)[:, None] + jnp.abs(ml)[None, :]
    idx = jnp.argmin(jnp.where(values >= best, size, jnp.inf))
    i, j = jnp.unravel_index(idx, values.shape)
    return jnp.stack([mh[i], ml[j]]), best


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
