"""The forecaster interface: what every forecaster answers and the arrays it exchanges.

A forecaster is a frozen dataclass registered as a pytree: ``params`` (weights, possibly empty) is
its only dynamic field; everything else (model config, sample count, a user function) is static
metadata, so a forecaster can be passed straight into a jitted program and a second forecaster of
the same kind and config reuses the compiled program.

Every forecaster answers :meth:`Forecaster.forecast`: given one stock's arrays, the static grid and
targets, and a PRNG key, it returns :class:`Forecast` with either draws ``(X, N+6, S)`` or point
forecasts ``(X, N+6)``, row o being the forecast of ``r_X[origins[o]]``. The default implementation
gathers the left-padded contexts of each padded-length group (:mod:`jaxsim.forecast.grid`) once and
calls :meth:`Forecaster.forecast_group`, so each unique context is seen by the model exactly once.

Randomness: the key of the context (target X, origin t) is ``fold_in(fold_in(key, id_X), T-1-t)``
(id: close 0, high 1, low 2, open 3; T-1-t counts rows back from the newest). Draws therefore do not
depend on batch composition, on which other targets are requested, or on rows trimmed off the front.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.errors import ConfigError
from jaxsim.layout import PRICE_COLUMN
from jaxsim.forecast.aggregate import aggregate, band, parse_aggregation
from jaxsim.forecast.grid import ContextGroup, ForecastGrid, context_groups, gather_contexts
from jaxsim.sim.returns import return_transform

__all__ = ["TARGET_IDS", "StockArrays", "Forecast", "Forecaster", "register_forecaster",
           "context_keys", "target_returns", "point_and_band"]

Array = jax.Array

# Fixed per-target ids: the keys of close/high/low do not change when open is requested too.
TARGET_IDS = {"close": 0, "high": 1, "low": 2, "open": 3}


class StockArrays(NamedTuple):
    """Dynamic arrays of one stock (a stock axis is added by vmap in the multi-stock path).

    Attributes:
      prices: ``(T, 5)`` float32 rows of [open, high, low, close, volume] (volume 0 when absent); the
        engine's table has 8 columns (:data:`jaxsim.layout.TABLE_COLUMNS`: the residuals of high, low,
        close follow), which forecasters ignore.
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
    """r_X per target, ``(X, T)`` (docs/backtest.md#return-transform transform of each requested column)."""
    return jnp.stack([return_transform(prices[:, PRICE_COLUMN[x]]) for x in targets])


class Forecaster:
    """Base class. Subclasses are frozen dataclasses with a dynamic ``params`` field.

    A forecaster owns its settings and answers the engine's questions by methods:
    :meth:`draws_per_context`, :meth:`with_draws_per_context`, :meth:`needs_calendar_features`,
    :meth:`calendar_features` and :meth:`forecasts_return_series`.

    Class attributes:
      pad_multiple: contexts are left-padded to a multiple of this (None: one group padded to the
        longest context, for forecasters on which padding has no effect).
      kind: short name used in reports.
    """

    pad_multiple: int | None = None
    kind: str = "forecaster"

    def draws_per_context(self) -> int | None:
        """Draws S returned per context (None: point forecasts)."""
        return None

    def with_draws_per_context(self, num_samples: int) -> "Forecaster":
        """This forecaster drawing ``num_samples`` per context; ConfigError when its draw count is not
        a setting (point forecasters, user functions, Kronos' averaged paths)."""
        raise ConfigError(f"the {self.kind} forecaster has no per-context draw count to override "
                          f"(it returns {self.draws_per_context() or 'point'} forecasts); set it where the "
                          "forecaster is built")

    def needs_calendar_features(self) -> bool:
        """True when :meth:`forecast` reads ``StockArrays.stamps`` (calendar features of the dates)."""
        return False

    def calendar_features(self, dates) -> np.ndarray:
        """``(T, F)`` float32 calendar features of ``dates`` for ``StockArrays.stamps`` (``(T, 0)``
        when :meth:`needs_calendar_features` is False)."""
        return np.zeros((len(dates), 0), np.float32)

    def forecasts_return_series(self) -> bool:
        """True when :meth:`forecast_group` maps return contexts to forecasts (used to forecast each
        strategy's P&L series); False for forecasters that need whole OHLCV frames (Kronos). By
        default: whether the subclass implements :meth:`forecast_group`."""
        return type(self).forecast_group is not Forecaster.forecast_group

    def defined_by_jaxsim(self) -> bool:
        """True when everything static about this forecaster is jaxsim's own code and settings (no user
        function), so a compiled program can be stored on disk under a name of its settings."""
        return type(self).__module__.startswith("jaxsim.")

    def series_forecaster(self, n_values: int) -> "Forecaster":
        """The forecaster used on a strategy's P&L series of ``n_values`` values (itself by default)."""
        return self

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


def point_and_band(forecast: Forecast, aggregate_spec) -> tuple[Array, Array]:
    """Reduce draws to point forecasts and P60-P40 bands (docs/backtest.md#draws-and-band); a point forecast has band 0.

    Returns:
      ``(point, band)``, both ``(X, O)``.
    """
    if forecast.point is not None:
        return forecast.point, jnp.zeros_like(forecast.point)
    spec = parse_aggregation(aggregate_spec)
    flat = forecast.samples.reshape(-1, forecast.samples.shape[-1])
    point = jax.vmap(lambda s: aggregate(s, spec))(flat)
    width = jax.vmap(band)(flat)
    shape = forecast.samples.shape[:2]
    return point.reshape(shape), width.reshape(shape)

