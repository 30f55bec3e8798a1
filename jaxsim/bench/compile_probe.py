"""One scenario of the compile benchmark (:mod:`jaxsim.bench.compile_suite`), measured in a fresh process.

The suite copies this file's source into a temporary folder and runs it as a script with
``PYTHONPATH=<tree>``, so the same probe measures any checkout of jaxsim (the code before a change
and after it, side by side). Hence three rules: the module level imports only the standard library,
the scenarios import jaxsim inside their functions and use only long-standing entry points
(``jaxsim.backtest``, ``jaxsim.sample``, ``forecasters.default``, ``make_plan``,
``compiled_program``, ``trace_count``; a component whose API a tree lacks is reported as an error
row, not a crash), and nothing here imports :mod:`jaxsim.bench`.

Modes (``python probe.py MODE --out RESULT.json ...``):

* ``first --sims N``: ``jaxsim.backtest(jaxsim.sample("AAPL"), forecasters.default(), n_sims=N)``, the
  first call of the process and a warm call; jax's compile events (:mod:`jax.monitoring` time
  spans) split the first call into tracing, lowering and XLA compile per program; then the
  backtest program is lowered once more (untimed) for its StableHLO statistics and op attribution.
* ``parts --sims N``: components compiled alone through the jit stages API (``.trace``, ``.lower``,
  ``.compile``, then a cold and warm call): Toto mixtures, forecast summary, draws of 8 contexts,
  the simulation + optimizer stage, the forecasted P&L.
* ``cli ARGS...``: ``python -m jaxsim.cli.app ARGS`` in this process (stdout discarded): wall time,
  programs traced (:func:`jaxsim.engine.program.trace_count`), XLA compiles and persistent-cache hits.

Op attribution (:func:`attribute_ops`): ``lowered.as_text(debug_info=True)`` gives every operation a
location; a location is a call stack (``callsite(inner at outer)``) of frames ``"function"("file":line:col)``.
An op inside a private function (an inner ``jit``, a jnp helper) carries only its frames inside that
function, so the function's own location (the call site of its first use) is appended. Each op is
counted once as printed (``ops``) and once per inlined use (``inlined``: XLA inlines every call).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import fnmatch
import io
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence

__all__ = [
    "COMPONENTS",
    "NO_FRAME",
    "CONSTANTS",
    "Frame",
    "ModuleOps",
    "parse_module",
    "LocTable",
    "component_of",
    "attribute_ops",
    "compile_summary",
    "EventRecorder",
    "PARTS",
    "run_first",
    "run_parts",
    "run_cli",
    "main",
]

TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
LOWER_EVENT = "/jax/core/compile/jaxpr_to_mlir_module_duration"
XLA_EVENT = "/jax/core/compile/backend_compile_duration"
_KINDS = {TRACE_EVENT: "trace", LOWER_EVENT: "lower", XLA_EVENT: "xla"}

# The program's parts, for attribution: the first rule that matches ANY jaxsim frame of an op's stack
# names its part ("relative/path.py:function", fnmatch patterns). Order matters: an op of the sampler
# called by the forecasted P&L belongs to the forecasted P&L; a tie rule called by the optimizer to the
# optimizer; model ops are under the forecaster's mixtures, draws under its sampler.
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("forecasted P&L", ("engine/forecasted_pnl.py:*",)),
    ("optimizer", ("optimize/*",)),
    (
        "draws / sampler",
        ("models/sampling.py:*", "models/toto/forecast.py:*sample_mixture", "forecast/forecasters.py:*._draw*"),
    ),
    ("model layers", ("models/*", "forecast/prefix.py:*")),
    ("forecast summary", ("forecast/*",)),
    ("strategies / simulation", ("sim/*",)),
    ("walk-forward glue (engine, other)", ("*",)),
)
NO_FRAME = "(no jaxsim frame)"
CONSTANTS = "(constants, no jaxsim frame)"  # literals: unlocated, or located at the program's entry
_TERMINATORS = {"return", "func.return", "stablehlo.return"}
_STRUCTURE = {"func.func", "module"}


# ----------------------------------------------------------------------------------------------
# Parsing StableHLO text


@dataclasses.dataclass(frozen=True)
class Frame:
    """One Python frame of an op's location: function name (None when unnamed), file, line."""

    function: str | None
    file: str
    line: int


_LOC_DEF = re.compile(r"^#(loc\d*) = loc\((.*)\)\s*$", re.M)
_REF = re.compile(r"#(loc\d*)")
_FILE_LOC = re.compile(r'"([^"]+)":(\d+)(?::\d+)?')
_NAMED = re.compile(r'"((?:[^"\\]|\\.)*)"\((.*)\)', re.S)
_CALLSITE = re.compile(r"callsite\((#loc\d*) at (#loc\d*)\)")
_OP = re.compile(r'^\s*(?:%[^=]*?\s=\s)?"?([a-z_]+(?:\.[a-z_0-9]+)+|call|return|module)\b')
_CALLEE = re.compile(r"\bcall @([\w.$-]+)\(")
_FUNC_NAME = re.compile(r"func\.func\s+(?:\w+\s+)?@([\w.$-]+)\(")


class LocTable:
    """The ``#locN = loc(...)`` definitions of a module, resolved to call stacks (innermost first)."""

    def __init__(self, text: str):
        self.defs = {m.group(1): m.group(2) for m in _LOC_DEF.finditer(text)}
        self._memo: dict[str, tuple[Frame, ...]] = {}

    def frames(self, expr: str | None, depth: int = 0) -> tuple[Frame, ...]:
        """The frames of a location expression (``#loc7``, ``callsite(#a at #b)``, ``"f"(#loc3)``...)."""
        if not expr or depth > 256:
            return ()
        expr = expr.strip()
        if re.fullmatch(r"#loc\d*", expr):
            ref = expr[1:]
            if ref not in self._memo:
                self._memo[ref] = ()  # guards against cycles
                self._memo[ref] = self.frames(self.defs.get(ref), depth + 1)
            return self._memo[ref]
        m = re.fullmatch(r'"([^"]+)":(\d+)(?::\d+)?(?:\s+to\s+\S*)?', expr)
        if m:
            return (Frame(None, m.group(1), int(m.group(2))),)
        m = _NAMED.fullmatch(expr)
        if m:
            inner = self.frames(m.group(2), depth + 1)
            if len(inner) == 1 and inner[0].function is None:  # "function"("file":line): a named frame
                return (dataclasses.replace(inner[0], function=m.group(1)),)
            return inner  # "op name"(stack) or "scope"(stack): the name is not a frame
        m = _CALLSITE.fullmatch(expr)
        if m:
            return self.frames(m.group(1), depth + 1) + self.frames(m.group(2), depth + 1)
        out: list[Frame] = []  # anything else (fused[...], inline callsites): refs and files in order
        for tok in re.finditer(r'#(loc\d*)|"([^"]+)":(\d+)', expr):
            if tok.group(1) is not None:
                out.extend(self.frames("#" + tok.group(1), depth + 1))
            else:
                out.append(Frame(None, tok.group(2), int(tok.group(3))))
        return tuple(out)


def _trailing_loc(line: str) -> str | None:
    """The content of the ``loc(...)`` that ends ``line`` (quotes respected), or None."""
    s = line.rstrip()
    if not s.endswith(")"):
        return None
    start = s.rfind(" loc(")
    while start >= 0:
        depth, quoted, i = 0, False, start + 4
        for i in range(start + 4, len(s)):
            c = s[i]
            if c == '"' and s[i - 1] != "\\":
                quoted = not quoted
            elif not quoted and c == "(":
                depth += 1
            elif not quoted and c == ")":
                depth -= 1
                if depth == 0:
                    break
        if depth == 0 and i == len(s) - 1:
            return s[start + 5 : -1]
        start = s.rfind(" loc(", 0, start)
    return None


@dataclasses.dataclass
class ModuleOps:
    """The operations of a StableHLO module, as printed.

    Attributes:
      ops: ``(function, op name, location expression or None)`` per operation (terminators and
        ``func.func`` / ``module`` excluded).
      func_locs: each function's own location expression (its first call site for private ones).
      calls: callee names per function, one entry per call op.
    """

    ops: list[tuple[str, str, str | None]]
    func_locs: dict[str, str | None]
    calls: dict[str, list[str]]

    def multiplicity(self, root: str = "main") -> dict[str, int]:
        """How many times each function's body is inlined into ``root`` (call sites along every path)."""
        callers: dict[str, list[str]] = collections.defaultdict(list)
        for f, callees in self.calls.items():
            for g in callees:
                callers[g].append(f)
        memo: dict[str, int] = {}

        def count(f: str, depth: int = 0) -> int:
            if f == root:
                return 1
            if f not in memo:
                memo[f] = 0  # cycle guard (StableHLO has no recursion)
                memo[f] = sum(count(c, depth + 1) for c in callers.get(f, ())) if depth < 10_000 else 0
            return memo[f]

        return {f: count(f) for f in self.func_locs}


def parse_module(text: str) -> ModuleOps:
    """Operations, function locations and call edges of ``lowered.as_text(debug_info=...)``.

    Region ops (``while``'s ``cond {...} do {...}``, ``"stablehlo.case"(...) ({...})``, reducers) get the
    location printed after their closing brace; ops in a region belong to the enclosing function.
    """
    ops: list[tuple[str, str, str | None]] = []
    func_locs: dict[str, str | None] = {}
    calls: dict[str, list[str]] = collections.defaultdict(list)
    stack: list[tuple[str, object]] = []  # ("module", None) | ("func", name) | ("op", index) | ("block", None)
    pending: int | None = None  # an op printed without a location whose regions follow (pretty while)

    def current_func() -> str | None:
        for kind, val in reversed(stack):
            if kind == "func":
                return val  # type: ignore[return-value]
        return None

    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#loc") or s.startswith("^"):
            continue
        opens = s.endswith("{")
        if s.startswith("}"):
            if opens:  # "} do {", "}, {": the next region of the same op
                continue
            kind, val = stack.pop() if stack else ("block", None)
            loc = _trailing_loc(s)
            if kind == "func":
                func_locs[val] = loc  # type: ignore[index]
            elif kind == "op" and loc is not None:
                f, name, _ = ops[val]  # type: ignore[index]
                ops[val] = (f, name, loc)  # type: ignore[index]
            continue
        m = _OP.match(line)
        name = m.group(1) if m else None
        if name == "module":
            stack.append(("module", None))
            continue
        if name == "func.func":
            fm = _FUNC_NAME.search(s)
            fname = fm.group(1) if fm else f"?{len(func_locs)}"
            func_locs.setdefault(fname, None)
            stack.append(("func", fname))
            continue
        func = current_func()
        if name is None or func is None or name in _TERMINATORS:
            if opens:  # "cond {", "reducer(...) {": a region of the pending op
                stack.append(("op", pending) if pending is not None else ("block", None))
                pending = None
            continue
        if name in ("call", "func.call"):
            cm = _CALLEE.search(s)
            if cm:
                calls[func].append(cm.group(1))
        loc = _trailing_loc(s)
        ops.append((func, name, loc))
        if opens:
            stack.append(("op", len(ops) - 1))
            pending = None
        else:
            pending = len(ops) - 1 if loc is None else None
    return ModuleOps(ops, func_locs, dict(calls))


def _relative(path: str, marker: str) -> str | None:
    """``path`` below the last ``marker`` folder (e.g. ``models/sampling.py``), None when outside it."""
    i = path.rfind(marker)
    return None if i < 0 else path[i + len(marker) :]


def component_of(stack: Sequence[str], rules=COMPONENTS) -> str:
    """The part of the program an op belongs to, from its jaxsim frames ``"path.py:function"``."""
    if not stack:
        return NO_FRAME
    for name, patterns in rules:
        if any(fnmatch.fnmatchcase(frame, p) for frame in stack for p in patterns):
            return name
    return NO_FRAME


def _fraction_rows(counter: collections.Counter, total: int) -> list[dict]:
    return [dict(name=k, ops=v, share=v / total if total else 0.0) for k, v in counter.most_common()]


def attribute_ops(text: str, *, marker: str = "/jaxsim/", rules=COMPONENTS, top: int = 40) -> dict:
    """Count the ops of ``lowered.as_text(debug_info=True)`` by source module, line and program part.

    Args:
      text: the module text with locations.
      marker: the folder whose files are "ours" (the innermost frame under it names the module).
      rules: program parts (:data:`COMPONENTS`), matched against ``"module.py:function"`` frames.
      top: how many source lines to keep.

    Returns:
      dict: ``ops`` (as printed), ``inlined`` (each function counted once per inlined use),
      ``functions``, ``const_chars`` (characters of ``stablehlo.constant`` lines), ``by_module``,
      ``by_line`` (innermost frame under ``marker``: ``path:line (function)``), ``by_component`` and
      ``by_component_inlined``: lists of ``{name, ops, share}``, largest first (a constant without a
      jaxsim frame of its own, i.e. a literal printed without a location or located at the program's
      entry, is :data:`CONSTANTS`, not its function's call site; other ops without any jaxsim frame
      are :data:`NO_FRAME`); ``unlocated`` (ops without any location).
    """
    mod = parse_module(text)
    table = LocTable(text)
    mult = mod.multiplicity()
    by_module: collections.Counter = collections.Counter()
    by_line: collections.Counter = collections.Counter()
    by_comp: collections.Counter = collections.Counter()
    by_comp_inl: collections.Counter = collections.Counter()
    func_frames = {f: table.frames(loc) for f, loc in mod.func_locs.items()}
    unlocated = 0
    memo: dict[tuple, tuple[str, str, str]] = {}
    for func, name, loc in mod.ops:
        if loc is None:
            unlocated += 1
        key = (func, loc, name == "stablehlo.constant")
        if key not in memo:
            own = table.frames(loc)
            ours = [(f, _relative(f.file, marker)) for f in own + func_frames.get(func, ())]
            ours = [(f, rel) for f, rel in ours if rel is not None]
            if ours:
                f0, rel0 = ours[0]
                module, line = rel0, f"{rel0}:{f0.line} ({f0.function or '?'})"
            else:
                module = line = NO_FRAME
            comp = component_of([f"{rel}:{f.function or ''}" for f, rel in ours], rules)
            if name == "stablehlo.constant" and not any(_relative(f.file, marker) for f in own):
                module = line = comp = CONSTANTS  # a literal: no location of its own in our code
            memo[key] = (module, line, comp)
        module, line, comp = memo[key]
        by_module[module] += 1
        by_line[line] += 1
        by_comp[comp] += 1
        by_comp_inl[comp] += mult.get(func, 1)
    total = len(mod.ops)
    inlined = sum(by_comp_inl.values())
    const_chars = sum(len(s) for s in text.splitlines() if "stablehlo.constant" in s)
    return dict(
        ops=total,
        inlined=inlined,
        functions=len(mod.func_locs),
        const_chars=const_chars,
        unlocated=unlocated,
        by_module=_fraction_rows(by_module, total),
        by_line=_fraction_rows(by_line, total)[:top],
        by_component=_fraction_rows(by_comp, total),
        by_component_inlined=_fraction_rows(by_comp_inl, inlined),
    )


# ----------------------------------------------------------------------------------------------
# jax's compile events


def _fun(name: str) -> str:
    m = re.fullmatch(r"jit\((.*)\)", name)
    return m.group(1) if m else name


def _union(spans: Iterable[tuple[float, float]]) -> float:
    """Seconds covered by possibly nested or overlapping ``(start, end)`` spans."""
    total, end = 0.0, float("-inf")
    for s, e in sorted(spans):
        if s > end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total


def compile_summary(spans: Sequence[tuple[str, str, float, float]]) -> dict:
    """Tracing, lowering and XLA time from ``(kind, function, start, end)`` spans.

    ``kind`` is ``trace``, ``lower`` or ``xla``. Tracing spans nest (an inner ``jit`` is traced inside
    its caller), so totals are the time covered, not sums. The main program is the function with the
    longest XLA compile; ``other_*`` is everything else.

    Returns:
      dict: ``trace_s``, ``lower_s``, ``xla_s``, ``compile_s`` (covered by any span), ``xla_n`` (XLA
      compiles), ``main`` (``name``, ``trace_s``, ``lower_s``, ``xla_s``), ``other_xla_s``,
      ``other_xla_n``, ``per_function`` (name -> seconds per kind, xla count).
    """
    per: dict[str, dict] = collections.defaultdict(lambda: dict(trace_s=0.0, lower_s=0.0, xla_s=0.0, xla_n=0))
    for kind, fun, s, e in spans:
        per[_fun(fun)][f"{kind}_s"] += e - s
        if kind == "xla":
            per[_fun(fun)]["xla_n"] += 1
    out = {f"{k}_s": _union((s, e) for kk, _, s, e in spans if kk == k) for k in ("trace", "lower", "xla")}
    out["compile_s"] = _union((s, e) for _, _, s, e in spans)
    out["xla_n"] = sum(p["xla_n"] for p in per.values())
    compiled = [f for f in per if per[f]["xla_n"]]
    main = max(compiled, key=lambda f: per[f]["xla_s"]) if compiled else None
    out["main"] = dict(name=main, **(per[main] if main else dict(trace_s=0.0, lower_s=0.0, xla_s=0.0, xla_n=0)))
    out["other_xla_s"] = out["xla_s"] - out["main"]["xla_s"]
    out["other_xla_n"] = out["xla_n"] - out["main"]["xla_n"]
    out["per_function"] = dict(per)
    return out


class EventRecorder:
    """Collects jax's compile time spans and counters (cache hits and misses) from now on."""

    def __init__(self):
        self.spans: list[tuple[str, str, float, float]] = []
        self.counts: collections.Counter = collections.Counter()

    def install(self) -> EventRecorder:
        from jax import monitoring  # deferred: jax only in the probe's process

        monitoring.register_event_time_span_listener(self._span)
        monitoring.register_event_listener(self._event)
        return self

    def _span(self, event, start, end, **kwargs):
        if event in _KINDS:
            self.spans.append((_KINDS[event], str(kwargs.get("fun_name", "?")), float(start), float(end)))

    def _event(self, event, **kwargs):
        if event.startswith("/jax/compilation_cache/"):
            self.counts[event.rsplit("/", 1)[-1]] += 1

    def between(self, start: float, end: float) -> list[tuple[str, str, float, float]]:
        """Spans that started in ``[start, end]`` (``time.time()`` seconds)."""
        return [sp for sp in self.spans if start <= sp[2] <= end]


# ----------------------------------------------------------------------------------------------
# Scenarios (jaxsim imported inside: the tree on PYTHONPATH is the one measured)


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every OS
        return None


def _environment() -> dict:
    import jax

    import jaxsim as package  # the tree measured

    dev = jax.devices()[0]
    return dict(
        jax=jax.__version__,
        backend=jax.default_backend(),
        device_kind=getattr(dev, "device_kind", str(dev)),
        package=os.path.dirname(os.path.abspath(package.__file__)),
    )


def _sims(value: str):
    return value if value == "all" else int(value)


def _plan_args(prices, forecaster, n_sims):
    """The backtest program's static setup and arguments for one stock (as the engine builds them)."""
    import jax
    import jax.numpy as jnp

    from jaxsim.config import BacktestConfig
    from jaxsim.shell.plan import make_plan

    plan = make_plan(prices, forecaster, BacktestConfig(n_sims=n_sims, protocol="legacy"), symbol=prices.symbol)
    _, members = next(iter(plan.groups.items()))
    setup = plan.setup(members[0])
    stocks = plan.arrays(members)
    keys = jax.tree.map(lambda k: k[None], plan.keys[0])
    fee = jnp.asarray([plan.stocks[0].fee], jnp.float32)
    spread = jnp.asarray([plan.stocks[0].spread], jnp.float32)
    return plan, setup, (stocks, fee, spread, keys)


def program_stats(lowered, *, marker: str = "/jaxsim/") -> dict:
    """Op counts, text size and attribution of a lowered program."""
    plain = lowered.as_text()
    stats = attribute_ops(lowered.as_text(debug_info=True), marker=marker)
    stats["chars"] = len(plain)
    return stats


def run_first(n_sims) -> dict:
    """First and warm ``jaxsim.backtest`` of the AAPL sample with the default forecaster in this process."""
    t0 = time.perf_counter()
    import jax

    recorder = EventRecorder().install()
    import jaxsim
    from jaxsim import forecasters

    import_s = time.perf_counter() - t0
    prices = jaxsim.sample("AAPL")
    forecaster = forecasters.default()
    setup_s = time.perf_counter() - t0 - import_s
    w0, c0, p0 = time.time(), time.perf_counter(), time.process_time()
    jax.block_until_ready(jaxsim.backtest(prices, forecaster, n_sims=n_sims, protocol="legacy").records)
    first_s, first_cpu_s = time.perf_counter() - c0, time.process_time() - p0
    spans = recorder.between(w0, time.time())
    warm = []
    for _ in range(2):
        c1 = time.perf_counter()
        jax.block_until_ready(jaxsim.backtest(prices, forecaster, n_sims=n_sims, protocol="legacy").records)
        warm.append(time.perf_counter() - c1)
    from jaxsim.engine.program import compiled_program, trace_count

    out = dict(
        mode="first",
        sims=str(n_sims),
        import_s=import_s,
        setup_s=setup_s,
        first_s=first_s,
        first_cpu_s=first_cpu_s,
        warm_s=min(warm),
        warm_runs=warm,
        traces=trace_count(),
        compile=compile_summary(spans),
    )
    out["rest_s"] = first_s - out["compile"]["compile_s"]
    try:  # the same program lowered again (cached trace; untimed) for its statistics
        _, setup, args = _plan_args(prices, forecaster, n_sims)
        lowered = compiled_program.trace(forecaster, *args, setup=setup).lower()
        out["program"] = program_stats(lowered)
    except Exception as e:  # noqa: BLE001 - a tree without these internals still gets its timings
        out["program"] = dict(error=f"{type(e).__name__}: {e}")
    return out


def _part_draws(setup, f):
    """Draws of the first 8 origins of every target from given mixtures (Toto's sampler)."""
    import jax

    from jaxsim.forecast.grid import ContextGroup
    from jaxsim.forecast.interface import context_keys
    from jaxsim.models.toto.forecast import sample_mixture

    def draws(mix, key):
        keys = context_keys(key, setup.grid, setup.targets, ContextGroup(0, setup.grid.n_origins, 0))[:, :8]
        sub = jax.tree.map(lambda a: a[:, :8].reshape((-1,) + a.shape[2:]), mix)
        one = lambda k, m: sample_mixture(k, jax.tree.map(lambda a: a[None], m), f.num_samples)[0]  # noqa: E731
        return jax.lax.map(lambda km: one(*km), (keys.reshape(-1), sub), batch_size=8)

    return draws


def _part_simulation(setup, stock):
    """The simulation stage of the backtest program (strategies + multiplier optimizer) from a summary."""
    import jax.numpy as jnp

    from jaxsim.engine.program import map_sims
    from jaxsim.forecast.grid import price_windows, sim_forecast_index
    from jaxsim.sim.simulation import PRICE_WINDOW, SimulationInputs, simulation_fields

    def stage(point, band, fee, spread):
        index = sim_forecast_index(setup.grid)
        preds = {x: point[i][index] for i, x in enumerate(setup.targets)}
        zeros = jnp.zeros_like(preds["close"])
        windows, valid = price_windows(stock.prices, setup.grid, PRICE_WINDOW)
        inputs = SimulationInputs(
            preds["close"],
            preds.get("high", zeros),
            preds.get("low", zeros),
            band[setup.targets.index("close")][index],
            windows,
            valid,
        )

        def one(sim_inputs):
            return simulation_fields(
                sim_inputs, fee=fee, spread=spread, config=setup.strategy, optimizer=setup.optimizer
            )

        return dict(map_sims(one, inputs, setup.sim_chunk))

    return stage


PARTS = ("mixtures (model)", "forecast summary", "draws (8 origins)", "simulation + optimizer", "forecasted P&L")


def _stage_times(name: str, fn, *args) -> tuple[dict, object]:
    import jax

    t0 = time.perf_counter()
    traced = jax.jit(fn).trace(*args)
    t1 = time.perf_counter()
    lowered = traced.lower()
    t2, p2 = time.perf_counter(), time.process_time()
    compiled = lowered.compile()
    t3, xla_cpu_s = time.perf_counter(), time.process_time() - p2
    out = jax.block_until_ready(compiled(*args))
    t4 = time.perf_counter()
    warm = []
    for _ in range(2):
        t5 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        warm.append(time.perf_counter() - t5)
    plain = lowered.as_text()
    mod = parse_module(plain)
    row = dict(
        part=name,
        trace_s=t1 - t0,
        lower_s=t2 - t1,
        xla_s=t3 - t2,
        xla_cpu_s=xla_cpu_s,
        cold_s=t4 - t3,
        warm_s=min(warm),
        ops=len(mod.ops),
        chars=len(plain),
    )
    return row, out


def run_parts(n_sims, names: Sequence[str] = PARTS) -> dict:
    """Each component of the backtest program compiled alone (stages API), in this order, one process."""
    t0 = time.perf_counter()
    import jax
    import jax.numpy as jnp

    import jaxsim
    from jaxsim import forecasters

    import_s = time.perf_counter() - t0
    prices = jaxsim.sample("AAPL")
    f = forecasters.default()
    plan, setup, (stocks, fee, spread, _) = _plan_args(prices, f, n_sims)
    stock = jax.tree.map(lambda a: a[0], stocks)
    key = plan.keys[0]
    grid, targets = setup.grid, setup.targets
    rows, outputs = [], {}

    def part(name, build):
        if name not in names:
            return
        try:
            fn, args = build()
            row, outputs[name] = _stage_times(name, fn, *args)
        except Exception as e:  # noqa: BLE001 - a tree without this component's API: an error row
            row = dict(part=name, error=f"{type(e).__name__}: {e}"[:300])
        rows.append(row)

    part("mixtures (model)", lambda: (lambda f, s: f.mixtures(s, grid, targets), (f, stock)))
    part(
        "forecast summary",
        lambda: (lambda f, s, k: f.forecast_summary(s, grid, targets, k, setup.aggregate), (f, stock, key)),
    )
    part("draws (8 origins)", lambda: (_part_draws(setup, f), (outputs["mixtures (model)"], key)))

    def simulation():
        summary = outputs["forecast summary"]
        return _part_simulation(setup, stock), (summary.point, summary.band, fee[0], spread[0])

    part("simulation + optimizer", simulation)

    def pnl():
        from jaxsim.engine.forecasted_pnl import stock_forecasted_pnl

        n = grid.n_sims
        series = 0.01 * jax.random.normal(jax.random.key(1), (8, n), jnp.float32)
        return (lambda f, s, k: stock_forecasted_pnl(f, s, k, chronological=False)), (f, series, key)

    part("forecasted P&L", pnl)
    return dict(mode="parts", sims=str(n_sims), import_s=import_s, rows=rows)


def run_cli(argv: Sequence[str]) -> dict:
    """``python -m jaxsim.cli.app ARGV`` in this process: wall, traces, XLA compiles, cache hits."""
    import runpy

    t0 = time.perf_counter()
    import jax

    recorder = EventRecorder().install()
    import_s = time.perf_counter() - t0
    saved = sys.argv
    sys.argv = ["jaxsim", *argv]
    rc = 0
    buffer = io.StringIO()
    c0, p0 = time.perf_counter(), time.process_time()
    try:
        with contextlib.redirect_stdout(buffer):
            runpy.run_module("jaxsim.cli.app", run_name="__main__", alter_sys=False)
    except SystemExit as e:  # the CLI exits with its code
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = saved
    wall, cpu = time.perf_counter() - c0, time.process_time() - p0
    from jaxsim.engine.program import trace_count

    summary = compile_summary(recorder.spans)
    per = summary.pop("per_function")  # the command line compiles many small programs: keep the costliest
    summary["top_functions"] = dict(sorted(per.items(), key=lambda kv: -kv[1]["xla_s"])[:20])
    return dict(
        mode="cli",
        argv=list(argv),
        rc=rc,
        import_s=import_s,
        cli_s=wall,
        cli_cpu_s=cpu,
        traces=trace_count(),
        compile=summary,
        cache=dict(recorder.counts),
        jax=jax.__version__,
        stdout_tail=buffer.getvalue()[-1500:],
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one mode and write its JSON result to ``--out`` (the load average before and after is added)."""
    ap = argparse.ArgumentParser(description="jaxsim compile benchmark probe (one scenario, this process)")
    ap.add_argument("mode", choices=("first", "parts", "cli"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--sims", default="50")
    ap.add_argument("--parts", default=",".join(PARTS))
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)  # cli: the jaxsim arguments follow --
    a, rest = ap.parse_args(argv[:cut]), argv[cut + 1 :]
    load_before = _load()
    if a.mode == "first":
        result = run_first(_sims(a.sims))
    elif a.mode == "parts":
        result = run_parts(_sims(a.sims), [p for p in a.parts.split(",") if p])
    else:
        result = run_cli(rest)
    result.update(load_before=load_before, load_after=_load(), cpu_s=time.process_time(), env=_environment())
    with open(a.out, "w") as fh:
        json.dump(result, fh, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
