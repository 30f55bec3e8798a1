"""Determinism: the same key gives bit-identical results; another key changes only sampled parts."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
from reliability_helpers import CAP, HIST, N_SIMS, SAMPLED, numeric_columns, synthetic_prices

from jaxsim.shell.api import backtest, backtest_many

# Fields computed from prices only: identical whatever the key.
PRICE_ONLY = ("close", "atr_pct_14", "dollar_vol_20d", "realized_volatility_pct", "spread_bps_estimate")
# Fields that are (functions of) the sampled forecasts: must move when the key changes.
SAMPLED_FIELDS = (
    "close_predictions",
    "high_predictions",
    "low_predictions",
    "predicted_close",
    "predicted_high",
    "predicted_low",
    "close_ci_band",
)


def _run(prices, forecaster, seed):
    return backtest(prices, forecaster, n_sims=N_SIMS, max_context=CAP, key=jax.random.key(seed), protocol="legacy")


def test_same_key_bit_identical():
    prices = synthetic_prices("DET", 200, seed=11, vol=0.03, events=("split_up",))
    a, b = _run(prices, SAMPLED, 7), _run(prices, SAMPLED, 7)
    pd.testing.assert_frame_equal(a.records, b.records, check_exact=True)
    pd.testing.assert_frame_equal(a.summary, b.summary, check_exact=True)
    assert a.limit_prices == b.limit_prices and a.best_strategy == b.best_strategy
    # the raw key array and a typed key of the same data are the same key
    c = backtest(
        prices,
        SAMPLED,
        n_sims=N_SIMS,
        max_context=CAP,
        key=jax.random.wrap_key_data(jax.random.key_data(jax.random.key(7))),
        protocol="legacy",
    )
    pd.testing.assert_frame_equal(a.records, c.records, check_exact=True)


def test_other_key_changes_only_sampled_parts():
    prices = synthetic_prices("DET", 200, seed=12, vol=0.03)
    a, b = _run(prices, SAMPLED, 1), _run(prices, SAMPLED, 2)
    ca, cb = numeric_columns(a.records), numeric_columns(b.records)
    for name in PRICE_ONLY:
        np.testing.assert_array_equal(ca[name], cb[name], err_msg=name)
    assert (a.records["date"] == b.records["date"]).all()
    for name in SAMPLED_FIELDS:
        assert not np.array_equal(ca[name], cb[name]), f"{name} did not change with the key"


def test_deterministic_forecaster_ignores_the_key():
    prices = synthetic_prices("DET", 200, seed=13, vol=0.02)
    a, b = _run(prices, HIST, 1), _run(prices, HIST, 99)
    pd.testing.assert_frame_equal(a.records, b.records, check_exact=True)


def test_backtest_many_same_key_bit_identical():
    stocks = [synthetic_prices(f"S{i}", 120 + 40 * i, seed=20 + i) for i in range(3)]
    a = backtest_many(
        stocks,
        SAMPLED,
        n_sims=N_SIMS,
        max_context=CAP,
        key=jax.random.key(3),
        chunk_size=4,
        progress=False,
        protocol="legacy",
    )
    b = backtest_many(
        stocks,
        SAMPLED,
        n_sims=N_SIMS,
        max_context=CAP,
        key=jax.random.key(3),
        chunk_size=4,
        progress=False,
        protocol="legacy",
    )
    for name in a:
        pd.testing.assert_frame_equal(a[name].records, b[name].records, check_exact=True)
