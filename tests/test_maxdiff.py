"""MaxDiff and always-on (docs/backtest.md#maxdiff, #maxdiff-always-on): offsets, direction/validity rules, eod choice,
adjusted metrics, metadata, docs/deviations.md#kept-always-on-baseline-eod, the optimizer protocol and the grid baseline
optimizer (golden case C)."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim.optimize import default_optimizer, grid_optimizer
from jaxsim.sim.maxdiff import close_relative_offsets, maxdiff_always_on_strategy, maxdiff_strategy
from jaxsim.sim.metrics import evaluate_daily_returns
from jaxsim.sim.profit import profit_values, total_profit

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "golden_backtest_cases.json").read_text())
C = GOLDEN["C_optimizers"]
KEYS = ("close", "high", "high_pred", "low", "low_pred")


def assert_golden(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    err = np.abs(got - want)
    assert np.all((err <= 1e-6) | (err <= 1e-5 * np.abs(want))), (got, want)


def case_c():
    c, h, hp, l, lp = (np.asarray(C["inputs"][k], np.float32) for k in KEYS)
    zero = np.zeros(6, np.float32)
    # with kH = kL = 0 the MaxDiff levels are the case C inputs themselves
    return dict(
        actual_close=c,
        actual_high=h,
        actual_low=l,
        high_pred=hp,
        low_pred=lp,
        k_high=zero,
        k_low=zero,
        high_price=200.0,
        low_price=100.0,
    )


# c > hp: a filled long that hits its take-profit earns more when held to the close (eod=True)
EOD_WINS = dict(
    actual_close=np.full(6, 0.03, np.float32),
    actual_high=np.full(6, 0.04, np.float32),
    actual_low=np.full(6, -0.03, np.float32),
    high_pred=np.full(6, 0.01, np.float32),
    low_pred=np.full(6, -0.005, np.float32),
    k_high=np.zeros(6, np.float32),
    k_low=np.zeros(6, np.float32),
    high_price=1.0,
    low_price=1.0,
)


def constant_optimizer(mh, ml, calls=None):
    def optimizer(close, high, high_pred, low, low_pred, positions, *, close_at_eod, fee):
        if calls is not None:
            calls.append((type(close_at_eod), bool(close_at_eod), np.shape(positions), positions))
        return jnp.array([mh, ml], jnp.float32)

    return optimizer


# --------------------------------------------------------------------------------- grid optimizer
def test_grid_optimizer_on_case_c_beats_direct():
    args = [np.asarray(C["inputs"][k], np.float32) for k in KEYS]
    q = np.asarray(C["positions"], np.float32)
    m = grid_optimizer(601)(*args, q[None], close_at_eod=False, fee=C["fee"])
    assert np.all(np.abs(np.asarray(m)) <= 0.03 + 1e-7)
    c, h, hp, l, lp = args
    best = float(total_profit(c, h, hp + m[0], l, lp + m[1], q, fee=C["fee"]))
    assert best >= C["entry_exit_eod_False"]["profit"]  # DIRECT's 0.0734
    assert best >= C["entry_exit_eod_False"]["grid601_best"]["profit"] - 1e-6  # 0.0746


def test_grid_optimizer_is_exhaustive_and_ties_go_to_smallest_offsets():
    rng = np.random.default_rng(0)
    c, h, hp, l, lp = rng.normal(0, 0.01, (5, 6)).astype(np.float32)
    q = np.array([[1, -1, 1, 0, 1, -1]], np.float32)
    m = grid_optimizer(11)(c, h, hp, l, lp, q, close_at_eod=True, fee=0.0005)
    axis = np.linspace(-0.03, 0.03, 11, dtype=np.float32)
    vals = np.array(
        [[float(total_profit(c, h, hp + a, l, lp + b, q[0], close_at_eod=True)) for b in axis] for a in axis]
    )
    got = float(total_profit(c, h, hp + m[0], l, lp + m[1], q[0], close_at_eod=True))
    assert got == vals.max()  # the grid's best value, found exhaustively
    # flat objective: every point ties, the smallest offsets win (no move without a reason)
    flat = grid_optimizer(5)(c, h, hp, l, lp, np.zeros((1, 6), np.float32), close_at_eod=False, fee=0.0)
    np.testing.assert_allclose(np.asarray(flat), [0.0, 0.0], atol=1e-8)


# ------------------------------------------------------------------------------------- MaxDiff
def test_close_relative_offsets():
    kh, kl = close_relative_offsets(
        np.array([102.0, 5.0, 1.0]), np.array([97.0, 4.0, 1.0]), np.array([100.0, 0.0, np.nan])
    )
    np.testing.assert_allclose(np.asarray(kh), [0.02, 0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(np.asarray(kl), [0.03, 0.0, 0.0], atol=1e-7)


@pytest.mark.parametrize("eod", [False, True])
def test_case_c_positions_and_baseline(eod):
    calls = []
    out = maxdiff_strategy(**case_c(), fee=C["fee"], optimizer=constant_optimizer(0.0, 0.0, calls), close_at_eod=eod)
    ((kind, flag, shape, positions),) = calls  # one candidate, static bool, (1, days) positions
    assert kind is bool and flag == eod and shape == (1, 6)
    np.testing.assert_array_equal(np.asarray(positions)[0], C["positions"])  # |hp| > |lp| rule
    assert_golden(out["maxdiff_baseline_return"], C[f"entry_exit_eod_{eod}"]["baseline_sum"])
    assert bool(out["maxdiff_close_at_eod"]) == eod


def test_adjusted_metrics_and_metadata():
    m_h, m_l = 0.002, -0.001
    inp = case_c()
    inp["high_pred"] = inp["high_pred"].copy()
    inp["high_pred"][4] = -0.02  # lp >= hp on day 4: invalid, flat
    out = maxdiff_strategy(**inp, fee=0.0005, optimizer=constant_optimizer(m_h, m_l), close_at_eod=False)
    c, h, l, hp, lp = (inp[k] for k in ("actual_close", "actual_high", "actual_low", "high_pred", "low_pred"))
    q = np.array([1, -1, 1, 1, 0, 1], np.float32)
    base = profit_values(c, h, hp, l, lp, q, fee=0.0005)
    final = profit_values(c, h, hp + np.float32(m_h), l, lp + np.float32(m_l), q, fee=0.0005)
    b, o = evaluate_daily_returns(base, 252), evaluate_daily_returns(final, 252)
    assert_golden(out["maxdiffprofit_profit_values"], final)
    assert_golden(out["maxdiff_return"], b.total + 0.3 * o.total)
    assert_golden(out["maxdiff_sharpe"], b.sharpe + 0.3 * o.sharpe)
    assert_golden(out["maxdiff_avg_daily_return"], b.avg_daily + 0.3 * o.avg_daily)
    assert_golden(out["maxdiff_annual_return"], b.annual + 0.3 * o.annual)
    assert_golden(out["maxdiffprofit_profit"], out["maxdiff_return"])
    assert_golden(out["maxdiff_finalday_return"], final[-1])
    assert_golden(out["maxdiff_turnover"], np.mean(np.abs(final)))
    assert_golden(out["maxdiff_optimized_return"], o.total)
    assert_golden(out["maxdiffprofit_high_price"], 200.0 * (1 + m_h))
    assert_golden(out["maxdiffprofit_low_price"], 100.0 * (1 + m_l))
    assert_golden(out["maxdiffprofit_profit_high_multiplier"], m_h)
    counts = {
        k: int(out[f"maxdiff_{k}"])
        for k in ("long_count", "short_count", "trade_count", "valid_count", "invalid_count", "primary_side")
    }
    assert counts == dict(long_count=4, short_count=1, trade_count=5, valid_count=5, invalid_count=1, primary_side=1)
    assert_golden(out["maxdiff_trade_bias"], 3 / 5)


def test_crypto_has_no_short_positions():
    calls = []
    out = maxdiff_strategy(
        **case_c(),
        fee=0.0015,
        optimizer=constant_optimizer(0.0, 0.0, calls),
        crypto=True,
        days_per_year=365,
        close_at_eod=False,
    )
    np.testing.assert_array_equal(np.asarray(calls[0][3])[0], [1, 0, 1, 1, 0, 1])
    assert int(out["maxdiff_short_count"]) == 0 and int(out["maxdiff_primary_side"]) == 1


def test_eod_choice_is_strict_and_per_candidate():
    calls = []
    out = maxdiff_strategy(**case_c(), fee=0.0005, optimizer=constant_optimizer(0.0, 0.0, calls))
    assert [c[1] for c in calls] == [False, True]
    # eod=False sums to 0.0435 > 0.0240: False kept
    assert not bool(out["maxdiff_close_at_eod"])
    # an all-flat day set ties at 0: False wins ties
    flat = case_c()
    flat["high_pred"] = flat["low_pred"] - 0.01  # every day invalid
    out = maxdiff_strategy(**flat, fee=0.0005, optimizer=constant_optimizer(0.0, 0.0))
    assert not bool(out["maxdiff_close_at_eod"]) and float(out["maxdiff_return"]) == 0.0
    # a long that fills, hits its take-profit and closes above it: eod=True strictly better
    out = maxdiff_strategy(**EOD_WINS, fee=0.0005, optimizer=constant_optimizer(0.0, 0.0))
    args = [EOD_WINS[k] for k in ("actual_close", "actual_high", "high_pred", "actual_low", "low_pred")]
    ones = np.ones(6, np.float32)
    assert float(total_profit(*args, ones, close_at_eod=True)) > float(total_profit(*args, ones))
    assert bool(out["maxdiff_close_at_eod"])
    assert_golden(out["maxdiffprofit_profit_values"], np.full(6, 0.0345))  # c - lp - fee
    assert_golden(out["maxdiff_baseline_return"], 6 * 0.0345)


def test_non_finite_multipliers_map_to_zero_and_short_history_zeroes():
    out = maxdiff_strategy(**case_c(), fee=0.0005, optimizer=constant_optimizer(np.nan, np.inf), close_at_eod=False)
    assert float(out["maxdiffprofit_profit_high_multiplier"]) == 0.0
    assert float(out["maxdiffprofit_profit_low_multiplier"]) == 0.0
    assert_golden(out["maxdiff_optimized_return"], C["entry_exit_eod_False"]["baseline_sum"])
    for fn in (maxdiff_strategy, maxdiff_always_on_strategy):
        out = fn(**case_c(), fee=0.0005, optimizer=constant_optimizer(0.01, 0.01), enough_history=False)
        assert all(np.all(np.asarray(v) == 0) for v in out.values())


# ------------------------------------------------------------------------------------ always-on
def test_always_on_positions_and_contributions():
    for crypto in (False, True):
        calls = []
        out = maxdiff_always_on_strategy(
            **case_c(),
            fee=0.0005,
            crypto=crypto,
            close_at_eod=False,
            optimizer=constant_optimizer(0.001, -0.002, calls),
        )
        positions = np.asarray(calls[0][3])
        assert positions.shape == (2, 6)
        np.testing.assert_array_equal(positions[0], 1.0)
        np.testing.assert_array_equal(positions[1], 0.0 if crypto else -1.0)
        inp = case_c()
        c, h, l, hp, lp = (inp[k] for k in ("actual_close", "actual_high", "actual_low", "high_pred", "low_pred"))
        buy = profit_values(c, h, hp + np.float32(0.001), l, lp - np.float32(0.002), positions[0])
        sell = profit_values(c, h, hp + np.float32(0.001), l, lp - np.float32(0.002), positions[1])
        assert_golden(out["maxdiffalwayson_profit_values"], buy + sell)
        assert_golden(out["maxdiffalwayson_buy_contribution"], np.sum(buy))
        assert_golden(out["maxdiffalwayson_sell_contribution"], np.sum(sell))
        assert int(out["maxdiffalwayson_filled_buy_trades"]) == int(np.sum(np.asarray(buy) != 0))
        assert int(out["maxdiffalwayson_filled_sell_trades"]) == int(np.sum(np.asarray(sell) != 0))
        assert int(out["maxdiffalwayson_trades_total"]) == int(
            np.sum(np.asarray(buy) != 0) + np.sum(np.asarray(sell) != 0)
        )
        gross = np.sum(np.abs(np.asarray(buy + sell)))
        assert_golden(out["maxdiffalwayson_trade_bias"], (np.sum(buy) - np.sum(sell)) / gross)
        assert_golden(out["maxdiffalwayson_turnover"], np.mean(np.abs(np.asarray(buy + sell))))
        assert_golden(out["maxdiffalwayson_high_price"], 200.0 * 1.001)
        if crypto:
            assert float(out["maxdiffalwayson_sell_contribution"]) == 0.0


def test_bug_10_7_always_on_baseline_always_uses_eod_false():
    """When eod=True is chosen, the baseline is still scored with eod=False (kept from the original).
    (For stocks intraday always wins the buy+sell sum when both fill, so the case is crypto.)"""
    out = maxdiff_always_on_strategy(**EOD_WINS, fee=0.0005, crypto=True, optimizer=constant_optimizer(0.0, 0.0))
    assert bool(out["maxdiffalwayson_close_at_eod"])
    args = [EOD_WINS[k] for k in ("actual_close", "actual_high", "high_pred", "actual_low", "low_pred")]
    ones = np.ones(6, np.float32)

    def both(eod):
        return float(total_profit(*args, ones, close_at_eod=eod))

    assert both(True) > both(False)
    assert_golden(out["maxdiffalwayson_baseline_return"], both(False))
    assert_golden(out["maxdiffalwayson_optimized_return"], both(True))
    assert abs(float(out["maxdiffalwayson_baseline_return"]) - both(True)) > 1e-3


def test_vmap_equals_per_simulation_and_jit_equals_eager():
    rng = np.random.default_rng(11)
    n = 3
    lv = rng.normal(0, 0.01, (5, n, 6)).astype(np.float32)
    k = np.abs(rng.normal(0, 0.005, (2, n, 6))).astype(np.float32)
    opt = grid_optimizer(9)

    def run(a, kk):
        return {
            **maxdiff_strategy(*a, *kk, 101.0, 99.0, fee=0.0005, optimizer=opt),
            **maxdiff_always_on_strategy(*a, *kk, 101.0, 99.0, fee=0.0005, optimizer=opt),
        }

    batched = jax.jit(jax.vmap(run, in_axes=(1, 1)))(lv, k)
    for s in range(n):
        ref = run(lv[:, s], k[:, s])  # eager
        for name, want in ref.items():
            np.testing.assert_allclose(
                np.asarray(batched[name][s]), np.asarray(want), rtol=1e-5, atol=1e-7, err_msg=name
            )


def test_default_optimizer_is_optax_and_reaches_case_c_supremum():
    out = maxdiff_strategy(**case_c(), fee=C["fee"], optimizer=default_optimizer(), close_at_eod=False)
    total = float(np.sum(np.asarray(out["maxdiffprofit_profit_values"])))
    # the supremum of case C (eod False), approached inside a breakpoint: 0.0755 > DIRECT's 0.0734
    assert abs(total - 0.0755) < 1e-6
    assert total > C["entry_exit_eod_False"]["profit"]


def test_offsets_match_float64_reference_on_real_data(daily_dir):
    """kH, kL from the float32 (hi, lo) split of the float64 prices equal float32(float64 offsets)
    bit for bit on every row of the shared stocks; from float32 prices alone they do not."""
    import pandas as pd

    from jaxsim.sim.maxdiff import close_relative_offsets, host_close_relative_offsets, split_float64

    fn = jax.jit(lambda hh, hl, lh, ll, ch, cl: close_relative_offsets(hh, lh, ch, high_lo=hl, low_lo=ll, close_lo=cl))
    total = plain_off = 0
    for path in sorted(daily_dir.glob("*.csv")):
        df = pd.read_csv(path)
        h, l, c = (df[k].to_numpy(np.float64) for k in ("high", "low", "close"))
        ref = host_close_relative_offsets(h, l, c)
        # the reference is the original's float64 formula, cast once
        np.testing.assert_array_equal(ref[0], np.abs(1.0 - df["high"] / df["close"]).to_numpy().astype(np.float32))
        (hh, hl), (lh, ll), (ch, cl) = (split_float64(x) for x in (h, l, c))
        got = fn(hh, hl, lh, ll, ch, cl)
        plain = close_relative_offsets(hh, lh, ch)
        for r, g, p in zip(ref, got, plain):
            np.testing.assert_array_equal(np.asarray(g), r, err_msg=path.stem)
            total += r.size
            plain_off += int(np.sum(np.asarray(p) != r))
    assert total > 100_000 and plain_off > total // 2  # float32 prices alone miss most of them
