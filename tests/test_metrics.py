"""E_sum and E_cmp of docs/backtest.md#strategy-notation, #e-cmp: golden case D (both E_cmp cases incl. the 0.523
factor), edge rules."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim.sim.metrics import DEFAULT_SPREAD, evaluate_daily_returns, evaluate_signals, signal_cost

pytestmark = pytest.mark.strict_promotion

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "golden_backtest_cases.json").read_text())
D = GOLDEN["D_strategies"]


def assert_golden(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    err = np.abs(got - want)
    assert np.all((err <= 1e-6) | (err <= 1e-5 * np.abs(want))), (got, want)


@pytest.mark.parametrize("case,fee", [("repo_case_fee0.0025", 0.0025), ("mixed_long_short_flat_fee0.0005", 0.0005)])
def test_golden_d_e_cmp(case, fee):
    g = D[case]
    assert g["SPREAD"] == DEFAULT_SPREAD
    m = evaluate_signals(np.asarray(g["signals"]), np.asarray(g["returns"]), fee=fee, spread=g["SPREAD"])
    assert_golden(m.daily, g["daily"])
    assert_golden(m.total, g["total_return"])
    assert_golden(m.sharpe, g["sharpe"])
    assert_golden(m.avg_daily, g["avg_daily"])
    assert_golden(m.annual, g["annual"])


def test_mixed_fee_factor_only_with_long_short_and_flat():
    spread = 1.0
    mixed = np.asarray(signal_cost(np.array([1.0, 0.0, -1.0]), fee=0.001, spread=spread))
    np.testing.assert_allclose(mixed, [0.000523, 0.000523, 0.000523], rtol=1e-6)
    plain = np.asarray(signal_cost(np.array([1.0, -1.0, -1.0]), fee=0.001, spread=spread))
    np.testing.assert_allclose(plain, [0.001, 0.002, 0.0], rtol=1e-6)
    half_spread = np.asarray(signal_cost(np.array([1.0, 1.0]), fee=0.0, spread=1.05))
    np.testing.assert_allclose(half_spread, [0.025, 0.0], rtol=1e-5)


def test_golden_d_e_sum():
    g = D["_evaluate_daily_returns"]
    m = evaluate_daily_returns(np.asarray(g["input"]), 252)
    assert_golden(m.total, g["total"])
    assert_golden(m.sharpe, g["sharpe"])
    assert_golden(m.avg_daily, g["avg"])
    assert_golden(m.annual, g["annual"])


def test_sharpe_is_zero_when_std_is_zero_or_non_finite():
    assert float(evaluate_daily_returns(np.zeros(6), 252).sharpe) == 0.0
    assert float(evaluate_daily_returns(np.array([0.0, np.nan, 0.01]), 252).sharpe) == 0.0
    assert float(evaluate_signals(np.ones(1), np.array([0.01]), fee=0.0, spread=1.0).sharpe) == 0.0
    assert float(evaluate_signals(np.zeros(6), np.ones(6) * 0.01, fee=0.0, spread=1.0).sharpe) == 0.0


def test_avg_skips_non_finite_entries():
    m = evaluate_daily_returns(np.array([0.01, np.inf, 0.03]), 365)
    assert float(m.avg_daily) == pytest.approx(0.02)
    assert float(m.annual) == pytest.approx(0.02 * 365)


def test_last_min_length_items_rule():
    s, r = np.array([1.0, -1.0, 1.0]), np.array([0.5, 0.01, 0.02, 0.03])
    m = evaluate_signals(s, r, fee=0.0, spread=1.0)
    ref = evaluate_signals(s, r[1:], fee=0.0, spread=1.0)
    np.testing.assert_array_equal(np.asarray(m.daily), np.asarray(ref.daily))


def test_ddof_and_compounding():
    x = np.array([0.01, -0.02, 0.03, 0.0, 0.01, 0.02])
    m = evaluate_signals(np.ones(6), x, fee=0.0, spread=1.0)
    assert float(m.total) == pytest.approx(np.prod(1 + x) - 1, rel=1e-5)
    assert float(m.sharpe) == pytest.approx(x.mean() / x.std(ddof=1) * np.sqrt(252), rel=1e-5)
    e = evaluate_daily_returns(x, 365)
    assert float(e.total) == pytest.approx(x.sum(), abs=1e-7)
    assert float(e.sharpe) == pytest.approx(x.mean() / x.std() * np.sqrt(365), rel=1e-5)


def test_jit_and_vmap_equal_per_simulation():
    rng = np.random.default_rng(5)
    s = rng.choice([-1.0, 0.0, 1.0], (7, 6)).astype(np.float32)
    r = rng.normal(0, 0.02, (7, 6)).astype(np.float32)
    fee = np.full(7, 0.0005, np.float32)
    fn = jax.jit(jax.vmap(lambda a, b, f: evaluate_signals(a, b, fee=f, spread=1.01)))
    out = fn(s, r, fee)
    for k in range(7):
        ref = evaluate_signals(s[k], r[k], fee=0.0005, spread=1.01)
        for got, want in zip(out, ref):
            np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want), rtol=1e-5, atol=1e-7)
    e = jax.jit(jax.vmap(lambda x: evaluate_daily_returns(x, 252)))(r)
    assert all(v.dtype == jnp.float32 for v in e)
