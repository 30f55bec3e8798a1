"""Renders docs/img/*.png, the README's Plots section, from a real run of the bundled AAPL sample.

Run from the repository root: ``PYTHONPATH=. python tools/readme_plots.py [N_SIMS]`` (about 2 minutes on 2 CPU cores).
"""

import sys
import time

import jax

import jaxsim
from jaxsim import forecasters
from jaxsim.report.plots import figure_png

n = int(sys.argv[1]) if len(sys.argv) > 1 else 40  # simulations (the README images: 40)
t = time.time()
prices = jaxsim.sample("AAPL")
result = jaxsim.backtest(prices, forecasters.default(num_samples=256), n_sims=n, key=jax.random.key(0))
print("backtest", time.time() - t)
figs = {
    "equity": result.plot("equity", prices=prices),
    "fan": result.plot("fan"),
    "heatmap": result.plot("heatmap", prices=prices, resolution=81),
    "bootstrap": result.plot("bootstrap", n_resamples=2000),
}
for k, f in figs.items():
    png = figure_png(f, dpi=70)
    open(f"docs/img/{k}.png", "wb").write(png)
    print(k, len(png) // 1024, "KiB")
print(result.summary_text())
