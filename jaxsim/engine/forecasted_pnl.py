"""Forecasted P&L per strategy (docs/backtest.md#forecasted-pnl): a one-step forecast of each strategy's daily return.

For each of the eight strategies the series is that strategy's ``<name>_avg_daily_return`` record
column, non-finite values dropped. With n finite values and their mean m:

* n < 4: the forecasted P&L is m;
* m < 0: it is m (no model call);
* otherwise it is the median of draws of the next value of the series from the backtest's own
  forecaster (Toto: 512 draws; a user function: its own draws; a point forecaster: its point), only
  the first 256 draws when n < 7; a forecaster that does not forecast return series (Kronos needs
  OHLCV frames, :meth:`Forecaster.forecasts_return_series`) or a non-finite median gives m.
  ``metadata["forecasted_pnl_source"]`` of a backtest result names the rule used per strategy.

Inside the program. :func:`stock_forecasted_pnl` runs inside the one compiled backtest program,
after the strategy records: the rules are masks (``jnp.where``), the model is called on all eight
series of a stock whatever the rules pick (its draws are then ignored where a mean rule applies),
and the rule used is a small int per strategy (:data:`SOURCES` names them) that the shell maps to a
name after its one ``device_get``. A forecaster that raises while being traced makes the backtest
raise (the original fell back to the mean on any model error; a broken forecaster is an error here).

Order of the series. The original feeds the column in ROW order, row 0 the most recent, so its
"next value" extrapolates into the past (docs/deviations.md#forecasted-pnl-order). The legacy protocol keeps that; the
``walk_forward`` protocol feeds it chronologically (oldest first), so the forecast is of the day
after the newest simulation.

Batching: the eight series of a stock are eight left-padded contexts (non-finite values dropped,
padded as the forecaster pads one context, :meth:`Forecaster.pad_context`; to 64s for Toto) that go
through :meth:`Forecaster.forecast_group` as one group of one "target"; the stock axis is a
``jax.vmap``, and the whole thing is one jitted call (one compile per forecaster config, stock count
and N). The padded length is fixed by N: when some values are non-finite a Toto context can get one
more patch of padding than the official forecaster would give the shorter series.

Randomness: strategy j of a stock with backtest key k uses ``fold_in(fold_in(k, PNL_KEY_SALT), j)``,
so a stock's result does not depend on the other stocks of a multi-stock run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.forecast.interface import SERIES_FEW_DRAWS, SERIES_FEW_VALUES

__all__ = [
    "PNL_KEY_SALT",
    "MIN_VALUES",
    "SOURCES",
    "strategy_series",
    "stock_forecasted_pnl",
    "source_names",
    "forecasted_pnl",
]

PNL_KEY_SALT = 0x504E4C  # "PNL": separates these keys from the backtest's per-context keys
MIN_VALUES = 4  # fewer finite values: the mean
# Rule used per strategy, by code (the program returns the code, the shell the name).
SOURCES = ("model", "mean_few_values", "mean_negative", "mean_unsupported_forecaster", "mean_model_nonfinite")
MODEL, FEW, NEGATIVE, UNSUPPORTED, NONFINITE = range(len(SOURCES))


def strategy_series(arrays, prefixes):
    """The ``<prefix>_avg_daily_return`` columns stacked, ``(..., P, N)`` in row order (numpy or JAX)."""
    if all(isinstance(arrays[f"{p}_avg_daily_return"], np.ndarray) for p in prefixes):
        return np.stack([np.asarray(arrays[f"{p}_avg_daily_return"], np.float64) for p in prefixes], axis=-2)
    return jnp.stack([arrays[f"{p}_avg_daily_return"] for p in prefixes], axis=-2)


def _contexts(series, chronological: bool, forecaster):
    """Left-padded contexts of one stock's series ``(P, N)``: ``(P, L)`` values and validity.

    Finite values keep their order and move to the right end (NaN dropped, as the original), then
    the forecaster pads each as one of its contexts (:meth:`Forecaster.pad_context`).
    """
    if chronological:  # rows are newest first
        series = series[:, ::-1]
    order = jnp.argsort(jnp.isfinite(series), axis=-1, stable=True)  # non-finite first, order kept
    compact = jnp.take_along_axis(series, order, axis=-1)
    return jax.vmap(forecaster.pad_context)(compact)


def _model_point(forecaster, series, count, key, chronological):
    """The model's forecast of each series ``(P, N)``: the median of its draws (of the first 256 when
    fewer than 7 values are finite), or its point forecast."""
    context, valid = _contexts(series, chronological, forecaster)
    base = jax.random.fold_in(key, PNL_KEY_SALT)
    keys = jax.vmap(lambda j: jax.random.fold_in(base, j))(jnp.arange(series.shape[0], dtype=jnp.uint32))
    out = forecaster.forecast_group(context[None], valid, keys[None])
    if out.samples is None:  # a point forecast: its own median
        return out.point[0]
    draws = out.samples[0]
    few = jnp.median(draws[..., :SERIES_FEW_DRAWS], axis=-1)
    return jnp.where(count < SERIES_FEW_VALUES, few, jnp.median(draws, axis=-1))


def stock_forecasted_pnl(forecaster, series, key, *, chronological: bool):
    """Forecasted P&L of one stock's strategies (traceable; runs inside the backtest program).

    Args:
      forecaster: the backtest's forecaster (:meth:`~jaxsim.forecast.interface.Forecaster.series_forecaster`
        picks the one used on the series).
      series: ``(P, N)`` float32 per-strategy ``avg_daily_return`` columns, row 0 the most recent.
      key: the stock's backtest key.
      chronological: feed the series oldest first (walk-forward) instead of in row order (legacy).

    Returns:
      ``(values, codes)``: float32 ``(P,)`` and int32 ``(P,)`` indices into :data:`SOURCES`.
    """
    series = jnp.asarray(series, jnp.float32)
    finite = jnp.isfinite(series)
    count = finite.sum(-1)
    mean = jnp.where(finite, series, 0.0).sum(-1) / count  # NaN without values (pandas' mean of nothing)
    code = jnp.where(count < MIN_VALUES, FEW, jnp.where(mean < 0, NEGATIVE, MODEL))
    if forecaster.forecasts_return_series():  # static: the forecaster's kind
        point = _model_point(forecaster.series_forecaster(series.shape[-1]), series, count, key, chronological)
        code = jnp.where((code == MODEL) & ~jnp.isfinite(point), NONFINITE, code)
    else:
        point = mean
        code = jnp.where(code == MODEL, UNSUPPORTED, code)
    return jnp.where(code == MODEL, point, mean), code.astype(jnp.int32)


def source_names(codes) -> np.ndarray:
    """Map source codes (any shape) to their names (object array of the same shape)."""
    return np.asarray(SOURCES, dtype=object)[np.asarray(codes)]


def _batched(forecaster, series, keys, chronological):
    return jax.vmap(lambda s, k: stock_forecasted_pnl(forecaster, s, k, chronological=chronological))(series, keys)


_batched_jit = jax.jit(_batched, static_argnames=("chronological",))


def forecasted_pnl(forecaster, series, keys, *, chronological: bool):
    """Forecasted P&L of a batch of stocks outside a backtest (the rules of the module docstring).

    The backtest itself computes it inside its program (:func:`stock_forecasted_pnl`); this is the
    same function jitted over a stock axis, for series from elsewhere. The mean rules' values are
    recomputed in float64 here (the program works in float32).

    Args:
      forecaster: a forecaster.
      series: ``(B, P, N)`` per-strategy ``avg_daily_return`` columns, row 0 the most recent.
      keys: ``(B,)`` backtest keys of the stocks.
      chronological: series order fed to the model (see the module docstring).

    Returns:
      ``(values, sources)``: float64 ``(B, P)`` and a ``(B, P)`` array of names from :data:`SOURCES`.
    """
    series = np.asarray(series, np.float64)
    values, codes = jax.device_get(
        _batched_jit(forecaster, jnp.asarray(series, jnp.float32), keys, chronological=bool(chronological))
    )
    finite = np.isfinite(series)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite, series, 0.0).sum(-1) / finite.sum(-1)
    values = np.where(codes == MODEL, np.asarray(values, np.float64), mean)
    return values, source_names(codes)
