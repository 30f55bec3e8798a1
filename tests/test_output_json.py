"""jaxsim.cli.output_json: the original CLI's --output-json schema (docs/cli-json.md), jaxsim extras added."""

import datetime as dt
import json

import numpy as np
import pytest

from jaxsim.cli.output_json import METRIC_COLUMNS, STRATEGY_COLUMNS, summary_json, write_output_json
from jaxsim.report.result import BacktestResult

# What the original writes (key names and nesting), for an 8-strategy run.
ORIGINAL_STRATEGY_KEYS = ["return", "sharpe", "final_day", "avg_daily_return", "annual_return"]
ORIGINAL_MAXDIFF_KEYS = ORIGINAL_STRATEGY_KEYS + ["turnover", "baseline_return", "optimized_return", "adjusted_return"]
ORIGINAL_METRICS = [
    "close_val_loss",
    "high_val_loss",
    "low_val_loss",
    "walk_forward_oos_sharpe",
    "walk_forward_turnover",
    "walk_forward_maxdiff_sharpe",
    "walk_forward_maxdiffalwayson_sharpe",
]


def _result():
    n = 4
    rng = np.random.default_rng(0)
    cols = {c: rng.normal(size=n).astype(np.float32) for s in STRATEGY_COLUMNS.values() for c in s.values()}
    cols.update({c: np.full(n, 0.01, np.float32) for c in ("close_val_loss", "high_val_loss", "low_val_loss")})
    cols["simple_strategy_forecasted_pnl"] = np.full(n, 0.002, np.float32)
    cols["simple_strategy_return"] = np.array([0.1, 0.2, np.nan, 0.3], np.float32)  # NaN rows are skipped
    cols["buy_hold_sharpe"] = np.full(n, np.nan, np.float32)  # all NaN -> null
    for c in (
        "maxdiffprofit_high_price",
        "maxdiffprofit_low_price",
        "maxdiffalwayson_high_price",
        "maxdiffalwayson_low_price",
        "predicted_close",
        "predicted_high",
        "predicted_low",
        "maxdiff_close_at_eod",
        "maxdiffalwayson_close_at_eod",
        "maxdiffprofit_profit_high_multiplier",
        "maxdiffprofit_profit_low_multiplier",
        "maxdiffalwayson_high_multiplier",
        "maxdiffalwayson_low_multiplier",
    ):
        cols.setdefault(c, np.zeros(n, np.float32))
    dates = np.array(["2020-01-09", "2020-01-08", "2020-01-07", "2020-01-06"], "datetime64[D]")
    return BacktestResult.from_arrays("AAPL", "legacy", cols, dates, {"forecaster": "naive", "n_rows": 100})


def test_schema_matches_the_original():
    r = _result()
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    j = summary_json(r, generated_at=when)
    assert list(j)[:5] == ["symbol", "runs", "generated_at", "strategies", "metrics"]
    assert (j["symbol"], j["runs"], j["generated_at"]) == ("AAPL", 4, "2026-01-02T03:04:05Z")
    assert list(j["strategies"]) == [
        "simple",
        "all_signals",
        "buy_hold",
        "unprofit_shutdown",
        "entry_takeprofit",
        "highlow",
        "maxdiff",
        "maxdiffalwayson",
    ]
    for name, entry in j["strategies"].items():
        original = ORIGINAL_MAXDIFF_KEYS if name.startswith("maxdiff") else ORIGINAL_STRATEGY_KEYS
        assert list(entry)[: len(original)] == original  # original keys first, in order, never renamed
        assert set(entry) - set(original) == {"forecasted_pnl"}
    assert list(j["metrics"])[: len(ORIGINAL_METRICS)] == ORIGINAL_METRICS
    assert list(METRIC_COLUMNS) == ORIGINAL_METRICS


def test_values_are_column_means():
    r = _result()
    j = summary_json(r)
    rec = r.records
    assert j["strategies"]["simple"]["return"] == pytest.approx(0.2, rel=1e-6)  # mean of 0.1, 0.2, 0.3
    assert j["strategies"]["buy_hold"]["sharpe"] is None
    assert j["strategies"]["highlow"]["final_day"] == pytest.approx(float(rec["highlow_finalday_return"].mean()))
    assert j["strategies"]["maxdiff"]["adjusted_return"] == pytest.approx(float(rec["maxdiff_return"].mean()))
    assert j["strategies"]["maxdiff"]["baseline_return"] == pytest.approx(float(rec["maxdiff_baseline_return"].mean()))
    assert j["strategies"]["simple"]["forecasted_pnl"] == pytest.approx(0.002)
    assert j["strategies"]["all_signals"]["forecasted_pnl"] is None
    assert j["metrics"]["close_val_loss"] == pytest.approx(0.01)
    assert j["metrics"]["walk_forward_oos_sharpe"] == pytest.approx(float(rec["simple_strategy_sharpe"].mean()))
    assert j["jaxsim"]["best_strategy"] == r.best_strategy and j["jaxsim"]["protocol"] == "legacy"
    assert j["jaxsim"]["first_simulation_date"] == "2020-01-06"
    assert j["jaxsim"]["walk_forward_fitted_simulations"] is None


def test_label_and_file(tmp_path):
    r = _result()
    path = write_output_json(tmp_path / "out.json", r, label="MY-LABEL")
    j = json.loads(path.read_text())
    assert j["symbol"] == "MY-LABEL" and j["label"] == "MY-LABEL" and j["jaxsim"]["symbol"] == "AAPL"
    assert "NaN" not in path.read_text()
    assert (path.stat().st_mode & 0o044) == 0o044 or (path.stat().st_mode & 0o077) == 0  # umask-dependent
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left
