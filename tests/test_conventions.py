"""Conventions a skeptic checks: stats() rows named like backtesting.py's equal its compute_stats, the
empyrical rows equal empyrical, SPA p-values equal arch.bootstrap.SPA, and the verdict never names a
strategy fitted in sample (issue 26)."""

import empyrical
import jax
import numpy as np
import pandas as pd
import pytest
from arch.bootstrap import SPA
from backtesting._stats import compute_stats

import jaxsim
from jaxsim.config import BacktestConfig
from jaxsim.report import evaluation
from jaxsim.stats import stats_frame
from jaxsim.stats.spa import block_size

# rows equal to backtesting.py's (relative tolerance of float32 jaxsim stats where they are floats)
SAME_AS_BACKTESTING = (
    "Start",
    "End",
    "Duration",
    "Max. Drawdown Duration",
    "# Trades",
    "Win Rate [%]",
    "Exposure Time [%]",
    "Profit Factor",
    "Expectancy [%]",
    "Return [%]",
    "Buy & Hold Return [%]",
    "Return (Ann.) [%]",
    "CAGR [%]",
    "Sharpe Ratio",
    "Sortino Ratio",
    "Calmar Ratio",
    "Max. Drawdown [%]",
)


def _backtesting(daily: pd.Series, trades: pd.DataFrame, close: pd.Series, start) -> pd.Series:
    """backtesting.py's compute_stats of bars [start, *dates], equity [1, cumprod(1 + r)], the trades."""
    bars = pd.DatetimeIndex([pd.Timestamp(start), *daily.index])
    equity = np.r_[1.0, np.cumprod(1 + daily.fillna(0).to_numpy(np.float64))]
    c = close.reindex(bars).to_numpy(np.float64)
    ohlc = pd.DataFrame({"Open": c, "High": c, "Low": c, "Close": c}, index=bars)
    entry = np.searchsorted(bars, pd.DatetimeIndex(trades["entry_date"]).fillna(bars[0]))
    exit_ = np.searchsorted(bars, pd.DatetimeIndex(trades["exit_date"]))
    ret = trades["return"].to_numpy(np.float64)
    t = pd.DataFrame(
        {"EntryBar": entry, "ExitBar": exit_, "PnL": ret, "ReturnPct": ret, "Duration": bars[exit_] - bars[entry]}
    )
    return compute_stats(t, equity, ohlc, None)


def _assert_rows_equal(ours: pd.Series, ref: pd.Series, rows=SAME_AS_BACKTESTING):
    for row in rows:
        got, want = ours[row], ref[row]
        if pd.isna(want):
            assert pd.isna(got), row
        elif isinstance(want, (pd.Timestamp, pd.Timedelta)):
            assert got == want, row
        else:
            assert float(got) == pytest.approx(float(want), rel=2e-4, abs=1e-9), row


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stats_frame_rows_equal_backtesting_compute_stats(seed):
    """Hand-made series: a first-day loss (seed 1), flat days, close-to-close and intraday round trips,
    a day with two trades; every backtesting.py-named row of the table equals compute_stats'."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2022-01-03", periods=60)
    r = rng.normal(5e-4, 0.01, len(dates))
    r[rng.random(len(dates)) < 0.25] = 0.0
    if seed == 1:
        r[0] = -0.02
    daily = pd.Series(r, index=dates, name="s")
    start = pd.Timestamp("2021-12-31")
    held = np.flatnonzero(r != 0)
    # odd days: close-to-close (entered at the previous close); even days: intraday, in two legs on day 10
    rows = []
    for j in held:
        if j % 2:
            rows.append(("s", dates[j - 1] if j else pd.NaT, dates[j], r[j]))
        elif j == 10:
            rows += [("s", dates[j], dates[j], r[j] / 2 + 0.001), ("s", dates[j], dates[j], r[j] / 2 - 0.001)]
        else:
            rows.append(("s", dates[j], dates[j], r[j]))
    trades = pd.DataFrame(rows, columns=["strategy", "entry_date", "exit_date", "return"])
    close = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(dates) + 1))), index=[start, *dates])
    ours = stats_frame(daily, close=close, trades=trades)
    ref = _backtesting(daily, trades, close, start)
    _assert_rows_equal(ours, ref)
    assert isinstance(ours["Max. Drawdown Duration"], pd.Timedelta) and isinstance(ours["Duration"], pd.Timedelta)
    assert ours["Sharpe (empyrical)"] == pytest.approx(empyrical.sharpe_ratio(r), rel=1e-5)
    assert ours["Sortino (empyrical)"] == pytest.approx(empyrical.sortino_ratio(r), rel=1e-5)


def test_max_drawdown_duration_by_hand():
    # peak at the start bar (Fri 2021-12-31), below it Mon-Tue, back on Wed: 5 calendar days
    daily = pd.Series([-0.01, 0.0, 0.02, 0.01], index=pd.bdate_range("2022-01-03", periods=4))
    s = stats_frame(daily, start="2021-12-31")
    assert s["Max. Drawdown Duration"] == pd.Timedelta(days=5)
    assert s["Duration"] == pd.Timedelta(days=6) and s["Start"] == pd.Timestamp("2021-12-31")
    assert pd.isna(stats_frame(daily.abs(), start="2021-12-31")["Max. Drawdown Duration"])  # never below a peak


@pytest.fixture(scope="module")
def naive_run():
    """One cheap walk-forward backtest serves the result-level checks."""
    return jaxsim.backtest(
        jaxsim.sample("AAPL"), jaxsim.forecasters.naive(), BacktestConfig(n_sims=40, protocol="walk_forward")
    )


def test_result_stats_equal_backtesting_on_its_equity_and_trades(naive_run):
    prices = jaxsim.sample("AAPL")
    stats, daily, trades = naive_run.stats(), naive_run.daily, naive_run.trades()
    closes = pd.Series(np.asarray(prices.close, np.float64), index=pd.DatetimeIndex(prices.dates))
    start = closes.index[closes.index.get_loc(daily.index[0]) - 1]  # the trading day before the first
    assert stats.loc["Start", "simple"] == start
    for name in ("simple", "buy_hold", "entry_takeprofit"):  # columns with a value every day
        ref = _backtesting(daily[name], trades[trades["strategy"] == name], closes, start)
        _assert_rows_equal(stats[name], ref, rows=SAME_AS_BACKTESTING[:9])
    for name in daily.columns:  # every column: dates, durations and trade rows
        ref = _backtesting(daily[name], trades[trades["strategy"] == name], closes, start)
        _assert_rows_equal(stats[name], ref, rows=SAME_AS_BACKTESTING[:5])
        assert stats.loc["# Trades", name] == (trades["strategy"] == name).sum()


def test_spa_pvalues_equal_arch_on_the_same_losses_and_seed(naive_run):
    u = naive_run.uncertainty(jax.random.key(7), n_resamples=200)
    zero, bh = u.spa
    seed = evaluation.spa_seed(jax.random.key(7))
    assert zero.seed == bh.seed == seed and zero.benchmark == "zero" and bh.benchmark == "buy_hold"
    daily = naive_run.daily
    for test, bench in ((zero, None), (bh, "buy_hold")):
        models = list(test.models)
        b = pd.Series(0.0, index=daily.index) if bench is None else daily[bench]
        days = b.notna() & daily[models].notna().all(axis=1)
        losses, bench_loss = -daily.loc[days, models], -b[days]
        assert test.block_size == block_size(losses.sub(bench_loss, axis=0).to_numpy())
        spa = SPA(bench_loss, losses, block_size=test.block_size, reps=200, bootstrap="stationary", seed=seed)
        spa.compute()
        assert (test.lower, test.pvalue, test.upper) == tuple(
            float(spa.pvalues[k]) for k in ("lower", "consistent", "upper")
        )
    assert "buy_hold" not in bh.models and {"all_signals", "highlow"} <= set(zero.left_out)  # constant vs zero
    again = naive_run.uncertainty(jax.random.key(7), n_resamples=200)
    assert [t.pvalue for t in again.spa] == [zero.pvalue, bh.pvalue]  # deterministic from the key
    assert f"SPA vs zero p {zero.pvalue:.2f}, vs buy_hold p {bh.pvalue:.2f}" in u.verdict
    assert "StepM" in str(u) and "Rule:" in str(u)
    d = u.as_dict()["spa"]
    assert d[0]["benchmark"] == "zero" and d[0]["pvalue"] == zero.pvalue


def test_a_sure_winner_is_found_and_in_sample_strategies_never_named():
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2020-01-01", periods=250)
    daily = pd.DataFrame(
        {
            "simple": rng.normal(0, 0.01, 250),
            "buy_hold": rng.normal(0, 0.01, 250),
            "maxdiff": rng.normal(0.01, 0.005, 250),  # a look-ahead fit: far above zero
            "edge": rng.normal(0.004, 0.01, 250),
        },
        index=dates,
    )
    out = evaluation.uncertainty(jax.random.key(0), daily, n_resamples=200)
    zero = out.spa[0]
    assert zero.pvalue < 0.05 and "maxdiff" in zero.superior and "edge" in zero.superior
    daily.attrs["in_sample"] = ["maxdiff"]  # legacy: fitted on its scoring days
    legacy = evaluation.uncertainty(jax.random.key(0), daily, n_resamples=200)
    assert all("maxdiff" not in t.models and "maxdiff" in t.left_out for t in legacy.spa)
    assert legacy.best != "maxdiff" and legacy.verdict.startswith("edge beats zero at 95%")
    assert "maxdiff fitted in sample, not tested" in legacy.verdict
    assert "maxdiff beat" not in legacy.verdict and "maxdiff," not in legacy.verdict.split("SPA")[1]


def test_summary_says_what_it_is_and_prints_units(naive_run):
    s = naive_run.summary
    assert "six-day" in s.attrs["description"] and "stats()" in s.attrs["description"]
    text = naive_run.summary_text()
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("Backtest summary"))  # after the run's header
    title, header = lines[at : at + 2]
    assert title.startswith("Backtest summary for AAPL (40 simulations, protocol walk_forward): the original's six-day")
    assert header.split() == ["Return", "[%]", "Sharpe", "AnnualRet", "[%]", "ForecastRet", "[%]", "FinalDay", "[%]"]
    row = next(line for line in text.splitlines() if line.startswith("simple "))
    assert row.split()[1] == f"{100 * s.loc['simple', 'Return']:.2f}"  # percent, not the fraction
    assert row.split()[3] == f"{100 * s.loc['simple', 'AnnualRet']:.2f}"
    original = naive_run.summary_text(units=False)  # the original's fractions stay one argument away
    assert next(ln for ln in original.splitlines() if ln.startswith("simple ")).split()[1] == (
        f"{s.loc['simple', 'Return']:.4f}"
    )


def test_verdict_rules_in_sample_and_spa_clause():
    from types import SimpleNamespace

    from jaxsim.stats.verdict import spa_clause, verdict

    names = ["simple", "maxdiff"]
    assert verdict(names, [-1e-4, 2e-4], [0.1, 2.0], in_sample=["maxdiff"]) == (
        "no strategy beats zero at 95% (2 strategies tried; maxdiff fitted in sample, not tested)"
    )
    assert verdict(names, [1e-4, 2e-4], [0.1, 2.0], in_sample=["maxdiff"]).startswith("simple beats zero")
    tests = [
        SimpleNamespace(benchmark="zero", pvalue=0.012, superior=("simple", "edge")),
        SimpleNamespace(benchmark="buy_hold", pvalue=float("nan"), superior=()),
    ]
    assert spa_clause(tests) == "SPA vs zero p 0.01, vs buy_hold not tested: simple, edge beat zero (StepM at 5%)"
    tests[0].superior = ()
    assert spa_clause(tests, level=0.9).endswith("none beats zero or buy_hold (StepM at 10%)")
