"""The faster draws and order statistics return jax's values: gamma and categorical bit for bit
against the installed jax, the bitonic sort against jnp.sort, the sorted-input quantile, band and
aggregate against their sorting forms, and Toto's sampler against the jax.random form it replaced."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim.forecast.aggregate import (
    aggregate,
    aggregate_sorted,
    band,
    band_sorted,
    parse_aggregation,
    quantiles_sorted,
    sort_draws,
)
from jaxsim.forecast.interface import DRAW_QUANTILES
from jaxsim.models import sampling
from jaxsim.models.toto import forecast as toto_forecast
from jaxsim.stats.skill import crps_ensemble

pytestmark = pytest.mark.strict_promotion


@pytest.mark.parametrize("low,high,n", [(0.02, 0.99, 4000), (1.0, 6.0, 20000), (0.5, 60.0, 3072), (1e-3, 2.0, 5)])
def test_gamma_equals_jax(low, high, n):
    alpha = jnp.asarray(np.random.default_rng(n).uniform(low, high, n), jnp.float32)
    for seed in range(2):
        key = jax.random.key(seed)
        want = jax.jit(jax.random.gamma)(key, alpha)
        got = jax.jit(sampling.gamma)(key, alpha)
        assert bool(jnp.array_equal(want, got)), int(jnp.sum(want != got))


def test_gamma_keeps_shape_and_batches():
    alpha = jnp.asarray(np.random.default_rng(1).uniform(0.3, 5.0, (3, 4, 50)), jnp.float32)
    keys = jax.random.split(jax.random.key(7), 3)
    want = jax.jit(jax.vmap(jax.random.gamma))(keys, alpha)
    got = jax.jit(jax.vmap(sampling.gamma))(keys, alpha)
    assert got.shape == alpha.shape and bool(jnp.array_equal(want, got))


def test_categorical_and_first_argmax_equal_jax():
    rng = np.random.default_rng(2)
    logits = jnp.log(jnp.asarray(rng.dirichlet(np.ones(24), 5), jnp.float32))[:, None, :]  # (5, 1, K)
    logits = logits.at[0, 0, 3].set(-jnp.inf)  # a zero-weight component is never drawn
    for seed in range(3):
        key = jax.random.key(seed)
        want = jax.jit(lambda k: jax.random.categorical(k, logits, axis=-1, shape=(5, 3072)))(key)
        got = jax.jit(lambda k: sampling.categorical(k, logits, (5, 3072)))(key)
        assert bool(jnp.array_equal(want, got)) and not bool(jnp.any(got[0] == 3))
    x = jnp.array([[1.0, 3.0, 3.0, 2.0], [jnp.nan, 1.0, jnp.nan, 5.0], [-jnp.inf] * 4, [2.0, jnp.inf, jnp.inf, 1.0]])
    np.testing.assert_array_equal(sampling.first_argmax(x), jnp.argmax(x, axis=-1))
    np.testing.assert_array_equal(sampling.first_argmax(x.T, axis=0), jnp.argmax(x.T, axis=0))


def test_bits_split_uniform_normal_equal_jax_plain_and_vmapped():
    keys = jax.random.split(jax.random.key(11), 4)
    data = jax.random.key_data(keys)

    def ours(d):
        return (
            sampling.random_bits(d, (3, 5)),
            sampling.random_bits(d, ()),
            sampling.split(d, 3),
            sampling.uniform(d, (7,)),
            sampling.normal(d, (2, 3)),
        )

    def theirs(k):
        return (
            jax.random.bits(k, (3, 5)),
            jax.random.bits(k),
            jax.random.key_data(jax.random.split(k, 3)),
            jax.random.uniform(k, (7,)),
            jax.random.normal(k, (2, 3)),
        )

    twice = jax.vmap(jax.vmap(ours)), jax.vmap(jax.vmap(theirs))
    checks = [
        (jax.jit(ours)(data[0]), jax.jit(theirs)(keys[0])),
        (jax.jit(jax.vmap(ours))(data), jax.jit(jax.vmap(theirs))(keys)),  # the hash's own batching rule
        (jax.jit(twice[0])(data.reshape(2, 2, 2)), jax.jit(twice[1])(keys.reshape(2, 2))),
    ]
    for got, want in checks:
        for g, w in zip(got, want):
            assert g.shape == w.shape and bool(jnp.array_equal(g, w))
    # several lanes' split and uniform as one hash
    keys3, u = sampling.split_and_uniform(data, 3, data[::-1])
    assert bool(jnp.array_equal(keys3, jax.vmap(lambda k: sampling.split(k, 3))(data)))
    assert bool(jnp.array_equal(u, jax.vmap(lambda k: jax.random.uniform(k))(keys[::-1])))
    # one key, batched counters (vmap over the counters only)
    lo = jnp.arange(6, dtype=jnp.uint32)
    hi = jnp.zeros((), jnp.uint32)
    got = jax.vmap(lambda x: sampling.threefry2x32(data[0, 0], data[0, 1], hi, x))(lo)
    want = sampling.threefry2x32(data[0, 0], data[0, 1], jnp.zeros_like(lo), lo)
    assert all(bool(jnp.array_equal(g, w)) for g, w in zip(got, want))


def test_lane_while_equals_vmapped_while():
    def cond(s):
        return s[0] < s[1]

    def body(s):
        return s[0] * 1.5 + 0.25, s[1]

    start = (jnp.ones(300), jnp.asarray(np.random.default_rng(3).exponential(20.0, 300), jnp.float32))
    want = jax.vmap(lambda s: jax.lax.while_loop(cond, body, s))(start)
    for slots in (1, 7, 300):  # rounds on a few lanes, including more laggards than slots
        got = jax.jit(lambda s: sampling.lane_while(cond, body, s, slots))(start)
        np.testing.assert_array_equal(got[0], want[0])


def _draws(n_rows, size):
    rng = np.random.default_rng(size)
    x = rng.standard_t(3, (n_rows, size)).astype(np.float32)
    x[0, : size // 3] = 0.0
    x[1] = np.round(x[1])  # ties
    if size > 4:
        x[2, 1], x[2, 3], x[3, 0] = np.nan, np.inf, -np.inf
    return jnp.asarray(x)


@pytest.mark.parametrize("size", [1, 2, 7, 256, 1000, 3072])
def test_sort_and_sorted_statistics(size):
    x = _draws(12, size)
    np.testing.assert_array_equal(jax.jit(sort_draws)(x), jnp.sort(x, axis=-1))  # NaN-aware equality
    xs = sort_draws(x)
    for spec in ("trimmed_mean_10", "mean", "median", "quantile_0.3", "mean_plus_std_1", "lower_trimmed_mean_20"):
        parsed = parse_aggregation(spec)
        np.testing.assert_array_equal(
            jax.vmap(lambda r: aggregate_sorted(r, parsed))(xs), jax.vmap(lambda r: aggregate(r, parsed))(x)
        )
    np.testing.assert_array_equal(jax.vmap(band_sorted)(xs), jax.vmap(band)(x))
    np.testing.assert_array_equal(
        jax.vmap(lambda r: quantiles_sorted(r, DRAW_QUANTILES))(xs),
        jax.vmap(lambda r: jnp.quantile(r, jnp.asarray(DRAW_QUANTILES, jnp.float32)))(x),
    )
    # the CRPS sum may be ordered differently by XLA: equal to float32 rounding
    zero = jnp.float32(0.0)
    np.testing.assert_allclose(
        jax.vmap(lambda r: crps_ensemble(r, zero, presorted=True))(xs),
        jax.vmap(lambda r: crps_ensemble(r, zero))(x),
        rtol=2e-6,
        atol=0,
    )


def _jax_random_sampler(key, mixture, num_samples):
    """Toto's sampler written with jax.random.categorical and jax.random.gamma (what it replaced)."""
    k_cat, k_norm, k_gamma = jax.random.split(key, 3)
    shape = mixture.weights.shape[:-1] + (num_samples,)
    comp = jax.random.categorical(k_cat, jnp.log(mixture.weights)[..., None, :], axis=-1, shape=shape)[..., None]

    def pick(a):
        return jnp.take_along_axis(jnp.broadcast_to(a[..., None, :], shape + a.shape[-1:]), comp, -1)[..., 0]

    df, mu, s = pick(mixture.df), pick(mixture.loc), pick(mixture.scale)
    y = mu + s * jax.random.normal(k_norm, shape) / jnp.sqrt(2.0 * jax.random.gamma(k_gamma, df / 2.0) / df)
    return toto_forecast.replace_extreme_values(mixture.affine_loc[..., None] + mixture.affine_scale[..., None] * y)


def test_toto_sampler_draws_are_unchanged():
    rng = np.random.default_rng(4)
    e, k = 24, 24

    def arr(a):
        return jnp.asarray(a, jnp.float32)

    mixture = toto_forecast.Mixture(
        df=arr(2.0 + rng.exponential(3.0, (e, k))),
        loc=arr(rng.normal(0, 0.01, (e, k))),
        scale=arr(rng.uniform(0.005, 0.02, (e, k))),
        weights=arr(rng.dirichlet(np.ones(k), e)),
        affine_loc=arr(rng.normal(0, 0.01, e)),
        affine_scale=arr(rng.uniform(0.5, 2.0, e)),
    )
    keys = jax.random.split(jax.random.key(0), e)

    def chunked(sampler):
        def one(km):
            return sampler(km[0], jax.tree.map(lambda a: a[None], km[1]), 3072)[0]

        return jax.jit(lambda ks, m: jax.lax.map(one, (ks, m), batch_size=8))(keys, mixture)

    np.testing.assert_array_equal(chunked(toto_forecast.sample_mixture), chunked(_jax_random_sampler))
