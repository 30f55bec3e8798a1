"""Multiplier optimisers: golden case C, exact >= grid/DIRECT on real data, jit/vmap, tuning API."""

import functools
import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxsim.optimize as O
from jaxsim.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

# Golden case C (docs/backtest.md#golden-case-c): DIRECT (scipy 1.17.1) and 601x601-grid results of the original.
C = dict(
    close=[0.004, -0.012, 0.009, 0.015, -0.006, 0.002],
    high=[0.014, 0.003, 0.021, 0.024, 0.006, 0.011],
    high_pred=[0.010, 0.006, 0.012, 0.016, 0.004, 0.009],
    low=[-0.009, -0.019, -0.004, -0.002, -0.016, -0.008],
    low_pred=[-0.006, -0.010, -0.007, -0.003, -0.011, -0.005],
)
C_POS = [1.0, -1.0, 1.0, 1.0, -1.0, 1.0]
C_DIRECT = {False: 0.0734213591, True: 0.0563307926}
C_GRID601 = {False: 0.0746, True: 0.0575}
C_SUP = {False: 0.0755, True: 0.0580}
ALWAYS_ON = np.array([[1.0] * 6, [-1.0] * 6], np.float32)
ALWAYS_ON_DIRECT = 0.1391728371  # stock, eod False, maxfun 240

_OPTAX = O.optax_optimizer()
_EXACT = O.exact_optimizer()
BATCH = 48  # every batched call uses (48, 6) prices and (48, 2, 6) positions: one compile per kind and eod


def _args(q):
    return tuple(jnp.asarray(C[k], jnp.float32) for k in ("close", "high", "high_pred", "low", "low_pred")) + (
        jnp.asarray(q, jnp.float32),
    )


@functools.cache
def _compiled(kind, eod):
    opt = {"optax": _OPTAX, "exact": _EXACT, "grid": O.grid_optimizer(41)}[kind]
    return jax.jit(jax.vmap(lambda *a: opt(*a, close_at_eod=eod)))


def _solve(kind, eod, c, h, hp, l, lp, q):
    """Batched solve; entry/exit rows (P = 1) are padded with a flat row (q = 0 adds exactly 0)."""
    q = np.asarray(q, np.float32)
    if q.shape[1] == 1:
        q = np.concatenate([q, np.zeros_like(q)], axis=1)
    return np.asarray(_compiled(kind, eod)(c, h, hp, l, lp, q))


def _tiled(q):
    """Golden case C repeated to the test batch size."""
    return tuple(np.broadcast_to(np.asarray(a), (BATCH,) + np.shape(a)) for a in _args(q))


def _quality_module():
    spec = importlib.util.spec_from_file_location("optimizer_quality", ROOT / "benchmarks" / "optimizer_quality.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("eod", [False, True])
def test_case_c_exact_reaches_supremum(eod):
    args = _args(C_POS)
    problem = O.make_problem(*args)
    m = jax.jit(lambda *a: _EXACT(*a, close_at_eod=eod))(*args)
    j = float(O.exact_objective(m, problem, close_at_eod=eod))
    assert abs(j - C_SUP[eod]) < 2e-7  # the supremum, approached to float32 resolution
    assert j > C_GRID601[eod] + 4e-4 and j > C_DIRECT[eod] + 1e-3
    assert bool(jnp.all(jnp.abs(m) <= 0.03))
    # it is a limit: nudging the returned point by 1e-4 on both axes never does better
    offsets = jnp.array([[a, b] for a in (-1e-4, 0, 1e-4) for b in (-1e-4, 0, 1e-4)], jnp.float32)
    around = jax.vmap(lambda d: O.exact_objective(m + d, problem, close_at_eod=eod))(offsets)
    assert float(jnp.max(around)) <= j + 1e-7
    # the grid baseline is never better than the sup, beyond float32 rounding of the touch
    g = jax.jit(lambda *a: O.grid_optimizer(121)(*a, close_at_eod=eod))(*args)
    assert float(O.exact_objective(g, problem, close_at_eod=eod)) <= j + 1e-7


@pytest.mark.parametrize("eod", [False, True])
def test_case_c_optax_matches_exact_both_objectives(eod):
    for q in (np.asarray([C_POS], np.float32), ALWAYS_ON):
        batch = _tiled(q)
        ours = _solve("optax", eod, *batch)[0]
        exact = _solve("exact", eod, *batch)[0]
        problem = O.make_problem(*_args(q))
        j_ours = float(O.exact_objective(ours, problem, close_at_eod=eod))
        j_exact = float(O.exact_objective(exact, problem, close_at_eod=eod))
        assert j_exact - 1e-5 <= j_ours <= j_exact + 1e-6
        if q.shape[0] == 1:
            assert j_ours > C_DIRECT[eod] + 1e-3
        elif not eod:
            assert j_ours > ALWAYS_ON_DIRECT


def test_direct_baseline_reproduces_golden_case_c():
    pytest.importorskip("scipy")
    quality = _quality_module()
    c, h, hp, l, lp = (np.asarray(C[k], np.float32) for k in ("close", "high", "high_pred", "low", "low_pred"))
    for eod in (False, True):
        x = quality.direct_solve(c, h, hp, l, lp, np.asarray([C_POS], np.float32), close_at_eod=eod, maxfun=500)
        j = quality.objective(
            {
                "c": c[None],
                "h": h[None],
                "hp": hp[None],
                "l": l[None],
                "lp": lp[None],
                "q": np.asarray([[C_POS]], np.float32),
            },
            "q",
            x[None],
            eod,
        )[0]
        assert abs(float(j) - C_DIRECT[eod]) < 1e-8


def test_real_data_exact_dominates_grid_and_direct_and_optax_is_close(daily_dir):
    pytest.importorskip("scipy")
    quality = _quality_module()
    n = BATCH
    cases = quality.sample_cases(n, seed=7, daily_dir=daily_dir)
    near = beats_direct = beats_grid = total = 0
    for key, maxfun in (("q_ee", 500), ("q_ao", 240)):
        args = tuple(cases[k] for k in ("c", "h", "hp", "l", "lp")) + (cases[key],)
        for eod in (False, True):
            j = {
                name: quality.objective(cases, key, _solve(kind, eod, *args), eod)
                for name, kind in (("ours", "optax"), ("exact", "exact"), ("grid", "grid"))
            }
            base = quality.objective(cases, key, np.zeros((n, 2)), eod)
            m_d = np.array(
                [quality.direct_solve(*(a[i] for a in args), close_at_eod=eod, maxfun=maxfun) for i in range(n)]
            )
            j_direct = quality.objective(cases, key, m_d, eod)
            tol = 2e-7  # float32 rounding of a touching level
            assert np.all(j["exact"] >= j["grid"] - tol)
            assert np.all(j["exact"] >= j_direct - tol)
            assert np.all(j["exact"] >= base - tol)
            assert np.all(j["ours"] <= j["exact"] + tol)
            near += int(np.sum(j["exact"] - j["ours"] <= 1e-5))
            beats_direct += int(np.sum(j["ours"] >= j_direct - tol))
            beats_grid += int(np.sum(j["ours"] >= j["grid"] - tol))
            total += n
    assert near / total >= 0.95 and beats_direct / total >= 0.97 and beats_grid / total >= 0.97


def test_vmap_matches_single_calls_and_bounds():
    q = np.asarray([C_POS], np.float32)
    base = _args(q)
    scales = jnp.asarray([1.0, 0.5, 2.0], jnp.float32)
    batch = tuple(a[None] * (scales[:, None, None] if a.ndim == 2 else scales[:, None]) for a in base[:5]) + (
        jnp.broadcast_to(base[5], (3,) + base[5].shape),
    )
    out = jax.jit(jax.vmap(lambda *a: _EXACT(*a, close_at_eod=False)))(*batch)
    assert out.shape == (3, 2) and bool(jnp.all(jnp.abs(out) <= 0.03))
    single = jax.jit(lambda *a: _EXACT(*a, close_at_eod=False))
    for k in range(3):
        np.testing.assert_array_equal(out[k], single(*(b[k] for b in batch)))


@pytest.mark.parametrize("eod", [False, True])
def test_surrogate_objective_gradients_are_finite_everywhere(eod):
    problem = O.make_problem(*_args(C_POS))
    grad = jax.jit(jax.vmap(jax.grad(lambda m: O.surrogate_objective(m, problem, temperature=1e-4, close_at_eod=eod))))
    pts = jnp.stack(jnp.meshgrid(jnp.linspace(-0.03, 0.03, 13), jnp.linspace(-0.03, 0.03, 13)), -1).reshape(-1, 2)
    g = grad(pts)
    assert bool(jnp.all(jnp.isfinite(g))) and float(jnp.max(jnp.abs(g))) > 0.1
    # the surrogate approaches the exact objective at T -> 0 away from breakpoints
    m = jnp.asarray([0.0013, -0.0021], jnp.float32)
    exact = float(O.exact_objective(m, problem, close_at_eod=eod))
    soft = float(O.surrogate_objective(m, problem, temperature=1e-7, close_at_eod=eod))
    assert abs(soft - exact) < 1e-6


def test_tune_multipliers_shared_and_independent():
    q = np.asarray([C_POS], np.float32)
    base = _args(q)
    scales = jnp.asarray([1.0, 0.8, 1.2, 0.9], jnp.float32)
    problems = O.MultiplierProblem(
        *(a[None] * scales[:, None] for a in base[:5]), jnp.broadcast_to(O.make_problem(*base).positions, (4, 1, 6))
    )
    small = dict(grid=12, starts=4, polish=4)
    shared = O.tune_multipliers(problems, tx=optax.adam(1e-3), steps=40, **small)
    assert shared.shape == (2,) and bool(jnp.all(jnp.abs(shared) <= 0.03))
    j = float(O.exact_objective(shared, problems))
    # beats the baseline, a 61x61 shared grid, and every per-problem optimum applied to all problems
    g = jnp.linspace(-0.03, 0.03, 61)
    grid = jax.vmap(lambda a: jax.vmap(lambda b: O.exact_objective(jnp.stack([a, b]), problems))(g))(g)
    assert j >= float(jnp.max(grid)) - 1e-7 and j > float(O.exact_objective(jnp.zeros(2), problems)) + 0.01
    each = O.tune_multipliers(problems, steps=40, shared=False, **small)
    assert each.shape == (4, 2)
    per = [float(O.exact_objective(each[k], jax.tree.map(lambda a: a[k], problems))) for k in range(4)]
    ex = [
        float(O.exact_objective(_EXACT(*(a[k] for a in problems)), jax.tree.map(lambda a: a[k], problems)))
        for k in range(4)
    ]
    np.testing.assert_allclose(per, ex, atol=1e-5)
    assert j <= sum(per) + 1e-6


def test_bad_configuration_raises():
    with pytest.raises(ConfigError):
        O.optax_optimizer(grid=2, starts=8)
    with pytest.raises(ConfigError):
        O.make_problem(np.zeros(6), np.zeros(6), np.zeros(6), np.zeros(6), np.zeros(6), np.zeros(5))


def test_flat_objective_reports_no_shift():
    """No fill at any offset (all positions flat): every point ties and the optimizers return (0, 0)."""
    rng = np.random.default_rng(3)
    c, h, hp, l, lp = rng.normal(0, 0.01, (5, 6)).astype(np.float32)
    flat = np.zeros((1, 6), np.float32)
    for opt in (_OPTAX, _EXACT):
        m = opt(c, h, hp, l, lp, flat, close_at_eod=False, fee=0.0005)
        np.testing.assert_array_equal(np.asarray(m), [0.0, 0.0])


def test_optimizers_are_hashable_values():
    assert O.exact_optimizer() == O.exact_optimizer() and hash(O.exact_optimizer()) == hash(O.exact_optimizer())
    assert O.optax_optimizer() == O.optax_optimizer() and hash(O.optax_optimizer()) == hash(O.optax_optimizer())
    assert O.grid_optimizer(41) == O.grid_optimizer(41) != O.grid_optimizer(42)
    assert O.optax_optimizer(grid=8, starts=8) != O.optax_optimizer()
    assert O.exact_optimizer(bounds=0.02) != O.exact_optimizer()
    tx = optax.adam(1e-3)
    assert O.optax_optimizer(tx=tx) == O.optax_optimizer(tx=tx) != O.optax_optimizer()
    from jaxsim.optimize import default_optimizer

    assert default_optimizer() == O.optax_optimizer()


@pytest.mark.parametrize("make", [O.exact_optimizer, O.optax_optimizer], ids=["exact", "optax"])
def test_two_optimizer_instances_share_one_compiled_backtest(make):
    import jaxsim
    from jaxsim.engine.program import trace_count

    prices = jaxsim.sample("AAPL").tail(200)
    before = trace_count()
    first = jaxsim.backtest(prices, jaxsim.forecasters.naive(), n_sims=5, optimizer=make(), protocol="legacy")
    after_first = trace_count()
    second = jaxsim.backtest(prices, jaxsim.forecasters.naive(), n_sims=5, optimizer=make(), protocol="legacy")
    assert after_first - before <= 1 and trace_count() == after_first
    np.testing.assert_array_equal(
        first.records["maxdiff_return"].to_numpy(), second.records["maxdiff_return"].to_numpy()
    )


def test_tune_multipliers_compiles_once_per_shape():
    from jaxsim.optimize.tuning import trace_count

    base = _args(np.asarray([C_POS], np.float32))
    problems = O.MultiplierProblem(
        *(jnp.broadcast_to(a, (3,) + a.shape) for a in base[:5]),
        jnp.broadcast_to(O.make_problem(*base).positions, (3, 1, 6)),
    )
    small = dict(grid=8, starts=4, polish=4, steps=10)
    before = trace_count()
    a = O.tune_multipliers(problems, **small)
    mid = trace_count()
    b = O.tune_multipliers(jax.tree.map(lambda x: x * 1.1, problems), fee=0.001, **small)
    assert mid - before == 1 and trace_count() == mid
    assert a.shape == b.shape == (2,)


# Knife edges: dyadic levels make hp + mh == h exact in float32 at mh = 2**-7 (day 0, a long) and
# lp + ml == l at ml = 2**-8 - 2**-6 (day 1, a short). There the take-profit passes (<=) while the
# strict fill of the other side fails, so PF charges no fee: a value no neighbouring multiplier attains.
KNIFE = dict(
    close=[0.0, 0.0, 0.001],
    high=[2**-6, 0.02, 0.012],
    high_pred=[2**-7, 0.001, 0.006],
    low=[-0.03, -(2**-6), -0.011],
    low_pred=[-(2**-7), -(2**-8), -0.004],
)
KNIFE_POS = [[1.0, -1.0, 1.0]]


def _naive_supremum(problem, eod):
    """The best value over bare breakpoints and their nudges (the old candidate set): knife edges win."""
    mh, ml = O.problem_candidates(problem)
    bare_h = jnp.clip(jnp.concatenate([problem.high - problem.high_pred, -problem.high_pred]), -0.03, 0.03)
    bare_l = jnp.clip(jnp.concatenate([problem.low - problem.low_pred, -problem.low_pred]), -0.03, 0.03)
    mh, ml = jnp.concatenate([mh, bare_h]), jnp.concatenate([ml, bare_l])
    pts = jnp.stack(jnp.meshgrid(mh, ml, indexing="ij"), -1).reshape(-1, 2)
    return float(jnp.max(jax.vmap(lambda m: O.exact_objective(m, problem, close_at_eod=eod))(pts)))


def _knife_args(q=KNIFE_POS):
    return tuple(jnp.asarray(KNIFE[k], jnp.float32) for k in ("close", "high", "high_pred", "low", "low_pred")) + (
        jnp.asarray(q, jnp.float32),
    )


@pytest.mark.parametrize("eod", [False, True])
@pytest.mark.parametrize("q", [KNIFE_POS, [[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]], ids=["entry_exit", "always_on"])
def test_knife_edges_are_never_returned(eod, q):
    quality = _quality_module()
    args = _knife_args(q)
    problem = O.make_problem(*args)
    robust = quality.robust_supremum(*(np.asarray(a) for a in args), close_at_eod=eod)
    if not eod and len(q) == 1:  # bare breakpoints would pay one fee less than any nearby point
        assert _naive_supremum(problem, eod) >= robust + 5e-4 - 1e-7
    kh, kl = O.knife_masks(problem, jnp.asarray([2**-7]), jnp.asarray([2**-8 - 2**-6]))
    assert bool(kh[0]) and bool(kl[0])
    small = dict(grid=12, starts=4, polish=4, steps=20)
    pooled = O.MultiplierProblem(*(a[None] for a in problem))
    for name, m in (
        ("exact", jax.jit(lambda *a: _EXACT(*a, close_at_eod=eod))(*args)),
        ("optax", jax.jit(lambda *a: _OPTAX(*a, close_at_eod=eod))(*args)),
        ("grid", O.grid_optimizer(121)(*args, close_at_eod=eod)),
        ("tune", O.tune_multipliers(pooled, close_at_eod=eod, **small)),
    ):
        j = float(O.exact_objective(m, problem, close_at_eod=eod))
        kh, kl = O.knife_masks(problem, m[:1], m[1:])
        assert not bool(kh[0] | kl[0]), name
        assert j <= robust + 2e-7, (name, j, robust)  # never above the robust supremum
        if name != "grid":
            assert j >= robust - 1e-6, (name, j, robust)  # and reaches it from inside the cell
        # nearby points in the returned point's cell attain the value (it is not a knife edge)
        near = jax.vmap(lambda d: O.exact_objective(m + d, problem, close_at_eod=eod))(
            jnp.asarray([[s * 2e-9, t * 2e-9] for s in (-1, 1) for t in (-1, 1)], jnp.float32)
        )
        assert float(jnp.max(near)) >= j - 1e-7, name


def test_robust_supremum_brute_force_matches_exact_on_case_c():
    quality = _quality_module()
    for eod in (False, True):
        args = _args(C_POS)
        robust = quality.robust_supremum(*(np.asarray(a) for a in args), close_at_eod=eod)
        assert abs(robust - C_SUP[eod]) < 5e-5  # README: 0.0755 / 0.0580
        m = jax.jit(lambda *a: _EXACT(*a, close_at_eod=eod))(*args)
        assert abs(float(O.exact_objective(m, O.make_problem(*args), close_at_eod=eod)) - robust) < 2e-7
