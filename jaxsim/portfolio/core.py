"""The walk-forward portfolio replay, pure JAX over arrays date x stock x strategy.

One ``lax.scan`` over the dates of the union calendar (docs/portfolio.md#replay). The carried state
is, per stock, a window of its last ``window`` trading days of out-of-sample daily P&L (as known at each
day's close, ``PortfolioInputs.known``) and of the
per-simulation average daily return (the series the forecasted P&L forecasts), its latest forecast
inputs (expected move, volatility), and the portfolio's weights and returns of the previous day. Day
d's step:

1. statistics of each (stock, strategy) window, which holds what the backtest ending at the close of
   d-1 knows (so the plan, decided from the last backtest, is the replay's decision)
   (:func:`window_stats`): mean, Sharpe, volatility, max and current drawdown, turnover, samples,
   forecasted P&L (the forecaster's as of d-1 when ``PortfolioInputs.forecast`` is given, else the
   window's point rule);
2. the rule's decision (:func:`decide`): weights (stock x strategy, a fraction of the equity at the
   close of d-1), the chosen strategy per stock and its score;
3. the day's P&L: ``sum_i w_i x_i - cost_d`` with ``x_i`` the P&L on d of stock i's strategy mix
   (NaN counts as 0) and ``cost_d = sum_i fee_i |w_i - drift_i|``, ``drift_i = w_i(d-1) (1 +
   x_i(d-1)) / (1 + r(d-1))`` the weight the stock had drifted to by the close of d-1 (the rebalance
   at that close trades the difference; docs/portfolio.md#costs);
4. day d's values enter the windows of the stocks trading on d.

After the last day the same decision on the final state is the plan for the next trading day
(:attr:`Replay.plan`), so the plan is the replay's decision by construction.

Everything is traced: the rule's float parameters (``params``) are arrays, so the replay vmaps over
them and differentiates through the :class:`~jaxsim.portfolio.rules.Smooth` rule. The structural
part of the rule (``skeleton``, :func:`jaxsim.portfolio.rules.split_rule`) is static.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["PortfolioInputs", "WindowStats", "Decision", "Replay", "window_stats", "decide", "replay"]

_FORECAST_MIN_VALUES = 4  # the original's forecasted-P&L rule: fewer values give the mean
_MASKED = -1e9  # softmax logit of a masked entry (finite: no NaN gradients)


class PortfolioInputs(NamedTuple):
    """The replay's inputs on the union calendar (D dates, S stocks, J strategies).

    Attributes:
      pnl: ``(D, S, J)`` out-of-sample daily P&L (fractions; NaN: no value that day): what a weight earns.
      known: ``(D, S, J)`` the P&L value that a backtest ending on that day knows newest: ``pnl`` for
        the signal strategies; for the others (final day t_5 = e - 1) their value of the stock's
        previous trading day, since the backtest ending on e scores them up to e - 1 only
        (docs/portfolio.md#alignment). The windows hold these.
      series: ``(D, S, J)`` each strategy's per-simulation average daily return, on the date of its
        simulation's last row (NaN: none); the forecasted P&L forecasts this series.
      trading: ``(D, S)`` bool: the stock has a row that day (listed and trading).
      edge: ``(D, S)`` the expected move in percent, ``|predicted_close - close| / close * 100``, of
        the simulation ending that day (its forecast is for the stock's next trading day).
      sigma: ``(D, S)`` the recent daily volatility in percent (``realized_volatility_pct``) that day.
      fee: ``(S,)`` fee per side; charged on weight changes.
      spread_bps: ``(S,)`` the stock's bid/ask spread in bps (|SPREAD - 1| x 1e4).
      crypto: ``(S,)`` bool: the crypto rule (365 days a year, the crypto gate thresholds).
      active_next: ``(S,)`` bool: the stock may be traded on the plan's day.
      forecast: ``(D, S, J)`` or None: each strategy's forecasted P&L from its ``series`` up to that day
        (:func:`jaxsim.engine.daily_forecasted_pnl.daily_forecasted_pnl`; NaN: none yet), used from the
        next day on; None: the rule's point rule on the window (``forecast_point``,
        docs/portfolio.md#forecast).
    """

    pnl: jax.Array
    known: jax.Array
    series: jax.Array
    trading: jax.Array
    edge: jax.Array
    sigma: jax.Array
    fee: jax.Array
    spread_bps: jax.Array
    crypto: jax.Array
    active_next: jax.Array
    forecast: jax.Array | None = None


class WindowStats(NamedTuple):
    """Statistics of each (stock, strategy) window, ``(S, J)`` each (data up to the previous close)."""

    mean: jax.Array  # average daily return
    sharpe: jax.Array  # mean / std (ddof 1) x sqrt(252 or 365); 0 without spread
    vol: jax.Array  # std of the daily P&L (ddof 1)
    max_drawdown: jax.Array  # min over the window of equity / running peak - 1 (<= 0)
    drawdown: jax.Array  # the same at the window's last day (the current drawdown)
    turnover: jax.Array  # mean |daily P&L| (the original's MaxDiff "turnover")
    samples: jax.Array  # days with a value
    forecast: jax.Array  # forecasted P&L of the next day (NaN: no series yet)


class Decision(NamedTuple):
    """One day's decision: ``weights`` ``(S, J)`` (fractions of equity), ``choice`` ``(S,)`` (the
    strategy index, -1 for none) and ``score`` ``(S,)`` (the stock's score, NaN without a choice)."""

    weights: jax.Array
    choice: jax.Array
    score: jax.Array


class Replay(NamedTuple):
    """The replay's outputs: per day ``weights`` ``(D, S, J)``, ``choice`` and ``score`` ``(D, S)``,
    ``contributions`` ``(D, S)`` (weight x P&L), ``costs`` and ``daily`` ``(D,)``; ``plan``: the
    :class:`Decision` for the day after the last date."""

    weights: jax.Array
    choice: jax.Array
    score: jax.Array
    contributions: jax.Array
    costs: jax.Array
    daily: jax.Array
    plan: Decision


def _safe_div(a, b):
    ok = b != 0
    return jnp.where(ok, a / jnp.where(ok, b, 1.0), 0.0)


def window_stats(buf_pnl, buf_series, periods_per_year, forecast_point: str) -> WindowStats:
    """Statistics of windows ``(S, J, K)`` (oldest first, NaN: no value); ``periods_per_year`` ``(S,)``.

    The forecasted P&L follows the original's rule on the window's series (docs/backtest.md#forecasted-pnl):
    the mean when fewer than 4 values or a negative mean, else the point forecast ``forecast_point``
    (``"mean"``, ``"last"``: the newest value, ``"zero"``: the naive forecaster's 0).
    """
    valid = jnp.isfinite(buf_pnl)
    n = valid.sum(-1)
    x = jnp.where(valid, buf_pnl, 0.0)
    mean = _safe_div(x.sum(-1), n)
    dev = jnp.where(valid, buf_pnl - mean[..., None], 0.0)
    vol = jnp.sqrt(_safe_div((dev**2).sum(-1), jnp.maximum(n - 1, 0)))
    sharpe = _safe_div(mean, vol) * jnp.sqrt(periods_per_year)[:, None]
    # associative scans: O(K log K) (XLA:CPU's cumulative ops are windowed reductions, O(K^2))
    equity = jax.lax.associative_scan(jnp.multiply, 1.0 + x, axis=-1)
    peak = jnp.maximum(jax.lax.associative_scan(jnp.maximum, equity, axis=-1), 1.0)  # the window starts at 1
    dd = equity / peak - 1.0
    turnover = _safe_div(jnp.abs(x).sum(-1), n)

    fvalid = jnp.isfinite(buf_series)
    fn = fvalid.sum(-1)
    fmean = _safe_div(jnp.where(fvalid, buf_series, 0.0).sum(-1), fn)
    if forecast_point == "mean":
        point = fmean
    elif forecast_point == "last":
        k = buf_series.shape[-1]
        last = k - 1 - jnp.argmax(fvalid[..., ::-1], axis=-1)
        point = jnp.take_along_axis(buf_series, last[..., None], axis=-1)[..., 0]
    else:
        point = jnp.zeros_like(fmean)
    forecast = jnp.where((fn < _FORECAST_MIN_VALUES) | (fmean < 0), fmean, point)
    forecast = jnp.where(fn > 0, forecast, jnp.nan)
    return WindowStats(mean, sharpe, vol, dd.min(-1), dd[..., -1], turnover, n.astype(mean.dtype), forecast)


def _ranks(key, group):
    """Rank 0 = the largest ``group`` (an int; excluded stocks the smallest), within it the largest ``key``;
    ties by index. Two stable argsorts (cheaper than a lexsort of several keys)."""
    order = jnp.argsort(-jnp.where(jnp.isfinite(key), key, -jnp.inf), stable=True)
    order = order[jnp.argsort(-group[order], stable=True)]
    return jnp.zeros_like(order).at[order].set(jnp.arange(order.shape[0]))


def _take(values, choice):
    return jnp.take_along_axis(values, jnp.maximum(choice, 0)[:, None], axis=-1)[:, 0]


def _one_hot_weights(weight, choice, n_strategies):
    return weight[:, None] * jax.nn.one_hot(choice, n_strategies, dtype=weight.dtype)


def _original(stats: WindowStats, edge, sigma, fee, spread_bps, crypto, eligible, p, s):
    spread = jnp.minimum(spread_bps, p["spread_cap_bps"])
    cost_bps = 2.0 * fee * 1e4 + spread  # a round trip's fees plus the spread
    min_return = jnp.maximum(
        cost_bps + p["cost_margin_bps"], jnp.where(crypto, p["min_return_bps_crypto"], p["min_return_bps"])
    )
    min_samples = jnp.where(crypto, p["min_samples_crypto"], p["min_samples"])
    gate = (
        (stats.mean * 1e4 >= min_return[:, None])
        & (stats.sharpe >= p["min_sharpe"])
        & (stats.samples >= min_samples[:, None])
        & (stats.max_drawdown >= p["max_drawdown"])
        & ((stats.turnover <= p["high_turnover"]) | (stats.sharpe >= p["high_turnover_sharpe"]))
    )
    known = jnp.isfinite(stats.forecast)
    positive = known & (stats.forecast > 0)
    candidate = jnp.where(positive.any(-1, keepdims=True), positive, known)
    allowed = candidate & (gate | positive)  # the soft bypass: a positive forecast lets a failed gate through
    # candidates in forecast order: the first allowed one is the one with the largest forecast
    choice = jnp.argmax(jnp.where(allowed, stats.forecast, -jnp.inf), axis=-1)
    has = allowed.any(-1) & eligible
    chosen_mean = _take(stats.mean, choice)
    score = chosen_mean - spread / 1e4
    passed = has & (chosen_mean > 0) & (score > 0)
    # passing stocks first by score, then the others by score: the first max_positions passing ones,
    # filled up to min_positions with the best of the rest
    rank = _ranks(score, has.astype(jnp.int32) + passed.astype(jnp.int32))
    keep = has & ((passed & (rank < s["max_positions"])) | (rank < s["min_positions"]))

    e = jnp.where(jnp.isfinite(edge), edge, 0.0)
    v = jnp.where(jnp.isfinite(sigma), sigma, 0.0)
    raw = p["kelly_scale"] * _safe_div(e, v**2)
    kelly = jnp.where((v > 0) & (raw > 0), jnp.minimum(p["kelly_cap"], raw), 0.0)
    scale = jnp.where(_take(stats.drawdown, choice) < p["drawdown_trigger"], p["drawdown_scale"], 1.0)
    half_kelly = jnp.minimum(1.0, p["half_kelly"] * _safe_div(e / 100.0, (v / 100.0) ** 2)) * p["leverage"]
    weight = jnp.where(keep, jnp.minimum(jnp.minimum(kelly * scale, half_kelly), p["max_weight"]), 0.0)
    weight = weight * jnp.minimum(1.0, _safe_div(p["leverage"], weight.sum()))  # within buying power
    choice = jnp.where(has, choice, -1)
    return Decision(_one_hot_weights(weight, choice, stats.mean.shape[-1]), choice, jnp.where(has, score, jnp.nan))


def _strategy_scores(stats: WindowStats, score_name: str):
    return {"sharpe": stats.sharpe, "return": stats.mean, "forecast": stats.forecast}[score_name]


def _generic(kind, stats: WindowStats, eligible, p, s):
    scores = _strategy_scores(stats, s["score"])
    usable = (stats.samples >= s["min_samples"]) & jnp.isfinite(scores) & eligible[:, None]
    n_strategies = scores.shape[-1]
    if kind == "smooth":
        t = p["temperature"]
        # masked entries get a large finite logit deficit, not -inf: gradients stay finite
        clean = jnp.where(usable, scores, 0.0)
        mix = jnp.where(usable, jax.nn.softmax(jnp.where(usable, clean / t, _MASKED), axis=-1), 0.0)
        stock_score = (mix * clean).sum(-1)
        ok = usable.any(-1)
        share = jnp.where(ok, jax.nn.softmax(jnp.where(ok, stock_score / t, _MASKED)), 0.0)
        gate = jax.nn.sigmoid((stock_score - p["threshold"]) / t)
        weight = p["leverage"] * share * gate
        choice = jnp.where(ok, jnp.argmax(mix, -1), -1)
        return Decision(weight[:, None] * mix, choice, jnp.where(ok, stock_score, jnp.nan))
    choice = jnp.argmax(jnp.where(usable, scores, -jnp.inf), axis=-1)
    best = _take(jnp.where(usable, scores, -jnp.inf), choice)
    has = usable.any(-1) & (best > 0)
    keep = has & (_ranks(best, has.astype(jnp.int32)) < s["k"])
    if kind == "top_k":
        weight = jnp.where(keep, p["leverage"] / s["k"], 0.0)
    else:
        raw = _safe_div(1.0, _take(stats.vol, choice)) if kind == "inverse_vol" else best
        raw = jnp.where(keep & jnp.isfinite(raw), raw, 0.0)
        weight = jnp.minimum(p["leverage"] * _safe_div(raw, raw.sum()), p["max_weight"])
    choice = jnp.where(has, choice, -1)
    return Decision(_one_hot_weights(weight, choice, n_strategies), choice, jnp.where(has, best, jnp.nan))


def decide(skeleton, params, stats: WindowStats, edge, sigma, fee, spread_bps, crypto, eligible) -> Decision:
    """The rule's decision for one day from the windows' ``stats`` and each stock's latest ``edge`` and
    ``sigma`` (``(S,)``); ``eligible`` ``(S,)``: stocks that may hold a position that day."""
    kind, fields = skeleton
    static = dict(fields)
    if kind == "original":
        return _original(stats, edge, sigma, fee, spread_bps, crypto, eligible, params, static)
    return _generic(kind, stats, eligible, params, static)


class _State(NamedTuple):
    buf_pnl: jax.Array  # (S, J, K)
    buf_series: jax.Array  # (S, J, K)
    edge: jax.Array  # (S,) latest
    sigma: jax.Array  # (S,) latest
    forecast: jax.Array  # (S, J) the latest daily forecasted P&L (with PortfolioInputs.forecast)
    weight: jax.Array  # (S,) yesterday's stock weights
    stock_return: jax.Array  # (S,) yesterday's P&L of each stock's mix
    day_return: jax.Array  # () yesterday's portfolio return


def _push(buf, new, trading):
    shifted = jnp.concatenate([buf[..., 1:], new[..., None]], axis=-1)
    return jnp.where(trading[:, None, None], shifted, buf)


def _replay(inputs: PortfolioInputs, params: dict, skeleton) -> Replay:
    static = dict(skeleton[1])
    window, forecast_point = static["window"], static["forecast_point"]
    dtype = inputs.pnl.dtype
    n_stocks, n_strategies = inputs.pnl.shape[1:]
    params = {k: jnp.asarray(v, dtype) for k, v in params.items()}
    periods = jnp.where(inputs.crypto, 365.0, 252.0).astype(dtype)
    fee = inputs.fee.astype(dtype)

    given = inputs.forecast is not None  # static: the pytree's structure

    def decision(state: _State, eligible) -> Decision:
        stats = window_stats(state.buf_pnl, state.buf_series, periods, forecast_point)
        if given:  # the forecaster's value as of the previous close replaces the point rule
            stats = stats._replace(forecast=state.forecast)
        return decide(skeleton, params, stats, state.edge, state.sigma, fee, inputs.spread_bps, inputs.crypto, eligible)

    def step(state: _State, day):
        pnl, known, series, trading, edge, sigma, forecast = day
        d = decision(state, trading)
        w_stock = d.weights.sum(-1)
        x = jnp.where(trading[:, None] & jnp.isfinite(pnl), pnl, 0.0)
        contributions = (d.weights * x).sum(-1)
        drift = state.weight * (1.0 + state.stock_return) / (1.0 + state.day_return)
        cost = (fee * jnp.abs(w_stock - drift)).sum()
        day_return = contributions.sum() - cost
        new = _State(
            _push(state.buf_pnl, known, trading),
            _push(state.buf_series, series, trading),
            jnp.where(trading & jnp.isfinite(edge), edge, state.edge),
            jnp.where(trading & jnp.isfinite(sigma), sigma, state.sigma),
            jnp.where(trading[:, None], forecast, state.forecast),
            w_stock,
            _safe_div(contributions, w_stock),
            day_return,
        )
        return new, (d.weights, d.choice, d.score, contributions, cost, day_return)

    empty = jnp.full((n_stocks, n_strategies, window), jnp.nan, dtype)
    zeros = jnp.zeros(n_stocks, dtype)
    nan = jnp.full((n_stocks, n_strategies), jnp.nan, dtype)
    start = _State(empty, empty, zeros * jnp.nan, zeros * jnp.nan, nan, zeros, zeros, jnp.zeros((), dtype))
    days = (
        inputs.pnl,
        inputs.known,
        inputs.series,
        inputs.trading,
        inputs.edge.astype(dtype),
        inputs.sigma.astype(dtype),
        jnp.broadcast_to(nan, inputs.pnl.shape) if inputs.forecast is None else inputs.forecast.astype(dtype),
    )
    final, (weights, choice, score, contributions, costs, daily) = jax.lax.scan(step, start, days)
    return Replay(weights, choice, score, contributions, costs, daily, decision(final, inputs.active_next))


replay = jax.jit(_replay, static_argnames=("skeleton",))
replay.__doc__ = """Run the replay (jitted; one program per rule skeleton and input shape).

Args:
  inputs: :class:`PortfolioInputs`.
  params: the rule's float parameters, name -> value (:func:`jaxsim.portfolio.rules.split_rule`).
  skeleton: the rule's static part (same function).

Returns:
  :class:`Replay`.
"""
