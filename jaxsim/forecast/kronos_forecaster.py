"""Kronos as a rolling-origin one-step forecaster (the fix of the original's docs/deviations.md#kronos-aligned).

The original (docs/backtest.md#kronos-in-the-original) called Kronos once per simulation and target with
``pred_len = 7`` from the last row e, i.e. it forecast days e+1..e+7, and then scored those FUTURE forecasts against the
realised changes of days e-6..e-1 as if they were Toto's rolling-origin forecasts (docs/deviations.md#kronos-aligned):
every strategy number in Kronos mode was noise. It also reported a 7-day-ahead price as "predicted price".

Here Kronos is used exactly like Toto: for every origin t of the forecast grid
(docs/backtest.md#rolling-origin-forecasts) it gets the OHLCV frame of rows ``t-L .. t-1`` (L = ``lookback``, the
original's ``max_context`` hyper-parameter, or fewer rows near the start), with the calendar features of those rows and
of row t, and predicts ONE step, row t. The forecast of ``r_X[t]`` is that prediction relative to the previous value of
the same column, ``X_hat[t] / X[t-1] - 1``. All three (or four) targets come from the same Kronos call
(Kronos predicts the whole OHLCV row). As in the original, the S sampled paths are averaged (in
Kronos' normalised space, then de-normalised): the forecaster returns point forecasts, so the
aggregation spec does not apply and the close band is 0.

Features per row: [open, high, low, close, volume, amount] with amount = volume * close (the
wrapper's rule when amount is missing); volume is the data's volume (0 when absent). The original
dropped equity volume (a data-loader artefact): a deliberate deviation. Calendar features come from
the real trading dates (the original used synthetic consecutive dates).

Randomness: origin t uses ``fold_in(key, T-1-t)`` and is predicted alone (vmapped with batch 1), so
its forecast does not depend on which other origins are in the run.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.errors import ConfigError
from jaxsim.forecast.grid import ForecastGrid
from jaxsim.forecast.interface import Forecast, Forecaster, StockArrays, register_forecaster
from jaxsim.layout import PRICE_COLUMN
from jaxsim.models.kronos.checkpoint import KronosBundle, load_kronos
from jaxsim.models.kronos.predict import predict, time_features

__all__ = ["KronosForecaster", "kronos"]

# Defaults of the original's resolve_kronos_params when no hyper-parameter file exists
# (docs/backtest.md#hyperparameters).
DEFAULTS = dict(temperature=0.152, top_p=0.83, top_k=20, sample_count=192, lookback=232, clip=1.85)


@register_forecaster
class KronosForecaster(Forecaster):
    """Kronos one-step forecasts at each rolling origin (see the module docstring)."""

    model_config: Any = None
    tokenizer_config: Any = None
    sample_count: int = 192
    lookback: int = 232
    temperature: float = 0.152
    top_p: float = 0.83
    top_k: int = 20
    clip: float = 1.85
    window: int = 512  # the predictor's sliding window C (>= lookback + 1: no slide for one step)
    params: Any = None  # (model_params, tokenizer_params)
    kind = "kronos"

    def needs_calendar_features(self):
        return True

    def calendar_features(self, dates):
        return np.asarray(time_features(dates), np.float32)

    def forecasts_return_series(self):
        return False  # it reads OHLCV frames, not a return context

    def forecast(self, stock: StockArrays, grid: ForecastGrid, targets: tuple[str, ...], key) -> Forecast:
        bundle = KronosBundle(self.model_config, self.tokenizer_config, *self.params)
        prices = stock.prices
        close = prices[:, 3]
        volume = prices[:, 4]
        features = jnp.concatenate([prices[:, :4], volume[:, None], (volume * close)[:, None]], axis=1)
        origins = grid.origins
        rows_available = origins  # rows 0..t-1
        lengths = np.minimum(rows_available, self.lookback)
        if grid.max_context is not None:
            lengths = np.minimum(lengths, grid.max_context + 1)
        cols = jnp.asarray([PRICE_COLUMN[x] for x in targets])
        parts = []
        for length in _runs(lengths):  # static: one run unless the history is shorter than lookback
            sel = np.flatnonzero(lengths == length)
            t = origins[sel]
            index = t[:, None] - length + np.arange(length)[None, :]
            x, x_stamp = features[index], stock.stamps[index]
            y_stamp = stock.stamps[t][:, None, :]
            keys = jax.vmap(lambda b: jax.random.fold_in(key, b))(jnp.asarray(grid.n_rows - 1 - t, jnp.uint32))

            def one(x1, xs1, ys1, k1):
                mean, _ = predict(
                    bundle,
                    x1[None],
                    xs1[None],
                    ys1[None],
                    pred_len=1,
                    key=k1,
                    sample_count=self.sample_count,
                    temperature=self.temperature,
                    top_k=self.top_k,
                    top_p=self.top_p,
                    max_context=self.window,
                    clip=self.clip,
                )
                return mean[0, 0]  # (6,) predicted row t

            predicted = jax.vmap(one)(x, x_stamp, y_stamp, keys)  # (n, 6)
            previous = prices[t - 1][:, :4]  # row t-1, [open, high, low, close]
            ratio = predicted[:, cols] / jnp.where(previous[:, cols] == 0, 1.0, previous[:, cols]) - 1.0
            ratio = jnp.where((previous[:, cols] == 0) | ~jnp.isfinite(ratio), 0.0, ratio)
            parts.append((sel, ratio.T))  # (X, n)
        point = jnp.zeros((len(targets), grid.n_origins), jnp.float32)
        for sel, values in parts:
            point = point.at[:, sel].set(values)
        return Forecast(point=point)


def _runs(lengths: np.ndarray) -> list[int]:
    return sorted(set(int(v) for v in lengths))


def kronos(weights_dir=None, tokenizer_dir=None, *, bundle=None, **options) -> KronosForecaster:
    """Kronos forecaster from converted weight folders (or a loaded ``KronosBundle``).

    Args:
      weights_dir: the Kronos model folder; tokenizer_dir: its tokenizer folder (``load_kronos``).
      bundle: an in-memory ``KronosBundle`` instead of folders (e.g. random init for tests).
      **options: ``sample_count`` (192), ``lookback`` (232 rows), ``temperature`` (0.152), ``top_p``
        (0.83), ``top_k`` (20), ``clip`` (1.85): the original's defaults (docs/backtest.md#hyperparameters); ``window``
        (512).

    Returns:
      A :class:`KronosForecaster`.
    """
    if bundle is None:
        if weights_dir is None or tokenizer_dir is None:
            raise ConfigError("kronos() needs weights_dir and tokenizer_dir, or bundle=")
        bundle = load_kronos(weights_dir, tokenizer_dir)
    unknown = set(options) - set(DEFAULTS) - {"window"}
    if unknown:
        raise ConfigError(f"unknown Kronos options {sorted(unknown)}; known: {sorted(DEFAULTS) + ['window']}")
    opts = {**DEFAULTS, "window": 512, **options}
    if opts["lookback"] + 1 > opts["window"]:
        raise ConfigError(f"lookback {opts['lookback']} must be < window {opts['window']}")
    if not math.isfinite(opts["temperature"]) or opts["temperature"] <= 0:
        raise ConfigError(f"temperature must be > 0, got {opts['temperature']}")
    return KronosForecaster(
        model_config=bundle.model_config,
        tokenizer_config=bundle.tokenizer_config,
        params=(bundle.model_params, bundle.tokenizer_params),
        sample_count=int(opts["sample_count"]),
        lookback=int(opts["lookback"]),
        temperature=float(opts["temperature"]),
        top_p=float(opts["top_p"]),
        top_k=int(opts["top_k"]),
        clip=float(opts["clip"]),
        window=int(opts["window"]),
    )
