"""Forecasters behind one small interface: one-step forecasts at every origin of a forecast grid.

A forecaster is a frozen dataclass registered as a pytree: ``params`` (weights, possibly empty) is
its only dynamic field; everything else (model config, sample count, a user function) is static
metadata, so a forecaster can be passed straight into a jitted program and a second forecaster of
the same kind and config reuses the compiled program.

Every forecaster answers :meth:`Forecaster.forecast`: given one stock's arrays, the static grid and
targets, and a PRNG key, it returns :class:`Forecast` with either draws ``(X, N+6, S)`` or point
forecasts ``(X, N+6)``, row o being the forecast of ``r_X[origins[o]]``. The default implementation
gathers the left-padded contexts of each padded-length group (:mod:`jaxsim.windows`) once and calls
:meth:`Forecaster.forecast_group`, so each unique context is seen by the model exactly once.

Randomness: the key of the context (target X, origin t) is ``fold_in(fold_in(key, id_X), T-1-t)``
(id: close 0, high 1, low 2, open 3; T-1-t counts rows back from the newest). Draws therefore do not
depend on batch composition, on which other targets are requested, or on rows trimmed off the front.

Kinds: :func:`naive` (zero return), :func:`historical_mean` (mean of the context's valid returns),
:func:`from_function` (a user JAX function, vmapped), :func:`toto` (converted Toto weights),
:func:`kronos` (see :mod:`jaxsim.forecasters_kronos`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxsim.errors import ConfigError
from jaxsim.windows import ContextGroup, ForecastGrid, context_groups, gather_contexts

__all__ = [
    "TARGET_IDS",
    "Forecast",
    "StockArrays",
    "Forecaster",
    "naive",
    "historical_mean",
    "default",
    "from_function",
    "toto",
    "kronos",
    "context_keys",
    "register_forecaster",
    "point_and_band",
]

Array = jax.Array

# Fixed per-target ids: the keys of close/high/low do not change when open is requested too.
TARGET_IDS = {"close": 0, "high": 1, "low": 2, "open": 3}
# Column of each target in the (T, 5) price array [open, high, low, close, volume].
PRICE_COLUMN = {"open": 0, "high": 1, "low": 2, "close": 3}


class StockArrays(NamedTuple):
    """Dynamic arrays of one stock (a stock axis is added by vmap in the multi-stock path).

    Attributes:
      prices: ``(T, 5)`` float32 rows of [open, high, low, close, volume] (volume 0 when absent).
      stamps: ``(T, F)`` float32 calendar features of each row's date (Kronos), or ``(T, 0)``.
    """

    prices: Array
    stamps: Array


class Forecast(NamedTuple):
    """Forecasts at every origin: exactly one of ``samples`` / ``point`` is set.

    Attributes:
      samples: ``(X, O, S)`` draws of r_X[t] per target and origin, or None.
      point: ``(X, O)`` point forecasts, or None.
    """

    samples: Array | None = None
    point: Array | None = None


def context_keys(key: Array, grid: ForecastGrid, targets: tuple[str, ...], group: ContextGroup) -> Array:
    """Keys of a group's contexts, ``(X, size)``: ``fold_in(fold_in(key, id_X), T-1-t)``."""
    back = grid.n_rows - 1 - grid.origins[group.start:group.stop]
    ids = jnp.asarray([TARGET_IDS[x] for x in targets], jnp.uint32)
    per_target = jax.vmap(lambda i: jax.random.fold_in(key, i))(ids)
    return jax.vmap(lambda kx: jax.vmap(lambda b: jax.random.fold_in(kx, b))(jnp.asarray(back, jnp.uint32)))(per_target)


def target_returns(prices: Array, targets: tuple[str, ...]) -> Array:
    """r_X per target, ``(X, T)`` (spec 1.3 transform of each requested column)."""
    from jaxsim.returns import return_transform

    return jnp.stack([return_transform(prices[:, PRICE_COLUMN[x]]) for x in targets])


class Forecaster:
    """Base class. Subclasses are frozen dataclasses with a dynamic ``params`` field.

    Class attributes:
      pad_multiple: contexts are left-padded to a multiple of this (None: one group padded to the
        longest context, for forecasters on which padding has no effect).
      kind: short name used in reports.
    """

    pad_multiple: int | None = None
    kind: str = "forecaster"

    def forecast(self, stock: StockArrays, grid: ForecastGrid, targets: tuple[str, ...], key: Array) -> Forecast:
        """Forecasts of ``r_X[t]`` for every origin t of ``grid`` and every target X.

        Args:
          stock: one stock's arrays (``prices`` ``(T, 5)``).
          grid: static geometry (T, N, context cap).
          targets: static target names, e.g. ``("close", "high", "low")``.
          key: PRNG key of this stock.

        Returns:
          :class:`Forecast` with ``(X, N+6, S)`` draws or ``(X, N+6)`` points.
        """
        returns = target_returns(stock.prices, targets)
        parts = []
        for group in context_groups(grid, self.pad_multiple):  # static: at most a few padded lengths
            context, valid = gather_contexts(returns, grid, group)
            keys = context_keys(key, grid, targets, group)
            parts.append(self.forecast_group(context, valid, keys))
        if isinstance(parts[0], Forecast) and parts[0].samples is not None:
            return Forecast(samples=jnp.concatenate([p.samples for p in parts], axis=1))
        return Forecast(point=jnp.concatenate([p.point for p in parts], axis=1))

    def forecast_group(self, context: Array, valid: Array, keys: Array) -> Forecast:
        """Forecast one padded-length group.

        Args:
          context: ``(X, n, L)`` float32 left-padded return contexts (zeros where padded).
          valid: ``(n, L)`` bool mask (True = a real return).
          keys: ``(X, n)`` per-context PRNG keys.

        Returns:
          :class:`Forecast` with ``(X, n, S)`` draws or ``(X, n)`` points.
        """
        raise NotImplementedError


def register_forecaster(cls):
    """Register a forecaster dataclass as a pytree: ``params`` dynamic, every other field static."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    meta = [f.name for f in dataclasses.fields(cls) if f.name != "params"]
    return jax.tree_util.register_dataclass(cls, data_fields=["params"], meta_fields=meta)


@register_forecaster
class NaiveForecaster(Forecaster):
    """Zero-return baseline: every forecast is 0 (tomorrow looks like today)."""

    params: Any = ()
    kind = "naive"

    def forecast_group(self, context, valid, keys):
        return Forecast(point=jnp.zeros(context.shape[:2], jnp.float32))


@register_forecaster
class HistoricalMeanForecaster(Forecaster):
    """Mean of the context's valid returns (the drift baseline)."""

    params: Any = ()
    kind = "historical_mean"

    def forecast_group(self, context, valid, keys):
        count = jnp.maximum(valid.sum(-1), 1).astype(jnp.float32)
        return Forecast(point=jnp.where(valid[None], context, 0.0).sum(-1) / count[None])


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
class TotoForecaster(Forecaster):
    """Toto one-step forecasts: one forward per unique context, S draws from the next-step mixture.

    Contexts are grouped by their padded length (next multiple of the patch, 64), exactly as the
    official forecaster pads each one alone; a group of n origins over X targets is one forward of
    batch X*n. Because the forecast horizon is one step (<= one patch), all S sample chains of the
    official sampler would see the same prefill output, so one forward plus S draws from the last
    position's mixture has the official distribution (toto spec 3.4).
    """

    config: Any = None
    num_samples: int = 3072
    params: Any = None
    kind = "toto"

    @property
    def pad_multiple(self):
        return int(self.config.patch_size)

    def forecast_group(self, context, valid, keys):
        from jaxsim.models import toto_forecast

        n_targets, n, length = context.shape
        flat = context.reshape(n_targets * n, length)
        flat_valid = jnp.broadcast_to(valid[None], (n_targets, n, length)).reshape(n_targets * n, length)
        mixture = toto_forecast.next_step_mixture(self.params, self.config, flat, flat_valid)

        def draw_one(k, m):
            one = jax.tree_util.tree_map(lambda a: a[None], m)
            return toto_forecast.sample_mixture(k, one, self.num_samples)[0]

        draws = jax.vmap(draw_one)(keys.reshape(n_targets * n, *keys.shape[2:]), mixture)
        return Forecast(samples=draws.reshape(n_targets, n, self.num_samples))


def naive() -> NaiveForecaster:
    """Zero-return forecaster: predicts r_X[t] = 0 for every target and origin."""
    return NaiveForecaster()


def historical_mean() -> HistoricalMeanForecaster:
    """Forecasts r_X[t] as the mean of the context's returns r_X[1..t-1] (capped by max_context)."""
    return HistoricalMeanForecaster()


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
        from jaxsim.models.toto_checkpoint import load_toto

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
    from jaxsim.registry import default_weights_dir

    return toto(default_weights_dir(), num_samples=num_samples)


def kronos(weights_dir, tokenizer_dir, **options):
    """Kronos forecaster (one-step forecasts at each rolling origin); see :mod:`jaxsim.forecasters_kronos`."""
    from jaxsim.forecasters_kronos import kronos as _kronos

    return _kronos(weights_dir, tokenizer_dir, **options)


def point_and_band(forecast: Forecast, aggregate_spec) -> tuple[Array, Array]:
    """Reduce draws to point forecasts and P60-P40 bands (spec 2.2); a point forecast has band 0.

    Returns:
      ``(point, band)``, both ``(X, O)``.
    """
    if forecast.point is not None:
        return forecast.point, jnp.zeros_like(forecast.point)
    from jaxsim.aggregate import aggregate, band, parse_aggregation

    spec = parse_aggregation(aggregate_spec)
    flat = forecast.samples.reshape(-1, forecast.samples.shape[-1])
    point = jax.vmap(lambda s: aggregate(s, spec))(flat)
    width = jax.vmap(band)(flat)
    shape = forecast.samples.shape[:2]
    return point.reshape(shape), width.reshape(shape)

