"""trades.csv's prices of the day-trade strategies (entry_takeprofit, highlow) and of user limit
strategies: the final day's fill levels the program returns (``oos_entry_*`` / ``oos_exit_*``,
:func:`jaxsim.sim.strategies.day_trade_fills`, :func:`jaxsim.sim.profit.limit_fills`) times the previous
close, checked against the program's P&L and against a recomputation from the day's OHLC and the
forecasts.

Cheap: one module-scoped walk-forward backtest of the bundled AAPL sample with a point momentum
forecaster (24 simulations, a 32-row context cap) and two user limit strategies (intraday and
close-at-eod policies); the fill-rule identities are checked on random arrays."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import jaxsim
from jaxsim.sim.profit import limit_fills, profit_values
from jaxsim.sim.strategies import day_trade_daily, day_trade_fills, side_switch_fees
from jaxsim.sim.strategy import Limits, UserStrategy, limit_offsets

N = 24


def _momentum(context, valid, key):
    del valid, key
    return 0.8 * context[-1]  # the last return, shrunk: forecasts of both signs, limits that fill and not


def _band(v, p):
    """Long (short) by the close forecast's sign; buy at the predicted low, sell at the predicted high."""
    del p
    k_high, k_low = limit_offsets(v)
    side = jnp.where(v.point["close"][:6] > 0, 1.0, -1.0)
    return Limits(v.point["high"][:6] + k_high, v.point["low"][:6] - k_low, side)


BAND = UserStrategy("band", "limits", _band, {})
BAND_EOD = UserStrategy("band_eod", "limits", _band, {}, close_at_eod=True)


@pytest.fixture(scope="module")
def run():
    prices = jaxsim.sample("AAPL")
    forecaster = jaxsim.forecasters.from_function(_momentum)
    result = jaxsim.backtest(
        prices, forecaster, n_sims=N, protocol="walk_forward", max_context=32, strategies=(BAND, BAND_EOD)
    )
    bars = pd.DataFrame(
        {"high": prices.high, "low": prices.low, "close": prices.close},
        index=pd.DatetimeIndex(np.asarray(prices.dates, "datetime64[ns]")),
    )
    return result, result.trades(prices), bars


def _random_days(seed: int, n: int, positions, level_scale: float):
    """``n`` random days: positions drawn from ``positions``, the close change, the high (>= 0) and low
    (<= 0) relative to the previous close, and two levels of scale ``level_scale``."""
    k = jax.random.split(jax.random.key(seed), 6)
    position = jax.random.choice(k[0], jnp.array(positions), (n,))
    close = 0.02 * jax.random.normal(k[1], (n,))
    high = jnp.abs(0.02 * jax.random.normal(k[2], (n,)))
    low = -jnp.abs(0.02 * jax.random.normal(k[3], (n,)))
    return position, close, high, low, *(level_scale * jax.random.normal(k[i], (n,)) for i in (4, 5))


def test_fill_levels_are_the_fill_rule():
    """day_trade_fills' levels give day_trade_daily's P&L bit for bit: side (exit - entry) - |side| fees,
    for a limit entry with and without a take-profit and for an entry at the previous close."""
    n = 400
    side, close, high, low, entry, take_profit = _random_days(5, n, [-1.0, 0.0, 1.0, 0.5], 0.01)
    fee = 0.0005
    for e, x in ((entry, None), (None, take_profit), (entry, take_profit), (None, None)):
        g = day_trade_daily(side, e, x, close, high, low, fee=fee)
        fill, exit_ = day_trade_fills(side, e, x, close, high, low)
        size = jnp.abs(side)
        want = jnp.where(side != 0, size * (jnp.sign(side) * (exit_ - fill)), 0.0) - size * side_switch_fees(
            jnp.sign(side), fee
        )
        np.testing.assert_array_equal(g, want)
        if e is not None:  # both outcomes occur: some limits fill, some do not (then in and out at the close)
            unfilled = fill == close
            assert 0 < int(unfilled.sum()) < n and bool(jnp.all(jnp.where(unfilled, exit_ == close, True)))


def test_day_trade_prices_are_filled_and_give_the_return(run):
    """Every entry_takeprofit and highlow trade has both prices, and its return is
    side (exit - entry) / C[t-1] minus the side-switch fees, as daily.csv has it."""
    result, trades, bars = run
    fee = float(result.metadata["fee"])
    close = bars["close"]
    for name in ("entry_takeprofit", "highlow"):
        t = trades[trades["strategy"] == name]
        assert len(t) >= N - 6 and t[["side", "entry_price", "exit_price"]].notna().all().all(), name
        assert (t["return"].to_numpy() == result.daily.loc[t["exit_date"], name].to_numpy()).all()
        base = close.shift(1).loc[t["exit_date"]].to_numpy()
        sign = np.where(t["side"] == "long", 1.0, -1.0)
        gross = sign * (t["exit_price"].to_numpy() - t["entry_price"].to_numpy()) / base
        fees = gross - t["return"].to_numpy()
        # the side-switch fee rule: 0, one fee (open) or two (close the other side too)
        nearest = fee * np.round(fees / fee)
        np.testing.assert_allclose(fees, nearest, atol=2e-6)
        assert set(np.round(fees / fee).astype(int)) <= {0, 1, 2}
        assert (np.round(fees / fee) > 0).any() and (np.round(fees / fee) == 0).any()


def test_day_trade_prices_are_bounded_as_the_rule_fills(run):
    """Where a trade leaves at the close or enters at the previous close those are the closes; a limit
    fill lies on the filled side of the day's range (the rule fills when the Low (High) change reaches
    the level: a long's limit entry is >= the day's low, a take-profit sale <= the day's high)."""
    _, trades, bars = run
    eps = 1e-9
    etp = trades[trades["strategy"] == "entry_takeprofit"]
    assert (etp["kind"] == "from_close").all()
    prev = bars["close"].shift(1).loc[etp["exit_date"]].to_numpy()
    np.testing.assert_array_equal(etp["entry_price"].to_numpy(), prev)
    np.testing.assert_array_equal(etp["entry_price"].to_numpy(), bars["close"].loc[etp["entry_date"]].to_numpy())
    day = bars.loc[etp["exit_date"]]
    long = (etp["side"] == "long").to_numpy()
    at_close = etp["exit_price"].to_numpy() == day["close"].to_numpy()
    assert at_close.any() and (~at_close).any()  # take-profits reached and not
    tp = etp["exit_price"].to_numpy()
    assert (tp[long] <= day["high"].to_numpy()[long] * (1 + eps)).all()
    assert (tp[~long] >= day["low"].to_numpy()[~long] * (1 - eps)).all()

    hl = trades[trades["strategy"] == "highlow"]
    assert (hl["kind"] == "intraday").all() and (hl["entry_date"] == hl["exit_date"]).all()
    day = bars.loc[hl["exit_date"]]
    np.testing.assert_array_equal(hl["exit_price"].to_numpy(), day["close"].to_numpy())
    long = (hl["side"] == "long").to_numpy()
    entry = hl["entry_price"].to_numpy()
    unfilled = entry == day["close"].to_numpy()
    assert unfilled.any() and (~unfilled).any()
    assert (entry[long] >= day["low"].to_numpy()[long] * (1 - eps)).all()
    assert (entry[~long] <= day["high"].to_numpy()[~long] * (1 + eps)).all()


def test_day_trade_prices_equal_a_recomputation_from_ohlc_and_forecasts(run):
    """An independent recomputation of every trade from the day's OHLC and the forecasts of its date
    (a point forecaster: the forecast of r_X[t] is the same in every simulation that scores day t):
    side, entry and exit prices and the return with its side-switch fee."""
    result, trades, bars = run
    fee = float(result.metadata["fee"])
    point = result.forecasts.xs("point", axis=1, level=1)
    change = bars / bars.shift(1) - 1  # r_C, and High (Low) versus the previous High (Low)
    checked = 0
    for _, t in trades[trades["strategy"].isin(["entry_takeprofit", "highlow"])].iterrows():
        d = t["exit_date"]
        prev_date = bars.index[bars.index.get_loc(d) - 1]
        if prev_date not in point.index:
            continue
        fc, fh, fl = (float(point.loc[d, x]) for x in ("close", "high", "low"))
        ah, al = float(change.loc[d, "high"]), float(change.loc[d, "low"])
        base, c = float(bars.loc[prev_date, "close"]), float(bars.loc[d, "close"])
        pc = float(point.loc[prev_date, "close"])
        if t["strategy"] == "entry_takeprofit":
            side, prev_side = (1.0 if fc > 0 else -1.0), (1.0 if pc > 0 else -1.0)
            entry = base
            hit = ah >= fh if side > 0 else al <= fl
            exit_ = base * (1 + (fh if side > 0 else fl)) if hit else c
        else:
            side, prev_side = float(np.sign(fc)), float(np.sign(pc))
            filled = al <= fl if side > 0 else ah >= fh
            entry = base * (1 + (fl if side > 0 else fh)) if filled else c
            exit_ = c
        switch_fee = fee * (side != prev_side) * (1 + (prev_side != 0))
        assert t["side"] == ("long" if side > 0 else "short")
        np.testing.assert_allclose([t["entry_price"], t["exit_price"]], [entry, exit_], rtol=1e-6)
        np.testing.assert_allclose(t["return"], side * (exit_ - entry) / base - switch_fee, atol=2e-6)
        checked += 1
    assert checked >= 2 * (N - 8)


def test_report_html_shows_the_day_trade_prices(run, tmp_path):
    """report.html's trades table (newest first) shows both prices of the day-trade rows."""
    result, trades, _ = run
    html = result.report(tmp_path / "page.html").read_text()
    section = html[html.index('<section id="trades">') : html.index('<section id="summary">')]
    rows = [re.findall(r"<td>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", section)]
    shown = {name: [r for r in rows if r and r[0] == name] for name in ("entry_takeprofit", "highlow")}
    for name, got in shown.items():
        t = trades[trades["strategy"] == name].iloc[::-1]
        assert len(got) == len(t), name
        for cells, (_, trade) in zip(got, t.iterrows()):
            assert cells[3] == f"{trade['entry_price']:,.6g}" and cells[5] == f"{trade['exit_price']:,.6g}"


@pytest.mark.parametrize("close_at_eod", [False, True])
def test_limit_fill_levels_are_pf(close_at_eod):
    """limit_fills' filled positions and levels give profit_values bit for bit: held (exit - entry) minus
    PF's fee (intraday: one fee per unit when both levels filled; eod: when either did), 0 unfilled."""
    q, close, high, low, hp, lp = _random_days(7, 500, [-1.0, 0.0, 1.0, 0.5, -12.0], 0.015)
    fee = 0.0005
    pnl = profit_values(close, high, hp, low, lp, q, close_at_eod=close_at_eod, fee=fee)
    held, entry, exit_ = limit_fills(close, high, hp, low, lp, q, close_at_eod=close_at_eod)
    buy, sell = jnp.clip(lp, -1.0, 0.0) > low, jnp.clip(hp, 0.0, 10.0) < high
    charged = (buy | sell) if close_at_eod else (buy & sell)
    want = held * (exit_ - entry) - fee * jnp.abs(q) * charged
    np.testing.assert_array_equal(pnl, want)
    filled = held != 0
    assert 0 < int(filled.sum()) < int((q != 0).sum())  # orders that fill and orders that do not
    assert bool(jnp.all(jnp.where(filled, True, (entry == close) & (exit_ == close))))
    assert float(jnp.max(jnp.abs(held))) == 10.0  # PF's clip of the position
    if close_at_eod:
        assert bool(jnp.all(exit_ == close))
    else:  # take-profits reached and not
        tp = filled & (exit_ != close)
        assert 0 < int(tp.sum()) < int(filled.sum())


@pytest.mark.parametrize("name", ["band", "band_eod"])
def test_user_limit_trades_equal_a_recomputation_from_ohlc_and_forecasts(run, name):
    """Every filled order of a user limit strategy is one trade with both prices, recomputed here from
    the day's OHLC and the forecasts of its date (PF on h = aH + kH, l = aL - kL): which days fill, the
    side, the entry and exit prices and the return with PF's fee; days without a fill are no trade."""
    result, trades, bars = run
    fee = float(result.metadata["fee"])
    eod = name == "band_eod"
    t = trades[trades["strategy"] == name].set_index("exit_date")
    assert (t["kind"] == "intraday").all() and (t.index == t["entry_date"]).all()
    assert t[["side", "entry_price", "exit_price"]].notna().all().all()
    np.testing.assert_array_equal(t["return"].to_numpy(), result.daily.loc[t.index, name].to_numpy())
    point = result.forecasts.xs("point", axis=1, level=1)
    daily = result.daily[name].dropna()
    expected = {}
    for d in daily.index:
        i = bars.index.get_loc(d)
        prev = bars.iloc[i - 1]
        fc, fh, fl = (float(point.loc[d, x]) for x in ("close", "high", "low"))
        k_high, k_low = abs(1 - prev["high"] / prev["close"]), abs(1 - prev["low"] / prev["close"])
        c = bars.iloc[i]["close"] / prev["close"] - 1
        h = bars.iloc[i]["high"] / prev["high"] - 1 + k_high
        l = bars.iloc[i]["low"] / prev["low"] - 1 - k_low
        hp, lp = min(max(fh + k_high, 0.0), 10.0), min(max(fl - k_low, -1.0), 0.0)
        if min(abs(lp - l), abs(hp - h)) < 1e-6:
            continue  # a float32 tie at a level: the program's side of it is rounding
        side = 1.0 if fc > 0 else -1.0
        buy, sell = lp > l, hp < h
        if not (buy if side > 0 else sell):
            expected[d] = None
            continue
        entry = lp if side > 0 else hp
        if eod:
            exit_ = c
        else:
            exit_ = (hp if hp <= h else c) if side > 0 else (lp if lp >= l else c)
        charged = (buy or sell) if eod else (buy and sell)
        ret = side * (exit_ - entry) - fee * charged
        expected[d] = (side, prev["close"] * (1 + entry), prev["close"] * (1 + exit_), ret)
    filled = [d for d, e in expected.items() if e is not None]
    assert len(filled) >= 5 and len(expected) - len(filled) >= 3  # fills and misses both checked
    assert set(filled) == set(t.index) & set(expected)
    for d in filled:
        side, entry, exit_, ret = expected[d]
        row = t.loc[d]
        assert row["side"] == ("long" if side > 0 else "short")
        np.testing.assert_allclose([row["entry_price"], row["exit_price"]], [entry, exit_], rtol=2e-6)
        np.testing.assert_allclose(row["return"], ret, atol=2e-6)
