"""User strategies (jaxsim.sim.strategy): the built-ins through the interface equal today's records, a
user strategy equals a hand-written NumPy loop on real data, walk-forward tuning reports only
out-of-sample simulations, the look-ahead check flags a leaky strategy, nothing retraces."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsim
from jaxsim.engine import program
from jaxsim.errors import ConfigError
from jaxsim.forecast import from_function
from jaxsim.optimize import grid_optimizer
from jaxsim.research import tune as tune_module
from jaxsim.research.lookahead import LookaheadError, check_no_lookahead
from jaxsim.sim.strategy import FIRST_DAY_ROW, Limits, UserStrategy, builtin_strategies

S = 8  # draws per context of the test forecaster
QUANTILES = np.linspace(-1.5, 1.5, S)


def _mean_std_draws(ctx, valid, key):
    """Deterministic draws: mean of the last 5 valid returns + std x a fixed grid (so the band is > 0)."""
    del key
    w = valid[-5:]
    n = jnp.maximum(w.sum(), 1)
    x = jnp.where(w, ctx[-5:], 0.0)
    mean = x.sum() / n
    std = jnp.sqrt(jnp.where(w, (ctx[-5:] - mean) ** 2, 0.0).sum() / n)
    return mean + std * jnp.asarray(QUANTILES, jnp.float32)


FORECASTER = from_function(_mean_std_draws, num_samples=S)
OPT = grid_optimizer(11)  # a small MaxDiff grid keeps the backtests fast; one object so programs are reused


def _band_fn(v, p):
    width = v.band["close"][:6]
    return Limits(
        v.point["high"][:6] + 0.004 + p["k2"] * width, v.point["low"][:6] - 0.004 - p["k"] * width, jnp.ones(6)
    )


def _tilt_fn(v, p):
    return jnp.tanh(p["a"] * v.point["close"][1:7] / (v.band["close"][1:7] + 1e-3))


BAND = UserStrategy("band", "limits", _band_fn, {"k": 0.5, "k2": 0.5})
TILT = UserStrategy("tilt", "signals", _tilt_fn, {"a": 2.0})
FIELDS = ("return", "sharpe", "avg_daily_return", "annual_return", "finalday")


def _load(daily_dir, symbols):
    return [jaxsim.load_prices(daily_dir / f"{s}.csv", symbol=s) for s in symbols]


@pytest.mark.parametrize("symbol", [None, "BTCUSD"])
def test_builtins_through_the_interface_equal_the_records(symbol):
    p = jaxsim.sample("AAPL", adjusted=True)
    via = builtin_strategies(crypto=symbol is not None)
    r = jaxsim.backtest(
        p,
        FORECASTER,
        n_sims=10,
        strategies=tuple(via.values()),
        symbol=symbol,
        max_context=32,
        optimizer=OPT,
        protocol="legacy",
    )
    rec = r.records
    prefix = {
        "simple": "simple_strategy",
        "all_signals": "all_signals_strategy",
        "unprofit_shutdown": "unprofit_shutdown",
    }
    for name, pre in prefix.items():
        for f in FIELDS:
            np.testing.assert_allclose(rec[f"{name}_via_interface_{f}"], rec[f"{pre}_{f}"], rtol=1e-6, atol=1e-8)
    for f in ("sharpe", "avg_daily_return", "annual_return"):  # buy & hold's return is an unconditional hold
        np.testing.assert_allclose(rec[f"buy_hold_via_interface_{f}"], rec[f"buy_hold_{f}"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(
        rec["maxdiff_via_interface_return"], rec["maxdiff_baseline_return"], rtol=1e-6, atol=1e-8
    )
    # entry + take-profit and highlow as day trades: bit for bit, their day-t_5 P&L as the final day
    for name in ("entry_takeprofit", "highlow"):
        for f in ("return", "sharpe", "avg_daily_return", "annual_return"):
            np.testing.assert_array_equal(rec[f"{name}_via_interface_{f}"], rec[f"{name}_{f}"], err_msg=f"{name}_{f}")
        np.testing.assert_array_equal(rec[f"{name}_via_interface_finalday"], r.oos[f"oos_finalday_{name}"])
        for f in ("entry", "exit"):  # the final day's fill levels (trades.csv's prices)
            field = f"oos_{f}_{name}"
            assert (field in r.oos) == (f"oos_{f}_{name}_via_interface" in r.oos) == (f == "exit" or name == "highlow")
            if field in r.oos:
                np.testing.assert_array_equal(r.oos[f"oos_{f}_{name}_via_interface"], r.oos[field])
        assert rec[f"{name}_return"].std() > 0
    assert rec["simple_strategy_return"].std() > 0  # not a trivially constant comparison
    # the out-of-sample frames: a signal strategy through the interface is the built-in's column
    daily, stats = r.daily, r.stats()
    assert list(daily.columns[8:]) == [s.name for s in via.values()]
    for name in ("simple", "all_signals", "unprofit_shutdown", "entry_takeprofit", "highlow"):
        np.testing.assert_allclose(daily[f"{name}_via_interface"], daily[name], rtol=1e-6, atol=1e-8)
        durations = stats.loc["Max. Drawdown Duration", [f"{name}_via_interface", name]]  # calendar Timedeltas
        assert durations.iloc[0] == durations.iloc[1] or durations.isna().all(), name
        numeric = stats.drop(index=["Start", "End", "Duration", "Max. Drawdown Duration"])
        np.testing.assert_allclose(
            numeric[f"{name}_via_interface"].to_numpy(float),
            numeric[name].to_numpy(float),
            rtol=1e-5,
            atol=1e-8,
            err_msg=name,
        )
    if symbol is not None:
        return
    # and the built-ins' own fields did not change by adding strategies
    plain = jaxsim.backtest(
        p, FORECASTER, n_sims=10, symbol=symbol, max_context=32, optimizer=OPT, protocol="legacy"
    ).records
    for c in plain.columns:
        if c not in ("date", "close_prediction_source") and np.issubdtype(plain[c].dtype, np.number):
            np.testing.assert_array_equal(rec[c].to_numpy(), plain[c].to_numpy(), err_msg=c)
    assert list(r.summary.index[8:]) == [s.name for s in via.values()]


# ------------------------------------------------------------------------- hand-written NumPy loop
def _r(x):
    x = np.asarray(x, np.float64)
    out = np.ones_like(x)
    out[1:] = x[1:] / x[:-1] - 1
    return out


def _np_forecast(r, o):
    """Draws of r_X[o] from r_X[1..o-1]: mean/std of the last 5 returns."""
    ctx = r[max(1, o - 5) : o]
    mean, std = ctx.mean(), ctx.std()
    draws = mean + std * QUANTILES
    return draws.mean(), np.percentile(draws, 60) - np.percentile(draws, 40)


def _np_pf(c, h, hp, l, lp, q, fee):
    hp, lp = np.clip(hp, 0, 10), np.clip(lp, -1, 0)
    buy, sell = lp > l, hp < h
    pnl = np.clip(q, 0, 10) * buy * np.where(hp <= h, hp - lp, c - lp) + np.clip(q, -10, 0) * sell * np.where(
        lp >= l, lp - hp, c - hp
    )
    return pnl - fee * np.abs(q) * (buy & sell)


def _np_records(p, n_sims, fee, spread):
    o_, h_, l_, c_ = (np.asarray(x, np.float64) for x in (p.open, p.high, p.low, p.close))
    rc, rh, rl = _r(c_), _r(h_), _r(l_)
    T = len(c_)
    out = {
        k: []
        for k in (
            "band_return",
            "band_sharpe",
            "band_finalday",
            "tilt_return",
            "tilt_sharpe",
            "tilt_finalday",
            "tilt_avg_daily_return",
        )
    }
    for k in range(n_sims):
        e = T - 2 - k
        days = e - 6 + np.arange(6)
        fcs = {
            x: np.array([_np_forecast(r, o) for o in range(e - 6, e + 1)])
            for x, r in (("close", rc), ("high", rh), ("low", rl))
        }
        band_c = fcs["close"][:, 1]
        # limits: PF on close-relative levels (MaxDiff quantities)
        kh, kl = np.abs(1 - h_[days - 1] / c_[days - 1]), np.abs(1 - l_[days - 1] / c_[days - 1])
        hp = fcs["high"][:6, 0] + 0.004 + 0.5 * band_c[:6]
        lp = fcs["low"][:6, 0] - 0.004 - 0.5 * band_c[:6]
        pf = _np_pf(rc[days], rh[days] + kh, hp, rl[days] - kl, lp, np.ones(6), fee)
        out["band_return"].append(pf.sum())
        out["band_sharpe"].append(pf.mean() / pf.std() * np.sqrt(252) if pf.std() > 0 else 0.0)
        out["band_finalday"].append(pf[-1])
        # signals: E_cmp on R_i = r_C[t_i + 1]
        s = np.tanh(2.0 * fcs["close"][1:7, 0] / (band_c[1:7] + 1e-3))
        R = rc[days + 1]
        mixed = (s > 0).any() and (s < 0).any() and (s == 0).any()
        unit = (0.523 * fee if mixed else fee) + abs(1 - spread) / 2
        net = s * R - np.abs(np.diff(s, prepend=0.0)) * unit
        out["tilt_return"].append(np.prod(1 + net) - 1)
        out["tilt_sharpe"].append(net.mean() / net.std(ddof=1) * np.sqrt(252))
        out["tilt_finalday"].append(s[-1] * R[-1] - 2 * fee * spread)
        out["tilt_avg_daily_return"].append(net.mean())
    return {k: np.array(v) for k, v in out.items()}


def test_user_strategy_records_equal_a_numpy_loop_on_real_data(daily_dir):
    prices = _load(daily_dir, ["AEM", "BIDU"])
    results = jaxsim.backtest_many(
        prices,
        FORECASTER,
        n_sims=8,
        strategies=(BAND, TILT),
        aggregate="mean",
        max_context=32,
        optimizer=OPT,
        progress=False,
        protocol="legacy",
    )
    for p in prices:
        r = results[p.symbol]
        want = _np_records(p, 8, r.metadata["fee"], r.metadata["spread"])
        for name, value in want.items():
            np.testing.assert_allclose(r.records[name], value, rtol=2e-3, atol=2e-6, err_msg=name)
        assert np.abs(want["band_return"]).max() > 1e-4 and np.abs(want["tilt_return"]).max() > 1e-4
        row = r.summary.loc["band"]
        assert row["Return"] == pytest.approx(want["band_return"].mean(), rel=2e-3, abs=1e-6)
        assert row["FinalDay"] == pytest.approx(want["band_finalday"].mean(), rel=2e-3, abs=1e-6)
        assert np.isfinite(r.records["band_forecasted_pnl"]).all()
        assert "band" in r.metadata["forecasted_pnl_source"]
        assert len(r.records["band_profit_values"].iloc[0]) == 6
        # daily P&L (chronological): a signals strategy's last day is row e, an order strategy's t_5 = e - 1
        np.testing.assert_allclose(r.daily["tilt"], want["tilt_finalday"][::-1], rtol=2e-3, atol=2e-6)
        placed = np.concatenate([[np.nan], want["band_finalday"][:-1]])[::-1]
        np.testing.assert_allclose(r.daily["band"], placed, rtol=2e-3, atol=2e-6)
        stats = r.stats()
        assert stats.loc["Return [%]", "tilt"] == pytest.approx(
            100 * (np.prod(1 + want["tilt_finalday"]) - 1), rel=2e-3, abs=1e-4
        )
        assert stats.loc["# Trades", "band"] == np.count_nonzero(want["band_finalday"][:-1])


def test_tune_improves_in_sample_and_reports_out_of_sample_only(daily_dir):
    prices = _load(daily_dir, ["AEM", "BIDU", "CHWY"])
    data = jaxsim.simulation_data(prices, FORECASTER, n_sims=30, aggregate="mean", max_context=32, protocol="legacy")
    res = jaxsim.tune(BAND, data, steps=60, windows=2, fit_fraction=0.4)
    assert res.objective.shape == (2, 60)
    assert (res.objective[:, -1] > res.objective[:, 0] + 1e-6).all()  # the surrogate went up
    assert (res.fitted_objective >= res.exact_objective[:, 0]).all()  # never worse than the start, exactly
    # masks: fit = chronological 0..11 (k 18..29); test blocks start 6 simulations after
    fit, test = res.fit_mask, res.test_mask
    assert fit[0].sum() == 12 and np.flatnonzero(fit[0]).min() == 18
    for w in range(2):
        first_test = np.flatnonzero(test[w]).max()  # the oldest test simulation (largest k)
        assert np.flatnonzero(fit[w]).min() >= first_test + 6
    assert not (fit[0] & test.any(0)).any()
    for symbol, rec in res.records.items():
        assert set(rec["sim"]) == set(res.test_sims) and not fit[0][rec["sim"]].any()
        i = data.symbols.index(symbol)
        for w, k in zip(rec["window"], rec["sim"]):  # its first day is after every day its fit scored
            assert data.day_dates[i][k, 0] > data.day_dates[i][np.flatnonzero(fit[w]).min(), 5]
    # the reported numbers are the exact records of the fitted strategy (here the last window's rows)
    last = res.records["AEM"].query("window == 1")
    r = jaxsim.backtest(
        prices[0],
        FORECASTER,
        n_sims=30,
        aggregate="mean",
        strategies=(res.strategy,),
        max_context=32,
        optimizer=OPT,
        protocol="legacy",
    )
    np.testing.assert_allclose(
        r.records["band_return"].to_numpy()[last["sim"]], last["band_return"], rtol=1e-5, atol=1e-7
    )
    assert list(res.summary.index) == ["AEM", "BIDU", "CHWY", "all"]
    assert res.daily().shape == (len(res.test_sims), 3)
    # signals strategies tune too (the E_cmp net return is smooth in the positions)
    sig = jaxsim.tune(TILT, data, steps=40, fit_fraction=0.5)
    assert sig.objective[0, -1] > sig.objective[0, 0]


def test_no_retrace_on_a_second_call():
    p = jaxsim.sample("IBM", adjusted=True)
    jaxsim.backtest(p, FORECASTER, n_sims=8, strategies=(BAND,), max_context=32, optimizer=OPT, protocol="legacy")
    before = program.trace_count()
    r = jaxsim.backtest(
        p,
        FORECASTER,
        n_sims=8,
        strategies=(BAND.replace(params={"k": 1.0, "k2": 0.0}),),
        max_context=32,
        optimizer=OPT,
        protocol="legacy",
    )
    assert program.trace_count() == before and not r.metadata["compiled"]
    data = jaxsim.simulation_data([p], FORECASTER, n_sims=20, max_context=32, protocol="legacy")
    jaxsim.tune(BAND, data, steps=5)
    before = tune_module.trace_count()
    jaxsim.tune(BAND, data, steps=5, params={"k": 0.1, "k2": 0.2})
    assert tune_module.trace_count() == before


def _leaky_low(v, p):
    """Buys just above the day's own low: reads row t_i (index 15 + i) before its open."""
    close, low = v.prices[:, 3], v.prices[:, 2]
    lo = low[FIRST_DAY_ROW : FIRST_DAY_ROW + 6] / close[FIRST_DAY_ROW - 1 : FIRST_DAY_ROW + 5] - 1 + 1e-4
    return Limits(jnp.full(6, 0.01), lo, jnp.ones(6))


def _leaky_signal(v, p):
    """Holds the sign of R_i itself (reads the close it earns)."""
    c = v.prices[:, 3]
    return jnp.sign(c[FIRST_DAY_ROW + 1 : FIRST_DAY_ROW + 7] - c[FIRST_DAY_ROW : FIRST_DAY_ROW + 6])


def _leaky_forecast(v, p):
    """Uses P_C[6] (the forecast of r_C[e], made after every earlier day) on all days."""
    return jnp.full(6, jnp.sign(v.point["close"][6]))


def _leaky_take_profit(v, p):
    """Takes profit at the day's own high (row t_i, unknown before its open)."""
    hi, c = v.prices[:, 1], v.prices[:, 3]
    return jaxsim.DayTrades(
        jnp.ones(6), None, hi[FIRST_DAY_ROW : FIRST_DAY_ROW + 6] / c[FIRST_DAY_ROW - 1 : FIRST_DAY_ROW + 5] - 1
    )


def test_lookahead_check_flags_leaky_strategies_and_passes_the_builtins():
    p = jaxsim.sample("AAPL", adjusted=True)
    for s in (*builtin_strategies().values(), BAND, TILT):
        report = check_no_lookahead(s, p, forecaster=FORECASTER, n_sims=4, max_context=32, protocol="legacy")
        assert report.ok and report.n_checked > 100, s.name
    for fn, kind in (
        (_leaky_low, "limits"),
        (_leaky_signal, "signals"),
        (_leaky_forecast, "signals"),
        (_leaky_take_profit, "day_trades"),
    ):
        with pytest.raises(LookaheadError, match="reads the future"):
            check_no_lookahead(
                UserStrategy("leaky", kind, fn), p, forecaster=FORECASTER, n_sims=4, max_context=32, protocol="legacy"
            )
    report = check_no_lookahead(
        UserStrategy("leaky", "limits", _leaky_low),
        p,
        forecaster=FORECASTER,
        n_sims=4,
        max_context=32,
        raise_on_failure=False,
        protocol="legacy",
    )
    assert not report.ok and all(c >= 0 for c, *_ in report.violations)


def test_bad_strategies_are_clear_errors():
    with pytest.raises(ConfigError, match="kind"):
        UserStrategy("x", "orders", _band_fn)
    with pytest.raises(ConfigError, match="built-ins"):
        jaxsim.backtest(
            jaxsim.sample("AAPL"),
            FORECASTER,
            n_sims=3,
            max_context=32,
            strategies=(BAND.replace(name="maxdiff"),),
            protocol="legacy",
        )
    with pytest.raises(ConfigError, match="Limits"):
        jaxsim.backtest(
            jaxsim.sample("AAPL"),
            FORECASTER,
            n_sims=3,
            max_context=32,
            optimizer=OPT,
            strategies=(UserStrategy("bad", "limits", _tilt_fn, {"a": 1.0}),),
            protocol="legacy",
        )


def _np_day_trades(side, entry, take, c, h, l, fee):
    """The day-trade rules, one day at a time (module docstring of jaxsim.sim.strategy)."""
    out, prev = [], 0.0
    for i in range(6):
        s = np.sign(side[i])
        if s > 0:
            filled = entry is None or l[i] <= entry[i]
            fill = 0.0 if entry is None else (entry[i] if filled else c[i])
            exit_ = c[i] if (take is None or not filled or h[i] < take[i]) else take[i]
            g = exit_ - fill
        elif s < 0:
            filled = entry is None or h[i] >= entry[i]
            fill = 0.0 if entry is None else (entry[i] if filled else c[i])
            exit_ = c[i] if (take is None or not filled or l[i] > take[i]) else take[i]
            g = fill - exit_
        else:
            g = 0.0
        fees = fee * (1 + (prev != 0)) if (s != 0 and s != prev) else 0.0
        out.append(abs(side[i]) * (g - fees))
        prev = s
    return np.asarray(out)


def test_day_trade_rules_equal_a_numpy_loop_and_smooth_towards_them():
    from jaxsim.sim.strategy import DayTrades, Outcomes, day_trade_pnl

    rng = np.random.default_rng(7)
    for trial in range(20):
        c = rng.normal(0, 0.01, 6).astype(np.float32)
        h = (np.maximum(c, 0) + np.abs(rng.normal(0, 0.01, 6))).astype(np.float32)
        l = (np.minimum(c, 0) - np.abs(rng.normal(0, 0.01, 6))).astype(np.float32)
        side = rng.choice([-1.0, 0.0, 1.0, 0.5], 6).astype(np.float32)
        entry = None if trial % 3 == 0 else rng.normal(0, 0.008, 6).astype(np.float32)
        take = None if trial % 3 == 1 else rng.normal(0, 0.012, 6).astype(np.float32)
        realised = Outcomes(*(jnp.asarray(x) for x in (c, c, h, l, h, l)))
        trades = DayTrades(
            jnp.asarray(side),
            None if entry is None else jnp.asarray(entry),
            None if take is None else jnp.asarray(take),
        )
        got = np.asarray(day_trade_pnl(trades, realised, fee=0.001))
        want = _np_day_trades(side, entry, take, c, h, l, 0.001)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg=str(trial))
        soft = np.asarray(day_trade_pnl(trades, realised, fee=0.001, temperature=1e-7))
        np.testing.assert_allclose(soft, want, atol=1e-5)
        if trial != 2:
            continue
        # the smooth objective has useful gradients in the levels
        grad = jax.grad(
            lambda t: day_trade_pnl(trades._replace(take_profit=t), realised, fee=0.001, temperature=1e-3).sum()
        )(jnp.asarray(take))
        assert np.isfinite(np.asarray(grad)).all() and np.abs(np.asarray(grad)).max() > 0


def _maxdiff_at(v, p):
    """MaxDiff's limit rule at given multipliers (p: m_h, m_l, side): its baseline levels shifted by them."""
    from jaxsim.sim.strategy import limit_offsets

    k_high, k_low = limit_offsets(v)
    hp, lp = v.point["high"][:6] + k_high, v.point["low"][:6] - k_low
    if p["side"] == 0:  # MaxDiff: one order a day on the larger predicted move, when the levels are ordered
        q = jnp.where(lp < hp, jnp.where(jnp.abs(hp) > jnp.abs(lp), 1.0, -1.0), 0.0)
    else:  # always-on: one leg of the buy AND sell pair
        q = jnp.full(6, float(p["side"]))
    return Limits(hp + p["m_h"], lp + p["m_l"], q)


def test_maxdiff_at_its_fitted_multipliers_is_the_limits_rule():
    """MaxDiff's fit is a search over the limits rule: at each simulation's fitted multipliers (and its
    eod choice) the interface's daily P&L is the record's optimised series; always-on is two legs."""
    from jaxsim.sim.strategy import strategy_fields

    p = jaxsim.sample("AAPL", adjusted=True)
    n = 10
    r = jaxsim.backtest(p, FORECASTER, n_sims=n, max_context=32, optimizer=OPT, protocol="legacy")
    views = jaxsim.simulation_data(p, FORECASTER, n_sims=n, max_context=32, protocol="legacy").views
    views = jax.tree.map(lambda a: a[0], views)
    fee, spread = r.metadata["fee"], r.metadata["spread"]
    rec = r.records
    cases = (
        (
            "maxdiff",
            "maxdiffprofit_profit_high_multiplier",
            "maxdiffprofit_profit_low_multiplier",
            "maxdiffprofit_profit_values",
            (0,),
        ),
        (
            "maxdiffalwayson",
            "maxdiffalwayson_high_multiplier",
            "maxdiffalwayson_low_multiplier",
            "maxdiffalwayson_profit_values",
            (1, -1),
        ),
    )
    for name, mh, ml, series, sides in cases:
        for k in range(n):
            v = jax.tree.map(lambda a: a[k], views)
            eod = bool(rec[f"{name}_close_at_eod"].iloc[k])
            total = np.zeros(6)
            for side in sides:
                s = UserStrategy("at", "limits", _maxdiff_at, close_at_eod=eod)
                params = {"m_h": jnp.float32(rec[mh].iloc[k]), "m_l": jnp.float32(rec[ml].iloc[k]), "side": side}
                total += np.asarray(strategy_fields(s, v, params, fee=fee, spread=spread)["at_profit_values"])
            np.testing.assert_allclose(
                total, np.asarray(rec[series].iloc[k], float), rtol=1e-5, atol=1e-7, err_msg=f"{name} sim {k}"
            )
        assert np.abs(np.stack(rec[series].to_numpy())).max() > 1e-4, name
