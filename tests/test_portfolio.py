"""The walk-forward portfolio (jaxsim.portfolio, docs/portfolio.md): accounting against vectorbt and a numpy
oracle, no look-ahead, the original rule's steps on hand-built arrays, calendar masks, plan = replay.

One compiled backtest program serves every test: four bundled samples cut to the same number of rows
(one shape), a from_function forecaster (its forecast depends on its input), 30 walk_forward
simulations; the look-ahead and plan tests rerun it on perturbed / shifted prices of the same shape.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import jaxsim
from jaxsim.errors import ConfigError
from jaxsim.portfolio import core, rules
from jaxsim.portfolio.api import run_replay
from jaxsim.portfolio.inputs import build_inputs, stocks_from_results, with_daily_forecasts
from jaxsim.sim.strategy_table import with_user

N_SIMS = 30
ROWS = 120  # rows per stock: every stock the same shape, one compiled program
WINDOW = 10  # < N_SIMS - 7: the windows of the full and the shifted run hold the same days
GOOG_SHORT = 5  # GOOG's data ends 5 rows before the others (a later first date too)
IBM_GAP = 8  # IBM misses the 8th-newest day (not trading)


def momentum(context, valid, key):
    """A forecaster whose forecast depends on its input: the mean of the last 5 returns."""
    return jnp.where(valid, context, 0.0)[-5:].mean()


FORECASTER = jaxsim.forecasters.from_function(momentum)


def frames(shift: int = 0) -> dict[str, pd.DataFrame]:
    """Price frames of ROWS rows, ``shift`` rows before the newest (shift 1: the data cut one day earlier)."""
    out = {}
    for symbol in ("AAPL", "MSFT", "GOOG", "IBM"):
        f = jaxsim.sample(symbol).to_frame()
        if symbol == "IBM":
            f = f.drop(f.index[-IBM_GAP])
        end = len(f) - shift - (GOOG_SHORT if symbol == "GOOG" else 0)
        out[symbol] = f.iloc[end - ROWS : end]
    return out


def run(prices):
    return jaxsim.backtest_many(prices, FORECASTER, n_sims=N_SIMS, protocol="walk_forward", progress=False)


@pytest.fixture(scope="module")
def results():
    return run(frames())


@pytest.fixture(scope="module")
def top2(results):
    return jaxsim.portfolio(results, "top_k", k=2, window=WINDOW, leverage=0.95)


@pytest.fixture(scope="module")
def original(results):
    return jaxsim.portfolio(results, "original", window=WINDOW)


def _chosen_pnl(result, results) -> pd.DataFrame:
    """Each stock's P&L of the strategy it holds each day, read from the backtests' daily frames."""
    out = pd.DataFrame(0.0, index=result.daily.index, columns=result.weights.columns)
    for symbol in out.columns:
        daily = results[symbol].daily.reindex(out.index)
        for date, strategy in result.choices[symbol].items():
            if strategy is not None and result.weights.at[date, symbol] > 0:
                value = daily.at[date, strategy]
                out.at[date, symbol] = 0.0 if pd.isna(value) else value
    return out


def _fees(results, symbols):
    return np.array([results[s].metadata["fee"] for s in symbols])


def _numpy_oracle(weights: np.ndarray, pnl: np.ndarray, fee: np.ndarray) -> np.ndarray:
    """Cash and dollar positions, day by day: at each close rebalance to the next day's weights of the
    equity then (fees paid from cash), then let the positions earn the day's P&L."""
    cash, pos = 1.0, np.zeros(weights.shape[1])
    equity_before, out = 1.0, []
    for t in range(weights.shape[0]):
        value = cash + pos.sum()
        target = weights[t] * value
        cash -= (target - pos).sum() + (fee * np.abs(target - pos)).sum()
        pos = target * (1.0 + pnl[t])
        new_value = cash + pos.sum()
        out.append(new_value / equity_before - 1.0)
        equity_before = new_value
    return np.array(out)


@pytest.mark.parametrize("which", ["top2", "original"])
def test_accounting_equals_numpy_oracle(which, request, results):
    result = request.getfixturevalue(which)
    pnl = _chosen_pnl(result, results).to_numpy()
    expected = _numpy_oracle(result.weights.to_numpy(), pnl, _fees(results, result.weights.columns))
    np.testing.assert_allclose(result.daily.to_numpy(), expected, rtol=0, atol=1e-12)
    assert result.weights.sum(axis=1).max() <= 1.0 + 1e-12
    np.testing.assert_allclose(result.daily, result.contributions.sum(axis=1) - result.costs, atol=1e-15)


@pytest.mark.parametrize("which", ["top2", "original"])
def test_accounting_equals_vectorbt(which, request, results):
    vbt = pytest.importorskip("vectorbt")
    result = request.getfixturevalue(which)
    pnl = _chosen_pnl(result, results)
    # one synthetic price per stock: the cumulative product of the P&L of the strategy it holds; bar 0
    # is the close before the first day, where the first day's weights are ordered
    close = pd.concat(
        [pd.DataFrame(1.0, index=[pnl.index[0] - pd.Timedelta(days=1)], columns=pnl.columns), (1.0 + pnl).cumprod()]
    )
    size = pd.DataFrame(np.nan, index=close.index, columns=pnl.columns)
    size.iloc[:-1] = result.weights.to_numpy()  # bar b orders day b's weights at the close before it
    pf = vbt.Portfolio.from_orders(
        close=close,
        size=size,
        size_type="targetpercent",
        group_by=True,
        cash_sharing=True,
        call_seq="auto",
        fees=_fees(results, pnl.columns)[None, :],
        init_cash=1.0,
        freq="1D",
    )
    # vectorbt's value at a bar is after that bar's orders and fees; jaxsim charges a rebalance to the day
    # its weights earn (docs/portfolio.md#costs): compare the values before each bar's orders
    orders = pf.orders.values
    fees = np.bincount(orders["idx"], weights=orders["fees"], minlength=len(close))
    before = pf.value().to_numpy() + fees
    assert fees.sum() > 0
    np.testing.assert_allclose(before[1:] / before[:-1] - 1.0, result.daily.to_numpy(), rtol=0, atol=1e-8)


def test_no_lookahead(results):
    """Every price after the cut perturbed: weights, choices and daily P&L up to the cut are unchanged."""
    prices = frames()
    cut = prices["AAPL"].index[-12]
    rng = np.random.default_rng(0)
    perturbed = {}
    for symbol, f in prices.items():
        f = f.copy()
        after = f.index > cut
        factor = 1.0 + rng.uniform(-0.03, 0.03, size=after.sum())
        ohlc = ["Open", "High", "Low", "Close"]
        f.loc[after, ohlc] = f.loc[after, ohlc].mul(factor, axis=0).astype(f[ohlc].dtypes.iloc[0])
        perturbed[symbol] = f
    other = run(perturbed)
    # with a forecaster: its forecasted P&L as of each day (the daily program), not the point rule
    for rule, forecaster in (("original", None), ("top_k", None), ("original", FORECASTER)):
        a = jaxsim.portfolio(results, rule, window=WINDOW, forecaster=forecaster)
        b = jaxsim.portfolio(other, rule, window=WINDOW, forecaster=forecaster)
        upto = a.daily.index <= cut
        assert not np.allclose(a.daily[~upto], b.daily[~upto])  # the perturbation reaches the portfolio
        pd.testing.assert_frame_equal(a.weights[upto], b.weights[upto], rtol=0, atol=1e-12)
        pd.testing.assert_frame_equal(a.choices[upto], b.choices[upto])
        pd.testing.assert_series_equal(a.daily[upto], b.daily[upto], rtol=0, atol=1e-12)


def test_calendar_masks(results, top2):
    dates = top2.daily.index
    goog, ibm = results["GOOG"].daily.index, results["IBM"].daily.index
    assert goog[0] < results["AAPL"].daily.index[0]  # different first dates
    assert dates.equals(pd.DatetimeIndex(sorted(set().union(*(r.daily.index for r in results.values())))))
    for result in (top2, jaxsim.portfolio(results, "original", window=WINDOW, min_positions=4)):
        not_listed = dates > goog[-1]
        assert not_listed.sum() == GOOG_SHORT
        assert (result.weights.loc[not_listed, "GOOG"] == 0).all()
        assert result.choices.loc[not_listed, "GOOG"].isna().all()
        missing = ~dates.isin(ibm)
        assert missing.sum() == 1 + (dates < ibm[0]).sum()  # the gap, and the days before IBM's first
        assert (result.weights.loc[missing, "IBM"] == 0).all()
        assert (result.contributions.loc[missing, "IBM"] == 0).all()
    inputs, _ = build_inputs(stocks_from_results(results))
    assert inputs.trading.sum(axis=0).tolist() == [N_SIMS] * 4  # each stock trades on its own N days


def test_plan_equals_the_replay_decision_a_day_later(results):
    """The plan of the data cut one day earlier is the full replay's decision on its last day."""
    shifted = run(frames(shift=1))
    for rule in ("original", "top_k", "smooth"):
        full = jaxsim.portfolio(results, rule, window=WINDOW)
        early = jaxsim.portfolio(shifted, rule, window=WINDOW)
        last = full.daily.index[-1]
        assert early.plan_inputs["date"] == last
        weights = pd.Series(early.plan_inputs["weights"]).reindex(full.weights.columns)
        np.testing.assert_allclose(weights.to_numpy(), full.weights.loc[last].to_numpy(), rtol=0, atol=1e-12)
        held = weights > 0
        choices = pd.Series(early.plan_inputs["choices"])[held.index[held]]
        assert choices.to_dict() == full.choices.loc[last, held.index[held]].to_dict()
        plan = early.plan.set_index("symbol")
        assert set(plan.index) == set(held.index[held])
        assert (plan["date"] == last).all()


def test_plan_orders(original, results):
    plan = original.plan
    assert list(plan.columns) == ["date", "symbol", "strategy", "side", "entry_price", "exit_price", "weight", "shares"]
    assert (plan["date"] == pd.Timestamp(results["AAPL"].metadata["last_date"])).all()
    for _, row in plan.iterrows():
        price = (
            row["entry_price"] if np.isfinite(row["entry_price"]) else results[row["symbol"]].records["close"].iloc[0]
        )
        assert row["shares"] == np.floor(row["weight"] * 100_000 / price)
        if row["strategy"] == "maxdiff":
            limits = results[row["symbol"]].limit_prices
            assert {row["entry_price"], row["exit_price"]} == {
                limits["maxdiffprofit_high_price"],
                limits["maxdiffprofit_low_price"],
            }
    assert (original.plan_for(1e6)["shares"] >= plan["shares"]).all()


# ------------------------------------------------------------------ the original rule on hand-built arrays
_DECIDE = jax.jit(core.decide, static_argnums=0)  # one small program per shape (eager dispatch is slower)


def _decide(rule, stats: dict, edge, sigma, eligible=None, crypto=None, fee=0.0005, spread_bps=5.0):
    s, j = np.shape(stats["forecast"])
    defaults = dict(mean=0.003, sharpe=1.0, vol=0.01, max_drawdown=-0.01, drawdown=0.0, turnover=0.01, samples=130.0)
    full = {
        k: np.broadcast_to(np.asarray(stats.get(k, defaults.get(k)), np.float64), (s, j))
        for k in core.WindowStats._fields
    }
    skeleton, params = rules.split_rule(rule)
    with jax.enable_x64(True):
        d = _DECIDE(
            skeleton,
            {k: jnp.float64(v) for k, v in params.items()},
            core.WindowStats(**{k: jnp.asarray(v) for k, v in full.items()}),
            jnp.asarray(edge, jnp.float64),
            jnp.asarray(sigma, jnp.float64),
            jnp.full(s, fee),
            jnp.full(s, spread_bps),
            jnp.zeros(s, bool) if crypto is None else jnp.asarray(crypto),
            jnp.ones(s, bool) if eligible is None else jnp.asarray(eligible),
        )
        return jax.device_get(d)


def test_original_gate_bypass_and_choice():
    nan = np.nan
    # stock 0: no positive forecast; strategy 1 (largest forecast) fails the Sharpe gate, 2 passes: 2
    # stock 1: strategy 0 passes the gate but its forecast is negative; 3 fails (samples) yet its
    #          forecast is the largest positive: the soft bypass picks it
    # stock 2: every gate fails (drawdown), no positive forecast: no strategy
    # stock 3: turnover 3 > 2 needs Sharpe >= 0.8: 0.7 fails (0), 0.9 passes (1)
    # stock 4: average return 20 bps < cost 10 + 5 spread + 10 margin = 25 bps: fails; 30 bps passes
    forecast = np.array(
        [
            [-0.001, -0.0001, -0.0005, -0.002],
            [-0.001, 0.001, 0.002, 0.003],
            [-0.001, -0.002, nan, nan],
            [-0.01, -0.02, nan, nan],
            [-0.01, -0.02, nan, nan],
        ]
    )
    sharpe = np.array([[1.0, 0.4, 1.0, 1.0], [1.0] * 4, [1.0] * 4, [0.7, 0.9, 1, 1], [1.0] * 4])
    samples = np.array([[130.0] * 4, [130, 70, 70, 70], [130.0] * 4, [130.0] * 4, [130.0] * 4])
    mdd = np.array([[-0.01] * 4, [-0.01] * 4, [-0.09] * 4, [-0.01] * 4, [-0.01] * 4])
    turnover = np.array([[0.01] * 4, [0.01] * 4, [0.01] * 4, [3.0, 3.0, 0, 0], [0.01] * 4])
    mean = np.array([[0.003] * 4, [0.003] * 4, [0.003] * 4, [0.003] * 4, [0.0020, 0.0030, 0, 0]])
    d = _decide(
        rules.Original(),
        dict(forecast=forecast, sharpe=sharpe, samples=samples, max_drawdown=mdd, turnover=turnover, mean=mean),
        edge=np.ones(5),
        sigma=np.full(5, 2.0),
    )
    assert d.choice.tolist() == [2, 3, -1, 1, 1]
    # score = chosen average return - spread (5 bps) / 1e4
    np.testing.assert_allclose(d.score[[0, 1, 3, 4]], 0.003 - 0.0005)
    # crypto: 40 bps minimum, 60 samples suffice
    d = _decide(
        rules.Original(),
        dict(forecast=[[-0.001]], mean=0.0035, samples=65.0),
        np.ones(1),
        np.full(1, 2.0),
        crypto=[True],
    )
    assert d.choice.tolist() == [-1]
    d = _decide(
        rules.Original(),
        dict(forecast=[[-0.001]], mean=0.0045, samples=65.0),
        np.ones(1),
        np.full(1, 2.0),
        crypto=[True],
    )
    assert d.choice.tolist() == [0]


def test_original_ranking_fill_and_cap():
    # 12 stocks, one strategy each, all allowed (positive forecasts); average returns set the scores
    means = np.linspace(0.001, 0.012, 12)
    d = _decide(
        rules.Original(), dict(forecast=np.full((12, 1), 0.001), mean=means[:, None]), np.ones(12), np.full(12, 2.0)
    )
    held = d.weights.sum(-1) > 0
    assert held.tolist() == [False, False] + [True] * 10  # the 10 best scores
    # two stocks pass (score > 0), the others have negative average returns: filled up to 4 by score
    means = np.array([0.004, -0.001, 0.003, -0.003, -0.0005, -0.002])
    d = _decide(
        rules.Original(), dict(forecast=np.full((6, 1), 0.001), mean=means[:, None]), np.ones(6), np.full(6, 2.0)
    )
    assert (d.weights.sum(-1) > 0).tolist() == [True, True, True, False, True, False]
    # a stock that may not trade that day is never held
    d = _decide(
        rules.Original(),
        dict(forecast=np.full((6, 1), 0.001), mean=means[:, None]),
        np.ones(6),
        np.full(6, 2.0),
        eligible=[False] + [True] * 5,
    )
    assert (d.weights.sum(-1) > 0).tolist() == [False, True, True, False, True, True]


def test_original_sizing():
    one = dict(forecast=np.full((4, 1), 0.001), mean=np.full((4, 1), 0.004))
    # kelly_lite = min(0.15, 0.2 edge / sigma^2): 0.2 * 1 / 4 = 0.05; 0.2 * 3 / 1 = 0.6 -> 0.15; sigma 0 -> 0
    d = _decide(rules.Original(), one, edge=[1.0, 3.0, 1.0, 0.5], sigma=[2.0, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(d.weights[:, 0], [0.05, 0.15, 0.0, 0.1])
    # after a drawdown of the (stock, strategy) beyond 5%: half
    d = _decide(
        rules.Original(),
        dict(one, drawdown=[[-0.06], [0.0], [0.0], [-0.01]]),
        edge=[1.0, 3.0, 1.0, 0.5],
        sigma=[2.0, 1.0, 0.0, 1.0],
    )
    np.testing.assert_allclose(d.weights[:, 0], [0.025, 0.15, 0.0, 0.1])
    # 60% of equity at most in one symbol (with the Kelly cap lifted to show it)
    d = _decide(rules.Original(kelly_cap=1.0), one, edge=[3.0, 0.5, 0.5, 0.5], sigma=[1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(d.weights[:, 0], [0.6, 0.1, 0.1, 0.1])
    # within buying power: 10 stocks at 0.15 = 1.5 -> scaled to a sum of 1
    ten = dict(forecast=np.full((10, 1), 0.001), mean=np.full((10, 1), 0.004))
    d = _decide(rules.Original(), ten, edge=np.full(10, 3.0), sigma=np.ones(10))
    np.testing.assert_allclose(d.weights[:, 0], 0.1)


def test_generic_rules(results):
    inputs, labels = build_inputs(stocks_from_results(results))
    for rule in (
        rules.TopK(k=2, window=WINDOW),
        rules.InverseVol(k=3, window=WINDOW),
        rules.ScoreProportional(k=3, window=WINDOW, max_weight=0.5),
    ):
        out = run_replay(inputs, rule)
        stock_weights = out.weights.sum(-1)
        assert (stock_weights >= 0).all() and (stock_weights.sum(-1) <= 1 + 1e-12).all()
        assert ((stock_weights > 0).sum(-1) <= rule.k).all()
        if isinstance(rule, rules.TopK):
            assert set(np.round(stock_weights[stock_weights > 0], 12)) <= {0.5}
        else:
            assert stock_weights.max() <= getattr(rule, "max_weight", 1.0) + 1e-12


def test_smooth_rule_is_differentiable_and_vmaps(results):
    inputs, _ = build_inputs(stocks_from_results(results))
    skeleton, params = rules.split_rule(rules.Smooth(window=WINDOW))
    with jax.enable_x64(True):
        arrays = core.PortfolioInputs(*(None if a is None else jnp.asarray(a) for a in inputs))

        def mean_return(temperature, threshold):
            p = {**{k: jnp.float64(v) for k, v in params.items()}, "temperature": temperature, "threshold": threshold}
            return core.replay(arrays, p, skeleton).daily.mean()

        grads = jax.grad(mean_return, argnums=(0, 1))(jnp.float64(0.5), jnp.float64(0.0))
        assert all(np.isfinite(g) for g in grads) and any(abs(g) > 0 for g in grads)
        many = jax.vmap(mean_return, in_axes=(0, None))(jnp.array([0.2, 0.5, 1.0]), jnp.float64(0.0))
        assert np.isfinite(np.asarray(many)).all()
        single = mean_return(jnp.float64(0.5), jnp.float64(0.0))
        np.testing.assert_allclose(many[1], single, rtol=1e-12)


def _write_run_folder(results, root):
    """The files of a run folder the portfolio reads (docs/output.md), without the slow ones (report, plots)."""
    for symbol, r in results.items():
        folder = root / symbol
        folder.mkdir()
        r.daily.to_csv(folder / "daily.csv")
        r.records.iloc[::-1].to_csv(folder / "records.csv", index=False)
        (folder / "metadata.json").write_text(json.dumps({"symbol": symbol, **r.metadata}, default=str))


def test_tune_portfolio_fits_on_earlier_days_and_reports_later_ones(results):
    tuned = jaxsim.tune_portfolio(results, "smooth", window=WINDOW, steps=15, learning_rate=0.1)
    assert tuned.history[-1] > tuned.history[0]  # the fit days' Sharpe rises
    assert tuned.table.loc["fit", "tuned"] == pytest.approx(tuned.history[-1], abs=0.05)
    assert tuned.rule.temperature != tuned.start.temperature and tuned.rule.window == WINDOW
    # the test days' number is the tuned rule's own replay on those days
    daily = jaxsim.portfolio(results, tuned.rule).daily
    test = daily[daily.index >= tuned.split]
    assert tuned.table.loc["test", "tuned"] == pytest.approx(test.mean() / test.std() * np.sqrt(252), rel=1e-6)
    with pytest.raises(ConfigError, match="no gradient"):
        jaxsim.tune_portfolio(results, "original")


def test_run_folder_gives_the_same_portfolio(results, top2, tmp_path):
    _write_run_folder(results, tmp_path)
    again = jaxsim.portfolio(tmp_path, "top_k", k=2, window=WINDOW, leverage=0.95)
    np.testing.assert_allclose(
        again.weights[top2.weights.columns].to_numpy(), top2.weights.to_numpy(), rtol=0, atol=1e-12
    )
    assert list(again.weights.index) == list(top2.weights.index)
    (tmp_path / "AAPL" / "daily.csv").unlink()
    with pytest.raises(ConfigError, match="lacks daily.csv"):
        jaxsim.portfolio(tmp_path)


def test_bad_input_is_refused_before_compute(results):
    with pytest.raises(ConfigError, match="unknown portfolio rule"):
        jaxsim.portfolio(results, "best")
    with pytest.raises(ConfigError, match="has no setting 'kk'"):
        jaxsim.portfolio(results, "top_k", kk=3)
    with pytest.raises(ConfigError, match="leverage"):
        jaxsim.portfolio(results, "top_k", leverage=2.0)
    with pytest.raises(ConfigError, match="no such run folder"):
        jaxsim.portfolio("/nonexistent/run")
    with pytest.raises(ConfigError, match="equity"):
        jaxsim.portfolio(results, equity=-1)


def test_stats_and_plot(top2):
    stats = top2.stats()
    assert list(stats.columns) == ["portfolio", "equal_weight"]
    np.testing.assert_allclose(
        stats.loc["Return [%]", "portfolio"], (top2.equity.iloc[-1] - 1) * 100, rtol=1e-4
    )  # float32 statistics
    unc = top2.uncertainty(n_trials=5, n_resamples=100)
    assert "5 strategies tried" in unc.verdict and list(unc.selection.index) == ["portfolio", "equal_weight"]
    fig = top2.plot()
    assert len(fig.axes) == 2
    assert set(top2.files()) == {
        "portfolio.csv",
        "weights.csv",
        "choices.csv",
        "plan.csv",
        "portfolio_stats.csv",
        "portfolio.json",
    }


# ------------------------------------------------------------------ the command line
def test_cli_portfolio_writes_the_run_folder(results, tmp_path, capsys):
    from jaxsim.cli.app import main

    _write_run_folder(results, tmp_path)
    assert main(["portfolio", str(tmp_path), "--rule", "top_k", "--window", str(WINDOW), "--equity", "5e4"]) == 0
    out = capsys.readouterr().out
    assert "Plan for " in out and "Sharpe Ratio" in out
    expected = jaxsim.portfolio(results, "top_k", window=WINDOW)
    weights = pd.read_csv(tmp_path / "weights.csv", index_col=0, parse_dates=True)
    np.testing.assert_allclose(weights[expected.weights.columns].to_numpy(), expected.weights.to_numpy(), atol=1e-12)
    plan = pd.read_csv(tmp_path / "plan.csv")
    assert plan["symbol"].tolist() == expected.plan["symbol"].tolist()
    assert plan["shares"].tolist() == expected.plan_for(5e4)["shares"].tolist()
    for name in ("portfolio.csv", "choices.csv", "portfolio_stats.csv", "portfolio.json"):
        assert (tmp_path / name).is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["portfolio", "/nonexistent/run"], "no such folder"),
        (["portfolio", ".", "--window", "1"], "--window must be >= 2"),
        (["portfolio", ".", "--equity", "-5"], "--equity must be > 0"),
        (["portfolio", ".", "--rule", "best"], "invalid choice: 'best'"),
        (["portfolio", ".", "--forecaster", "kronos"], "invalid choice: 'kronos'"),
        (["plan", "--symbols", "AAPL", "--data-dir", ".", "--forecaster", "toto"], "invalid choice: 'toto'"),
        (["backtest", "--portfolio"], "--portfolio needs --symbols and --out"),
        (["plan", "--symbols", "AAPL", "--data-dir", "/nonexistent/dir"], "no such folder"),
        (["plan", "--symbols", "AAPL", "--data-dir", ".", "--sims", "0"], "--sims must be >= 1"),
    ],
)
def test_cli_refuses_bad_arguments_before_compute(argv, message, capsys, monkeypatch):
    from jaxsim.cli.app import main
    from jaxsim.portfolio import api

    monkeypatch.setattr(api, "run_replay", lambda *a, **k: pytest.fail("computed before checking"))
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ the forecasted P&L as of every day
@pytest.fixture(scope="module")
def daily_inputs(results):
    stocks = stocks_from_results(results)
    inputs, labels = build_inputs(stocks)
    return with_daily_forecasts(inputs, stocks, FORECASTER), labels


def test_daily_forecast_on_the_last_day_is_the_backtests_forecasted_pnl(results, daily_inputs):
    """The value known at a stock's newest close is the backtest's own ``<prefix>_forecasted_pnl``
    (same rule, same series, same key); earlier days use only the series up to them."""
    inputs, labels = daily_inputs
    table = {s.name: s.prefix for s in with_user()}
    for i, symbol in enumerate(labels.symbols):
        last = labels.dates.get_loc(results[symbol].daily.index[-1])
        records = results[symbol].records
        for j, name in enumerate(labels.strategies):
            want = float(records[f"{table[name]}_forecasted_pnl"].iloc[0])
            np.testing.assert_allclose(inputs.forecast[last, i, j], want, rtol=1e-6, atol=1e-12)
        assert np.isnan(inputs.forecast[: labels.dates.get_loc(results[symbol].daily.index[0]), i]).all()


def test_replay_uses_the_given_forecast_as_of_the_previous_trading_day(daily_inputs):
    """A hand-made forecast with one positive strategy per (day, stock): the top_k rule scored by
    forecast holds, on each day, the strategy that was positive on the stock's previous trading day."""
    inputs, labels = daily_inputs
    n_days, n_stocks, n_strategies = inputs.pnl.shape
    best = (np.arange(n_days)[:, None] + np.arange(n_stocks)[None, :]) % n_strategies
    forecast = np.where(np.arange(n_strategies)[None, None, :] == best[..., None], 0.01, -0.01)
    forecast = np.where(inputs.trading[..., None], forecast, np.nan)  # a value only on the stock's own days
    out = run_replay(
        inputs._replace(forecast=forecast), rules.TopK(k=4, score="forecast", window=WINDOW, min_samples=1)
    )
    checked = 0
    for i in range(n_stocks):
        days = np.flatnonzero(inputs.trading[:, i])
        for previous, d in zip(days[:-1], days[1:]):
            if out.choice[d, i] >= 0:
                assert out.choice[d, i] == best[previous, i]
                checked += 1
    assert checked > 50


def test_portfolio_with_a_forecaster_from_a_run_folder_and_the_cli(results, daily_inputs, tmp_path, capsys):
    from jaxsim.cli.app import main

    api_result = jaxsim.portfolio(results, "original", window=WINDOW, forecaster=jaxsim.forecasters.naive())
    assert api_result.metadata["forecasted_pnl"] == "naive"
    _write_run_folder(results, tmp_path)
    argv = ["portfolio", str(tmp_path), "--window", str(WINDOW), "--forecaster", "naive"]
    assert main(argv) == 0
    assert "Plan for " in capsys.readouterr().out
    weights = pd.read_csv(tmp_path / "weights.csv", index_col=0, parse_dates=True)[api_result.weights.columns]
    # the sizing reads the expected move and volatility back from records.csv: equal to float32 rounding
    np.testing.assert_allclose(weights.to_numpy(), api_result.weights.to_numpy(), rtol=1e-4, atol=1e-12)
    choices = pd.read_csv(tmp_path / "choices.csv", index_col=0, parse_dates=True)[api_result.choices.columns]
    assert (
        choices.astype(object).fillna("").values.tolist()
        == api_result.choices.astype(object).fillna("").values.tolist()
    )
    with pytest.raises(ConfigError, match="forecaster must be None or a jaxsim forecaster"):
        jaxsim.portfolio(results, forecaster="naive")
