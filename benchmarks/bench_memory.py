"""Peak memory of a chunked multi-stock run (jaxsim.shell.runs.run_many) with a small model.

Builds S synthetic stocks as CSV files (block-bootstrap resamples of the real daily series in
../shared/data/daily when present, else random walks), then runs ``run_many`` over them in a fresh
subprocess per configuration and reports the subprocess's peak RSS (``resource.getrusage``
``ru_maxrss``), wall time and throughput. Peak memory should follow the chunk size, not the number
of stocks: the runner keeps one chunk of prices and results alive at a time.

Usage::

    PYTHONPATH=. python benchmarks/bench_memory.py                 # 100 and 500 stocks, naive + tiny Toto
    PYTHONPATH=. python benchmarks/bench_memory.py --stocks 500 --models naive --chunks 16,64

Printed table columns: model, stocks, chunk, peak RSS (MiB), RSS after imports (MiB), wall (s),
stocks/s, stocks written.

Measured 2026-11-24 (2 shared CPU cores, load average ~14 from parallel jobs, so the walls are
pessimistic; 1000 rows per stock, N = 50, max_context = 256, Toto draws 256, one CPU device)::

    model      stocks chunk peak RSS MiB after import   wall s stocks/s written
    naive         100    16          950          154     25.2      4.0     100
    naive         500    16          952          154    147.5      3.4     500
    naive         100    64         2469          154     47.4      2.1     100
    naive         500    64         2479          154    170.4      2.9     500
    toto-tiny     100    16         1680          605    118.2      0.8     100
    toto-tiny     500    16         1577          603    397.9      1.3     500
    toto-tiny     100    64         3039          591    114.5      0.9     100
    toto-tiny     500    64         3024          605    232.5      2.2     500

Peak memory follows the chunk size (about 30 MiB per stock in a chunk: the compiled program's
buffers for 50 simulations x 8 strategies and the multiplier optimizer), not the number of stocks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DAILY = ROOT.parent / "shared" / "data" / "daily"


def make_stocks(folder: Path, n: int, rows: int, seed: int = 0) -> str:
    """Write ``n`` CSV files of ``rows`` daily bars; returns a description of the source."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    bases = sorted(DAILY.glob("*.csv")) if DAILY.is_dir() else []
    pools = []
    for path in bases:
        f = pd.read_csv(path)
        f.columns = [c.lower() for c in f.columns]
        o, h, l, c = (f[k].to_numpy(float) for k in ("open", "high", "low", "close"))
        ok = (c[:-1] > 0) & (c[1:] > 0) & (h[1:] >= l[1:]) & (l[1:] > 0)
        rel = np.stack([c[1:] / c[:-1], o[1:] / c[1:], h[1:] / c[1:], l[1:] / c[1:]], 1)[ok]
        if len(rel) > 40:
            pools.append(rel)
    block = 20
    for i in range(n):
        if pools:  # block bootstrap of (close ratio, open/high/low relative to close) rows
            pool = pools[i % len(pools)]
            starts = rng.integers(0, len(pool) - block, rows // block + 1)
            rel = np.concatenate([pool[s : s + block] for s in starts])[:rows]
        else:
            r = np.exp(rng.normal(0, 0.02, rows))
            rel = np.stack(
                [
                    r,
                    np.exp(rng.normal(0, 0.005, rows)),
                    1 + np.abs(rng.normal(0, 0.01, rows)),
                    1 - np.abs(rng.normal(0, 0.01, rows)),
                ],
                1,
            )
        close = 50.0 * np.cumprod(rel[:, 0])
        o, h, l = close * rel[:, 1], close * rel[:, 2], close * rel[:, 3]
        h, l = np.maximum.reduce([h, o, close]), np.minimum.reduce([l, o, close])
        pd.DataFrame(
            {
                "Date": pd.bdate_range("2000-01-03", periods=rows),
                "Open": o,
                "High": h,
                "Low": l,
                "Close": close,
                "Volume": rng.integers(10_000, 5_000_000, rows),
            }
        ).to_csv(folder / f"S{i:04d}.csv", index=False)
    return f"block bootstrap of {len(pools)} real daily series" if pools else "random walks"


CHILD = textwrap.dedent("""
    import json, resource, sys, time
    from pathlib import Path
    import jax
    from jaxsim import forecasters
    from jaxsim.shell.runs import run_many
    cfg = json.loads(sys.argv[1])
    if cfg["model"] == "naive":
        f = forecasters.naive()
    else:  # a tiny random Toto: 2 layers, width 64, patch 16
        from jaxsim.models.toto.model import TotoConfig, init_toto
        c = TotoConfig(patch_size=16, embed_dim=64, num_layers=2, num_heads=4, mlp_hidden_dim=128,
                       spacewise_every_n_layers=2, k_components=4)
        f = forecasters.toto(config=c, params=init_toto(c, jax.random.key(0)), num_samples=cfg["samples"])
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    paths = sorted(Path(cfg["data"]).glob("*.csv"))[: cfg["stocks"]]
    t0 = time.perf_counter()
    rep = run_many(paths, cfg["out"], forecaster=f, chunk_size=cfg["chunk"], n_sims=cfg["n_sims"],
                   max_context=cfg["max_context"], num_samples=cfg["samples"], report=False)  # no HTML pages
    wall = time.perf_counter() - t0
    print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss0_mib": rss0,
                      "wall_s": wall, "done": len(rep.done), "failed": len(rep.failed),
                      "devices": len(jax.devices())}))
""")


def run_one(model, stocks, chunk, data, out, args) -> dict:
    cfg = dict(
        model=model,
        stocks=stocks,
        chunk=chunk,
        data=str(data),
        out=str(out),
        n_sims=args.n_sims,
        max_context=args.max_context,
        samples=args.samples,
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", TQDM_DISABLE="1")
    env.pop("XLA_FLAGS", None)
    p = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(cfg)], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if p.returncode:
        raise SystemExit(p.stderr[-4000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stocks", default="100,500", help="comma-separated stock counts (default 100,500)")
    ap.add_argument("--chunks", default="64", help="comma-separated chunk sizes (default 64)")
    ap.add_argument("--models", default="naive,toto-tiny", help="naive and/or toto-tiny")
    ap.add_argument("--rows", type=int, default=1000, help="rows per stock (default 1000, ~4 years)")
    ap.add_argument("--n-sims", type=int, default=50)
    ap.add_argument("--max-context", type=int, default=256)
    ap.add_argument("--samples", type=int, default=256, help="Toto draws per context (default 256)")
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.stocks.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        t0 = time.perf_counter()
        source = make_stocks(data, max(counts), args.rows)
        print(
            f"{max(counts)} stocks x {args.rows} rows ({source}) written in {time.perf_counter() - t0:.1f} s; "
            f"N={args.n_sims}, max_context={args.max_context}, Toto samples={args.samples}, "
            f"{os.cpu_count()} CPUs"
        )
        print(
            f"{'model':10s} {'stocks':>6s} {'chunk':>5s} {'peak RSS MiB':>12s} {'after import':>12s} "
            f"{'wall s':>8s} {'stocks/s':>8s} {'written':>7s}"
        )
        for model in args.models.split(","):
            for chunk in (int(x) for x in args.chunks.split(",")):
                for n in counts:
                    r = run_one(model, n, chunk, data, Path(tmp) / f"out-{model}-{n}-{chunk}", args)
                    print(
                        f"{model:10s} {n:6d} {chunk:5d} {r['peak_mib']:12.0f} {r['rss0_mib']:12.0f} "
                        f"{r['wall_s']:8.1f} {n / r['wall_s']:8.1f} {r['done']:7d}",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
