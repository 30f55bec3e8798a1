"""The compile benchmark's pure parts: the StableHLO location parser and op attribution, the compile-event
summary, the table rows. Fast; no timing is asserted."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsim.bench import compile_probe as probe
from jaxsim.bench import compile_suite as suite
from jaxsim.bench import harness as bench


def _scaled(x):
    return jnp.sin(x) * 3.0  # LINE_SCALED


def _program(x):
    a = jax.jit(_scaled)(x)  # LINE_CALL_1
    b = jax.jit(_scaled)(x + 1.0)  # LINE_CALL_2
    return jnp.cumsum(a * b)  # LINE_CUMSUM


def _line(tag: str) -> int:
    lines = open(__file__).read().splitlines()
    return next(i + 1 for i, s in enumerate(lines) if s.endswith(f"# {tag}"))


def test_attribution_of_a_tiny_program_by_line_module_and_inlining():
    text = jax.jit(_program).trace(jnp.ones(4, jnp.float32)).lower().as_text(debug_info=True)
    got = probe.attribute_ops(text, marker="/tests/")
    lines = {r["name"]: r["ops"] for r in got["by_line"]}
    here = "test_bench_compile.py"
    scaled = f"{here}:{_line('LINE_SCALED')} (_scaled)"
    # sin, the 3.0 constant, its broadcast, multiply: in the private function of the inner jit, located
    # by their own frames inside _scaled
    assert lines[scaled] >= 3, lines
    assert lines[f"{here}:{_line('LINE_CALL_1')} (_program)"] >= 1  # the call op
    assert f"{here}:{_line('LINE_CUMSUM')} (_program)" in lines  # jnp.cumsum's own function: its call site
    assert sum(r["ops"] for r in got["by_module"]) == got["ops"]
    assert {r["name"] for r in got["by_module"]} <= {here, probe.NO_FRAME, probe.CONSTANTS}
    # _scaled is printed once and called twice: XLA inlines it twice
    mod = probe.parse_module(text)
    scaled_funcs = [f for f in mod.func_locs if "scaled" in f]
    assert len(scaled_funcs) == 1 and mod.multiplicity()[scaled_funcs[0]] == 2
    own = sum(1 for f, _, _ in mod.ops if f == scaled_funcs[0])
    assert got["inlined"] == got["ops"] + own
    assert got["unlocated"] == 0 and got["functions"] == len(mod.func_locs)


_HANDWRITTEN = """\
module @jit_f attributes {mhlo.num_partitions = 1 : i32} {
  func.func public @main(%arg0: tensor<3xf32> loc("x")) -> (tensor<3xf32>) {
    %0 = call @helper(%arg0) : (tensor<3xf32>) -> tensor<3xf32> loc(#loc5)
    %c = stablehlo.constant dense<0> : tensor<i32> loc(#loc)
    %1:2 = stablehlo.while(%iterArg = %c, %iterArg_1 = %0) : tensor<i32>, tensor<3xf32>
    cond {
      %c_2 = stablehlo.constant dense<4> : tensor<i32> loc(#loc6)
      %2 = stablehlo.compare LT, %iterArg, %c_2, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1> loc(#loc6)
      stablehlo.return %2 : tensor<i1> loc(#loc6)
    } do {
      %2 = func.call @helper(%iterArg_1) : (tensor<3xf32>) -> tensor<3xf32> loc(#loc6)
      stablehlo.return %iterArg, %2 : tensor<i32>, tensor<3xf32> loc(#loc6)
    } loc(#loc7)
    %3 = "stablehlo.case"(%c) ({
      stablehlo.return %0 : tensor<3xf32> loc(#loc6)
    }, {
      stablehlo.return %1#1 : tensor<3xf32> loc(#loc6)
    }) : (tensor<i32>) -> tensor<3xf32> loc("scope"(#loc9))
    return %3 : tensor<3xf32> loc(#loc)
  } loc(#loc)
  func.func private @helper(%arg0: tensor<3xf32> loc(unknown)) -> tensor<3xf32> {
    %0 = stablehlo.sine %arg0 : tensor<3xf32> loc(#loc4)
    return %0 : tensor<3xf32> loc(#loc)
  } loc(#loc8)
} loc(#loc)
#loc = loc(unknown)
#loc1 = loc("/src/jaxsim/models/sampling.py":12:3)
#loc2 = loc("/src/jaxsim/engine/forecasted_pnl.py":40:7 to :20)
#loc3 = loc("/usr/lib/jax/_src/numpy.py":99:1)
#loc10 = loc("/src/jaxsim/sim/ties.py":5:1)
#loc11 = loc("bits"(#loc1))
#loc12 = loc("stock_forecasted_pnl"(#loc2))
#loc4 = loc("sin"(#loc11))
#loc5 = loc(callsite(#loc12 at #loc3))
#loc6 = loc("jit(f)/while"(#loc3))
#loc7 = loc("tied"(#loc10))
#loc8 = loc("jit:"(#loc5))
#loc9 = loc("choose"(#loc10))
"""


def test_parse_module_regions_calls_and_locations():
    mod = probe.parse_module(_HANDWRITTEN)
    names = [name for _, name, _ in mod.ops]
    # terminators, func.func and module are not ops; region ops are, with the location after their brace
    assert names == [
        "call",
        "stablehlo.constant",
        "stablehlo.while",
        "stablehlo.constant",
        "stablehlo.compare",
        "func.call",
        "stablehlo.case",
        "stablehlo.sine",
    ]
    assert mod.ops[2][2] == "#loc7" and mod.ops[6][2] == '"scope"(#loc9)'
    assert mod.calls == {"main": ["helper", "helper"]}
    assert mod.func_locs == {"main": "#loc", "helper": "#loc8"}
    assert mod.multiplicity() == {"main": 1, "helper": 2}
    table = probe.LocTable(_HANDWRITTEN)
    assert table.frames("#loc5") == (
        probe.Frame("stock_forecasted_pnl", "/src/jaxsim/engine/forecasted_pnl.py", 40),
        probe.Frame(None, "/usr/lib/jax/_src/numpy.py", 99),
    )
    assert table.frames("#loc4") == (probe.Frame("bits", "/src/jaxsim/models/sampling.py", 12),)
    got = probe.attribute_ops(_HANDWRITTEN)
    by_module = {r["name"]: r["ops"] for r in got["by_module"]}
    # sine: its own frame (sampling) first, then the helper's call site (forecasted P&L)
    assert by_module["models/sampling.py"] == 1
    assert by_module["engine/forecasted_pnl.py"] == 1  # the call op itself
    assert by_module["sim/ties.py"] == 2  # while and case
    assert by_module[probe.CONSTANTS] == 2 and by_module[probe.NO_FRAME] == 2  # literals apart
    comps = {r["name"]: r["ops"] for r in got["by_component"]}
    assert comps["forecasted P&L"] == 2  # the sampler under the forecasted P&L counts as forecasted P&L
    assert comps["strategies / simulation"] == 2
    assert got["ops"] == 8 and got["inlined"] == 9


def test_component_rules():
    assert probe.component_of([]) == probe.NO_FRAME
    assert probe.component_of(["models/sampling.py:threefry2x32", "engine/forecasted_pnl.py:_model_point"]) == (
        "forecasted P&L"
    )
    assert probe.component_of(["sim/ties.py:tied", "optimize/search.py:ascend"]) == "optimizer"
    assert probe.component_of(["models/toto/forecast.py:sample_mixture"]) == "draws / sampler"
    assert probe.component_of(["forecast/forecasters.py:TotoForecaster._draws"]) == "draws / sampler"
    assert probe.component_of(["models/toto/model.py:attention", "forecast/forecasters.py:mixtures"]) == (
        "model layers"
    )
    assert probe.component_of(["forecast/aggregate.py:sort_draws"]) == "forecast summary"
    assert probe.component_of(["sim/profit.py:pnl", "engine/program.py:stock_program"]) == "strategies / simulation"
    assert probe.component_of(["engine/program.py:stock_program"]) == "walk-forward glue (engine, other)"


def test_compile_summary_nested_spans_and_main_program():
    spans = [
        ("trace", "batched_program", 0.0, 4.0),
        ("trace", "inner", 1.0, 2.0),  # nested in the outer trace: not counted twice
        ("lower", "jit(batched_program)", 4.0, 5.0),
        ("xla", "jit(batched_program)", 5.0, 15.0),
        ("trace", "convert", 16.0, 16.5),
        ("xla", "jit(convert)", 16.5, 17.0),
    ]
    got = probe.compile_summary(spans)
    assert got["trace_s"] == 4.5 and got["lower_s"] == 1.0 and got["xla_s"] == 10.5
    assert got["compile_s"] == 16.0 and got["xla_n"] == 2
    assert got["main"]["name"] == "batched_program"
    assert (got["main"]["trace_s"], got["main"]["lower_s"], got["main"]["xla_s"]) == (4.0, 1.0, 10.0)
    assert got["other_xla_s"] == 0.5 and got["other_xla_n"] == 1
    assert probe.compile_summary([])["main"]["name"] is None


def _first_result(tree, sims):
    return dict(
        tree=tree,
        sims=sims,
        process_s=40.0,
        import_s=5.0,
        first_s=30.0,
        rest_s=1.0,
        warm_s=0.3,
        traces=1,
        load_before=[3.0, 2.0, 1.0],
        load_after=[3.5, 2.0, 1.0],
        compile=probe.compile_summary([("trace", "p", 0.0, 5.0), ("lower", "p", 5.0, 7.0), ("xla", "p", 7.0, 29.0)]),
        program=dict(
            ops=100,
            inlined=120,
            chars=2 * 1024 * 1024,
            const_chars=1024,
            by_component=[dict(name="optimizer", ops=60, share=0.6), dict(name="model layers", ops=40, share=0.4)],
            by_module=[dict(name="optimize/search.py", ops=100, share=1.0)],
            by_line=[dict(name="optimize/search.py:1 (f)", ops=100, share=1.0)],
        ),
    )


def test_rows_carry_every_column_and_the_markdown_has_each_table():
    first = [_first_result("old", "50"), _first_result("new", "50")]
    row = suite.first_row(first[0])
    assert {k for k, _, _ in suite.FIRST_COLUMNS} <= set(row)
    assert (row["trace_s"], row["lower_s"], row["xla_s"], row["load"], row["text_mib"]) == (5.0, 2.0, 22.0, 3.5, 2.0)
    parts = dict(
        tree="new",
        sims="50",
        rows=[
            dict(part="mixtures (model)", trace_s=1, lower_s=1, xla_s=1, cold_s=1, warm_s=1, ops=3, chars=2048),
            dict(part="forecasted P&L", error="AttributeError: x"),
        ],
    )
    rows = suite.part_rows(parts)
    assert all({k for k, _, _ in suite.PART_COLUMNS} <= set(r) for r in rows)
    assert rows[0]["text_kib"] == 2.0 and rows[1]["error"].startswith("AttributeError")
    cli = suite.cli_row(dict(tree="new", rc=0, traces=3, compile=dict(xla_n=5, xla_s=9.0), cache={}), "u", "cold", 3)
    assert {k for k, _, _ in suite.CLI_COLUMNS} <= set(cli) and cli["cache_hits"] == 0
    share, cols = suite.share_rows(first, "by_component")
    assert [r["name"] for r in share] == ["optimizer", "model layers"]
    assert share[0]["c0"] == "60 (60%)" and len(cols) == 3
    env = dict(bench.environment())
    trees = [suite.Tree(path="/a", label="old"), suite.Tree(path="/b", label="new")]
    text = suite.compile_markdown(env, first, [parts], [cli], trees)
    for title in ("# Compilation", "## Program parts", "### By module", "## Components compiled alone", "## Command"):
        assert title in text
    assert "optimizer 60%" in text and "load average" in text
    assert "| round |" not in text
    again = dict(_first_result("new", "50"), round=2)
    text = suite.compile_markdown(env, [*first, again], [], [], trees)
    assert "| tree | round | N |" in text
    assert "| part | old N=50 | new N=50 |\n" in text  # op counts are exact: one column per tree and N


def test_universe_symbols_pick_three_lengths(tmp_path):
    for name, n in (("A", 5), ("B", 5), ("C", 7), ("D", 9), ("E", 12)):
        (tmp_path / f"{name}.csv").write_text("x\n" * n)
    assert suite.universe_symbols(tmp_path, quick=True) == ["A", "D", "E"]
    assert suite.universe_symbols(tmp_path, quick=False) == ["A", "B", "C", "D", "E"]


def test_cli_bench_compile_flags():
    from jaxsim.cli.app import build_parser

    argv = ["bench", "compile", "--quick", "--tree", "a", "--tree", "b", "--data-dir", "d", "--rounds", "2"]
    args = build_parser().parse_args(argv)
    assert args.suite == "compile" and args.tree == ["a", "b"] and args.data_dir == "d" and args.quick
    assert args.rounds == 2 and build_parser().parse_args(["bench", "compile"]).tree is None
