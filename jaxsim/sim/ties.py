r"""The tie rule of MaxDiff's choices (docs/backtest.md#tie-rule), written once.

MaxDiff and always-on choose among candidates: multiplier pairs ``(mh, ml)`` by the objective ``J``
(every optimizer of :mod:`jaxsim.optimize`) and the close-at-eod policy by ``sum(final)``
(:mod:`jaxsim.sim.maxdiff`). The same value computed in a different batch shape (``sim_chunk``, the
number of simulations vmapped together) may be rounded differently by XLA, so an exact comparison
between candidates that are mathematically tied picks differently from one batch to the next. Here
two values are **tied** when they are within a few float32 steps of each other,

.. math::

    |a - b| \le k\,\varepsilon\,\max(|a|, |b|, s),\qquad k = 16,\ \varepsilon = 2^{-23},\ s = 2^{-4}

(16 epsilons relative to the larger value, i.e. 16 to 32 of its ulps, and never less than
``2^-23``, about ``1.2e-7``: ``J`` is a float32 sum of
per-day returns of order 1e-2, whose rounding follows the partial sums rather than the possibly
cancelling total). Equal infinities are tied; NaN is never tied (callers map NaN to ``-inf``).

The rule: among the candidates tied with the best value, the smallest ``|mh| + |ml|`` wins; then
the earlier candidate (every chooser lists its candidates in an order fixed by the problem or by
this rule, never by raw values: a grid in row-major order over ascending axes, so the smaller
``mh``, then the smaller ``ml``). The eod policy: True only when its ``sum(final)`` beats False's by more than a tie.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["TIE_ULPS", "TIE_FLOOR", "tied", "beats", "prefer", "multiplier_size", "choose", "rank"]

TIE_ULPS = 16  # k: float32 epsilons (relative to the larger value) within which two values are tied
TIE_FLOOR = 2.0**-4  # s: the smallest magnitude the tolerance is relative to (return units)
_EPS = float(jnp.finfo(jnp.float32).eps)


def tied(a, b):
    """Whether ``a`` and ``b`` are tied (the module's tolerance; broadcasts)."""
    a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
    finite = jnp.isfinite(a) & jnp.isfinite(b)
    tol = TIE_ULPS * _EPS * jnp.maximum(jnp.maximum(jnp.abs(a), jnp.abs(b)), TIE_FLOOR)
    return (a == b) | (finite & (jnp.abs(a - b) <= tol))


def beats(new, old):
    """``new`` is larger than ``old`` by more than a tie (NaN never beats)."""
    return (new > old) & ~tied(new, old)


def prefer(new_value, new_size, old_value, old_size):
    """Whether a new candidate replaces the current one: it beats it, or ties it with a strictly
    smaller ``|mh| + |ml|`` (the current one is the earlier candidate)."""
    t = tied(new_value, old_value)  # once: beats() is (new > old) & ~t
    return ((new_value > old_value) & ~t) | (t & (new_size < old_size))


def multiplier_size(mh, ml):
    """``|mh| + |ml|``, the size the rule minimises among tied candidates (NaN counts as +inf)."""
    size = jnp.abs(jnp.asarray(mh, jnp.float32)) + jnp.abs(jnp.asarray(ml, jnp.float32))
    return jnp.where(jnp.isnan(size), jnp.inf, size)


def _best_and_ties(values):
    values = jnp.where(jnp.isnan(values), -jnp.inf, jnp.asarray(values, jnp.float32))
    return values, tied(values, jnp.max(values))


def choose(values, size):
    """Flat index of the rule's choice among ``values`` and ``size`` (same shape, any rank): tied
    with the best value, then the smallest size, then the lowest index. NaN values lose."""
    values, best = _best_and_ties(jnp.ravel(values))
    key = jnp.where(best, jnp.ravel(size), jnp.inf)
    i = jnp.argmin(key)
    return jnp.where(key[i] < jnp.inf, i, jnp.argmax(best))  # every tied size +inf: the first tied


def rank(values, size, k):
    """Flat indices of ``k`` candidates in the rule's order, the choice first: those tied with the
    best value by size (then index), then the rest by value (then index). ``k`` static, at most
    ``values.size``.

    One float32 ``top_k`` over composite keys: an int32 key whose bits, read as a positive normal
    float, keep its order (XLA:CPU's ``top_k`` is fast on float32, slow on int32). Tied candidates
    lie above everything, ordered by the bits of their size (exact below size 2); the rest by their
    value's bits in monotone order less the three lowest (values in one block of 8 ulps keep their
    index order).
    """
    values, best = _best_and_ties(jnp.ravel(values))
    vbits = jax.lax.bitcast_convert_type(values, jnp.int32)
    ordered = jnp.where(vbits >= 0, vbits, vbits ^ jnp.int32(0x7FFFFFFF))  # float order as int order
    rest = (ordered >> 3) + jnp.int32(_REST)  # in [2^23, 2^23 + 2^29)
    sbits = jax.lax.bitcast_convert_type(jnp.ravel(size).astype(jnp.float32), jnp.int32)  # sizes >= 0: monotone
    first = jnp.int32(_TIED + (1 << 30) - 1) - jnp.minimum(sbits, (1 << 30) - 1)  # in [_TIED, _TIED + 2^30)
    key = jax.lax.bitcast_convert_type(jnp.where(best, first, rest), jnp.float32)
    return jax.lax.top_k(key, k)[1]


_REST = (1 << 23) + (1 << 28)  # the smallest normal float's bits, plus half the range of ordered >> 3
_TIED = (1 << 23) + (1 << 29)  # above every rest key; _TIED + 2^30 stays below +inf's bits (0x7F800000)
