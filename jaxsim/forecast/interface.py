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
from jaxsim.forecast.aggregate import aggregate_sorted, band_sorted, parse_aggregation, quantiles_sorted, sort_draws
from jaxsim.forecast.grid import ContextGroup, ForecastGrid, context_groups, gather_contexts
from jaxsim.forecast.returns import return_transform
from jaxsim.layout import PRICE_COLUMN
from jaxsim.models.toto.forecast import left_pad
from jaxsim.stats.skill import crps_ensemble, pit_values

__all__ = [
    "TARGET_IDS",
    "PER_CONTEXT",
    "PREFIX",
    "StockArrays",
    "Forecast",
    "Forecaster",
    "register_forecaster",
    "context_keys",
    "target_returns",
    "point_and_band",
    "summarize_draws",
    "summarize_forecast",
    "origin_realised",
    "ForecastSummary",
    "DRAW_QUANTILES",
    "SERIES_DRAWS",
    "SERIES_FEW_DRAWS",
    "SERIES_FEW_VALUES",
]

Array = jax.Array

# Draws on a strategy's P&L series (forecasted P&L, docs/backtest.md#forecasted-pnl): the original
# draws 512, and a series with fewer than 7 finite values takes the median of the first 256.
SERIES_DRAWS, SERIES_FEW_DRAWS, SERIES_FEW_VALUES = 512, 256, 7

# Fixed per-target ids: the keys of close/high/low do not change when open is requested too.
TARGET_IDS = {"close": 0, "high": 1, "low": 2, "open": 3}
# Forecast paths (Forecaster.forecast_path): one forward per unique context, or Toto's prefix-shared passes.
PER_CONTEXT, PREFIX = "per-context", "prefix"


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


# Quantiles of each forecast's draws reported in results (the 10-90% band and the median).
DRAW_QUANTILES = (0.1, 0.5, 0.9)


class ForecastSummary(NamedTuple):
    """What the backtest keeps of each forecast, ``(X, O)`` per field (``quantiles``: ``(X, O, 3)``).

    Attributes:
      point: the aggregation spec's point forecast; band: P60 - P40 (docs/backtest.md#draws-and-band);
      quantiles: at :data:`DRAW_QUANTILES`; crps: CRPS of the draws against the realised return;
      pit: the probability integral transform (share of draws below the realised return).
    """

    point: Array
    band: Array
    quantiles: Array
    crps: Array
    pit: Array


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
    back = grid.n_rows - 1 - grid.origins[group.start : group.stop]
    ids = jnp.asarray([TARGET_IDS[x] for x in targets], jnp.uint32)
    per_target = jax.vmap(lambda i: jax.random.fold_in(key, i))(ids)
    return jax.vmap(lambda kx: jax.vmap(lambda b: jax.random.fold_in(kx, b))(jnp.asarray(back, jnp.uint32)))(per_target)


def target_returns(prices: Array, targets: tuple[str, ...]) -> Array:
    """r_X per target, ``(X, T)`` (docs/backtest.md#return-transform transform of each requested column).

    NaN where the row or the one before it is NaN (the rows a length bucket puts before a stock's
    first row), so such returns are invalid context, not the transform's 0 (real rows are finite).
    """
    columns = jnp.stack([prices[:, PRICE_COLUMN[x]] for x in targets])  # (X, T)
    known = jnp.isfinite(columns)
    known = known & jnp.concatenate([known[:, :1], known[:, :-1]], axis=1)
    return jnp.where(known, jax.vmap(return_transform)(columns), jnp.nan)


class Forecaster:
    """Base class. Subclasses are frozen dataclasses with a dynamic ``params`` field.

    A forecaster owns its settings and answers the engine's questions by methods:
    :meth:`draws_per_context`, :meth:`with_draws_per_context`, :meth:`needs_calendar_features`,
    :meth:`calendar_features` and :meth:`forecasts_return_series`.

    Class attributes:
      pad_multiple: contexts are left-padded to a multiple of this (None: one group padded to the
        longest context, for forecasters on which padding has no effect).
      kind: short name used in reports.
      padding_invariant: its forecasts do not depend on extra invalid positions before a context
        (whole padded patches for Toto, which masks them), so a stock may run on a longer program of
        its length bucket (:func:`jaxsim.shell.plan.program_shape`). False for user functions (they may
        look at the padded length) and Kronos.
    """

    pad_multiple: int | None = None
    kind: str = "forecaster"
    padding_invariant: bool = False

    def draws_per_context(self) -> int | None:
        """Draws S returned per context (None: point forecasts)."""
        return None

    def with_draws_per_context(self, num_samples: int) -> Forecaster:
        """This forecaster drawing ``num_samples`` per context; ConfigError when its draw count is not
        a setting (point forecasters, user functions, Kronos' averaged paths)."""
        raise ConfigError(
            f"the {self.kind} forecaster has no per-context draw count to override "
            f"(it returns {self.draws_per_context() or 'point'} forecasts); set it where the "
            "forecaster is built"
        )

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

    def series_forecaster(self, n_values: int) -> Forecaster:
        """The forecaster used on a strategy's P&L series of ``n_values`` values (itself by default;
        one that draws takes :data:`SERIES_DRAWS`, or :data:`SERIES_FEW_DRAWS` below
        :data:`SERIES_FEW_VALUES` values, the original's counts)."""
        return self

    def pad_context(self, context: Array) -> tuple[Array, Array]:
        """One context ``(L,)`` padded as this forecaster pads each of its contexts: zeros on the left
        (invalid; non-finite values are invalid too) to a multiple of :attr:`pad_multiple` (no extra
        padding when None). Returns ``(values, valid)``."""
        return left_pad(context, self.pad_multiple or context.shape[-1])

    def forecast_path(self, grid: ForecastGrid) -> str:
        """Which path :meth:`forecast` takes on ``grid``: :data:`PER_CONTEXT` (every unique context
        seen once) or :data:`PREFIX` (Toto without a context cap, :mod:`jaxsim.forecast.prefix`)."""
        return PER_CONTEXT

    def forecast_summary(
        self,
        stock: StockArrays,
        grid: ForecastGrid,
        targets: tuple[str, ...],
        key: Array,
        aggregate_spec,
        chunk: int | None = None,
    ) -> ForecastSummary:
        """:class:`ForecastSummary` ``(X, N+6)`` of :meth:`forecast` (point and P60-P40 band as
        :func:`point_and_band`, quantiles, CRPS and PIT against the realised returns). Forecasters that
        can draw a chunk of origins at a time (Toto) override it so the ``(X, N+6, S)`` draws never
        exist at once; ``chunk`` (static) is their chunk size."""
        del chunk
        return summarize_forecast(
            self.forecast(stock, grid, targets, key), origin_realised(stock, grid, targets), aggregate_spec
        )

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
    flat = sort_draws(jnp.asarray(forecast.samples, jnp.float32).reshape(-1, forecast.samples.shape[-1]))
    point = jax.vmap(lambda s: aggregate_sorted(s, spec))(flat)
    width = jax.vmap(band_sorted)(flat)
    shape = forecast.samples.shape[:2]
    return point.reshape(shape), width.reshape(shape)


def _entry_summary(s: Array, y: Array, spec) -> tuple[Array, ...]:
    """Point, band, quantiles, CRPS and PIT of one entry's draws ``s`` ``(S,)`` against realised ``y``."""
    x = sort_draws(jnp.asarray(s, jnp.float32))  # one sort serves every order statistic
    return (
        aggregate_sorted(x, spec),
        band_sorted(x),
        quantiles_sorted(x, DRAW_QUANTILES),
        crps_ensemble(x, y, presorted=True),
        pit_values(s, y),
    )


def summarize_draws(
    draw, keys: Array, params, aggregate_spec, chunk: int | None, realised: Array | None = None
) -> ForecastSummary:
    """:class:`ForecastSummary` of ``draw(key, p) -> (S,)`` at every entry of ``keys`` ``(X, O)`` and
    the pytree ``params`` (leading ``(X, O)``), ``chunk`` entries at a time (None: all at once).

    Each entry's statistics are those of :func:`summarize_forecast` on the full draws (the same
    per-entry function); only the ``(chunk, S)`` draws of one step are alive at a time. ``realised``
    ``(X, O)`` is the value each entry forecasts (for CRPS and PIT; zeros when None).
    """
    spec = parse_aggregation(aggregate_spec)
    shape = keys.shape
    flat_keys = keys.reshape(-1)
    flat = jax.tree.map(lambda a: a.reshape((flat_keys.shape[0],) + a.shape[2:]), params)
    ys = jnp.zeros(shape, jnp.float32) if realised is None else jnp.asarray(realised, jnp.float32)
    flat_y = ys.reshape(-1)

    def one(args):
        k, p, y = args
        return _entry_summary(draw(k, p), y, spec)

    if chunk is None or chunk >= flat_keys.shape[0]:
        out = jax.vmap(lambda k, p, y: one((k, p, y)))(flat_keys, flat, flat_y)
    else:
        out = jax.lax.map(one, (flat_keys, flat, flat_y), batch_size=int(chunk))
    return ForecastSummary(*(a.reshape(shape + a.shape[1:]) for a in out))


def summarize_forecast(forecast: Forecast, realised: Array, aggregate_spec) -> ForecastSummary:
    """:class:`ForecastSummary` of full forecasts; a point forecast counts as a one-draw ensemble
    (quantiles = point, CRPS = |point - realised|) with band 0."""
    spec = parse_aggregation(aggregate_spec)
    if forecast.samples is None:
        draws = forecast.point[..., None]
    else:
        draws = forecast.samples
    shape = draws.shape[:2]
    flat = draws.reshape((-1, draws.shape[-1]))
    out = jax.vmap(lambda s, y: _entry_summary(s, y, spec))(flat, jnp.asarray(realised, jnp.float32).reshape(-1))
    summary = ForecastSummary(*(a.reshape(shape + a.shape[1:]) for a in out))
    if forecast.samples is None:  # exactly today's point and zero band, whatever the aggregation spec
        summary = summary._replace(point=forecast.point, band=jnp.zeros_like(forecast.point))
    return summary


def origin_realised(stock: StockArrays, grid: ForecastGrid, targets: tuple[str, ...]) -> Array:
    """``(X, O)``: the realised return ``r_X[t]`` each origin t of ``grid`` forecasts."""
    return target_returns(stock.prices, targets)[:, jnp.asarray(grid.origins)]
