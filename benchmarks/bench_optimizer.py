"""Benchmark: 50 simulations x {entry/exit, always-on} x {eod False, True} in ONE jitted call vs the
original's scipy DIRECT loop over the same 200 problems, in one run. Prints a markdown table.

    PYTHONPATH=. python benchmarks/bench_optimizer.py [--sims 50] [--repeats 21]

Problems are real-data six-day cases (see optimizer_quality.py; needs ../shared/data/daily and
scipy). The jitted program runs ``jaxsim.optimize.optax_optimizer()`` (and, in a second program,
``exact_optimizer()``) vmapped over simulations for the four (objective, eod) settings, one call per
setting; a third program calls ``optax_optimizer()`` once, vmapped over the four settings as the
backtest does (``jaxsim.sim.maxdiff.fit_multipliers``). Each program's compile
time is reported separately from the warm time (median and min of ``--repeats`` calls, the
programs interleaved). DIRECT uses the original's settings (locally biased, maxfun 500 entry/exit,
240 always-on) on a float32 numpy PF.
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

SETTINGS = (
    ("q_ee", "entry_exit", False),
    ("q_ee", "entry_exit", True),
    ("q_ao", "always_on", False),
    ("q_ao", "always_on", True),
)


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


def build_joint_program(opt):
    """The four settings in ONE optimizer call vmapped over (objective, eod), as the backtest's
    simulation fits them (``jaxsim.sim.maxdiff.fit_multipliers``: entry/exit's position row padded
    with a zero row, the policy a traced bool; needs ``opt.traced_eod``)."""
    import jax
    import jax.numpy as jnp

    def program(c, h, hp, l, lp, q_ee, q_ao):
        q = jnp.stack([jnp.concatenate([q_ee, jnp.zeros_like(q_ee)], axis=1), q_ao], axis=1)  # (n, 2, 2, days)
        eods = jnp.asarray([False, True])

        def one(c, h, hp, l, lp, q):
            fit = lambda qr, e: opt(c, h, hp, l, lp, qr, close_at_eod=e)  # noqa: E731
            return jax.vmap(lambda qr: jax.vmap(lambda e: fit(qr, e))(eods))(q)  # (objective, eod, 2)

        m = jax.vmap(one)(c, h, hp, l, lp, q)
        return tuple(m[:, i, j] for i in range(2) for j in range(2))  # the order of SETTINGS

    return jax.jit(program)


def compile_program(program, args):
    """``(compiled, seconds)``: lower and compile once (reported apart from the warm time)."""
    t0 = time.perf_counter()
    compiled = program.lower(*args).compile()
    return compiled, time.perf_counter() - t0


def time_interleaved(compiled, args, repeats):
    """Warm seconds of each compiled program, calls interleaved round by round so that load on a
    shared machine hits all of them alike: ``{name: (outputs, [seconds per call])}``."""
    import jax

    out = {name: jax.block_until_ready(c(*args)) for name, c in compiled.items()}
    runs = {name: [] for name in compiled}
    for _ in range(repeats):
        for name, c in compiled.items():
            t0 = time.perf_counter()
            jax.block_until_ready(c(*args))
            runs[name].append(time.perf_counter() - t0)
    return {name: (out[name], runs[name]) for name in compiled}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()

    import jax

    import jaxsim.optimize as O

    cases = quality.sample_cases(a.sims, seed=a.seed)
    args = tuple(jax.numpy.asarray(cases[k]) for k in ("c", "h", "hp", "l", "lp", "q_ee", "q_ao"))
    methods = {
        "optax_optimizer() (default; jit, vmap)": build_program(O.optax_optimizer()),
        "optax_optimizer(), one call vmapped over the 4 settings (the backtest's way)": build_joint_program(
            O.optax_optimizer()
        ),
        "exact_optimizer() (jit, vmap)": build_program(O.exact_optimizer()),
    }
    compiled, compile_s = {}, {}
    for name, program in methods.items():
        compiled[name], compile_s[name] = compile_program(program, args)
    timed = time_interleaved(compiled, args, a.repeats)

    t0 = time.perf_counter()
    j_direct = []
    for key, obj, eod in SETTINGS:
        m = np.array(
            [
                quality.direct_solve(
                    *(cases[k][i] for k in ("c", "h", "hp", "l", "lp")),
                    cases[key][i],
                    close_at_eod=eod,
                    maxfun=quality.MAXFUN[obj],
                )
                for i in range(a.sims)
            ]
        )
        j_direct.append(quality.objective(cases, key, m, eod))
    direct_s = time.perf_counter() - t0
    jd = np.concatenate(j_direct)

    n = 4 * a.sims
    print(
        f"Multiplier optimisers on {a.sims} simulations x 2 strategies x 2 eod modes = {n} problems in one "
        f"jitted call; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, jax "
        f"{jax.__version__} on {jax.devices()[0].platform}; warm times over {a.repeats} interleaved calls "
        f"(median, min); DIRECT: one pass of the loop.\n"
    )
    print(
        "| method | compile (s) | warm median (ms) | warm min (ms) | per problem (us, median) | "
        "speed-up vs DIRECT (median / min) | cost vs exact (median / min) | mean J | problems with J >= DIRECT's |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    exact_runs = timed["exact_optimizer() (jit, vmap)"][1]
    for name in methods:
        out, runs = timed[name]
        med, best = statistics.median(runs), min(runs)
        jj = np.concatenate(
            [quality.objective(cases, key, np.asarray(m), eod) for (key, _, eod), m in zip(SETTINGS, out)]
        )
        rel = f"{med / statistics.median(exact_runs):.2f}x / {best / min(exact_runs):.2f}x"
        print(
            f"| {name} | {compile_s[name]:.2f} | {1e3 * med:.2f} | {1e3 * best:.2f} | {1e6 * med / n:.1f} | "
            f"{direct_s / med:.0f}x / {direct_s / best:.0f}x | {rel} | {jj.mean():.6f} | "
            f"{100 * np.mean(jj >= jd):.1f}% |"
        )
    print(
        f"| scipy DIRECT loop (numpy float32 PF) | - | {1e3 * direct_s:.0f} | - | {1e6 * direct_s / n:.0f} | 1x | - | "
        f"{jd.mean():.6f} | 100.0% |"
    )


if __name__ == "__main__":
    main()
