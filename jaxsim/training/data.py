"""Training data for jaxsim's own Toto-architecture models: return series and window batches.

The backtester feeds Toto *fractional close-to-close changes* ``r_X[t] = X[t]/X[t-1] - 1`` of each
price column X (docs/backtest.md#return-transform), one univariate context per call, left-padded with zeros to a
multiple of the patch (64). Training uses the same units: every (symbol, column) pair of the
bundled public-domain samples is one series ``r_X[1..T-1]`` (the artefact ``r_X[0] = 1`` is dropped),
split by date into a training part and a held-out part (the last ~2 years).

Window batches are drawn on the host with a seeded NumPy generator (so a run is reproducible and
the jitted step sees fixed shapes): a batch of ``B`` windows of ``n`` patches holds, for each window,
the ``n*P - q`` returns that end at a random training row, left-padded by ``q ~ U{0..P-1}`` invalid
zeros, exactly as the forecaster pads a context of that length. Several ``n`` (window sizes) are
cycled so the model sees short and long contexts; each size compiles the step once.

Everything here is NumPy; nothing touches JAX.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from jaxsim.data.prices import sample
from jaxsim.errors import ConfigError, InsufficientHistoryError

__all__ = [
    "COLUMNS",
    "StockSeries",
    "fractional_changes",
    "stock_series",
    "load_series",
    "Batch",
    "WindowSampler",
    "heldout_origins",
]

COLUMNS = ("open", "high", "low", "close")


@dataclasses.dataclass(frozen=True, eq=False)
class StockSeries:
    """One stock's aligned return series (index j is the return of data row j+1).

    Attributes:
      symbol: ticker.
      dates: ``(T-1,)`` datetime64[D], the date of each return.
      returns: ``(4, T-1)`` float32, r_X for X in :data:`COLUMNS` (open, high, low, close).
      k_high, k_low: ``(T-1,)`` float32 MaxDiff offsets of the previous row,
        ``|1 - H[t-1]/C[t-1]|`` and ``|1 - L[t-1]/C[t-1]|`` (docs/backtest.md#maxdiff-offsets).
      train_end: number of leading returns dated before the held-out start.
    """

    symbol: str
    dates: np.ndarray
    returns: np.ndarray
    k_high: np.ndarray
    k_low: np.ndarray
    train_end: int


def fractional_changes(x: np.ndarray) -> np.ndarray:
    """``x[t]/x[t-1] - 1`` for t >= 1 in float32 (0 where undefined), shape ``(T-1,)``."""
    x = np.asarray(x, np.float64)
    prev = x[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(prev == 0, 0.0, x[1:] / np.where(prev == 0, 1.0, prev) - 1.0)
    return np.where(np.isfinite(r), r, 0.0).astype(np.float32)


def stock_series(prices, holdout_start: str) -> StockSeries:
    """Build a :class:`StockSeries` from :class:`jaxsim.data.prices.Prices`; returns dated on or after
    ``holdout_start`` (ISO date) are held out."""
    rets = np.stack([fractional_changes(getattr(prices, c)) for c in COLUMNS])
    c = np.asarray(prices.close, np.float64)[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        kh = np.abs(1.0 - np.asarray(prices.high, np.float64)[:-1] / c)
        kl = np.abs(1.0 - np.asarray(prices.low, np.float64)[:-1] / c)
    kh = np.where(np.isfinite(kh), kh, 0.0).astype(np.float32)
    kl = np.where(np.isfinite(kl), kl, 0.0).astype(np.float32)
    dates = np.asarray(prices.dates[1:], "datetime64[D]")
    train_end = int(np.searchsorted(dates, np.datetime64(holdout_start, "D")))
    return StockSeries(prices.symbol, dates, rets, kh, kl, train_end)


def load_series(symbols: Sequence[str], holdout_start: str, *, adjusted: bool = True) -> list[StockSeries]:
    """The bundled samples ``symbols`` as :class:`StockSeries` (adjusted prices by default, so
    splits do not appear as -50% days)."""
    return [stock_series(sample(s, adjusted=adjusted), holdout_start) for s in symbols]


@dataclasses.dataclass(frozen=True)
class Batch:
    """A window batch: ``x`` float32 ``(B, n*P)`` (zeros where invalid), ``valid`` bool ``(B, n*P)``.

    For the P&L objective also ``close``, ``high``, ``low`` actual returns and ``k_high``, ``k_low``
    offsets, each ``(B, n*P)`` aligned with ``x`` (which then holds high returns in rows ``:B`` and
    low returns in rows ``B:`` -- see :meth:`WindowSampler.pnl_batch`).
    """

    x: np.ndarray
    valid: np.ndarray
    extras: dict | None = None


class WindowSampler:
    """Seeded sampler of training windows from the training part of each series.

    Args:
      series: the stocks.
      patch: P.
      columns: indices into :data:`COLUMNS` used for the NLL objective.
      seed: NumPy generator seed.
    """

    def __init__(self, series: Sequence[StockSeries], patch: int, columns: Sequence[int], seed: int):
        if not series:
            raise ConfigError("no training series")
        self.series = list(series)
        self.patch = patch
        self.columns = tuple(columns)
        self.rng = np.random.default_rng(seed)

    def _long_enough(self, length: int) -> list[int]:
        """Indices of the series whose training part holds at least ``length`` returns."""
        return [i for i, s in enumerate(self.series) if s.train_end >= length]

    def _draw(self, batch: int, n_patches: int):
        """Random (stock, end, pad) triples; window = returns[end - (W - pad) : end]."""
        w = n_patches * self.patch
        pads = self.rng.integers(0, self.patch, size=batch)
        ok = self._long_enough(w)
        if not ok:
            longest = max(s.train_end for s in self.series)
            raise InsufficientHistoryError(
                f"no series has {w} training returns for a {n_patches}-patch window (longest: {longest})"
            )
        stocks = self.rng.integers(0, len(ok), size=batch)
        out = []
        for b in range(batch):
            i = ok[stocks[b]]
            need = w - int(pads[b])
            end = int(self.rng.integers(need, self.series[i].train_end + 1))
            out.append((i, end, int(pads[b])))
        return out, w

    @staticmethod
    def _window(arr: np.ndarray, end: int, w: int, pad: int) -> np.ndarray:
        out = np.zeros(w, np.float32)
        out[pad:] = arr[end - (w - pad) : end]
        return out

    def nll_batch(self, batch: int, n_patches: int) -> Batch:
        """``batch`` windows of ``n_patches`` patches from random (stock, column) series."""
        draws, w = self._draw(batch, n_patches)
        cols = self.rng.integers(0, len(self.columns), size=batch)
        x = np.stack(
            [self._window(self.series[i].returns[self.columns[c]], e, w, p) for (i, e, p), c in zip(draws, cols)]
        )
        valid = np.zeros((batch, w), bool)
        for b, (_, _, p) in enumerate(draws):
            valid[b, p:] = True
        return Batch(x, valid)

    def pnl_batch(self, batch: int, n_patches: int) -> Batch:
        """``batch`` stock windows for the P&L objective: rows ``:B`` of ``x`` are high returns and rows
        ``B:`` low returns of the same windows; extras hold close/high/low returns and k offsets."""
        draws, w = self._draw(batch, n_patches)
        hi, lo = COLUMNS.index("high"), COLUMNS.index("low")
        cl = COLUMNS.index("close")

        def stack(get):
            return np.stack([self._window(get(self.series[i]), e, w, p) for i, e, p in draws])

        high = stack(lambda s: s.returns[hi])
        low = stack(lambda s: s.returns[lo])
        valid = np.zeros((batch, w), bool)
        for b, (_, _, p) in enumerate(draws):
            valid[b, p:] = True
        extras = dict(
            close=stack(lambda s: s.returns[cl]),
            high=high,
            low=low,
            k_high=stack(lambda s: s.k_high),
            k_low=stack(lambda s: s.k_low),
        )
        return Batch(np.concatenate([high, low]), np.concatenate([valid, valid]), extras)


def heldout_origins(series: StockSeries, patch: int) -> dict[int, np.ndarray]:
    """Held-out origins j (index of the return to forecast, context ``returns[:j]``) grouped by the
    padded context length ``ceil(j / P) * P``, as the backtester's forecaster pads them."""
    js = np.arange(series.train_end, series.returns.shape[1])
    js = js[js >= 1]
    padded = -(-js // patch) * patch
    return {int(L): js[padded == L] for L in np.unique(padded)}
