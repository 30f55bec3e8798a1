"""Out-of-sample frames and statistics of a backtest result (result.daily/equity/stats/uncertainty/
forecasts/draws/skill), compare(), the CLI verdict line and the cross-stock table.

Runs the naive and a small random-draw forecaster on the bundled AAPL sample (a few compiles)."""

import collections
import contextlib
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import jaxsim
from jaxsim.report import evaluation
from jaxsim.report.cross_stock import cross_stock_table
from jaxsim.report.evaluation import IN_SAMPLE_LEGACY, SKILL_COLUMNS
from jaxsim.sim.strategy_table import STRATEGIES
from jaxsim.stats.frames import stats_frame
from jaxsim.stats.performance import performance_stats
from jaxsim.stats.skill import forecast_skill

N = 30
LIMIT = ("entry_takeprofit", "highlow", "maxdiff", "maxdiffalwayson")  # final day t_5 = e-1


def _gauss(context, valid, key):
    del context, valid
    return 0.001 + 0.015 * jax.random.normal(key, (64,))


GAUSS = jaxsim.forecasters.from_function(_gauss, num_samples=64)


@pytest.fixture(scope="module")
def prices():
    return jaxsim.sample("AAPL")


@pytest.fixture(scope="module")
def naive_wf(prices):
    return jaxsim.backtest(prices, jaxsim.forecasters.naive(), n_sims=N, protocol="walk_forward")


@pytest.fixture(scope="module")
def gauss(prices):
    return jaxsim.backtest(prices, GAUSS, n_sims=N, return_samples=True, key=jax.random.key(3), protocol="legacy")


def test_daily_follows_the_final_day_rule_and_equity_compounds_it(naive_wf):
    r = naive_wf
    daily, rec = r.daily, r.records
    assert list(daily.columns) == [s.name for s in STRATEGIES] and len(daily) == N
    assert daily.index.is_monotonic_increasing and daily.index[-1] == rec["date"].iloc[0]
    # signal strategies: the record's final-day field, oldest first
    np.testing.assert_allclose(daily["simple"], rec["simple_strategy_finalday"].to_numpy(np.float64)[::-1])
    np.testing.assert_allclose(daily["buy_hold"], rec["buy_hold_finalday"].to_numpy(np.float64)[::-1])
    # t_5 strategies: simulation k's value sits on simulation k+1's date; none on the newest date
    assert daily[list(LIMIT)].iloc[-1].isna().all()
    md = rec["maxdiff_finalday_return"].to_numpy(np.float64)
    fitted = rec["walk_forward_fitted"].to_numpy(bool)
    expected = np.where(fitted, md, np.nan)[:-1][::-1]  # walk_forward: fitted simulations only
    np.testing.assert_allclose(daily["maxdiff"].to_numpy()[:-1], expected)
    assert daily["maxdiff"].notna().sum() == fitted[:-1].sum() == N - 6  # k < N-6 fitted, k = N-1 dropped
    # entry_takeprofit's daily value is the day's P&L g_5, and the six-day average of the records is its mean
    etp = np.asarray(r.oos["oos_finalday_entry_takeprofit"], np.float64)
    np.testing.assert_allclose(daily["entry_takeprofit"].to_numpy()[:-1], etp[:-1][::-1])
    assert daily.attrs["in_sample"] == []
    np.testing.assert_allclose(r.equity.to_numpy(), np.cumprod(1 + daily.fillna(0).to_numpy(), axis=0))


def test_legacy_daily_names_the_in_sample_strategies(gauss):
    assert gauss.daily.attrs["in_sample"] == list(IN_SAMPLE_LEGACY)
    assert gauss.daily["maxdiff"].iloc[:-1].notna().all()
    assert "in sample under legacy: maxdiff, maxdiffalwayson" in str(gauss.uncertainty(n_resamples=100))


def test_exposure_is_the_final_day_position(gauss):
    exp, daily = gauss.exposure, gauss.daily
    assert exp["simple"].all() and exp["buy_hold"].all() and exp["entry_takeprofit"].iloc[:-1].all()
    pos = np.asarray(gauss.oos["oos_position_all_signals_strategy"])[::-1]
    np.testing.assert_array_equal(exp["all_signals"].to_numpy(), pos != 0)
    np.testing.assert_array_equal(exp["maxdiff"].to_numpy(), daily["maxdiff"].fillna(0).to_numpy() != 0)


def test_stats_equals_jaxsim_stats_on_the_same_series(gauss, prices):
    stats = gauss.stats()
    daily = gauss.daily
    assert list(stats.columns) == list(daily.columns)
    # Buy & Hold from the stock's closes: the close before the first daily date to the last one
    close = pd.Series(prices.close, index=pd.DatetimeIndex(prices.dates)).astype(np.float64)
    pos = close.index.get_loc(daily.index[0])
    # Start: the close the equity starts from (backtesting.py's first bar), the trading day before
    assert stats.loc["Start", "simple"] == close.index[pos - 1] and stats.loc["End", "simple"] == daily.index[-1]
    years = (daily.index[-1] - close.index[pos - 1]) / pd.Timedelta(days=365.25)
    trades = gauss.trades()
    bh = close.iloc[pos - 1 : close.index.get_loc(daily.index[-1]) + 1].to_numpy()
    for name in ("simple", "maxdiff", "highlow"):
        x = daily[name].to_numpy()
        s = performance_stats(
            jnp.asarray(x), exposure=jnp.asarray(gauss.exposure[name].to_numpy()), close=jnp.asarray(bh), years=years
        )
        for field, label in (
            ("return_pct", "Return [%]"),
            ("sharpe_ratio", "Sharpe Ratio"),
            ("cagr_pct", "CAGR [%]"),
            ("max_drawdown_pct", "Max. Drawdown [%]"),
            ("buy_hold_return_pct", "Buy & Hold Return [%]"),
        ):
            np.testing.assert_allclose(
                float(stats.loc[label, name]), float(getattr(s, field)), rtol=1e-5, err_msg=f"{name} {label}"
            )
        assert stats.loc["# Trades", name] == (trades["strategy"] == name).sum()  # the round trips
    expected_bh = 100 * (bh[-1] / bh[0] - 1)
    np.testing.assert_allclose(float(stats.loc["Buy & Hold Return [%]", "simple"]), expected_bh, rtol=1e-4)
    direct = stats_frame(daily, exposure=gauss.exposure, close=gauss.closes, trades=trades)
    pd.testing.assert_frame_equal(stats, direct)


def test_forecasts_realised_is_the_price_return(gauss, prices):
    f = gauss.forecasts
    assert f.index.equals(gauss.daily.index)
    close = pd.Series(prices.close.astype(np.float64), index=pd.DatetimeIndex(prices.dates))
    high = pd.Series(prices.high.astype(np.float64), index=pd.DatetimeIndex(prices.dates))
    np.testing.assert_allclose(f[("close", "realised")], close.pct_change().loc[f.index], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(f[("high", "realised")], high.pct_change().loc[f.index], rtol=1e-4, atol=1e-6)
    assert list(f["close"].columns) == ["point", "band", "q0.1", "q0.5", "q0.9", "realised", "crps", "pit"]
    q = f["close"][["q0.1", "q0.5", "q0.9"]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all() and (f[("close", "band")] > 0).all()
    # P_X[6] of simulation k is P_X[5] of simulation k-1 (the same origin): the newest forecast
    preds = np.stack(gauss.records["close_predictions"].to_numpy())
    np.testing.assert_allclose(f[("close", "point")].to_numpy()[::-1][1:], preds[:-1, 5], rtol=1e-6)


def test_draws_have_labelled_axes_and_give_the_same_skill(gauss):
    d = gauss.draws
    assert d.dims == ("target", "date", "sample") and d.shape == (3, N, 64)
    assert d.coords["target"] == ["close", "high", "low"] and d.coords["date"].equals(gauss.daily.index)
    f = gauss.forecasts["close"]
    close = d.sel(target="close").values
    np.testing.assert_allclose(np.quantile(close, 0.5, axis=1), f["q0.5"], rtol=1e-5, atol=1e-7)
    with_draws = gauss.skill()
    s = forecast_skill(
        jnp.asarray(f["point"].to_numpy()), jnp.asarray(f["realised"].to_numpy()), draws=jnp.asarray(close)
    )
    np.testing.assert_allclose(with_draws.loc["close", "CRPS"], float(s.crps), rtol=1e-6)
    assert with_draws.loc["close", "PIT Histogram"] == [int(c) for c in s.pit_counts]
    # without the draws (only the in-program quantiles, CRPS and PIT) the numbers are the same
    from jaxsim.report.evaluation import skill_frame

    without = skill_frame(gauss.forecasts)
    for col in ("MAE", "RMSE", "CRPS", "CRPS Skill", "Coverage 10-90 [%]", "Directional Accuracy [%]"):
        np.testing.assert_allclose(without.loc["close", col], with_draws.loc["close", col], rtol=1e-5, err_msg=col)
    assert without.loc["close", "PIT Histogram"] == with_draws.loc["close", "PIT Histogram"]


def test_skill_of_the_naive_forecaster_is_exactly_zero(naive_wf):
    skill = naive_wf.skill()
    assert list(skill.index) == ["close", "high", "low"] and list(skill.columns) == list(SKILL_COLUMNS.values())
    for col in ("MAE Skill", "RMSE Skill", "CRPS Skill"):
        assert (skill[col] == 0.0).all(), col
    assert (skill["Direction N"] == 0).all() and (skill["N Days"] == N).all()
    assert naive_wf.draws is None


def test_uncertainty_is_keyed_and_reproducible(gauss):
    a = gauss.uncertainty(jax.random.key(1), n_resamples=200)
    b = gauss.uncertainty(jax.random.key(1), n_resamples=200)
    c = gauss.uncertainty(jax.random.key(2), n_resamples=200)
    pd.testing.assert_frame_equal(a.bootstrap, b.bootstrap)
    assert not a.bootstrap.equals(c.bootstrap)
    assert list(a.bootstrap.columns) == [s.name for s in STRATEGIES]
    assert a.n_trials == 8 and 0 <= a.pbo <= 1 and a.best in a.selection.index
    lo = a.bootstrap.loc[("Sharpe Ratio", "lower")]
    hi = a.bootstrap.loc[("Sharpe Ratio", "upper")]
    assert ((lo <= hi) | lo.isna()).all()
    beats = a.selection["Beats Zero"]
    assert a.verdict.startswith("no strategy beats zero") == (not beats.any())
    json.dumps(a.as_dict())


def test_compare_has_one_row_per_forecaster_with_the_baselines(prices):
    cmp = jaxsim.compare(prices, {"gauss": GAUSS}, n_sims=N, protocol="legacy", n_resamples=100)
    assert list(cmp.table.index) == ["gauss", "naive", "historical-mean", "volatility"]
    assert cmp.table.shape[1] == 1 + 8 + 7 + 1 and "Verdict" in cmp.table
    naive = cmp.table.loc["naive"]
    assert naive["Close MAE Skill"] == 0.0 and naive["Close RMSE Skill"] == 0.0 and naive["Close CRPS Skill"] == 0.0
    assert naive["Close CRPS"] == cmp.skill.loc[("naive", "close"), "MAE"] and naive["Close Coverage 10-90 [%]"] == 0
    assert cmp.stats.columns.nlevels == 2 and cmp.stats.shape[1] == 4 * 8
    assert set(cmp.skill.index.get_level_values(0)) == {"gauss", "naive", "historical-mean", "volatility"}
    # the volatility baseline: the naive point forecast (so the naive strategies), a spread that scores
    vol, vol_forecasts = cmp.table.loc["volatility"], cmp.results["volatility"].forecasts
    assert (vol_forecasts.xs("point", axis=1, level=1) == 0).all().all()
    assert vol["Close MAE Skill"] == 0.0 and 0 < vol["Close CRPS"] < naive["Close CRPS"]
    assert vol["Close CRPS"] == pytest.approx(vol_forecasts[("close", "crps")].mean(), rel=1e-5)
    assert 50 <= vol["Close Coverage 10-90 [%]"] <= 100
    pd.testing.assert_frame_equal(cmp.results["volatility"].daily, cmp.results["naive"].daily)
    # legacy: the verdict never credits MaxDiff's in-sample fit, and says it is in sample
    for line in cmp.table["Verdict"]:
        assert "maxdiff, maxdiffalwayson fitted in sample, not tested" in line
        assert not line.startswith(("maxdiff ", "maxdiffalwayson "))
    # the same key and settings for each forecaster: its row equals a plain backtest with that key
    alone = jaxsim.backtest(prices, jaxsim.forecasters.naive(), n_sims=N, protocol="legacy", key=jax.random.key(0))
    pd.testing.assert_frame_equal(alone.daily, cmp.results["naive"].daily)


def test_cli_backtest_prints_the_verdict_line(capsys):
    from jaxsim.cli.app import main

    assert main(["backtest", "AAPL", "--model", "naive", "--sims", "20"]) == 0
    out = capsys.readouterr().out
    verdict = [line for line in out.splitlines() if line.startswith("Verdict: ")]
    assert len(verdict) == 1 and "strategies tried" in verdict[0] and "PBO" in verdict[0]


def test_cli_compare_prints_the_table(capsys, tmp_path):
    from jaxsim.cli.app import main

    out_csv = tmp_path / "cmp.csv"
    assert (
        main(
            [
                "compare",
                "AAPL",
                "--models",
                "naive,historical-mean",
                "--sims",
                "20",
                "--resamples",
                "50",
                "--out",
                str(out_csv),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Forecaster comparison for AAPL" in out and "Close MAE Skill" in out and "naive: " in out
    assert list(pd.read_csv(out_csv, index_col=0).index) == ["naive", "historical-mean"]


def test_run_many_writes_the_cross_stock_table(tmp_path):
    sources = {s: jaxsim.sample(s) for s in ("AAPL", "IBM")}
    report = jaxsim.run_many(
        sources, tmp_path / "run", forecaster=jaxsim.forecasters.naive(), n_sims=20, progress=False, protocol="legacy"
    )
    assert report.ok
    table = pd.read_csv(tmp_path / "run" / "stocks.csv", index_col=0)
    assert list(table.index) == ["AAPL", "IBM"]
    assert {"Best Strategy", "Sharpe Ratio", "Close MAE Skill", "Verdict", "DSR", "PBO"} <= set(table.columns)
    assert (table["Close MAE Skill"] == 0).all() and (table["N Sims"] == 20).all()
    for s in ("AAPL", "IBM"):
        stats = pd.read_csv(tmp_path / "run" / s / "stats.csv", index_col=0)
        best = table.loc[s, "Best Strategy"]
        assert float(stats.loc["Sharpe Ratio", best]) == pytest.approx(table.loc[s, "Sharpe Ratio"])
    pd.testing.assert_frame_equal(
        cross_stock_table(tmp_path / "run").reset_index(drop=True), table.reset_index(drop=True), check_dtype=False
    )


@contextlib.contextmanager
def _jax_events():
    """Counts of jax's trace and compile events in the body (jax.monitoring)."""
    seen = collections.Counter()

    def listener(event, duration, **_):
        seen[event.rsplit("/", 1)[-1]] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def _rows(result, start, stop):
    """A result of the simulations start..stop-1 of ``result``: same strategies, other numbers."""
    return dataclasses.replace(
        result,
        records=result.records.iloc[start:stop].reset_index(drop=True),
        oos={k: v[start:stop] for k, v in result.oos.items()},
    )


def test_statistics_compile_once_per_shape(gauss):
    """uncertainty(), skill() and stats() are one compiled program each: a result of a new shape
    compiles exactly those (where they ran op by op, one uncertainty() traced and compiled ~120
    small programs), and another result of the same shape traces and compiles nothing."""
    a, b = _rows(gauss, 0, 17), _rows(gauss, 9, 26)  # 17 simulations: a shape no other test uses
    key = jax.random.key(5)
    programs = evaluation.PROGRAMS
    before = {name: p.trace_count for name, p in programs.items()}
    with _jax_events() as first:
        ua, sa, ta = a.uncertainty(key, n_resamples=64), a.skill(), a.stats()
    assert first["backend_compile_duration"] == 3  # uncertainty, skill from the draws, the stats table
    assert {n: p.trace_count - before[n] for n, p in programs.items()} == {
        "stats": 1,
        "uncertainty": 1,
        "draws_skill": 1,
        "band_skill": 0,
    }
    with _jax_events() as second:
        ub, sb, tb = b.uncertainty(key, n_resamples=64), b.skill(), b.stats()
    assert second["jaxpr_trace_duration"] == 0 and second["backend_compile_duration"] == 0
    assert all(p.trace_count - before[n] == (n != "band_skill") for n, p in programs.items())
    assert ua.n_blocks == ub.n_blocks == 8 and not ua.bootstrap.equals(ub.bootstrap)
    assert not sa.equals(sb) and not ta.equals(tb)
