"""Batch invariance: a stock's results do not depend on the other stocks in its batch, on the chunk
size, on how many simulations run, or on the device count (to float tolerance)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
from reliability_helpers import CAP, N_SIMS, SAMPLED, assert_records_close, numeric_columns, synthetic_prices, xla_flags

import jaxsim
from jaxsim.shell.api import backtest, backtest_many

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
    kw = {"n_sims": N_SIMS, "max_context": CAP, "key": jax.random.key(KEY), "chunk_size": 4, "progress": False, **kw}
    return backtest_many(stocks, SAMPLED, **kw)


def test_other_stocks_in_the_batch_do_not_matter():
    a = _many(_stocks([0, 1, 2, 3]))
    b = _many(_stocks([0, 5, 6, 7]))  # B0's key follows its symbol, different companions
    assert_records_close(a["B0"], b["B0"])
    alone = backtest(_stocks([0])[0], SAMPLED, n_sims=N_SIMS, max_context=CAP, key=jax.random.key(KEY))
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
    five = backtest(prices, SAMPLED, n_sims=N_SIMS, max_context=CAP, key=key)
    eight = backtest(prices, SAMPLED, n_sims=8, max_context=CAP, key=key)
    assert_records_close(five, eight, rows=N_SIMS, skip_suffix=("_forecasted_pnl",))
    assert eight.n_sims == 8


_DEVICE_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, jax
    from jaxsim.shell.api import backtest_many
    from reliability_helpers import CAP, N_SIMS, SAMPLED, numeric_columns, synthetic_prices
    assert len(jax.devices()) == int(sys.argv[2]), jax.devices()
    stocks = [synthetic_prices(f"B{s}", 100 + 37 * s, seed=s, vol=0.01 + 0.01 * (s % 3),
                               events=("split_down",) if s % 4 == 1 else ()) for s in range(5)]
    out = backtest_many(stocks, SAMPLED, n_sims=N_SIMS, max_context=CAP, key=jax.random.key(5),
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
