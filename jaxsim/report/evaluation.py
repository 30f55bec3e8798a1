"""Out-of-sample frames of one backtest: daily P&L, exposure, forecasts, draws, stats, skill, uncertainty.

The pandas edge between a :class:`jaxsim.report.result.BacktestResult` and :mod:`jaxsim.stats` (the
array code). Inputs are the result's records (row 0 the newest simulation) and its ``oos_*`` arrays
(:mod:`jaxsim.engine.oos`); every frame is chronological (oldest date first).

Daily P&L rule (:func:`daily_frame`): simulation k contributes the P&L of its final evaluation day, a
day no other simulation's final day covers (consecutive simulations end on consecutive rows).

Per row of :mod:`jaxsim.sim.strategy_table`:

* ``"signals"`` strategies (simple, all_signals, buy_hold, unprofit_shutdown): the final-day field
  ``s_5 R_5 - 2 fee SPREAD`` (buy_hold: ``R_5 - fee``), realised on row e_k: dated e_k.
* the others' final day is t_5 = e_k - 1, dated row e_k - 1, which is simulation k+1's row: for the
  day-trade strategies (entry_takeprofit, highlow) g_5, the P&L of day t_5 (``oos_finalday_*``; the
  records' final-day field is a six-day average); for the fitted ones (maxdiff, maxdiffalwayson) the
  last value of the optimised series (the final-day field). Under ``walk_forward`` only simulations
  of a fitted strategy with a fitted (earlier) window count (``walk_forward_fitted``); under
  ``legacy`` their multipliers were fitted on the same six days (look-ahead,
  docs/deviations.md#kept-in-sample-fit): ``daily.attrs["in_sample"]`` names them.
* user strategies (:mod:`jaxsim.sim.strategy`): their ``<name>_finalday`` field, the P&L of the
  last day: a ``"signals"`` strategy's on row e_k (dated as simple), an order strategy's on day
  t_5 (dated as maxdiff). Their parameters are whatever the backtest was given: tune them on an
  earlier window (:func:`jaxsim.tune`) for these days to be out of sample.

So the frame has one row per simulation date; the t_5 strategies have no value on the newest date
(its day t_5 belongs to simulation 0, dated one row earlier) and NaN marks days without a value.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsim.engine.oos import PREFIX, QUANTILES
from jaxsim.errors import ConfigError
from jaxsim.sim.strategy_table import FITTED, STRATEGIES, with_user
from jaxsim.stats.frames import bootstrap_frame
from jaxsim.stats.masked import masked_mean
from jaxsim.stats.selection import pbo_cscv, selection_stats
from jaxsim.stats.skill import forecast_skill
from jaxsim.stats.verdict import verdict

__all__ = [
    "IN_SAMPLE_LEGACY",
    "LabelledArray",
    "Uncertainty",
    "daily_frame",
    "exposure_frame",
    "buy_hold_closes",
    "forecasts_frame",
    "draws_array",
    "skill_frame",
    "uncertainty",
    "periods_per_year",
    "SKILL_COLUMNS",
]

IN_SAMPLE_LEGACY = tuple(s.name for s in FITTED)  # fitted on their own scoring days under legacy
_BUILTIN_NAMES = frozenset(s.name for s in STRATEGIES)


def periods_per_year(metadata: dict) -> int:
    """Trading days per year of the result's symbol: 365 under the crypto rule, else 252."""
    return 365 if metadata.get("crypto") else 252


def _chrono_dates(records: pd.DataFrame) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(records["date"].iloc[::-1], name="date")


def _placed(values: np.ndarray, signal: bool) -> np.ndarray:
    """Row-order ``(N,)`` values of one strategy -> chronological ``(N,)`` on the simulation dates."""
    v = np.asarray(values, np.float64)
    if not signal:  # simulation k's day t_5 is row e_k - 1 = simulation k+1's date; the newest date has none
        v = np.concatenate([[np.nan], v[:-1]])
    return v[::-1]


def daily_frame(
    records: pd.DataFrame, oos: dict[str, np.ndarray], protocol: str, user: dict[str, str] | None = None
) -> pd.DataFrame:
    """The out-of-sample daily P&L, date x strategy (fractions; see the module docstring for the rule).

    ``user`` maps each user strategy's name to its kind (:mod:`jaxsim.sim.strategy`); their columns
    follow the built-ins'.
    """
    cols = {}
    fitted = np.asarray(records["walk_forward_fitted"], bool) if "walk_forward_fitted" in records else None
    for s in with_user(tuple(user or ()), user):
        field = s.last_day_field if s.final_day_average else None  # the day's own P&L, where returned
        values = np.asarray(oos[field] if field in oos else records[s.final_day], np.float64).copy()
        if protocol == "walk_forward" and s.fit is not None and fitted is not None:
            values[~fitted] = np.nan
        cols[s.name] = _placed(values, s.signal)
    frame = pd.DataFrame(cols, index=_chrono_dates(records))
    frame.attrs["protocol"] = protocol
    frame.attrs["in_sample"] = list(IN_SAMPLE_LEGACY) if protocol == "legacy" else []
    return frame


def exposure_frame(daily: pd.DataFrame, oos: dict[str, np.ndarray], user: dict[str, str] | None = None) -> pd.DataFrame:
    """Days with a position, date x strategy (bool): the final-day position where the program returns
    it (``oos_position_*``; user signals and day-trade strategies too), else a non-zero P&L (MaxDiff and
    user limit strategies: a fill); False on days without a value. ``user``: as :func:`daily_frame`'s."""
    cols = {}
    user = user or {}
    for s in with_user([c for c in daily.columns if c not in _BUILTIN_NAMES], user):
        if s.position_field in oos:
            pos = _placed(np.asarray(oos[s.position_field], np.float64), s.signal)
            held = np.nan_to_num(pos) != 0
        else:
            held = daily[s.name].fillna(0).to_numpy() != 0
        cols[s.name] = held & daily[s.name].notna().to_numpy()
    return pd.DataFrame(cols, index=daily.index)


def buy_hold_closes(records: pd.DataFrame, oos: dict[str, np.ndarray]) -> pd.Series | None:
    """Closes of the simulation dates plus the close before the first one, C[e] / (1 + r_C[e]) (dated one
    day earlier: only its value is used), for ``Buy & Hold Return [%]``; None without ``oos`` fields."""
    if f"{PREFIX}close_realised" not in oos:
        return None
    close = np.asarray(records["close"], np.float64)[::-1]
    realised = np.asarray(oos[f"{PREFIX}close_realised"], np.float64)[::-1]
    dates = _chrono_dates(records)
    before = close[0] / (1.0 + realised[0]) if realised[0] != -1 else np.nan
    index = pd.DatetimeIndex([dates[0] - pd.Timedelta(days=1), *dates], name="date")
    return pd.Series(np.concatenate([[before], close]), index=index, name="close")


def forecasts_frame(records: pd.DataFrame, oos: dict[str, np.ndarray], targets) -> pd.DataFrame:
    """Each simulation's newest forecast and its realisation, date x (target, field).

    Fields: ``point`` (P_X[6], the one-step forecast of r_X[e] from rows up to e-1), ``band`` (P60-P40),
    ``q0.1``, ``q0.5``, ``q0.9`` (quantiles of the draws), ``realised`` (r_X[e]), ``crps``, ``pit``.
    """
    cols = {}
    for x in targets:
        if f"{PREFIX}{x}_point" not in oos:
            continue
        q = np.asarray(oos[f"{PREFIX}{x}_quantiles"], np.float64)[::-1]
        cols[(x, "point")] = np.asarray(oos[f"{PREFIX}{x}_point"], np.float64)[::-1]
        cols[(x, "band")] = np.asarray(oos[f"{PREFIX}{x}_band"], np.float64)[::-1]
        for j, level in enumerate(QUANTILES):
            cols[(x, f"q{level:g}")] = q[:, j]
        for field in ("realised", "crps", "pit"):
            cols[(x, field)] = np.asarray(oos[f"{PREFIX}{x}_{field}"], np.float64)[::-1]
    dates = _chrono_dates(records)
    if not cols:
        return pd.DataFrame(index=dates, columns=pd.MultiIndex.from_arrays([[], []], names=["target", "field"]))
    frame = pd.DataFrame(cols, index=dates)
    frame.columns.names = ["target", "field"]
    return frame


@dataclasses.dataclass(frozen=True)
class LabelledArray:
    """A numpy array with named axes (an xarray-free ``DataArray``): ``values``, ``dims``, ``coords``.

    ``coords[dim]`` labels the positions along ``dim`` (a list or an index); ``sel(target="close")``
    picks one label.
    """

    values: np.ndarray
    dims: tuple[str, ...]
    coords: dict[str, Any]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape

    def sel(self, **labels) -> LabelledArray:
        values, dims, coords = self.values, list(self.dims), dict(self.coords)
        for dim, label in labels.items():
            axis = dims.index(dim)
            pos = list(coords[dim]).index(label)
            values = np.take(values, pos, axis=axis)
            dims.pop(axis)
            coords.pop(dim)
        return LabelledArray(values, tuple(dims), coords)


def draws_array(records: pd.DataFrame, oos: dict[str, np.ndarray], targets) -> LabelledArray | None:
    """The draws of each simulation's newest forecast, dims ``("target", "date", "sample")``
    (chronological dates); None unless the backtest ran with ``return_samples=True``."""
    names = [x for x in targets if f"{PREFIX}{x}_draws" in oos]
    if not names:
        return None
    values = np.stack([np.asarray(oos[f"{PREFIX}{x}_draws"])[::-1] for x in names])
    return LabelledArray(
        values,
        ("target", "date", "sample"),
        {"target": names, "date": _chrono_dates(records), "sample": np.arange(values.shape[-1])},
    )


SKILL_COLUMNS = {
    "n_days": "N Days",
    "mae": "MAE",
    "rmse": "RMSE",
    "mae_naive": "MAE (naive)",
    "rmse_naive": "RMSE (naive)",
    "mae_skill": "MAE Skill",
    "rmse_skill": "RMSE Skill",
    "direction_n": "Direction N",
    "direction_accuracy": "Directional Accuracy [%]",
    "direction_pvalue": "Direction p-value",
    "crps": "CRPS",
    "crps_naive": "CRPS (naive)",
    "crps_skill": "CRPS Skill",
    "coverage_80": "Coverage 10-90 [%]",
    "pit_counts": "PIT Histogram",
}
_PERCENT = {"direction_accuracy", "coverage_80"}


def skill_frame(forecasts: pd.DataFrame, draws: LabelledArray | None = None, n_bins: int = 10) -> pd.DataFrame:
    """:func:`jaxsim.stats.skill.forecast_skill` per target of a :func:`forecasts_frame`: one row per
    target, columns :data:`SKILL_COLUMNS` (skills against the zero forecast; ``PIT Histogram`` is a
    list of ``n_bins`` counts).

    With ``draws`` the CRPS, band and PIT come from the draws themselves; without, from the per-day
    ``q0.1``/``q0.9``, ``crps`` and ``pit`` columns the program computed from the same draws (equal
    numbers). A day counts when its forecast and realisation are finite.
    """
    rows = {}
    for x in dict.fromkeys(forecasts.columns.get_level_values(0)):
        f = forecasts[x]
        point, realised = jnp.asarray(f["point"].to_numpy()), jnp.asarray(f["realised"].to_numpy())
        mask = jnp.asarray(np.isfinite(f["point"].to_numpy()) & np.isfinite(f["realised"].to_numpy()))
        if draws is not None and x in draws.coords["target"]:
            s = forecast_skill(
                point, realised, mask, draws=jnp.asarray(draws.sel(target=x).values, point.dtype), n_bins=n_bins
            )
        else:
            s = forecast_skill(
                point,
                realised,
                mask,
                band=(jnp.asarray(f["q0.1"].to_numpy()), jnp.asarray(f["q0.9"].to_numpy())),
                n_bins=n_bins,
            )
            m = np.asarray(mask) & np.isfinite(f["crps"].to_numpy())
            # the same float32 masked mean as the skill's naive score, so a zero forecast scores exactly 0
            crps = masked_mean(jnp.asarray(np.nan_to_num(f["crps"].to_numpy()), point.dtype), jnp.asarray(m))
            u = f["pit"].to_numpy()[m]
            counts = np.bincount(np.clip(np.floor(u * n_bins).astype(int), 0, n_bins - 1), minlength=n_bins)
            naive = s.crps_naive
            s = s._replace(
                crps=crps,
                crps_skill=jnp.where(naive > 0, 1 - crps / jnp.where(naive > 0, naive, 1), jnp.nan),
                pit_counts=counts,
            )
        s = jax.device_get(s)
        row = {}
        for field, label in SKILL_COLUMNS.items():
            value = np.asarray(getattr(s, field))
            if field == "pit_counts":
                row[label] = [int(c) for c in value]
            elif field in ("n_days", "direction_n"):
                row[label] = int(value)
            else:
                row[label] = float(value) * (100.0 if field in _PERCENT else 1.0)
        rows[x] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "target"
    return frame


@dataclasses.dataclass(frozen=True)
class Uncertainty:
    """Keyed uncertainty of a strategy set's out-of-sample daily P&L.

    Attributes:
      bootstrap: :func:`jaxsim.stats.frames.bootstrap_frame`: estimate / lower / upper of
        ``Mean Daily Return [%]``, ``Sharpe Ratio`` (annualised, arithmetic), ``CAGR [%]`` and the
        block length, one column per strategy.
      selection: one row per strategy: ``Sharpe (daily)`` (per-period, ddof 1), ``PSR`` (probability
        that the true Sharpe exceeds 0), ``Beats Zero`` (the bootstrap interval of the mean daily
        return lies above 0).
      best: the strategy with the highest Sharpe (the pick the DSR corrects).
      dsr: deflated Sharpe ratio of that pick given ``n_trials`` strategies tried.
      sr0: the per-period Sharpe the best of ``n_trials`` unskilled strategies reaches by luck.
      n_trials: strategies tried. pbo: probability of backtest overfitting (CSCV, ``n_blocks`` blocks;
        NaN when the series is too short).
      level: confidence level. verdict: the :func:`jaxsim.stats.verdict.verdict` line.
      in_sample: strategies whose parameters were fitted on the days they are scored
        (``daily.attrs["in_sample"]``: MaxDiff and always-on under ``legacy``).
    """

    bootstrap: pd.DataFrame
    selection: pd.DataFrame
    best: str
    dsr: float
    sr0: float
    n_trials: int
    pbo: float
    n_blocks: int
    level: float
    verdict: str
    in_sample: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "best": self.best,
            "dsr": self.dsr,
            "sr0": self.sr0,
            "n_trials": self.n_trials,
            "pbo": self.pbo,
            "n_blocks": self.n_blocks,
            "level": self.level,
            "verdict": self.verdict,
            "in_sample": list(self.in_sample),
            "selection": {
                k: {c: (bool(v) if c == "Beats Zero" else float(v)) for c, v in row.items()}
                for k, row in self.selection.to_dict(orient="index").items()
            },
        }

    def __str__(self) -> str:
        pbo = "n/a" if not np.isfinite(self.pbo) else f"{self.pbo:.2f}"
        note = f" [in sample under legacy: {', '.join(self.in_sample)}]" if self.in_sample else ""
        return (
            f"Verdict: {self.verdict}. Best Sharpe: {self.best} (DSR {self.dsr:.2f}); "
            f"PBO {pbo} ({self.n_blocks} CSCV blocks){note}"
        )


def _pbo_blocks(n_days: int, wanted: int = 16) -> int:
    b = min(wanted, (n_days // 2) // 2 * 2)  # even, at least 2 days per block
    return b if b >= 2 else 0


def uncertainty(
    key,
    daily: pd.DataFrame,
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    n_trials: int | None = None,
    n_blocks: int = 16,
    periods_per_year: int = 252,
) -> Uncertainty:
    """Bootstrap intervals, PSR/DSR of the best-Sharpe pick, PBO and the verdict of ``daily``.

    Every strategy is resampled with the same ``key`` (:func:`jaxsim.stats.frames.bootstrap_frame`);
    PSR/DSR/PBO are deterministic. ``n_trials`` (default: the number of columns) counts the strategies
    tried. PBO uses the days where every strategy has a value.
    """
    if daily.shape[1] == 0:
        raise ConfigError("uncertainty needs at least one strategy column")
    boot = bootstrap_frame(key, daily, n_resamples=n_resamples, level=level, periods_per_year=periods_per_year)
    n_tr = daily.shape[1] if n_trials is None else int(n_trials)
    # a strategy whose P&L never varies (e.g. always flat) has no Sharpe ratio: it stays out of the
    # Sharpe dispersion the DSR needs, but still counts as tried
    std = daily.std(ddof=1).to_numpy(np.float64)
    live = np.isfinite(std) & (std > 0) & (daily.notna().sum().to_numpy() >= 3)
    names = list(daily.columns)
    sharpe, psr = np.full(len(names), np.nan), np.full(len(names), np.nan)
    best, dsr, sr0 = names[0], np.nan, np.nan
    if live.any():
        sel = jax.device_get(selection_stats(jnp.asarray(daily.loc[:, live].to_numpy(np.float64)), n_trials=n_tr))
        sharpe[live], psr[live] = np.asarray(sel.sharpe, np.float64), np.asarray(sel.psr, np.float64)
        best, dsr, sr0 = list(daily.columns[live])[int(sel.best)], float(sel.dsr), float(sel.sr0)
    lower = boot.loc[("Mean Daily Return [%]", "lower")].to_numpy(np.float64)
    selection = pd.DataFrame(
        {"Sharpe (daily)": sharpe, "PSR": psr, "Beats Zero": np.isfinite(lower) & (lower > 0)}, index=daily.columns
    )
    complete = daily.dropna()
    blocks = _pbo_blocks(len(complete), n_blocks)
    pbo = float(pbo_cscv(jnp.asarray(complete.to_numpy(np.float64)), n_blocks=blocks).pbo) if blocks else np.nan
    line = verdict(names, lower, sharpe, dsr=dsr, n_trials=n_tr, level=level)
    return Uncertainty(
        boot, selection, best, dsr, sr0, n_tr, pbo, blocks, level, line, tuple(daily.attrs.get("in_sample", ()))
    )
