"""Masked reductions over the last axis: the building blocks of every statistic in :mod:`jaxsim.stats`.

A daily series is a ``(..., T)`` array plus a boolean validity mask of the same shape (missing days,
days before a strategy's first fit, padding to a common length). Every statistic treats a masked day
as if it had been deleted from the series; non-finite values are masked too. Reductions run over the
last axis, so ``(n_strategies, T)`` inputs work directly and everything also vmaps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = [
    "valid_mask",
    "masked_count",
    "masked_sum",
    "masked_mean",
    "masked_var",
    "masked_std",
    "masked_skew_kurtosis",
    "compress",
]

Array = jax.Array


def valid_mask(x: Array, mask: Array | None = None) -> Array:
    """``mask & isfinite(x)`` (``isfinite(x)`` when mask is None), broadcast to ``x.shape``."""
    finite = jnp.isfinite(x)
    return finite if mask is None else finite & jnp.broadcast_to(jnp.asarray(mask, bool), x.shape)


def masked_count(mask: Array) -> Array:
    """Number of valid days (int32) over the last axis."""
    return jnp.sum(mask, axis=-1, dtype=jnp.int32)


def masked_sum(x: Array, mask: Array) -> Array:
    """Sum of the valid days over the last axis (masked days contribute 0, NaN included)."""
    return jnp.sum(jnp.where(mask, x, 0), axis=-1)


def masked_mean(x: Array, mask: Array) -> Array:
    """Mean of the valid days over the last axis; NaN when there are none."""
    n = masked_count(mask)
    return jnp.where(n > 0, masked_sum(x, mask) / jnp.maximum(n, 1).astype(x.dtype), jnp.nan)


def masked_var(x: Array, mask: Array, ddof: int = 0) -> Array:
    r"""Variance of the valid days, :math:`\sum (x - \bar x)^2 / (n - \mathrm{ddof})`; NaN when n <= ddof."""
    n = masked_count(mask)
    mean = masked_mean(x, mask)
    ss = masked_sum(jnp.square(x - mean[..., None]), mask)
    return jnp.where(n > ddof, ss / jnp.maximum(n - ddof, 1).astype(x.dtype), jnp.nan)


def masked_std(x: Array, mask: Array, ddof: int = 0) -> Array:
    """Square root of :func:`masked_var`."""
    return jnp.sqrt(masked_var(x, mask, ddof))


def masked_skew_kurtosis(x: Array, mask: Array) -> tuple[Array, Array]:
    r"""Population skewness :math:`m_3/m_2^{3/2}` and (non-excess) kurtosis :math:`m_4/m_2^2`.

    :math:`m_k = n^{-1}\sum (x-\bar x)^k` over the valid days (the moments of Bailey & Lopez de
    Prado's PSR; a Gaussian has kurtosis 3). NaN when the variance is 0.
    """
    mean = masked_mean(x, mask)
    n = jnp.maximum(masked_count(mask), 1).astype(x.dtype)
    d = x - mean[..., None]
    m2 = masked_sum(d**2, mask) / n
    m3 = masked_sum(d**3, mask) / n
    m4 = masked_sum(d**4, mask) / n
    ok = m2 > 0
    safe = jnp.where(ok, m2, 1.0)
    return jnp.where(ok, m3 / safe**1.5, jnp.nan), jnp.where(ok, m4 / safe**2, jnp.nan)


def compress(x: Array, mask: Array) -> tuple[Array, Array]:
    """Move the valid days of a ``(T,)`` series to the front, in order; the rest become 0.

    Returns ``(compressed (T,), n_valid)``: a static-shape stand-in for ``x[mask]`` (the valid days
    are ``compressed[:n_valid]``). Used where a statistic needs consecutive valid days (lags, blocks).
    """
    order = jnp.argsort(~mask, stable=True)
    n = masked_count(mask)
    return jnp.where(jnp.arange(x.shape[-1]) < n, jnp.where(mask, x, 0)[order], 0), n
