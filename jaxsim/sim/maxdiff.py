r"""MaxDiff and MaxDiff always-on (docs/backtest.md#maxdiff, #maxdiff-always-on) and a dense-grid baseline multiplier
optimizer.

Both strategies trade limit orders at the predicted high/low levels expressed relative to the
PREVIOUS CLOSE: the High/Low forecasts and actuals (changes of the High/Low series) are shifted by the
close-relative offsets of the row before each evaluation day,

.. math::

    k^H_i = |1 - H[t_i-1]/C[t_i-1]|,\quad k^L_i = |1 - L[t_i-1]/C[t_i-1]|\quad(0 \text{ if } C = 0
    \text{ or non-finite}),

    c = aC,\ h = aH + k^H,\ l = aL - k^L,\ hp = fH + k^H,\ lp = fL - k^L,

then score the profit function PF of docs/backtest.md#profit-function (:func:`jaxsim.sim.profit.profit_values`) with two
additive multipliers (mh, ml) fitted on the same six days by an ``optimizer`` (the protocol of
:mod:`jaxsim.sim.simulation`). The reported numbers are "adjusted": baseline + 0.3 * optimised
(docs/deviations.md#kept-in-sample-fit: in-sample, kept as the original computes it). Always-on's baseline always uses
eod=False, whatever policy was chosen (docs/deviations.md#kept-always-on-baseline-eod).

Record field names follow docs/backtest.md#record-fields; the metadata of docs/backtest.md#maxdiff-metadata that has no
column name in the spec is named ``maxdiff_<what>`` (and ``maxdiffalwayson_<what>``); ``maxdiff_primary_side`` is +1
(buy), -1 (sell) or 0 (neutral); ``*_close_at_eod`` is the chosen policy as a bool. The fields the other layers read
(returns, final day, fitted multipliers, limit prices) are named by the strategies' rows of
:mod:`jaxsim.sim.strategy_table`; :data:`RECORDS` maps each row to its scoring function on
:class:`jaxsim.sim.scoring.SimulationDays`, :data:`FITTED_FUNCTIONS` to the strategy function itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.sim import ties
from jaxsim.sim.metrics import evaluate_daily_returns
from jaxsim.sim.profit import MULTIPLIER_BOUND, by_policy, profit_values
from jaxsim.sim.scoring import RecordFunction, Scoring, SimulationDays
from jaxsim.sim.strategy_table import MAXDIFF, MAXDIFF_ALWAYS_ON, Strategy

__all__ = [
    "MULTIPLIER_BOUND",
    "OPTIMIZED_WEIGHT",
    "close_relative_offsets",
    "split_float64",
    "host_close_relative_offsets",
    "maxdiff_positions",
    "always_on_positions",
    "fit_positions",
    "maxdiff_strategy",
    "maxdiff_always_on_strategy",
    "limit_inputs",
    "FITTED_FUNCTIONS",
    "RECORDS",
]

Array = jax.Array
f32 = jnp.float32

OPTIMIZED_WEIGHT = 0.3  # adjusted = baseline + 0.3 * optimised (docs/backtest.md#maxdiff)


def close_relative_offsets(
    high: Array, low: Array, close: Array, *, high_lo=None, low_lo=None, close_lo=None
) -> tuple[Array, Array]:
    r"""(kH, kL) = (|1 - H/C|, |1 - L/C|) of the rows before the evaluation days; 0 where C = 0 or
    the value is non-finite. Shapes ``(days,)``.

    The original computes these in float64 from its pandas prices and casts to float32. Given the
    float32 residuals ``x_lo = float32(x - float32(x))`` of the float64 prices (``*_lo``, from
    :func:`split_float64`), the offsets are computed in double-float arithmetic,
    ``|H - C| / C`` with an exact two-sum difference and one Newton correction of the quotient, and
    match ``float32(float64 value)`` (see :func:`host_close_relative_offsets`). Without them the
    float32 prices are all there is: ``|1 - H/C|`` in float32 (relative error ~1e-5 here, since
    ``H/C`` is rounded near 1).
    """
    h, l, c = (jnp.asarray(x, f32) for x in (high, low, close))
    safe = jnp.where(c == 0, 1.0, c)
    if high_lo is None and low_lo is None and close_lo is None:

        def offset(x):
            return jnp.abs(1.0 - x / safe)
    else:
        c_lo = jnp.zeros_like(c) if close_lo is None else jnp.asarray(close_lo, f32)

        def offset(x, x_lo):
            x_lo = jnp.zeros_like(x) if x_lo is None else jnp.asarray(x_lo, f32)
            # d = (x + x_lo) - (c + c_lo) as hi + lo: two-sum of the leading parts, then the residuals
            s = x - c
            bb = s - x
            e = (x - (s - bb)) + (-c - bb)
            t = e + (x_lo - c_lo)
            d_hi = s + t
            d_lo = t - (d_hi - s)
            q = d_hi / safe
            # residual d - q * (c + c_lo), with q * c exact by Dekker's split (no FMA needed)
            p_hi, p_lo = _two_product(q, safe)
            r = ((d_hi - p_hi) - p_lo) + d_lo - q * c_lo
            return jnp.abs(q + r / safe)

        offsets = (offset(h, high_lo), offset(l, low_lo))
        return tuple(jnp.where((c != 0) & jnp.isfinite(k), k, 0.0) for k in offsets)

    return tuple(jnp.where((c != 0) & jnp.isfinite(k), k, 0.0) for k in (offset(h), offset(l)))


def _two_product(a, b):
    """``a * b = p + e`` exactly in float32 (Dekker: split each factor into 12-bit halves)."""

    def split(x):
        t = 4097.0 * x  # 2^12 + 1
        hi = t - (t - x)
        return hi, x - hi

    p = a * b
    a1, a2 = split(a)
    b1, b2 = split(b)
    e = ((a1 * b1 - p) + a1 * b2 + a2 * b1) + a2 * b2
    return p, e


def split_float64(x) -> tuple[np.ndarray, np.ndarray]:
    """Host: float64 values as float32 ``(hi, lo)`` with ``hi + lo`` = ``x`` to ~2^-48 relative."""
    x = np.asarray(x, np.float64)
    hi = x.astype(np.float32)
    return hi, (x - hi.astype(np.float64)).astype(np.float32)


def host_close_relative_offsets(high, low, close) -> tuple[np.ndarray, np.ndarray]:
    """Host: the original's offsets, ``float32(|1 - H/C|)`` computed in float64 (0 where C = 0 or
    non-finite), per row. The reference of :func:`close_relative_offsets`."""
    h, l, c = (np.asarray(x, np.float64) for x in (high, low, close))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = []
        for x in (h, l):
            k = np.abs(1.0 - x / np.where(c == 0, 1.0, c))
            out.append(np.where((c != 0) & np.isfinite(k), k, 0.0).astype(np.float32))
    return out[0], out[1]


def _levels(actual_close, actual_high, actual_low, high_pred, low_pred, k_high, k_low):
    c, ah, al, fh, fl, kh, kl = (
        jnp.asarray(x, f32) for x in (actual_close, actual_high, actual_low, high_pred, low_pred, k_high, k_low)
    )
    return c, ah + kh, al - kl, fh + kh, fl - kl


def _fit(optimizer, c, h, hp, l, lp, positions, eods, fee):
    """``(len(eods), 2)`` multipliers of one problem, one pair per eod policy: one call vmapped over
    the policies (a traced ``close_at_eod``) when the optimizer accepts that (``optimizer.traced_eod``),
    else one call per policy; non-finite offsets map to 0."""
    fit = lambda eod: jnp.asarray(optimizer(c, h, hp, l, lp, positions, close_at_eod=eod, fee=fee), f32)
    if len(eods) > 1 and getattr(optimizer, "traced_eod", False):
        m = jax.vmap(fit)(jnp.asarray(eods))
    else:
        m = jnp.stack([fit(eod) for eod in eods])
    return jnp.where(jnp.isfinite(m), m, 0.0)


def fit_multipliers(
    rows, actual_close, actual_high, actual_low, high_pred, low_pred, k_high, k_low, *, fee, optimizer, crypto=False
) -> dict[Strategy, Array]:
    r"""The multipliers of each fitted strategy of ``rows`` (:data:`FITTED_FUNCTIONS` rows) for both eod
    policies, ``{row: (2, 2)}`` (row ``e`` = eod ``bool(e)``), as each strategy would fit them itself.

    The strategies fit the same levels ``c, h, hp, l, lp`` with their own positions
    (:func:`fit_positions`). When the optimizer accepts a traced ``close_at_eod``
    (``optimizer.traced_eod``), the positions are padded to the most rows with zero rows (a zero
    position adds exactly 0 to every sum of PF and of its smooth surrogate) and one optimizer call is
    vmapped over every (strategy, policy) problem: one search in the program instead of four. Else
    one call per problem.
    """
    c, h, l, hp, lp = _levels(actual_close, actual_high, actual_low, high_pred, low_pred, k_high, k_low)
    eods = (False, True)
    rows = tuple(rows)
    positions = [fit_positions(row, hp, lp, crypto=crypto) for row in rows]
    if not getattr(optimizer, "traced_eod", False):
        return {row: _fit(optimizer, c, h, hp, l, lp, q, eods, fee) for row, q in zip(rows, positions)}
    n = max(q.shape[0] for q in positions)
    q = jnp.stack([jnp.concatenate([q, jnp.zeros((n - q.shape[0],) + q.shape[1:], f32)]) for q in positions])
    m = jax.vmap(lambda qr: _fit(optimizer, c, h, hp, l, lp, qr, eods, fee))(q)
    return {row: m[i] for i, row in enumerate(rows)}


def _choose(candidates, score):
    """Pick between the eod=False and eod=True candidates: True only if better by more than a tie
    (:func:`jaxsim.sim.ties.beats`: scores within a few float32 steps are tied, and False wins)."""
    if len(candidates) == 1:
        return candidates[0][1]
    (_, a), (_, b) = candidates
    take_b = ties.beats(score(b), score(a))
    return jax.tree.map(lambda x, y: jnp.where(take_b, y, x), a, b)


def _split12(x):
    """``x = hi + lo`` with ``hi`` the leading 12 significand bits (cleared by an integer mask, so no
    float operation a compiler could fuse) and ``lo`` the rest (exact)."""
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32) & jnp.uint32(0xFFFFF000)
    hi = jax.lax.bitcast_convert_type(bits, f32)
    return hi, x - hi


_W_HI = float((np.float32(OPTIMIZED_WEIGHT).view(np.uint32) & np.uint32(0xFFFFF000)).view(np.float32))
_W_LO = float(np.float32(OPTIMIZED_WEIGHT) - np.float32(_W_HI))  # OPTIMIZED_WEIGHT = _W_HI + _W_LO in float32


def _plus_weighted(b, o):
    """``b + OPTIMIZED_WEIGHT * o`` in float32, the same bits whatever the batch shape.

    ``b + w * o`` written plainly is one FMA in some programs and a rounded product plus a sum in
    others (XLA's fusion, and so LLVM's contraction, follows the batch shape: 1 ulp apart between
    ``sim_chunk`` values). Here ``w * o`` is the sum of four exact products of 12-bit halves, which
    contraction cannot change, added to ``b`` with an exact two-sum of the leading part: the FMA's
    correctly rounded value but for rare double roundings. Non-finite ``o``: the plain form.
    """
    o_hi, o_lo = _split12(o)
    p = _W_HI * o_hi
    s = b + p
    bb = s - b
    err = (b - (s - bb)) + (p - bb)
    exact = s + (((_W_HI * o_lo + _W_LO * o_hi) + _W_LO * o_lo) + err)
    return jnp.where(jnp.isfinite(o), exact, b + OPTIMIZED_WEIGHT * o)


def _adjusted(row: Strategy, baseline, optimised, days_per_year):
    b = evaluate_daily_returns(baseline, days_per_year)
    o = evaluate_daily_returns(optimised, days_per_year)
    # every adjusted metric b + 0.3 o in one call (exact, whatever the batch shape: _plus_weighted)
    total, sharpe, avg, annual = _plus_weighted(
        *(jnp.stack([m.total, m.sharpe, m.avg_daily, m.annual]) for m in (b, o))
    )
    return {
        row.field("return"): total,
        row.field("sharpe"): sharpe,
        row.field("avg_daily_return"): avg,
        row.field("annual_return"): annual,
        row.final_day: optimised[-1],
        row.field("turnover"): jnp.mean(jnp.abs(optimised)),
        row.field("baseline_return"): b.total,
        row.field("optimized_return"): o.total,
        row.field("adjusted_return"): total,
    }


def _fit_fields(row: Strategy, m, high_price, low_price) -> dict:
    """The fitted multipliers (mh, ml) and the limit prices ``high_price (1 + mh)``, ``low_price (1 + ml)``."""
    return {
        row.fit.high_multiplier: m[0],
        row.fit.low_multiplier: m[1],
        row.fit.high_price: jnp.asarray(high_price, f32) * (1.0 + m[0]),
        row.fit.low_price: jnp.asarray(low_price, f32) * (1.0 + m[1]),
    }


def _zero_unless(ok, record):
    ok = jnp.asarray(ok, bool)
    return {k: jnp.where(ok, v, jnp.zeros_like(v)) for k, v in record.items()}


def _candidates(close_at_eod):
    """The eod policies tried: both (None), or the one given (a bool, or a traced bool scalar)."""
    if close_at_eod is None:
        return (False, True)
    return (bool(close_at_eod),) if isinstance(close_at_eod, (bool, np.bool_)) else (close_at_eod,)


def _fitted(multipliers, optimizer, c, h, hp, l, lp, positions, eods, fee):
    """Each candidate policy's multipliers: ``multipliers`` (fitted elsewhere, ``(2, 2)`` per policy
    or ``(2,)`` for the one given) or the optimizer's."""
    if multipliers is None:
        return _fit(optimizer, c, h, hp, l, lp, positions, eods, fee)
    m = jnp.asarray(multipliers, f32)
    if m.ndim == 1:
        return m[None]
    return m if len(eods) == 2 else m[jnp.asarray(eods[0], jnp.int32)][None]


def maxdiff_positions(high_pred, low_pred, *, crypto: bool = False) -> Array:
    r"""MaxDiff's position of each day at the close-relative levels hp, lp, ``(days,)``:
    :math:`q_i = [lp_i < hp_i]\,(+1 \text{ if } |hp_i| > |lp_i| \text{ else } -1\ (\text{crypto: } 0))`."""
    hp, lp = jnp.asarray(high_pred, f32), jnp.asarray(low_pred, f32)
    q = jnp.where(jnp.abs(hp) > jnp.abs(lp), 1.0, 0.0 if crypto else -1.0)
    return jnp.where(lp < hp, q, 0.0).astype(f32)


def always_on_positions(like, *, crypto: bool = False) -> Array:
    """Always-on's two position rows, ``(2, days)``: a buy row of +1 and a sell row of -1 (crypto 0)."""
    buy = jnp.ones_like(like)
    return jnp.stack([buy, jnp.zeros_like(like) if crypto else -buy])


def fit_positions(row: Strategy, high_pred, low_pred, *, crypto: bool = False) -> Array:
    """The ``(P, days)`` positions the multiplier optimizer of ``row`` (a :data:`FITTED_FUNCTIONS` row) fits
    on, at the close-relative levels hp, lp."""
    if row == MAXDIFF:
        return maxdiff_positions(high_pred, low_pred, crypto=crypto)[None]
    if row == MAXDIFF_ALWAYS_ON:
        return always_on_positions(jnp.asarray(high_pred, f32), crypto=crypto)
    raise ValueError(f"{row.name!r} has no fitted multipliers")


def maxdiff_strategy(
    actual_close,
    actual_high,
    actual_low,
    high_pred,
    low_pred,
    k_high,
    k_low,
    high_price,
    low_price,
    *,
    fee,
    optimizer,
    crypto: bool = False,
    days_per_year=252,
    close_at_eod: bool | None = None,
    enough_history=True,
    multipliers=None,
) -> dict[str, Array]:
    r"""MaxDiff (5.7): one position a day at the predicted levels, multipliers fitted per eod policy.

    .. math::

        valid_i = [lp_i < hp_i],\qquad q_i = valid_i\cdot\begin{cases}+1 & |hp_i| > |lp_i|\\
        -1\ (\text{crypto: } 0) & \text{otherwise}\end{cases}

        base = PF(c, h, hp, l, lp, q; eod),\quad (m_h, m_l) = \text{optimizer}(\dots; eod),\quad
        final = PF(c, h, hp + m_h, l, lp + m_l, q; eod)

    for eod in (False, True) (only ``close_at_eod`` if given); eod=True is kept only if
    :math:`\sum final` is larger by more than a tie (:mod:`jaxsim.sim.ties`: a few float32 steps).
    With B = E_sum(base), O = E_sum(final): every metric is :math:`B + 0.3\,O`; the daily series is
    ``final``; limit prices are ``high_price (1 + m_h)``, ``low_price (1 + m_l)``.

    Args:
      actual_close, actual_high, actual_low: aC, aH, aL, ``(days,)``.
      high_pred, low_pred: fH, fL, ``(days,)``.
      k_high, k_low: close-relative offsets kH, kL of :func:`close_relative_offsets`, ``(days,)``.
      high_price, low_price: predicted High/Low prices H[e](1+P_H[6]), L[e](1+P_L[6]) (scalars).
      fee: dynamic scalar. optimizer: the protocol of :mod:`jaxsim.sim.simulation` (static; the
        default is :func:`jaxsim.optimize.default_optimizer`, resolved by the program's setup).
      crypto, days_per_year: static. close_at_eod: None (both policies tried), a bool, or a traced
        bool scalar (that policy's PF, :func:`jaxsim.sim.profit.by_policy`).
      enough_history: bool scalar; False (fewer than days+2 rows) gives the all-zero result.
      multipliers: fitted elsewhere: ``(2, 2)``, one pair per policy (False, True), or ``(2,)`` for the
        one policy given (:func:`fit_multipliers`; the walk-forward protocol's earlier fits); None:
        fitted here with ``optimizer``.

    Returns:
      ``maxdiff_{return,sharpe,avg_daily_return,annual_return,finalday_return,turnover,
      baseline_return,optimized_return,adjusted_return,long_count,short_count,trade_count,
      primary_side,trade_bias,valid_count,invalid_count,close_at_eod}`` and
      ``maxdiffprofit_{profit,profit_values,profit_high_multiplier,profit_low_multiplier,
      high_price,low_price}``.
    """
    c, h, l, hp, lp = _levels(actual_close, actual_high, actual_low, high_pred, low_pred, k_high, k_low)
    valid = lp < hp
    q = maxdiff_positions(hp, lp, crypto=crypto)

    eods = _candidates(close_at_eod)
    fitted = _fitted(multipliers, optimizer, c, h, hp, l, lp, q[None], eods, fee)
    cands = []
    for eod, m in zip(eods, fitted):
        base = by_policy(eod, lambda e: profit_values(c, h, hp, l, lp, q, close_at_eod=e, fee=fee))
        final = by_policy(eod, lambda e, m=m: profit_values(c, h, hp + m[0], l, lp + m[1], q, close_at_eod=e, fee=fee))
        cands.append((eod, (base, final, m, jnp.asarray(eod))))
    base, final, m, eod = _choose(cands, lambda cand: jnp.sum(cand[1]))

    n_long, n_short = jnp.sum(q > 0), jnp.sum(q < 0)
    n_trades = jnp.sum(q != 0)
    q_sum = jnp.sum(q)
    record = _adjusted(MAXDIFF, base, final, days_per_year)
    record.update(
        {
            "maxdiffprofit_profit": record[MAXDIFF.field("return")],
            "maxdiffprofit_profit_values": final,
            **_fit_fields(MAXDIFF, m, high_price, low_price),
            "maxdiff_long_count": n_long.astype(jnp.int32),
            "maxdiff_short_count": n_short.astype(jnp.int32),
            "maxdiff_trade_count": n_trades.astype(jnp.int32),
            # buy if only longs, sell if only shorts, else by the sign of sum(q): all equal sign(sum q)
            "maxdiff_primary_side": jnp.sign(q_sum).astype(jnp.int32),
            "maxdiff_trade_bias": jnp.where(n_trades > 0, q_sum / jnp.maximum(n_trades, 1), 0.0),
            "maxdiff_valid_count": jnp.sum(valid).astype(jnp.int32),
            "maxdiff_invalid_count": jnp.sum(~valid).astype(jnp.int32),
            "maxdiff_close_at_eod": eod,
        }
    )
    return _zero_unless(enough_history, record)


def maxdiff_always_on_strategy(
    actual_close,
    actual_high,
    actual_low,
    high_pred,
    low_pred,
    k_high,
    k_low,
    high_price,
    low_price,
    *,
    fee,
    optimizer,
    crypto: bool = False,
    days_per_year=252,
    close_at_eod: bool | None = None,
    enough_history=True,
    multipliers=None,
) -> dict[str, Array]:
    r"""MaxDiff always-on (5.8): a buy AND a sell order every day, no validity mask.

    .. math::

        buy_i = PF(c, h, hp + m_h, l, lp + m_l, +1; eod),\quad
        sell_i = PF(c, h, hp + m_h, l, lp + m_l, -1; eod)\ (\text{crypto: } 0)

    with (m_h, m_l) from the optimizer on positions ``[[+1...], [-1...] or [0...]]``, for eod in
    (False, True); eod=True kept only if :math:`\sum(buy + sell)` is larger by more than a tie.
    O = buy + sell; the baseline is :math:`PF(\cdot, +1; \text{False}) + PF(\cdot, -1; \text{False})`
    ALWAYS with eod=False (docs/deviations.md#kept-always-on-baseline-eod). Metrics are :math:`B + 0.3\,O` as in
    docs/backtest.md#maxdiff; trade bias = :math:`(\sum buy - \sum sell) / \sum |O|` (0 if that is 0).

    Args: as :func:`maxdiff_strategy`.

    Returns:
      ``maxdiffalwayson_{return,sharpe,avg_daily_return,annual_return,finalday_return,turnover,
      baseline_return,optimized_return,adjusted_return,profit,profit_values,high_multiplier,
      low_multiplier,high_price,low_price,buy_contribution,sell_contribution,filled_buy_trades,
      filled_sell_trades,trades_total,trade_bias,close_at_eod}``.
    """
    c, h, l, hp, lp = _levels(actual_close, actual_high, actual_low, high_pred, low_pred, k_high, k_low)
    positions = always_on_positions(c, crypto=crypto)
    buy_q, sell_q = positions

    def side_returns(hp_, lp_, eod):
        def sides(e):
            buy = profit_values(c, h, hp_, l, lp_, buy_q, close_at_eod=e, fee=fee)
            sell = jnp.zeros_like(c) if crypto else profit_values(c, h, hp_, l, lp_, sell_q, close_at_eod=e, fee=fee)
            return buy, sell

        return by_policy(eod, sides)

    eods = _candidates(close_at_eod)
    fitted = _fitted(multipliers, optimizer, c, h, hp, l, lp, positions, eods, fee)
    cands = []
    for eod, m in zip(eods, fitted):
        buy, sell = side_returns(hp + m[0], lp + m[1], eod)
        cands.append((eod, (buy, sell, m, jnp.asarray(eod))))
    buy, sell, m, eod = _choose(cands, lambda cand: jnp.sum(cand[0] + cand[1]))
    optimised = buy + sell
    base_buy, base_sell = side_returns(
        hp, lp, False
    )  # docs/deviations.md#kept-always-on-baseline-eod: always eod=False

    record = _adjusted(MAXDIFF_ALWAYS_ON, base_buy + base_sell, optimised, days_per_year)
    n_buy = jnp.sum(buy != 0).astype(jnp.int32)
    n_sell = jnp.sum(sell != 0).astype(jnp.int32)
    gross = jnp.sum(jnp.abs(optimised))
    bias = (jnp.sum(buy) - jnp.sum(sell)) / jnp.where(gross == 0, 1.0, gross)
    record.update(
        {
            "maxdiffalwayson_profit": record[MAXDIFF_ALWAYS_ON.field("return")],
            "maxdiffalwayson_profit_values": optimised,
            **_fit_fields(MAXDIFF_ALWAYS_ON, m, high_price, low_price),
            "maxdiffalwayson_buy_contribution": jnp.sum(buy),
            "maxdiffalwayson_sell_contribution": jnp.sum(sell),
            "maxdiffalwayson_filled_buy_trades": n_buy,
            "maxdiffalwayson_filled_sell_trades": n_sell,
            "maxdiffalwayson_trades_total": n_buy + n_sell,
            "maxdiffalwayson_trade_bias": jnp.where(gross == 0, 0.0, bias),
            "maxdiffalwayson_close_at_eod": eod,
        }
    )
    return _zero_unless(enough_history, record)


def limit_inputs(days: SimulationDays) -> tuple:
    """The positional inputs of :func:`maxdiff_strategy` and :func:`maxdiff_always_on_strategy`:
    ``(aC, aH, aL, fH, fL, kH, kL, high_price, low_price)``."""
    d = days
    return (
        d.actual_close,
        d.actual_high,
        d.actual_low,
        d.high_pred,
        d.low_pred,
        d.k_high,
        d.k_low,
        d.high_price,
        d.low_price,
    )


# table row -> its strategy function (the walk_forward protocol re-scores them with earlier fits)
FITTED_FUNCTIONS = {MAXDIFF: maxdiff_strategy, MAXDIFF_ALWAYS_ON: maxdiff_always_on_strategy}


def _record(row: Strategy, strategy) -> RecordFunction:
    """``strategy`` scored on one simulation's days with the rules' optimizer (both eod policies tried),
    or with the multipliers of ``rules.fits`` when the caller fitted them already
    (:func:`fit_multipliers`, one search for every fitted strategy)."""

    def record(days: SimulationDays, rules: Scoring) -> dict[str, Array]:
        return strategy(
            *limit_inputs(days),
            fee=rules.fee,
            optimizer=rules.optimizer,
            crypto=rules.crypto,
            days_per_year=rules.days_per_year,
            enough_history=days.enough_history,
            multipliers=None if rules.fits is None else rules.fits[row],
        )

    return record


def fit_rules(days: SimulationDays, rules: Scoring) -> Scoring:
    """``rules`` with the multipliers of every fitted strategy (:func:`fit_multipliers`) in its ``fits``."""
    return rules._replace(
        fits=fit_multipliers(
            FITTED_FUNCTIONS, *limit_inputs(days)[:7], fee=rules.fee, optimizer=rules.optimizer, crypto=rules.crypto
        )
    )


# table row -> its fields for one simulation (jaxsim.sim.simulation.simulation_fields)
RECORDS: dict[Strategy, RecordFunction] = {row: _record(row, fn) for row, fn in FITTED_FUNCTIONS.items()}
