"""Which jaxsim code the XLA:CPU kernels of the backtest program come from.

XLA:CPU's compile time follows the kernels it emits (each fusion and each unfused op outside a fusion
is compiled by LLVM on its own; docs/compilation.md), not the StableHLO op count that
``jaxsim bench compile`` attributes. This script compiles the default backtest program of the AAPL
sample once with XLA's HLO dump on, reads the optimized module, and attributes every kernel to the
innermost jaxsim frame of its stack (the HLO text's ``StackFrames`` table):

    python tools/kernel_attribution.py [--sims 50] [--top 30] [--dump DIR]

It prints the kernel count, the object files LLVM wrote, and the kernels per jaxsim function. An op
inside a jitted helper that jax traces once and reuses (the PRNG's threefry hash, for one) carries the
frames of the helper's first trace, which may be another program's (``shell/plan.py:_folded``, the
stock keys, for the threefry kernels of the draws).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
from pathlib import Path

TABLES = ("FileNames", "FunctionNames", "FileLocations", "StackFrames")
NOT_KERNELS = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast", "while", "call", "conditional"}


def _tables(text: str) -> tuple[dict[str, dict[int, str]], list[str]]:
    """The module's location tables (id -> entry) and its other lines."""
    tables: dict[str, dict[int, str]] = {}
    body, current = [], None
    for line in text.split("\n"):
        if line in TABLES:
            current = tables.setdefault(line, {})
            continue
        if current is not None:
            if not line.strip():
                current = None
                continue
            i, rest = line.split(" ", 1)
            current[int(i)] = rest
            continue
        body.append(line)
    return tables, body


def _ids(entry: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", entry)}


def attribute(text: str, marker: str = "/jaxsim/") -> tuple[int, collections.Counter]:
    """``(kernels, Counter "file.py:function" -> kernels)`` of an optimized HLO module's text."""
    tables, body = _tables(text)
    files = {k: v.strip('"') for k, v in tables.get("FileNames", {}).items()}
    funcs = {k: v.strip('"') for k, v in tables.get("FunctionNames", {}).items()}
    locs = {}
    for k, v in tables.get("FileLocations", {}).items():
        ids = _ids(v)
        locs[k] = (files.get(ids["file_name_id"], "?"), funcs.get(ids["function_name_id"], "?"))
    frames = {}
    for k, v in tables.get("StackFrames", {}).items():
        ids = _ids(v)
        frames[k] = (ids["file_location_id"], ids["parent_frame_id"])

    def innermost(frame: int) -> str:
        seen = set()
        while frame in frames and frame not in seen:
            seen.add(frame)
            loc, parent = frames[frame]
            path, func = locs.get(loc, ("?", "?"))
            if marker in path:
                return f"{path.split(marker)[-1]}:{func}"
            frame = parent
        return "(no jaxsim frame)"

    counts: collections.Counter = collections.Counter()
    fused = False
    for line in body:
        head = re.match(r"^(ENTRY )?%?([\w.\-]+) .*\{$", line)
        if head and not line.startswith(" "):
            name = head.group(2)  # a fused computation's ops are inside one kernel
            fused = name.startswith(("fused", "wrapped")) or "fused_computation" in name
            continue
        op = re.search(r"= \S.*? ([a-z][\w\-]*)\(", line)
        if fused or not op or op.group(1) in NOT_KERNELS:
            continue
        frame = re.search(r"stack_frame_id=(\d+)", line)
        counts[innermost(int(frame.group(1))) if frame else "(no location)"] += 1
    return sum(counts.values()), counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sims", default="50", help="n_sims of the program (default 50; 'all')")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--dump", default=None, help="the dump folder (default: a temporary one)")
    a = ap.parse_args(argv)
    dump = Path(a.dump or tempfile.mkdtemp(prefix="jaxsim-hlo-"))
    if "jax" in sys.modules:
        raise SystemExit("run as a script: XLA's dump flags must be set before jax starts")
    os.environ["XLA_FLAGS"] = " ".join(
        [
            os.environ.get("XLA_FLAGS", ""),
            f"--xla_dump_to={dump}",
            "--xla_dump_hlo_as_text",
            "--xla_dump_hlo_module_re=jit__traced",  # jaxsim's compiled programs (ProgramCache)
        ]
    )
    import jaxsim
    from jaxsim import forecasters

    n_sims = a.sims if a.sims == "all" else int(a.sims)
    jaxsim.backtest(jaxsim.sample("AAPL"), forecasters.default(), n_sims=n_sims, protocol="legacy")
    # the backtest program is the largest of jaxsim's programs (the others are its small helpers)
    module = max(dump.glob("*cpu_after_optimizations.txt"), key=lambda p: p.stat().st_size)
    kernels, counts = attribute(module.read_text())
    objects = len(list(dump.glob(f"{module.name.split('.')[0]}*.o")))
    print(f"{module.name}: {kernels} kernels, {objects} object files compiled by LLVM (n_sims={n_sims})")
    print("| kernels | jaxsim function (innermost frame) |\n|---|---|")
    for where, n in counts.most_common(a.top):
        print(f"| {n} | {where} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
