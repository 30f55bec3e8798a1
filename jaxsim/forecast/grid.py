"""The forecast grid: which contexts a walk-forward backtest forecasts, and how simulations slice them.

Geometry (docs/backtest.md#walk-forward-geometry, #rolling-origin-forecasts). A stock has T rows t = 0..T-1 and N
simulations. Simulation k ends at row ``e = T-2-k`` and needs one-step forecasts of ``r_X[e-6..e]``; the forecast of
``r_X[t]`` (origin t) is made from the context ``r_X[1..t-1]``. The context depends on t only, so all
N simulations together need the N+6 origins

.. math:: t \\in [T-N-7,\\; T-2], \\qquad o = t - (T-N-7) \\in [0, N+6),

and simulation k reads origins ``o = N-1-k .. N+5-k`` (index i = 0..6 of its prediction vector is the
forecast of ``r_X[e-6+i]``). The original forecast every (k, j) pair separately (N x 7 calls per
target) and only a disk cache made 6/7 of them repeats; here each unique context is forecast once.

Context layout. The official Toto forecaster left-pads each context with zeros (mask False) to the
next multiple of its patch (64), and extra padding changes its output (padded patches are attended
to). So contexts are grouped by padded length: because T and N are static, every origin's length and
padded length are static, and a group is a contiguous run of origins forecast as one batch whose
members each get exactly the padding they would get alone. N+6 <= 64 consecutive lengths span at most
two groups.

Everything here is static index arithmetic (numpy on the short per-row vectors, iota in the program for
the full index matrices) plus gathers; nothing loops over origins or simulations at run time.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.errors import ConfigError, InsufficientHistoryError
from jaxsim.layout import ORIGINS_PER_SIM

__all__ = [
    "ForecastGrid",
    "ContextGroup",
    "context_groups",
    "row_positions",
    "gather_contexts",
    "sim_forecast_index",
    "price_windows",
    "trim_start",
]


@dataclasses.dataclass(frozen=True)
class ForecastGrid:
    """Static walk-forward geometry of one stock (hashable: usable as a static jit argument).

    Attributes:
      n_rows: T, the number of daily rows.
      n_sims: N, the number of simulations (simulation k ends at row T-2-k).
      max_context: optional cap on the context length (the original uses the whole history: None).
    """

    n_rows: int
    n_sims: int
    max_context: int | None = None

    def __post_init__(self):
        if self.n_sims < 1:
            raise ConfigError(f"n_sims must be >= 1, got {self.n_sims}")
        if self.max_context is not None and self.max_context < 1:
            raise ConfigError(f"max_context must be >= 1 or None, got {self.max_context}")
        if self.first_origin < 2:
            need = self.n_sims + ORIGINS_PER_SIM + 2
            raise InsufficientHistoryError(
                f"{self.n_rows} rows are too few for {self.n_sims} simulations: the earliest origin "
                f"needs at least one context return, i.e. T >= N + 9 = {need}"
            )

    @property
    def n_origins(self) -> int:
        """N + 6 unique forecast origins."""
        return self.n_sims + ORIGINS_PER_SIM - 1

    @property
    def first_origin(self) -> int:
        """T - N - 7, the earliest origin (the first forecast target of the oldest simulation)."""
        return self.n_rows - self.n_sims - ORIGINS_PER_SIM

    @property
    def origins(self) -> np.ndarray:
        """Origins t = T-N-7 .. T-2 (int, ``(N+6,)``): origin t forecasts r_X[t]."""
        return np.arange(self.first_origin, self.n_rows - 1)

    @property
    def ends(self) -> np.ndarray:
        """Last row e_k = T-2-k of each simulation (``(N,)``, k = 0 first: the most recent)."""
        return self.n_rows - 2 - np.arange(self.n_sims)

    def context_lengths(self) -> np.ndarray:
        """Context length of each origin: t-1 returns r_X[1..t-1], capped at ``max_context``."""
        lengths = self.origins - 1
        if self.max_context is not None:
            lengths = np.minimum(lengths, self.max_context)
        return lengths


@dataclasses.dataclass(frozen=True)
class ContextGroup:
    """A contiguous run of origins sharing one padded context length.

    Attributes:
      start: index of the first origin of the group in ``ForecastGrid.origins``.
      stop: one past the last origin index.
      length: padded length L (a multiple of the pad multiple, >= every context length in the group).
    """

    start: int
    stop: int
    length: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def context_groups(grid: ForecastGrid, multiple: int | None) -> tuple[ContextGroup, ...]:
    """Group the origins by padded context length.

    With ``multiple = m`` each context of length n is padded on the left to ``ceil(n/m)*m`` (the
    official Toto rule for m = 64); origins with equal padded lengths form one group. With
    ``multiple=None`` all origins share one group padded to the longest context (for forecasters on
    which padding has no effect: naive, historical mean, user functions that honour the mask).

    Args:
      grid: the static geometry.
      multiple: pad multiple m, or None for a single group.

    Returns:
      Groups in origin order; their ``[start, stop)`` ranges tile ``[0, N+6)``.
    """
    lengths = grid.context_lengths()
    if multiple is None:
        return (ContextGroup(0, grid.n_origins, int(lengths.max())),)
    if multiple < 1:
        raise ConfigError(f"pad multiple must be >= 1, got {multiple}")
    padded = np.array([math.ceil(n / multiple) * multiple for n in lengths])
    groups, start = [], 0
    for i in range(1, grid.n_origins + 1):
        if i == grid.n_origins or padded[i] != padded[start]:
            groups.append(ContextGroup(start, i, int(padded[start])))
            start = i
    return tuple(groups)


def row_positions(starts, length: int) -> jax.Array:
    """int32 ``(n, length)``: row ``j`` is ``starts[j] + 0 .. starts[j] + length - 1``.

    ``starts`` is a short static vector; the full matrix is iota arithmetic in the program, so a
    compiled program carries no ``(n, length)`` index constant."""
    starts = jnp.asarray(np.asarray(starts), jnp.int32)
    return starts[:, None] + jax.lax.broadcasted_iota(jnp.int32, (starts.shape[0], length), 1)


def context_index(grid: ForecastGrid, group: ContextGroup) -> tuple[jax.Array, jax.Array]:
    """Gather indices of a group's left-padded contexts.

    Row j of the group is origin ``t = origins[start + j]``; position p of its padded context holds
    ``r_X[t - L + p]`` (so the last position is r_X[t-1]); it is valid when that index is >= 1 and
    within the context cap.

    Returns:
      ``(index, valid)``: int32 ``(size, L)`` (clipped into range) and bool ``(size, L)``.
    """
    t = grid.origins[group.start : group.stop]
    n = grid.context_lengths()[group.start : group.stop]
    index = row_positions(t - group.length, group.length)
    valid = index >= jnp.asarray(t - n, jnp.int32)[:, None]
    return jnp.clip(index, 0, grid.n_rows - 1), valid


def gather_contexts(returns: jax.Array, grid: ForecastGrid, group: ContextGroup) -> tuple[jax.Array, jax.Array]:
    """Left-padded contexts of one group, zeros where padded.

    Args:
      returns: r_X per target, shape ``(X, T)`` (row t = r_X[t]; r_X[0] is never read).
      grid: the static geometry.
      group: one group of :func:`context_groups`.

    Returns:
      ``(context, valid)``: float32 ``(X, size, L)`` and bool ``(size, L)``; a position where any
      target's return is not finite (the NaN rows a length bucket adds before a stock's first row)
      is invalid.
    """
    index, valid = context_index(grid, group)
    values = jnp.asarray(returns)[:, index]
    valid = valid & jnp.all(jnp.isfinite(values), axis=0)  # NaN rows: a length bucket's padding
    context = jnp.where(valid[None], values, 0.0).astype(jnp.float32)
    return context, valid


def sim_forecast_index(grid: ForecastGrid) -> np.ndarray:
    """Origin index of each simulation's 7 forecasts: ``(N, 7)``, row k = N-1-k .. N+5-k.

    Entry [k, i] is the origin of r_X[e_k - 6 + i].
    """
    k = np.arange(grid.n_sims)[:, None]
    return grid.n_sims - 1 - k + np.arange(ORIGINS_PER_SIM)[None, :]


def price_windows(prices: jax.Array, grid: ForecastGrid, window: int) -> tuple[jax.Array, jax.Array]:
    """Each simulation's last ``window`` price rows e-W+1..e, with a mask for rows before row 0.

    Args:
      prices: ``(T, F)`` per-row features ([open, high, low, close, volume]).
      grid: the static geometry.
      window: W rows.

    Returns:
      ``(windows, valid)``: ``(N, W, F)`` (invalid rows zero) and bool ``(N, W)``.
    """
    index = row_positions(grid.ends - window + 1, window)
    rows = jnp.asarray(prices)[jnp.clip(index, 0, grid.n_rows - 1)]
    valid = (index >= 0) & jnp.all(jnp.isfinite(rows), axis=-1)  # NaN rows: a length bucket's padding
    return jnp.where(valid[..., None], rows, 0.0), valid


def trim_start(n_rows: int, n_sims: int, max_context: int | None, window: int) -> int:
    """First row a capped backtest reads; rows before it can be dropped without changing any result.

    With a context cap C the earliest origin T-N-7 reads returns from row T-N-7-C on, which needs the
    price at row T-N-8-C; the oldest simulation's price window starts at T-1-N-W+1. Without a cap the
    whole history is read (0).
    """
    if max_context is None:
        return 0
    first = min(n_rows - n_sims - ORIGINS_PER_SIM - 1 - max_context, n_rows - n_sims - window)
    return max(0, first)
