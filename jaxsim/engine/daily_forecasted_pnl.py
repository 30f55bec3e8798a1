"""Forecasted P&L as of every day: the backtest's rule on each prefix of a strategy's series.

docs/backtest.md#daily-forecasted-pnl, docs/portfolio.md#forecast.

A backtest forecasts each strategy's ``<prefix>_avg_daily_return`` series once, from all of it
(:mod:`jaxsim.engine.forecasted_pnl`). A replay that decides day by day (the portfolio,
docs/portfolio.md#forecast) needs that forecast as it stood after each day: at position i of the
chronological series, the forecasted P&L of the next value from values 0..i only (an expanding
window). With n_i finite values among them and their mean m_i, the rule is the backtest's:

* n_i < 4: m_i; m_i < 0: m_i (NaN while n_i = 0);
* otherwise the median of the series forecaster's draws on those n_i values (Toto: 512 draws, the
  first 256 when n_i < 7; a point forecaster: its point); a non-finite median, or a forecaster that
  does not forecast return series (Kronos), gives m_i.

Counts and means are cumulative sums (float32 in the program for the rule's masks; the returned
means are recomputed in float64, as :func:`jaxsim.engine.forecasted_pnl.forecasted_pnl` does).

Contexts. Position i's context is its finite values only, in order, left-padded as the forecaster
pads one context (NaN dropped, as the official rule does). It depends on n_i only, so the program
forecasts each prefix of the compacted finite values (N per strategy) once and gathers it at every
position with that count. Toto: the prefix-shared pass (:func:`jaxsim.forecast.prefix.series_prefix_mixtures`,
one forward pass per class of prefix length mod 64, at most 64 per series whatever N is), then S
draws per prefix and their median, drawn a cache-sized chunk of prefixes at a time (only the medians stay).
Other forecasters: :meth:`Forecaster.forecast_group` on each prefix's context padded to the full
series' padded length (what the backtest gives the whole series), a chunk of prefixes at a time;
prefixes of fewer than 7 values with the forecaster's short-series settings (``series_forecaster(6)``:
a forecaster that draws its own count, such as the volatility baseline, draws 256 there, where a
backtest of N >= 7 simulations with fewer than 7 finite values takes the first 256 of 512).

Randomness: strategy j of a stock with key k draws with ``fold_in(fold_in(k, PNL_KEY_SALT), j)`` at
every position, the backtest's own key. So the value at position i is what a backtest whose series
ends at i would report with that stock key (the one a daily rerun of the loop would use), the last
position's value is the backtest's own ``<prefix>_forecasted_pnl``, and a day's value does not change
when later days are added. Days share their random numbers (common random numbers): day-to-day
changes come from the series, not from fresh sampling noise.

Cost: one jitted program per forecaster config and ``(B, P, N)`` shape (vmapped over stocks), apart
from the backtest program (an ordinary backtest compiles nothing more).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.engine.forecasted_pnl import (
    FEW,
    MIN_VALUES,
    MODEL,
    NEGATIVE,
    NONFINITE,
    PNL_KEY_SALT,
    UNSUPPORTED,
    source_names,
)
from jaxsim.errors import ConfigError
from jaxsim.forecast.forecasters import TotoForecaster
from jaxsim.forecast.interface import SERIES_FEW_DRAWS, SERIES_FEW_VALUES
from jaxsim.forecast.prefix import series_prefix_mixtures

__all__ = ["DRAW_LANES", "stock_daily_forecasted_pnl", "daily_forecasted_pnl"]

# Draws alive at once per lax.map step (prefixes x draws): cache-sized batches of the samplers.
DRAW_LANES = 8 * 3072


def _cumsum(x):
    # associative scan: O(N log N) (XLA:CPU's cumulative ops are windowed reductions, O(N^2))
    return jax.lax.associative_scan(jnp.add, x, axis=-1)


def _per_prefix(keys, n):
    """``(P,)`` keys -> ``(P * N,)``: strategy j's key for each of its N prefixes."""
    return jnp.broadcast_to(keys[:, None], (keys.shape[0], n)).reshape(-1)


def _median(draws, count):
    """The backtest's point of S draws: the median, of the first 256 when fewer than 7 values."""
    few = jnp.median(draws[..., :SERIES_FEW_DRAWS], axis=-1)
    return jnp.where(count < SERIES_FEW_VALUES, few, jnp.median(draws, axis=-1))


def _chunked_map(fn, xs, lanes: int):
    """``lax.map(fn, xs)`` a cache-sized chunk of entries at a time (about :data:`DRAW_LANES` values
    alive, ``lanes`` per entry), the entries padded (repeating the last) to a whole number of chunks:
    a remainder would compile the sampler a second time."""
    n = jax.tree.leaves(xs)[0].shape[0]
    chunk = max(1, min(n, DRAW_LANES // max(int(lanes), 1)))
    short = -n % chunk
    padded = jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], short, axis=0)]) if short else a, xs)
    return jax.lax.map(fn, padded, batch_size=chunk)[:n]


def _toto_prefix_points(sf: TotoForecaster, compact, valid, keys):
    """``(P, N)`` medians of the model at every prefix length 1..N of the compacted series."""
    p, n = compact.shape
    mixture = series_prefix_mixtures(sf.params, sf.config, compact, valid)  # leaves (P, N, ...)
    flat = jax.tree.map(lambda a: a.reshape((p * n,) + a.shape[2:]), mixture)
    flat_keys = _per_prefix(keys, n)
    counts = jnp.tile(jnp.arange(1, n + 1), p)
    fast = dataclasses.replace(sf, fast_sampler=True)  # the same values as jax.random's, faster on wide batches

    def one(args):
        k, mix, count = args
        return _median(fast._draw_one(k, mix), count)

    points = _chunked_map(one, (flat_keys, flat, counts), sf.num_samples)
    return points.reshape(p, n)


def _generic_prefix_points(forecaster, compact, valid, keys):
    """``(P, N)`` forecasts of every prefix length 1..N, each context padded like the whole series'.

    Prefixes of fewer than 7 values use the forecaster's short-series settings
    (``series_forecaster(6)``: 256 draws where it draws its own count), as a backtest of that many
    values would; the others ``series_forecaster(N)``."""
    p, n = compact.shape
    few = min(n, SERIES_FEW_VALUES - 1)
    parts = [_prefix_range(forecaster.series_forecaster(few), compact, valid, keys, 1, few)]
    if n > few:
        parts.append(_prefix_range(forecaster.series_forecaster(n), compact, valid, keys, few + 1, n))
    return jnp.concatenate(parts, axis=-1)


def _prefix_range(sf, compact, valid, keys, first: int, last: int):
    """``(P, last - first + 1)`` forecasts of ``sf`` at prefix lengths ``first..last`` (static)."""
    p, n = compact.shape
    length = sf.pad_context(compact[0])[0].shape[-1]  # static: the backtest's context length for N values
    offsets = jnp.arange(length)

    def one(args):
        j, m, k = args
        index = m - length + offsets  # the prefix's values end at the right edge
        inside = index >= 0
        clipped = jnp.clip(index, 0, n - 1)
        ok = inside & valid[j, clipped]
        context = jnp.where(ok, compact[j, clipped], 0.0)
        out = sf.forecast_group(context[None, None], ok[None], k[None, None])
        if out.samples is None:  # a point forecast: its own median
            return out.point[0, 0]
        return _median(out.samples[0, 0], m)

    size = last - first + 1
    js = jnp.repeat(jnp.arange(p), size)
    ms = jnp.tile(jnp.arange(first, last + 1), p)
    lanes = max(sf.draws_per_context() or 1, length)  # a context and its draws per entry
    points = _chunked_map(one, (js, ms, _per_prefix(keys, size)), lanes)
    return points.reshape(p, size)


def stock_daily_forecasted_pnl(forecaster, series, key):
    """Forecasted P&L at every position of one stock's series (traceable).

    Args:
      forecaster: the forecaster (:meth:`~jaxsim.forecast.interface.Forecaster.series_forecaster` picks
        the one used on the series).
      series: ``(P, N)`` per-strategy ``avg_daily_return`` series, **oldest first** (NaN: no value).
      key: the stock's backtest key.

    Returns:
      ``(values, codes)``: float32 ``(P, N)`` (position i: the forecast of the value after i from values
      0..i) and int32 ``(P, N)`` indices into :data:`jaxsim.engine.forecasted_pnl.SOURCES`.
    """
    series = jnp.asarray(series, jnp.float32)
    p, n = series.shape
    finite = jnp.isfinite(series)
    count = _cumsum(finite.astype(jnp.int32))
    mean = _cumsum(jnp.where(finite, series, 0.0)) / count  # NaN before the first value
    code = jnp.where(count < MIN_VALUES, FEW, jnp.where(mean < 0, NEGATIVE, MODEL))
    if not forecaster.forecasts_return_series():  # static: the forecaster's kind
        code = jnp.where(code == MODEL, UNSUPPORTED, code)
        return mean, code.astype(jnp.int32)
    sf = forecaster.series_forecaster(n)
    # the finite values first, in order (prefix m of this row: the first m finite values)
    order = jnp.argsort(~finite, axis=-1, stable=True)
    compact_valid = jnp.arange(n) < finite.sum(-1, keepdims=True)
    compact = jnp.where(compact_valid, jnp.take_along_axis(series, order, axis=-1), 0.0)
    base = jax.random.fold_in(key, PNL_KEY_SALT)
    keys = jax.vmap(lambda j: jax.random.fold_in(base, j))(jnp.arange(p, dtype=jnp.uint32))
    if isinstance(sf, TotoForecaster):
        per_prefix = _toto_prefix_points(sf, compact, compact_valid, keys)
    else:
        per_prefix = _generic_prefix_points(forecaster, compact, compact_valid, keys)
    point = jnp.take_along_axis(per_prefix, jnp.maximum(count - 1, 0), axis=-1)
    code = jnp.where((code == MODEL) & ~jnp.isfinite(point), NONFINITE, code)
    return jnp.where(code == MODEL, point, mean), code.astype(jnp.int32)


def _batched(forecaster, series, keys):
    return jax.vmap(lambda s, k: stock_daily_forecasted_pnl(forecaster, s, k))(series, keys)


_batched_jit = jax.jit(_batched)


def daily_forecasted_pnl(forecaster, series, keys, *, stock_chunk: int | None = None):
    """Forecasted P&L as of every position of a batch of stocks' strategy series (module docstring).

    Args:
      forecaster: a forecaster (the backtest's, for values equal to its ``<prefix>_forecasted_pnl``).
      series: ``(B, P, N)`` per-strategy ``avg_daily_return`` series, **oldest first** (NaN: none that
        position; a stock's series may sit on a shared calendar with NaN on its missing days).
      keys: ``(B,)`` stock keys (``metadata["stock_key"]`` of each backtest).
      stock_chunk: stocks per call of the compiled program (None: all at once); the last chunk is
        padded with empty series, so every call has one shape (one compile).

    Returns:
      ``(values, sources)``: float64 ``(B, P, N)``, value ``[b, j, i]`` the forecast of the value after
      position i from positions 0..i (mean rules recomputed in float64), and the ``(B, P, N)`` names
      of the rule used (:data:`jaxsim.engine.forecasted_pnl.SOURCES`).
    """
    series = np.asarray(series, np.float64)
    if series.ndim != 3:
        raise ConfigError(f"daily_forecasted_pnl needs series of shape (stocks, strategies, N), got {series.shape}")
    keys = jnp.asarray(keys)
    b = series.shape[0]
    if keys.shape[:1] != (b,):
        raise ConfigError(f"daily_forecasted_pnl needs one key per stock: {b} stocks, keys {tuple(keys.shape)}")
    chunk = b if stock_chunk is None else max(1, min(int(stock_chunk), b))
    values, codes = [], []
    for start in range(0, b, chunk):
        part = series[start : start + chunk]
        part_keys = keys[start : start + chunk]
        short = chunk - part.shape[0]
        if short:  # empty series: every position the mean of nothing
            part = np.concatenate([part, np.full((short,) + part.shape[1:], np.nan)])
            part_keys = jnp.concatenate([part_keys, jnp.broadcast_to(part_keys[:1], (short,) + part_keys.shape[1:])])
        v, c = jax.device_get(_batched_jit(forecaster, jnp.asarray(part, jnp.float32), part_keys))
        values.append(np.asarray(v, np.float64)[: chunk - short])
        codes.append(np.asarray(c)[: chunk - short])
    values, codes = np.concatenate(values), np.concatenate(codes)
    finite = np.isfinite(series)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.cumsum(np.where(finite, series, 0.0), axis=-1) / np.cumsum(finite, axis=-1)
    return np.where(codes == MODEL, values, mean), source_names(codes)
