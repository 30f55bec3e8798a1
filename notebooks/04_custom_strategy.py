# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Your own strategy: a band-scaled limit-order strategy, tuned walk-forward
#
# A user strategy is a pure JAX function of ONE simulation (its forecasts for the seven origins,
# their P60-P40 band, its 22-row price window) and a parameter pytree. jaxsim vmaps it over
# simulations and stocks in the same compiled program as the eight built-ins and scores it with the
# same fee and fill rules (here the profit function PF, like MaxDiff).
#
# The strategy: every day, a buy limit at the predicted low minus `k` bands and a take-profit at the
# predicted high plus `k2` bands (levels relative to the previous close). `jaxsim.tune` fits `k, k2`
# by optax ascent of the smooth surrogate of PF, pooled over the OLDER simulations of ten stocks, and
# reports the newer simulations only (out of sample). We then compare it out of sample with MaxDiff
# (walk-forward protocol) and buy & hold, and check it for look-ahead.
#
# **Size.** As committed (`FULL = False`, what CI executes) it uses a cheap stand-in forecaster (the
# last 20 days' mean and spread), 40 simulations, 80 optax steps and 64 days of context: 15
# out-of-sample trading days, a demonstration of the protocol, not evidence. A real study sets
# `FULL = True`: the embedded Toto-architecture demo model (256 samples), 120 simulations, 300 steps
# and 512 days of context (or swap in converted official weights).

# %%
FULL = False
N_SIMS = 120 if FULL else 40
STEPS = 300 if FULL else 80
MAX_CONTEXT = 512 if FULL else 64  # a context cap: every stock is trimmed to the same rows (one compile)
N_STOCKS = 10

# %%
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.dates as mdates
import numpy as np
import pandas as pd

import jaxsim
from jaxsim import forecasters
from jaxsim.report.plots import PlotFigure
from jaxsim.sim.strategy import limit_offsets
from jaxsim.stats.frames import stats_frame

jaxsim.enable_compilation_cache()  # compiled programs kept on disk: a kernel restart loads them

# %% [markdown]
# ## Ten stocks
# The real daily series of `../shared/data/daily` when this checkout has them (CI does), else the
# bundled samples.

# %%
daily = Path.cwd().resolve().parent.parent / "shared" / "data" / "daily"
if daily.is_dir():
    files = sorted(daily.glob("*.csv"))[:N_STOCKS]
    prices = [jaxsim.load_prices(f, symbol=f.stem) for f in files]
else:
    prices = [jaxsim.sample(s, adjusted=True) for s in jaxsim.available_samples()[:N_STOCKS]]
print(len(prices), "stocks:", [p.symbol for p in prices])

# %% [markdown]
# ## A forecaster with a band
# The band is the P60-P40 width of the forecast draws. With `FULL = False` the draws are a cheap
# function of the context (mean and std of the last 20 returns, on a fixed quantile grid); with
# `FULL = True` the embedded demo model draws them.

# %%
GRID = jnp.asarray(np.linspace(-1.5, 1.5, 32), jnp.float32)


def recent_draws(ctx, valid, key):
    del key
    w = valid[-20:]
    n = jnp.maximum(w.sum(), 1)
    mean = jnp.where(w, ctx[-20:], 0.0).sum() / n
    std = jnp.sqrt(jnp.where(w, (ctx[-20:] - mean) ** 2, 0.0).sum() / n)
    return mean + std * GRID


forecaster = forecasters.default(num_samples=256) if FULL else forecasters.from_function(recent_draws, num_samples=32)

# %% [markdown]
# ## The strategy: one simulation, one parameter pytree


# %%
@jaxsim.user_strategy("band", "limits", params={"k": 0.0, "k2": 0.0})
def band(v, p):
    """Buy at predicted low - k x band, take profit at predicted high + k2 x band, every day.

    Day i's orders may read forecasts P_X[<= i] and rows before t_i: `[:6]` are P_X[0..5]. The
    High/Low forecasts are changes versus the previous High/Low; `limit_offsets` moves them to
    levels relative to the previous close (as MaxDiff does)."""
    k_high, k_low = limit_offsets(v)
    width = v.band["close"][:6]
    return jaxsim.Limits(
        high=v.point["high"][:6] + k_high + p["k2"] * width,
        low=v.point["low"][:6] - k_low - p["k"] * width,
        positions=jnp.ones(6),
    )


# Before tuning anything: the strategy must not read the rows it trades on.
report = jaxsim.check_no_lookahead(band, prices[0], forecaster=forecaster, n_sims=6, max_context=MAX_CONTEXT)
print("look-ahead check:", "passed" if report.ok else "FAILED", f"({report.n_checked} day checks)")

# %% [markdown]
# ## Tune k, k2 walk-forward
# Forecasts are computed once (`simulation_data`) and reused. The fit uses the oldest half of the
# simulations of all ten stocks; simulations whose first day is after every fitted day (a gap of
# six simulations) are reported.

# %%
data = jaxsim.simulation_data(prices, forecaster, n_sims=N_SIMS, max_context=MAX_CONTEXT, key=jax.random.key(0))
tuned = jaxsim.tune(band, data, steps=STEPS, fit_fraction=0.5)
print("fitted:", {k: float(v) for k, v in tuned.window_params().items()})
print(
    f"in-sample mean daily P&L: start {float(tuned.exact_objective[0, 0]):.5f} -> "
    f"fitted {float(tuned.fitted_objective[0]):.5f} (exact)"
)
print("out-of-sample simulations:", len(tuned.test_sims), "of", N_SIMS)
tuned.summary

# %%
fig = tuned.plot()
fig

# %% [markdown]
# ## Out of sample: against MaxDiff and buy & hold
# One walk-forward backtest of the ten stocks with both the untuned and the tuned strategy (the tuned
# one is `tuned.strategy`, renamed). Only the out-of-sample simulations are compared; each
# simulation's final day is one trading day, so the final-day fields form daily series. The
# portfolio is the equal-weight mean over stocks. With `FULL = False` that is only 15 trading days
# of a toy forecaster: read the numbers as a demonstration of the protocol, not as evidence. PF (for
# this strategy and MaxDiff alike) lets a filled buy exit at its take-profit the same day whatever
# the order of the intraday low and high, which flatters any strategy that trades both levels.

# %%
results = jaxsim.backtest_many(
    prices,
    forecaster,
    n_sims=N_SIMS,
    max_context=MAX_CONTEXT,
    key=jax.random.key(0),
    protocol="walk_forward",
    strategies=(band, tuned.strategy.replace(name="band_tuned")),
    progress=False,
)
rows = tuned.test_sims
columns = {
    "band (k = k2 = 0)": "band_finalday",
    "band (tuned)": "band_tuned_finalday",
    "maxdiff (walk-forward)": "maxdiff_finalday_return",
    "buy_hold": "buy_hold_finalday",
}
series = {}
for label, field in columns.items():
    per_stock = {
        s: pd.Series(r.records[field].to_numpy()[rows], index=pd.DatetimeIndex(r.records["date"])[rows])
        for s, r in results.items()
    }
    series[label] = pd.DataFrame(per_stock).sort_index().mean(axis=1)
oos = pd.DataFrame(series)
# the tuned strategy's numbers equal tune()'s own out-of-sample records
np.testing.assert_allclose(oos["band (tuned)"], tuned.daily().mean(axis=1), rtol=1e-5, atol=1e-7)
stats_frame(oos)

# %%
fig = PlotFigure(figsize=(9, 4.5), layout="constrained")  # shows itself inline; labels kept inside
ax = fig.add_subplot()
for label in oos:
    ax.plot(oos.index, np.cumprod(1 + oos[label].to_numpy()), label=label)
ax.set_title("out-of-sample equity, equal-weight over stocks")
ax.set_ylabel("equity (start = 1)")
ax.legend(fontsize=8)
ax.margins(x=0)  # no date tick outside the data, crowding the first one
ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
fig
