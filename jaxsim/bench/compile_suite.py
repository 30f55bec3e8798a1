"""``jaxsim bench compile``: where a first backtest's time goes, and which parts of the program cost it.

Every scenario runs in a FRESH Python process (:mod:`jaxsim.bench.compile_probe`, its source copied to a
temporary folder and run with ``PYTHONPATH=<tree>``), so "the first call in a process" is real, and
with jax's persistent compilation cache off (library scenarios) or pointed at an empty temporary folder
(command-line scenarios, cold), the same folder again for the warm run:

* ``first``: the first ``jaxsim.backtest(jaxsim.sample("AAPL"), forecasters.default(), n_sims=N)`` of a
  process, N = 50 and ``"all"``: wall time split by jax's compile events into tracing, lowering and
  XLA compile of the backtest program, the other (small) programs' XLA compiles, and the rest
  (run + host work); then a warm call. The program's StableHLO: op count (as printed, and inlined),
  text size, dense constants, and its ops attributed to jaxsim modules, source lines and program
  parts (:func:`jaxsim.bench.compile_probe.attribute_ops`).
* ``parts``: components compiled alone (jit stages API): Toto mixtures, forecast summary, draws of 8
  origins, the simulation + optimizer stage, the forecasted P&L; trace, lower, XLA, ops, cold and
  warm call.
* ``cli``: ``jaxsim backtest AAPL`` with a fresh ``--cache-dir`` (cold), then again with it (warm).
* ``universe``: ``jaxsim backtest --symbols ... --data-dir DIR --sims all``, several real stocks of
  different history lengths (3 with ``quick``, every file otherwise), cold then warm cache: programs
  traced (:func:`jaxsim.engine.program.trace_count`), XLA compiles, persistent-cache hits, wall.

Several trees (``trees=[old, new]``, ``jaxsim bench compile --tree OLD --tree NEW``) are measured side by
side in one run, alternating per scenario (A, B, A, B...), so both see the same machine load.
The machine's load average is recorded before and after every process: on a shared machine wall
times are only comparable within a run; op counts are deterministic.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from jaxsim.bench import compile_probe
from jaxsim.bench import harness as bench

__all__ = [
    "Tree",
    "tree_label",
    "default_tree",
    "universe_symbols",
    "run_probe",
    "FIRST_COLUMNS",
    "PART_COLUMNS",
    "CLI_COLUMNS",
    "first_row",
    "part_rows",
    "cli_row",
    "share_rows",
    "compile_markdown",
    "compile_suite",
]

MIB = 1024.0 * 1024.0


@dataclasses.dataclass(frozen=True)
class Tree:
    """A checkout of jaxsim to measure: its root folder (the one holding ``jaxsim/``) and a short label."""

    path: Path
    label: str


def default_tree() -> Path:
    """The checkout this package is imported from."""
    return Path(__file__).resolve().parents[2]


def tree_label(path: Path) -> str:
    """``<folder> @ <short commit>[+dirty]`` for a git checkout, else the folder name."""
    path = Path(path)
    label = path.resolve().name
    try:
        commit = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=20
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return label
    return f"{label} @ {commit}{'+dirty' if dirty else ''}" if commit else label


def universe_symbols(data_dir: Path, quick: bool) -> list[str]:
    """Every ``<SYMBOL>.csv`` of ``data_dir``; ``quick``: three of different lengths (shortest, middle, longest)."""
    files = sorted(Path(data_dir).glob("*.csv"))
    if not quick:
        return [f.stem for f in files]
    rows: dict[int, str] = {}
    for f in files:
        with f.open("rb") as fh:
            rows.setdefault(sum(1 for _ in fh), f.stem)  # first symbol of each length
    lengths = sorted(rows)
    picks = [lengths[0], lengths[len(lengths) // 2], lengths[-1]] if len(lengths) >= 3 else lengths
    return [rows[n] for n in dict.fromkeys(picks)]


def _probe_env(tree: Tree, scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env.pop("JAX_ENABLE_COMPILATION_CACHE", None)
    env["PYTHONPATH"] = str(tree.path)
    env["XDG_CACHE_HOME"] = str(scratch / "xdg-cache")  # nothing falls back to the user's cache folder
    return env


def run_probe(
    tree: Tree, mode: str, args: Sequence[str] = (), *, jaxsim_args: Sequence[str] = (), timeout: float = 3600.0
) -> dict:
    """Run :mod:`jaxsim.bench.compile_probe` in a fresh process against ``tree``; its JSON result.

    ``process_s`` (added) is the process's wall time from start to exit, interpreter start included.
    A failed or timed-out process gives ``error`` (the end of its stderr).
    """
    source = Path(compile_probe.__file__).read_text()
    with tempfile.TemporaryDirectory(prefix="jaxsim-compile-") as tmp:
        scratch = Path(tmp)
        script, out = scratch / "jaxsim_compile_probe.py", scratch / "result.json"
        script.write_text(source)
        cmd = [sys.executable, str(script), mode, "--out", str(out), *args]
        if jaxsim_args:
            cmd += ["--", *jaxsim_args]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd, cwd=scratch, env=_probe_env(tree, scratch), capture_output=True, text=True, timeout=timeout
            )
            rc, err = proc.returncode, proc.stderr
        except subprocess.TimeoutExpired as e:
            rc, err = None, f"timed out after {timeout:.0f} s\n{(e.stderr or b'')[-2000:]!r}"
        process_s = time.perf_counter() - t0
        result = json.loads(out.read_text()) if out.exists() else {}
    if rc != 0 or not result:
        result["error"] = (err or "").strip()[-2000:] or f"exit code {rc}"
    result.update(process_s=process_s, tree=tree.label, tree_path=str(tree.path))
    return result


# ----------------------------------------------------------------------------------------------
# Rows and tables

FIRST_COLUMNS = [
    ("tree", "tree", ""),
    ("sims", "N", ""),
    ("process_s", "process (s)", ".1f"),
    ("import_s", "import (s)", ".1f"),
    ("first_s", "first call (s)", ".1f"),
    ("first_cpu_s", "first call CPU (s)", ".1f"),
    ("trace_s", "trace (s)", ".1f"),
    ("lower_s", "lower (s)", ".1f"),
    ("xla_s", "XLA (s)", ".1f"),
    ("other_xla_s", "other XLA (s)", ".1f"),
    ("other_xla_n", "other compiles", "d"),
    ("rest_s", "run + host (s)", ".2f"),
    ("warm_s", "warm call (s)", ".2f"),
    ("traces", "traced", "d"),
    ("ops", "HLO ops", ",d"),
    ("inlined", "ops inlined", ",d"),
    ("text_mib", "text (MiB)", ".2f"),
    ("const_mib", "constants (MiB)", ".2f"),
    ("load", "load", ".1f"),
]

PART_COLUMNS = [
    ("tree", "tree", ""),
    ("sims", "N", ""),
    ("part", "component", ""),
    ("trace_s", "trace (s)", ".2f"),
    ("lower_s", "lower (s)", ".2f"),
    ("xla_s", "XLA (s)", ".2f"),
    ("xla_cpu_s", "XLA CPU (s)", ".2f"),
    ("ops", "HLO ops", ",d"),
    ("text_kib", "text (KiB)", ",.0f"),
    ("cold_s", "first call (s)", ".3f"),
    ("warm_s", "warm call (s)", ".3f"),
    ("error", "error", ""),
]

CLI_COLUMNS = [
    ("tree", "tree", ""),
    ("scenario", "scenario", ""),
    ("cache", "cache", ""),
    ("stocks", "stocks", "d"),
    ("process_s", "wall (s)", ".1f"),
    ("cpu_s", "CPU (s)", ".1f"),
    ("traces", "programs traced", "d"),
    ("trace_s", "trace (s)", ".1f"),
    ("lower_s", "lower (s)", ".1f"),
    ("xla_n", "XLA compiles", "d"),
    ("xla_s", "XLA (s)", ".1f"),
    ("cache_hits", "cache hits", "d"),
    ("rc", "exit", "d"),
    ("load", "load", ".1f"),
]


def _load(result: dict) -> float | None:
    loads = [x[0] for x in (result.get("load_before"), result.get("load_after")) if x]
    return max(loads) if loads else None


def first_row(result: dict) -> dict:
    """One row of :data:`FIRST_COLUMNS` from a ``first`` probe result (missing values stay None)."""
    comp = result.get("compile") or {}
    main = comp.get("main") or {}
    prog = result.get("program") or {}
    row = dict(
        tree=result.get("tree"),
        round=result.get("round", 1),
        sims=result.get("sims"),
        process_s=result.get("process_s"),
        import_s=result.get("import_s"),
        first_s=result.get("first_s"),
        first_cpu_s=result.get("first_cpu_s"),
        trace_s=main.get("trace_s"),
        lower_s=main.get("lower_s"),
        xla_s=main.get("xla_s"),
        other_xla_s=comp.get("other_xla_s"),
        other_xla_n=comp.get("other_xla_n"),
        rest_s=result.get("rest_s"),
        warm_s=result.get("warm_s"),
        traces=result.get("traces"),
        ops=prog.get("ops"),
        inlined=prog.get("inlined"),
        text_mib=prog["chars"] / MIB if "chars" in prog else None,
        const_mib=prog["const_chars"] / MIB if "const_chars" in prog else None,
        load=_load(result),
        error=result.get("error") or prog.get("error"),
    )
    return row


def part_rows(result: dict) -> list[dict]:
    """Rows of :data:`PART_COLUMNS` from a ``parts`` probe result."""
    rows = []
    for r in result.get("rows") or [dict(part="(all)", error=result.get("error"))]:
        row = dict(
            tree=result.get("tree"),
            round=result.get("round", 1),
            sims=result.get("sims"),
            **{k: r.get(k) for k, _, _ in PART_COLUMNS[2:]},
        )
        row["text_kib"] = r["chars"] / 1024.0 if "chars" in r else None
        rows.append(row)
    return rows


def cli_row(result: dict, scenario: str, cache: str, stocks: int) -> dict:
    """One row of :data:`CLI_COLUMNS` from a ``cli`` probe result."""
    comp = result.get("compile") or {}
    return dict(
        tree=result.get("tree"),
        round=result.get("round", 1),
        scenario=scenario,
        cache=cache,
        stocks=stocks,
        process_s=result.get("process_s"),
        cpu_s=result.get("cpu_s"),
        traces=result.get("traces"),
        trace_s=comp.get("trace_s"),
        lower_s=comp.get("lower_s"),
        xla_n=comp.get("xla_n"),
        xla_s=comp.get("xla_s"),
        cache_hits=(result.get("cache") or {}).get("cache_hits", 0) if "cache" in result else None,
        rc=result.get("rc"),
        load=_load(result),
        error=result.get("error"),
    )


def share_rows(results: Sequence[dict], key: str, *, top: int | None = None) -> tuple[list[dict], list[tuple]]:
    """Side by side ``program[key]`` (``by_component``, ``by_module``...) of several ``first`` results.

    Returns:
      ``(rows, columns)`` for :func:`jaxsim.bench.harness.markdown_table`: one row per name (ordered by
      the first result's counts), one ``"ops (share)"`` column per result.
    """
    tables = [{r["name"]: r for r in (res.get("program") or {}).get(key, [])} for res in results]
    names: list[str] = []
    for t in tables:
        names += [n for n in sorted(t, key=lambda n: -t[n]["ops"]) if n not in names]
    names = names[:top] if top else names
    columns = [("name", "part" if "component" in key else "module", "")]
    rows = [dict(name=n) for n in names]
    for i, (res, t) in enumerate(zip(results, tables)):
        col = f"c{i}"
        columns.append((col, f"{res.get('tree')} N={res.get('sims')}", ""))
        for row in rows:
            r = t.get(row["name"])
            row[col] = f"{r['ops']:,} ({r['share']:.0%})" if r else "-"
    return rows, columns


def _dominant(result: dict, n: int = 3) -> str:
    comps = [c for c in (result.get("program") or {}).get("by_component", []) if not c["name"].startswith("(")]
    return ", ".join(f"{c['name']} {c['share']:.0%}" for c in comps[:n])


def _with_round(columns: list[tuple], rows: Sequence[dict]) -> list[tuple]:
    """``columns`` with a ``round`` column after the tree when the rows come from several rounds."""
    if all(r.get("round", 1) == 1 for r in rows):
        return columns
    return columns[:1] + [("round", "round", "d")] + columns[1:]


def compile_markdown(
    env: dict, firsts: list[dict], parts: list[dict], clis: list[dict], trees: list[Tree], extra: str = ""
) -> str:
    """The suite's markdown from the probe results (``clis``: ``cli_row`` dicts); ``extra`` ends the header."""
    first_rows = [first_row(r) for r in firsts]
    lines = [
        "# Compilation: where a first backtest's time goes\n",
        "Each row is a fresh Python process (`jaxsim.bench.compile_probe`), jax's persistent compilation cache "
        "off for the library scenarios and an empty `--cache-dir` for the cold command-line runs. Trees "
        f"measured side by side, alternating per scenario: {', '.join(f'`{t.label}` ({t.path})' for t in trees)}. "
        "'first call' = `jaxsim.backtest(jaxsim.sample(\"AAPL\"), forecasters.default(), n_sims=N)`, the first "
        "call of the process (data and weights already loaded); trace / lower / XLA = the backtest program's, "
        "from jax's compile events; 'other XLA' = the other programs compiled during the call; 'run + host' = "
        "first call minus every compile span; 'warm call' = the best of two more calls; 'process' = the whole "
        "process (interpreter, imports, both calls, then an untimed re-lowering for the op statistics). "
        "'HLO ops' = StableHLO operations as printed (terminators excluded); 'inlined' counts a function's "
        "ops once per call site, as XLA inlines them; 'constants' = text of `stablehlo.constant` lines. "
        "'load' = the machine's 1-minute load average (highest of before / after the process): wall times "
        "are comparable only within a run and at similar load; op counts are exact.\n",
        bench.markdown_table(first_rows, _with_round(FIRST_COLUMNS, first_rows)),
    ]
    errors = [f"- `{r['tree']}` N={r['sims']}: {r['error'].splitlines()[-1]}" for r in first_rows if r.get("error")]
    if errors:
        lines.append("\nErrors:\n\n" + "\n".join(errors) + "\n")
    # op counts are deterministic: one column per tree and N (the first round that has them)
    with_program, seen = [], set()
    for r in firsts:
        if (r.get("program") or {}).get("by_component") and (r.get("tree"), r.get("sims")) not in seen:
            seen.add((r.get("tree"), r.get("sims")))
            with_program.append(r)
    if with_program:
        rows, cols = share_rows(with_program, "by_component")
        lines += [
            "\n## Program parts: where the StableHLO ops come from\n",
            "Each op's location is a Python call stack; its part is the first rule that matches any jaxsim frame "
            "(forecasted P&L; optimizer; draws / sampler; model layers; forecast summary; strategies / "
            "simulation; other jaxsim code), so the sampler under the forecasted P&L counts as forecasted P&L "
            "(`jaxsim.bench.compile_probe.COMPONENTS`). An op inside a private function (an inner jit, a jnp "
            "helper, a loop body) also gets the function's call site. Constants without a jaxsim frame of "
            "their own (literals, printed unlocated or at the program's entry) are counted apart. Ops as "
            "printed; the inlined count is in the JSON (`by_component_inlined`).\n",
            bench.markdown_table(rows, cols),
            "\nDominant parts: "
            + "; ".join(f"`{r['tree']}` N={r['sims']}: {_dominant(r)}" for r in with_program)
            + ".\n",
        ]
        rows, cols = share_rows(with_program, "by_module", top=15)
        lines += ["\n### By module (innermost jaxsim frame), top 15\n", bench.markdown_table(rows, cols)]
        lines.append("\n### Source lines with the most ops (innermost jaxsim frame)\n")
        top = [(r, (r.get("program") or {}).get("by_line", [])[:12]) for r in with_program]
        rows = []
        for i in range(max(len(t) for _, t in top)):
            row = dict(rank=i + 1)
            for j, (_, t) in enumerate(top):
                row[f"c{j}"] = f"{t[i]['name']}: {t[i]['ops']:,}" if i < len(t) else ""
            rows.append(row)
        cols = [("rank", "#", "d")] + [(f"c{j}", f"{r['tree']} N={r['sims']}", "") for j, (r, _) in enumerate(top)]
        lines.append(bench.markdown_table(rows, cols))
    if parts:
        rows = [row for r in parts for row in part_rows(r)]
        lines += [
            "\n## Components compiled alone\n",
            "Each a `jax.jit` of one stage, through `.trace()`, `.lower()`, `.compile()`, then a first and a "
            "warm call (best of two), all components in one fresh process in this order; the inputs of the "
            "draws and of the simulation stage are the outputs of the mixtures and summary rows; the "
            "forecasted P&L forecasts 8 random strategy series of N values.\n",
            bench.markdown_table(rows, _with_round(PART_COLUMNS, rows)),
        ]
    if clis:
        lines += [
            "\n## Command line and universe\n",
            "`jaxsim backtest AAPL` and `jaxsim backtest --symbols ... --data-dir DIR --sims all`, each run as "
            "`python -m jaxsim.cli.app` in a fresh process; cold = an empty `--cache-dir`, warm = the same folder "
            "again. 'programs traced' = backtest programs traced in the process (a cached program is loaded, "
            "not traced); XLA compiles and seconds include persistent-cache loads.\n",
            bench.markdown_table(clis, _with_round(CLI_COLUMNS, clis)),
        ]
        bad = [
            f"- `{r['tree']}` {r['scenario']} {r['cache']}: {r['error'].splitlines()[-1]}"
            for r in clis
            if r.get("error")
        ]
        if bad:
            lines.append("\nErrors:\n\n" + "\n".join(bad) + "\n")
    lines.append("\n" + bench.header_markdown(env, extra) + "\n")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# The suite


def _default_data_dir() -> Path | None:
    for candidate in (default_tree().parent / "shared" / "data" / "daily",):
        if candidate.is_dir():
            return candidate
    return None


def compile_suite(
    out_dir,
    *,
    quick: bool = False,
    trees: Sequence[str | os.PathLike] | None = None,
    data_dir: str | os.PathLike | None = None,
    timeout: float = 3600.0,
    scenarios: Sequence[str] = ("first", "parts", "cli", "universe"),
    rounds: int = 1,
) -> dict:
    """Run the compile benchmark on every tree, side by side; write ``compile.md`` and ``compile.json``.

    Args:
      out_dir: output folder.
      quick: N = 50 and all, components at N = 50 only, a 3-stock universe; else components at both N
        and every stock of ``data_dir``.
      trees: checkouts to measure (folders holding ``jaxsim/``), e.g. ``[base_worktree, "."]``;
        default this one.
      data_dir: folder of ``<SYMBOL>.csv`` daily files for the universe (default ``../shared/data/daily``
        beside this checkout; the universe is skipped when there is none).
      timeout: per process, seconds (the full universe gets 4x).
      scenarios: a subset of ``first``, ``parts``, ``cli``, ``universe``.
      rounds: measure every (scenario, tree) this many times, trees alternating within each round
        (A, B, A, B...): wall times on a shared machine vary run to run; the rows show each round.

    Returns:
      dict with ``env``, ``first``, ``parts``, ``cli`` (rows), ``markdown``.
    """
    out_dir = Path(out_dir)
    roots = [Path(t).resolve() for t in (trees or [default_tree()])]
    tree_list = [Tree(p, tree_label(p)) for p in roots]
    if len({t.label for t in tree_list}) < len(tree_list):  # same commit twice: tell them apart by path
        tree_list = [Tree(t.path, f"{t.label} ({t.path})") for t in tree_list]
    data = Path(data_dir) if data_dir else _default_data_dir()
    env = bench.environment()
    firsts, parts, clis, raw_cli = [], [], [], []

    def log(msg):
        print(f"[compile {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    def alternate():
        return [(k + 1, tree) for k in range(max(int(rounds), 1)) for tree in tree_list]

    if "first" in scenarios:
        for sims in ("50", "all"):
            for k, tree in alternate():
                log(f"first call N={sims}: {tree.label} (round {k})")
                firsts.append(dict(run_probe(tree, "first", ["--sims", sims], timeout=timeout), round=k))
    if "parts" in scenarios:
        for sims in ("50",) if quick else ("50", "all"):
            for k, tree in alternate():
                log(f"components N={sims}: {tree.label} (round {k})")
                parts.append(dict(run_probe(tree, "parts", ["--sims", sims], timeout=timeout), round=k))
    cli_cases = []
    if "cli" in scenarios:
        cli_cases.append(("backtest AAPL", ["backtest", "AAPL"], 1, timeout))
    if "universe" in scenarios and data is not None:
        symbols = universe_symbols(data, quick)
        args = ["backtest", "--symbols", ",".join(symbols), "--data-dir", str(data), "--sims", "all"]
        cli_cases.append(
            (f"universe --sims all ({len(symbols)} stocks)", args, len(symbols), timeout * (1 if quick else 4))
        )
    for name, args, stocks, limit in cli_cases:
        for k, tree in alternate():
            cache = Path(tempfile.mkdtemp(prefix="jaxsim-compile-cache-"))
            try:
                for state in ("cold", "warm"):
                    log(f"{name} {state}: {tree.label} (round {k})")
                    res = run_probe(tree, "cli", jaxsim_args=[*args, "--cache-dir", str(cache)], timeout=limit)
                    res.update(scenario=name, cache_state=state, round=k)
                    raw_cli.append(res)
                    clis.append(cli_row(res, name, state, stocks))
            finally:
                shutil.rmtree(cache, ignore_errors=True)
    env["loadavg_after"] = bench.environment().get("loadavg")
    extra = "trees alternating per scenario" + (f", {rounds} rounds" if rounds > 1 else "")
    if env.get("loadavg_after"):
        extra += f"; load average {env['loadavg_after'][0]:.1f} at the end"
    text = compile_markdown(env, firsts, parts, clis, tree_list, extra)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "compile.md").write_text(text)
    bench.write_json(
        out_dir / "compile.json",
        dict(
            env=env,
            trees=[dict(path=str(t.path), label=t.label) for t in tree_list],
            quick=quick,
            rounds=rounds,
            data_dir=str(data) if data else None,
            first=firsts,
            parts=parts,
            cli=raw_cli,
            rows=dict(
                first=[first_row(r) for r in firsts],
                parts=[row for r in parts for row in part_rows(r)],
                cli=clis,
            ),
        ),
    )
    return dict(env=env, first=firsts, parts=parts, cli=clis, markdown=text)
