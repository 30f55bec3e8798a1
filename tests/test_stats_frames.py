"""pandas tables of jaxsim.stats and the verdict line."""

import jax
import numpy as np
import pandas as pd
import pytest

from jaxsim.errors import ConfigError
from jaxsim.stats import STAT_LABELS, bootstrap_frame, daily_verdict, stats_frame, verdict

ROWS = [
    "Start",
    "End",
    "Duration",
    "Exposure Time [%]",
    "Return [%]",
    "Buy & Hold Return [%]",
    "Return (Ann.) [%]",
    "Volatility (Ann.) [%]",
    "CAGR [%]",
    "Sharpe Ratio",
    "Sortino Ratio",
    "Sharpe (empyrical)",
    "Sortino (empyrical)",
    "Calmar Ratio",
    "Max. Drawdown [%]",
    "Max. Drawdown Duration",
    "# Trades",
    "Win Rate [%]",
    "Profit Factor",
    "Expectancy [%]",
]


def _daily(T=300):
    rng = np.random.default_rng(0)
    idx = pd.bdate_range("2021-03-01", periods=T)
    df = pd.DataFrame({"maxdiff": rng.normal(8e-4, 0.01, T), "buy_hold": rng.normal(2e-4, 0.012, T)}, index=idx)
    df.iloc[:20, 0] = np.nan  # maxdiff starts later (not fitted yet)
    close = pd.Series(
        100 * np.exp(np.cumsum(rng.normal(0, 0.01, T + 5))), index=pd.bdate_range("2021-02-22", periods=T + 5)
    )
    return df, close


def test_stats_frame_rows_units_and_values():
    df, close = _daily()
    table = stats_frame(df, close=close)
    assert list(table.index) == ROWS and list(table.columns) == ["maxdiff", "buy_hold"]
    assert list(STAT_LABELS.values()) == ROWS[3:]
    # Start: the close the equity starts from (the last close before the first day, 2021-02-26)
    assert table.loc["Start", "maxdiff"] == pd.Timestamp("2021-02-26")
    assert table.loc["Duration", "buy_hold"] == df.index[-1] - pd.Timestamp("2021-02-26")
    r = df["maxdiff"].dropna().to_numpy()
    assert table.loc["Return [%]", "maxdiff"] == pytest.approx(100 * (np.prod(1 + r) - 1), rel=1e-4)
    assert table.loc["# Trades", "maxdiff"] == len(r)
    # buy & hold from the last close before Start (2021-02-26) to End
    c = close.loc["2021-02-26" : df.index[-1]]
    assert table.loc["Buy & Hold Return [%]", "buy_hold"] == pytest.approx(100 * (c.iloc[-1] / c.iloc[0] - 1), rel=1e-5)
    years = (df.index[-1] - pd.Timestamp("2021-02-26")).days / 365.25
    want = 100 * (np.prod(1 + r) ** (1 / years) - 1)
    assert table.loc["CAGR [%]", "maxdiff"] == pytest.approx(want, rel=1e-4)
    one = stats_frame(df["buy_hold"])
    assert isinstance(one, pd.Series) and one.name == "buy_hold" and np.isnan(one["Buy & Hold Return [%]"])
    assert one["Sharpe Ratio"] == pytest.approx(table.loc["Sharpe Ratio", "buy_hold"], rel=1e-6)


def test_stats_frame_rejects_bad_input():
    df, _ = _daily()
    with pytest.raises(ConfigError, match="DatetimeIndex"):
        stats_frame(df.reset_index(drop=True))
    with pytest.raises(ConfigError, match="sorted"):
        stats_frame(df.iloc[::-1])
    with pytest.raises(ConfigError, match="Series or DataFrame"):
        stats_frame(df.to_numpy())


def test_bootstrap_frame():
    df, _ = _daily()
    t = bootstrap_frame(jax.random.PRNGKey(0), df, n_resamples=200)
    assert list(t.columns) == ["maxdiff", "buy_hold"]
    for stat in ("Mean Daily Return [%]", "Sharpe Ratio", "CAGR [%]"):
        lo, est, hi = (t.loc[(stat, p)] for p in ("lower", "estimate", "upper"))
        assert np.all(lo < est) and np.all(est < hi)
    mean = t.loc[("Mean Daily Return [%]", "estimate"), "maxdiff"]
    assert mean == pytest.approx(100 * df["maxdiff"].mean(), rel=1e-5)


def test_verdict_rule():
    names = ["simple", "maxdiff", "buy_hold"]
    assert (
        verdict(names, [-1e-4, -2e-5, -3e-4], [0.1, 0.5, 0.2]) == "no strategy beats zero at 95% (3 strategies tried)"
    )
    assert (
        verdict(names, [-1e-4, 2e-5, 1e-5], [0.1, 0.9, 1.2], dsr=0.974, n_trials=8)
        == "buy_hold beats zero at 95% (DSR 0.97 after 8 strategies tried)"
    )
    assert (
        verdict(names, [-1e-4, 2e-5, -1e-5], [0.1, 0.9, 1.2], dsr=0.61, n_trials=8)
        == "maxdiff beats zero at 95% but not after correcting for 8 strategies tried (DSR 0.61)"
    )
    assert verdict(["a"], [1e-4], [1.0], level=0.9) == "a beats zero at 90% (1 strategy tried)"
    with pytest.raises(ConfigError, match="one name"):
        verdict(names, [0.0], [0.0, 1.0, 2.0])


def test_exposure_frame_and_daily_verdict():
    df, _ = _daily()
    exposure = pd.DataFrame({"maxdiff": True}, index=df.index[::2])  # missing rows/columns: no position
    table = stats_frame(df, exposure=exposure)
    # backtesting.py's bars: the start bar and every date (a day without a value is a flat bar)
    assert table.loc["Exposure Time [%]", "maxdiff"] == pytest.approx(100 * df["maxdiff"][::2].notna().sum() / 301)
    assert table.loc["Exposure Time [%]", "buy_hold"] == 0.0 and table.loc["# Trades", "buy_hold"] == 0
    noise = pd.DataFrame(np.random.default_rng(5).normal(0, 0.01, (250, 4)), index=df.index[:250], columns=list("abcd"))
    line = daily_verdict(jax.random.PRNGKey(0), noise, n_resamples=200)
    assert line == "no strategy beats zero at 95% (4 strategies tried)"
    edge = noise.assign(a=noise["a"] + 0.006)
    line = daily_verdict(jax.random.PRNGKey(0), edge, n_resamples=200, n_trials=8)
    assert line.startswith("a beats zero at 95% (DSR ") and line.endswith(" after 8 strategies tried)")
