"""Kronos as a rolling-origin one-step forecaster (fix of docs/deviations.md#kronos-aligned): origin t sees rows
t-L..t-1 and predicts row t; r_X[t] = X_hat[t] / X[t-1] - 1; all targets from one call; per-origin keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim.errors import ConfigError
from jaxsim.forecast import StockArrays
from jaxsim.forecast.grid import ForecastGrid
from jaxsim.forecast.kronos_forecaster import kronos
from jaxsim.models.kronos.checkpoint import KronosBundle
from jaxsim.models.kronos.model import KRONOS_MINI, TOKENIZER_2K, init_kronos, init_tokenizer
from jaxsim.models.kronos.predict import predict, time_features

T = 40
LOOKBACK = 12


@pytest.fixture(scope="module")
def bundle():
    # jitted random init: about half the time of the eager flax init
    return KronosBundle(
        KRONOS_MINI,
        TOKENIZER_2K,
        jax.jit(init_kronos, static_argnums=0)(KRONOS_MINI, jax.random.key(0)),
        jax.jit(init_tokenizer, static_argnums=0)(TOKENIZER_2K, jax.random.key(1)),
    )


def _stock():
    rng = np.random.default_rng(0)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, T)))
    table = np.stack([close * 1.001, close * 1.01, close * 0.99, close, rng.uniform(1e5, 2e5, T)], 1)
    dates = np.busday_offset("2024-01-02", np.arange(T), roll="forward")
    return StockArrays(jnp.asarray(table, jnp.float32), jnp.asarray(time_features(dates))), table.astype(np.float32)


def test_one_step_forecast_of_row_t_from_rows_before_it(bundle):
    stock, table = _stock()
    grid = ForecastGrid(T, 3)
    fc = kronos(bundle=bundle, sample_count=2, lookback=LOOKBACK)
    key = jax.random.key(4)
    targets = ("close", "high", "low")
    out = jax.jit(lambda f, s, k: f.forecast(s, grid, targets, k).point)(fc, stock, key)
    assert out.shape == (3, grid.n_origins)
    feats = np.concatenate([table[:, :5], (table[:, 4] * table[:, 3])[:, None]], 1)
    for o in (0, grid.n_origins - 1):
        t = int(grid.origins[o])
        rows = slice(t - LOOKBACK, t)  # the frame up to row t-1 only: no look-ahead
        mean, _ = predict(
            bundle,
            feats[None, rows],
            stock.stamps[None, rows],
            stock.stamps[None, t : t + 1],
            pred_len=1,
            key=jax.random.fold_in(key, T - 1 - t),
            sample_count=2,
            temperature=0.152,
            top_k=20,
            top_p=0.83,
            max_context=512,
            clip=1.85,
        )
        for i, col in enumerate((3, 1, 2)):
            want = float(mean[0, 0, col]) / table[t - 1, col] - 1
            np.testing.assert_allclose(float(out[i, o]), want, rtol=1e-4, atol=1e-6)


def test_options_are_checked(bundle):
    with pytest.raises(ConfigError, match="unknown Kronos options"):
        kronos(bundle=bundle, samples=3)
    with pytest.raises(ConfigError, match="lookback"):
        kronos(bundle=bundle, lookback=600)
