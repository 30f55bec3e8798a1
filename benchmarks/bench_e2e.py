"""End to end: jaxsim's one-call backtest against the original's Toto call pattern, in one run.

    PYTHONPATH=. python benchmarks/bench_e2e.py [--quick] [--out benchmarks/results]

Reduced setting, MEASURED on both sides: a seeded random bench-small Toto (P=64, D=64, 2 layers, K=8)
built in the PyTorch reference venv by ``reference_runner.py weights`` and converted with jaxsim's own
converter (identical weights), one real stock (default CRDO from ../shared/data/daily, about 4 years
as the original), N = 10 simulations, S = 256 samples, 4 targets, trimmed_mean_10.

* reference: ``reference_runner.py run`` in a subprocess: N x 4 x 7 = 280 ``TotoForecaster.forecast``
  calls (S samples in batches of spb = min(384, S), no cache), then the aggregation;
* jaxsim: ``jaxsim.backtest(prices, toto, n_sims=N, num_samples=S, targets=4)`` (forecasts of the
  N+6 unique contexts per target, aggregation, 8 strategies and the MaxDiff optimiser for every
  simulation), compile time reported separately, warm time = median of repeats.

Base configuration, EXTRAPOLATED for the reference: the reference's measured per-call time of a
random Toto-Open-Base-1.0-shaped model (a few calls on the same stock) times its call count (28 N),
against jaxsim's measured Base backtest (random Base weights; timings do not depend on the values).

Both sides use the same number of threads (``--threads``, default 1: on a shared 2-core machine a
2-thread torch collapses under contention, docs/models.md#toto-reference-env; XLA is limited to one thread by
XLA_FLAGS). Writes ``e2e.md``, ``e2e.png`` and ``e2e.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DAILY = next(
    (p for p in (ROOT.parent / "shared/data/daily", ROOT.parent.parent / "shared/data/daily") if p.is_dir()),
    ROOT.parent / "shared/data/daily",
)
REF_PYTHON = str(ROOT / ".venv-ref-toto/bin/python")  # built by tools/reference/setup_toto_ref.sh
RUNNER = Path(__file__).resolve().parent / "reference_runner.py"


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke mode: N=2, S=64, 8 Base calls skipped")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--work", default="/tmp/jaxsim-bench-e2e", help="weights cache (outside the repo)")
    ap.add_argument("--csv", default=str(DAILY / "CRDO.csv"))
    ap.add_argument("--sims", type=int, default=10)
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--spb", type=int, default=384, help="reference samples_per_batch (the original's default)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--base-calls", type=int, default=3, help="reference Base calls to time (0: skip Base)")
    ap.add_argument("--ref-python", default=REF_PYTHON)
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    ap.add_argument("--replot", action="store_true", help="only redraw e2e.png from e2e.json in --out")
    ap.add_argument("--skip-defaults", action="store_true", help="skip jaxsim's Base N=50 S=3072 measurement")
    a = ap.parse_args(argv)
    if a.quick:
        a.sims, a.samples, a.repeats, a.base_calls = 2, 64, 1, 0
    return a


ARGS = parse_args()
if ARGS.threads:  # must precede the jax import
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
        f"intra_op_parallelism_threads={ARGS.threads}"
    ).strip()
    os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))

import numpy as np  # noqa: E402


def ref(cmd: list[str], timeout=7200) -> dict:
    """Run the reference runner in the reference venv; its last stdout line is JSON."""
    env = dict(os.environ, OMP_NUM_THREADS=str(ARGS.threads or 2), PYTHONWARNINGS="ignore")
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run(
        [ARGS.ref_python, str(RUNNER), *cmd], capture_output=True, text=True, timeout=timeout, env=env
    )
    if proc.returncode:
        raise RuntimeError(f"reference runner failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def weights(config: str, work: Path):
    """Hub folder from the reference venv + jaxsim conversion (cached in ``work``)."""
    from jaxsim.models.toto.checkpoint import convert_toto_checkpoint, load_toto

    hub, dst = work / f"hub-{config}", work / "jaxsim"
    if not (hub / "model.safetensors").exists():
        ref(["weights", "--config", config, "--out", str(hub)])
    if not (dst / hub.name / "params.safetensors").exists():
        convert_toto_checkpoint(hub, dst, name=hub.name)
    cfg, params = load_toto(dst / hub.name)
    return hub, cfg, params


def jax_side(prices, config, params, sims, samples, repeats):
    """Time the public backtest() call: first call (compile + run) and warm calls."""
    import jax

    from jaxsim.bench import harness as bench
    from jaxsim.bench import suites as bench_suites
    from jaxsim.shell.api import backtest

    fc = bench_suites.toto_forecaster(config, num_samples=samples, params=params, dtype=ARGS.dtype)
    with bench_suites.precision(ARGS.dtype):
        timing = bench.time_call(
            lambda: backtest(
                prices,
                fc,
                n_sims=sims,
                targets=bench_suites.ALL_TARGETS,
                num_samples=samples,
                key=jax.random.key(0),
                protocol="legacy",
            ),
            repeats=repeats,
        )
    return timing


def plot(path, rows, ratio, base, env):
    """Bar chart of the rows (log seconds); extrapolated reference bars are hatched and labelled."""
    from jaxsim.bench import harness as bench

    labels = [f"{x['side'].split(' (')[0].replace(' backtest() warm', '')}\n{x['setting']}" for x in rows]
    notes = [("extrapolated " if "EXTRA" in x["kind"] else "") + f"{x['seconds']:.3g} s" for x in rows]
    bench.plot_bars(
        path,
        labels,
        [x["seconds"] for x in rows],
        ylabel="wall seconds per stock (log)",
        title=f"one stock end to end: reduced setting {ratio:.0f}x measured"
        + (f", Base {base['ratio']:.0f}x extrapolated" if base else ""),
        footer=bench.header_markdown(env).strip("_"),
        annotate=notes,
    )


def main() -> None:
    if ARGS.replot:  # redraw e2e.png from e2e.json (no measurement)
        saved = json.loads((Path(ARGS.out) / "e2e.json").read_text())
        plot(Path(ARGS.out) / "e2e.png", saved["rows"], saved["ratio"], saved["base"], saved["env"])
        return
    from jaxsim.bench import harness as bench
    from jaxsim.data.prices import load_prices
    from jaxsim.models.toto.model import TOTO_BASE

    a = ARGS
    out, work = Path(a.out), Path(a.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    prices = load_prices(a.csv)
    n_rows = len(prices.close)
    env = bench.environment()
    t_start = time.perf_counter()

    # ---- reduced setting: identical weights, measured on both sides, side by side in this run
    hub, cfg, params = weights("small", work)
    jt = jax_side(prices, cfg, params, a.sims, a.samples, a.repeats)
    ref_json = work / "reference_small.json"
    r = ref(
        [
            "run",
            "--checkpoint",
            str(hub),
            "--csv",
            a.csv,
            "--sims",
            str(a.sims),
            "--samples",
            str(a.samples),
            "--spb",
            str(a.spb),
            "--threads",
            str(a.threads or 2),
            "--warmup",
            "--out",
            str(ref_json),
        ]
    )
    r_full = json.loads(ref_json.read_text())
    jt_after = jax_side(prices, cfg, params, a.sims, a.samples, a.repeats)  # again after the reference: drift check
    jax_run = min(jt.run_s, jt_after.run_s)
    jax_cpu = min(jt.cpu_s, jt_after.cpu_s)
    result = jt.output
    # x_predictions = P_X[0..5] per simulation (row k = simulation k), reference points (N, 4, 7)
    names = [t.lower() for t in r_full["targets"]]
    ours = np.stack([np.array(result.records[f"{x}_predictions"].tolist(), np.float64) for x in names], axis=1)
    rp = np.asarray(r_full["points"])[:, :, :6]
    bands = np.asarray(r_full["bands"])[:, :, :6]
    agree = {}
    if ours.shape == rp.shape:
        diff = np.abs(ours - rp)
        # standard error of a trimmed mean of S draws, with sigma from the band (P60-P40 = 0.2533 sigma if normal)
        se = np.maximum(bands, 1e-12) / 0.2533 / np.sqrt(r_full["num_samples"])
        agree = dict(
            max_abs_diff=float(diff.max()),
            median_abs_diff=float(np.median(diff)),
            median_band=float(np.median(bands)),
            median_z=float(np.median(diff / se)),
            max_z=float(np.max(diff / se)),
        )
    rows = [
        dict(
            setting=f"bench-small, N={a.sims}, S={a.samples}",
            side="reference (toto-ts, torch)",
            kind="measured",
            calls=r["calls"],
            seconds=r["total_s"],
            cpu_s=r["total_cpu_s"],
            compile_s=None,
        ),
        dict(
            setting=f"bench-small, N={a.sims}, S={a.samples}",
            side="jaxsim backtest() warm",
            kind="measured",
            calls=4 * (a.sims + 6),
            seconds=jax_run,
            cpu_s=jax_cpu,
            compile_s=jt.compile_s,
        ),
    ]
    ratio = r["total_s"] / jax_run
    ratio_cpu = r["total_cpu_s"] / jax_cpu
    ratio_cold = r["total_s"] / (jax_run + jt.compile_s)

    # ---- Base: reference per-call x call count (extrapolated) vs jaxsim measured
    base = {}
    if a.base_calls:
        bhub = work / "hub-base"
        if not (bhub / "model.safetensors").exists():
            ref(["weights", "--config", "base", "--out", str(bhub)])
        rb = ref(
            [
                "run",
                "--checkpoint",
                str(bhub),
                "--csv",
                a.csv,
                "--sims",
                str(a.sims),
                "--samples",
                str(a.samples),
                "--spb",
                str(a.spb),
                "--threads",
                str(a.threads or 2),
                "--max-calls",
                str(a.base_calls),
            ]
        )
        from jaxsim.models.toto.checkpoint import convert_toto_checkpoint, load_toto

        if not (work / "jaxsim" / "hub-base" / "params.safetensors").exists():
            convert_toto_checkpoint(bhub, work / "jaxsim", name="hub-base")
        bcfg, bparams = load_toto(work / "jaxsim" / "hub-base")
        assert bcfg == TOTO_BASE
        jb = jax_side(prices, bcfg, bparams, a.sims, a.samples, max(1, a.repeats - 1))
        calls = 28 * a.sims
        base = dict(
            per_call_s=rb["call_s_median"],
            calls_timed=rb["calls"],
            calls=calls,
            ref_extrapolated_s=rb["call_s_median"] * calls,
            jax_s=jb.run_s,
            jax_compile_s=jb.compile_s,
            ref_extrapolated_cpu_s=rb["call_cpu_s_median"] * calls,
            jax_cpu_s=jb.cpu_s,
        )
        base["ratio"] = base["ref_extrapolated_s"] / base["jax_s"]
        base["ratio_cpu"] = base["ref_extrapolated_cpu_s"] / base["jax_cpu_s"]
        # the original's defaults: N = 50, S = 3072 in batches of 384 -> 8 batches per call, 1400 calls
        # per-sample cost of the measured calls (S samples each) x 3072 samples x 1400 calls
        base["ref_default_extrapolated_s"] = rb["call_s_median"] * (3072 / rb["num_samples"]) * 1400
        base["ref_default_extrapolated_cpu_s"] = rb["call_cpu_s_median"] * (3072 / rb["num_samples"]) * 1400
        rows += [
            dict(
                setting=f"Toto Base, N={a.sims}, S={a.samples}",
                side="reference (toto-ts, torch)",
                kind=f"EXTRAPOLATED: {rb['call_s_median']:.2f} s/call (median of {rb['calls']}) x {calls} calls",
                calls=calls,
                seconds=base["ref_extrapolated_s"],
                cpu_s=base["ref_extrapolated_cpu_s"],
                compile_s=None,
            ),
            dict(
                setting=f"Toto Base, N={a.sims}, S={a.samples}",
                side="jaxsim backtest() warm",
                kind="measured",
                calls=4 * (a.sims + 6),
                seconds=jb.run_s,
                cpu_s=jb.cpu_s,
                compile_s=jb.compile_s,
            ),
        ]
        if base["ref_default_extrapolated_s"] and not a.skip_defaults:
            jd = jax_side(prices, bcfg, bparams, 50, 3072, 1)
            base.update(
                jax_default_s=jd.run_s,
                jax_default_compile_s=jd.compile_s,
                ratio_default=base["ref_default_extrapolated_s"] / jd.run_s,
            )
            rows += [
                dict(
                    setting="Toto Base, N=50, S=3072 (original defaults)",
                    side="reference (toto-ts, torch)",
                    kind=f"EXTRAPOLATED: {rb['call_s_median']:.2f} s per {rb['num_samples']}-sample call x "
                    f"{3072 / rb['num_samples']:g} x 1400 calls",
                    calls=1400,
                    seconds=base["ref_default_extrapolated_s"],
                    cpu_s=base["ref_default_extrapolated_cpu_s"],
                    compile_s=None,
                ),
                dict(
                    setting="Toto Base, N=50, S=3072 (original defaults)",
                    side="jaxsim backtest() warm",
                    kind="measured",
                    calls=4 * 56,
                    seconds=jd.run_s,
                    cpu_s=jd.cpu_s,
                    compile_s=jd.compile_s,
                ),
            ]

    cols = [
        ("setting", "setting", ""),
        ("side", "side", ""),
        ("kind", "how", ""),
        ("calls", "model calls", "d"),
        ("seconds", "wall time (s)", ".3f"),
        ("cpu_s", "CPU time (s)", ".3f"),
        ("compile_s", "jaxsim compile (s)", ".2f"),
    ]
    lines = [
        "# End to end: jaxsim vs the original's Toto call pattern\n\n",
        f"One stock: {Path(a.csv).stem} ({n_rows} daily rows, contexts {r['context_len_min']}-"
        f"{r['context_len_max']} returns), 4 targets x 7 rolling origins per simulation, trimmed_mean_10. "
        f"Reference: toto-ts {r['versions']['toto-ts']}, torch {r['versions']['torch']}, "
        f"{r['threads']} thread(s), one `TotoForecaster.forecast` call per (simulation, target, origin), "
        f"S={r['num_samples']} in batches of {r['samples_per_batch']}, no cache. jaxsim: one compiled "
        f"program per stock (N+6 unique contexts per target, one forward each, S draws from the mixture, "
        f"then the 8 strategies and the MaxDiff optimiser), {a.threads or 'all'} XLA thread(s), {a.dtype}. "
        "Same seeded random weights on both sides (reference venv -> hub folder -> jaxsim converter).\n\n",
        bench.markdown_table(rows, cols),
        f"\n**Measured ratio at the reduced setting: {ratio:.0f}x** (reference {r['total_s']:.1f} s / jaxsim "
        f"{jax_run:.3f} s warm); **{ratio_cpu:.0f}x in process CPU time** (reference {r['total_cpu_s']:.1f} s / "
        f"jaxsim {jax_cpu:.3f} s; CPU time discounts the other jobs on this shared machine); "
        f"{ratio_cold:.2g}x counting jaxsim's one-off compile ({jt.compile_s:.1f} s). "
        f"jaxsim warm before / after the reference: {jt.run_s:.3f} s / {jt_after.run_s:.3f} s.\n",
    ]
    if base:
        lines.append(
            f"\n**Base, extrapolated ratio: {base['ratio']:.0f}x** (reference {base['per_call_s']:.2f} s "
            f"per call measured x {base['calls']} calls = {base['ref_extrapolated_s']:.0f} s, EXTRAPOLATED; "
            f"jaxsim {base['jax_s']:.2f} s measured; {base['ratio_cpu']:.0f}x in CPU time)."
        )
        if base.get("ref_default_extrapolated_s"):
            lines.append(
                f" At the original's defaults (N=50, S=3072, 1400 calls) the same per-sample cost "
                f"extrapolates to {base['ref_default_extrapolated_s'] / 3600:.1f} h per stock for the "
                "reference (EXTRAPOLATED)"
            )
            if base.get("ratio_default"):
                lines.append(
                    f" against jaxsim's measured {base['jax_default_s']:.1f} s: "
                    f"**{base['ratio_default']:.0f}x extrapolated**"
                )
            lines.append(".")
        lines.append("\n")
    if agree:
        lines.append(
            "\nSame weights, same data: |jaxsim - reference| of the point forecasts (N x 4 targets x 6 "
            f"origins): median {agree['median_abs_diff']:.2e}, max {agree['max_abs_diff']:.2e}, "
            f"against a median P60-P40 band of {agree['median_band']:.2e}; in approximate standard "
            f"errors of a {r['num_samples']}-draw trimmed mean: median {agree['median_z']:.2f}, "
            f"max {agree['max_z']:.2f} (the draws differ: "
            "independent random streams; agreement within sampling noise is what identical weights give).\n"
        )
    lines.append(
        "\n"
        + bench.header_markdown(
            env, f"reference load average {r['loadavg'][0]:.1f}; total bench wall {time.perf_counter() - t_start:.0f} s"
        )
        + "\n"
    )
    lines.append("\n![e2e](e2e.png)\n")
    text = "".join(lines)
    (out / "e2e.md").write_text(text)
    plot(out / "e2e.png", rows, ratio, base, env)
    reference = {k: v for k, v in r_full.items() if k not in ("points", "bands")}
    bench.write_json(
        out / "e2e.json",
        dict(
            env=env,
            args=vars(a),
            rows=rows,
            ratio=ratio,
            ratio_cpu=ratio_cpu,
            ratio_with_compile=ratio_cold,
            base=base,
            agreement=agree,
            reference=reference,
        ),
    )
    print(text)


if __name__ == "__main__":
    main()
