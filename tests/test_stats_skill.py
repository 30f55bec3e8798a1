"""Forecast skill: CRPS against properscoring, naive skill exactly 0, binomial p-value against scipy,
coverage and PIT against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import properscoring
import pytest
from scipy import stats

from jaxsim.stats.skill import binomial_sf, crps_ensemble, forecast_skill, pit_values


def _case(seed=0, T=300, S=64):
    rng = np.random.default_rng(seed)
    y = rng.normal(0, 0.01, T)
    y[rng.random(T) < 0.05] = 0.0  # some days without a move
    point = 0.3 * y + rng.normal(0, 0.008, T)
    draws = point[:, None] + rng.normal(0, 0.01, (T, S))
    mask = rng.random(T) > 0.1
    return point, y, draws, mask


def test_crps_matches_properscoring():
    point, y, draws, _ = _case()
    with jax.enable_x64(True):
        got = np.asarray(crps_ensemble(jnp.asarray(draws), jnp.asarray(y)))
    np.testing.assert_allclose(got, properscoring.crps_ensemble(y, draws), rtol=1e-6)
    # float32 at the library default: within 1e-4 relative of the float64 reference (sums of 64 terms)
    got32 = np.asarray(crps_ensemble(jnp.asarray(draws, jnp.float32), jnp.asarray(y, jnp.float32)))
    np.testing.assert_allclose(got32, properscoring.crps_ensemble(y, draws), rtol=1e-4)


def test_fair_crps_and_single_draw():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 9)), rng.normal(size=20)
    pair = np.abs(x[:, :, None] - x[:, None, :]).sum((1, 2))
    want = np.abs(x - y[:, None]).mean(1) - pair / (2 * 9 * 8)
    with jax.enable_x64(True):
        fair = crps_ensemble(jnp.asarray(x), jnp.asarray(y), fair=True)
        np.testing.assert_allclose(np.asarray(fair), want, rtol=1e-12)
        one = crps_ensemble(jnp.asarray(x[:, :1]), jnp.asarray(y))
        np.testing.assert_allclose(np.asarray(one), np.abs(x[:, 0] - y), rtol=1e-12)


def test_point_scores_match_numpy():
    point, y, draws, mask = _case()
    with jax.enable_x64(True):
        s = forecast_skill(jnp.asarray(point), jnp.asarray(y), jnp.asarray(mask), jnp.asarray(draws))
    f, o, d = point[mask], y[mask], draws[mask]
    mae, mae0 = np.mean(np.abs(f - o)), np.mean(np.abs(o))
    rmse, rmse0 = np.sqrt(np.mean((f - o) ** 2)), np.sqrt(np.mean(o**2))
    assert int(s.n_days) == mask.sum()
    for got, want in [
        (s.mae, mae),
        (s.rmse, rmse),
        (s.mae_skill, 1 - mae / mae0),
        (s.rmse_skill, 1 - rmse / rmse0),
        (s.crps, properscoring.crps_ensemble(o, d).mean()),
        (s.crps_naive, mae0),
    ]:
        assert float(got) == pytest.approx(want, rel=1e-6)
    called = (f != 0) & (o != 0)
    hits = int(np.sum(np.sign(f[called]) == np.sign(o[called])))
    assert int(s.direction_n) == called.sum()
    assert float(s.direction_accuracy) == pytest.approx(hits / called.sum(), rel=1e-12)
    pv = stats.binomtest(hits, int(called.sum()), 0.5, alternative="greater").pvalue
    assert float(s.direction_pvalue) == pytest.approx(pv, rel=1e-6)
    lo, hi = np.quantile(d, [0.1, 0.9], axis=1)
    assert float(s.coverage_80) == pytest.approx(np.mean((o >= lo) & (o <= hi)), rel=1e-12)
    pit = (np.sum(d < o[:, None], 1) + 0.5 * np.sum(d == o[:, None], 1)) / d.shape[1]
    np.testing.assert_array_equal(np.asarray(s.pit_counts), np.histogram(pit, bins=10, range=(0, 1))[0])


def test_naive_forecaster_skill_is_exactly_zero():
    _, y, _, mask = _case(2)
    for dtype in (jnp.float32, jnp.float64):
        with jax.enable_x64(dtype == jnp.float64):
            zeros = jnp.zeros(len(y), dtype)
            s = forecast_skill(zeros, jnp.asarray(y, dtype), jnp.asarray(mask), zeros[:, None])
            assert float(s.mae_skill) == 0.0 and float(s.rmse_skill) == 0.0 and float(s.crps_skill) == 0.0
            assert int(s.direction_n) == 0 and float(s.direction_pvalue) == 1.0  # no calls made


def test_binomial_sf_and_pit_edges():
    with jax.enable_x64(True):
        for k, n in [(0, 10), (1, 10), (7, 10), (10, 10), (260, 500)]:
            want = stats.binom.sf(k - 1, n, 0.5)
            assert float(binomial_sf(k, n)) == pytest.approx(want, rel=1e-10), (k, n)
    u = np.asarray(pit_values(jnp.asarray([[0.0, 1.0, 2.0]]), jnp.asarray([1.0])))
    assert u.tolist() == [0.5]  # half of a tie counts below


def test_without_draws_and_vmapped_over_targets():
    point, y, draws, mask = _case(3)
    s = forecast_skill(jnp.asarray(point), jnp.asarray(y), jnp.asarray(mask))
    assert np.isnan(float(s.crps)) and np.isnan(float(s.coverage_80)) and int(s.pit_counts.sum()) == 0
    lo, hi = point - 0.01, point + 0.01
    banded = forecast_skill(jnp.asarray(point), jnp.asarray(y), jnp.asarray(mask), band=(lo, hi))
    inside = (y >= lo) & (y <= hi)
    assert float(banded.coverage_80) == pytest.approx(np.mean(inside[mask]), rel=1e-6)
    X = 3
    P = jnp.asarray(np.stack([point] * X)), jnp.asarray(np.stack([y] * X))
    D = jnp.asarray(np.stack([draws] * X))
    batched = jax.vmap(lambda p, o, d: forecast_skill(p, o, jnp.asarray(mask), d))(*P, D)
    assert batched.pit_counts.shape == (X, 10) and batched.mae.shape == (X,)
    one = forecast_skill(jnp.asarray(point), jnp.asarray(y), jnp.asarray(mask), jnp.asarray(draws))
    assert float(batched.crps[2]) == pytest.approx(float(one.crps), rel=1e-6)
