"""evaluate_simulation: index mapping of docs/backtest.md#return-transform, #diagnostics, #strategy-notation, #maxdiff
from the price window, record fields of docs/backtest.md#record-fields, crypto rules, vmap over simulations and stocks
== per-simulation, jit == eager, input errors."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim.errors import ConfigError
from jaxsim.sim import strategies as S
from jaxsim.sim.simulation import (
    PRICE_WINDOW,
    SimulationInputs,
    StrategyConfig,
    default_fee,
    evaluate_simulation,
    is_crypto,
)

W = PRICE_WINDOW
STRATEGIES = (
    "simple_strategy",
    "all_signals_strategy",
    "buy_hold",
    "unprofit_shutdown",
    "entry_takeprofit",
    "highlow",
    "maxdiff",
    "maxdiffalwayson",
)
FINALDAY = (
    "simple_strategy_finalday",
    "all_signals_strategy_finalday",
    "buy_hold_finalday",
    "unprofit_shutdown_finalday",
    "entry_takeprofit_finalday",
    "highlow_finalday_return",
    "maxdiff_finalday_return",
    "maxdiffalwayson_finalday_return",
)
RECORD_FIELDS = (
    (
        "close",
        "predicted_close",
        "predicted_high",
        "predicted_low",
        "toto_expected_move_pct",
        "kronos_expected_move_pct",
        "raw_expected_move_pct",
        "calibrated_expected_move_pct",
        "calibration_slope",
        "calibration_intercept",
        "realized_volatility_pct",
        "dollar_vol_20d",
        "atr_pct_14",
        "spread_bps_estimate",
        "close_val_loss",
        "high_val_loss",
        "low_val_loss",
        "maxdiff_turnover",
        "maxdiffprofit_profit",
        "maxdiffprofit_profit_values",
        "maxdiffprofit_profit_high_multiplier",
        "maxdiffprofit_profit_low_multiplier",
        "maxdiffprofit_high_price",
        "maxdiffprofit_low_price",
        "maxdiffalwayson_turnover",
        "maxdiffalwayson_profit",
        "maxdiffalwayson_profit_values",
        "maxdiffalwayson_high_multiplier",
        "maxdiffalwayson_low_multiplier",
        "maxdiffalwayson_high_price",
        "maxdiffalwayson_low_price",
        "maxdiffalwayson_buy_contribution",
        "maxdiffalwayson_sell_contribution",
        "maxdiffalwayson_filled_buy_trades",
        "maxdiffalwayson_filled_sell_trades",
        "maxdiffalwayson_trades_total",
        "maxdiffalwayson_trade_bias",
    )
    + FINALDAY
    + tuple(f"{p}_{f}" for p in STRATEGIES for f in ("return", "sharpe", "avg_daily_return", "annual_return"))
)


def make_inputs(rng, n_valid=W):
    close = 100 * np.cumprod(1 + 0.015 * rng.normal(size=W))
    high = close * (1 + 0.01 * rng.random(W))
    low = close * (1 - 0.01 * rng.random(W))
    openp = close * (1 + 0.002 * rng.normal(size=W))
    volume = rng.integers(1_000, 50_000, W)
    prices = np.stack([openp, high, low, close, volume], 1).astype(np.float32)
    valid = np.arange(W) >= W - n_valid
    prices[~valid] = 0.0
    preds = (0.01 * rng.normal(size=(3, 7))).astype(np.float32)
    band = np.abs(0.005 * rng.normal(size=7)).astype(np.float32)
    return SimulationInputs(preds[0], preds[1], preds[2], band, prices, valid)


def fixed_optimizer(close, high, high_pred, low, low_pred, positions, *, close_at_eod, fee):
    return jnp.array([0.001, -0.002], jnp.float32)


# one compiled program per config, shared by the tests (compiles dominate this file's time)
EVAL = jax.jit(partial(evaluate_simulation, optimizer=fixed_optimizer), static_argnames="config")


def test_crypto_symbols_and_fees():
    for sym in ("BTCUSD", "ETHUSD", "BNBUSD", "PAXGUSD", "UNIUSD", "btcusd"):
        assert is_crypto(sym) and default_fee(sym) == 0.0015
    for sym in ("DOGEUSD", "AAPL", "LTCUSD"):
        assert not is_crypto(sym) and default_fee(sym) == 0.0005
    assert StrategyConfig(crypto=True).days_per_year == 365 and StrategyConfig().days_per_year == 252


def test_index_mapping_and_record_fields():
    """Re-derive the strategy inputs from the price window with numpy (rows e-W+1..e)."""
    inp = make_inputs(np.random.default_rng(0))
    out = EVAL(inp, fee=0.0005, spread=1.001, config=StrategyConfig())
    assert set(RECORD_FIELDS) <= set(out)
    o, h, l, c, v = inp.prices.astype(np.float64).T
    ret = lambda x: x[1:] / x[:-1] - 1  # noqa: E731  r_X[t] for t = e-W+2..e
    r_c, r_h, r_l = ret(c), ret(h), ret(l)
    ac, ah, al = r_c[-7:-1], r_h[-7:-1], r_l[-7:-1]  # r_X[e-6..e-1]
    big_r = r_c[-6:]  # R = r_C[e-5..e]
    fc, fh, fl = inp.pred_close[:6], inp.pred_high[:6], inp.pred_low[:6]
    close = partial(np.testing.assert_allclose, rtol=2e-5, atol=1e-7)
    close(out["close"], c[-1])
    close(out["predicted_close"], c[-1] * (1 + inp.pred_close[6]))
    close(out["predicted_high"], h[-1] * (1 + inp.pred_high[6]))
    close(out["predicted_low"], l[-1] * (1 + inp.pred_low[6]))
    close(out["raw_expected_move_pct"], inp.pred_close[6])
    close(out["close_val_loss"], np.mean(np.abs(ac - fc)))
    close(out["high_val_loss"], np.mean(np.abs(ah - fh)))
    close(out["low_val_loss"], np.mean(np.abs(al - fl)))
    close(out["realized_volatility_pct"], 100 * np.std(big_r, ddof=1))
    np.testing.assert_allclose(float(out["spread_bps_estimate"]), 10.0, rtol=1e-4)  # 1.001 in float32
    assert float(out["dollar_vol_20d"]) == 0.0  # equities: the original drops Volume
    ref = S.simple_strategy(fc, big_r, fee=0.0005, spread=1.001)
    close(out["simple_strategy_return"], float(ref["simple_strategy_return"]))
    ref = S.highlow_strategy(fc, fh, fl, ac, ah, al, fee=0.0005)
    close(out["highlow_return"], float(ref["highlow_return"]))
    close(out["buy_hold_return"], np.prod(1 + big_r) - 1 - 0.0005)
    # MaxDiff: offsets from rows e-7..e-2, levels relative to the previous close
    kh, kl = np.abs(1 - h[-8:-2] / c[-8:-2]), np.abs(1 - l[-8:-2] / c[-8:-2])
    hp, lp = fh + kh, fl - kl
    q = np.where(lp < hp, np.where(np.abs(hp) > np.abs(lp), 1.0, -1.0), 0.0)
    assert int(out["maxdiff_trade_count"]) == int(np.sum(q != 0))
    assert int(out["maxdiff_long_count"]) == int(np.sum(q > 0))
    close(out["maxdiffprofit_high_price"], h[-1] * (1 + inp.pred_high[6]) * 1.001)
    close(out["maxdiffprofit_low_price"], l[-1] * (1 + inp.pred_low[6]) * 0.998)
    for name, value in out.items():
        if jnp.issubdtype(value.dtype, jnp.floating):
            assert value.dtype == jnp.float32, name
        assert value.shape in ((), (6,), (7,)), name


def test_crypto_config():
    inp = make_inputs(np.random.default_rng(1))
    out = EVAL(inp, fee=0.0015, spread=1.0, config=StrategyConfig(crypto=True))
    assert int(out["maxdiff_short_count"]) == 0
    assert float(out["maxdiffalwayson_sell_contribution"]) == 0.0
    o, h, l, c, v = inp.prices.astype(np.float64).T
    np.testing.assert_allclose(float(out["dollar_vol_20d"]), np.mean(c[-20:] * v[-20:]), rtol=1e-5)
    for p in STRATEGIES:
        np.testing.assert_allclose(
            float(out[f"{p}_annual_return"]), 365 * float(out[f"{p}_avg_daily_return"]), rtol=1e-5, atol=1e-9
        )


def test_short_history():
    inp = make_inputs(np.random.default_rng(2), n_valid=7)  # fewer than 6+2 rows
    out = EVAL(inp, fee=0.0005, spread=1.0, config=StrategyConfig())
    assert float(out["maxdiff_return"]) == 0.0 and float(out["maxdiffalwayson_return"]) == 0.0
    assert float(out["atr_pct_14"]) == 0.0
    assert all(np.all(np.isfinite(np.asarray(v))) for v in out.values())


def test_bad_shapes_raise_config_error():
    inp = make_inputs(np.random.default_rng(3))
    for bad in (
        inp._replace(pred_close=inp.pred_close[:6]),
        inp._replace(prices=inp.prices[:, :4]),
        inp._replace(prices=inp.prices[-10:], prices_valid=inp.prices_valid[-10:]),
        inp._replace(prices_valid=inp.prices_valid[:-1]),
    ):
        with pytest.raises(ConfigError):
            evaluate_simulation(bad, fee=0.0005, spread=1.0, optimizer=fixed_optimizer)


def stack(items):
    return jax.tree.map(lambda *x: np.stack(x), *items)


def test_vmap_over_stocks_and_simulations_equals_per_simulation():
    rng = np.random.default_rng(4)
    stocks, sims = 2, 3
    grid = [[make_inputs(rng, n_valid=W if s else 7) for s in range(sims)] for _ in range(stocks)]
    batch = stack([stack(row) for row in grid])

    def fn(inputs, fee, spread):
        return evaluate_simulation(
            inputs, fee=fee, spread=spread, config=StrategyConfig(), optimizer=fixed_optimizer
        )  # the grid one is vmapped in test_maxdiff

    fees = np.full((stocks,), 0.0005, np.float32)
    out = jax.jit(jax.vmap(jax.vmap(fn, in_axes=(0, None, None)), in_axes=(0, 0, None)))(batch, fees, 1.01)
    for i in range(stocks):
        for k in range(sims):
            ref = EVAL(grid[i][k], fee=0.0005, spread=1.01, config=StrategyConfig())
            for name, want in ref.items():
                np.testing.assert_allclose(
                    np.asarray(out[name][i, k]), np.asarray(want), rtol=1e-5, atol=1e-7, err_msg=name
                )


def test_jit_equals_eager():
    inp = make_inputs(np.random.default_rng(5))
    fn = partial(evaluate_simulation, config=StrategyConfig(), optimizer=fixed_optimizer)
    eager = fn(inp, fee=0.0005, spread=1.02)
    jitted = EVAL(inp, fee=0.0005, spread=1.02, config=StrategyConfig())
    assert set(eager) == set(jitted)
    for name in eager:
        assert jitted[name].dtype == eager[name].dtype, name
        np.testing.assert_allclose(
            np.asarray(jitted[name]), np.asarray(eager[name]), rtol=1e-5, atol=1e-7, err_msg=name
        )
