"""Forecasted P&L per strategy (spec 7.2 step 3): a one-step forecast of each strategy's daily return.

For each of the eight strategies the series is that strategy's ``<name>_avg_daily_return`` record
column, non-finite values dropped. With n finite values and their mean m:

* n < 4: the forecasted P&L is m;
* m < 0: it is m (no model call);
* otherwise it is the median of draws of the next value of the series from the backtest's own
  forecaster (Toto: 512 draws; a user function: its own draws; a point forecaster: its point), only
  the first 256 draws when n < 7; a forecaster that does not forecast return series (Kronos needs
  OHLCV frames), a model error or a non-finite median gives m. ``metadata["forecasted_pnl_source"]``
  of a backtest result names the rule used per strategy.

Order of the series. The original feeds the column in ROW order, row 0 the most recent, so its
"next value" extrapolates into the past (bug 10.11). The legacy protocol keeps that; the
``walk_forward`` protocol feeds it chronologically (oldest first), so the forecast is of the day
after the newest simulation.

Batching: the eight series of a stock are eight left-padded contexts (non-finite values dropped,
padded to the forecaster's pad multiple exactly as :func:`jaxsim.models.toto.forecast.left_pad`
pads one context; 64 for Toto) that go through :meth:`Forecaster.forecast_group` as one group of one
"target"; the stock axis is a ``jax.vmap``, and the whole thing is one jitted call (one compile per
forecaster config, stock count and N). The padded length is fixed by N: when some values are
non-finite a Toto context can get one more patch of padding than the official forecaster would give
the shorter series.

Randomness: strategy j of a stock with backtest key k uses ``fold_in(fold_in(k, PNL_KEY_SALT), j)``,
so a stock's result does not depend on the other stocks of a multi-stock run.
"""

from __future__ import annotations

import dataclasses
import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["MODEL_KINDS", "PNL_KEY_SALT", "strategy_series", "model_medians", "forecasted_pnl"]

log = logging.getLogger(__name__)

# Forecasters that map return contexts to draws or points (Kronos needs OHLCV frames).
MODEL_KINDS = ("naive", "historical_mean", "function", "toto")
PNL_KEY_SALT = 0x504E4C  # "PNL": separates these keys from the backtest's per-context keys
MIN_VALUES = 4  # fewer finite values: the mean
FEW_VALUES = 7  # fewer finite values: 256 draws instead of 512
DRAWS, FEW_DRAWS = 512, 256


def strategy_series(arrays, prefixes) -> np.ndarray:
    """The ``<prefix>_avg_daily_return`` columns, ``(..., P, N)`` float64, in row order."""
    return np.stack([np.asarray(arrays[f"{p}_avg_daily_return"], np.float64) for p in prefixes], axis=-2)


def _contexts(series, chronological: bool, multiple: int | None):
    """Left-padded contexts of one stock's series ``(P, N)``: ``(P, L)`` values and validity.

    Finite values keep their order and move to the right end (NaN dropped, as the original), then
    ``left_pad`` pads to a multiple of ``multiple`` (N when None: no extra padding).
    """
    from jaxsim.models.toto.forecast import left_pad

    if chronological:  # rows are newest first
        series = series[:, ::-1]
    order = jnp.argsort(jnp.isfinite(series), axis=-1, stable=True)  # non-finite first, order kept
    compact = jnp.take_along_axis(series, order, axis=-1)
    return jax.vmap(lambda s: left_pad(s, multiple or series.shape[-1]))(compact)


def _stock_medians(forecaster, series, key, chronological):
    """Median of the model's draws for each series ``(P, N)`` -> ``((P,), (P,))`` (all, first 256)."""
    context, valid = _contexts(series, chronological, forecaster.pad_multiple)
    base = jax.random.fold_in(key, PNL_KEY_SALT)
    keys = jax.vmap(lambda j: jax.random.fold_in(base, j))(jnp.arange(series.shape[0], dtype=jnp.uint32))
    out = forecaster.forecast_group(context[None], valid, keys[None])
    if out.samples is None:  # a point forecast: its own median
        return out.point[0], out.point[0]
    draws = out.samples[0]
    return jnp.median(draws, axis=-1), jnp.median(draws[..., :FEW_DRAWS], axis=-1)


@functools.partial(jax.jit, static_argnames=("chronological",))
def model_medians(forecaster, series, keys, chronological: bool):
    """Model medians for a batch of stocks (one compiled call).

    Args:
      forecaster: a return-series forecaster (kind in ``MODEL_KINDS``).
      series: ``(B, P, N)`` per-strategy daily returns in row order (row 0 the most recent).
      keys: ``(B,)`` backtest keys of the stocks.
      chronological: feed the series oldest first (walk-forward) instead of in row order (legacy).

    Returns:
      ``(median, median_few)``, both ``(B, P)`` float32: over all draws, and over the first 256.
    """
    series = jnp.asarray(series, jnp.float32)
    return jax.vmap(_stock_medians, in_axes=(None, 0, 0, None))(forecaster, series, keys, chronological)


def _model_forecaster(forecaster, n_values: int):
    if forecaster.kind == "toto":
        return dataclasses.replace(forecaster, num_samples=FEW_DRAWS if n_values < FEW_VALUES else DRAWS)
    return forecaster


def forecasted_pnl(forecaster, series, keys, *, chronological: bool):
    """Forecasted P&L of each stock and strategy (the rules of the module docstring).

    Args:
      forecaster: the backtest's forecaster.
      series: ``(B, P, N)`` per-strategy ``avg_daily_return`` columns, row 0 the most recent.
      keys: ``(B,)`` backtest keys of the stocks.
      chronological: series order fed to the model (see the module docstring).

    Returns:
      ``(values, sources)``: float64 ``(B, P)`` and a ``(B, P)`` array of source names
      (``model``, ``mean_few_values``, ``mean_negative``, ``mean_unsupported_forecaster``,
      ``mean_model_error``, ``mean_model_nonfinite``).
    """
    series = np.asarray(series, np.float64)
    finite = np.isfinite(series)
    count = finite.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite, series, 0.0).sum(-1) / count
    sources = np.where(count < MIN_VALUES, "mean_few_values",
                       np.where(mean < 0, "mean_negative", "model")).astype(object)
    values = mean.copy()
    wanted = sources == "model"
    if not wanted.any():
        return values, sources
    if forecaster.kind not in MODEL_KINDS:
        sources[wanted] = "mean_unsupported_forecaster"
        return values, sources
    try:
        median, median_few = jax.device_get(
            model_medians(_model_forecaster(forecaster, series.shape[-1]), series, keys, chronological))
    except Exception as e:  # noqa: BLE001 -- the original falls back to the mean on any error
        log.warning("forecasted P&L: model call failed (%s: %s); using the mean", type(e).__name__, e)
        sources[wanted] = "mean_model_error"
        return values, sources
    point = np.where(count < FEW_VALUES, median_few, median).astype(np.float64)
    bad = wanted & ~np.isfinite(point)
    sources[bad] = "mean_model_nonfinite"
    use = wanted & ~bad
    values[use] = point[use]
    return values, sources
