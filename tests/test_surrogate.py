"""Smooth PF surrogate: exact limit as T -> 0 (golden case A, boundaries), gradients, jit/vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim.sim.profit import profit_values
from jaxsim.sim.surrogate import soft_clip, soft_profit_values, soft_step, soft_total_profit

# Golden case A (docs/backtest.md#golden-case-a): hand-made days incl. an exact touch (day 7) and clamped
# levels (day 8).
A = dict(
    close=[0.010, 0.010, 0.010, -0.010, -0.010, 0.005, 0.010, 0.000, 0.004, 0.012],
    high=[0.030, 0.015, 0.030, 0.030, 0.030, 0.020, 0.030, 0.020, 0.010, 0.025],
    high_pred=[0.020, 0.020, 0.020, 0.020, 0.020, 0.010, 0.020, 0.020, -0.005, 0.020],
    low=[-0.030, -0.030, -0.005, -0.030, -0.005, -0.020, -0.030, -0.010, -0.010, -0.030],
    low_pred=[-0.020, -0.020, -0.020, -0.020, -0.020, -0.010, -0.020, -0.010, 0.003, -0.020],
    positions=[1, 1, 1, -1, -1, 0, 2, 1, 1, 0.5],
)
A_INTRADAY = [0.0395, 0.0300, 0.0, 0.0395, 0.0300, 0.0, 0.0790, 0.0, -0.0005, 0.01975]
A_EOD = [0.0295, 0.0295, -0.0005, 0.0295, 0.0295, 0.0, 0.0590, 0.0, 0.0035, 0.01575]


def _args(d):
    return tuple(jnp.asarray(d[k], jnp.float32) for k in ("close", "high", "high_pred", "low", "low_pred", "positions"))


@pytest.mark.parametrize("eod, golden", [(False, A_INTRADAY), (True, A_EOD)])
def test_limit_is_exact_pf_on_golden_case_a(eod, golden):
    """The error to golden case A shrinks with T and vanishes, incl. the exact touch of day 7."""
    exact = profit_values(*_args(A), close_at_eod=eod)
    errors = []
    for t in (1e-3, 1e-5, 1e-8, 1e-12):
        soft = soft_profit_values(*_args(A), temperature=t, close_at_eod=eod)
        errors.append(float(jnp.max(jnp.abs(soft - exact))))
    assert errors == sorted(errors, reverse=True)
    assert errors[0] > 1e-3  # the relaxation is real at T = 1e-3 (the touch of day 7 half-fills)
    assert errors[-1] < 1e-7
    np.testing.assert_allclose(soft, golden, atol=1e-6)  # golden values are rounded decimals


def test_soft_step_boundary_side():
    """On the boundary the strict step tends to 0 and the non-strict one to 1."""
    zero = jnp.float32(0.0)
    for t in (1e-8, 1e-10, 1e-12):
        assert float(soft_step(zero, t, strict=True)) < 0.011
        assert float(soft_step(zero, t, strict=False)) > 0.989
    assert float(soft_step(zero, 1e-12, strict=True)) < 2e-6
    # at working temperatures the step is (almost) centred: the offset is at most 1e-6
    assert abs(float(soft_step(zero, 1e-3, strict=True)) - 0.5) < 1e-3
    assert float(soft_step(jnp.float32(1e-4), 1e-6, strict=True)) > 0.999


def test_soft_clip_bounds_error_and_gradient():
    x = jnp.linspace(-0.05, 0.05, 101)
    t = 1e-3
    y = soft_clip(x, 0.0, 10.0, t)
    assert float(jnp.max(jnp.abs(y - jnp.clip(x, 0.0, 10.0)))) <= t * np.log(2) + 1e-7
    g = jax.vmap(jax.grad(lambda v: soft_clip(v, 0.0, 10.0, t)))(x)
    assert bool(jnp.all(g >= 0)) and bool(jnp.all(g <= 1.0 + 1e-6))
    assert bool(jnp.all(g[x > -5 * t] > 1e-3))  # fades smoothly below the bound
    assert abs(float(g[50]) - 0.5) < 1e-3  # x = 0: the kink is halved


@pytest.mark.parametrize("eod", [False, True])
def test_random_inputs_converge_and_gradients_are_finite(eod):
    rng = np.random.default_rng(0)
    n = 4000
    c = rng.normal(0, 0.01, n)
    h = np.abs(rng.normal(0.01, 0.01, n))
    l = -np.abs(rng.normal(0.01, 0.01, n))
    hp = rng.normal(0.008, 0.01, n)
    lp = rng.normal(-0.008, 0.01, n)
    q = rng.choice([-1.0, 0.0, 1.0, 2.0], n)
    args = tuple(jnp.asarray(a, jnp.float32) for a in (c, h, hp, l, lp, q))
    exact = profit_values(*args, close_at_eod=eod)
    err = [
        float(jnp.max(jnp.abs(soft_profit_values(*args, temperature=t, close_at_eod=eod) - exact)))
        for t in (1e-4, 1e-6, 1e-9)
    ]
    assert err[0] > err[1] > err[2] and err[2] < 1e-6
    grad = jax.grad(
        lambda s: soft_total_profit(c, h, hp + s[0], l, lp + s[1], q, temperature=1e-4, close_at_eod=eod), argnums=0
    )
    g = jax.jit(grad)(jnp.zeros(2))
    assert bool(jnp.all(jnp.isfinite(g))) and float(jnp.max(jnp.abs(g))) > 0


def test_vmap_matches_loop():
    args = _args(A)
    batch = tuple(jnp.stack([a, a * 0.5]) for a in args)
    f = jax.jit(jax.vmap(lambda *a: soft_profit_values(*a, temperature=1e-4)))
    out = f(*batch)
    for k in range(2):
        ref = soft_profit_values(*(b[k] for b in batch), temperature=1e-4)
        np.testing.assert_allclose(out[k], ref, rtol=1e-6, atol=1e-9)
