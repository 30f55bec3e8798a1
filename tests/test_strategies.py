"""Strategies of docs/backtest.md#strategies (golden case D, state-machine references, crypto rules,
docs/deviations.md#no-inplace-fee-mutation) and a conformance suite running all eight strategies through jit, vmap and
dtype checks."""

import json
from functools import partial
from pathlib import Path

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxsim.optimize import grid_optimizer
from jaxsim.sim import maxdiff
from jaxsim.sim import strategies as S

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "golden_backtest_cases.json").read_text())
D = GOLDEN["D_strategies"]
LIMIT_KEYS = ("close_pred", "high_pred", "low_pred", "actual_close", "actual_high", "actual_low")


def assert_golden(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    err = np.abs(got - want)
    assert np.all((err <= 1e-6) | (err <= 1e-5 * np.abs(want))), (got, want)


def limit_inputs():
    return [np.asarray(D["entry_takeprofit_highlow_inputs"][k]) for k in LIMIT_KEYS]


# ----------------------------------------------------------------------------------- golden case D
def test_golden_d_entry_takeprofit():
    g = D["entry_takeprofit_fee0.0005"]
    args = limit_inputs()
    assert_golden(S.entry_takeprofit_daily(*args, fee=0.0005), g["daily"])
    out = S.entry_takeprofit_strategy(*args, fee=0.0005, days_per_year=252)
    assert_golden(out["entry_takeprofit_return"], g["total"])
    assert_golden(out["entry_takeprofit_sharpe"], g["sharpe"])
    assert_golden(
        out["entry_takeprofit_finalday"], g["total"] / 6
    )  # an average (docs/deviations.md#kept-finalday-average)


@pytest.mark.parametrize(
    "key,fee,crypto,days",
    [("highlow_stock_fee0.0005", 0.0005, False, 252), ("highlow_crypto_fee0.0015_365", 0.0015, True, 365)],
)
def test_golden_d_highlow(key, fee, crypto, days):
    g = D[key]
    args = limit_inputs()
    assert_golden(S.highlow_daily(*args, fee=fee, crypto=crypto), g["daily"])
    out = S.highlow_strategy(*args, fee=fee, crypto=crypto, days_per_year=days)
    assert_golden(out["highlow_return"], g["total"])
    assert_golden(out["highlow_sharpe"], g["sharpe"])
    assert_golden(out["highlow_finalday_return"], g["total"] / 6)


def test_bug_10_4_in_place_fee_mutation_not_reproduced():
    """The original's entry+take-profit lowers shared inputs by its fee in place, so highlow ran on
    altered values (0.0065 in golden I). Ours is pure: highlow after entry+take-profit on case D's
    inputs gives the clean 0.0075 and the inputs are untouched."""
    args = [np.array(a) for a in limit_inputs()]
    before = [a.copy() for a in args]
    S.entry_takeprofit_strategy(*args, fee=0.0005)
    out = S.highlow_strategy(*args, fee=0.0005)
    assert_golden(out["highlow_return"], 0.0075)
    assert abs(float(out["highlow_return"]) - 0.0065) > 5e-4
    for a, b in zip(args, before):
        np.testing.assert_array_equal(a, b)


def test_golden_d_unprofit_shutdown():
    g = D["unprofit_shutdown"]
    f, r = np.asarray(g["pred"], np.float32), np.asarray(g["actual"])
    np.testing.assert_array_equal(S.unprofit_shutdown_signals(f, r), g["stock"])
    np.testing.assert_array_equal(S.unprofit_shutdown_signals(f, r, crypto=True), g["crypto"])


def test_golden_d_simple_and_all_signals():
    g = D["simple_allsignals_buyhold"]
    fc = np.asarray(g["close_pred"])
    np.testing.assert_array_equal(S.simple_signals(fc), g["simple_stock"])  # fC = 0 -> short
    np.testing.assert_array_equal(S.simple_signals(fc, crypto=True), g["simple_crypto"])
    close, high, low = [0.1, -0.2, 0.3, -0.4, 0.1], [0.2, -0.1, 0.4, 0.3, 0.1], [0.3, -0.3, -0.2, -0.2, 0.1]
    np.testing.assert_array_equal(
        S.all_signals(np.array(close), np.array(high), np.array(low)), g["all_signals(close,high,low)"]
    )
    assert float(S.all_signals(np.array([-0.1]), np.array([-0.1]), np.array([-0.1]), crypto=True)[0]) == 0.0


# ------------------------------------------------------------------ signal strategies through E_cmp
def test_simple_strategy_uses_e_cmp_and_finalday():
    fc = np.array([0.01, -0.02, 0.0, 0.03, -0.01, 0.02])
    r = np.array([0.005, -0.01, 0.02, 0.01, -0.003, 0.004])
    out = S.simple_strategy(fc, r, fee=0.0005, spread=1.00390625)  # exact in float32
    s = np.array([1, -1, -1, 1, -1, 1.0])
    cost = np.abs(np.diff(s, prepend=0)) * (0.0005 + 0.00390625 / 2)
    net = s * r - cost
    assert_golden(out["simple_strategy_return"], np.prod(1 + net) - 1)
    assert_golden(out["simple_strategy_sharpe"], net.mean() / net.std(ddof=1) * np.sqrt(252))
    assert_golden(out["simple_strategy_finalday"], s[-1] * r[-1] - 2 * 0.0005 * 1.00390625)


def test_buy_hold_return_is_unconditional():
    fc = np.array([-0.01, -0.02, 0.0, -0.03, -0.01, -0.02])  # never long
    r = np.array([0.005, -0.01, 0.02, 0.01, -0.003, 0.004])
    out = S.buy_hold_strategy(fc, r, fee=0.0005, spread=1.05)
    assert_golden(out["buy_hold_return"], np.prod(1 + r) - 1 - 0.0005)
    assert_golden(out["buy_hold_finalday"], r[-1] - 0.0005)
    assert float(out["buy_hold_sharpe"]) == 0.0 and float(out["buy_hold_avg_daily_return"]) == 0.0


# ------------------------------------------------------------ naive state-machine references
def ref_unprofit(fc, r, crypto):
    s = [1.0]
    for i in range(1, len(fc)):
        correct = (r[i - 1] > 0 and fc[i - 1] > 0) or (r[i - 1] < 0 and fc[i - 1] < 0)
        s.append(float(np.sign(fc[i])) if (s[-1] == 0 or correct) else 0.0)
    return [max(v, 0.0) for v in s] if crypto else s


def ref_limit(fc, fh, fl, ac, ah, al, fee, crypto, highlow):
    out, prev = [], None
    for i in range(len(fc)):
        if highlow:
            if fc[i] > 0:
                side, g = "buy", ac[i] - (fl[i] if al[i] <= fl[i] else ac[i])
            elif fc[i] < 0 and not crypto:
                side, g = "short", (fh[i] if ah[i] >= fh[i] else ac[i]) - ac[i]
            else:
                out.append(0.0)
                prev = None
                continue
        else:
            if fc[i] > 0:
                side, g = "buy", (fh[i] if ah[i] >= fh[i] else ac[i])
            else:
                side, g = "short", (-fl[i] if al[i] <= fl[i] else -ac[i])
        if side != prev:
            g -= fee
            if prev is not None:
                g -= fee
        prev = side
        out.append(g)
    return out


UNPROFIT_JIT = jax.jit(S.unprofit_shutdown_signals, static_argnames="crypto")
HIGHLOW_JIT = jax.jit(S.highlow_daily, static_argnames="crypto")
ETP_JIT = jax.jit(S.entry_takeprofit_daily)
grid6 = hnp.arrays(np.float32, 6, elements=st.integers(-5, 5).map(lambda i: np.float32(i / 200)))


@settings(max_examples=40, deadline=None)
@given(fc=grid6, r=grid6, crypto=st.booleans())
def test_unprofit_shutdown_matches_state_machine(fc, r, crypto):
    np.testing.assert_array_equal(np.asarray(UNPROFIT_JIT(fc, r, crypto=crypto)), ref_unprofit(fc, r, crypto))


@settings(max_examples=40, deadline=None)
@given(fc=grid6, fh=grid6, fl=grid6, ac=grid6, ah=grid6, al=grid6, crypto=st.booleans(), highlow=st.booleans())
def test_limit_strategies_match_fee_memory_loop(fc, fh, fl, ac, ah, al, crypto, highlow):
    fee = np.float32(0.0015 if crypto else 0.0005)
    fn = partial(HIGHLOW_JIT, crypto=crypto) if highlow else ETP_JIT
    got = np.asarray(fn(fc, fh, fl, ac, ah, al, fee=fee))
    np.testing.assert_allclose(got, ref_limit(fc, fh, fl, ac, ah, al, fee, crypto, highlow), atol=1e-7)


def test_crypto_rules_no_shorts():
    fc = np.array([-0.01, 0.02, -0.03, 0.01, -0.02, 0.005])
    r = np.array([0.01, -0.02, 0.03, 0.01, -0.01, 0.02])
    assert np.all(np.asarray(S.simple_signals(fc, crypto=True)) >= 0)
    assert np.all(np.asarray(S.unprofit_shutdown_signals(fc, r, crypto=True)) >= 0)
    hl = S.highlow_daily(fc, fc, fc, r, r, r, fee=0.0015, crypto=True)
    np.testing.assert_array_equal(np.asarray(hl)[fc < 0], 0.0)
    # entry+take-profit has no crypto flag in the original: shorts stay
    etp = S.entry_takeprofit_daily(fc, np.full(6, 0.05), np.full(6, -0.05), r, r, r, fee=0.0015)
    assert_golden(np.asarray(etp)[2], 0.03 * -1 - 0.0015 * 2)


# ------------------------------------------------------------------------- conformance suite
def run_all_eight(x, fee, spread, crypto, days, optimizer):
    fc, fh, fl, ac, ah, al, r, kh, kl = x
    kw = dict(fee=fee, spread=spread, days_per_year=days)
    out = {}
    out.update(S.simple_strategy(fc, r, crypto=crypto, **kw))
    out.update(S.all_signals_strategy(fc, fh, fl, r, crypto=crypto, **kw))
    out.update(S.buy_hold_strategy(fc, r, **kw))
    out.update(S.unprofit_shutdown_strategy(fc, r, crypto=crypto, **kw))
    out.update(S.entry_takeprofit_strategy(fc, fh, fl, ac, ah, al, fee=fee, days_per_year=days))
    out.update(S.highlow_strategy(fc, fh, fl, ac, ah, al, fee=fee, crypto=crypto, days_per_year=days))
    md = (ac, ah, al, fh, fl, kh, kl, 101.0, 99.0)
    out.update(maxdiff.maxdiff_strategy(*md, fee=fee, optimizer=optimizer, crypto=crypto, days_per_year=days))
    out.update(maxdiff.maxdiff_always_on_strategy(*md, fee=fee, optimizer=optimizer, crypto=crypto, days_per_year=days))
    return out


STRATEGY_PREFIXES = (
    "simple_strategy",
    "all_signals_strategy",
    "buy_hold",
    "unprofit_shutdown",
    "entry_takeprofit",
    "highlow",
    "maxdiff",
    "maxdiffalwayson",
)


@pytest.mark.parametrize("crypto", [False, True])
def test_conformance_all_eight_strategies(crypto):
    rng = np.random.default_rng(7)
    sims = 4
    x = rng.normal(0, 0.01, (9, sims, 6)).astype(np.float32)
    x[7:] = np.abs(x[7:])  # kH, kL >= 0
    fee, days = (0.0015, 365) if crypto else (0.0005, 252)
    optimizer = grid_optimizer(21)
    run = partial(run_all_eight, spread=1.001, crypto=crypto, days=days, optimizer=optimizer)
    batched = jax.jit(jax.vmap(run, in_axes=(1, None)))(x, fee)
    for prefix in STRATEGY_PREFIXES:
        for field in ("return", "sharpe", "avg_daily_return", "annual_return"):
            v = batched[f"{prefix}_{field}"]
            assert v.shape == (sims,) and v.dtype == jnp.float32, (prefix, field)
            assert np.all(np.isfinite(np.asarray(v)))
    single = jax.jit(run)
    for k in range(sims):
        ref = single(tuple(x[:, k]), fee)  # per simulation (jit == eager: test_simulation.py)
        assert set(ref) == set(batched)
        for name, want in ref.items():
            got = np.asarray(batched[name][k])
            assert got.dtype == np.asarray(want).dtype, name
            np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-7, err_msg=name)
