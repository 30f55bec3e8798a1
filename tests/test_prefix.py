"""Prefix-shared Toto forecasts equal the per-context path: mixtures, clamp bounds, draws, N-invariance."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from prefix_helpers import prefix_forecast, prefix_passes_floor
from toto_helpers import rel_err

from jaxsim import forecasters
from jaxsim.errors import ConfigError
from jaxsim.forecast import StockArrays
from jaxsim.forecast.grid import ForecastGrid, context_groups, gather_contexts
from jaxsim.forecast.interface import target_returns
from jaxsim.forecast.prefix import is_prefix_shareable, prefix_clamp_exact, prefix_mixtures, prefix_plan
from jaxsim.models.toto import forecast as toto_forecast
from jaxsim.models.toto import model as toto_model

TARGETS = ("close", "high", "low")
# patch 16, two layers (time, space): a second patch size next to TOTO_SMALL's 8
TOTO_P16 = toto_model.TotoConfig(
    patch_size=16,
    embed_dim=32,
    num_layers=2,
    num_heads=2,
    mlp_hidden_dim=64,
    spacewise_every_n_layers=2,
    k_components=3,
)


def _stock(n_rows, seed=0, vol=0.02):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, vol, n_rows)))
    high = close * (1 + rng.uniform(0, 0.02, n_rows))
    low = close * (1 - rng.uniform(0, 0.02, n_rows))
    table = np.stack([close, high, low, close, np.ones(n_rows)], 1).astype(np.float32)
    return StockArrays(jnp.asarray(table), jnp.zeros((n_rows, 0)))


@pytest.fixture(scope="module", params=[toto_model.TOTO_SMALL, TOTO_P16], ids=["p8", "p16"])
def model(request):
    config = request.param
    return config, jax.jit(toto_model.init_toto, static_argnums=0)(config, jax.random.key(1))


def per_context_mixtures(params, config, returns, grid):
    """The per-context path's mixtures: each padded-length group, one forward per context."""
    step = jax.jit(toto_forecast.next_step_mixture, static_argnums=1)
    parts = []
    for group in context_groups(grid, config.patch_size):
        context, valid = gather_contexts(returns, grid, group)
        x, n, length = context.shape
        flat_valid = jnp.broadcast_to(valid[None], context.shape).reshape(x * n, length)
        mix = step(params, config, context.reshape(x * n, length), flat_valid)
        parts.append(jax.tree.map(lambda a: a.reshape((x, n) + a.shape[1:]), mix))
    return jax.tree.map(lambda *a: jnp.concatenate(a, axis=1), *parts)


def assert_mixtures_close(got, want, tol=1e-5):
    for name in ("df", "scale", "affine_scale"):  # positive: plain relative error
        assert rel_err(getattr(got, name), getattr(want, name)) <= tol, name
    for name in ("loc", "weights", "affine_loc"):  # signed / small: relative to the mean magnitude
        assert rel_err(getattr(got, name), getattr(want, name), floor="mean") <= tol, name


def test_plan_covers_every_origin_once_with_its_own_padding():
    grid = ForecastGrid(n_rows=80, n_sims=40)  # context lengths 32..77
    plan = prefix_plan(grid, 8)
    served = np.concatenate([p.served for p in plan])
    assert sorted(served) == list(range(grid.n_origins))
    assert sum(len(p.row_origins) for p in plan) == 8 == prefix_passes_floor(grid, 8)[0]
    assert [p.length for p in plan] == [72, 80]
    for p in plan:
        t = grid.origins[p.served]
        own = -(-(t - 1) // 8) * 8  # the padded length of the origin's context alone
        np.testing.assert_array_equal((p.tokens + 1) * 8, own)
        # the row's context starts with the origin's padded context (same left padding)
        np.testing.assert_array_equal(p.row_origins[p.rows] - p.length, t - own)


def test_capped_context_is_not_prefix_shareable():
    assert is_prefix_shareable(ForecastGrid(80, 10))
    assert is_prefix_shareable(ForecastGrid(80, 10), toto_model.TOTO_SMALL)
    assert not is_prefix_shareable(ForecastGrid(80, 10, max_context=32))
    with pytest.raises(ConfigError, match="max_context"):
        prefix_plan(ForecastGrid(80, 10, max_context=32), 8)


@pytest.mark.parametrize("n_sims", [3, 20, 60])  # 9 origins (one per class) .. 66 (up to 5 per class)
def test_prefix_mixtures_equal_the_per_context_path(model, n_sims):
    config, params = model
    grid = ForecastGrid(n_rows=80, n_sims=n_sims)
    lengths = grid.context_lengths()
    if n_sims >= 20:  # origins with and without their own left padding
        assert (lengths % config.patch_size == 0).any() and (lengths % config.patch_size != 0).any()
    returns = target_returns(_stock(80, seed=n_sims).prices, TARGETS)
    with jax.default_matmul_precision("highest"):
        got = jax.jit(lambda p, r: prefix_mixtures(p, config, r, grid))(params, returns)
        want = per_context_mixtures(params, config, returns, grid)
    assert got.df.shape == (3, grid.n_origins, config.k_components)
    assert got.affine_scale.shape == (3, grid.n_origins)
    assert_mixtures_close(got, want)
    assert bool(prefix_clamp_exact(config, returns, grid).all())


def test_per_origin_clamp_bounds_equal_those_of_the_origin_alone():
    config = toto_model.TOTO_SMALL
    grid = ForecastGrid(n_rows=80, n_sims=40)
    returns = np.asarray(target_returns(_stock(80, seed=5).prices, ("close",)))[0]
    stats = jax.jit(toto_model.causal_patch_stats, static_argnums=2)
    for p in prefix_plan(grid, 8):
        for row_t, o, _r, tok in zip(p.row_origins[p.rows], p.served, p.rows, p.tokens):
            t = grid.origins[o]
            row, row_valid = toto_forecast.left_pad(returns[1:row_t], 8)
            own, own_valid = toto_forecast.left_pad(returns[1:t], 8)
            np.testing.assert_array_equal(row[: len(own)], own)  # a prefix, same left padding
            _, _, g_row = stats(jnp.asarray(row), jnp.asarray(row_valid), config)
            _, _, g_own = stats(jnp.asarray(own), jnp.asarray(own_valid), config)
            lo_row, hi_row = toto_model.clamp_bounds(g_row[tok], config)
            lo_own, hi_own = toto_model.clamp_bounds(g_own[-1], config)
            np.testing.assert_allclose([lo_row, hi_row], [lo_own, hi_own], rtol=1e-6)


def test_a_binding_clamp_is_detected_and_the_rest_stays_exact():
    # exponent 0.1: bounds sigma_g * [0.79, 1.26]; a calm history then a 100x volatility burst makes
    # the later origins clamp their early patches, which the shared pass cannot reproduce
    config = dataclasses.replace(toto_model.TOTO_SMALL, scale_factor_exponent=0.1)
    params = jax.jit(toto_model.init_toto, static_argnums=0)(config, jax.random.key(2))
    grid = ForecastGrid(n_rows=80, n_sims=40)
    rng = np.random.default_rng(0)
    r = np.concatenate([rng.normal(0, 0.02, 50), rng.normal(0, 2.0, 30)]).astype(np.float32)[None]
    returns = jnp.asarray(r)
    exact = np.asarray(prefix_clamp_exact(config, returns, grid))[0]
    assert exact.any() and not exact.all()
    with jax.default_matmul_precision("highest"):
        got = jax.jit(lambda p, x: prefix_mixtures(p, config, x, grid))(params, returns)
        want = per_context_mixtures(params, config, returns, grid)
    pick = lambda m, mask: jax.tree.map(lambda a: a[:, mask], m)  # noqa: E731
    assert_mixtures_close(pick(got, exact), pick(want, exact))
    assert rel_err(got.df[:, ~exact], want.df[:, ~exact]) > 1e-4  # the flag is not vacuous
    np.testing.assert_allclose(got.affine_scale, want.affine_scale, rtol=1e-6)  # own clamp: exact


def test_prefix_draws_equal_toto_forecaster_draws(model):
    config, params = model
    grid = ForecastGrid(n_rows=80, n_sims=30)
    stock, key = _stock(80, seed=7), jax.random.key(11)
    fc = forecasters.toto(config=config, params=params, num_samples=64)
    with jax.default_matmul_precision("highest"):
        want = jax.jit(lambda f, s, k: f.forecast(s, grid, TARGETS, k).samples)(fc, stock, key)
        got = jax.jit(
            lambda p, s, k: prefix_forecast(p, config, 64, target_returns(s.prices, TARGETS), grid, k, TARGETS).samples
        )(params, stock, key)
    assert got.shape == (3, grid.n_origins, 64)
    # same keys, same sampler: equal up to the float rounding of the mixtures (heavy Student-T tails
    # amplify a 1e-7 difference in the mixture to ~1e-5 in a draw)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-5)


def test_recent_origins_do_not_depend_on_n():
    config = toto_model.TOTO_SMALL
    params = jax.jit(toto_model.init_toto, static_argnums=0)(config, jax.random.key(1))
    stock, key = _stock(120, seed=9), jax.random.key(4)
    returns = target_returns(stock.prices, ("close", "low"))

    def run(n_sims):
        grid = ForecastGrid(n_rows=120, n_sims=n_sims)
        fn = jax.jit(
            lambda p, r, k: (
                prefix_mixtures(p, config, r, grid),
                prefix_forecast(p, config, 32, r, grid, k, ("close", "low")).samples,
            )
        )
        return fn(params, returns, key)

    with jax.default_matmul_precision("highest"):
        small_mix, small = run(5)  # 11 origins: some length classes only
        big_mix, big = run(100)  # 106 origins: every class, up to 14 origins per class
    recent = lambda a: a[:, -small.shape[1] :]  # noqa: E731
    assert_mixtures_close(jax.tree.map(recent, big_mix), small_mix)
    np.testing.assert_allclose(np.asarray(recent(big)), np.asarray(small), rtol=1e-5, atol=1e-5)
