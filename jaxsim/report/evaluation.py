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
import zlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsim.engine.compilation import ProgramCache
from jaxsim.engine.oos import PREFIX, QUANTILES
from jaxsim.errors import ConfigError
from jaxsim.sim.strategy_table import BUY_HOLD, FITTED, STRATEGIES, with_user
from jaxsim.stats.frames import UncertaintySettings, bootstrap_table, stats_frame, table_stats, uncertainty_arrays
from jaxsim.stats.masked import masked_mean
from jaxsim.stats.skill import forecast_skill
from jaxsim.stats.spa import SPAResult, spa_test
from jaxsim.stats.verdict import SPA_RULE, spa_clause, verdict

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
    "stats_table",
    "periods_per_year",
    "spa_seed",
    "SKILL_COLUMNS",
    "PROGRAMS",
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
    it (``oos_position_*``; user strategies too, a limit one's being its filled position), else a
    non-zero P&L (MaxDiff: a fill); False on days without a value. ``user``: as :func:`daily_frame`'s."""
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


def buy_hold_closes(records: pd.DataFrame, oos: dict[str, np.ndarray], start=None) -> pd.Series | None:
    """Closes of the simulation dates plus the close before the first one, C[e] / (1 + r_C[e]), for
    ``Buy & Hold Return [%]`` and the stats' ``Start``; None without ``oos`` fields. ``start``: that
    close's date (``metadata["pnl_start_date"]``); without it, one calendar day before the first date."""
    if f"{PREFIX}close_realised" not in oos:
        return None
    close = np.asarray(records["close"], np.float64)[::-1]
    realised = np.asarray(oos[f"{PREFIX}close_realised"], np.float64)[::-1]
    dates = _chrono_dates(records)
    before = close[0] / (1.0 + realised[0]) if realised[0] != -1 else np.nan
    first = pd.Timestamp(start) if start is not None else dates[0] - pd.Timedelta(days=1)
    index = pd.DatetimeIndex([first, *dates], name="date")
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


def _draws_skill(point, realised, mask, draws, n_bins):
    """:func:`forecast_skill` of each target from its draws, vmapped over the leading target axis."""
    return jax.vmap(lambda p, y, m, d: forecast_skill(p, y, m, draws=d, n_bins=n_bins))(point, realised, mask, draws)


def _band_skill(point, realised, mask, lo, hi, crps, n_bins):
    """:func:`forecast_skill` of each target from the program's per-day band and CRPS (no draws).

    The CRPS is the mean of the per-day ``crps`` over the valid days with a finite one, the same
    float32 masked mean as the skill's naive score, so a zero forecast scores exactly 0.
    """

    def one(p, y, m, a, b, c):
        s = forecast_skill(p, y, m, band=(a, b), n_bins=n_bins)
        mean = masked_mean(jnp.where(jnp.isfinite(c), c, 0).astype(p.dtype), m & jnp.isfinite(c))
        naive = s.crps_naive
        skill = jnp.where(naive > 0, 1 - mean / jnp.where(naive > 0, naive, 1), jnp.nan)
        return s._replace(crps=mean, crps_skill=skill)

    return jax.vmap(one)(point, realised, mask, lo, hi, crps)


# The helper programs, compiled once per input shape and static settings and, with the compilation
# cache on (the command line), stored on disk like the backtest program (jaxsim.engine.compilation).
PROGRAMS = {
    "stats": ProgramCache(table_stats, name="stats", message=None),
    "uncertainty": ProgramCache(uncertainty_arrays, name="uncertainty", message=None),
    "draws_skill": ProgramCache(_draws_skill, name="draws_skill", message=None),
    "band_skill": ProgramCache(_band_skill, name="band_skill", message=None),
}


def _run(name: str, *args, static):
    """Run helper program ``name`` (every static part is jaxsim's own: stored under ``repr(static)``)."""
    return jax.device_get(PROGRAMS[name](*args, static=static, token=repr(static)))


def _stats_program(values, exposure, close, years, periods_per_year):
    return _run("stats", values, exposure, close, years, static=periods_per_year)


def stats_table(
    daily: pd.DataFrame, exposure=None, close=None, periods_per_year: int = 252, trades=None
) -> pd.DataFrame:
    """:func:`jaxsim.stats.frames.stats_frame` of a result's frames, its program kept with the others."""
    return stats_frame(
        daily, exposure=exposure, close=close, trades=trades, periods_per_year=periods_per_year, program=_stats_program
    )


def skill_frame(forecasts: pd.DataFrame, draws: LabelledArray | None = None, n_bins: int = 10) -> pd.DataFrame:
    """:func:`jaxsim.stats.skill.forecast_skill` per target of a :func:`forecasts_frame`: one row per
    target, columns :data:`SKILL_COLUMNS` (skills against the zero forecast; ``PIT Histogram`` is a
    list of ``n_bins`` counts).

    With ``draws`` the CRPS, band and PIT come from the draws themselves; without, from the per-day
    ``q0.1``/``q0.9``, ``crps`` and ``pit`` columns the program computed from the same draws (equal
    numbers). A day counts when its forecast and realisation are finite. The targets of each kind
    are one vmapped call of one compiled program.
    """
    targets = list(dict.fromkeys(forecasts.columns.get_level_values(0)))

    def column(field, names):
        return np.stack([forecasts[(x, field)].to_numpy(np.float64) for x in names]).astype(np.float32)

    with_draws = [x for x in targets if draws is not None and x in draws.coords["target"]]
    without = [x for x in targets if x not in with_draws]
    stats = {}
    if with_draws:
        point, realised = column("point", with_draws), column("realised", with_draws)
        mask = np.isfinite(point) & np.isfinite(realised)
        d = np.stack([np.asarray(draws.sel(target=x).values, np.float32) for x in with_draws])
        s = _run("draws_skill", point, realised, mask, d, static=n_bins)
        stats.update({x: jax.tree.map(lambda a, i=i: a[i], s) for i, x in enumerate(with_draws)})
    if without:
        point, realised = column("point", without), column("realised", without)
        mask = np.isfinite(point) & np.isfinite(realised)
        lo, hi, crps = column("q0.1", without), column("q0.9", without), column("crps", without)
        s = _run("band_skill", point, realised, mask, lo, hi, crps, static=n_bins)
        for i, x in enumerate(without):
            m = mask[i] & np.isfinite(crps[i])
            u = forecasts[(x, "pit")].to_numpy()[m]
            counts = np.bincount(np.clip(np.floor(u * n_bins).astype(int), 0, n_bins - 1), minlength=n_bins)
            stats[x] = jax.tree.map(lambda a, i=i: a[i], s)._replace(pit_counts=counts)
    rows = {}
    for x in targets:
        s, row = stats[x], {}
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
        return lies above 0; always False for a strategy fitted in sample).
      best: the strategy with the highest Sharpe (the pick the DSR corrects).
      dsr: deflated Sharpe ratio of that pick given ``n_trials`` strategies tried.
      sr0: the per-period Sharpe the best of ``n_trials`` unskilled strategies reaches by luck.
      n_trials: strategies tried. pbo: probability of backtest overfitting (CSCV, ``n_blocks`` blocks;
        NaN when the series is too short).
      level: confidence level. verdict: the :func:`jaxsim.stats.verdict.verdict` line, then the
        :func:`jaxsim.stats.verdict.spa_clause` (SPA p-values and StepM against each benchmark).
      in_sample: strategies whose parameters were fitted on the days they are scored
        (``daily.attrs["in_sample"]``: MaxDiff and always-on under ``legacy``): out of the Sharpe
        pick, the DSR, the SPA / StepM tests and never named by the verdict.
      spa: :class:`jaxsim.stats.spa.SPAResult` against zero and against buy & hold (Hansen's SPA
        p-values, Romano-Wolf's StepM set; arch.bootstrap seeded with ``spa_seed``).
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
    spa: tuple[SPAResult, ...] = ()

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
            "spa": [t.as_dict() for t in self.spa],
            "spa_rule": SPA_RULE,
            "selection": {
                k: {c: (bool(v) if c == "Beats Zero" else float(v)) for c, v in row.items()}
                for k, row in self.selection.to_dict(orient="index").items()
            },
            # statistic -> strategy -> {estimate, lower, upper} (the block length: estimate only)
            "bootstrap": {
                stat: {
                    str(name): {part: float(self.bootstrap.loc[(stat, part), name]) for part in parts}
                    for name in self.bootstrap.columns
                }
                for stat, parts in _bootstrap_parts(self.bootstrap).items()
            },
        }

    def __str__(self) -> str:
        pbo = "n/a" if not np.isfinite(self.pbo) else f"{self.pbo:.2f}"
        note = f" [in sample under legacy: {', '.join(self.in_sample)}]" if self.in_sample else ""
        pct = f"{100 * self.level:g}%"
        rule = (
            f"\nRule: a strategy beats zero at {pct} when the {pct} bootstrap interval of its mean daily "
            f"return lies above 0 (DSR: after the strategies tried){'; ' + SPA_RULE if self.spa else ''}"
            f"{'; strategies fitted in sample are never tested' if self.in_sample else ''}."
        )
        return (
            f"Verdict: {self.verdict}. Best Sharpe: {self.best} (DSR {self.dsr:.2f}); "
            f"PBO {pbo} ({self.n_blocks} CSCV blocks){note}{rule}"
        )


def _bootstrap_parts(table: pd.DataFrame) -> dict[str, list[str]]:
    parts: dict[str, list[str]] = {}
    for stat, part in table.index:
        parts.setdefault(stat, []).append(part)
    return parts


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
    spa: bool = True,
) -> Uncertainty:
    """Bootstrap intervals, PSR/DSR of the best-Sharpe pick, PBO, SPA / StepM and the verdict of ``daily``.

    Every strategy is resampled with the same ``key`` (:func:`jaxsim.stats.frames.bootstrap_frame`);
    PSR/DSR/PBO are deterministic. ``n_trials`` (default: the number of columns) counts the strategies
    tried. PBO uses the days where every strategy has a value. ``spa``: Hansen's SPA and StepM
    (:func:`jaxsim.stats.spa.spa_test`, ``n_resamples`` resamples) against zero and, when ``daily``
    has a ``buy_hold`` column, against buy & hold, seeded with :func:`spa_seed` of ``key``. The
    strategies of ``daily.attrs["in_sample"]`` stay out of the pick, the DSR and the tests.
    """
    if daily.shape[1] == 0:
        raise ConfigError("uncertainty needs at least one strategy column")
    n_tr = daily.shape[1] if n_trials is None else int(n_trials)
    # a strategy whose P&L never varies (e.g. always flat) has no Sharpe ratio: it stays out of the
    # Sharpe dispersion the DSR needs, but still counts as tried
    std = daily.std(ddof=1).to_numpy(np.float64)
    in_sample = tuple(daily.attrs.get("in_sample", ()))
    fitted = daily.columns.isin(in_sample)  # fitted on their scoring days: never the pick
    live = np.isfinite(std) & (std > 0) & (daily.notna().sum().to_numpy() >= 3) & ~fitted
    complete = daily.notna().all(axis=1).to_numpy()  # PBO: the days where every strategy has a value
    blocks = _pbo_blocks(int(complete.sum()), n_blocks)
    settings = UncertaintySettings(n_resamples, level, periods_per_year, blocks)
    values = daily.to_numpy(np.float64)
    out = _run("uncertainty", key, values, live, complete, np.int32(n_tr), static=settings)
    boot = bootstrap_table(out.ci, daily.columns)
    names = list(daily.columns)
    sharpe, psr = np.full(len(names), np.nan), np.full(len(names), np.nan)
    best, dsr, sr0 = names[0], np.nan, np.nan
    if live.any():
        sel = out.selection
        sharpe[live], psr[live] = np.asarray(sel.sharpe, np.float64)[live], np.asarray(sel.psr, np.float64)[live]
        best, dsr, sr0 = names[int(sel.best)], float(sel.dsr), float(sel.sr0)
    lower = boot.loc[("Mean Daily Return [%]", "lower")].to_numpy(np.float64)
    selection = pd.DataFrame(
        {"Sharpe (daily)": sharpe, "PSR": psr, "Beats Zero": np.isfinite(lower) & (lower > 0) & ~fitted},
        index=daily.columns,
    )
    pbo = float(out.pbo) if blocks else np.nan
    line = verdict(names, lower, sharpe, dsr=dsr, n_trials=n_tr, level=level, in_sample=in_sample)
    tests: tuple[SPAResult, ...] = ()
    if spa:
        seed = spa_seed(key)
        benchmarks = [None, *([BUY_HOLD.name] if BUY_HOLD.name in daily.columns else [])]
        tests = tuple(
            spa_test(daily, b, seed=seed, reps=n_resamples, level=level, exclude=in_sample) for b in benchmarks
        )
        line = f"{line}; {spa_clause(tests, level)}"
    return Uncertainty(boot, selection, best, dsr, sr0, n_tr, pbo, blocks, level, line, in_sample, tests)


def spa_seed(key) -> int:
    """The integer seed of the SPA / StepM bootstrap (numpy, in arch) drawn from the JAX ``key``: the
    same key (``jax.random.key(seed)`` of the run's seed on the command line) gives the same p-values.

    crc32 of the key's data and a salt, on the host: no JAX operation, so nothing is compiled for it."""
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    data = np.asarray(jax.random.key_data(key) if typed else key, np.uint32)
    return zlib.crc32(data.tobytes() + b"spa") & 0x7FFFFFFF
