"""Regenerate every benchmark table and plot, then benchmarks/README.md, with one command.

    PYTHONPATH=. python benchmarks/run_all.py            # full (about an hour on 2 CPUs)
    PYTHONPATH=. python benchmarks/run_all.py --quick    # smoke mode (minutes)

Each benchmark runs in its own process (own XLA flags, memory returned between them) and writes into
``--out`` (default ``benchmarks/results``):

* ``bench_e2e.py``: jaxsim vs the original's Toto call pattern (needs the reference venv);
* ``jaxsim bench scaling`` (:func:`jaxsim.bench.suites.scaling_suite`): time / memory sweeps;
* ``jaxsim bench compile`` (:func:`jaxsim.bench.compile_suite.compile_suite`): first-call trace / lower /
  XLA / run, StableHLO ops by program part, command line and universe with a cold and warm cache;
* ``bench_optimizer.py`` and ``optimizer_quality.py``: the MaxDiff optimisers against DIRECT (written to
  ``optimizer_bench.md`` / ``optimizer_quality.md``; ``optimizer.md`` is the optimizer helper's own write-up);
* the other helpers' scripts when present (``bench_backtest.py``, ``bench_kronos.py``, ``bench_toto.py``):
  their stdout becomes ``<name>.md``.

A benchmark that fails is listed in the README with its error instead of stopping the others.
``--only NAME[,NAME]`` runs a subset and keeps the other results. ``--dtype bfloat16`` is passed to the
jaxsim-side suites (meant for GPUs; the default device is used, so the same command runs on CUDA).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable


def jobs(a) -> dict[str, dict]:
    """name -> dict(cmd, md (file the README shows), capture (stdout -> md))."""
    q = ["--quick"] if a.quick else []
    out = str(a.out)
    table = {
        "e2e": dict(cmd=[PY, str(HERE / "bench_e2e.py"), "--out", out, "--dtype", a.dtype, *q], md="e2e.md"),
        "scaling": dict(
            cmd=[PY, "-m", "jaxsim.cli.app", "bench", "scaling", "--out", out, "--dtype", a.dtype, *q],
            md="scaling.md",
            quiet=True,
        ),
        "compile": dict(
            cmd=[PY, "-m", "jaxsim.cli.app", "bench", "compile", "--out", out, *q],
            md="compile.md",
            quiet=True,
        ),
        "optimizer": dict(
            cmd=[
                PY,
                str(HERE / "bench_optimizer.py"),
                "--sims",
                "10" if a.quick else "50",
                "--repeats",
                "1" if a.quick else "5",
            ],
            md="optimizer_bench.md",
            capture=True,
        ),
        "optimizer_quality": dict(
            cmd=[
                PY,
                str(HERE / "optimizer_quality.py"),
                "--cases",
                "20" if a.quick else "500",
                "--out",
                str(Path(out) / "optimizer_quality.md"),
            ],
            md="optimizer_quality.md",
        ),
    }
    # the other helpers' scripts, run as they are (stdout -> <name>.md); smoke arguments in quick mode
    others = {
        "bench_backtest": (["--reps", "2"], ["--sims", "5", "--samples", "64", "--reps", "1", "--max-context", "256"]),
        "bench_toto": ([], ["--reps", "1", "--skip-forecast-ref"]),
        "bench_kronos": (
            ["--samples", "1,10,160", "--ref-reps", "1,1,1", "--reps", "3"],
            ["--samples", "1", "--ref-reps", "1", "--reps", "1"],
        ),
        "bench_universe": (
            ["--stocks", "48", "--lengths", "128", "--samples", "32", "--chunk", "8"],
            ["--stocks", "4", "--lengths", "64", "--samples", "8", "--chunk", "2"],
        ),
    }
    for name, (full, quick) in others.items():
        script = HERE / f"{name}.py"
        if script.exists():
            table[name.removeprefix("bench_")] = dict(
                cmd=[PY, str(script), *(quick if a.quick else full)],
                md=f"{name.removeprefix('bench_')}.md",
                capture=True,
            )
    return table


def run_job(name: str, job: dict, out: Path, timeout: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(job["cmd"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout)
        ok, err = proc.returncode == 0, proc.stderr[-2000:]
        stdout = proc.stdout
    except subprocess.TimeoutExpired:
        ok, err, stdout = False, f"timed out after {timeout} s", ""
    seconds = time.perf_counter() - t0
    if ok and job.get("capture"):
        (out / job["md"]).write_text(
            f"# {name}\n\n`{' '.join(Path(c).name if '/' in c else c for c in job['cmd'])}`\n\n{stdout}\n"
        )
    print(f"[{'ok' if ok else 'FAILED'}] {name} ({seconds:.0f} s)", flush=True)
    if not ok:
        print(err, file=sys.stderr)
    return dict(name=name, ok=ok, seconds=seconds, error=None if ok else err)


SECTIONS = [  # README order: (job name, section title)
    ("e2e", "End to end against the original call pattern"),
    ("scaling", "Scaling: simulations, stocks, context, samples; compile vs run; cost per context vs the FLOP bound"),
    ("compile", "Compilation: where a first backtest's time goes"),
    ("optimizer_bench", "MaxDiff optimisers: time against the DIRECT loop"),
    ("optimizer_quality", "MaxDiff optimisers: quality against DIRECT"),
    ("backtest", "Full backtest with Toto Base (backtest helper)"),
    ("toto", "Toto forward (toto helper)"),
    ("kronos", "Kronos (kronos helper)"),
    ("universe", "Universe"),
]


def headline(out: Path) -> str:
    """Key numbers read back from the saved JSON results (empty when absent)."""
    import json

    lines = []
    e2e, scaling = out / "e2e.json", out / "scaling.json"
    if e2e.exists():
        d = json.loads(e2e.read_text())
        rows = d["rows"]
        lines.append(
            f"- End to end, one stock, bench-small Toto, N={d['args']['sims']}, S={d['args']['samples']}: "
            f"**{d['ratio']:.0f}x measured** (reference {rows[0]['seconds']:.1f} s vs jaxsim "
            f"{rows[1]['seconds']:.3f} s warm; {d.get('ratio_cpu', float('nan')):.0f}x in CPU time; "
            f"jaxsim compile {rows[1]['compile_s']:.1f} s once)."
        )
        base = d.get("base") or {}
        if base:
            text = (
                f"- Toto Base, same setting: **{base['ratio']:.0f}x, EXTRAPOLATED** (reference per-call time x "
                f"{base['calls']} calls vs jaxsim {base['jax_s']:.2f} s measured)"
            )
            if base.get("ratio_default"):
                text += (
                    f"; at the original's defaults (N=50, S=3072): {base['ratio_default']:.0f}x EXTRAPOLATED "
                    f"(jaxsim {base['jax_default_s']:.1f} s measured per stock)"
                )
            lines.append(
                text + ". Both sides on this CPU; the original itself ran Toto on a GPU (about 290 s "
                "per stock at its defaults, docs/backtest.md#unique-contexts), which no measurement here reproduces."
            )
    if scaling.exists():
        d = json.loads(scaling.read_text())
        if d.get("model_rows"):
            m = max(d["model_rows"], key=lambda r: r["batch"])
            lines.append(
                f"- Toto Base forward, {m['batch']} contexts of {m['context']}: {m['per_context_ms']:.1f} ms "
                f"per context against a FLOP bound of {m['bound_ms']:.1f} ms "
                f"({m['peak_fraction']:.0%} of the measured {d['matmul_peak']['flops_per_s'] / 1e9:.0f} "
                "GFLOP/s matmul peak)."
            )
    return ("Headline numbers (CPU, see each table for conditions):\n\n" + "\n".join(lines) + "\n\n") if lines else ""


def write_readme(out: Path, statuses: dict[str, dict], quick: bool) -> Path:
    rel = os.path.relpath(out, HERE)
    parts = [
        "# Benchmarks\n\n",
        "Regenerate everything (tables, plots, this file): `PYTHONPATH=. python benchmarks/run_all.py` "
        "(`--quick` for a smoke run; `--dtype bfloat16` for the bf16 variant on a GPU). Package-only "
        "suites also run as `jaxsim bench [e2e|scaling|optimizer|full_history|compile|all] [--quick] "
        "[--out DIR]`. Every table carries its device, versions, date and machine load. The machine these "
        "were measured on is a shared "
        "2-core CPU box with other jobs running: ratios measured side by side in one run are the numbers to "
        "read; absolute times hold only for the stated device and load. No GPU was available, so the GPU "
        "(float32 / bfloat16) variant has not been measured: the same commands run unchanged on a CUDA jaxlib "
        "(the default device is used; `--dtype bfloat16` casts weights to bf16 and sets bf16 matmul "
        "precision).\n\n"
        "What each part measures:\n\n"
        "- **End to end** (`bench_e2e.py`): one real stock, the original's per-stock call pattern "
        "(`reference_runner.py`, inside the PyTorch reference venv: 28 `TotoForecaster.forecast` calls per "
        "simulation, S samples each, no cache) against `jaxsim.backtest(...)` with the same seeded random "
        "weights (converted by jaxsim's converter), side by side in one run. Reduced setting measured on both "
        "sides; Base: the reference's measured per-call time x its call count, labelled EXTRAPOLATED.\n"
        "- **Scaling** (`jaxsim bench scaling`): one compiled walk-forward program per row; compile and warm "
        "run separately; XLA's memory accounting of the program; Toto FLOPs per forward from the config "
        "(`jaxsim.bench.harness.toto_forward_flops`, 2 FLOP per MAC, docs/models.md#flop-counts; "
        "checked against XLA's own cost "
        "analysis in `tests/test_bench.py`) against the device's dense matmul peak measured in the same run.\n"
        "- **Optimizers**: the jitted MaxDiff multiplier optimisers against the original's scipy DIRECT loop "
        "(time and objective reached); the optimizer helper's 1000-case write-up is "
        f"[{rel}/optimizer.md]({rel}/optimizer.md).\n"
        "- **Backtest / Toto / Kronos**: the other components' own benchmark scripts, run as they are.\n\n",
    ]
    if quick:
        parts.append("**These results are from `--quick` (smoke sizes), not the full run.**\n\n")
    parts.append(headline(out))
    for name, title in SECTIONS:
        md = out / f"{name}.md"
        status = statuses.get(name.removesuffix("_bench"))
        if not md.exists() and not status:
            continue
        parts.append(f"## {title}\n\n")
        if status and not status["ok"]:
            last = status["error"].strip().splitlines()[-1] if status["error"] else "?"
            parts.append(f"_Last run failed: {last}_\n\n")
        if md.exists():
            body = md.read_text()
            lines = body.splitlines()
            if lines and lines[0].startswith("# "):  # demote the file's own title
                body = "\n".join(lines[1:])
            body = body.replace("](e2e.png)", f"]({rel}/e2e.png)").replace("](scaling.png)", f"]({rel}/scaling.png)")
            parts.append(body.strip() + f"\n\n(source: [{rel}/{name}.md]({rel}/{name}.md))\n\n")
    path = HERE / "README.md"
    path.write_text("".join(parts))
    return path


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--only", default="", help="comma-separated job names (default: all)")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    ap.add_argument("--timeout", type=int, default=3600, help="per benchmark, seconds")
    ap.add_argument("--readme-only", action="store_true", help="only rewrite README.md from the saved results")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.readme_only:
        print(f"README: {write_readme(a.out, {}, a.quick)}")
        return
    table = jobs(a)
    names = [n for n in a.only.split(",") if n] or list(table)
    statuses = {}
    for name in names:
        if name not in table:
            raise SystemExit(f"unknown benchmark {name!r}; known: {', '.join(table)}")
        statuses[name] = run_job(name, table[name], a.out, a.timeout)
        write_readme(a.out, statuses, a.quick)  # after every job: an interrupted run leaves a consistent README
    print(f"README: {write_readme(a.out, statuses, a.quick)}")
    if not all(s["ok"] for s in statuses.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
