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
# # 05 · Trade the universe: a walk-forward portfolio, and tomorrow's orders
#
# jaxsim backtests each stock on its own. The system it replaces picked one strategy per symbol,
# ranked symbols and sized a portfolio every day. `jaxsim.portfolio` replays that rule (and simpler
# ones) walk-forward over every day of the stocks' out-of-sample backtests, with one cash pool and
# costs on weight changes, from data up to the previous close only; `.plan` is the same decision for
# the next trading day. docs/portfolio.md has the rule, the day alignment and every simplification.
#
# **Size.** As committed (`FULL = False`, what CI executes) it uses a cheap stand-in forecaster (the
# mean of the last 5 returns), the four bundled samples, 60 simulations and 64 days of context: 60
# out-of-sample days, a demonstration of the mechanics, not evidence. A real study sets `FULL = True`:
# the embedded Toto-architecture demo model (256 samples), the shared daily universe when present,
# 250 simulations and 512 days of context.

# %%
FULL = False
N_SIMS = 250 if FULL else 60
MAX_CONTEXT = 512 if FULL else 64  # a context cap: every stock is trimmed to the same rows (one compile)
WINDOW = 70 if FULL else 20  # days of each strategy's rolling statistics

# %%
from pathlib import Path

import jax.numpy as jnp

import jaxsim
from jaxsim import forecasters

jaxsim.enable_compilation_cache()  # compiled programs kept on disk: a kernel restart loads them

# %% [markdown]
# ## The universe and its backtests
# Walk-forward protocol: MaxDiff's multipliers are fitted on earlier days only, so every daily P&L
# the portfolio earns is out of sample.

# %%
daily = Path.cwd().resolve().parent.parent / "shared" / "data" / "daily"
if FULL and daily.is_dir():
    prices = {f.stem: jaxsim.load_prices(f, symbol=f.stem) for f in sorted(daily.glob("*.csv"))}
else:
    prices = {s: jaxsim.sample(s) for s in jaxsim.available_samples()}


def momentum(context, valid, key):
    """Stand-in forecaster: the mean of the last 5 returns (a point forecast)."""
    del key
    return jnp.where(valid, context, 0.0)[-5:].mean()


forecaster = forecasters.default(num_samples=256) if FULL else forecasters.from_function(momentum)
results = jaxsim.backtest_many(
    prices, forecaster, n_sims=N_SIMS, protocol="walk_forward", max_context=MAX_CONTEXT, progress=False
)
print(len(results), "stocks:", list(results))

# %% [markdown]
# ## The original rule
# Per stock: the entry gate (average return above cost, Sharpe, samples, drawdown, turnover) with its
# soft bypass (a positive forecasted P&L lets a failed gate through), the strategy with the largest
# forecast, a composite score; across stocks: keep those with a positive score (at most 10, filled
# up to 4), kelly_lite sizing, at most 60% per stock, weights summing to at most 1.

# %%
pf = jaxsim.portfolio(results, "original", window=WINDOW)
pf.stats().loc[["Return [%]", "Sharpe Ratio", "Max. Drawdown [%]", "Exposure Time [%]"]]

# %%
pf.choices.tail()

# %%
fig = pf.plot()
fig

# %% [markdown]
# ## Generic rules, side by side
# Counting every rule tried: the deflated Sharpe ratio of the best one needs the number of trials.

# %%
rules = {
    "original": pf,
    "top_k": jaxsim.portfolio(results, "top_k", k=2, window=WINDOW),
    "inverse_vol": jaxsim.portfolio(results, "inverse_vol", k=3, window=WINDOW),
    "score_proportional": jaxsim.portfolio(results, "score_proportional", k=3, window=WINDOW),
    "smooth": jaxsim.portfolio(results, "smooth", window=WINDOW),
}
table = {name: r.stats()["portfolio"] for name, r in rules.items()}
table["equal_weight"] = pf.stats()["equal_weight"]
import pandas as pd  # noqa: E402

pd.DataFrame(table).loc[["Return [%]", "Sharpe Ratio", "Max. Drawdown [%]"]]

# %%
print(rules["top_k"].uncertainty(n_trials=len(rules) + 1).verdict)

# %% [markdown]
# ## Tuning the smooth rule
# Temperature and threshold fitted by optax on the earlier half of the days; the later half reported.

# %%
tuned = jaxsim.tune_portfolio(results, "smooth", window=WINDOW, steps=50 if not FULL else 200)
print(tuned.rule)
tuned.table

# %% [markdown]
# ## Tomorrow's orders
# The decision the replay would make on the next trading day, from the forecasts of each stock's
# newest row: side, entry and exit limit prices, weight and whole shares for the account size.

# %%
pf.plan_for(50_000)
