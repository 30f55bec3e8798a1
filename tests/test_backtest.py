"""The one-call backtest on real data: unique contexts, records == the math applied by hand, no
retrace, walk-forward without look-ahead, multi-stock (sharded over 4 fake CPU devices) == single."""

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from jaxsim import forecasters
from jaxsim.data.prices import Prices, load_prices
from jaxsim.engine.program import trace_count
from jaxsim.engine.walk_forward import FIT_LAG
from jaxsim.errors import InsufficientHistoryError
from jaxsim.forecast import TARGET_IDS, Forecast, Forecaster, register_forecaster
from jaxsim.forecast.aggregate import aggregate, band
from jaxsim.optimize import grid_optimizer
from jaxsim.shell.api import backtest, backtest_many
from jaxsim.shell.plan import stock_key
from jaxsim.sim.simulation import PRICE_WINDOW, SimulationInputs, StrategyConfig, evaluate_simulation

N = 8
S = 32
OPT = grid_optimizer(11)  # a small grid keeps the tests fast; one object so programs are reused


def _draws(context, valid, key):
    """User forecaster: S draws around the masked mean of the last 20 valid returns."""
    recent = valid & (jnp.cumsum(valid[::-1])[::-1] <= 20)
    mean = jnp.sum(jnp.where(recent, context, 0.0)) / jnp.maximum(recent.sum(), 1)
    return mean + 0.01 * jax.random.normal(key, (S,))


CUSTOM = forecasters.from_function(_draws, num_samples=S)


@pytest.fixture(scope="module")
def aem(daily_dir) -> Prices:
    return load_prices(daily_dir / "AEM.csv", symbol="AEM")


@pytest.fixture(scope="module")
def alny(daily_dir) -> Prices:
    return load_prices(daily_dir / "ALNY.csv", symbol="ALNY")  # same length as AEM (1560 rows)


@pytest.fixture(scope="module")
def cart(daily_dir) -> Prices:
    return load_prices(daily_dir / "CART.csv", symbol="CART")  # shorter: another shape group


def _np_returns(x):
    x = np.asarray(x, np.float32)
    return np.concatenate([[1.0], x[1:] / x[:-1] - 1]).astype(np.float32)


_EVALUATE = jax.jit(functools.partial(evaluate_simulation, config=StrategyConfig(), optimizer=OPT))


def _by_hand(prices: Prices, k: int, point, band_of=None, *, fee=0.0005, spread=1.0008711461252937):
    """evaluate_simulation for simulation k, with every index computed here from the spec (1.2, 2.2)."""
    t_rows = len(prices)
    e = t_rows - 2 - k
    preds = {x: np.array([point(x, t) for t in range(e - 6, e + 1)], np.float32) for x in ("close", "high", "low")}
    bands = np.array([band_of(t) if band_of else 0.0 for t in range(e - 6, e + 1)], np.float32)
    table = np.stack([prices.open, prices.high, prices.low, prices.close, prices.volume], 1)
    rows = table[e - PRICE_WINDOW + 1 : e + 1]
    inputs = SimulationInputs(preds["close"], preds["high"], preds["low"], bands, rows, np.ones(PRICE_WINDOW, bool))
    return _EVALUATE(inputs, fee=fee, spread=spread)


def _assert_row_equals(records: pd.DataFrame, k: int, want: dict):
    assert len(want) > 80
    for name, value in want.items():
        got = np.asarray(records[name].iloc[k], np.float64)
        np.testing.assert_allclose(got, np.asarray(value, np.float64), rtol=2e-5, atol=2e-6, err_msg=name)


@pytest.fixture(scope="module")
def custom_result(aem):
    return backtest(aem, CUSTOM, n_sims=N, key=jax.random.key(5), optimizer=OPT, protocol="legacy")


def test_custom_forecaster_records_equal_the_math_by_hand(aem, custom_result):
    key = stock_key(jax.random.key(5), "AEM")  # the stock's key: the run key folded with crc32("AEM")
    t_rows = len(aem)
    series = {"close": aem.close, "high": aem.high, "low": aem.low}

    @functools.cache
    def draws(x, t):
        r = _np_returns(series[x])[1:t]  # context r_X[1..t-1], the whole history
        k = jax.random.fold_in(jax.random.fold_in(key, TARGET_IDS[x]), t_rows - 1 - t)
        return _draws(jnp.asarray(r), jnp.ones(len(r), bool), k)

    point = lambda x, t: float(aggregate(draws(x, t), "trimmed_mean_10"))  # noqa: E731
    records = custom_result.records
    assert len(records) == N
    for k in (0, 5):
        _assert_row_equals(records, k, _by_hand(aem, k, point, lambda t: float(band(draws("close", t)))))
        assert records["date"].iloc[k] == pd.Timestamp(aem.dates[t_rows - 2 - k])


def test_naive_forecaster_records_equal_the_math_by_hand_and_do_not_retrace(aem, alny):
    first = backtest(aem, forecasters.naive(), n_sims=N, optimizer=OPT, protocol="legacy")
    traces = trace_count()
    second = backtest(
        alny, forecasters.naive(), n_sims=N, optimizer=OPT, protocol="legacy"
    )  # same shapes, another stock
    assert trace_count() == traces, "backtest program retraced on a second stock of the same shape"
    assert second.metadata["compiled"] is False
    assert "predicted_open" not in first.records  # Open is forecast only when asked for
    # the public spelling jaxsim.backtest(...) is the same function
    import jaxsim

    pd.testing.assert_frame_equal(
        jaxsim.backtest(aem, forecasters.naive(), n_sims=N, optimizer=OPT, protocol="legacy").records, first.records
    )
    for prices, result in ((aem, first), (alny, second)):
        for k in (0, N - 1):
            _assert_row_equals(result.records, k, _by_hand(prices, k, lambda x, t: 0.0))


@register_forecaster
class Counting(Forecaster):
    """Records, at run time, the context lengths the model is asked about."""

    params: Any = ()
    pad_multiple = 64
    kind = "counting"
    seen = []

    def forecasts_return_series(self):
        return False  # count only the price contexts (not the forecasted-P&L series)

    def forecast_group(self, context, valid, keys):
        jax.debug.callback(
            lambda v: Counting.seen.append(np.asarray(v).sum(-1)), valid[None].repeat(context.shape[0], 0)
        )
        return Forecast(point=jnp.zeros(context.shape[:2]))


def test_model_sees_exactly_n_plus_6_unique_contexts_per_target(aem):
    targets = ("close", "high", "low", "open")
    Counting.seen.clear()
    result = backtest(aem, Counting(), n_sims=N, targets=targets, optimizer=OPT, max_context=None, protocol="legacy")
    lengths = np.concatenate([s.reshape(len(targets), -1) for s in Counting.seen], axis=1)
    assert lengths.shape == (len(targets), N + 6)  # not N x 7
    t_rows = len(aem)
    want = np.arange(t_rows - N - 7, t_rows - 1) - 1  # origin t has the t-1 returns r[1..t-1]
    for row in lengths:
        np.testing.assert_array_equal(np.sort(row), want)
    assert "predicted_open" in result.records


def test_walk_forward_uses_only_parameters_fitted_on_earlier_days(aem, custom_result):
    legacy = custom_result.records
    wf = backtest(aem, CUSTOM, n_sims=N, key=jax.random.key(5), optimizer=OPT, protocol="walk_forward")
    assert wf.summary.attrs["protocol"] == "walk_forward" and wf.protocol == "walk_forward"
    rec = wf.records
    n = len(rec)
    for k in range(n):
        src = k + FIT_LAG
        assert bool(rec["walk_forward_fitted"].iloc[k]) == (src < n)
        for mine, fitted in (
            ("maxdiffprofit_profit_high_multiplier", "maxdiffprofit_profit_high_multiplier"),
            ("maxdiffalwayson_low_multiplier", "maxdiffalwayson_low_multiplier"),
            ("maxdiff_close_at_eod", "maxdiff_close_at_eod"),
        ):
            want = legacy[fitted].iloc[src] if src < n else 0
            assert float(rec[mine].iloc[k]) == float(want)
        # the source window (days e-12..e-7 of simulation k) ends before simulation k's first day e-6
        if src < n:
            assert rec["date"].iloc[src] < rec["date"].iloc[k] - pd.Timedelta(days=5)
    # fitting nothing else: the other strategies are as in legacy
    for name in ("simple_strategy_return", "highlow_return", "entry_takeprofit_sharpe", "close_val_loss"):
        np.testing.assert_array_equal(rec[name].to_numpy(), legacy[name].to_numpy())
    # with fixed multipliers the optimised P&L is the PF at those multipliers: never better in-sample
    assert (rec["maxdiff_optimized_return"] <= legacy["maxdiff_optimized_return"] + 1e-6).all()


def test_capped_context_reads_only_the_rows_it_needs(aem):
    # cap 100: dropping the oldest 600 rows changes nothing (the program trims the same rows itself)
    cut = aem[600:]  # slicing keeps the float64 residuals the MaxDiff offsets are computed from
    full = backtest(aem, CUSTOM, n_sims=N, max_context=100, optimizer=OPT, protocol="legacy")
    short = backtest(cut, CUSTOM, n_sims=N, max_context=100, optimizer=OPT, protocol="legacy")
    assert full.metadata["rows_trimmed"] > 0
    pd.testing.assert_frame_equal(full.records, short.records)


def test_too_short_history_raises(aem):
    tiny = Prices("X", aem.dates[:16], aem.open[:16], aem.high[:16], aem.low[:16], aem.close[:16])
    with pytest.raises(InsufficientHistoryError):
        backtest(tiny, forecasters.naive(), n_sims=N, protocol="legacy")


def _assert_same_records(a: pd.DataFrame, b: pd.DataFrame):
    assert list(a.columns) == list(b.columns)
    for name in a.columns:
        if name == "date" or isinstance(a[name].iloc[0], str):
            assert (a[name] == b[name]).all(), name
            continue
        np.testing.assert_allclose(
            np.stack(a[name].map(np.asarray)).astype(np.float64),
            np.stack(b[name].map(np.asarray)).astype(np.float64),
            rtol=1e-5,
            atol=1e-6,
            err_msg=name,
        )


@pytest.mark.slow
def test_many_stocks_sharded_over_4_devices_equal_single_stock_calls(aem, alny, cart, custom_result):
    assert len(jax.devices()) == 4, "conftest sets 4 fake CPU devices"
    key = jax.random.key(5)
    stocks = [alny, aem, cart]
    many = backtest_many(stocks, CUSTOM, n_sims=N, key=key, optimizer=OPT, protocol="legacy")
    assert list(many) == ["ALNY", "AEM", "CART"]
    # stock s uses stock_key(key, s) in both calls. Single calls run unsharded on one device.
    single_aem = backtest(aem, CUSTOM, n_sims=N, key=key, optimizer=OPT, protocol="legacy")
    single_cart = backtest(cart, CUSTOM, n_sims=N, key=key, optimizer=OPT, protocol="legacy")
    _assert_same_records(many["AEM"].records, single_aem.records)
    _assert_same_records(many["CART"].records, single_cart.records)
    assert many["AEM"].metadata["devices"] == 4
    # backtest() dispatches a dict to backtest_many (same program: no new compile)
    traces = trace_count()
    again = backtest(
        {"ALNY": alny, "AEM": aem, "CART": cart}, CUSTOM, n_sims=N, key=key, optimizer=OPT, protocol="legacy"
    )
    assert trace_count() == traces
    _assert_same_records(again["CART"].records, many["CART"].records)


def test_cli_backtest_prints_the_summary_and_writes_results(daily_dir, tmp_path, capsys):
    from jaxsim.cli.app import main

    out = tmp_path / "res"
    code = main(
        [
            "backtest",
            "--csv",
            str(daily_dir / "AEM.csv"),
            "--model",
            "naive",
            "--sims",
            str(N),
            "--protocol",
            "walk_forward",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert f"Backtest summary for AEM ({N} simulations, protocol walk_forward)" in text
    for column in ("Return", "Sharpe", "AnnualRet", "FinalDay"):
        assert column in text
    assert "MaxDiff: baseline=" in text and "MaxDiffAlwaysOn: baseline=" in text and "-> adjusted=" in text
    assert sorted(p.name for p in out.iterdir()) == [
        "daily.csv",
        "equity.csv",
        "equity.png",
        "forecasts.csv",
        "metadata.json",
        "records.csv",
        "report.html",
        "skill.csv",
        "stats.csv",
        "summary.csv",
        "trades.csv",
        "uncertainty.json",
    ]
    assert len(pd.read_csv(out / "records.csv")) == N


def test_chunked_multi_stock_run_equals_single_calls(daily_dir, aem):
    # 5 stocks of one length, chunks of 4 (one per device): 2 chunks, the second padded by repetition
    names = ["AEM", "ALNY", "ARGX", "BIDU", "BILL"]
    stocks = [load_prices(daily_dir / f"{n}.csv", symbol=n) for n in names]
    assert len({len(p) for p in stocks}) == 1
    many = backtest_many(stocks, forecasters.naive(), n_sims=N, optimizer=OPT, chunk_size=4, protocol="legacy")
    assert list(many) == names
    assert {r.metadata["chunk_stocks"] for r in many.values()} == {4}
    for i in (0, 4):  # first stock of each chunk
        single = backtest(stocks[i], forecasters.naive(), n_sims=N, optimizer=OPT, protocol="legacy")
        _assert_same_records(many[names[i]].records, single.records)
