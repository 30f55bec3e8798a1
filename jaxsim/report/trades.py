"""The round trips of a backtest: one row per strategy and out-of-sample day with a position.

Every strategy of jaxsim opens and closes its position within one scored day (the fees of a signal
strategy's final day, ``s_5 R_5 - 2 fee SPREAD``, are those of a round trip), so a trade is one day of
:attr:`jaxsim.report.result.BacktestResult.daily` on which :attr:`~jaxsim.report.result.BacktestResult.exposure`
says a position was held, and its ``return`` is that day's P&L (fractions, net of fees). Columns:

* ``strategy``; ``side``: ``long`` / ``short``;
* ``entry_date``, ``entry_price``, ``exit_date``, ``exit_price``;
* ``return``: the day's P&L (a fraction of the previous close, net of fees: the ``daily`` value);
* ``kind``: ``close_to_close`` (a signal strategy: bought or sold at the previous close, closed at the
  day's close; both prices exact), ``from_close`` (entry_takeprofit and user day trades without an
  entry level: in at the previous close, out at the take-profit or the day's close) or ``intraday``
  (the limit-order strategies: entry and exit on one day).

Intraday fills (docs/backtest.md#the-profit-function-pf): a MaxDiff long buys at its limit
``C[t-1] (1 + lp')`` when the day's low goes below it and sells at the take-profit ``C[t-1] (1 + hp')``
when the high reaches it (intraday policy), else at the close; a short mirrors it; always-on holds a
buy row and a sell row, so a day can hold one trade of each side. Those levels are rebuilt from the
prices the backtest ran on (:func:`jaxsim.report.plot_data.maxdiff_problems`), so the MaxDiff prices
are filled in only when ``prices`` are given; without them the row still carries the dates and the
return.

User ``"limits"`` strategies: the program returns the final day's filled position and its fill levels
(``oos_position_<name>``, ``oos_entry_<name>``, ``oos_exit_<name>``;
:func:`jaxsim.sim.profit.limit_fills`), priced as the day trades below (kind ``intraday``); so
``return = position (exit_price - entry_price) / C[t-1]`` minus PF's fee.

Day trades (entry_takeprofit, highlow, ``"day_trades"`` user strategies): the program returns the fill
levels of each simulation's final day t_5 (``oos_exit_<prefix>``, and ``oos_entry_<prefix>`` where the
entry is a limit; :func:`jaxsim.sim.strategies.day_trade_fills`), changes relative to the close before
t_5, the base of the rule's P&L; a price is that close times (1 + level), a fill at the close is the
day's close. So ``return = side (exit_price - entry_price) / C[t-1]`` minus the side-switch fees,
exactly the rule's P&L (float32 rounding aside). The built-ins compare a High (Low) level with the
High (Low) change versus the previous High (Low) (docs/backtest.md#entry-takeprofit, #highlow), so
their price is bounded on the side the rule checks (a long's limit entry is at or above the day's low,
its take-profit at or below the day's high; a short mirrored) but can lie beyond the other end of
the day's range: after a gap through the level a real order would have filled at the open. Closes
are the prices' (exact) where ``prices`` are given, else the records' float32 closes.

Rows are oldest first (by exit date, then the strategy order of ``daily``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from jaxsim.sim.strategy_table import FITTED, with_user

__all__ = ["TRADE_COLUMNS", "trades_frame", "empty_trades"]

TRADE_COLUMNS = ("strategy", "side", "entry_date", "entry_price", "exit_date", "exit_price", "return", "kind")


def empty_trades() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in TRADE_COLUMNS})


def _placed_order(values: np.ndarray) -> np.ndarray:
    """Row-order ``(N, ...)`` values of an order strategy -> chronological, as the daily frame places them
    (simulation k's final day t_5 is simulation k+1's date; the newest date has none)."""
    v = np.asarray(values, np.float64)
    pad = np.full((1, *v.shape[1:]), np.nan)
    return np.concatenate([pad, v[:-1]])[::-1]


def _side(position: float) -> str | None:
    if not np.isfinite(position) or position == 0:
        return None
    return "long" if position > 0 else "short"


def _maxdiff_fills(result, prices, strategy) -> dict | None:
    """Per chronological date: the fitted strategy's final-day fills, from the rebuilt problem."""
    from jaxsim.report import plot_data  # deferred: jax programs, only with prices

    problems = plot_data.maxdiff_problems(result, prices, strategy=strategy.name)
    day = -1  # the final evaluation day t_5
    rec = result.records
    mh = rec[strategy.fit.high_multiplier].to_numpy(np.float64)
    ml = rec[strategy.fit.low_multiplier].to_numpy(np.float64)
    eod = rec[strategy.field("close_at_eod")].to_numpy(bool)
    fee = float(result.metadata["fee"])
    c, h, l = (np.asarray(getattr(problems, f), np.float64)[:, day] for f in ("close", "high", "low"))
    hp = np.clip(np.asarray(problems.high_pred, np.float64)[:, day] + mh, 0.0, 10.0)
    lp = np.clip(np.asarray(problems.low_pred, np.float64)[:, day] + ml, -1.0, 0.0)
    q = np.asarray(problems.positions, np.float64)[:, :, day]  # (N, P)
    dates = np.asarray(prices.dates, "datetime64[D]")
    rows = np.searchsorted(dates, np.asarray(rec["date"].to_numpy(), "datetime64[D]"))
    ref = np.asarray(prices.close, np.float64)[rows - 2]  # C[t_5 - 1], t_5 = e - 1
    buy_fill, sell_fill = lp > l, hp < h
    legs = []
    for p in range(q.shape[1]):
        qp = q[:, p]
        long = (qp > 0) & buy_fill
        short = (qp < 0) & sell_fill
        entry = np.where(long, lp, hp)
        tp_hit = np.where(long, hp <= h, lp >= l) & ~eod
        exit_ = np.where(tp_hit, np.where(long, hp, lp), c)
        filled = long | short
        # PF's fee (docs/backtest.md#pf-eod, #pf-intraday): charged once, under the policy's condition
        charged = np.where(eod, buy_fill | sell_fill, buy_fill & sell_fill)
        ret = qp * (exit_ - entry) * filled - fee * np.abs(qp) * charged
        legs.append(
            {
                "filled": _placed_order(filled.astype(np.float64)),
                "side": _placed_order(np.sign(qp)),
                "entry": _placed_order(ref * (1.0 + entry)),
                "exit": _placed_order(ref * (1.0 + exit_)),
                "return": _placed_order(ret),
            }
        )
    return {"legs": legs}


# a price within this relative distance of the day's close is the close: a fill at the close comes
# back as the float32 change aC, whose price base (1 + aC) differs from the close by float32 rounding
_AT_CLOSE = 1e-6


def _level_price(base: float, level: float, close: float) -> float:
    """The price of a day-trade level (a change relative to the previous close ``base``)."""
    price = base * (1.0 + level)
    return close if np.isfinite(close) and abs(price - close) <= _AT_CLOSE * abs(close) else price


def _day_trade_rows(s, oos, values, held, dates, closes, close_before, date_before) -> list[tuple]:
    """Round trips of a ``"day_trades"`` strategy from its final-day fill levels (``oos_exit_*`` and, with
    a limit entry, ``oos_entry_*``; :func:`jaxsim.sim.strategies.day_trade_fills`): prices are the
    previous close times (1 + level), a fill at the close is the close."""
    pos = _placed_order(oos[s.position_field]) if s.position_field in oos else np.full(len(dates), np.nan)
    exit_level = _placed_order(oos[s.exit_field])
    limit = s.entry_field in oos  # else in at the previous close, on the previous day
    entry_level = _placed_order(oos[s.entry_field]) if limit else None
    if closes is None:
        closes = np.full(len(dates), np.nan)
    base = np.concatenate([[close_before], closes[:-1]])  # C[t-1] of each date t
    rows = []
    for j in np.flatnonzero(held):
        exit_ = _level_price(base[j], exit_level[j], closes[j])
        if limit:
            entry, entry_date, kind = _level_price(base[j], entry_level[j], closes[j]), dates[j], "intraday"
        else:
            entry, entry_date, kind = base[j], (dates[j - 1] if j else date_before), "from_close"
        rows.append((s.name, _side(pos[j]), entry_date, entry, dates[j], exit_, values[j], kind))
    return rows


def _chrono_closes(result, prices, dates) -> tuple[np.ndarray | None, float]:
    """Closes of the daily frame's dates and the close before the first, chronological: exact from
    ``prices`` where given, else the records' (float32) closes and ``result.closes``."""
    if prices is not None and len(dates):
        known = np.asarray(prices.dates, "datetime64[D]")
        rows = np.searchsorted(known, np.asarray(dates, "datetime64[D]"))
        close = np.asarray(prices.close, np.float64)
        if (rows < len(known)).all() and (
            known[np.minimum(rows, len(known) - 1)] == np.asarray(dates, "datetime64[D]")
        ).all():
            return close[rows], (float(close[rows[0] - 1]) if rows[0] else np.nan)
    closes = result.records["close"].to_numpy(np.float64)[::-1] if "close" in result.records else None
    before = result.closes  # the close before the first date (its value only), for the oldest entry
    return closes, (float(before.iloc[0]) if before is not None and len(before) else np.nan)


def trades_frame(result, prices=None) -> pd.DataFrame:
    """The round trips of ``result`` (a :class:`~jaxsim.report.result.BacktestResult`): see the module
    docstring. ``prices``: the :class:`~jaxsim.data.prices.Prices` the backtest ran on (MaxDiff fill prices)."""
    daily, exposure = result.daily, result.exposure
    dates = daily.index
    oos = result.oos
    closes, close_before = _chrono_closes(result, prices, dates)
    # the trading day before the first date: from the prices, else the result's metadata
    start = result.metadata.get("pnl_start_date")
    date_before = pd.Timestamp(start) if start else pd.NaT
    if prices is not None and len(dates):
        known = pd.DatetimeIndex(np.asarray(prices.dates, "datetime64[ns]"))
        earlier = known[known < dates[0]]
        date_before = earlier[-1] if len(earlier) else pd.NaT
    kinds = result.metadata.get("user_strategy_kinds") or {}
    fitted = {s.name: s for s in FITTED}
    rows = []
    for s in with_user([c for c in daily.columns if c not in {r.name for r in with_user()}], kinds):
        if s.name not in daily.columns:
            continue
        values = daily[s.name].to_numpy(np.float64)
        held = exposure[s.name].to_numpy(bool) if s.name in exposure else np.isfinite(values) & (values != 0)
        if s.signal:
            pos = np.asarray(oos[s.position_field], np.float64)[::-1] if s.position_field in oos else None
            for j in np.flatnonzero(held):
                side = _side(pos[j]) if pos is not None else None
                entry, exit_ = np.nan, np.nan
                if closes is not None:
                    entry, exit_ = (closes[j - 1] if j else close_before), closes[j]
                prev = dates[j - 1] if j else date_before
                rows.append((s.name, side, prev, entry, dates[j], exit_, values[j], "close_to_close"))
            continue
        if s.exit_field in oos:  # a day-trade strategy: the program returned its fill levels
            rows += _day_trade_rows(s, oos, values, held, dates, closes, close_before, date_before)
            continue
        fills = None
        if prices is not None and s.name in fitted:
            fills = _maxdiff_fills(result, prices, fitted[s.name])
        if fills is not None:
            for j in np.flatnonzero(np.isfinite(values)):
                for leg in fills["legs"]:
                    if leg["filled"][j] > 0:
                        rows.append(
                            (
                                s.name,
                                _side(leg["side"][j]),
                                dates[j],
                                leg["entry"][j],
                                dates[j],
                                leg["exit"][j],
                                leg["return"][j],
                                "intraday",
                            )
                        )
            continue
        pos = _placed_order(oos[s.position_field]) if s.position_field in oos else None
        for j in np.flatnonzero(held):
            side = _side(pos[j]) if pos is not None else None
            rows.append((s.name, side, dates[j], np.nan, dates[j], np.nan, values[j], "intraday"))
    if not rows:
        return empty_trades()
    frame = pd.DataFrame(rows, columns=list(TRADE_COLUMNS))
    order = {name: i for i, name in enumerate(daily.columns)}
    frame["_order"] = frame["strategy"].map(order)
    frame = frame.sort_values(["exit_date", "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)
    return frame
