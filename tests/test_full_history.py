"""Full-history backtests: n_sims="all", the forecast path Toto takes, chunked simulation stage, memory."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsim
from jaxsim import forecasters
from jaxsim.cli.app import build_parser
from jaxsim.config import BacktestConfig, sims_for_rows
from jaxsim.data.prices import required_rows
from jaxsim.engine.program import compiled_program, map_sims
from jaxsim.errors import ConfigError, InsufficientHistoryError
from jaxsim.forecast.grid import ForecastGrid
from jaxsim.models.toto import model as toto_model
from jaxsim.optimize import grid_optimizer
from jaxsim.shell import plan

OPT = grid_optimizer(11)  # a small grid keeps the tests fast; one object so programs are reused
# fields that depend on N by construction: the forecasted P&L (a forecast of the N-long record columns)
N_DEPENDENT = ("_forecasted_pnl",)


def _assert_close(a, b, name, rtol, atol):
    if a.dtype.kind in "fc":
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=name)
    else:
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.fixture(scope="module")
def tiny_toto():
    config = toto_model.TOTO_SMALL  # patch 8
    params = jax.jit(toto_model.init_toto, static_argnums=0)(config, jax.random.key(1))
    return forecasters.toto(config=config, params=params, num_samples=64)


def test_all_sims_setting():
    config = BacktestConfig(n_sims="all", protocol="legacy")
    assert config.n_sims == "all" and config.min_context == 64
    assert config.sims_for(1000) == sims_for_rows(1000, 64) == 1000 - 8 - 64
    # the inverse of required_rows: N sims with min_context returns need exactly T rows
    assert required_rows(config.sims_for(1000), 64) == 1000
    assert BacktestConfig(n_sims="ALL", min_context=10, protocol="legacy").sims_for(100) == 82
    assert BacktestConfig(n_sims=50, protocol="legacy").sims_for(1000) == 50
    with pytest.raises(InsufficientHistoryError, match="min_context"):
        config.sims_for(72)
    for bad in ("most", 0, True, 2.5):
        with pytest.raises(ConfigError, match="n_sims"):
            BacktestConfig(n_sims=bad, protocol="legacy")
    with pytest.raises(ConfigError, match="min_context"):
        BacktestConfig(min_context=0, n_sims=50, protocol="legacy")
    with pytest.raises(ConfigError, match="sim_chunk"):
        BacktestConfig(sim_chunk=0, n_sims=50, protocol="legacy")
    assert build_parser().parse_args(["backtest", "--sims", "all"]).sims == "all"
    assert build_parser().parse_args(["backtest", "--sims", "7"]).sims == 7


def test_toto_says_which_path_it_takes(tiny_toto):
    assert tiny_toto.forecast_path(ForecastGrid(200, 50)) == "prefix"
    assert tiny_toto.forecast_path(ForecastGrid(200, 50, max_context=64)) == "per-context"
    assert forecasters.naive().forecast_path(ForecastGrid(200, 50)) == "per-context"


def test_map_sims_chunks_equal_one_vmap():
    xs = (jnp.arange(70.0), jnp.arange(140.0).reshape(70, 2))
    fn = lambda a: {"s": a[0] + a[1].sum(), "p": a[1] * a[0]}  # noqa: E731
    want = jax.vmap(fn)(xs)
    for chunk in (16, 70, 100):  # with a remainder, exact, one vmap
        got = map_sims(fn, xs, chunk)
        for k in want:
            np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]))


def test_all_sims_on_a_bundled_sample_starts_at_min_context():
    prices = jaxsim.sample("AAPL")
    result = jaxsim.backtest(prices, forecasters.naive(), n_sims="all", optimizer=OPT, protocol="legacy")
    t = len(prices.close)
    assert result.n_sims == t - 8 - 64
    # the oldest simulation ends at row e = T-N-1; its first forecast (origin e-6) has e-7 returns
    grid = ForecastGrid(t, result.n_sims)
    assert grid.ends[-1] - 6 - 1 == 64 == grid.context_lengths()[0]
    assert result.metadata["n_sims_setting"] == "all" and result.metadata["forecast_path"] == "per-context"
    recent = jaxsim.backtest(prices, forecasters.naive(), n_sims=50, optimizer=OPT, protocol="legacy")
    full = result.records.iloc[:50]
    for name in recent.records.columns:  # equal up to float rounding (the chunked stage compiles apart)
        if not name.endswith(N_DEPENDENT) and not name.startswith("walk_forward"):  # wf: summaries over N
            _assert_close(full[name].to_numpy(), recent.records[name].to_numpy(), name, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("protocol", ["legacy", "walk_forward"])
def test_recent_simulations_of_all_equal_n50(tiny_toto, protocol):
    prices = jaxsim.sample("MSFT").tail(200)  # N=all: 128 simulations
    key = jax.random.key(3)
    settings = dict(optimizer=OPT, protocol=protocol, key=key)
    small = jaxsim.backtest(prices, tiny_toto, n_sims=50, **settings)
    full = jaxsim.backtest(prices, tiny_toto, n_sims="all", sim_chunk=48, **settings)  # 2 chunks + remainder
    assert full.n_sims == 128 and full.metadata["forecast_path"] == small.metadata["forecast_path"] == "prefix"
    got, want = full.records.iloc[:50], small.records
    # walk_forward: the six oldest simulations of N=50 have no earlier window; in N=all they do
    fitted = want["walk_forward_fitted"].to_numpy() if protocol == "walk_forward" else np.ones(50, bool)
    for name in want.columns:
        if name.endswith(N_DEPENDENT) or name.startswith("walk_forward"):
            continue
        a, b = got[name].to_numpy(), want[name].to_numpy()
        if protocol == "walk_forward" and name.startswith("maxdiff"):
            a, b = a[fitted], b[fitted]
        if a.dtype.kind in "fc":
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)
    if protocol != "legacy":  # chunking is protocol-independent: compared once
        return
    unchunked = jaxsim.backtest(prices, tiny_toto, n_sims="all", **settings)  # 128 <= 256: one vmap
    for name in unchunked.records.columns:
        a, b = full.records[name].to_numpy(), unchunked.records[name].to_numpy()
        if a.dtype.kind in "fc":
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=name)
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)


def _temp_bytes(forecaster, prices, n_sims, chunk):
    config = BacktestConfig(n_sims=n_sims, optimizer=OPT, sim_chunk=chunk, protocol="legacy")
    prep = plan.prepare_stock(prices, config, symbol="MSFT")
    setup = plan.make_setup(prep, config)
    stocks = jax.tree.map(jnp.asarray, plan.stock_arrays(forecaster, [prep]))
    lowered = compiled_program.lower(
        forecaster, stocks, jnp.zeros(1), jnp.zeros(1), jax.random.key(0)[None], setup=setup
    )
    return lowered.compile().memory_analysis().temp_size_in_bytes


def test_long_n_does_not_scale_temporaries_with_n_times_s(tiny_toto):
    # One 872-row stock, N = 200 and 800 simulations, S = 128 and 1,024 draws per origin. Draws held
    # for all origins at once would make the S-growth of the temporaries grow with N (the (X, N+6, S)
    # array: +6.5 MB from N=200 to 800 at S=1,024 vs 128); reduced a chunk of origins at a time, the
    # S-growth is the same at both N (the cross term is ~0), and each term stays far below the array.
    prices = jaxsim.sample("MSFT").tail(800 + 8 + 64)
    temp = {
        (n, s): _temp_bytes(tiny_toto.with_draws_per_context(s), prices, n, 128)
        for n in (200, 800)
        for s in (128, 1024)
    }
    per_n_times_s = 3 * (1024 - 128) * 4  # bytes of (X, 1, S-growth) float32 draws per extra origin
    cross = (temp[800, 1024] - temp[800, 128]) - (temp[200, 1024] - temp[200, 128])
    assert abs(cross) < 0.05 * per_n_times_s * 600, (temp, cross)
    assert temp[800, 1024] - temp[800, 128] < 0.1 * per_n_times_s * 806, temp
