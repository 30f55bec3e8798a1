"""The original's Toto call pattern, timed with the official toto-ts code (run INSIDE the reference venv).

    .venv-ref-toto/bin/python benchmarks/reference_runner.py weights --config small --out DIR
    .venv-ref-toto/bin/python benchmarks/reference_runner.py run --checkpoint DIR \
        --csv ../shared/data/daily/CRDO.csv --sims 10 --samples 256 --out ref.json

``weights`` builds a seeded, randomly initialised toto-ts model (every parameter perturbed) and saves it
in the hub layout (``config.json`` + ``model.safetensors``); jaxsim converts the same folder with its
own converter, so both sides forecast with identical weights.

``run`` does what the original backtester does for one stock
(docs/backtest.md#walk-forward-geometry, #return-transform, #rolling-origin-forecasts;
docs/backtest.md#rolling-origin-forecasts): for each simulation k = 0..N-1 it keeps rows 0..e (e = T-2-k), and for each
target Close, Low, High, Open it forms the returns r[1..e] and, for the origins j = 7..1, calls
``TotoForecaster.forecast(context = r[1..e-j], prediction_length=1, num_samples=S, samples_per_batch=spb)`` once (1-D
context -> one variate, padding mask all true, id mask 0, timestamps 0, interval 900 s, under ``torch.inference_mode``):
28 calls per simulation, no cache. Each call's draws are reduced to the trimmed_mean_10 point forecast and the P60-P40
band with numpy. ``--max-calls`` stops after that many calls (per-call timing for the Base extrapolation).

This script imports toto-ts and torch only (never jaxsim's model code) and contains no upstream code.
Writes a JSON with the timings, the point forecasts ``(N, 4, 7)`` and the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

CONFIGS = {
    # bench-small: Base's patch (64), one time-wise + one space-wise layer, narrow (355,808 parameters)
    "small": dict(
        patch_size=64,
        embed_dim=64,
        num_layers=2,
        num_heads=2,
        mlp_hidden_dim=128,
        spacewise_every_n_layers=2,
        k_components=8,
    ),
    # the test preset of docs/models.md#toto-config (patch 8)
    "tiny": dict(
        patch_size=8,
        embed_dim=64,
        num_layers=4,
        num_heads=4,
        mlp_hidden_dim=128,
        spacewise_every_n_layers=2,
        k_components=3,
    ),
    # Toto-Open-Base-1.0 (docs/models.md#toto-config), 151,306,080 parameters
    "base": dict(
        patch_size=64,
        embed_dim=768,
        num_layers=12,
        num_heads=12,
        mlp_hidden_dim=3072,
        spacewise_every_n_layers=12,
        k_components=24,
    ),
}
TARGETS = ("Close", "Low", "High", "Open")  # the original's order
CSV_COLUMN = {"Close": "close", "Low": "low", "High": "high", "Open": "open"}
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools" / "reference"))
from toto_fixtures import build_model, hub_config  # noqa: E402  (same seeded, perturbed toto-ts model)


def cmd_weights(args) -> dict:
    from safetensors.torch import save_file

    hp = CONFIGS[args.config]
    toto = build_model(hp, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sd = {k: v.contiguous() for k, v in toto.state_dict().items() if not k.endswith("rotary_emb.freqs")}
    save_file(sd, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(hub_config(hp), indent=1))
    n = sum(v.numel() for v in toto.parameters())
    meta = dict(
        config=args.config,
        hyperparameters=hp,
        seed=args.seed,
        parameters=int(n),
        perturbation="norm scales 1+0.3N, biases +0.05N, weights +0.3*std*N (torch.manual_seed(seed))",
    )
    (out / "reference_meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def load_forecaster(checkpoint):
    """What the original's TotoPipeline does on CPU: Toto.from_pretrained, float32, TotoForecaster(model.model)."""
    from toto.inference.forecaster import TotoForecaster
    from toto.model.toto import Toto

    toto = Toto.from_pretrained(str(checkpoint)).eval()
    return TotoForecaster(toto.model)


def read_prices(csv_path) -> dict[str, np.ndarray]:
    """Date-sorted OHLC columns of a daily CSV (Date, close, high, low, open, volume) as float64."""
    import pandas as pd

    df = pd.read_csv(csv_path).sort_values("Date").reset_index(drop=True)
    return {x: df[c].to_numpy(np.float64) for x, c in CSV_COLUMN.items()}


def returns(x: np.ndarray) -> np.ndarray:
    """r[0] = 1 (unused), r[t] = x[t]/x[t-1] - 1; 0 where x[t-1] == 0; non-finite -> 0
    (docs/backtest.md#return-transform)."""
    r = np.ones_like(x)
    prev = x[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        r[1:] = np.where(prev == 0, 0.0, x[1:] / prev - 1.0)
    return np.where(np.isfinite(r), r, 0.0)


def trimmed_mean(draws: np.ndarray, fraction: float = 0.10) -> float:
    """Sort, drop floor(S f) at each end, mean (docs/backtest.md#aggregation-specs: aggregate_with_spec
    'trimmed_mean_10')."""
    s = np.sort(np.asarray(draws, np.float64))
    cut = int(np.floor(len(s) * fraction))
    return float(s[cut : len(s) - cut].mean() if cut else s.mean())


def one_call(forecaster, context: np.ndarray, num_samples: int, spb: int) -> np.ndarray:
    """One original-style Toto call: a 1-D float32 context, one variate, Hp = 1 -> (S,) draws."""
    from toto.data.util.dataset import MaskedTimeseries

    series = torch.from_numpy(context.astype(np.float32))[None, :]  # (V=1, T): unbatched
    ts = MaskedTimeseries(
        series=series,
        padding_mask=torch.ones_like(series, dtype=torch.bool),
        id_mask=torch.zeros_like(series, dtype=torch.int),
        timestamp_seconds=torch.zeros_like(series, dtype=torch.int),
        time_interval_seconds=torch.full((1,), 900, dtype=torch.int),
    )
    with torch.inference_mode():
        fc = forecaster.forecast(ts, prediction_length=1, num_samples=num_samples, samples_per_batch=spb)
    return fc.samples.numpy().reshape(-1)  # (S,)


def cmd_run(args) -> dict:
    torch.set_num_threads(args.threads)
    t_load = time.perf_counter()
    forecaster = load_forecaster(args.checkpoint)
    load_s = time.perf_counter() - t_load
    prices = read_prices(args.csv)
    n_rows = len(prices["Close"])
    spb = min(args.spb, args.samples)
    num_samples = args.samples - args.samples % spb  # the original rounds S down to a multiple of spb
    torch.manual_seed(args.seed)
    if args.warmup:  # one untimed call (first-call allocations), as the original's pipeline warms up
        one_call(forecaster, returns(prices["Close"])[1 : n_rows - 8], num_samples, spb)
    points = np.full((args.sims, len(TARGETS), 7), np.nan)
    bands = np.full_like(points, np.nan)
    call_s, call_cpu_s, agg_s, lengths = [], [], 0.0, []
    stop = False
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(args.sims):
        e = n_rows - 2 - k  # simulation k keeps rows 0..e
        for xi, x in enumerate(TARGETS):
            y = returns(prices[x][: e + 1])[1:]  # y = r[1..e]
            for j in range(7, 0, -1):
                context = y[:-j]  # r[1..e-j]
                t1, c1 = time.perf_counter(), time.process_time()
                draws = one_call(forecaster, context, num_samples, spb)
                t2 = time.perf_counter()
                call_cpu_s.append(time.process_time() - c1)
                points[k, xi, 7 - j] = trimmed_mean(draws)
                bands[k, xi, 7 - j] = max(float(np.percentile(draws, 60) - np.percentile(draws, 40)), 0.0)
                agg_s += time.perf_counter() - t2
                call_s.append(t2 - t1)
                lengths.append(len(context))
                if args.max_calls and len(call_s) >= args.max_calls:
                    stop = True
                    break
            if stop:
                break
        if stop:
            break
    total_s, total_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    from importlib.metadata import version

    return dict(
        mode="full" if not stop else "per_call",
        checkpoint=str(args.checkpoint),
        csv=str(args.csv),
        n_rows=n_rows,
        sims=args.sims,
        num_samples=num_samples,
        samples_per_batch=spb,
        targets=list(TARGETS),
        calls=len(call_s),
        calls_full=args.sims * len(TARGETS) * 7,
        total_s=total_s,
        total_cpu_s=total_cpu_s,
        load_s=load_s,
        aggregate_s=agg_s,
        call_s_median=statistics.median(call_s),
        call_s_mean=statistics.fmean(call_s),
        call_s=call_s,
        call_cpu_s_median=statistics.median(call_cpu_s),
        call_cpu_s=call_cpu_s,
        context_len_min=min(lengths),
        context_len_max=max(lengths),
        points=points.tolist(),
        bands=bands.tolist(),
        threads=torch.get_num_threads(),
        loadavg=os.getloadavg(),
        versions={k: version(k) for k in ("toto-ts", "torch", "numpy")},
        python=sys.version.split()[0],
        machine=f"{platform.machine()} {os.cpu_count()} CPUs",
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("weights", help="save a seeded random toto-ts model in the hub layout")
    w.add_argument("--config", choices=sorted(CONFIGS), default="small")
    w.add_argument("--seed", type=int, default=1234)
    w.add_argument("--out", required=True)
    r = sub.add_parser("run", help="the original's per-stock call pattern, timed")
    r.add_argument("--checkpoint", required=True, help="hub-layout folder (config.json + model.safetensors)")
    r.add_argument("--csv", required=True, help="daily CSV (Date, close, high, low, open, volume)")
    r.add_argument("--sims", type=int, default=10)
    r.add_argument("--samples", type=int, default=256)
    r.add_argument("--spb", type=int, default=384, help="samples_per_batch (clamped to num_samples)")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--max-calls", type=int, default=0, help="stop after this many calls (0: all)")
    r.add_argument("--warmup", action="store_true", help="one untimed call first")
    r.add_argument("--out", help="write the JSON here (default: stdout)")
    args = ap.parse_args(argv)
    result = cmd_weights(args) if args.cmd == "weights" else cmd_run(args)
    text = json.dumps(result)
    if getattr(args, "out", None) and args.cmd == "run":
        Path(args.out).write_text(text)
    print(
        text
        if args.cmd == "weights"
        else json.dumps({k: v for k, v in result.items() if k not in ("points", "bands", "call_s", "call_cpu_s")})
    )


if __name__ == "__main__":
    main()
