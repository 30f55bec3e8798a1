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
# # 02 · Gradient-based MaxDiff multiplier tuning
#
# MaxDiff (docs/backtest.md#maxdiff) shifts the predicted high/low limit levels by multipliers `m = (mh, ml)` in
# `[-0.03, 0.03]^2` chosen to maximise the summed profit function `J(m) = sum_i PF(...)`. `PF` is
# piecewise linear with jumps (limit orders fill or not), so its gradient is zero almost everywhere.
# jaxsim adds a smooth surrogate `J_T` (sigmoid fills of width `T`) that converges to `J` as
# `T -> 0`, ascends it with optax while annealing `T`, and always re-scores with the exact `J`.
#
# This notebook shows the landscape, one optax trajectory, and compares the result with the exact
# breakpoint solver and scipy's DIRECT (what the original used).
#
# **Size.** As committed (`FULL = False`, what CI executes) the problem has 30 days, the landscape a
# 121 x 121 grid and the trajectory 150 steps: enough to show every effect in seconds. `FULL = True`
# is the size of a backtest's MaxDiff problem (60 days; 241 x 241 grid, 300 steps) for a sharper
# picture of the landscape.

# %%
FULL = False
DAYS = 60 if FULL else 30  # evaluation days in the problem
GRID = 241 if FULL else 121  # landscape resolution per axis
STEPS = 300 if FULL else 150  # optax steps of the illustrated trajectory

# %%
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.optimize import Bounds, direct

import jaxsim
from jaxsim.optimize import BOUND, exact_objective, exact_optimizer, make_problem, optax_optimizer, surrogate_objective
from jaxsim.report.plots import PlotFigure, heatmap_figure

# %% [markdown]
# ## A MaxDiff problem from real prices
# Quantities of docs/backtest.md#maxdiff-offsets, relative to the previous close. The forecasts of the high and low
# returns here are simply the mean of the previous 20 days (any forecaster works the same way).

# %%
p = jaxsim.sample("AAPL", adjusted=True)
C, H, L = (np.asarray(a, np.float64) for a in (p.close, p.high, p.low))
rC, rH, rL = C[1:] / C[:-1] - 1, H[1:] / H[:-1] - 1, L[1:] / L[:-1] - 1  # r_X[t], t = 1..T-1
kH, kL = np.abs(1 - H[:-1] / C[:-1]), np.abs(1 - L[:-1] / C[:-1])  # from row t-1
t = np.arange(len(rC) - DAYS, len(rC))
fH = np.array([rH[i - 20 : i].mean() for i in t])
fL = np.array([rL[i - 20 : i].mean() for i in t])
c, h, l = rC[t], rH[t] + kH[t], rL[t] - kL[t]
hp, lp = fH + kH[t], fL - kL[t]
q = np.where(lp < hp, np.where(np.abs(hp) > np.abs(lp), 1.0, -1.0), 0.0)
problem = make_problem(c, h, hp, l, lp, q)
print(f"{DAYS} days, {int((q > 0).sum())} long / {int((q < 0).sum())} short")

# %% [markdown]
# ## The landscape: exact J and the smooth surrogate J_T

# %%
g = jnp.linspace(-BOUND, BOUND, GRID)
MH, ML = jnp.meshgrid(g, g, indexing="ij")
pts = jnp.stack([MH.ravel(), ML.ravel()], -1)
exact = jax.jit(jax.vmap(lambda m: exact_objective(m, problem)))(pts).reshape(GRID, GRID)
soft = {
    T: jax.jit(jax.vmap(lambda m: surrogate_objective(m, problem, temperature=T)))(pts).reshape(GRID, GRID)
    for T in (1e-3, 1e-4)
}
# a matplotlib Figure that shows inline (no pyplot, no backend change); constrained layout keeps the
# colorbars' tick labels clear of the next panel's axis label
fig = PlotFigure(figsize=(15, 4.5), layout="constrained")
axes = fig.subplots(1, 3)
for ax, (title, z) in zip(
    axes, [("exact J", exact), ("surrogate T=1e-3", soft[1e-3]), ("surrogate T=1e-4", soft[1e-4])]
):
    cs = ax.contourf(np.asarray(g), np.asarray(g), np.asarray(z).T, levels=40)
    ax.set_title(title)
    ax.set_xlabel("mh")
    ax.set_ylabel("ml")
    fig.colorbar(cs, ax=ax)
print("max |J_T - J| on the grid:", {T: float(jnp.abs(z - exact).max()) for T, z in soft.items()})
fig

# %% [markdown]
# ## One optax trajectory (Adam, annealed temperature, projected onto the bounds)

# %%
opt = optax.adam(optax.cosine_decay_schedule(2e-3, STEPS, alpha=0.02))
temps = jnp.geomspace(1e-3, 1e-5, STEPS)


@jax.jit
def ascend(m0):
    def step(carry, T):
        m, s = carry
        grad = jax.grad(lambda m: -surrogate_objective(m, problem, temperature=T))(m)
        u, s = opt.update(grad, s, m)
        m = jnp.clip(optax.apply_updates(m, u), -BOUND, BOUND)
        return (m, s), (m, exact_objective(m, problem))

    (m, _), (path, values) = jax.lax.scan(step, (m0, opt.init(m0)), temps)
    return path, values


path, values = ascend(jnp.zeros(2))
fig = PlotFigure(figsize=(12, 4.5), layout="constrained")
a0, a1 = fig.subplots(1, 2)
a0.contourf(np.asarray(g), np.asarray(g), np.asarray(exact).T, levels=40)
a0.plot(path[:, 0], path[:, 1], "w.-", ms=2)
a0.plot(0, 0, "wo")
a0.set_title("trajectory on exact J")
a0.set_xlabel("mh")
a0.set_ylabel("ml")
a1.plot(np.asarray(values))
a1.set_xlabel("step")
a1.set_ylabel("exact J at the iterate")
print(
    "start J(0) =",
    float(exact_objective(jnp.zeros(2), problem)),
    "| end J =",
    float(values[-1]),
    "| best along the path =",
    float(values.max()),
)
fig

# %% [markdown]
# ## Comparison: jaxsim's optax search, the exact solver, DIRECT (as the original), a grid

# %%
args = (problem.close, problem.high, problem.high_pred, problem.low, problem.low_pred, problem.positions)


def timed(fn):
    t0 = time.perf_counter()
    m = np.asarray(fn())
    return m, time.perf_counter() - t0


rows = {}
for name, make in [("optax search (jaxsim default)", optax_optimizer), ("exact breakpoint solver", exact_optimizer)]:
    solver = jax.jit(make())
    m, secs = timed(lambda: solver(*args))
    rows[name] = (m, float(exact_objective(m, problem)), secs)
res = direct(
    lambda m: -float(exact_objective(jnp.asarray(m, jnp.float32), problem)),
    Bounds([-BOUND, -BOUND], [BOUND, BOUND]),
    maxfun=500,
)
rows["scipy DIRECT, maxfun 500 (original)"] = (res.x, -res.fun, float("nan"))
k = int(jnp.argmax(exact))
rows[f"grid {GRID}x{GRID}"] = (np.asarray(pts[k]), float(exact.ravel()[k]), float("nan"))
for name, (m, v, secs) in rows.items():
    print(
        f"{name:38s} mh={m[0]:+.5f} ml={m[1]:+.5f}  J={v:.6f}"
        + (f"  ({secs:.2f} s incl. compile)" if secs == secs else "")
    )
best = max(v for _, v, _ in rows.values())
assert rows["exact breakpoint solver"][1] >= best - 1e-6  # the exact solver is never beaten

# %% [markdown]
# ## The exact solver's point on the landscape
# `jaxsim.report.plots.heatmap_figure` draws any `J(mh, ml)` grid with a chosen point (a backtest's
# `result.plot("heatmap", prices=prices)` does this for one simulation's own problem).

# %%
heatmap_figure(g, g, exact, rows["exact breakpoint solver"][0], title=f"exact J on {DAYS} days, exact solver's point")
