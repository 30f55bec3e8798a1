"""Toto speed, jaxsim vs the toto-ts reference, side by side in one run (Base config, random weights).

    PYTHONPATH=. python benchmarks/bench_toto.py [--ref-python PATH] [--skip-forecast-ref]

1. Backbone forward, B = 64, V = 1, T = 512 (scaler, 12 layers, unembed, head on every position, mixture
   mean): jaxsim jitted (compile time reported separately) vs reference eager torch; medians of reps.
2. One-context forecast, ctx 1000 (padded to 1024), Hp = 1, S = 3072 samples: jaxsim (one pass + 3072
   draws, docs/models.md#toto-one-step-sampling) vs ``TotoForecaster.forecast`` with samples_per_batch 384 (8 batched
   passes).
The reference runs in its venv as a subprocess, after the jaxsim part, never concurrently. Both sides
use 2 threads (``--threads 1`` for both: steadier when the machine is shared); the machine may be shared, so quote the
load average printed with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __name__ == "__main__" and "--threads" in sys.argv:  # must be set before jax is imported
    _n = sys.argv[sys.argv.index("--threads") + 1]
    if _n == "1":
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        )

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jaxsim.models.toto.forecast import Mixture, forecast, mixture_mean  # noqa: E402
from jaxsim.models.toto.model import TOTO_BASE, init_toto, toto_forward  # noqa: E402


def timed(fn, reps):
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref-python", default=".venv-ref-toto/bin/python")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--forecast-ref-reps", type=int, default=1)
    ap.add_argument("--skip-forecast-ref", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--threads",
        type=int,
        default=2,
        choices=[1, 2],
        help="threads for both sides (1: steadier numbers on a shared machine)",
    )
    args = ap.parse_args()
    res: dict = dict(device=str(jax.devices()[0]), jax=jax.__version__, load_before=os.getloadavg())
    cfg = TOTO_BASE
    params = init_toto(cfg, jax.random.key(0))
    rng = np.random.default_rng(0)

    # 1. backbone forward
    x = jnp.asarray(rng.normal(0, 0.02, (64, 1, 512)).astype(np.float32))
    valid, ids = jnp.ones(x.shape, bool), jnp.zeros(x.shape, jnp.int32)

    @jax.jit
    def backbone_mean(params, x, valid, ids):
        mix, loc, scale = toto_forward(params, cfg, x, valid, ids)
        return mixture_mean(Mixture(*mix, loc, scale))

    t = time.perf_counter()
    jax.block_until_ready(backbone_mean(params, x, valid, ids))
    res["jaxsim_backbone_compile_and_first_s"] = time.perf_counter() - t
    res["jaxsim_backbone_times_s"] = timed(lambda p=params: backbone_mean(p, x, valid, ids), args.reps)

    # 2. one-context forecast, Hp = 1, S = 3072
    ctx = rng.normal(0, 0.02, (1, 1, 1000)).astype(np.float32)
    cv, ci = np.ones(ctx.shape, bool), np.zeros(ctx.shape, np.int32)
    key = jax.random.key(1)
    t = time.perf_counter()
    jax.block_until_ready(forecast(params, cfg, ctx, cv, ci, 1, key=key, num_samples=3072))
    res["jaxsim_forecast_compile_and_first_s"] = time.perf_counter() - t
    res["jaxsim_forecast_times_s"] = timed(
        lambda p=params: forecast(p, cfg, ctx, cv, ci, 1, key=key, num_samples=3072), args.reps
    )
    del params

    # reference, sequentially after jaxsim
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    ref_dir = ROOT / "tools" / "reference"

    def ref(*a):
        out = subprocess.run(
            [args.ref_python, str(ref_dir / "toto_bench_ref.py"), "--threads", str(args.threads), *a],
            check=True,
            capture_output=True,
            text=True,
            env=env,
            cwd=ref_dir,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    r = ref("--what", "backbone", "--batch", "64", "--context", "512", "--reps", str(args.reps))
    res["ref_backbone_times_s"] = r["times_s"]
    res["torch"] = r["torch"]
    if not args.skip_forecast_ref:
        r = ref(
            "--what",
            "forecast",
            "--context",
            "1000",
            "--num-samples",
            "3072",
            "--spb",
            "384",
            "--reps",
            str(args.forecast_ref_reps),
        )
        res["ref_forecast_times_s"] = r["times_s"]
    res["load_after"] = os.getloadavg()

    med = {k[:-8]: statistics.median(v) for k, v in res.items() if k.endswith("_times_s")}
    res["medians_s"] = med
    print(
        f"Toto benchmark ({res['device']}, jax {res['jax']}, torch {res.get('torch')}, {args.threads} threads; "
        f"load avg before {res['load_before'][0]:.1f}, after {res['load_after'][0]:.1f})"
    )
    print(
        f"  backbone B=64 T=512: jaxsim {med['jaxsim_backbone']:.3f} s (compile+first "
        f"{res['jaxsim_backbone_compile_and_first_s']:.1f} s), reference {med['ref_backbone']:.3f} s, "
        f"ratio jaxsim/ref {med['jaxsim_backbone'] / med['ref_backbone']:.2f}"
    )
    line = (
        f"  forecast ctx 1000 Hp=1 S=3072: jaxsim {med['jaxsim_forecast'] * 1e3:.1f} ms (compile+first "
        f"{res['jaxsim_forecast_compile_and_first_s']:.1f} s)"
    )
    if "ref_forecast" in med:
        line += f", reference {med['ref_forecast']:.1f} s, speed-up {med['ref_forecast'] / med['jaxsim_forecast']:.0f}x"
    print(line)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
