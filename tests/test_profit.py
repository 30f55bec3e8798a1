"""PF of docs/backtest.md#profit-function: golden cases A, B and C's baseline sums, a naive per-day reference,
jit/vmap."""

import doctest
import json
from pathlib import Path

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profit_helpers import (
    legacy_buysell_profit_values,
    legacy_trading_profit,
    legacy_trading_profit_buy_only,
    legacy_trading_profits_list,
)

from jaxsim.sim import profit
from jaxsim.sim.profit import profit_values, total_profit

pytestmark = pytest.mark.strict_promotion

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "golden_backtest_cases.json").read_text())
ARGS = ("close", "high", "high_pred", "low", "low_pred")


def assert_golden(got, want):
    """float32 tolerance of the issue: abs <= 1e-6 or rel <= 1e-5, element-wise."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    err = np.abs(got - want)
    assert np.all((err <= 1e-6) | (err <= 1e-5 * np.abs(want))), (got, want)


def case_a():
    a = GOLDEN["A_profit_values"]["inputs"]
    return [np.asarray(a[k], np.float32) for k in ARGS], np.asarray(a["pos"], np.float32)


@pytest.mark.parametrize("eod", [False, True])
def test_golden_a(eod):
    g = GOLDEN["A_profit_values"]
    args, q = case_a()
    pf = profit_values(*args, q, close_at_eod=eod, fee=g["fee"])
    assert pf.dtype == jnp.float32
    assert_golden(pf, g[f"eod_{eod}"])
    assert_golden(total_profit(*args, q, close_at_eod=eod), g[f"eod_{eod}_sum"])
    # exact to float32, as the spec promises for PF run in float32
    np.testing.assert_array_equal(np.asarray(pf), np.asarray(g[f"eod_{eod}"], np.float32))


def test_golden_a_crypto_fee():
    args, q = case_a()
    pf = profit_values(*args, q, fee=profit.CRYPTO_TRADING_FEE)
    assert_golden(pf, GOLDEN["A_profit_values"]["eod_False_fee0.0015"])


def test_golden_b_legacy_helpers():
    g = GOLDEN["B_legacy"]
    y, q = np.asarray(g["y_test"], np.float32), np.asarray(g["y_pred"], np.float32)
    assert_golden(legacy_trading_profit(y, q), g["calculate_trading_profit_torch(fee=None)"])
    assert_golden(legacy_trading_profit_buy_only(y, q), g["calculate_trading_profit_torch_buy_only(fee=None)"])
    assert_golden(legacy_trading_profits_list(y, q), g["get_trading_profits_list"])
    args, pos = case_a()
    assert_golden(legacy_buysell_profit_values(*args, pos), g["buysell_profit_values(legacy, same A inputs)"])


@pytest.mark.parametrize("eod", [False, True])
def test_golden_c_baseline_sums(eod):
    g = GOLDEN["C_optimizers"]
    args = [np.asarray(g["inputs"][k], np.float32) for k in ARGS]
    got = total_profit(*args, np.asarray(g["positions"], np.float32), close_at_eod=eod, fee=g["fee"])
    assert_golden(got, g[f"entry_exit_eod_{eod}"]["baseline_sum"])  # 0.0435 / 0.0240


def naive_pf(c, h, hp, l, lp, q, eod, fee):
    """Per-day Python transcription of the docs/backtest.md#profit-function formulas (float32 arithmetic)."""
    f = np.float32
    out = []
    for ci, hi, hpi, li, lpi, qi in zip(c, h, hp, l, lp, q):
        hpc, lpc = min(max(hpi, f(0)), f(10)), min(max(lpi, f(-1)), f(0))
        qp, qm = min(max(qi, f(0)), f(10)), min(max(qi, f(-10)), f(0))
        buy, sell = lpc > li, hpc < hi
        if eod:
            v = qp * (ci - lpc) * buy + qm * (ci - hpc) * sell - f(fee) * abs(qi) * (buy or sell)
        else:
            long = qp * buy * ((hpc - lpc) if hpc <= hi else (ci - lpc))
            short = qm * sell * ((lpc - hpc) if lpc >= li else (ci - hpc))
            v = long + short - f(fee) * abs(qi) * (buy and sell)
        out.append(f(v))
    return np.asarray(out, np.float32)


# values on a 0.001 grid make ties (strict vs non-strict comparisons) frequent
levels = hnp.arrays(np.float32, 8, elements=st.integers(-40, 40).map(lambda i: np.float32(i / 1000)))
sizes = hnp.arrays(np.float32, 8, elements=st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]))


@settings(max_examples=60, deadline=None)
@given(
    c=levels,
    h=levels,
    hp=levels,
    l=levels,
    lp=levels,
    q=sizes,
    eod=st.booleans(),
    fee=st.sampled_from([0.0, 0.0005, 0.0015]),
)
def test_matches_naive_reference(c, h, hp, l, lp, q, eod, fee):
    got = profit_values(c, h, hp, l, lp, q, close_at_eod=eod, fee=fee)
    np.testing.assert_allclose(np.asarray(got), naive_pf(c, h, hp, l, lp, q, eod, fee), atol=1e-7)


def test_jit_equals_eager_and_vmap_equals_loop():
    rng = np.random.default_rng(0)
    batch = [rng.normal(0, 0.02, (5, 6)).astype(np.float32) for _ in ARGS]
    q = rng.choice([-1.0, 0.0, 1.0], (5, 6)).astype(np.float32)
    for eod in (False, True):
        fn = jax.jit(lambda *a: profit_values(*a, close_at_eod=eod, fee=0.0005))
        batched = jax.vmap(fn)(*batch, q)
        for k in range(5):
            eager = profit_values(*(b[k] for b in batch), q[k], close_at_eod=eod, fee=0.0005)
            np.testing.assert_allclose(np.asarray(fn(*(b[k] for b in batch), q[k])), eager, atol=1e-7)
            np.testing.assert_allclose(np.asarray(batched[k]), eager, atol=1e-7)


def test_docstring_examples():
    assert doctest.testmod(profit).failed == 0
