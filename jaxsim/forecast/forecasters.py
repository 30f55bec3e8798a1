"""Forecasters behind one small interface: one-step forecasts at every origin of a forecast grid.

The interface (:class:`Forecaster`, :class:`Forecast`, keys) is :mod:`jaxsim.forecast.interface`.

Kinds: :func:`naive` (zero return), :func:`historical_mean` (mean of the context's valid returns),
:func:`volatility` (a zero-mean Gaussian with the rolling historical volatility),
:func:`from_function` (a user JAX function, vmapped), :func:`toto` (converted Toto weights),
:func:`kronos` (see :mod:`jaxsim.forecast.kronos_forecaster`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtri

from jaxsim.errors import ConfigError
from jaxsim.forecast.grid import ContextGroup, ForecastGrid, context_groups, gather_contexts
from jaxsim.forecast.interface import (
    PER_CONTEXT,
    PREFIX,
    SERIES_DRAWS,
    SERIES_FEW_DRAWS,
    SERIES_FEW_VALUES,
    Forecast,
    Forecaster,
    ForecastSummary,
    context_keys,
    origin_realised,
    register_forecaster,
    summarize_draws,
    summarize_forecast,
    target_returns,
)
from jaxsim.forecast.kronos_forecaster import kronos
from jaxsim.forecast.prefix import is_prefix_shareable, prefix_mixtures
from jaxsim.models.registry import default_weights_dir
from jaxsim.models.toto import forecast as toto_forecast
from jaxsim.models.toto.checkpoint import load_toto

__all__ = [
    "NaiveForecaster",
    "HistoricalMeanForecaster",
    "VolatilityForecaster",
    "FunctionForecaster",
    "TotoForecaster",
    "naive",
    "historical_mean",
    "volatility",
    "default",
    "from_function",
    "toto",
    "kronos",
    "DRAW_CHUNK",
    "DEMO_LABEL",
]

# Origin-target entries drawn per step (lax.map): jax.random.gamma's rejection loop runs until the
# slowest lane of its batch accepts and touches every lane each round, so 8 x 3072 lanes (cache-sized)
# draw ~2.5x faster on CPU than one batch of all N x S lanes, bit-for-bit the same values.
DRAW_CHUNK = 8
# How reports name the embedded default model: a small demo model, not the official Toto.
DEMO_LABEL = "jaxsim demo model (Toto architecture, trained on the bundled samples; not the official Toto)"


@register_forecaster
class NaiveForecaster(Forecaster):
    """Zero-return baseline: every forecast is 0 (tomorrow looks like today)."""

    params: Any = ()
    kind = "naive"
    padding_invariant = True

    def forecast(self, stock, grid, targets, key):  # no contexts to gather (N x T at the full history)
        return Forecast(point=jnp.zeros((len(targets), grid.n_origins), jnp.float32))

    def forecast_group(self, context, valid, keys):
        return Forecast(point=jnp.zeros(context.shape[:2], jnp.float32))


@register_forecaster
class HistoricalMeanForecaster(Forecaster):
    """Mean of the context's valid returns (the drift baseline)."""

    params: Any = ()
    kind = "historical_mean"
    padding_invariant = True

    def forecast_group(self, context, valid, keys):
        count = jnp.maximum(valid.sum(-1), 1).astype(jnp.float32)
        return Forecast(point=jnp.where(valid[None], context, 0.0).sum(-1) / count[None])


def gaussian_quantile_draws(num_samples: int) -> jax.Array:
    """``(S,)`` standard normal quantiles at the midpoints ``(i - 1/2)/S``, made exactly symmetric.

    A deterministic ensemble (no key): its empirical CRPS and quantiles approach the Gaussian's as S
    grows, and each draw's mirror is its exact negative, so a symmetric aggregation (mean, median,
    trimmed mean) of ``sigma * draws`` is 0 up to float rounding (:meth:`VolatilityForecaster.forecast_summary`).
    """
    half = ndtri((jnp.arange(num_samples // 2, dtype=jnp.float32) + 0.5) / num_samples)  # the lower half, < 0
    middle = jnp.zeros((num_samples % 2,), jnp.float32)
    return jnp.concatenate([half, middle, -half[::-1]])


class _DrawCount:
    """Draws per context from the ``num_samples`` field (Toto, the volatility baseline)."""

    def draws_per_context(self):
        return self.num_samples

    def with_draws_per_context(self, num_samples):
        if int(num_samples) < 1:
            raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
        return dataclasses.replace(self, num_samples=int(num_samples))


@register_forecaster
class VolatilityForecaster(_DrawCount, Forecaster):
    """Historical-volatility baseline: the next return is ``N(0, sigma^2)``, sigma the sample standard
    deviation (ddof 1) of the context's last ``window`` valid returns.

    Mean 0, not the rolling mean: a 20-day mean of daily returns is mostly noise (its standard error
    is sigma/sqrt(20), several times any real daily drift), so the point forecast is the naive one and
    what this baseline adds is the spread: CRPS and interval coverage that a forecaster's distribution
    has to beat. The distribution is given as ``num_samples`` Gaussian quantile draws
    (:func:`gaussian_quantile_draws`, no randomness). A context with fewer than two valid returns has
    sigma 0 (every draw 0, the naive forecast).
    """

    window: int = 20
    num_samples: int = 511
    params: Any = ()
    kind = "volatility"
    padding_invariant = True

    def series_forecaster(self, n_values):
        # the P&L series is forecast by the median of the first 256 (or of 512) draws, the original's
        # counts: draw exactly those so the median is the ensemble's own (0)
        return self.with_draws_per_context(SERIES_FEW_DRAWS if n_values < SERIES_FEW_VALUES else SERIES_DRAWS)

    def _draws(self, context: jax.Array, valid: jax.Array) -> jax.Array:
        """``(X, n, S)`` draws of contexts ``(X, n, L)`` whose newest value is last (``valid`` ``(n, L)``)."""
        context, valid = context[..., -self.window :], valid[:, -self.window :]
        count = valid.sum(-1).astype(jnp.float32)[None]  # (1, n)
        values = jnp.where(valid[None], context, 0.0)
        mean = values.sum(-1) / jnp.maximum(count, 1.0)
        deviation = jnp.where(valid[None], context - mean[..., None], 0.0)
        variance = jnp.square(deviation).sum(-1) / jnp.maximum(count - 1.0, 1.0)
        sigma = jnp.where(count >= 2, jnp.sqrt(variance), 0.0)
        return sigma[..., None] * gaussian_quantile_draws(self.num_samples)

    def forecast(self, stock, grid, targets, key):
        del key  # deterministic draws
        # only the last `window` returns of each context are read: gather those, not whole histories
        context, valid = gather_contexts(target_returns(stock.prices, targets), grid, self._window_group(grid))
        return Forecast(samples=self._draws(context, valid))

    def _window_group(self, grid: ForecastGrid) -> ContextGroup:
        return ContextGroup(0, grid.n_origins, self.window)

    def forecast_summary(self, stock, grid, targets, key, aggregate_spec, chunk=None):
        del chunk
        forecast = self.forecast(stock, grid, targets, key)
        summary = summarize_forecast(forecast, origin_realised(stock, grid, targets), aggregate_spec)
        # a symmetric aggregation of the symmetric draws is 0: drop the float rounding, whose sign
        # would otherwise be a direction the strategies trade on
        scale = forecast.samples[..., -1]  # the largest draw, sigma * z_max
        point = jnp.where(jnp.abs(summary.point) <= 1e-5 * scale, 0.0, summary.point)
        return ForecastSummary(point, *summary[1:])

    def forecast_group(self, context, valid, keys):
        del keys
        return Forecast(samples=self._draws(context, valid))


@register_forecaster
class FunctionForecaster(Forecaster):
    """A user-supplied pure JAX function ``fn(context (L,), valid (L,), key) -> (S,) or ()``.

    All contexts are left-padded to the longest one (one group): ``fn`` must honour ``valid``.
    A scalar output is a point forecast; a ``(num_samples,)`` output is a vector of draws.
    """

    fn: Callable = None
    num_samples: int | None = None
    params: Any = ()
    kind = "function"

    def defined_by_jaxsim(self):
        return False  # the user's fn may change without its name changing

    def draws_per_context(self):
        return self.num_samples

    def forecast_group(self, context, valid, keys):
        per_context = jax.vmap(self.fn, in_axes=(0, 0, 0))  # over origins
        out = jax.vmap(per_context, in_axes=(0, None, 0))(context, valid, keys)  # over targets
        out = jnp.asarray(out, jnp.float32)
        if out.ndim == 2:
            return Forecast(point=out)
        if out.ndim != 3 or (self.num_samples is not None and out.shape[-1] != self.num_samples):
            raise ConfigError(
                f"from_function: fn must return a scalar or ({self.num_samples},) draws per context, "
                f"got per-context shape {out.shape[2:]}"
            )
        return Forecast(samples=out)


@register_forecaster
class TotoForecaster(_DrawCount, Forecaster):
    """Toto one-step forecasts: S draws per origin from the next-step Student-T mixture.

    Two paths to the mixtures (:meth:`forecast_path`), the same draws from them:

    * ``"prefix"`` (no context cap, :mod:`jaxsim.forecast.prefix`): at most 64 forward passes per
      target, one per class of context length mod 64, whatever N is;
    * ``"per-context"`` (a context cap: a sliding window is no prefix of the next one): contexts are
      grouped by their padded length (next multiple of the patch, 64), exactly as the official
      forecaster pads each one alone; a group of n origins over X targets is one forward of batch X*n.

    Because the forecast horizon is one step (<= one patch), all S sample chains of the official
    sampler would see the same prefill output, so one forward plus S draws from the last position's
    mixture has the official distribution (docs/models.md#toto-one-step-sampling). Origin t of
    target X draws with the key of :func:`jaxsim.forecast.interface.context_keys` on both paths.

    ``fast_sampler`` (static) picks :mod:`jaxsim.models.sampling`'s categorical and gamma draws (the
    default) or jax.random's own; both give the same values (:func:`~jaxsim.models.toto.forecast.sample_mixture`).
    """

    config: Any = None
    num_samples: int = 3072
    params: Any = None
    fast_sampler: bool = True
    label: str | None = None  # what reports call it (None: "toto"); default() names the demo model
    kind = "toto"
    padding_invariant = True

    @property
    def pad_multiple(self):
        return int(self.config.patch_size)

    def series_forecaster(self, n_values):
        # The original forecasts a strategy's P&L series with 512 draws (256 for fewer than 7 values).
        # Those are drawn once per program: jax.random's samplers (the same values) keep the program
        # ~2,400 ops smaller than the fast ones, for ~3 ms more run time.
        draws = SERIES_FEW_DRAWS if n_values < SERIES_FEW_VALUES else SERIES_DRAWS
        return dataclasses.replace(self.with_draws_per_context(draws), fast_sampler=False)

    def forecast_path(self, grid: ForecastGrid) -> str:
        return PREFIX if is_prefix_shareable(grid, self.config) else PER_CONTEXT

    def mixtures(self, stock, grid: ForecastGrid, targets: tuple[str, ...]):
        """Next-step mixture of every origin and target (leading ``(X, N+6)``), by :meth:`forecast_path`."""
        returns = target_returns(stock.prices, targets)
        if self.forecast_path(grid) == PREFIX:
            return prefix_mixtures(self.params, self.config, returns, grid)
        parts = []
        for group in context_groups(grid, self.pad_multiple):  # static: at most a few padded lengths
            context, valid = gather_contexts(returns, grid, group)
            n_targets, n, length = context.shape
            flat_valid = jnp.broadcast_to(valid[None], context.shape).reshape(n_targets * n, length)
            mix = toto_forecast.next_step_mixture(
                self.params, self.config, context.reshape(n_targets * n, length), flat_valid
            )
            parts.append(jax.tree.map(lambda a: a.reshape((n_targets, n) + a.shape[1:]), mix))
        return jax.tree.map(lambda *a: jnp.concatenate(a, axis=1), *parts)

    def _draw_one(self, key, mixture):
        """The per-context sampler: S draws of one mixture (a batch of one distribution)."""
        one = jax.tree.map(lambda a: a[None], mixture)
        return toto_forecast.sample_mixture(key, one, self.num_samples, self.fast_sampler)[0]

    def _draws(self, keys, mixture, chunk=DRAW_CHUNK):
        """``(..., S)`` draws of every entry of ``keys`` (leading axes shared with ``mixture``)."""
        shape = keys.shape
        flat_keys = keys.reshape(-1)
        flat = jax.tree.map(lambda a: a.reshape((flat_keys.shape[0],) + a.shape[len(shape) :]), mixture)
        draws = jax.lax.map(lambda km: self._draw_one(*km), (flat_keys, flat), batch_size=chunk)
        return draws.reshape(shape + (self.num_samples,))

    def forecast(self, stock, grid, targets, key):
        keys = context_keys(key, grid, targets, ContextGroup(0, grid.n_origins, 0))  # (X, N+6)
        return Forecast(samples=self._draws(keys, self.mixtures(stock, grid, targets)))

    def forecast_summary(self, stock, grid, targets, key, aggregate_spec, chunk=None):
        keys = context_keys(key, grid, targets, ContextGroup(0, grid.n_origins, 0))
        return summarize_draws(
            self._draw_one,
            keys,
            self.mixtures(stock, grid, targets),
            aggregate_spec,
            DRAW_CHUNK if chunk is None else chunk,
            origin_realised(stock, grid, targets),
        )

    def forecast_group(self, context, valid, keys):
        n_targets, n, length = context.shape
        flat = context.reshape(n_targets * n, length)
        flat_valid = jnp.broadcast_to(valid[None], (n_targets, n, length)).reshape(n_targets * n, length)
        mixture = toto_forecast.next_step_mixture(self.params, self.config, flat, flat_valid)
        draws = self._draws(keys.reshape(n_targets * n), mixture)
        return Forecast(samples=draws.reshape(n_targets, n, self.num_samples))


def naive() -> NaiveForecaster:
    """Zero-return forecaster: predicts r_X[t] = 0 for every target and origin."""
    return NaiveForecaster()


def historical_mean() -> HistoricalMeanForecaster:
    """Forecasts r_X[t] as the mean of the context's returns r_X[1..t-1] (capped by max_context)."""
    return HistoricalMeanForecaster()


def volatility(window: int = 20, num_samples: int = 511) -> VolatilityForecaster:
    """Historical-volatility Gaussian baseline: r_X[t] ~ N(0, sigma_t^2), sigma_t the standard deviation
    (ddof 1) of the last ``window`` returns r_X[t-window..t-1] (fewer at the start of the history or
    under a shorter context cap).

    Args:
      window: returns in the rolling window (default 20, one trading month).
      num_samples: Gaussian quantile draws per context (odd keeps a 0 draw in the middle).

    Returns:
      A :class:`VolatilityForecaster` (frozen: equal settings reuse the compiled program).
    """
    if int(window) < 2:
        raise ConfigError(f"volatility: window must be >= 2 returns, got {window}")
    if int(num_samples) < 1:
        raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
    return VolatilityForecaster(window=int(window), num_samples=int(num_samples))


def from_function(fn: Callable, num_samples: int | None = None) -> FunctionForecaster:
    """Wrap a pure JAX function as a forecaster.

    Args:
      fn: ``fn(context, valid, key)`` with ``context`` a float32 ``(L,)`` left-padded vector of returns
        (zeros where padded), ``valid`` its bool mask and ``key`` a per-context PRNG key; it returns
        ``num_samples`` draws ``(S,)`` or a scalar point forecast. jaxsim vmaps it over origins and
        targets; it must be traceable (no Python branches on values). Keep ``fn`` the same object
        between calls to reuse the compiled program.
      num_samples: the number of draws ``fn`` returns (None for a point forecast; checked).

    Returns:
      A :class:`FunctionForecaster`.
    """
    if not callable(fn):
        raise ConfigError("from_function needs a callable fn(context, valid, key)")
    return FunctionForecaster(fn=fn, num_samples=num_samples)


def toto(weights_dir=None, *, config=None, params=None, num_samples: int = 3072) -> TotoForecaster:
    """Toto forecaster from a converted weight folder (``weights/<name>/``) or an in-memory model.

    Args:
      weights_dir: folder written by the Toto converter (``config.json``, ``params.safetensors``).
      config: a ``TotoConfig`` (with ``params``) instead of a folder, e.g. from ``init_toto``.
      params: the parameter pytree matching ``config``.
      num_samples: draws per context S (the original's default 3072).

    Returns:
      A :class:`TotoForecaster`.
    """
    if weights_dir is not None:
        config, params = load_toto(weights_dir)
    if config is None or params is None:
        raise ConfigError("toto() needs weights_dir, or both config and params")
    if num_samples < 1:
        raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
    return TotoForecaster(config=config, num_samples=int(num_samples), params=params)


def default(num_samples: int = 3072) -> TotoForecaster:
    """The embedded default forecaster: a small Toto-architecture model trained by jaxsim on the
    bundled public-domain sample data (``weights/jaxsim-toto-tiny``, see its MODEL_CARD.md). It lets
    the pipeline run offline with real forecasts; it is not the official Toto."""
    return dataclasses.replace(toto(default_weights_dir(), num_samples=num_samples), label=DEMO_LABEL)
