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
# # 01 · Quickstart: sample data, one-call backtest, summary, plots
#
# Everything here runs offline: the price series is a bundled public-domain sample and the forecaster
# is jaxsim's **embedded demo model** (`weights/jaxsim-toto-tiny`, a small Toto-architecture model
# trained by `jaxsim train`; see its `MODEL_CARD.md`, it is *not* the official Toto). With converted
# official weights, swap in `forecasters.toto("weights/toto-open-base-1.0")`.
#
# **Size.** As committed (`FULL = False`) it runs 5 simulations with 128 forecast samples each: CI
# executes every notebook, so this is a smoke-sized run, and its numbers (5 trading days of results)
# are a demonstration, not evidence. A real study sets `FULL = True`: the original's 50 simulations
# and 3072 samples per forecast (minutes on a GPU, much longer on a CPU).

# %%
FULL = False
N_SIMS = 50 if FULL else 5
NUM_SAMPLES = 3072 if FULL else 128

# %%
import jax
import matplotlib

import jaxsim
from jaxsim import forecasters
from jaxsim.models import registry
from jaxsim.shell.api import backtest

jaxsim.enable_compilation_cache()  # compiled programs kept on disk: a kernel restart loads them

print("jaxsim", jaxsim.__version__, "| jax", jax.__version__, "| devices:", jax.devices())

# %% [markdown]
# ## Data
# Bundled samples are real daily OHLCV (Quandl WIKI, public domain). `load_prices` reads your own
# CSV/Parquet files with the same validation.

# %%
print(jaxsim.available_samples())
prices = jaxsim.sample("AAPL")
prices

# %%
prices.to_frame().tail()

# %% [markdown]
# ## Forecaster: the embedded model
# One forward pass per context gives the next-day Student-T mixture; the backtester draws
# `NUM_SAMPLES` values from it and aggregates them (trimmed mean by default).

# %%
forecaster = forecasters.default(num_samples=NUM_SAMPLES)
print(registry.default_weights_dir())
print(forecaster.config)

# %% [markdown]
# ## One call: the whole walk-forward backtest
# `N_SIMS` simulations, each ending one day earlier; eight strategies per simulation, compiled into
# one XLA program.

# %%
result = backtest(prices, forecaster, n_sims=N_SIMS, num_samples=NUM_SAMPLES, key=jax.random.key(0))
print(result.summary_text())

# %%
assert result.summary.shape[0] == 8 and result.n_sims == N_SIMS
result.summary

# %% [markdown]
# The out-of-sample statistics of each strategy's daily P&L, with units (backtesting.py's rows):

# %%
result.stats() if hasattr(result, "stats") else result.summary

# %% [markdown]
# ## Plots
# `result.plot(kind)` returns a matplotlib `Figure` (shown inline as a cell's last value). It never
# imports pyplot or switches the backend, so your own plots keep working.
#
# Equity per strategy: chained final-day P&L of consecutive simulations (oldest first), with its
# drawdown below and buy-and-hold (from the close before the first day) dashed.

# %%
backend = matplotlib.get_backend()
result.plot("equity", prices=prices)

# %% [markdown]
# The forecast fan chart: each simulation's one-step forecast of its last day's close-to-close return
# (point and the 40-60% band of the draws) against what happened.

# %%
result.plot("fan")

# %% [markdown]
# The MaxDiff objective `J(mh, ml)` of the most recent simulation on a grid, with the multipliers
# the optimizer chose (the star; `J` there is the record's `maxdiff_optimized_return`).

# %%
result.plot("heatmap", prices=prices, resolution=61)

# %% [markdown]
# How sure is each strategy's Sharpe ratio? Stationary-bootstrap resamples of its daily P&L
# (Politis-White block length), with the 95% percentile interval shaded. With `N_SIMS` days this is
# wide; it narrows with longer runs.

# %%
result.plot("bootstrap", n_resamples=2000 if FULL else 200, key=jax.random.key(1))

# %%
assert matplotlib.get_backend() == backend  # plotting left the backend alone

# %% [markdown]
# With `FULL = True`, compare with the zero-return baseline forecaster on the same days (a second
# compiled program, skipped in the small CI run):

# %%
if FULL:
    from jaxsim import forecasters

    naive = backtest(prices, forecasters.naive(), n_sims=N_SIMS, key=jax.random.key(0))
    print(
        naive.summary[["Return", "Sharpe"]].join(
            result.summary[["Return", "Sharpe"]], lsuffix="_naive", rsuffix="_model"
        )
    )
