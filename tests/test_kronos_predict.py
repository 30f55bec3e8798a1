"""Kronos prediction procedure against the official predictor (fixtures from the reference venv).

Greedy end-to-end parity in the three window regimes of docs/models.md#kronos-parity-plan (no slide, L = C, L > C) for
frames with and without volume/amount; the sampling filter against the reference's filtered probabilities,
exactly and statistically (chi-square of JAX draws).
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from kronos_helpers import FIX, bundle, unit  # noqa: E402,F401  (pytest fixtures)
from scipy import stats

from jaxsim.errors import ConfigError, PriceDataError
from jaxsim.models.kronos.predict import (
    _predict,
    filter_logits,
    frame_to_features,
    normalize,
    predict,
    time_features,
)

pytestmark = pytest.mark.strict_promotion(rank=False)  # Flax-style (D,) scales broadcast over (..., D)
COLS = ("open", "high", "low", "close", "volume", "amount")


@pytest.fixture(autouse=True)
def highest_precision():
    with jax.default_matmul_precision("highest"):
        yield


def load_regime(name):
    meta = json.loads((FIX / "meta_mini.json").read_text())["regimes"][name]
    e = np.load(FIX / f"e2e_mini_{name}.npz")
    frames, xs, ys, want = [], [], [], []
    for j in range(3):
        frames.append(pd.DataFrame({c: e[f"f{j}_{c}"] for c in COLS if f"f{j}_{c}" in e}))
        xs.append(time_features(e[f"f{j}_x_dates"].astype("datetime64[ns]")))
        ys.append(time_features(e[f"f{j}_y_dates"].astype("datetime64[ns]")))
        want.append(e[f"f{j}_pred"])
    return meta, frames, np.stack(xs), np.stack(ys), np.stack(want), e["single_pred"]


@pytest.mark.parametrize("regime", ["noslide", "equal", "long"])
def test_greedy_predictions_match_reference(bundle, regime):
    meta, frames, xs, ys, want, single = load_regime(regime)
    assert [list(f.columns) for f in frames] == [list(COLS), list(COLS[:4]), list(COLS[:5])]
    x = np.stack([frame_to_features(f) for f in frames])
    mean, paths = predict(
        bundle,
        x,
        xs,
        ys,
        pred_len=want.shape[1],
        key=jax.random.PRNGKey(7),
        sample_count=2,
        temperature=1.0,
        top_k=1,
        top_p=1.0,
        max_context=meta["C"],
        clip=5.0,
    )
    assert mean.shape == want.shape and paths.shape == (3, 2) + want.shape[1:]
    # float32 resolution of mu + sigma * y: an absolute floor on the column's own scale
    mu, scale = np.mean(x, 1), np.std(x, 1)
    atol = 1e-6 * (np.abs(mu) + scale)[:, None, :]
    err = np.abs(np.asarray(mean) - want) / (1e-5 * np.abs(want) + atol)
    assert err.max() <= 1.0, f"max error {err.max():.3g} x (rtol 1e-5 + column atol)"
    np.testing.assert_allclose(paths[:, 0], paths[:, 1], rtol=1e-6)  # greedy: identical paths
    np.testing.assert_allclose(want[2], single, rtol=1e-6)  # predict == predict_batch (reference)
    assert np.abs(want[:, :, :4] - mu[:, None, :4]).max() > 0.1  # predictions move away from the mean
    if regime == "equal":  # temperature, top_p and clip are traced: no recompilation
        compiled = _predict._cache_size()
        m2, p2 = predict(
            bundle,
            x,
            xs,
            ys,
            pred_len=want.shape[1],
            key=jax.random.PRNGKey(8),
            sample_count=2,
            temperature=0.7,
            top_k=1,
            top_p=0.5,
            max_context=meta["C"],
            clip=2.0,
        )
        assert _predict._cache_size() == compiled
        assert np.abs(np.asarray(m2) - np.asarray(mean)).max() > 0  # clip 2 changes the inputs


def test_filter_matches_reference_probabilities(unit):
    for row, (t, k, p) in enumerate(unit["filter_params"]):
        f = jax.vmap(lambda l: jax.nn.softmax(filter_logits(l, temperature=t, top_k=int(k), top_p=p)))(
            unit["filter_logits"]
        )
        want = unit["filter_probs"][row]
        np.testing.assert_array_equal(np.asarray(f) > 0, want > 0, err_msg=f"kept set, T={t} k={k} p={p}")
        np.testing.assert_allclose(f, want, atol=1e-6, err_msg=f"T={t} k={k} p={p}")
    # top-k keeps all ties at the threshold (row 4 has >= 7 tied maxima) and ignores top_p
    row = unit["filter_logits"][4]
    kept = (np.asarray(jax.nn.softmax(filter_logits(row, temperature=1.0, top_k=1, top_p=0.1))) > 0).sum()
    assert kept == (row == row.max()).sum() >= 7


def test_top_p_keeps_shortest_prefix_exceeding_mass():
    logits = jnp.log(jnp.array([0.5, 0.3, 0.15, 0.05]))
    kept = lambda p: np.flatnonzero(np.isfinite(filter_logits(logits, temperature=1.0, top_k=0, top_p=p)))
    assert kept(0.79).tolist() == [0, 1]  # 0.8 > 0.79 after two tokens
    assert kept(0.8).tolist() == [0, 1, 2]  # strict '>': 0.8 does not exceed 0.8
    assert kept(0.1).tolist() == [0]  # the top token always stays
    assert kept(1.0).tolist() == [0, 1, 2, 3]  # disabled


def test_sampling_frequencies_match_reference_probabilities(unit):
    """Chi-square of 1e5 JAX draws per setting against the reference's filtered probabilities."""
    chunks, per = 10, 10_000
    n = chunks * per

    @jax.jit
    def counts_of(key, f):  # categorical draws on filtered logits, in chunks to bound memory
        def body(c, k):
            return c + jnp.bincount(jax.random.categorical(k, f, shape=(per,)), length=f.shape[0]), None

        return jax.lax.scan(body, jnp.zeros(f.shape[0], jnp.int32), jax.random.split(key, chunks))[0]

    for row in (0, 2, 3):  # top-p at T 1 and 0.15, and top-k with top_p < 1 (top_p ignored)
        t, k, p = unit["filter_params"][row]
        for lrow in (4,) if k > 0 else (0,):
            f = filter_logits(jnp.asarray(unit["filter_logits"][lrow]), temperature=t, top_k=int(k), top_p=p)
            counts = np.asarray(counts_of(jax.random.PRNGKey(100 * row + lrow), f))
            probs = unit["filter_probs"][row][lrow].astype(np.float64)
            probs /= probs.sum()
            assert counts[probs == 0].sum() == 0
            order = np.argsort(-probs)
            exp, obs = probs[order] * n, counts[order]
            big = exp >= 5  # pool the tail into one bin
            e = np.append(exp[big], exp[~big].sum())
            o = np.append(obs[big], obs[~big].sum())
            e, o = (e[:-1], o[:-1]) if e[-1] == 0 else (e, o)
            if e.size < 2:
                assert o[0] == n
                continue
            pval = stats.chisquare(o, e * o.sum() / e.sum()).pvalue
            assert pval > 1e-4, (t, k, p, lrow, pval)


def test_normalize_matches_numpy_population_std():
    x = np.random.default_rng(0).normal(3.0, 2.0, (50, 6)).astype(np.float32)
    x[:, 4] = 0.0
    xn, mu, scale = normalize(jnp.asarray(x), 1.5)
    want = np.clip((x - x.mean(0)) / (x.std(0) + 1e-5), -1.5, 1.5)
    np.testing.assert_allclose(xn, want, atol=1e-5)
    np.testing.assert_allclose(scale, x.std(0) + 1e-5, rtol=1e-5)
    assert np.all(np.asarray(xn)[:, 4] == 0) and np.abs(xn).max() == pytest.approx(1.5)


def test_frame_to_features_fill_rules():
    df = pd.DataFrame(
        {"Open": [1.0, 2.0], "High": [2.0, 3.0], "Low": [0.5, 1.0], "Close": [1.5, 2.0], "Volume": [10.0, 20.0]}
    )
    x = frame_to_features(df)
    np.testing.assert_allclose(x[:, 5], [10 * 1.25, 20 * 2.0])
    x = frame_to_features(df.drop(columns=["Volume"]))
    assert np.all(x[:, 4:] == 0) and x.dtype == np.float32
    with pytest.raises(PriceDataError, match="NaN"):
        frame_to_features(df.assign(Close=[1.0, np.nan]))
    with pytest.raises(PriceDataError, match="open"):
        frame_to_features(df.drop(columns=["Open"]))


def test_time_features():
    dates = np.array(["2024-03-01T04:05", "2024-03-04T04:05", "2024-03-05T04:05"], dtype="datetime64[ns]")
    tf = time_features(dates)
    np.testing.assert_array_equal(tf[0], [5, 4, 4, 1, 3])  # Friday = 4
    np.testing.assert_array_equal(tf[1], [5, 4, 0, 4, 3])  # Monday = 0


def test_predict_rejects_bad_shapes(bundle):
    x = np.ones((1, 8, 6), np.float32)
    with pytest.raises(ConfigError):
        predict(bundle, x[..., :5], np.ones((1, 8, 5)), np.ones((1, 2, 5)), pred_len=2, key=jax.random.PRNGKey(0))
    with pytest.raises(ConfigError):
        predict(bundle, x, np.ones((1, 8, 5)), np.ones((1, 3, 5)), pred_len=2, key=jax.random.PRNGKey(0))
    with pytest.raises(ConfigError):
        predict(bundle, x, np.ones((1, 8, 5)), np.ones((1, 9, 5)), pred_len=9, key=jax.random.PRNGKey(0), max_context=8)
