"""A universe at full history with the embedded model: 1 process vs 2 local jax.distributed processes.

Builds S synthetic stocks as CSV files (block-bootstrap resamples of the real daily series in
../shared/data/daily, as ``bench_memory.py``), in one or more history lengths, and runs
:func:`jaxsim.shell.runs.run_many` over them with the embedded default model
(``forecasters.default``) in a fresh subprocess per configuration:

* 1 process (one CPU device), and
* P local processes joined by ``jax.distributed`` (loopback coordinator), each on its own CPU device,
  writing into one run folder (``run_many(..., distributed=...)``).

Full history: ``n_sims="all"``, every origin whose context has at least ``min_context`` (64) returns,
N = T - 8 - 64 (``jaxsim.config.sims_for_rows``). Each length is its own ``run_many`` call (its own
run folder ``OUT/L<T>``); stocks of one length share one compiled program (stocks of different lengths
do not: Toto's output depends on a context's left padding, so they are bucketed by exact length).

Reported per configuration: wall time, peak RSS of the largest process (``ru_maxrss``), compiles
(traces of the backtest program, summed over processes), stock-simulations per second, stocks written.

Usage::

    PYTHONPATH=. python benchmarks/bench_universe.py --stocks 500 --lengths 1000     # the issue's universe
    # what fits a loaded 2-core CPU:
    PYTHONPATH=. python benchmarks/bench_universe.py --stocks 40 --lengths 96,128 --samples 32
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_memory import make_stocks  # noqa: E402  (the shared resampling of the real series)

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import json, resource, sys, time
    from pathlib import Path
    cfg = json.loads(sys.argv[1])
    dist = None
    if cfg["n"] > 1:  # join before any JAX computation
        from jaxsim.shell.distributed import DistributedConfig, initialize
        dist = DistributedConfig(f"127.0.0.1:{cfg['port']}", cfg["n"], cfg["pid"])
        initialize(dist)
    from jaxsim import forecasters
    from jaxsim.config import DEFAULT_MIN_CONTEXT, sims_for_rows
    from jaxsim.engine.program import trace_count
    from jaxsim.shell.runs import run_many
    f = forecasters.default(num_samples=cfg["samples"])
    t0 = time.perf_counter()
    done = failed = sims = 0
    for rows, folder in cfg["buckets"]:
        paths = sorted(Path(folder).glob("*.csv"))
        sources = {f"L{rows}_{p.stem}": p for p in paths}
        rep = run_many(sources, Path(cfg["out"]) / f"L{rows}", forecaster=f, chunk_size=cfg["chunk"],
                       n_sims="all", progress=cfg["progress"], distributed=dist, report=False)  # no HTML pages
        done += len(rep.done); failed += len(rep.failed)
        sims += len(rep.done) * sims_for_rows(rows, DEFAULT_MIN_CONTEXT)
    print(json.dumps({"wall_s": time.perf_counter() - t0, "peak_mib": resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024, "compiles": trace_count(), "done": done, "failed": failed,
        "sims": sims, "pid": cfg["pid"]}), flush=True)
""")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_config(n: int, buckets, out: Path, args) -> dict:
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        JAX_PLATFORMS="cpu",
        TQDM_DISABLE="0" if args.progress else "1",
        XLA_FLAGS="--xla_force_host_platform_device_count=1",
    )
    port = _port()
    procs = []
    t0 = time.perf_counter()
    for pid in range(n):
        cfg = dict(
            n=n,
            pid=pid,
            port=port,
            samples=args.samples,
            chunk=args.chunk,
            out=str(out),
            buckets=buckets,
            progress=args.progress and pid == 0,
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", CHILD, json.dumps(cfg)],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=None if args.progress else subprocess.PIPE,
                text=True,
            )
        )
    rows = []
    for p in procs:
        out_, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"process failed ({p.returncode}):\n{(err or '')[-4000:]}")
        rows.append(json.loads(out_.strip().splitlines()[-1]))
    wall = time.perf_counter() - t0  # including process start and jax.distributed join
    head = next(r for r in rows if r["pid"] == 0)  # process 0 reports the whole run
    return {
        "processes": n,
        "wall_s": wall,
        "run_s": max(r["wall_s"] for r in rows),
        "peak_mib": max(r["peak_mib"] for r in rows),
        "compiles": sum(r["compiles"] for r in rows),
        "done": head["done"],
        "failed": head["failed"],
        "sims": head["sims"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stocks", type=int, default=500)
    ap.add_argument("--lengths", default="1000", help="comma-separated history lengths, stocks split evenly")
    ap.add_argument("--samples", type=int, default=256, help="Toto draws per context (default 256)")
    ap.add_argument("--chunk", type=int, default=16, help="stocks per compiled batch (default 16)")
    ap.add_argument("--processes", default="1,2", help="process counts to compare (default 1,2)")
    ap.add_argument("--progress", action="store_true", help="tqdm bar of process 0 on stderr")
    args = ap.parse_args(argv)
    lengths = [int(x) for x in args.lengths.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        buckets = []
        for j, rows in enumerate(lengths):
            n = args.stocks // len(lengths) + (j < args.stocks % len(lengths))
            source = make_stocks(tmp / "data" / f"L{rows}", n, rows, seed=j)
            buckets.append((rows, str(tmp / "data" / f"L{rows}")))
        print(
            f"# {args.stocks} stocks ({source}), lengths {lengths}, n_sims='all' (full history), "
            f"embedded model, {args.samples} draws, chunk {args.chunk}; load before: {os.getloadavg()}"
        )
        print(
            "| processes | stocks | stock-sims | wall s | run s | peak RSS MiB (largest process) | compiles "
            "| stock-sims/s | written |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for n in [int(x) for x in args.processes.split(",")]:
            r = run_config(n, buckets, tmp / f"run{n}", args)
            print(
                f"| {n} | {args.stocks} | {r['sims']} | {r['wall_s']:.1f} | {r['run_s']:.1f} | {r['peak_mib']:.0f} "
                f"| {r['compiles']} | {r['sims'] / r['wall_s']:.1f} | {r['done']} |",
                flush=True,
            )
        print(f"# load after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
