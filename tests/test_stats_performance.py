"""jaxsim.stats.performance against backtesting.py's compute_stats, empyrical and hand-made series."""

import empyrical
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from backtesting._stats import compute_drawdown_duration_peaks, compute_stats

from jaxsim.stats import performance as P

RTOL = 1e-6


def enable_x64():
    """float64 inside the block (the parity tests compare at 1e-6 relative)."""
    return jax.enable_x64(True)


def _series(seed, T=750, mu=4e-4, sd=0.012, flat=0.2):
    rng = np.random.default_rng(seed)
    r = rng.normal(mu, sd, T)
    r[rng.random(T) < flat] = 0.0  # flat days: no position
    return r


def _backtesting_stats(r, close):
    """backtesting.py's stats of the equity [1, cumprod(1 + r)] on business days, one trade per exposed day."""
    T = len(r)
    idx = pd.bdate_range("2019-01-02", periods=T + 1)
    equity = np.r_[1.0, np.cumprod(1 + r)]
    ohlc = pd.DataFrame({"Open": close, "High": close, "Low": close, "Close": close}, index=idx)
    t = np.flatnonzero(r != 0)
    trades = pd.DataFrame(
        {"EntryBar": t + 1, "ExitBar": t + 1, "PnL": r[t], "ReturnPct": r[t], "Duration": pd.Timedelta(days=1)}
    )
    return compute_stats(trades, equity, ohlc, None), idx


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_backtesting_py(seed):
    r = _series(seed)
    close = 100 * np.exp(np.cumsum(np.r_[0.0, np.random.default_rng(seed + 10).normal(0, 0.01, len(r))]))
    ref, idx = _backtesting_stats(r, close)
    years = (idx[-1] - idx[0]).days / 365.25
    with enable_x64():
        s = P.performance_stats(jnp.asarray(r), close=jnp.asarray(close), years=years)
        pairs = {
            "Return [%]": s.return_pct,
            "Buy & Hold Return [%]": s.buy_hold_return_pct,
            "Return (Ann.) [%]": s.return_ann_pct,
            "Volatility (Ann.) [%]": s.volatility_ann_pct,
            "CAGR [%]": s.cagr_pct,
            "Sharpe Ratio": s.sharpe_ratio,
            "Sortino Ratio": s.sortino_ratio,
            "Calmar Ratio": s.calmar_ratio,
            "Max. Drawdown [%]": s.max_drawdown_pct,
            "# Trades": s.n_trades,
            "Win Rate [%]": s.win_rate_pct,
            "Profit Factor": s.profit_factor,
            "Expectancy [%]": s.expectancy_pct,
        }
        for label, got in pairs.items():
            np.testing.assert_allclose(float(got), float(ref[label]), rtol=RTOL, err_msg=label)
        assert s.return_pct.dtype == jnp.float64
    # backtesting.py counts exposure over its T + 1 bars (the initial bar included): same exposed days
    assert float(s.exposure_time_pct) == pytest.approx(100 * np.mean(r != 0), rel=1e-12)
    assert ref["Exposure Time [%]"] == pytest.approx(100 * np.sum(r != 0) / (len(r) + 1), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 3])
def test_empyrical_variants(seed):
    r = _series(seed, flat=0.0)
    with enable_x64():
        x = jnp.asarray(r)
        pairs = {
            "annual_return": (P.annual_return(x), empyrical.annual_return(r)),
            "cagr": (P.cagr(x), empyrical.cagr(r)),
            "annual_volatility": (P.simple_annual_volatility(x), empyrical.annual_volatility(r)),
            "sharpe_ratio": (P.arithmetic_sharpe_ratio(x), empyrical.sharpe_ratio(r)),
            "sortino_ratio": (P.arithmetic_sortino_ratio(x), empyrical.sortino_ratio(r)),
            "max_drawdown": (P.max_drawdown(x), empyrical.max_drawdown(r)),
            "calmar_ratio": (P.calmar_ratio(x), empyrical.calmar_ratio(r)),
        }
        for name, (got, want) in pairs.items():
            np.testing.assert_allclose(float(got), float(want), rtol=RTOL, err_msg=name)


def test_float32_default_is_close_to_float64():
    """float32 inputs keep float32; over 750 days the stats agree with float64 to ~1e-4 relative
    (cumulative products and a ddof-1 variance in single precision)."""
    r = _series(5)
    s32 = P.performance_stats(jnp.asarray(r, jnp.float32))
    assert s32.sharpe_ratio.dtype == jnp.float32
    with enable_x64():
        s64 = jax.device_get(P.performance_stats(jnp.asarray(r)))
    for f in (
        "return_pct",
        "return_ann_pct",
        "volatility_ann_pct",
        "sharpe_ratio",
        "sortino_ratio",
        "calmar_ratio",
        "max_drawdown_pct",
        "profit_factor",
    ):
        np.testing.assert_allclose(float(getattr(s32, f)), float(getattr(s64, f)), rtol=2e-4, err_msg=f)


@pytest.mark.parametrize(
    "returns, max_dd, duration",
    [
        # peak day 0 -> recovered day 2 (2 days); new peak day 2 -> days 3-5 below -> recovered day 6 (4 days)
        ([0.1, -0.1, 0.2, -0.05, -0.05, 0.0, 0.2], -0.1, 4),
        # below the starting equity from day 0, back above it on day 3: the start is a peak
        ([-0.1, 0.05, 0.05, 0.01], -0.1, 4),
        # a drawdown still open at the end lasts to the last day
        ([0.1, -0.1, 0.01], -0.1, 2),
        # never below the peak (a flat day stays at the peak)
        ([0.01, 0.0, 0.02], 0.0, 0),
    ],
)
def test_drawdown_on_hand_made_series(returns, max_dd, duration):
    with enable_x64():
        x = jnp.asarray(returns, jnp.float64)
        assert float(P.max_drawdown(x)) == pytest.approx(max_dd, abs=1e-12)
        assert int(P.max_drawdown_duration(x)) == duration


@pytest.mark.parametrize("seed", range(4))
def test_drawdown_duration_matches_backtesting_bars(seed):
    rng = np.random.default_rng(seed)
    r = rng.normal(2e-4, 0.01, 400)
    equity = np.r_[1.0, np.cumprod(1 + r)]
    dd = 1 - equity / np.maximum.accumulate(equity)
    dur, _ = compute_drawdown_duration_peaks(pd.Series(dd))  # RangeIndex: durations in bars
    with enable_x64():
        assert int(P.max_drawdown_duration(jnp.asarray(r))) == int(dur.max())
        assert float(P.max_drawdown(jnp.asarray(r))) == pytest.approx(-dd.max(), rel=1e-12)


def test_mask_equals_deleting_the_days():
    r = _series(7, T=300)
    rng = np.random.default_rng(8)
    keep = rng.random(300) > 0.25
    with_nan = np.where(keep, r, np.nan)
    with enable_x64():
        full = P.performance_stats(jnp.asarray(r[keep]))
        masked = P.performance_stats(jnp.asarray(r), jnp.asarray(keep))
        nan = P.performance_stats(jnp.asarray(with_nan))
        for f in P.PerformanceStats._fields:
            a, b, c = (np.asarray(getattr(s, f), np.float64) for s in (full, masked, nan))
            np.testing.assert_allclose(b, a, rtol=1e-12, err_msg=f)
            np.testing.assert_allclose(c, a, rtol=1e-12, err_msg=f)


def test_batched_equals_vmapped_and_exposure_input():
    r = np.stack([_series(s, T=200) for s in range(3)])
    exposure = np.ones_like(r, bool)  # an explicit exposure counts the flat days too
    batched = jax.jit(lambda x, e: P.performance_stats(x, exposure=e))(jnp.asarray(r), jnp.asarray(exposure))
    vmapped = jax.jit(jax.vmap(lambda x, e: P.performance_stats(x, exposure=e)))(jnp.asarray(r), jnp.asarray(exposure))
    for f in P.PerformanceStats._fields:
        np.testing.assert_allclose(np.asarray(getattr(batched, f)), np.asarray(getattr(vmapped, f)), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(batched.exposure_time_pct), 100.0)
    np.testing.assert_array_equal(np.asarray(batched.n_trades), 200)
    with enable_x64():
        win = P.trade_stats(jnp.asarray(r[0]), exposure=jnp.asarray(exposure[0])).win_rate
        assert float(win) == pytest.approx(np.mean(r[0] > 0), rel=1e-12)


def test_degenerate_series():
    with enable_x64():
        z = P.performance_stats(jnp.zeros(10, jnp.float64))
        assert float(z.return_pct) == 0 and int(z.n_trades) == 0 and float(z.exposure_time_pct) == 0
        assert np.isnan(float(z.sharpe_ratio)) and np.isnan(float(z.win_rate_pct)) and np.isnan(float(z.calmar_ratio))
        ruined = jnp.asarray([0.1, -1.0, 0.1])  # 1 + r <= 0: backtesting.py's geometric mean is 0
        assert float(P.annual_return(ruined)) == 0.0
