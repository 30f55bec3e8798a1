"""Batch invariance: a stock's results do not depend on the other stocks in its batch, on the chunk
size, on how many simulations run, or on the device count (to float tolerance); MaxDiff's and
always-on's choices and records do not depend on ``sim_chunk`` at all (bit for bit)."""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reliability_helpers import CAP, N_SIMS, SAMPLED, assert_records_close, numeric_columns, synthetic_prices, xla_flags

import jaxsim
from jaxsim import forecasters
from jaxsim.config import DEFAULT_SIM_CHUNK
from jaxsim.data.prices import load_prices
from jaxsim.engine.program import map_sims
from jaxsim.engine.walk_forward import limit_arguments, walk_forward_records
from jaxsim.models.toto import model as toto_model
from jaxsim.optimize import default_optimizer
from jaxsim.optimize.exact import pick
from jaxsim.optimize.objective import best_on_grid
from jaxsim.shell.api import backtest, backtest_many
from jaxsim.sim import maxdiff, ties
from jaxsim.sim.simulation import PRICE_WINDOW, SimulationInputs, StrategyConfig

ROOT = Path(__file__).resolve().parents[1]
# where the jaxsim under test lives (the checkout, or site-packages when CI tests the installed wheel)
PACKAGE_ROOT = str(Path(jaxsim.__file__).resolve().parents[1])
KEY = 5


def _stocks(seeds, prefix="B"):
    return [
        synthetic_prices(
            f"{prefix}{s}",
            100 + 37 * s,
            seed=s,
            vol=0.01 + 0.01 * (s % 3),
            events=("split_down",) if s % 4 == 1 else (),
        )
        for s in seeds
    ]


def _many(stocks, **kw):
    kw = {"n_sims": N_SIMS, "protocol": "legacy", "max_context": CAP, "key": jax.random.key(KEY), **kw}
    kw = {"chunk_size": 4, "progress": False, **kw}
    return backtest_many(stocks, SAMPLED, **kw)


def test_other_stocks_in_the_batch_do_not_matter():
    a = _many(_stocks([0, 1, 2, 3]))
    b = _many(_stocks([0, 5, 6, 7]))  # B0's key follows its symbol, different companions
    assert_records_close(a["B0"], b["B0"])
    alone = backtest(
        _stocks([0])[0], SAMPLED, n_sims=N_SIMS, max_context=CAP, key=jax.random.key(KEY), protocol="legacy"
    )
    assert_records_close(a["B0"], alone)


def test_explicit_keys_follow_the_stock_not_its_position():
    stocks = _stocks([1, 2, 3, 4, 5])  # 5 stocks, chunk 4: the second chunk is padded
    keys = [jax.random.key(100 + i) for i in range(5)]
    fwd = _many(stocks, keys=keys)
    rev = _many(stocks[::-1], keys=keys[::-1])
    for s in fwd:
        assert_records_close(fwd[s], rev[s])
    alone = _many([stocks[4]], keys=[keys[4]])["B5"]  # an explicit key is the stock's key as given
    assert_records_close(fwd["B5"], alone)


def test_number_of_simulations_does_not_change_the_common_ones():
    """Simulation k (k = 0 most recent) is the same whether N = 5 or N = 8 run. Per-stock aggregates
    over all N simulations (the walk-forward means and the forecasted P&L of docs/backtest.md#summary-table)
    legitimately change with N and are left out."""
    prices = _stocks([2])[0]
    key = jax.random.key(KEY)
    five = backtest(prices, SAMPLED, n_sims=N_SIMS, max_context=CAP, key=key, protocol="legacy")
    eight = backtest(prices, SAMPLED, n_sims=8, max_context=CAP, key=key, protocol="legacy")
    assert_records_close(five, eight, rows=N_SIMS, skip_suffix=("_forecasted_pnl",))
    assert eight.n_sims == 8


_DEVICE_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, jax
    from jaxsim.shell.api import backtest_many
    from reliability_helpers import CAP, N_SIMS, SAMPLED, numeric_columns, synthetic_prices
    assert len(jax.devices()) == int(sys.argv[2]), jax.devices()
    stocks = [synthetic_prices(f"B{s}", 100 + 37 * s, seed=s, vol=0.01 + 0.01 * (s % 3),
                               events=("split_down",) if s % 4 == 1 else ()) for s in range(5)]
    out = backtest_many(stocks, SAMPLED, n_sims=N_SIMS, protocol="legacy", max_context=CAP, key=jax.random.key(5),
                        chunk_size=4, progress=False)
    arrays = {f"{s}:{k}": v for s, r in out.items() for k, v in numeric_columns(r.records).items()}
    np.savez(sys.argv[1], **arrays)
""")


def test_device_count_does_not_matter(tmp_path):
    """The same 5-stock run in fresh processes with 1 and 4 host devices, and in this process (4)."""
    procs = {}
    for count in (1, 4):
        env = dict(
            os.environ,
            XLA_FLAGS=xla_flags(count),
            PYTHONPATH=os.pathsep.join([PACKAGE_ROOT, str(ROOT / "tests")]),
            JAX_PLATFORMS="cpu",
        )
        procs[count] = subprocess.Popen(
            [sys.executable, "-c", _DEVICE_SCRIPT, str(tmp_path / f"d{count}.npz"), str(count)],
            env=env,
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
    for _count, p in procs.items():
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    one, four = (dict(np.load(tmp_path / f"d{c}.npz")) for c in (1, 4))
    assert one.keys() == four.keys() and len(one) > 5 * 50
    bad = [k for k in one if not np.allclose(one[k], four[k], rtol=1e-5, atol=1e-6, equal_nan=True)]
    assert not bad, bad[:10]
    if len(jax.devices()) != 4:
        pytest.skip("this process does not have the 4 CPU devices conftest asks for")
    here = _many(_stocks(range(5)))
    same = {f"{s}:{k}": v for s, r in here.items() for k, v in numeric_columns(r.records).items()}
    # same device count, same program: bit-identical across processes
    assert [k for k in four if not np.array_equal(four[k], same[k], equal_nan=True)] == []


# --- MaxDiff's choices and sim_chunk (docs/backtest.md#tie-rule) ---------------------------------


def test_tie_rule_tolerance_and_order():
    v = np.float32(0.0327)
    up = lambda x, k=1: np.float32(x + k * np.spacing(x))  # noqa: E731  k float32 steps above x
    assert bool(ties.tied(v, up(v))) and bool(ties.tied(v, up(v, 16))) and not bool(ties.tied(v, up(v, 64)))
    # near 0 the tolerance does not shrink with the value: the floor 2^-4 (16 eps * 2^-4 = 2^-23)
    assert bool(ties.tied(np.float32(1e-9), np.float32(-1e-9))) and not bool(ties.tied(0.0, 2.5e-7))
    assert bool(ties.tied(-np.inf, -np.inf)) and not bool(ties.tied(-np.inf, -1e30))
    assert not bool(ties.tied(np.nan, np.nan)) and not bool(ties.beats(np.nan, 0.0))
    assert not bool(ties.beats(up(v), v)) and bool(ties.beats(up(v, 64), v))  # eod True needs more than a tie
    # pick: a value one step higher at a larger shift is a tie, lost to (0, 0); a real gain wins
    points = jnp.asarray([[-0.03, -0.03], [0.03, 0.01], [0.0, 0.0], [0.01, -0.03]], jnp.float32)
    m, _ = pick(points, jnp.asarray([up(v), v, v, up(v, 2)]))
    np.testing.assert_array_equal(np.asarray(m), [0.0, 0.0])
    m, _ = pick(points, jnp.asarray([up(v, 100), v, v, np.nan]))
    np.testing.assert_array_equal(np.asarray(m), np.float32([-0.03, -0.03]))
    # equal sizes: the earlier candidate (on a grid over ascending axes: the smaller mh, then ml)
    m, _ = pick(jnp.asarray([[-0.03, 0.01], [0.03, 0.01]], jnp.float32), jnp.asarray([v, up(v)]))
    np.testing.assert_array_equal(np.asarray(m), np.float32([-0.03, 0.01]))
    g = jnp.asarray([-0.03, 0.0, 0.03], jnp.float32)
    grid = jnp.full((3, 3), v).at[2, 1].set(up(v, 3)).at[0, 0].set(up(v, 8))
    m, value = best_on_grid(grid, g, g)
    np.testing.assert_array_equal(np.asarray(m), [0.0, 0.0])
    assert float(value) == float(v)
    # rank: the tied values by size first (the choice leads), then the rest by value
    values = jnp.asarray([v - 0.01, up(v), v, v - 0.02, up(v, 2)])
    size = jnp.asarray([0.0, 0.06, 0.02, 0.0, 0.02])
    np.testing.assert_array_equal(np.asarray(ties.rank(values, size, 5)), [2, 4, 1, 0, 3])
    assert int(ties.choose(values, size)) == 2
    values = jnp.asarray([-0.5, -0.1, -jnp.inf, 0.3, up(np.float32(0.3)), 0.3, np.nan], jnp.float32)
    size = jnp.asarray([0.0, 0.0, 0.0, 0.05, 0.01, 0.05, 0.0])
    np.testing.assert_array_equal(np.asarray(ties.rank(values, size, 7))[:6], [4, 3, 5, 1, 0, 2])
    many = jnp.full(50, v)  # more ties than places: the smallest sizes are kept
    sizes = jnp.asarray(np.random.default_rng(0).permutation(50) / 1000.0, jnp.float32)
    np.testing.assert_array_equal(np.asarray(sizes[ties.rank(many, sizes, 3)]), np.float32([0.0, 0.001, 0.002]))


def _flat_inputs(n, seed=0):
    """``n`` hand-built simulations whose MaxDiff and always-on objectives are flat over all of
    ``[-0.03, 0.03]^2`` and non-zero: mathematically every multiplier pair ties, and only the
    float32 rounding of each sum, which follows the batch shape, could tell them apart.

    Each day's predicted levels are either far above the market (``fH = 0.2``, ``fL = 0.1``: a
    valid long whose entry level ``lp + ml`` clamps at 0 for every ``ml`` and whose target
    ``hp + mh >= 0.17`` is never reached: it fills at 0 and exits at the close, whatever
    ``(mh, ml)``) or inverted (``fH = -0.2``, ``fL = 0.2``: invalid for MaxDiff; for always-on both
    levels clamp at 0). The documented choice is ``(0, 0)`` for both strategies and both policies.
    """
    rng = np.random.default_rng(seed)
    t = n + PRICE_WINDOW
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, t)))
    open_ = close * np.exp(rng.normal(0, 0.005, t))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, t)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, t)))
    table = np.stack([open_, high, low, close, np.full(t, 1e6)], -1).astype(np.float32)
    windows = np.stack([table[k : k + PRICE_WINDOW] for k in range(n)][::-1])  # row 0 the most recent
    far = rng.random((n, 7)) < 0.5
    pred_high = np.where(far, 0.2, -0.2).astype(np.float32)
    pred_low = np.where(far, 0.1, 0.2).astype(np.float32)
    pred_close = rng.normal(0, 0.01, (n, 7)).astype(np.float32)
    band = np.full((n, 7), 0.01, np.float32)
    return SimulationInputs(pred_close, pred_high, pred_low, band, windows, np.ones((n, PRICE_WINDOW), bool))


@functools.partial(jax.jit, static_argnames="chunk")
def _maxdiff_stage(inputs, *, chunk):
    """The program's simulation stage for the two MaxDiff strategies (in-sample fits, ``sim_chunk``
    simulations vmapped per step, :func:`jaxsim.engine.program.map_sims`) and their walk-forward
    re-scoring with the same chunking."""
    fee, config, optimizer = jnp.float32(0.0005), StrategyConfig(), default_optimizer()

    def one(sim):
        args, enough = limit_arguments(sim)
        kw = dict(fee=fee, optimizer=optimizer, enough_history=enough)
        return {**maxdiff.maxdiff_strategy(*args, **kw), **maxdiff.maxdiff_always_on_strategy(*args, **kw)}

    legacy = map_sims(one, inputs, chunk)
    return legacy, walk_forward_records(inputs, legacy, fee=fee, config=config, chunk=chunk)


def test_exact_ties_choose_the_documented_multipliers_whatever_the_chunk():
    assert DEFAULT_SIM_CHUNK >= 80
    inputs = _flat_inputs(80)  # N = 80: one vmap, or (sim_chunk 64) a chunk of 64 and a remainder of 16
    (one_vmap, wf_one), (chunked, wf_chunked) = (
        jax.device_get(_maxdiff_stage(inputs, chunk=c)) for c in (DEFAULT_SIM_CHUNK, 64)
    )
    for a, b in ((one_vmap, chunked), (wf_one, wf_chunked)):
        bad = [k for k in a if k.startswith("maxdiff") and not np.array_equal(a[k], b[k], equal_nan=True)]
        assert not bad, bad
    for name in (
        "maxdiffprofit_profit_high_multiplier",
        "maxdiffprofit_profit_low_multiplier",
        "maxdiffalwayson_high_multiplier",
        "maxdiffalwayson_low_multiplier",
    ):
        np.testing.assert_array_equal(one_vmap[name], 0.0, err_msg=name)
    assert np.any(one_vmap["maxdiffalwayson_optimized_return"] != 0)  # flat, not zero: rounding was at stake
    assert np.any(one_vmap["maxdiff_optimized_return"] != 0)


# a small random Toto (2 layers, width 32): the forecasts are noise, which is all this test needs
_TINY_TOTO = dataclasses.replace(toto_model.TOTO_SMALL, num_layers=2, embed_dim=32, num_heads=2, mlp_hidden_dim=64)
REAL_STOCKS = ("AEM", "APP", "BILL", "DUOL", "WPM")  # with the code before the tie rule all differed (2-8 choices)


def test_walk_forward_records_do_not_depend_on_sim_chunk(daily_dir):
    """N="all" walk-forward on held-out real data with a small random Toto: ``sim_chunk=256`` (one
    vmap) and ``64`` (a lax.map of chunks) give identical records, MaxDiff and always-on included
    (their choices follow the tie rule, their adjusted metrics cannot be fused differently)."""
    params = jax.jit(toto_model.init_toto, static_argnums=0)(_TINY_TOTO, jax.random.key(1))
    toto = forecasters.toto(config=_TINY_TOTO, params=params, num_samples=16)
    settings = dict(n_sims="all", min_context=32, protocol="walk_forward", key=jax.random.key(3))
    for symbol in REAL_STOCKS:  # same shape: two compiled programs for all five stocks
        prices = load_prices(daily_dir / f"{symbol}.csv", symbol=symbol).tail(120)  # N = 80
        one_vmap = backtest(prices, toto, sim_chunk=256, **settings)
        chunked = backtest(prices, toto, sim_chunk=64, **settings)
        assert one_vmap.n_sims == 80 and chunked.metadata["sim_chunk"] == 64
        a, b = numeric_columns(one_vmap.records), numeric_columns(chunked.records)
        assert a.keys() == b.keys() and any(k.startswith("maxdiffalwayson_") for k in a)
        bad = {k: int(np.sum(a[k] != b[k])) for k in a if not np.array_equal(a[k], b[k], equal_nan=True)}
        assert not bad, (symbol, bad)
