"""Time the official KronosPredictor (run inside the reference venv; called by benchmarks/bench_kronos.py).

    .venv-ref-kronos/bin/python tools/reference/kronos_bench_ref.py --out DIR \
        [--model small] [--lookback 400] [--pred-len 7] [--max-context 512] [--samples 1,10,160]

Saves a seeded, perturbed random-init model + tokenizer in the hub layout under DIR, the input frame
(``frame.npz``), and ``ref_times.json`` with the wall time of each ``predict`` call (best of --reps after
one warm-up call) and the mean predictions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from kronos_finance._vendor.kronos_model import KronosPredictor  # noqa: E402
from kronos_fixtures import build_and_save, make_frame  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", default="small")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lookback", type=int, default=400)
    ap.add_argument("--pred-len", type=int, default=7)
    ap.add_argument("--max-context", type=int, default=512)
    ap.add_argument("--samples", default="1,10,160")
    ap.add_argument("--reps", default="3,3,1", help="timed repetitions per sample count")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    tok, model, _ = build_and_save(args.model, args.seed, out)
    rng = np.random.default_rng(args.seed)
    L, P = args.lookback, args.pred_len
    df, dates = make_frame(rng, L + P, "D", "2023-01-02 04:00")
    x_ts, y_ts = dates.iloc[:L].reset_index(drop=True), dates.iloc[L:].reset_index(drop=True)
    frame = df.iloc[:L].reset_index(drop=True)
    np.savez(
        out / "frame.npz",
        **{c: frame[c].to_numpy() for c in frame.columns},
        x_dates=x_ts.to_numpy().astype("datetime64[ns]").astype(np.int64),
        y_dates=y_ts.to_numpy().astype("datetime64[ns]").astype(np.int64),
    )
    pred = KronosPredictor(model, tok, device="cpu", max_context=args.max_context, clip=5)
    kw = dict(pred_len=P, T=1.0, top_k=0, top_p=0.9, verbose=False)
    pred.predict(frame, x_ts, y_ts, sample_count=1, **kw)  # warm-up
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "runs": {}}
    for s, reps in zip(map(int, args.samples.split(",")), map(int, args.reps.split(","))):
        times, means = [], None
        for _ in range(reps):
            load0 = os.getloadavg()[0]
            t0 = time.perf_counter()
            means = pred.predict(frame, x_ts, y_ts, sample_count=s, **kw).to_numpy()
            times.append(time.perf_counter() - t0)
        result["runs"][str(s)] = {
            "times": times,
            "best": min(times),
            "load1_before": load0,
            "mean_close": means[:, 3].tolist(),
        }
        print(f"reference S={s}: best {min(times):.3f}s of {reps}", file=sys.stderr, flush=True)
    (out / "ref_times.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
