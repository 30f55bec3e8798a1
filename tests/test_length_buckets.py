"""Length buckets: stocks of different history lengths share one compiled program (docs/compilation.md#length-buckets).

A stock shorter than its bucket runs with NaN rows in front; Toto masks the whole padded patches out of
time-wise attention and starts each row's positions at its first real patch, and ``n_sims="all"``
masks the padded simulations. Each stock's forecasts and records equal its exact-length run to float
rounding: for lengths that differ by less than a patch, by several patches and across a bucket edge,
with and without a context cap, under both protocols.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from reliability_helpers import assert_records_close, synthetic_prices

import jaxsim
from jaxsim import forecasters
from jaxsim.config import BacktestConfig
from jaxsim.engine.program import trace_count
from jaxsim.models.toto import model as toto_model
from jaxsim.models.toto.forecast import left_pad, next_step_mixture
from jaxsim.optimize import grid_optimizer
from jaxsim.shell.api import backtest, backtest_many
from jaxsim.shell.plan import make_plan, program_shape

BUCKET = 64  # rows: small programs (the default is 512)
PATCH = 8  # TOTO_SMALL
OPT = grid_optimizer(5)  # the tests of the shell's grouping do not need the default optimizer's compile


@pytest.fixture(scope="module")
def toto():
    config = toto_model.TOTO_SMALL
    return forecasters.toto(config=config, params=toto_model.init_toto(config, jax.random.key(3)), num_samples=32)


def test_program_shape_rounds_rows_up_and_pads_all_sims():
    fixed = BacktestConfig(n_sims=5, length_bucket=BUCKET, protocol="legacy")
    assert program_shape(100, 5, fixed, None) == (128, 5)
    assert program_shape(128, 5, fixed, None) == (128, 5)
    every = BacktestConfig(n_sims="all", length_bucket=BUCKET, min_context=20, protocol="legacy")
    assert program_shape(100, 72, every, None) == (128, 100)  # one masked simulation per padding row
    assert program_shape(100, 5, BacktestConfig(n_sims=5, length_bucket=None, protocol="legacy"), None) == (100, 5)
    user = forecasters.from_function(lambda c, v, k: jnp.zeros(()))  # may look at the padded length
    assert program_shape(100, 5, fixed, user) == (100, 5)
    assert program_shape(70, 5, every, None) == (70, 5)  # 5 -> 11 values would cross SERIES_FEW_VALUES


def test_masked_padded_patches_leave_the_mixture_unchanged(toto):
    x = np.random.default_rng(0).normal(0.0, 0.02, 45).astype(np.float32)
    c1, v1 = left_pad(x, PATCH)  # the official padding: one partial patch
    with jax.default_matmul_precision("highest"):
        want = next_step_mixture(toto.params, toto.config, jnp.asarray(c1)[None], jnp.asarray(v1)[None])
        for extra in (1, 3, 10):
            c2 = np.concatenate([np.zeros(extra * PATCH, np.float32), c1])
            v2 = np.concatenate([np.zeros(extra * PATCH, bool), v1])
            got = next_step_mixture(toto.params, toto.config, jnp.asarray(c2)[None], jnp.asarray(v2)[None])
            for name, a, b in zip(want._fields, want, got):
                np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=2e-5, atol=1e-6, err_msg=name)


def test_unmasked_padding_would_change_it(toto):
    """The control: without the patch mask (upstream's computation) extra padded patches move the output."""
    x = np.random.default_rng(0).normal(0.0, 0.02, 45).astype(np.float32)
    c1, v1 = left_pad(x, PATCH)
    y1, _, _ = toto_model.scale_series(jnp.asarray(c1)[None, None], jnp.asarray(v1)[None, None], toto.config)
    c2 = np.concatenate([np.zeros(3 * PATCH, np.float32), c1])
    v2 = np.concatenate([np.zeros(3 * PATCH, bool), v1])
    y2, _, _ = toto_model.scale_series(jnp.asarray(c2)[None, None], jnp.asarray(v2)[None, None], toto.config)
    model = toto_model.TotoModel(toto.config)

    def last_token(y, patch_valid):
        n = y.shape[-1] // PATCH
        h, _ = model.apply(
            {"params": toto.params},
            y.reshape(1, 1, n, PATCH),
            jnp.zeros((1, 1, n), jnp.int32),
            patch_valid=patch_valid,
            method=toto_model.TotoModel.encode,
        )
        return np.asarray(h[0, 0, -1])

    want = last_token(y1, None)
    masked = last_token(y2, jnp.asarray(v2.reshape(1, 1, -1, PATCH).any(-1)))
    unmasked = last_token(y2, None)
    assert np.max(np.abs(masked - want)) < 1e-5
    assert np.max(np.abs(unmasked - want)) > 1e-3


def _forecasts(forecaster, prices, bucket, max_context):
    config = BacktestConfig(n_sims=5, length_bucket=bucket, max_context=max_context, protocol="legacy")
    plan = make_plan(prices, forecaster, config, symbol="S")
    setup = plan.setup(0)
    stock = jax.tree.map(lambda a: jnp.asarray(a[0]), plan.arrays([0]))
    # one compiled call (op by op, the summary's thousands of small ops cost more than compiling them)
    summarize = jax.jit(lambda f, s, k: f.forecast_summary(s, setup.grid, setup.targets, k, setup.aggregate))
    return setup.grid, summarize(plan.forecaster, stock, plan.keys[0])


@pytest.mark.parametrize("max_context", [None, 40])
def test_bucketed_forecasts_equal_exact_length_forecasts(toto, max_context):
    prices = synthetic_prices("S", 100, seed=1)  # 100 rows -> a 128-row program
    exact_grid, exact = _forecasts(toto, prices, None, max_context)
    grid, got = _forecasts(toto, prices, BUCKET, max_context)
    assert grid.n_rows % BUCKET == 0 and exact_grid.n_rows < grid.n_rows
    for name in ("point", "band", "crps"):
        want = np.asarray(getattr(exact, name))
        np.testing.assert_allclose(np.asarray(getattr(got, name)), want, rtol=1e-5, atol=1e-6)


# lengths in one bucket (65..128) differing by less than a patch (100, 103) and by several patches (100, 121),
# and one across the bucket edge (130 -> 192 rows); the other settings take one padded stock and the
# one across the edge (each exact length is a program of its own: the test's cost)
LENGTHS = (100, 103, 121, 130)
FEW = (103, 130)


@pytest.mark.parametrize(
    "settings, lengths, model",
    [
        (dict(n_sims=5), LENGTHS, "toto"),
        (dict(n_sims=5, max_context=40), (103,), "toto"),
        # the protocol's and the padded simulations' masks are the engine's, whatever the model
        (dict(n_sims=5, protocol="walk_forward"), FEW, "naive"),
        (dict(n_sims="all", min_context=60, protocol="walk_forward"), FEW, "naive"),
    ],
    ids=["n5", "n5-cap40", "n5-walk_forward", "all-walk_forward"],
)
def test_bucketed_records_equal_exact_length_records(toto, settings, lengths, model):
    forecaster = toto if model == "toto" else forecasters.naive()
    stocks = {f"L{n}": synthetic_prices(f"L{n}", n, seed=n) for n in lengths}
    key = jax.random.key(7)
    bucketed = backtest_many(stocks, forecaster, key=key, length_bucket=BUCKET, progress=False, **settings)
    for name, prices in stocks.items():
        exact = backtest(prices, forecaster, key=key, length_bucket=None, **settings)
        got = bucketed[name]
        rows = len(prices) - exact.metadata["rows_trimmed"]
        assert exact.metadata["program_rows"] == rows
        assert got.metadata["program_rows"] == -(-rows // BUCKET) * BUCKET > rows
        n = 5 if settings["n_sims"] == 5 else len(prices) - exact.metadata["rows_trimmed"] - 8 - 60
        assert len(got.records) == len(exact.records) == n
        assert list(got.records.index) == list(exact.records.index)
        # the forecasts agree to ~1e-7; the optimizer's outputs amplify that rounding (as across batch shapes)
        assert_records_close(got, exact, rtol=1e-4, atol=1e-4, skip=(), skip_suffix=("_sharpe",))
        # Sharpe ratios of six days divide by a small std: the same rounding moves them by ~1e-3
        assert_records_close(got, exact, rtol=1e-3, atol=1e-2, skip=(), skip_suffix=())
        for name_ in ("forecasted_pnl_source",):
            assert got.metadata[name_] == exact.metadata[name_]


def test_one_bucket_traces_once():
    """A universe of several lengths inside one bucket is one program, traced once; single-stock
    backtests of other lengths in that bucket share one program too (a batch of one stock). The
    trace count is the shell's grouping, whatever the model: the naive one keeps the compiles short."""
    model = forecasters.naive()
    stocks = {f"T{n}": synthetic_prices(f"T{n}", n, seed=n) for n in (70, 90, 111, 127)}
    config = BacktestConfig(n_sims=4, length_bucket=BUCKET, seed=11, protocol="legacy")
    plan = make_plan(stocks, model, config)
    assert list(plan.groups) == [(128, 4, False)]
    before = trace_count()
    out = backtest_many(stocks, model, config, progress=False)
    assert trace_count() - before == 1
    assert sorted(out) == sorted(stocks)
    backtest(synthetic_prices("T100", 100, seed=100), model, config)
    backtest(synthetic_prices("T75", 75, seed=75), model, config)
    assert trace_count() - before == 2


def test_a_universe_one_stock_per_call_runs_the_single_stock_program():
    """On one device with chunk_size=1 a universe's program is the single-stock backtest's of that
    bucket: a backtest of another length in the bucket traces nothing new, and a universe member's
    backtest repeats the universe's result bit for bit."""
    model = forecasters.naive()
    stocks = {f"U{n}": synthetic_prices(f"U{n}", n, seed=n) for n in (72, 99, 126)}
    config = BacktestConfig(n_sims=4, length_bucket=BUCKET, seed=12, protocol="legacy", optimizer=OPT)
    before = trace_count()
    out = backtest_many(stocks, model, config, chunk_size=1, devices=jax.devices()[:1], progress=False)
    assert trace_count() - before == 1
    single = backtest(synthetic_prices("U80", 80, seed=80), model, config)
    again = backtest(stocks["U99"], model, config)
    assert trace_count() - before == 1
    assert single.metadata["program_rows"] == out["U72"].metadata["program_rows"] == 128
    pd.testing.assert_frame_equal(again.records, out["U99"].records)


def test_sample_program_of_aapl_is_a_bucket():
    plan = make_plan(
        jaxsim.sample("AAPL"), forecasters.naive(), BacktestConfig(n_sims=50, protocol="legacy"), symbol="AAPL"
    )
    ((rows, n, _),) = plan.groups
    assert rows % 512 == 0 and rows - 512 < len(plan.stocks[0].prices) <= rows and n == 50
