"""Benchmark: 50 simulations x {entry/exit, always-on} x {eod False, True} in ONE jitted call vs the
original's scipy DIRECT loop over the same 200 problems, in one run. Prints a markdown table.

    PYTHONPATH=. python benchmarks/bench_optimizer.py [--sims 50] [--repeats 5]

Problems are real-data six-day cases (see optimizer_quality.py; needs ../shared/data/daily and
scipy). The jitted program runs ``jaxsim.optimize.optax_optimizer()`` (and, in a second program,
``exact_optimizer()``) vmapped over simulations for the four (objective, eod) settings; its compile
time is reported separately from the steady-state time (median of ``--repeats`` calls). DIRECT uses
the original's settings (locally biased, maxfun 500 entry/exit, 240 always-on) on a float32 numpy PF.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import optimizer_quality as quality  # noqa: E402

SETTINGS = (("q_ee", "entry_exit", False), ("q_ee", "entry_exit", True),
            ("q_ao", "always_on", False), ("q_ao", "always_on", True))


def build_program(opt):
    """One jitted function solving all four settings for a batch of simulations."""
    import jax

    def program(c, h, hp, l, lp, q_ee, q_ao):
        out = []
        for key, _, eod in SETTINGS:
            q = q_ee if key == "q_ee" else q_ao
            out.append(jax.vmap(lambda *a, eod=eod: opt(*a, close_at_eod=eod))(c, h, hp, l, lp, q))
        return tuple(out)

    return jax.jit(program)


def time_program(program, args, repeats):
    import jax

    t0 = time.perf_counter()
    compiled = program.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        runs.append(time.perf_counter() - t0)
    return out, compile_s, statistics.median(runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()

    import jax
    import jaxsim.optimize as O

    cases = quality.sample_cases(a.sims, seed=a.seed)
    args = tuple(jax.numpy.asarray(cases[k]) for k in ("c", "h", "hp", "l", "lp", "q_ee", "q_ao"))
    rows = []
    for name, opt in (("optax_optimizer (jit, vmap)", O.optax_optimizer()),
                      ("exact_optimizer (jit, vmap)", O.exact_optimizer())):
        out, compile_s, run_s = time_program(build_program(opt), args, a.repeats)
        j = [quality.objective(cases, key, np.asarray(m), eod) for (key, _, eod), m in zip(SETTINGS, out)]
        rows.append((name, compile_s, run_s, j))

    t0 = time.perf_counter()
    j_direct = []
    for key, obj, eod in SETTINGS:
        m = np.array([quality.direct_solve(*(cases[k][i] for k in ("c", "h", "hp", "l", "lp")), cases[key][i],
                                           close_at_eod=eod, maxfun=quality.MAXFUN[obj]) for i in range(a.sims)])
        j_direct.append(quality.objective(cases, key, m, eod))
    direct_s = time.perf_counter() - t0
    rows.append(("scipy DIRECT loop (numpy float32 PF)", float("nan"), direct_s, j_direct))

    n = 4 * a.sims
    print(f"Multiplier optimisers on {a.sims} simulations x 2 strategies x 2 eod modes = {n} problems; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__} "
          f"on {jax.devices()[0].platform}; median of {a.repeats} calls.\n")
    print("| method | compile (s) | time for all problems (s) | per problem (ms) | speed-up vs DIRECT | "
          "mean J | problems with J >= DIRECT's |")
    print("|---|---|---|---|---|---|---|")
    for name, compile_s, run_s, j in rows:
        jj = np.concatenate(j)
        ge = np.mean(jj >= np.concatenate(j_direct) - 1e-9) * 100
        comp = "-" if np.isnan(compile_s) else f"{compile_s:.2f}"
        print(f"| {name} | {comp} | {run_s:.4f} | {1e3 * run_s / n:.3f} | {direct_s / run_s:.1f}x | "
              f"{jj.mean():.6f} | {ge:.1f}% |")


if __name__ == "__main__":
    main()
