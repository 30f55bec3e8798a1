"""Result object: summary means (docs/backtest.md#summary-table), best strategy with tie order
(docs/backtest.md#best-strategy), equity curves, limit prices of row 0, atomic save. Built from synthetic record arrays
(no compile)."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from report_helpers import equity_curves

from jaxsim.report.result import BacktestResult, best_strategy
from jaxsim.sim.strategy_table import STRATEGIES

N = 5


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for _, prefix, final, _ in STRATEGIES:
        for metric in ("return", "sharpe", "avg_daily_return", "annual_return"):
            arrays[f"{prefix}_{metric}"] = rng.normal(0, 0.01, N).astype(np.float32)
        arrays[final] = rng.normal(0, 0.01, N).astype(np.float32)
        arrays[f"{prefix}_forecasted_pnl"] = np.full(
            N, rng.normal(0, 0.01), np.float32
        )  # broadcast (docs/backtest.md#forecasted-pnl)
    for name in ("maxdiff", "maxdiffalwayson"):
        arrays[f"{name}_baseline_return"] = rng.normal(0, 0.01, N).astype(np.float32)
        arrays[f"{name}_optimized_return"] = rng.normal(0, 0.01, N).astype(np.float32)
        arrays[f"{name}_close_at_eod"] = np.array([True, False, False, True, False])
    arrays["maxdiffprofit_profit_high_multiplier"] = np.full(N, 0.001, np.float32)
    arrays["maxdiffprofit_profit_low_multiplier"] = np.full(N, -0.002, np.float32)
    arrays["maxdiffalwayson_high_multiplier"] = np.full(N, 0.003, np.float32)
    arrays["maxdiffalwayson_low_multiplier"] = np.full(N, -0.004, np.float32)
    arrays["maxdiffprofit_high_price"] = np.linspace(101, 105, N, dtype=np.float32)
    arrays["maxdiffprofit_low_price"] = np.linspace(99, 95, N, dtype=np.float32)
    arrays["maxdiffprofit_profit_values"] = rng.normal(0, 0.01, (N, 6)).astype(np.float32)
    return arrays


DATES = np.array(["2024-01-10", "2024-01-09", "2024-01-08", "2024-01-05", "2024-01-04"], "datetime64[D]")


@pytest.fixture
def result():
    return BacktestResult.from_arrays("TEST", "walk_forward", _arrays(), DATES, {"forecaster": "naive"})


def test_summary_is_the_column_means_per_strategy(result):
    arrays = _arrays()
    summary = result.summary
    assert list(summary.columns) == ["Return", "Sharpe", "AnnualRet", "ForecastRet", "FinalDay"]
    assert len(summary) == 8 and summary.attrs["protocol"] == "walk_forward"
    for name, prefix, final, _ in STRATEGIES:
        np.testing.assert_allclose(summary.loc[name, "Return"], arrays[f"{prefix}_return"].mean(), rtol=1e-6)
        np.testing.assert_allclose(summary.loc[name, "Sharpe"], arrays[f"{prefix}_sharpe"].mean(), rtol=1e-6)
        np.testing.assert_allclose(summary.loc[name, "AnnualRet"], arrays[f"{prefix}_annual_return"].mean(), rtol=1e-6)
        np.testing.assert_allclose(summary.loc[name, "FinalDay"], arrays[final].mean(), rtol=1e-6)
        np.testing.assert_allclose(summary.loc[name, "ForecastRet"], arrays[f"{prefix}_forecasted_pnl"][0], rtol=1e-6)
    lines = result.summary_text().splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("Backtest summary"))
    assert "ForecastRet" in lines[title + 1]


def test_summary_without_forecasted_pnl_columns_has_nan_forecast_ret():
    arrays = {k: v for k, v in _arrays().items() if not k.endswith("_forecasted_pnl")}
    summary = BacktestResult.from_arrays("TEST", "legacy", arrays, DATES, {}).summary
    assert summary["ForecastRet"].isna().all() and summary["Return"].notna().all()


def test_records_row0_is_most_recent_and_carries_limit_prices(result):
    assert result.records["date"].iloc[0] == pd.Timestamp("2024-01-10")
    assert result.limit_prices["maxdiffprofit_high_price"] == pytest.approx(101.0)
    assert result.limit_prices["maxdiffprofit_low_price"] == pytest.approx(99.0)
    assert len(result.records["maxdiffprofit_profit_values"].iloc[0]) == 6
    assert (result.records["close_prediction_source"] == "naive").all()
    # docs/backtest.md#walk-forward-stats: walk-forward constants broadcast to every row
    assert result.records["walk_forward_oos_sharpe"].nunique() == 1
    assert result.records["walk_forward_oos_sharpe"].iloc[0] == pytest.approx(
        result.records["simple_strategy_sharpe"].mean()
    )


def _summary_with(returns: dict) -> pd.DataFrame:
    rows = {
        name: {"Return": returns.get(name, -1.0), "Sharpe": 0, "AnnualRet": 0, "FinalDay": 0} for name, *_ in STRATEGIES
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def test_best_strategy_argmax_and_tie_order():
    assert best_strategy(_summary_with({"simple": 0.05, "maxdiff": 0.01})) == "simple"
    # ties: highlow > entry_takeprofit > maxdiff > all_signals > simple
    assert best_strategy(_summary_with({"simple": 0.02, "all_signals": 0.02})) == "all_signals"
    assert best_strategy(_summary_with({"maxdiff": 0.02, "all_signals": 0.02, "highlow": 0.02})) == "highlow"
    assert best_strategy(_summary_with({"entry_takeprofit": 0.02, "maxdiff": 0.02})) == "entry_takeprofit"
    # non-finite counts as -inf; buy_hold and the always-on variant are not candidates
    assert (
        best_strategy(_summary_with({"maxdiff": np.nan, "simple": -0.5, "buy_hold": 9.0, "maxdiffalwayson": 9.0}))
        == "simple"
    )


def test_equity_curves_compound_final_day_pnl_oldest_first(result):
    curves = equity_curves(result.records)
    finals = result.records["simple_strategy_finalday"].to_numpy(np.float64)[::-1]
    np.testing.assert_allclose(curves["simple"].to_numpy(), np.cumprod(1 + finals))
    assert curves.index.is_monotonic_increasing


def test_maxdiff_lines_match_the_original_format(result):
    line = result.maxdiff_lines()[0]
    r = result.records.iloc[0]
    assert line == (
        f"MaxDiff: baseline={r['maxdiff_baseline_return']:.4f} optimized={r['maxdiff_optimized_return']:.4f} "
        f"(mult_h=0.0010 mult_l=-0.0020 close_at_eod=True) -> adjusted={r['maxdiff_return']:.4f}"
    )
    assert result.maxdiff_lines()[1].startswith("MaxDiffAlwaysOn: baseline=")
    assert "Backtest summary for TEST (5 simulations, protocol walk_forward)" in result.summary_text()


def test_save_writes_every_file_atomically(result, tmp_path):
    out = tmp_path / "run"
    paths = result.save(out)
    assert sorted(p.name for p in out.iterdir()) == [
        "daily.csv",
        "equity.csv",
        "equity.png",
        "metadata.json",
        "records.csv",
        "report.html",
        "stats.csv",
        "summary.csv",
        "trades.csv",
        "uncertainty.json",
    ]
    records = pd.read_csv(paths["records"])
    assert len(records) == N  # oldest first, as every table of the folder
    np.testing.assert_allclose(records["highlow_return"], result.records["highlow_return"][::-1], rtol=1e-6)
    assert pd.to_datetime(records["date"]).is_monotonic_increasing
    meta = json.loads(paths["metadata"].read_text())
    assert meta["protocol"] == "walk_forward" and meta["best_strategy"] == result.best_strategy
    assert paths["equity"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # overwriting leaves no temporary files behind, and a failing writer leaves the old file intact
    before = paths["records"].read_text()
    result.records["highlow_return"] = 123.0

    def boom(*a, **k):
        raise OSError("disk full")

    original = pd.DataFrame.to_csv
    pd.DataFrame.to_csv = boom
    try:
        with pytest.raises(OSError):
            result.save(out)
    finally:
        pd.DataFrame.to_csv = original
    assert paths["records"].read_text() == before  # the failed write did not touch the old file
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]


def test_saved_results_are_readable_by_colleagues(result, tmp_path):
    """Under a 022 umask the folder is 0755 and every file 0644 (not mkstemp's 0600 / 0700)."""
    import stat

    old = os.umask(0o022)
    try:
        paths = result.save(tmp_path / "runs" / "one")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(tmp_path / "runs") == mode(tmp_path / "runs" / "one") == 0o755
    assert {mode(p) for p in paths.values()} == {0o644} and len(paths) == 10
