"""Full-history backtests (prefix-shared Toto) against the per-context path, side by side in one run.

    PYTHONPATH=. python benchmarks/bench_full_history.py [--sims 50 500 all] [--samples 3072]
        [--dtype float32|bfloat16] [--per-context-max-s 900] [--out benchmarks/results]
    PYTHONPATH=. python benchmarks/bench_full_history.py --report benchmarks/results/full_history.json

AEM (1,560 rows of ../shared/data/daily), Toto Base with random weights, targets close/high/low,
3,072 draws per origin, the default optimizer. What is measured and how: jaxsim.bench.full_history
(the same suite as ``jaxsim bench full_history``, which runs it on the bundled AAPL sample).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jaxsim  # noqa: E402
from jaxsim.bench.full_history import full_history_suite, report  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", default=str(ROOT.parent / "shared/data/daily/AEM.csv"))
    ap.add_argument("--sims", nargs="+", default=["50", "500", "all"])
    ap.add_argument("--samples", type=int, default=3072)
    ap.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    ap.add_argument("--per-context-max-s", type=float, default=900.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results"))
    ap.add_argument("--report", metavar="JSON", help="only rebuild the table and plot from a JSON")
    args = ap.parse_args(argv)
    if args.report:
        print(report(args.report)["markdown"])
        return
    csv = Path(args.csv)
    if not csv.exists():
        sys.exit(f"{csv} not found (the shared data folder is needed for this benchmark)")
    prices = jaxsim.load_prices(csv, symbol=csv.stem)
    result = full_history_suite(
        args.out,
        prices=prices,
        sims=tuple(args.sims),
        samples=args.samples,
        dtype=args.dtype,
        per_context_max_s=args.per_context_max_s,
        stock=csv.stem,
    )
    print(result["markdown"])


if __name__ == "__main__":
    main()
