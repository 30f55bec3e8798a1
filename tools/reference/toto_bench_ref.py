"""Reference-side timings for benchmarks/bench_toto.py (run INSIDE the reference venv; prints JSON).

python toto_bench_ref.py --what backbone --batch 64 --context 512 --reps 7
python toto_bench_ref.py --what forecast --context 1000 --num-samples 3072 --spb 384 --reps 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from toto_fixtures import BASE, build_model, masked


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--what", choices=["backbone", "forecast"], required=True)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--num-samples", type=int, default=3072)
    ap.add_argument("--spb", type=int, default=384)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    toto = build_model(BASE, 0)
    rng = np.random.default_rng(0)
    times = []
    if args.what == "backbone":
        x = torch.from_numpy(rng.normal(0, 0.02, (args.batch, 1, args.context)).astype(np.float32))
        m, ids = torch.ones(x.shape, dtype=torch.bool), torch.zeros(x.shape, dtype=torch.int)
        with torch.inference_mode():
            for r in range(args.reps + 1):
                t = time.perf_counter()
                dist, loc, scale = toto.model(x, m, ids)
                mean = dist.mean * scale + loc
                float(mean.sum())
                if r:  # first call is warm-up
                    times.append(time.perf_counter() - t)
    else:
        from toto.inference.forecaster import TotoForecaster

        fc = TotoForecaster(toto.model)
        x = rng.normal(0, 0.02, (1, 1, args.context)).astype(np.float32)
        inp = masked(x, np.ones(x.shape, bool), np.zeros(x.shape, np.int32))
        with torch.inference_mode():
            for _ in range(args.reps):
                t = time.perf_counter()
                out = fc.forecast(inp, prediction_length=1, num_samples=args.num_samples, samples_per_batch=args.spb)
                float(out.samples.sum())
                times.append(time.perf_counter() - t)
    print(
        json.dumps(
            dict(
                what=args.what,
                times_s=times,
                median_s=statistics.median(times),
                torch=torch.__version__,
                threads=torch.get_num_threads(),
            )
        )
    )


if __name__ == "__main__":
    main()
