"""PSR, DSR (Bailey & Lopez de Prado's worked example) and PBO by CSCV on constructed cases."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxsim.errors import ConfigError
from jaxsim.stats.selection import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    pbo_cscv,
    probabilistic_sharpe_ratio,
    selection_stats,
)


def test_deflated_sharpe_paper_example():
    """Bailey & Lopez de Prado (2014), "The Deflated Sharpe Ratio", numerical example: N = 100 trials,
    best annualised SR 2.5, variance of the trials' annualised SRs 1/2, T = 1250 daily returns
    (5 years of 250 days), skewness -3, kurtosis 10. Published: SR_0 = 0.1132 (per day) and
    DSR = 0.9004."""
    with jax.enable_x64(True):
        sr0 = float(expected_max_sharpe(0.5 / 250, 100))
        dsr = float(deflated_sharpe_ratio(2.5 / np.sqrt(250), 0.5 / 250, 100, 1250, -3.0, 10.0))
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_psr_hand_formula_and_edge_cases():
    sr, bench, n, g3, g4 = 0.08, 0.02, 500, -0.7, 6.5
    z = (sr - bench) * np.sqrt(n - 1) / np.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    with jax.enable_x64(True):
        assert float(probabilistic_sharpe_ratio(sr, bench, n, g3, g4)) == pytest.approx(stats.norm.cdf(z), rel=1e-12)
        assert float(probabilistic_sharpe_ratio(0.05, 0.05, 100)) == pytest.approx(0.5, abs=1e-15)
        assert float(expected_max_sharpe(0.3, 1)) == 0.0  # one trial: no selection
        # more trials -> a higher bar
        assert float(expected_max_sharpe(1.0, 10)) < float(expected_max_sharpe(1.0, 1000))


def test_selection_stats_matches_numpy():
    rng = np.random.default_rng(0)
    r = rng.standard_t(5, size=(750, 6)) * 0.01 + np.linspace(0, 1e-3, 6)
    mask = rng.random(r.shape) > 0.1
    with jax.enable_x64(True):
        s = selection_stats(jnp.asarray(r), jnp.asarray(mask), n_trials=20)
        sr = []
        for j in range(6):
            x = r[mask[:, j], j]
            sr.append(x.mean() / x.std(ddof=1))
        sr = np.array(sr)
        np.testing.assert_allclose(np.asarray(s.sharpe), sr, rtol=1e-12)
        best = int(np.argmax(sr))
        assert int(s.best) == best
        x = r[mask[:, best], best]
        sr0 = np.sqrt(sr.var(ddof=1)) * (
            (1 - np.euler_gamma) * stats.norm.ppf(1 - 1 / 20) + np.euler_gamma * stats.norm.ppf(1 - 1 / (20 * np.e))
        )
        assert float(s.sr0) == pytest.approx(sr0, rel=1e-10)
        z = (
            (sr[best] - sr0)
            * np.sqrt(len(x) - 1)
            / np.sqrt(1 - stats.skew(x) * sr[best] + (stats.kurtosis(x, fisher=False) - 1) / 4 * sr[best] ** 2)
        )
        assert float(s.dsr) == pytest.approx(stats.norm.cdf(z), rel=1e-10)
        assert float(s.psr[best]) > float(s.dsr)


def _numpy_pbo(r, S):
    """CSCV written directly from Bailey et al. (2015) with loops over the splits."""
    T, N = r.shape
    size = T // S
    blocks = np.split(r[T - size * S :], S)
    logits = []
    for combo in itertools.combinations(range(S), S // 2):
        is_ = np.concatenate([blocks[i] for i in combo])
        oos = np.concatenate([blocks[i] for i in range(S) if i not in combo])
        sr_is = is_.mean(0) / is_.std(0, ddof=1)
        sr_oos = oos.mean(0) / oos.std(0, ddof=1)
        n_star = int(np.argmax(sr_is))
        w = np.sum(sr_oos <= sr_oos[n_star]) / (N + 1)
        logits.append(np.log(w / (1 - w)))
    logits = np.array(logits)
    return np.mean(logits <= 0), logits


def test_pbo_matches_loop_transcription():
    r = np.random.default_rng(1).normal(2e-4, 0.01, (403, 7))
    with jax.enable_x64(True):
        got = pbo_cscv(jnp.asarray(r), n_blocks=8)
        want, logits = _numpy_pbo(r, 8)
        np.testing.assert_allclose(np.asarray(got.logits), logits, rtol=1e-10)
        assert float(got.pbo) == want and got.logits.shape == (70,)


def test_pbo_constructed_cases():
    key = jax.random.PRNGKey(0)
    noise = jax.random.normal(key, (2000, 50)) * 0.01
    # pure noise: the in-sample winner is a random out-of-sample draw, PBO = 1/2 in expectation. One
    # matrix's PBO is noisy (its 252 splits share blocks; 0.23-0.86 over these keys), so average 24.
    keys = jax.random.split(jax.random.PRNGKey(1), 24)
    pbos = jax.vmap(lambda k: pbo_cscv(jax.random.normal(k, (1000, 20)) * 0.01, n_blocks=10).pbo)(keys)
    assert float(jnp.mean(pbos)) == pytest.approx(0.5, abs=0.1)  # measured 0.434 (key 1), 0.517 (key 0)
    # one strategy with a real edge is picked in sample and stays best out of sample
    dominant = noise.at[:, 7].add(0.004)
    res = pbo_cscv(dominant, n_blocks=16)
    assert float(res.pbo) == 0.0 and np.all(np.asarray(res.is_best) == 7) and np.all(np.asarray(res.oos_rank) == 50)
    # identical strategies: whichever is picked ranks at the top (ties count in its favour)
    same = jnp.tile(noise[:, :1], (1, 10))
    assert float(pbo_cscv(same, n_blocks=10).pbo) == 0.0


def test_pbo_rejects_bad_blocks():
    r = jnp.zeros((100, 3))
    for s in (3, 1, 22):
        with pytest.raises(ConfigError, match="n_blocks"):
            pbo_cscv(r, n_blocks=s)
    with pytest.raises(ConfigError, match="2 days per block"):
        pbo_cscv(jnp.zeros((10, 3)), n_blocks=8)


def test_column_and_row_masks_equal_the_slices():
    """selection_stats(columns=) and pbo_cscv(rows=) take traced masks (one compiled program for every
    subset) and give the numbers of the sliced matrix."""
    rng = np.random.default_rng(4)
    r = (rng.standard_t(5, size=(90, 6)) * 0.01 + np.linspace(-1e-3, 2e-3, 6)).astype(np.float32)
    r[rng.random(r.shape) < 0.05] = np.nan
    live = np.array([True, False, True, True, False, True])
    rows = rng.random(90) > 0.25
    sel = jax.jit(selection_stats)
    s, t = sel(r, None, 11, live), sel(r[:, live], None, 11)
    np.testing.assert_allclose(np.asarray(s.sharpe)[live], np.asarray(t.sharpe), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(s.psr)[live], np.asarray(t.psr), rtol=1e-6)
    assert np.isnan(np.asarray(s.sharpe)[~live]).all() and np.isnan(np.asarray(s.psr)[~live]).all()
    assert int(s.best) == np.flatnonzero(live)[int(t.best)] and int(s.n_trials) == 11
    assert float(s.dsr) == pytest.approx(float(t.dsr), rel=1e-5)
    assert float(s.sr0) == pytest.approx(float(t.sr0), rel=1e-5)
    assert int(jax.jit(selection_stats)(r, columns=live).n_trials) == live.sum()  # default: the live columns
    pbo = jax.jit(pbo_cscv, static_argnames=("n_blocks",))
    for blocks in (4, 8):
        a, b = pbo(r, n_blocks=blocks, rows=rows), pbo(r[rows], n_blocks=blocks)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert np.isnan(float(pbo(r, n_blocks=8, rows=np.arange(90) < 15).pbo))  # < 2 days per block
