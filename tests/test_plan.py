"""The one pipeline (jaxsim.shell.plan): every entry point names, trims, keys and groups stocks alike.

simulation_data (what tune and check_no_lookahead fit and check on) must see exactly the forecasts of
the backtest it claims to match, for one stock and for several, with a forecaster whose draws depend
on its key; every research entry point accepts ``n_sims="all"``.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from reliability_helpers import CAP, SAMPLED, synthetic_prices

import jaxsim
from jaxsim.config import BacktestConfig
from jaxsim.errors import ConfigError
from jaxsim.optimize import grid_optimizer
from jaxsim.shell.plan import make_plan, stock_key

TARGETS = ("close", "high", "low")
OPT = grid_optimizer(5)  # a small MaxDiff grid: these tests are about forecasts, not the search


def _predictions(result) -> dict[str, np.ndarray]:
    """``(N, 6)`` point forecasts of each target's evaluation days, as the backtest's records hold them."""
    return {x: np.stack(result.records[f"{x}_predictions"].to_numpy()).astype(np.float32) for x in TARGETS}


def _same(view: np.ndarray, want: np.ndarray) -> bool:
    """A simulation's 7 forecasts (view) against the records' 6: days 0-5 equal, and the 7th (origin
    N+5-k) is the 6th of the next newer simulation k-1."""
    view = np.asarray(view)
    return np.array_equal(view[:, :6], want) and np.array_equal(view[1:, 6], want[:-1, 5])


def test_simulation_data_sees_the_backtests_forecasts_bit_for_bit():
    """Default key rule and seed on both sides (no key=, no stock_key=): one stock, then three."""
    stocks = {s: synthetic_prices(s, n=90 + 7 * i, seed=i) for i, s in enumerate(("AAA", "BBB", "CCC"))}
    settings = dict(n_sims=8, max_context=CAP, optimizer=OPT)
    alone = jaxsim.backtest(stocks["AAA"], SAMPLED, **settings)
    one = jaxsim.simulation_data(stocks["AAA"], SAMPLED, **settings)
    assert one.symbols == ("AAA",)
    for x, want in _predictions(alone).items():
        assert _same(one.views.point[x][0], want), x
    many = jaxsim.simulation_data(stocks, SAMPLED, **settings)
    results = jaxsim.backtest_many(stocks, SAMPLED, progress=False, **settings)
    assert many.symbols == tuple(stocks)
    for b, symbol in enumerate(many.symbols):
        for x, want in _predictions(results[symbol]).items():
            assert _same(many.views.point[x][b], want), (symbol, x)
    # the draws do depend on the key: another seed gives other forecasts
    other = jaxsim.simulation_data(stocks["AAA"], SAMPLED, seed=1, **settings)
    assert not np.array_equal(np.asarray(other.views.point["close"]), np.asarray(one.views.point["close"]))


def test_every_entry_point_keys_a_stock_by_its_symbol():
    p = synthetic_prices("KEYD", n=80)
    config = BacktestConfig(n_sims=4, max_context=CAP, seed=3, protocol="legacy")
    plan = make_plan({"KEYD": p}, SAMPLED, config)
    want = jax.random.key_data(stock_key(jax.random.key(3), "KEYD"))
    assert np.array_equal(jax.random.key_data(plan.keys[0]), want)
    assert np.array_equal(jax.random.key_data(make_plan(p, SAMPLED, config).keys[0]), want)
    assert np.array_equal(jax.random.key_data(make_plan([p], SAMPLED, config).keys[0]), want)
    index = make_plan([p], SAMPLED, config.replace(stock_key="index"))
    assert np.array_equal(
        jax.random.key_data(index.keys[0]), jax.random.key_data(jax.random.fold_in(jax.random.key(3), 0))
    )
    with pytest.raises(ConfigError, match="distinct symbols"):
        make_plan([p, p], SAMPLED, config)


def test_plan_groups_stocks_by_shape_and_computes_n_once():
    short, long_ = synthetic_prices("S", n=100), synthetic_prices("L", n=130)
    plan = make_plan(
        [short, long_, synthetic_prices("S2", n=100)],
        SAMPLED,
        BacktestConfig(n_sims="all", min_context=16, protocol="legacy"),
    )
    assert [p.n_sims for p in plan.stocks] == [100 - 8 - 16, 130 - 8 - 16, 100 - 8 - 16]
    assert list(plan.groups.values()) == [(0, 2), (1,)]
    assert plan.chunks(None, 1) == [[0, 2], [1]]
    assert plan.chunks(1, 1) == [[0], [2], [1]]
    assert plan.chunks(1, 2) == [[0, 2], [1, 1]]  # rounded up to the device count, padded by repetition
    assert plan.setup(1).grid.n_sims == 130 - 8 - 16


def test_simulation_data_tune_and_lookahead_take_full_history():
    """n_sims="all" everywhere: each stock's own N; a shorter stock's padding is marked invalid."""
    stocks = {"SHORT": synthetic_prices("SHORT", n=70, seed=1), "LONG": synthetic_prices("LONG", n=82, seed=2)}
    settings = dict(n_sims="all", min_context=16, max_context=CAP, optimizer=OPT)
    data = jaxsim.simulation_data(stocks, SAMPLED, **settings)
    n_short, n_long = 70 - 8 - 16, 82 - 8 - 16
    assert data.n_sims == n_long and data.valid.sum(1).tolist() == [n_short, n_long]
    assert not data.valid[0, n_short:].any() and np.isnat(data.dates[0, n_short:]).all()
    for symbol, b in (("SHORT", 0), ("LONG", 1)):
        result = jaxsim.backtest(stocks[symbol], SAMPLED, **settings)
        assert len(result.records) == data.valid[b].sum()
        assert _same(np.asarray(data.views.point["close"][b])[data.valid[b]], _predictions(result)["close"]), symbol
        assert np.array_equal(data.dates[b][data.valid[b]], result.records["date"].to_numpy().astype("datetime64[D]"))

    def tilt(v, p):
        return jax.numpy.tanh(p["a"] * v.point["close"][1:])

    strategy = jaxsim.UserStrategy("tilt", "signals", tilt, {"a": 1.0})
    tuned = jaxsim.tune(strategy, data, steps=3)
    for symbol, b in (("SHORT", 0), ("LONG", 1)):  # only the stock's own simulations are reported
        assert set(tuned.records[symbol]["sim"]) <= set(np.flatnonzero(data.valid[b]))
        assert tuned.records[symbol]["date"].notna().all()
    report = jaxsim.check_no_lookahead(strategy, stocks["SHORT"], forecaster=SAMPLED, cuts=[60], **settings)
    assert report.ok and report.n_checked > 0
