"""Forecasted P&L as of every position (jaxsim/engine/daily_forecasted_pnl.py, docs/backtest.md#daily-forecasted-pnl):
position i equals the backtest's single-series rule (:func:`forecasted_pnl`) on the series truncated to 0..i with
the same key, so the last position is the backtest's own value; NaN dropped; a tiny random Toto through the
prefix-shared pass against one forward pass per prefix."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim import forecasters
from jaxsim.engine.daily_forecasted_pnl import daily_forecasted_pnl
from jaxsim.engine.forecasted_pnl import PNL_KEY_SALT, forecasted_pnl
from jaxsim.errors import ConfigError

S = 512
KEY = jax.random.key(7)
N = 12


def _noisy_last(context, valid, key):
    """Draws around the newest value, with key-dependent noise (so the keys are checked too)."""
    return context[-1] + 0.01 * jax.random.normal(key, (S,))


NOISY_LAST = forecasters.from_function(_noisy_last, num_samples=S)


def _series(n=N):
    """(2, 8, n) chronological series: positive means, strategy 2 with NaNs, strategy 3 a negative mean."""
    rng = np.random.default_rng(3)
    series = 0.01 + 0.005 * rng.standard_normal((2, 8, n))
    series[:, 2, [1, 4, 5]] = np.nan
    series[:, 3] -= 0.03
    return series


def _keys(b):
    return jax.vmap(lambda i: jax.random.fold_in(KEY, i))(jnp.arange(b, dtype=jnp.uint32))


@pytest.fixture(scope="module")
def daily():
    series = _series()
    values, sources = daily_forecasted_pnl(NOISY_LAST, series, _keys(2))
    return series, values, sources


def test_every_position_equals_the_rule_on_the_truncated_series(daily):
    series, values, sources = daily
    keys = _keys(2)
    assert values.shape == sources.shape == series.shape
    for i in (2, 3, 6, N - 1):  # few values (mean), the first model position, the last position
        truncated = series[:, :, : i + 1][:, :, ::-1]  # forecasted_pnl takes row order (newest first)
        want, want_sources = forecasted_pnl(NOISY_LAST, truncated, keys, chronological=True)
        np.testing.assert_allclose(values[:, :, i], want, rtol=1e-6, atol=1e-9)
        assert (sources[:, :, i] == want_sources).all()
    assert (sources[:, :, :3] == "mean_few_values").all()
    assert (sources[:, 3, 3:] == "mean_negative").all()
    assert (sources[:, [0, 1, 4], 3:] == "model").all()


def test_nan_positions_repeat_the_last_value_and_means_are_cumulative(daily):
    series, values, sources = daily
    # strategy 2: positions 4 and 5 add no value, so they repeat position 3's forecast (same finite values, same key)
    np.testing.assert_array_equal(values[:, 2, 4], values[:, 2, 3])
    np.testing.assert_array_equal(values[:, 2, 5], values[:, 2, 3])
    finite = np.isfinite(series[:, 3])
    means = np.cumsum(np.where(finite, series[:, 3], 0.0), -1) / np.cumsum(finite, -1)
    np.testing.assert_allclose(values[:, 3], means, rtol=1e-12)  # negative mean: the float64 mean


def test_point_forecaster_and_unsupported_forecaster():
    series = _series(8)[:1]
    values, sources = daily_forecasted_pnl(forecasters.naive(), series, _keys(1))
    assert (values[0, [0, 1, 4], 3:] == 0.0).all() and (sources[0, [0, 1, 4], 3:] == "model").all()
    want, _ = forecasted_pnl(forecasters.naive(), series[:, :, ::-1], _keys(1), chronological=True)
    np.testing.assert_allclose(values[:, :, -1], want, rtol=1e-6)
    with pytest.raises(ConfigError, match="one key per stock"):
        daily_forecasted_pnl(forecasters.naive(), series, _keys(2))


def test_tiny_random_toto_prefix_pass_equals_one_pass_per_prefix():
    from jaxsim.models.toto import forecast as toto_forecast
    from jaxsim.models.toto import model as toto_model

    # patch 8, two layers: the smallest Toto that still has a time-wise and a space-wise layer
    config = dataclasses.replace(toto_model.TOTO_SMALL, num_layers=2, embed_dim=32, mlp_hidden_dim=64)
    params = jax.jit(toto_model.init_toto, static_argnums=0)(config, jax.random.key(1))
    fc = forecasters.toto(config=config, params=params, num_samples=32)  # the series rule draws 512
    n = 16
    series = _series(n)[:1]

    @jax.jit
    def alone(ctx, valid, k):  # one forward pass on one prefix, then its 512 draws
        mix = toto_forecast.next_step_mixture(params, config, ctx[None], valid[None])
        return toto_forecast.sample_mixture(k, mix, S)[0]

    with jax.default_matmul_precision("highest"):
        values, sources = daily_forecasted_pnl(fc, series, KEY[None], stock_chunk=1)
        for j, i in ((0, 9), (2, 12), (4, n - 1)):  # prefixes of 10, 10 (3 NaN) and 16 values: padded to 16
            row = series[0, j, : i + 1]
            ctx, valid = toto_forecast.left_pad(row[np.isfinite(row)].astype(np.float32), config.patch_size)
            key = jax.random.fold_in(jax.random.fold_in(KEY, PNL_KEY_SALT), j)
            want = np.median(np.asarray(alone(jnp.asarray(ctx), jnp.asarray(valid), key)))
            assert sources[0, j, i] == "model"
            np.testing.assert_allclose(values[0, j, i], want, rtol=1e-4, atol=1e-6)
        # (4, n - 1) is the last position: the backtest's rule on the whole series, which
        # tests/test_forecasted_pnl.py checks against this same one-pass computation
