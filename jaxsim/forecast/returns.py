"""Return transform and target frame of one simulation (docs/backtest.md#return-transform).

Prices become day-over-day fractional changes ``r_X[t] = X[t]/X[t-1] - 1``; the first row carries the
original's artefact ``r_X[0] = 1.0`` (never used downstream), a zero denominator gives 0 and NaN/inf
become 0. The target of row t is ``y[t] = r_X[t+1]``, so with clean data the frame holds
``y = (r_X[1], ..., r_X[e])`` and the validation block is its last 7 values, ``r_X[e-6..e]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["return_transform", "window_returns", "target_frame"]

Array = jax.Array


def _ratio_change(x: Array, prev: Array) -> Array:
    """x/prev - 1, with 0 where prev == 0 and 0 for any non-finite result."""
    safe = jnp.where(prev == 0, 1.0, prev)
    r = jnp.where(prev == 0, 0.0, x / safe - 1.0)
    return jnp.where(jnp.isfinite(r), r, 0.0)


def return_transform(prices: Array) -> Array:
    r"""Day-over-day fractional changes of one price series (pre_process_data).

    .. math::

        r_X[0] = 1,\qquad r_X[t] = X[t]/X[t-1] - 1\ (t \ge 1),\quad 0 \text{ if } X[t-1] = 0
        \text{ or the result is NaN/}\pm\infty.

    Args:
      prices: X, shape ``(T,)``.

    Returns:
      float32 ``(T,)``.

    Example:
      >>> import jax.numpy as jnp
      >>> [round(float(v), 6) for v in return_transform(jnp.array([100.0, 101.0, 0.0, 5.0, 4.0]))]
      [1.0, 0.01, -1.0, 0.0, -0.2]
    """
    x = jnp.asarray(prices, jnp.float32)
    r = _ratio_change(x[1:], x[:-1])
    return jnp.concatenate([jnp.ones((1,), jnp.float32), r])


def window_returns(prices: Array, valid: Array) -> Array:
    """:func:`return_transform` of a window that may start before the data does.

    Rows with ``valid`` False (before the start of the data) get 0; the first valid row gets the
    artefact 1.0, as row 0 of the data does in the original. The first row of the window has no
    predecessor here and is treated as a first data row (callers never read it).

    Args:
      prices: X over the window, shape ``(W,)``.
      valid: bool ``(W,)``; True from the first data row on.

    Returns:
      float32 ``(W,)``.
    """
    x = jnp.asarray(prices, jnp.float32)
    valid = jnp.asarray(valid, bool)
    prev_valid = jnp.concatenate([jnp.zeros((1,), bool), valid[:-1]])
    prev = jnp.concatenate([x[:1], x[:-1]])
    r = _ratio_change(x, prev)
    return jnp.where(valid, jnp.where(prev_valid, r, 1.0), 0.0)


def target_frame(prices: Array) -> Array:
    """Targets ``y[t] = r_X[t+1]``, t = 0..e-1 (the last row has no target), shape ``(T-1,)``."""
    return return_transform(prices)[1:]
