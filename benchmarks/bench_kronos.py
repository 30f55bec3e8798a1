"""Kronos: jaxsim vs the official PyTorch predictor, side by side in one run on this machine.

    PYTHONPATH=. python benchmarks/bench_kronos.py [--ref-venv .venv-ref-kronos]
        [--model small] [--samples 1,10,160] [--json out.json]

Kronos-small + Tokenizer-base with seeded random (perturbed) weights, lookback 400, pred_len 7,
max_context 512, T = 1, top_p = 0.9. The reference runs first in its own venv as a subprocess
(tools/reference/kronos_bench_ref.py, one warm-up call then the timed calls), which also writes the
weights and the input frame; right after each reference measurement jaxsim runs the same sample count
on the same converted weights: the first call (compile included) is reported separately, then the best
of a few warm calls (block_until_ready). Load averages are printed because the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from jaxsim.models.kronos.checkpoint import load_kronos
from jaxsim.models.kronos.predict import frame_to_features, predict, time_features

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref-venv", type=Path, default=Path(".venv-ref-kronos"))
    ap.add_argument("--model", default="small")
    ap.add_argument("--samples", default="1,10,160")
    ap.add_argument("--ref-reps", default="3,3,1", help="reference repetitions per sample count (0: skip)")
    ap.add_argument("--ref-threads", type=int, default=2, help="torch intra-op threads of the reference")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--lookback", type=int, default=400)
    ap.add_argument("--pred-len", type=int, default=7)
    ap.add_argument("--max-context", type=int, default=512)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_kronos_"))
    samples = [int(s) for s in args.samples.split(",")]
    print(
        f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()} at start; jax {jax.__version__} "
        f"{jax.devices()[0].platform}",
        flush=True,
    )

    def run_reference(s: int, reps: int) -> dict:
        subprocess.run(
            [
                str(args.ref_venv / "bin" / "python"),
                str(ROOT / "tools/reference/kronos_bench_ref.py"),
                "--out",
                str(work),
                "--model",
                args.model,
                "--samples",
                str(s),
                "--reps",
                str(reps),
                "--lookback",
                str(args.lookback),
                "--pred-len",
                str(args.pred_len),
                "--max-context",
                str(args.max_context),
                "--threads",
                str(args.ref_threads),
            ],
            check=True,
        )
        return json.loads((work / "ref_times.json").read_text())

    if not (work / "frame.npz").is_file():  # writes the weights and the frame (a 1-sample timing too)
        run_reference(1, 1)
    tok_name = "tokenizer-2k" if args.model == "mini" else "tokenizer-base"
    bundle = load_kronos(work / args.model, work / tok_name)
    f = np.load(work / "frame.npz")
    frame = pd.DataFrame({c: f[c] for c in ("open", "high", "low", "close", "volume", "amount")})
    x = frame_to_features(frame)[None]
    xs = time_features(f["x_dates"].astype("datetime64[ns]"))[None]
    ys = time_features(f["y_dates"].astype("datetime64[ns]"))[None]
    rows = []
    for s, ref_reps in zip(samples, map(int, args.ref_reps.split(","))):
        # the reference first, then jaxsim right after it, so both see the same machine load
        t0 = time.perf_counter()
        ref = run_reference(s, ref_reps) if ref_reps > 0 else None
        print(f"reference S={s} done in {time.perf_counter() - t0:.1f}s", flush=True)
        call = lambda k: predict(
            bundle,
            x,
            xs,
            ys,
            pred_len=args.pred_len,
            key=jax.random.PRNGKey(k),
            sample_count=s,
            temperature=1.0,
            top_k=0,
            top_p=0.9,
            max_context=args.max_context,
            clip=5.0,
        )
        t0 = time.perf_counter()
        jax.block_until_ready(call(0))
        compile_s = time.perf_counter() - t0
        times = []
        for r in range(args.reps):
            t0 = time.perf_counter()
            mean, paths = jax.block_until_ready(call(r + 1))
            times.append(time.perf_counter() - t0)
        r = ref["runs"][str(s)] if ref else {"best": float("nan"), "times": [], "load1_before": None, "mean_close": []}
        rows.append(
            dict(
                samples=s,
                ref_best_s=r["best"],
                ref_times=r["times"],
                jax_best_s=min(times),
                jax_times=times,
                jax_first_call_s=compile_s,
                speedup=r["best"] / min(times),
                load1=os.getloadavg()[0],
                ref_load1=r["load1_before"],
                ref_mean_close=r["mean_close"],
                jax_mean_close=np.asarray(mean)[0, :, 3].tolist(),
            )
        )
        print(
            f"S={s:4d}: reference {r['best']:8.3f}s | jaxsim {min(times):8.4f}s warm "
            f"(first call incl. compile {compile_s:6.1f}s) | speed-up {r['best'] / min(times):7.1f}x | "
            f"load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        if args.json:
            args.json.write_text(
                json.dumps(
                    dict(
                        model=args.model,
                        lookback=args.lookback,
                        pred_len=args.pred_len,
                        max_context=args.max_context,
                        ref_threads=args.ref_threads,
                        cpus=os.cpu_count(),
                        rows=rows,
                    ),
                    indent=1,
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
