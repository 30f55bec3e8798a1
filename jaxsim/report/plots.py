"""Figures of a backtest, drawn from plain inputs (pandas frames, numpy arrays).

Every function builds a :class:`PlotFigure` (a :class:`matplotlib.figure.Figure`) directly: nothing
here imports ``matplotlib.pyplot`` or calls ``matplotlib.use``, so the user's backend and pyplot's
figure list are never touched (a notebook's later plots keep working). A returned figure shows
inline as a cell's last value in Jupyter, with or without IPython's matplotlib integration (it has
``_repr_png_``); :func:`figure_png` renders one to PNG bytes with the Agg canvas.

* :func:`equity_figure`: equity per strategy, buy-and-hold, and a drawdown panel.
* :func:`fan_figure`: one-step forecast bands (10-90%, 40-60%), point forecast and realised return per target.
* :func:`heatmap_figure`: the MaxDiff objective ``J(mh, ml)`` on a grid with the chosen multipliers.
* :func:`bootstrap_figure`: the bootstrap distribution of each strategy's Sharpe ratio.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "PlotFigure",
    "figure_png",
    "equity_from_returns",
    "drawdown_from_equity",
    "equity_figure",
    "fan_figure",
    "heatmap_figure",
    "bootstrap_figure",
]


class PlotFigure(Figure):
    """A matplotlib Figure that renders itself as PNG for IPython (``_repr_png_``).

    With IPython's matplotlib integration active (the inline backend) IPython's own Figure formatter
    is used instead; either way a cell shows one image.
    """

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of ``fig`` rendered by the Agg canvas (no pyplot, no backend switch)."""
    buf = io.BytesIO()
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.print_figure(buf, format="png", dpi=dpi)
    return buf.getvalue()


def equity_from_returns(daily: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """Equity ``prod_{s <= t} (1 + r_s)`` from daily simple returns (NaN days count as 0)."""
    return (1.0 + daily.astype(np.float64).fillna(0.0)).cumprod()


def drawdown_from_equity(equity: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """Drawdown ``E_t / max(1, max_{s <= t} E_s) - 1`` (<= 0; the start capital 1 counts as a peak)."""
    return equity / np.maximum(equity.cummax(), 1.0) - 1.0


def _strategy_colors(names) -> dict[str, tuple]:
    cmap = colormaps["tab10"]
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def equity_figure(
    daily: pd.DataFrame, benchmark: pd.Series | None = None, *, title: str = "", figsize=(9, 6)
) -> PlotFigure:
    """Equity per strategy (top) and its drawdown in percent (bottom), with buy-and-hold.

    Args:
      daily: date x strategy daily simple returns (fractions; NaN: no value that day).
      benchmark: a close-price Series; drawn as buy-and-hold equity ``C_t / C_0`` (dashed black),
        ``C_0`` the last close before the first date (else the first close), on the dates of ``daily``.
      title: figure title.

    Returns:
      a :class:`PlotFigure` with axes ``[equity, drawdown]``; one line per strategy in each (same
      order and colours), the buy-and-hold line last in both (labelled ``"buy & hold"``).
    """
    if not isinstance(daily, pd.DataFrame) or not isinstance(daily.index, pd.DatetimeIndex):
        raise TypeError("daily must be a DataFrame with a DatetimeIndex (date x strategy)")
    equity = equity_from_returns(daily)
    dd = drawdown_from_equity(equity) * 100.0
    colors = _strategy_colors(daily.columns)
    fig = PlotFigure(figsize=figsize)
    ax, ax_dd = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for name in daily.columns:
        ax.plot(equity.index, equity[name].to_numpy(), label=str(name), color=colors[name], lw=1.2)
        ax_dd.plot(dd.index, dd[name].to_numpy(), label=str(name), color=colors[name], lw=0.9)
    if benchmark is not None:
        close = benchmark.astype(np.float64).sort_index()
        before = close[close.index < daily.index[0]]
        start = before.iloc[-1] if len(before) else close.iloc[0]
        hold = close.reindex(daily.index, method="ffill") / start
        ax.plot(hold.index, hold.to_numpy(), "k--", lw=1.2, label="buy & hold")
        hold_dd = drawdown_from_equity(hold) * 100.0
        ax_dd.plot(hold_dd.index, hold_dd.to_numpy(), "k--", lw=0.9, label="buy & hold")
    ax.axhline(1.0, color="0.6", lw=0.6)
    ax.set_ylabel("equity (start = 1)")
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    ax.set_title(title or "equity per strategy")
    ax_dd.set_ylabel("drawdown [%]")
    ax_dd.set_xlabel("date")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def fan_figure(forecasts: Mapping[str, pd.DataFrame], *, title: str = "", figsize=None) -> PlotFigure:
    """Fan chart of one-step forecasts per target: 10-90% and 40-60% bands, point, realised.

    Args:
      forecasts: target -> DataFrame indexed by date with columns (fractions; all but ``point``
        optional): ``point`` (the point forecast), ``q0.1``, ``q0.5``, ``q0.9`` (quantiles of the
        draws), ``band`` (the P60-P40 width: drawn as ``q0.5 +- band / 2``, or around ``point``
        without ``q0.5``) and ``realised`` (the return that happened, NaN where not yet known).
      title: figure title.

    Returns:
      a :class:`PlotFigure` with one axes per target (in percent), titled by the target.
    """
    if not forecasts:
        raise ValueError("fan_figure needs at least one target")
    fig = PlotFigure(figsize=figsize or (9, 2.8 * len(forecasts) + 0.6))
    axes = np.atleast_1d(fig.subplots(len(forecasts), 1, sharex=True, squeeze=False)[:, 0])
    for ax, (target, frame) in zip(axes, forecasts.items()):
        if "point" not in frame:
            raise ValueError(f"forecasts[{target!r}] has no 'point' column")
        x = frame.index
        pct = {c: frame[c].to_numpy(np.float64) * 100.0 for c in frame.columns}
        if "q0.1" in pct and "q0.9" in pct:
            ax.fill_between(x, pct["q0.1"], pct["q0.9"], color="tab:blue", alpha=0.18, lw=0, label="10-90%")
        if "band" in pct:
            mid = pct.get("q0.5", pct["point"])
            ax.fill_between(
                x, mid - pct["band"] / 2, mid + pct["band"] / 2, color="tab:blue", alpha=0.4, lw=0, label="40-60%"
            )
        ax.plot(x, pct["point"], color="tab:blue", lw=1.2, label="point forecast")
        if "realised" in pct:
            ax.plot(x, pct["realised"], color="k", lw=0.9, marker=".", ms=3, label="realised")
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.set_title(str(target), fontsize=10)
        ax.set_ylabel("daily return [%]")
        ax.legend(fontsize=7, ncol=4, loc="upper left")
    axes[-1].set_xlabel("date")
    if title:
        fig.suptitle(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def heatmap_figure(mh, ml, values, chosen, *, title: str = "", figsize=(6.5, 5.2)) -> PlotFigure:
    """The objective ``J(mh, ml)`` on a grid, the chosen multipliers and the grid's best point.

    Args:
      mh: ``(Nh,)`` high multipliers (x axis); ml: ``(Nl,)`` low multipliers (y axis).
      values: ``(Nh, Nl)`` objective values, ``values[i, j] = J(mh[i], ml[j])``.
      chosen: ``(mh, ml)`` to mark (white star, labelled ``"chosen"``).
      title: axes title.

    Returns:
      a :class:`PlotFigure` with axes ``[heatmap, colorbar]``.
    """
    mh, ml, values = (np.asarray(a, np.float64) for a in (mh, ml, values))
    if values.shape != (mh.size, ml.size):
        raise ValueError(f"values of shape {values.shape} do not match mh {mh.shape} x ml {ml.shape}")
    fig = PlotFigure(figsize=figsize)
    ax = fig.subplots()
    mesh = ax.pcolormesh(mh, ml, values.T, shading="nearest", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="J (sum of daily P&L)")
    finite = np.where(np.isfinite(values), values, -np.inf)
    i, j = np.unravel_index(np.argmax(finite), values.shape)
    ax.plot([mh[i]], [ml[j]], "o", mfc="none", mec="r", ms=9, label=f"grid max J={values[i, j]:.4f}")
    ax.plot(
        [float(chosen[0])],
        [float(chosen[1])],
        "*",
        color="w",
        mec="k",
        ms=14,
        label=f"chosen ({float(chosen[0]):+.4f}, {float(chosen[1]):+.4f})",
    )
    ax.set_xlabel("mh (high multiplier)")
    ax.set_ylabel("ml (low multiplier)")
    ax.set_title(title or "MaxDiff objective J(mh, ml)", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def bootstrap_figure(
    samples: Mapping[str, np.ndarray],
    estimates: Mapping[str, float] | None = None,
    *,
    level: float = 0.95,
    title: str = "",
    bins: int = 40,
    figsize=None,
) -> PlotFigure:
    """Histogram of each strategy's bootstrapped Sharpe ratio, with its estimate and percentile interval.

    Args:
      samples: strategy -> ``(R,)`` resampled Sharpe ratios (NaN resamples are dropped).
      estimates: strategy -> the Sharpe ratio of the series itself (solid line).
      level: the interval drawn (shaded): ``[q_{(1-level)/2}, q_{(1+level)/2}]`` of the samples.
      title: figure title.

    Returns:
      a :class:`PlotFigure` with one axes per strategy (shared x), titled by the strategy; 0 dashed.
    """
    if not samples:
        raise ValueError("bootstrap_figure needs at least one strategy")
    names = list(samples)
    colors = _strategy_colors(names)
    fig = PlotFigure(figsize=figsize or (8, 1.1 * len(names) + 0.8))
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
    for ax, name in zip(axes, names):
        s = np.asarray(samples[name], np.float64)
        s = s[np.isfinite(s)]
        if s.size and np.ptp(s) > 0:
            ax.hist(s, bins=bins, color=colors[name], alpha=0.75)
        if s.size:
            lo, hi = np.quantile(s, [lo_q, hi_q])
            ax.axvspan(lo, hi, color=colors[name], alpha=0.12, lw=0)
            label = f"{level:.0%}: [{lo:+.2f}, {hi:+.2f}]"
        else:
            label = "no finite resample"
        if estimates is not None and np.isfinite(estimates.get(name, np.nan)):
            ax.axvline(float(estimates[name]), color="k", lw=1.2)
            label = f"Sharpe {float(estimates[name]):+.2f}, " + label
        ax.axvline(0.0, color="0.4", lw=0.8, ls="--")
        ax.set_yticks([])
        ax.set_title(f"{name}  ({label})", fontsize=8, loc="left", pad=2)
    axes[-1].set_xlabel("annualised Sharpe ratio (bootstrap resamples)")
    fig.suptitle(title or "bootstrap distribution of Sharpe", fontsize=10)
    fig.tight_layout()
    return fig
