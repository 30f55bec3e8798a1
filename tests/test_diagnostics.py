"""Per-simulation diagnostics of docs/backtest.md#forecast-fields, #diagnostics against numpy/pandas references."""

import warnings

import jax
import numpy as np
import pandas as pd
import pytest

from jaxsim.sim import diagnostics as dg

pytestmark = pytest.mark.strict_promotion


def prices(rng, n=22):
    close = 100 * np.cumprod(1 + 0.02 * rng.normal(size=n))
    high = close * (1 + 0.01 * rng.random(n))
    low = close * (1 - 0.01 * rng.random(n))
    volume = rng.integers(1_000, 100_000, n).astype(float)
    return tuple(x.astype(np.float32) for x in (high, low, close, volume))


def pandas_atr_pct(high, low, close):
    df = pd.DataFrame({"H": high, "L": low, "C": close}).astype(float)
    if len(df) <= 14:
        return 0.0
    prev = df["C"].shift(1)
    tr = pd.concat([df["H"] - df["L"], (df["H"] - prev).abs(), (df["L"] - prev).abs()], axis=1).max(axis=1)
    return 100 * tr.rolling(14).mean().iloc[-1] / df["C"].iloc[-1]


def test_val_loss_and_volatility():
    a = np.array([0.01, -0.02, 0.03, 0.0, 0.01, 0.02])
    p = np.array([0.0, -0.01, 0.01, 0.01, 0.01, -0.02])
    assert float(dg.val_loss(a, p)) == pytest.approx(np.mean(np.abs(a - p)), rel=1e-6)
    assert float(dg.realized_volatility_pct(a)) == pytest.approx(100 * np.std(a, ddof=1), rel=1e-5)


@pytest.mark.parametrize("n_valid", [22, 16, 15, 14, 5])
def test_atr_matches_pandas(n_valid):
    high, low, close, _ = prices(np.random.default_rng(n_valid))
    valid = np.arange(22) >= 22 - n_valid
    want = pandas_atr_pct(high[valid], low[valid], close[valid])
    got = float(dg.atr_pct_14(np.where(valid, high, 0), np.where(valid, low, 0), np.where(valid, close, 0), valid))
    assert got == pytest.approx(want, rel=1e-5, abs=1e-7)
    assert (got == 0.0) == (n_valid <= 14)


@pytest.mark.parametrize("n_valid", [22, 20, 7])
def test_dollar_volume_matches_pandas_tail(n_valid):
    _, _, close, volume = prices(np.random.default_rng(3))
    valid = np.arange(22) >= 22 - n_valid
    want = (pd.Series(close[valid].astype(float)) * volume[valid]).tail(20).mean()
    got = float(dg.dollar_volume_20d(close, volume, valid))
    assert got == pytest.approx(want, rel=1e-5)


def test_spread_bps():
    assert float(dg.spread_bps_estimate(1.05)) == pytest.approx(500.0, rel=1e-5)
    assert float(dg.spread_bps_estimate(0.999)) == pytest.approx(10.0, rel=1e-3)


@pytest.mark.parametrize("pred", ["random", "constant", "zero"])
def test_calibration_matches_polyfit(pred):
    rng = np.random.default_rng(9)
    r = (0.01 * rng.normal(size=6)).astype(np.float32)
    p = {"random": 0.01 * rng.normal(size=7), "constant": np.full(7, 0.004), "zero": np.zeros(7)}[pred]
    p = p.astype(np.float32)
    slope, intercept, calibrated = (float(v) for v in dg.calibration(p, r))
    if pred == "zero":  # polyfit gives NaN there; documented fallback
        assert (slope, intercept) == (1.0, 0.0)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RankWarning for constant forecasts
        ws, wi = np.polyfit(p[:6].astype(float), r.astype(float), 1)
    assert slope == pytest.approx(ws, rel=1e-4)
    assert intercept == pytest.approx(wi, rel=1e-4, abs=1e-8)
    assert calibrated == pytest.approx(ws * p[6] + wi, rel=1e-4, abs=1e-8)


def test_jit_and_vmap():
    rng = np.random.default_rng(2)
    batch = [prices(rng) for _ in range(3)]
    h, l, c, v = (np.stack(x) for x in zip(*batch))
    valid = np.ones((3, 22), bool)
    got = jax.jit(jax.vmap(dg.atr_pct_14))(h, l, c, valid)
    for k in range(3):
        assert float(got[k]) == pytest.approx(float(dg.atr_pct_14(h[k], l[k], c[k], valid[k])), rel=1e-6)
    cal = jax.jit(jax.vmap(dg.calibration))(
        0.01 * rng.normal(size=(3, 7)).astype(np.float32), 0.01 * rng.normal(size=(3, 6)).astype(np.float32)
    )
    assert all(x.shape == (3,) for x in cal)
