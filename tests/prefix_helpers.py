"""Test-only helpers of the prefix-shared Toto path: a second sampler over its mixtures and its pass count.

The backtest draws through :class:`jaxsim.forecast.forecasters.TotoForecaster`; :func:`prefix_forecast`
draws the same way from :func:`jaxsim.forecast.prefix.prefix_mixtures` directly, so a test can compare
the two paths draw for draw.
"""

from __future__ import annotations

import jax

from jaxsim.errors import ConfigError
from jaxsim.forecast.grid import ContextGroup, ForecastGrid
from jaxsim.forecast.interface import Forecast, context_keys
from jaxsim.forecast.prefix import prefix_mixtures
from jaxsim.models.toto.forecast import sample_mixture

Array = jax.Array


def prefix_forecast(
    params, config, num_samples: int, returns: Array, grid: ForecastGrid, key: Array, targets: tuple[str, ...]
) -> Forecast:
    """Draws of r_X[t] at every origin via the prefix-shared passes.

    Args:
      params: Toto parameters.
      config: a ``TotoConfig`` (static).
      num_samples: S draws per origin (static).
      returns: ``(X, T)`` r_X per target, in the order of ``targets``.
      grid: static geometry with ``max_context=None``.
      key: the stock's PRNG key; origin t of target X draws with ``fold_in(fold_in(key, id_X), T-1-t)``.
      targets: static target names (their ids fix the keys).

    Returns:
      :class:`Forecast` with ``samples (X, N+6, S)``.
    """
    if returns.shape[0] != len(targets):
        raise ConfigError(f"returns has {returns.shape[0]} rows but {len(targets)} targets were named")
    mixture = prefix_mixtures(params, config, returns, grid)
    keys = context_keys(key, grid, targets, ContextGroup(0, grid.n_origins, 0))  # (X, N+6)

    def draw_one(k, m):  # the per-context sampler of TotoForecaster: a batch of one distribution
        return sample_mixture(k, jax.tree.map(lambda a: a[None], m), num_samples)[0]

    n_targets, n = keys.shape
    flat = jax.tree.map(lambda a: a.reshape((n_targets * n,) + a.shape[2:]), mixture)
    # a few origins per step: the gamma rejection loop of a small batch ends sooner (same values)
    draws = jax.lax.map(lambda km: draw_one(*km), (keys.reshape(n_targets * n), flat), batch_size=8)
    return Forecast(samples=draws.reshape(n_targets, n, num_samples))


def prefix_passes_floor(grid: ForecastGrid, patch: int) -> tuple[int, int]:
    """``(passes per target, padded length)`` of the prefix path: ``min(P, N+6)`` classes; the floor of
    the benchmark is P passes at the full padded length ceil((T-3)/P) P."""
    classes = min(patch, grid.n_origins)
    return classes, -(-(grid.n_rows - 3) // patch) * patch
