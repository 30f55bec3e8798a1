"""The strategy table (jaxsim/sim/strategy_table.py) is the one place a built-in strategy is named.

Read from the source with ``ast``: a string constant naming a built-in strategy (its name, record
prefix or another prefix of its fields, also inside a longer field name or an f-string) may appear
only in the table module and in the module that implements that strategy's math (the row's
``module``). Docstrings and ``__all__`` lists (function names) are not names of a strategy.
Everything else reads the rows, so a new built-in is its math plus one row.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.sim.simulation import PRICE_WINDOW, RECORDS, SimulationInputs, evaluate_simulation, simulation_fields
from jaxsim.sim.strategy_table import ENTRY_TAKEPROFIT, HIGHLOW, OOS_PREFIX, STRATEGIES, Strategy

ROOT = Path(__file__).resolve().parents[1]
TABLE_MODULE = "jaxsim.sim.strategy_table"
# string constants that contain a strategy's prefix but name something else
UNRELATED = {
    "buy_hold_return_pct": "backtesting.py's Buy & Hold row: the stock's own return, not the buy_hold strategy",
}


def _module_name(path: Path, package_root: Path) -> str:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _skipped_constants(tree: ast.Module) -> set[int]:
    """ids of the docstring constants and of the strings of ``__all__``."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skipped.add(id(first.value))
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value is not None:
                skipped |= {id(c) for c in ast.walk(node.value) if isinstance(c, ast.Constant)}
    return skipped


def _patterns(row: Strategy) -> list[re.Pattern]:
    """What names ``row`` in a string: its name or log label alone, or its prefix (or alias) as a whole part
    of an underscore-joined name (``simple`` alone, but ``simple_strategy`` also in
    ``oos_position_simple_strategy``). Prose ("the MaxDiff means") is not a name."""
    whole = [row.name] + ([row.fit.label] if row.fit is not None else [])
    parts = [row.prefix, *row.aliases]
    return [
        re.compile(rf"^({'|'.join(map(re.escape, whole))})$"),
        re.compile(rf"(?<![A-Za-z0-9])({'|'.join(map(re.escape, parts))})(?![A-Za-z0-9])"),
    ]


def hardcoded(source: str, module: str, rows=STRATEGIES) -> list[str]:
    """``"<module>:<line>: <string> names <strategy>"`` for every string constant of ``source`` that
    names a built-in strategy outside the table and the strategy's own module."""
    if module == TABLE_MODULE:
        return []
    tree = ast.parse(source)
    skipped = _skipped_constants(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in skipped:
            continue
        if node.value in UNRELATED:
            continue
        for row in rows:
            if module != row.module and any(p.search(node.value) for p in _patterns(row)):
                found.append(f"{module}:{node.lineno}: {node.value!r} names {row.name}")
    return found


def package_hardcoded(package_root: Path) -> list[str]:
    """:func:`hardcoded` over every module of the package at ``package_root``."""
    return [
        hit
        for path in sorted(package_root.rglob("*.py"))
        for hit in hardcoded(path.read_text(), _module_name(path, package_root))
    ]


def test_no_module_but_the_table_and_its_math_names_a_builtin_strategy():
    hits = package_hardcoded(ROOT / "jaxsim")
    assert not hits, "built-in strategies named outside jaxsim/sim/strategy_table.py (read the table):\n" + "\n".join(
        hits
    )


def test_the_check_sees_names_in_fields_and_f_strings_but_not_in_docstrings():
    source = '''
"""simple and maxdiff in a docstring are prose."""
__all__ = ["maxdiff_landscape"]
A = "simple"
B = "maxdiffprofit_high_price"
C = f"{X}finalday_entry_takeprofit"
D = "walk_forward_highlow_sharpe"
E = "MaxDiffAlwaysOn"
E2 = "the MaxDiff means"
F = "simple_annual_volatility"
G = "buy_hold_return_pct"
def f():
    """all_signals_strategy: prose."""
'''
    hits = hardcoded(source, "jaxsim.report.somewhere")
    named = sorted(h.split(" names ")[1] for h in hits)
    assert named == ["entry_takeprofit", "highlow", "maxdiff", "maxdiffalwayson", "simple"], hits
    assert [h.split(":")[1] for h in hits if h.endswith("maxdiff")] == ["5"]
    assert not [h for h in hits if "the MaxDiff means" in h]
    # the strategy's own module and the table may name it
    assert hardcoded('X = "maxdiffprofit_high_price"', "jaxsim.sim.maxdiff") == []
    assert hardcoded('X = "simple_strategy"', "jaxsim.sim.maxdiff") != []
    assert hardcoded('X = "simple_strategy"', TABLE_MODULE) == []


def test_every_row_is_scored_by_its_module():
    for s in STRATEGIES:
        assert RECORDS[s] is importlib.import_module(s.module).RECORDS[s], s.name
    assert set(RECORDS) == set(STRATEGIES)


def test_the_fields_the_table_names_are_in_the_record():
    window = np.linspace(100.0, 110.0, PRICE_WINDOW * 5, dtype=np.float32).reshape(PRICE_WINDOW, 5)
    inputs = SimulationInputs(*(jnp.zeros(7, jnp.float32) for _ in range(4)), window, np.ones(PRICE_WINDOW, bool))

    def optimizer(*args, close_at_eod, fee):
        del args, close_at_eod, fee
        return jnp.zeros(2, jnp.float32)

    record = jax.eval_shape(lambda x: simulation_fields(x, fee=0.0005, spread=1.0, optimizer=optimizer), inputs)
    for s in STRATEGIES:
        wanted = [s.field(f) for f in ("return", "sharpe", "avg_daily_return", "annual_return")] + [s.final_day]
        wanted += [s.position_field] if s.kind != "limits" else []
        wanted += [s.last_day_field] if s.final_day_average else []
        wanted += [s.exit_field] if s.kind == "day_trades" else []
        if s.fit is not None:
            wanted += [s.fit.high_multiplier, s.fit.low_multiplier, s.fit.high_price, s.fit.low_price]
            wanted += [s.field(f) for f in ("close_at_eod", "baseline_return", "optimized_return", "turnover")]
        assert not [f for f in wanted if f not in record], s.name
    oos = {k for k in record if k.startswith(OOS_PREFIX)}
    fields = ("position_field", "last_day_field", "entry_field", "exit_field")
    assert oos == {getattr(s, f) for s in STRATEGIES for f in fields if getattr(s, f) in record}
    assert HIGHLOW.entry_field in record and ENTRY_TAKEPROFIT.entry_field not in record  # in at the close
    plain = jax.eval_shape(lambda x: evaluate_simulation(x, fee=0.0005, spread=1.0, optimizer=optimizer), inputs)
    assert set(plain) == set(record) - oos
