"""Forecaster interface: unique contexts, padding groups, keys, baselines, user functions, Toto batching."""

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim import forecasters
from jaxsim.forecast import TARGET_IDS, Forecast, Forecaster, StockArrays, register_forecaster
from jaxsim.forecast.grid import ForecastGrid


def _stock(n_rows, seed=0):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n_rows)))
    high = close * (1 + rng.uniform(0, 0.02, n_rows))
    low = close * (1 - rng.uniform(0, 0.02, n_rows))
    table = np.stack([close, high, low, close, np.ones(n_rows)], 1).astype(np.float32)
    return StockArrays(jnp.asarray(table), jnp.zeros((n_rows, 0)))


def _returns(col):
    col = np.asarray(col, np.float64)
    return np.concatenate([[1.0], col[1:] / col[:-1] - 1])


@register_forecaster
class PaddingSensitive(Forecaster):
    """Point = sum of the context + 1e-3 * padded length: wrong padding changes the value."""

    params: Any = ()
    pad_multiple = 64
    kind = "test"

    def forecast_group(self, context, valid, keys):
        return Forecast(point=context.sum(-1) + 1e-3 * context.shape[-1])


def test_each_context_gets_exactly_its_own_padding():
    grid = ForecastGrid(n_rows=140, n_sims=12)  # lengths 120..137: padded 128 and 192
    stock = _stock(140)
    out = PaddingSensitive().forecast(stock, grid, ("close", "high"), jax.random.key(0))
    assert out.point.shape == (2, 18)
    for x, col in ((0, 3), (1, 1)):
        r = _returns(np.asarray(stock.prices[:, col]))
        for o, t in enumerate(grid.origins):
            alone = r[1:t].astype(np.float32).sum() + 1e-3 * math.ceil((t - 1) / 64) * 64
            np.testing.assert_allclose(float(out.point[x, o]), alone, rtol=1e-5, atol=1e-6)


def test_historical_mean_is_the_mean_of_the_valid_context():
    grid = ForecastGrid(n_rows=80, n_sims=10, max_context=30)
    stock = _stock(80, seed=1)
    out = forecasters.historical_mean().forecast(stock, grid, ("close", "low"), jax.random.key(0))
    for x, col in ((0, 3), (1, 2)):
        r = _returns(np.asarray(stock.prices[:, col]))
        want = [r[max(1, t - 30) : t].mean() for t in grid.origins]
        np.testing.assert_allclose(np.asarray(out.point[x]), want, rtol=1e-5, atol=1e-7)


def test_naive_forecasts_zero():
    grid = ForecastGrid(n_rows=40, n_sims=8)
    out = forecasters.naive().forecast(_stock(40), grid, ("close",), jax.random.key(0))
    assert out.point.shape == (1, 14) and float(jnp.abs(out.point).max()) == 0.0


def _draws(context, valid, key):
    """A user forecaster: 16 draws around the masked context mean."""
    mean = jnp.sum(jnp.where(valid, context, 0.0)) / jnp.maximum(valid.sum(), 1)
    return mean + 0.01 * jax.random.normal(key, (16,))


def test_from_function_keys_do_not_depend_on_batch_composition():
    stock = _stock(90, seed=2)
    fc = forecasters.from_function(_draws, num_samples=16)
    key = jax.random.key(7)
    both = fc.forecast(stock, ForecastGrid(90, 10), ("close", "high"), key).samples
    alone = fc.forecast(stock, ForecastGrid(90, 4), ("close",), key).samples
    assert both.shape == (2, 16, 16) and alone.shape == (1, 10, 16)
    # the N=4 grid's origins are the last 10 of the N=10 grid; same (target, origin) -> same draws
    np.testing.assert_allclose(np.asarray(alone[0]), np.asarray(both[0, 6:]), rtol=1e-6)
    # the documented key rule
    t = 88
    k = jax.random.fold_in(jax.random.fold_in(key, TARGET_IDS["high"]), 90 - 1 - t)
    r = _returns(np.asarray(stock.prices[:, 1]))[1:t].astype(np.float32)
    want = _draws(jnp.asarray(r), jnp.ones(len(r), bool), k)
    np.testing.assert_allclose(np.asarray(both[1, -1]), np.asarray(want), rtol=1e-5, atol=1e-7)


def test_from_function_scalar_output_is_a_point_forecast_and_bad_shapes_raise():
    stock = _stock(50)
    grid = ForecastGrid(50, 5)
    point = forecasters.from_function(lambda c, v, k: jnp.float32(0.5)).forecast(
        stock, grid, ("close",), jax.random.key(0)
    )
    assert point.samples is None and np.allclose(np.asarray(point.point), 0.5)
    bad = forecasters.from_function(lambda c, v, k: jnp.zeros((3,)), num_samples=4)
    with pytest.raises(ValueError, match="4"):
        bad.forecast(stock, grid, ("close",), jax.random.key(0))


def test_forecasters_are_pytrees_with_static_config():
    fc = forecasters.from_function(_draws, num_samples=16)
    leaves, tree = jax.tree_util.tree_flatten(fc)
    assert leaves == []
    assert jax.tree_util.tree_unflatten(tree, leaves) == fc
    assert hash(fc) == hash(forecasters.from_function(_draws, num_samples=16))


def test_batched_toto_equals_one_context_at_a_time():
    from jaxsim.models.toto import forecast as toto_forecast
    from jaxsim.models.toto import model as toto_model

    config = toto_model.TOTO_SMALL  # patch 8: the contexts span two padded lengths
    params = jax.jit(toto_model.init_toto, static_argnums=0)(config, jax.random.key(1))  # faster than eager
    fc = forecasters.toto(config=config, params=params, num_samples=32)
    grid = ForecastGrid(n_rows=60, n_sims=3)  # origins 50..58: lengths 49..57 -> padded 56 and 64
    stock = _stock(60, seed=3)
    key = jax.random.key(3)

    @jax.jit
    def alone(ctx, valid, k):  # the official way: this context alone, padded to its own multiple
        mix = toto_forecast.next_step_mixture(params, config, ctx[None], valid[None])
        return toto_forecast.sample_mixture(k, mix, 32)[0]

    with jax.default_matmul_precision("highest"):
        batched = jax.jit(lambda f, s, k: f.forecast(s, grid, ("close", "low"), k).samples)(fc, stock, key)
        lengths = set()
        for x, col in (("close", 3), ("low", 2)):
            r = _returns(np.asarray(stock.prices[:, col]))
            for o, t in enumerate(grid.origins):
                ctx, valid = toto_forecast.left_pad(r[1:t].astype(np.float32), config.patch_size)
                lengths.add(len(ctx))
                k = jax.random.fold_in(jax.random.fold_in(key, TARGET_IDS[x]), 60 - 1 - t)
                got = batched[("close", "low").index(x), o]
                # same draws up to float rounding of batched vs single matmuls (heavy Student-T tails
                # amplify a 1e-7 difference in the mixture to ~2e-5 in a draw)
                np.testing.assert_allclose(
                    np.asarray(got), np.asarray(alone(jnp.asarray(ctx), jnp.asarray(valid), k)), rtol=1e-4, atol=1e-5
                )
    assert lengths == {56, 64}


def test_series_forecaster_draws_are_the_fast_samplers_draws():
    import dataclasses

    from jaxsim.models.toto import model as toto_model

    config = toto_model.TOTO_SMALL
    params = jax.jit(toto_model.init_toto, static_argnums=0)(config, jax.random.key(2))
    fc = forecasters.toto(config=config, params=params)
    rng = np.random.default_rng(5)
    context = jnp.asarray(rng.normal(0, 0.01, (1, 9, 16)), jnp.float32)  # nine strategy series
    valid = jnp.asarray(np.arange(16)[None, :] >= rng.integers(0, 12, (9, 1)))
    keys = jax.random.split(jax.random.key(4), 9)[None]
    draw = jax.jit(lambda f: f.forecast_group(context, valid, keys).samples)
    for n_values, draws in ((40, 512), (5, 256)):
        series = fc.series_forecaster(n_values)  # jax.random's samplers: a smaller program, the same values
        assert series.num_samples == draws and not series.fast_sampler
        np.testing.assert_array_equal(draw(series), draw(dataclasses.replace(series, fast_sampler=True)))
