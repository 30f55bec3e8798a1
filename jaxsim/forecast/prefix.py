"""Prefix-shared Toto forecasts: every origin of an expanding walk-forward from at most P passes per target.

Origin t forecasts r_X[t] from the context r_X[1..t-1] (length t-1), left-padded with zeros to the
next multiple of the patch P (the official forecaster's rule, :mod:`jaxsim.forecast.grid`). Two
contexts whose lengths agree modulo P get the same left padding, and the shorter one is a prefix of
the longer (both start at r_X[1]). Toto is causal at patch granularity, so one forward pass over the
longest context of a length class gives, at token n (sub-step 0), the next-step mixture of the
class's context that ends with patch n
(:func:`jaxsim.models.toto.forecast.prefix_step_mixtures`). An expanding walk-forward (no context
cap) therefore needs at most P passes per target, whatever N is: ``min(P, N+6)`` classes, each one
pass over about the full history.

The passes are batched by padded length (the class longest contexts are the most recent
``min(P, N+6)`` origins, so at most two padded lengths) and only the tokens that end an origin's
context go through the unembedding and head. :class:`jaxsim.forecast.forecasters.TotoForecaster`
draws from these mixtures with the per-context keys of :func:`jaxsim.forecast.interface.context_keys`
and its per-context sampler, so an origin's draws do not depend on N or on the path taken (up to
float rounding of the mixture).

The global-stabilisation clamp of the scaler is the one statistic of the whole context: the affine
scale of each origin is clamped with its own prefix statistics (exact), and
:func:`prefix_clamp_exact` reports, per origin, whether that origin's clamp leaves every one of
its patches unchanged (then the shared pass input equals the origin's own input). With the Toto
scaler settings (min scale 0.1, exponent 10) it is true unless |returns| reach about 3e9.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.errors import ConfigError
from jaxsim.forecast.grid import ForecastGrid, row_positions
from jaxsim.models.toto.forecast import prefix_scale, prefix_step_mixtures
from jaxsim.models.toto.model import causal_patch_stats

__all__ = [
    "PrefixPass",
    "is_prefix_shareable",
    "prefix_plan",
    "prefix_mixtures",
    "prefix_clamp_exact",
    "series_prefix_mixtures",
]

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class PrefixPass:
    """One batched forward: the longest contexts of the length classes that share a padded length.

    Attributes:
      length: padded length L of every row (a multiple of P).
      row_origins: ``(m,)`` origin t of each row's context r_X[t-L..t-1] (valid from r_X[1] on).
      served: ``(n,)`` indices o (into ``grid.origins``) of the origins this pass serves.
      rows: ``(n,)`` row of each served origin.
      tokens: ``(n,)`` token that ends each served origin's padded context.
    """

    length: int
    row_origins: np.ndarray
    served: np.ndarray
    rows: np.ndarray
    tokens: np.ndarray


def is_prefix_shareable(grid: ForecastGrid, config=None) -> bool:
    """Whether every origin of ``grid`` can be served by the prefix-shared passes.

    Needs an expanding context (no ``max_context`` cap: a sliding window is not a prefix of the next
    one). With a Toto ``config`` it also checks that the scaler's upper clamp bound cannot bind,
    i.e. that the longest count T satisfies sqrt(T) <= 10^e (sigma_j <= sqrt(c) sigma_g).
    """
    if grid.max_context is not None:
        return False
    if config is not None and config.stabilize_with_global:
        return grid.n_rows <= 10.0 ** (2 * config.scale_factor_exponent)
    return True


def prefix_plan(grid: ForecastGrid, patch: int) -> tuple[PrefixPass, ...]:
    """Static plan: length classes (context length mod P), their passes, and each origin's token.

    Returns:
      Passes ordered by padded length; their ``served`` indices tile ``[0, N+6)``.
    """
    if not is_prefix_shareable(grid):
        raise ConfigError(
            "prefix-shared forecasts need an expanding context (max_context=None); "
            "use the per-context path for a capped context"
        )
    if patch < 1:
        raise ConfigError(f"patch size must be >= 1, got {patch}")
    # origin t's context r_X[1..t-1] has t-1 values: a row ending at r_X[t-1] is a row of origin t
    return tuple(
        PrefixPass(length, longest + 1, served, rows, tokens)
        for length, longest, served, rows, tokens in _length_classes(grid.origins - 1, patch)
    )


def _length_classes(lengths: np.ndarray, patch: int):
    """Passes over contexts of ``lengths`` (each a prefix of the longest one, all ending where their
    values end): ``(L, longest, served, rows, tokens)`` per padded length L, ``longest`` the context
    length of each row (the longest of its class, length mod ``patch``)."""
    residue = lengths % patch
    longest = {int(c): int(lengths[residue == c].max()) for c in np.unique(residue)}
    padded_of_class = {c: -(-n // patch) * patch for c, n in longest.items()}
    passes = []
    for length in sorted(set(padded_of_class.values())):
        classes = sorted(c for c, v in padded_of_class.items() if v == length)
        row_lengths = np.array([longest[c] for c in classes])
        served = np.flatnonzero(np.isin(residue, classes))
        rows = np.array([classes.index(int(residue[o])) for o in served])
        # a context's padded length is L minus the whole patches it lacks against its row
        own_padded = length - (row_lengths[rows] - lengths[served])
        passes.append((length, row_lengths, served, rows, own_padded // patch - 1))
    return passes


def _pass_contexts(returns: Array, grid: ForecastGrid, ps: PrefixPass) -> tuple[Array, Array]:
    """``(X, m, L)`` rows r_X[t-L..t-1] (zeros before r_X[1]) and their ``(m, L)`` mask (invalid where a
    return is not finite: a length bucket's padding).

    The ``(m, L)`` indices are iota arithmetic in the program (not an embedded constant)."""
    index = row_positions(ps.row_origins - ps.length, ps.length)
    values = jnp.asarray(returns)[:, jnp.clip(index, 0, grid.n_rows - 1)]
    valid = (index >= 1) & jnp.all(jnp.isfinite(values), axis=0)
    return jnp.where(valid[None], values, 0.0).astype(jnp.float32), valid


def _per_pass(params, config, returns, grid):
    """(mixture, served) per pass, the mixture with a leading (X, n) layout."""
    n_targets = returns.shape[0]
    out = []
    for ps in prefix_plan(grid, config.patch_size):  # static: at most two padded lengths
        context, valid = _pass_contexts(returns, grid, ps)
        m = context.shape[1]
        flat = context.reshape(n_targets * m, ps.length)
        flat_valid = jnp.broadcast_to(valid[None], context.shape).reshape(n_targets * m, ps.length)
        # requested (row, token) pairs of all targets: row x*m + r
        rows = (np.arange(n_targets)[:, None] * m + ps.rows[None, :]).reshape(-1)
        tokens = np.broadcast_to(ps.tokens[None, :], (n_targets, ps.served.size)).reshape(-1)
        mixture, _ = prefix_step_mixtures(params, config, flat, flat_valid, rows, tokens)
        shape = (n_targets, ps.served.size)
        out.append((jax.tree.map(lambda a: a.reshape(shape + a.shape[1:]), mixture), ps.served))
    return out


def _in_origin_order(parts, served):
    """Concatenate per-pass ``(X, n, ...)`` arrays and put the origins back in grid order."""
    order = np.argsort(np.concatenate(served))
    return jnp.concatenate(parts, axis=1)[:, order]


def prefix_mixtures(params, config, returns: Array, grid: ForecastGrid):
    """Next-step Student-T mixture of every origin, from one pass per length class and target.

    Args:
      params: Toto parameters.
      config: a ``TotoConfig`` (static).
      returns: ``(X, T)`` r_X per target (row t = r_X[t]; r_X[0] is never read).
      grid: static geometry with ``max_context=None``.

    Returns:
      :class:`jaxsim.models.toto.forecast.Mixture` with ``(X, N+6, K)`` components and ``(X, N+6)``
      affine loc/scale; row o is the mixture of r_X[grid.origins[o]].
    """
    parts = _per_pass(params, config, returns, grid)
    served = [p[1] for p in parts]
    return jax.tree.map(lambda *a: _in_origin_order(a, served), *[p[0] for p in parts])


def prefix_clamp_exact(config, returns: Array, grid: ForecastGrid) -> Array:
    """Per origin, whether its scaler clamp leaves all its patches unchanged: bool ``(X, N+6)``.

    Where True the shared pass sees exactly the origin's own model input (see the module notes).
    Runs the scaler only.
    """
    n_targets = returns.shape[0]
    parts, served = [], []
    for ps in prefix_plan(grid, config.patch_size):
        context, valid = _pass_contexts(returns, grid, ps)
        valid = valid[None] & jnp.isfinite(context)
        x = jnp.where(valid, context, 0.0)
        stats = jax.vmap(jax.vmap(lambda a, w: causal_patch_stats(a, w, config)))
        _, sigma, sigma_g = stats(x, valid)  # (X, m, N)
        exact = jax.vmap(lambda s, g: prefix_scale(config, s, g, ps.rows, ps.tokens)[1])(sigma, sigma_g)
        parts.append(exact.reshape(n_targets, ps.served.size))
        served.append(ps.served)
    return _in_origin_order(parts, served)


def series_prefix_mixtures(params, config, values: Array, valid: Array):
    """Next-step mixture of every prefix of each series, from one pass per length class and series.

    Prefix m (m = 1..N) of series b is ``values[b, :m]``, left-padded with zeros to the next multiple
    of the patch P (the official rule for a context of m values). Prefixes whose lengths agree modulo
    P share that padding, so (as for the origins of :func:`prefix_mixtures`) one causal pass over the
    class's longest prefix serves all of them: ``min(P, N)`` passes per series, at most two padded
    lengths. Values past a series' own count (``valid`` False) are only ever read by longer
    prefixes' tokens.

    Args:
      params: Toto parameters.
      config: a ``TotoConfig`` (static).
      values: ``(B, N)`` series, oldest first, their values at the left (``valid`` a prefix of each row).
      valid: bool ``(B, N)``.

    Returns:
      :class:`jaxsim.models.toto.forecast.Mixture` with ``(B, N, K)`` components and ``(B, N)`` affine
      loc/scale; entry ``[b, m-1]`` is the mixture of the value after ``values[b, :m]``.
    """
    n_series, n = values.shape
    parts, served_all = [], []
    for length, row_lengths, served, rows, tokens in _length_classes(np.arange(1, n + 1), config.patch_size):
        index = row_positions(row_lengths - length, length)  # (m, L): values[end-L .. end-1]
        inside = index >= 0
        clipped = jnp.clip(index, 0, n - 1)
        context = jnp.where(inside[None], values[:, clipped], 0.0).astype(jnp.float32)  # (B, m, L)
        ok = inside[None] & valid[:, clipped]
        m = context.shape[1]
        flat_rows = (np.arange(n_series)[:, None] * m + rows[None, :]).reshape(-1)
        flat_tokens = np.broadcast_to(tokens[None, :], (n_series, served.size)).reshape(-1)
        mixture, _ = prefix_step_mixtures(
            params,
            config,
            context.reshape(n_series * m, length),
            ok.reshape(n_series * m, length),
            flat_rows,
            flat_tokens,
        )
        parts.append(jax.tree.map(lambda a: a.reshape((n_series, served.size) + a.shape[1:]), mixture))
        served_all.append(served)
    return jax.tree.map(lambda *a: _in_origin_order(a, served_all), *parts)
