"""The package's shape, read from the source with ``ast`` (nothing is imported): no import cycles between
jaxsim modules, no use of another module's underscored names (benchmarks and tools included), an
``__all__`` in every module naming only what the module defines, and every ``jaxsim.x.y`` the
sources and docs cite naming something that exists."""

from __future__ import annotations

import ast
import dataclasses
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jaxsim"
CLIENTS = (ROOT / "benchmarks", ROOT / "tools")  # scripts that use the package but are not part of it


@dataclasses.dataclass(frozen=True)
class Import:
    """One ``import`` statement's view of a jaxsim module: ``from module import name`` (name None for
    ``import module``), where it stands and whether it runs at import time."""

    module: str
    name: str | None
    line: int
    local: bool  # inside a function body: runs when the function is called


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _is_package(module: str) -> bool:
    return _modules()[module].name == "__init__.py"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(node: ast.ImportFrom, importer: str, importer_is_package: bool) -> str:
    """The absolute module of ``from ... import`` (relative imports resolved against the importer)."""
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base if importer_is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(path: Path, importer: str = "") -> list[Import]:
    """Every import of a jaxsim module in ``path`` (``if TYPE_CHECKING:`` blocks never run: skipped)."""
    found: list[Import] = []
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.orelse:
                    visit_stmt(sub, local)
                continue
            visit_stmt(child, local)

    def visit_stmt(child: ast.AST, local: bool) -> None:
        if isinstance(child, ast.Import):
            for alias in child.names:
                if alias.name.split(".")[0] == "jaxsim":
                    found.append(Import(alias.name, None, child.lineno, local))
        elif isinstance(child, ast.ImportFrom):
            module = _resolve(child, importer, is_package)
            if module.split(".")[0] == "jaxsim":
                for alias in child.names:
                    found.append(Import(module, alias.name, child.lineno, local))
        visit(child, local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(_tree(path), False)
    return found


def _bindings(module: str) -> dict[str, Import]:
    """Names a package ``__init__`` binds by ``from X import name`` at module level (its re-exports)."""
    return {
        alias: imp
        for imp in _imports(_modules()[module], module)
        if not imp.local and imp.name
        for alias in [_alias_of(module, imp)]
    }


def _alias_of(module: str, imp: Import) -> str:
    for node in ast.walk(_tree(_modules()[module])):
        if isinstance(node, ast.ImportFrom) and node.lineno == imp.line:
            for alias in node.names:
                if alias.name == imp.name:
                    return alias.asname or alias.name
    return imp.name


def _defining_module(package: str, name: str, seen: frozenset = frozenset()) -> str:
    """The module behind ``from package import name``: a submodule, or where a re-export comes from."""
    if f"{package}.{name}" in _modules():
        return f"{package}.{name}"
    if package in _modules() and _is_package(package) and package not in seen:
        bound = _bindings(package).get(name)
        if bound is not None and bound.module in _modules():
            return (
                _defining_module(bound.module, bound.name, seen | {package})
                if _is_package(bound.module)
                else bound.module
            )
    return package


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _import_time_edges() -> dict[str, set[str]]:
    """importer -> the jaxsim modules its module-level imports execute.

    ``import a.b.c`` runs ``a``, ``a.b`` (their ``__init__``) and ``a.b.c``; ``from p import name``
    runs ``p`` and, when ``name`` is a submodule or a re-export, the module behind it. The importer's
    own ancestor packages are already importing when it runs, so they are no edge: a submodule that
    imports a name its package ``__init__`` re-exports depends on the module behind the name.
    """
    graph: dict[str, set[str]] = {m: set() for m in _modules()}
    for module, path in _modules().items():
        own = set(_ancestors(module)) | {module}
        for imp in _imports(path, module):
            if not imp.local:
                target = imp.module if imp.name is None else _defining_module(imp.module, imp.name)
                runs = {imp.module, target, *_ancestors(imp.module), *_ancestors(target)}
                graph[module] |= {m for m in runs if m in _modules()} - own
    return graph


def _dependency_edges() -> dict[str, set[str]]:
    """importer -> the jaxsim modules that define what it imports, module-level and function-local.

    A function-local import runs when the function is called, when every package is long imported, so
    here a package ``__init__`` is a hub that leads to the module behind each re-exported name.
    """
    graph: dict[str, set[str]] = {m: set() for m in _modules()}
    for module, path in _modules().items():
        for imp in _imports(path, module):
            target = imp.module if imp.name is None else _defining_module(imp.module, imp.name)
            if target in _modules() and target != module:
                graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def _describe(cycle: list[str], graph: dict[str, set[str]]) -> str:
    members = set(cycle)
    return "; ".join(f"{m} -> {', '.join(sorted(graph[m] & members))}" for m in cycle)


def test_no_import_cycles_at_import_time():
    """Module-level imports, as Python executes them (package ``__init__`` files included)."""
    graph = _import_time_edges()
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(_describe(c, graph) for c in cycles)


def test_no_dependency_cycles_hidden_in_function_local_imports():
    """Module-level and function-local imports together: no two modules need each other."""
    graph = _dependency_edges()
    cycles = _cycles(graph)
    assert not cycles, "dependency cycles:\n" + "\n".join(_describe(c, graph) for c in cycles)


def test_the_cycle_finder_sees_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _sources() -> list[tuple[str, Path]]:
    clients = [(str(p.relative_to(ROOT)), p) for d in CLIENTS if d.is_dir() for p in sorted(d.rglob("*.py"))]
    return list(_modules().items()) + clients


def _where(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def _private_uses(name: str, path: Path) -> list[str]:
    """``from jaxsim.x import _y`` and ``m._y`` where ``m`` names a jaxsim module other than ``name``."""
    tree = _tree(path)
    uses = []
    for imp in _imports(path, name if name in _modules() else ""):
        if imp.name and _private(imp.name) and imp.module != name:
            uses.append(f"{_where(path)}:{imp.line}: from {imp.module} import {imp.name}")
    aliases: dict[str, str] = {}  # local name -> jaxsim module it refers to (anywhere in the file)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "jaxsim":
                    aliases[alias.asname] = alias.name if alias.asname else None
                    if not alias.asname:
                        aliases["jaxsim"] = "jaxsim"
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(node, name, path.name == "__init__.py")
            for alias in node.names:
                if f"{module}.{alias.name}" in _modules():
                    aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
    aliases = {k: v for k, v in aliases.items() if k and v}

    def dotted(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            module = dotted(node.value)
            if module in _modules() and module != name:
                uses.append(f"{_where(path)}:{node.lineno}: {module}.{node.attr}")
    return uses


def test_no_module_uses_another_modules_underscored_names():
    uses = [u for name, path in _sources() for u in _private_uses(name, path)]
    assert not uses, "underscored names used across modules (make a public name instead):\n" + "\n".join(uses)


def _all_names(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign) and node.value is not None
            else []
        )
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            value = ast.literal_eval(node.value)
            assert isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
            return list(value)
    return None


def _defined(tree: ast.Module) -> set[str]:
    """Names bound at module level (assignments, defs, classes, imports; inside if/try/with/for too)."""
    names: set[str] = set()

    def targets(node: ast.AST) -> None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)

    def visit(body) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    names.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    targets(t)
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                targets(node.target)
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        targets(item.optional_vars)
                visit(node.body)
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return names


def _lazy_names(tree: ast.Module) -> dict[str, tuple[tuple[str, ...], bool]]:
    """For a module with a PEP 562 ``__getattr__``: name -> (jaxsim modules it may come from, whether the
    value is the module itself).

    Two shapes are read: module-level str -> module dicts (``_LAZY = {"backtest": "jaxsim.engine.program"}``;
    a dict whose variable ends in ``_MODULES`` maps names to modules that are the value), and module-level
    sets/tuples of names that ``__getattr__`` reads, served from the modules named in its body.
    """
    getattr_fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"), None)
    if getattr_fn is None:
        return {}
    used = {n.id for n in ast.walk(getattr_fn) if isinstance(n, ast.Name)}
    sources = tuple(
        sorted(
            {
                n.value
                for n in ast.walk(getattr_fn)
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.split(".")[0] == "jaxsim"
            }
        )
    )
    lazy = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        var = node.targets[0].id
        if isinstance(node.value, ast.Dict):
            table = ast.literal_eval(node.value)
            if table and all(isinstance(v, str) and v.split(".")[0] == "jaxsim" for v in table.values()):
                lazy.update({k: ((v,), var.endswith("_MODULES")) for k, v in table.items()})
        elif isinstance(node.value, (ast.Set, ast.Tuple, ast.List)) and var in used and sources:
            names = ast.literal_eval(node.value)
            if names and all(isinstance(v, str) for v in names):
                lazy.update({k: (sources, False) for k in names})
    return lazy


def test_every_module_has_an_all_naming_only_what_it_defines():
    problems = []
    for _name, path in _modules().items():
        tree = _tree(path)
        exported = _all_names(tree)
        where = path.relative_to(ROOT)
        if exported is None:
            problems.append(f"{where}: no __all__")
            continue
        if len(exported) != len(set(exported)):
            problems.append(f"{where}: __all__ repeats names")
        defined, lazy = _defined(tree), _lazy_names(tree)
        missing = [n for n in exported if n not in defined and n not in lazy]
        if missing:
            problems.append(f"{where}: __all__ names {missing} that it does not define")
        for lazy_name, (sources, is_module) in lazy.items():  # each lazy name is there to be found
            missing_modules = [m for m in sources if m not in _modules()]
            if missing_modules:
                problems.append(f"{where}: lazy {lazy_name!r} -> {missing_modules}, which do not exist")
            elif not is_module and not any(lazy_name in (_all_names(_tree(_modules()[m])) or []) for m in sources):
                problems.append(f"{where}: lazy {lazy_name!r} is not in the __all__ of {', '.join(sources)}")
    assert not problems, "\n".join(problems)


def test_the_checks_see_what_they_look_for(tmp_path):
    """The helpers on small sources: private uses, re-exports and __all__ parsing."""
    tree = ast.parse(
        "import os\nfrom a import b as c\nX: int = 1\nif os:\n    Y = 2\n"
        "def f():\n    Z = 3\n__all__ = ['X', 'Y', 'c', 'f']\n"
    )
    assert _defined(tree) >= {"os", "c", "X", "Y", "f"} and "Z" not in _defined(tree)
    assert _all_names(tree) == ["X", "Y", "c", "f"]
    lazy = ast.parse(
        "import importlib\n_LAZY = {'a': 'jaxsim.x'}\n_MODS_MODULES = {'m': 'jaxsim.m'}\n"
        "_SET = {'b'}\ndef __getattr__(name):\n    if name in _SET:\n"
        "        return importlib.import_module('jaxsim.y')\n"
    )
    assert _lazy_names(lazy) == {"a": (("jaxsim.x",), False), "m": (("jaxsim.m",), True), "b": (("jaxsim.y",), False)}
    # a re-export in a package __init__ leads to the module that defines the name
    assert _defining_module("jaxsim.data", "load_prices") == "jaxsim.data.prices"
    assert _defining_module("jaxsim.data", "prices") == "jaxsim.data.prices"
    script = tmp_path / "script.py"
    script.write_text(
        "import jaxsim.data.prices as p\nfrom jaxsim.engine import program\n"
        "from jaxsim.data.prices import _x\np._y\nprogram._z\np.public\n"
    )
    _tree.cache_clear()
    uses = [u.split(": ", 1)[1] for u in _private_uses("script", script)]
    assert uses == ["from jaxsim.data.prices import _x", "jaxsim.data.prices._y", "jaxsim.engine.program._z"]


# ----------------------------------------------------------------------------------------------------
# Rooms and the direction of their imports

# The package's floors, lowest first. A module may import from its own room and from rooms on lower
# floors, never from a room on its own floor or above: arrows run down. ``jaxsim`` (the package root:
# the version and lazily loaded public names) may be imported from anywhere.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "layout", "atomic"),  # plain Python: the typed errors, column layout, atomic writes
    ("config",),  # the settings (pure Python)
    ("data", "stats", "models"),  # prices; statistics; the Toto/Kronos networks and their weights
    ("forecast",),  # forecasters, the forecast grid, the return transform
    ("sim",),  # one simulation: strategies, MaxDiff, metrics
    ("optimize", "training"),  # multiplier search; fine-tuning the models
    ("engine",),  # the compiled program, pure
    ("report",),  # results, tables, figures (after device_get)
    ("shell",),  # the one pipeline, backtest/backtest_many/run_many, compare
    ("portfolio",),  # the walk-forward portfolio of many stocks, tomorrow's plan
    ("research",),  # simulation data, tune, look-ahead check
    ("bench",),  # benchmark suites
    ("cli",),  # the command line
)
MAX_MODULES_PER_ROOM = 12


def _room(module: str) -> str:
    """The room of a module: its folder under jaxsim/, or its own name for a ground-floor module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "jaxsim"


def _floor_of() -> dict[str, int]:
    return {room: floor for floor, rooms in enumerate(LAYERS) for room in rooms}


def _upward_imports(graph: dict[str, set[str]]) -> list[str]:
    floor = _floor_of()
    bad = []
    for importer, targets in sorted(graph.items()):
        mine = _room(importer)
        if mine == "jaxsim":  # the root's lazy table names modules on every floor, by design
            continue
        for target in sorted(targets):
            theirs = _room(target)
            if theirs in (mine, "jaxsim"):
                continue
            if floor[theirs] >= floor[mine]:
                bad.append(f"{importer} ({mine}, floor {floor[mine]}) -> {target} ({theirs}, floor {floor[theirs]})")
    return bad


def test_every_room_is_on_a_floor():
    rooms = {_room(m) for m in _modules()} - {"jaxsim"}
    assert rooms == set(_floor_of()), f"rooms without a floor: {sorted(rooms - set(_floor_of()))}; " + (
        f"floors without a room: {sorted(set(_floor_of()) - rooms)}"
    )


def test_imports_run_down_the_floors():
    """Module-level and function-local imports alike: a room imports only from rooms below it."""
    bad = _upward_imports(_dependency_edges())
    assert not bad, "imports that run up the floors (or across one):\n" + "\n".join(bad)


def test_the_floor_check_sees_an_upward_import():
    graph = {"jaxsim.sim.maxdiff": {"jaxsim.optimize.search"}, "jaxsim.engine.program": {"jaxsim.sim.maxdiff"}}
    assert _upward_imports(graph) == ["jaxsim.sim.maxdiff (sim, floor 4) -> jaxsim.optimize.search (optimize, floor 5)"]
    assert _upward_imports({"jaxsim.optimize.search": {"jaxsim.training.loop"}})  # same floor: refused too


def test_no_room_holds_more_than_twelve_modules():
    counts: dict[str, int] = {}
    for path in _modules().values():
        if path.name != "__init__.py":
            folder = str(path.parent.relative_to(ROOT))
            counts[folder] = counts.get(folder, 0) + 1
    crowded = {folder: n for folder, n in counts.items() if n > MAX_MODULES_PER_ROOM}
    assert not crowded, f"folders over {MAX_MODULES_PER_ROOM} modules: {crowded}"


def test_no_subpackage_shadows_a_public_function():
    """``jaxsim.backtest`` must stay a function: no subpackage or module of jaxsim/ takes a public name."""
    import jaxsim

    children = {p.stem if p.suffix == ".py" else p.name for p in PACKAGE.iterdir() if not p.name.startswith("_")}
    # "portfolio" is a room whose package is callable (jaxsim/portfolio/__init__.py): still a function
    assert not children & set(jaxsim.__all__) - {"errors", "forecasters", "portfolio"}, children & set(jaxsim.__all__)
    import jaxsim.portfolio.api  # noqa: F401  (importing a submodule binds the package as jaxsim.portfolio)

    assert callable(jaxsim.portfolio) and jaxsim.portfolio.__call__.__doc__


# ----------------------------------------------------------------------------------------------------
# Dotted references in the sources and the docs


REFERENCE = re.compile(r"(?<![\w./-])jaxsim(?:\.[A-Za-z_]\w*)+")
NOT_MODULES = ("jaxsim.bundled_weights",)  # the weights/ folder as a wheel installs it: package data, no code
DOCUMENTS = ("docs/*.md", "README.md", "*/README.md")


def _class_members(module: str, name: str, seen: frozenset = frozenset()) -> set[str] | None:
    """Names a class defined at the top of ``module`` has (methods, fields, class attributes, and those of
    its bases found in the package); None when ``name`` is not such a class or a base lies outside it."""
    cls = next((n for n in _tree(_modules()[module]).body if isinstance(n, ast.ClassDef) and n.name == name), None)
    if cls is None or (module, name) in seen:
        return None
    members: set[str] = set()
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            members.add(node.name)
        elif isinstance(node, ast.Assign):
            members |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            members.add(node.target.id)
    for base in cls.bases:
        if not isinstance(base, ast.Name):
            return None  # e.g. nn.Module: members come from outside
        bound = _bindings(module).get(base.id)
        where, base_name = (bound.module, bound.name) if bound is not None else (module, base.id)
        inherited = _class_members(where, base_name, seen | {(module, name)}) if where in _modules() else None
        if inherited is None:
            return None
        members |= inherited
    return members


def _resolves(parts: list[str], module: str) -> bool:
    """Whether ``module.parts[0].parts[1]...`` exists: a submodule, a module-level name (through
    re-exports and PEP 562 lazy names), then a member of a class the package defines."""
    if not parts:
        return True
    head, rest = parts[0], parts[1:]
    if f"{module}.{head}" in _modules():
        return _resolves(rest, f"{module}.{head}")
    tree = _tree(_modules()[module])
    lazy = _lazy_names(tree)
    if head in lazy:
        sources, is_module = lazy[head]
        return _resolves(rest, sources[0]) if is_module else any(_resolves(parts, m) for m in sources)
    if head not in _defined(tree):
        return False
    bound = _bindings(module).get(head) if rest else None
    if bound is not None and bound.name is not None:  # a re-export: look where it comes from
        return _resolves([bound.name, *rest], bound.module) if bound.module in _modules() else True
    if len(rest) == 1:
        members = _class_members(module, head)
        return members is None or rest[0] in members
    return True  # deeper, or an attribute of a non-class: not checked


def _references() -> dict[str, list[str]]:
    """Every ``jaxsim.x.y`` in the package's sources (docstrings, comments, strings) and the docs."""
    files = [p for _name, p in _modules().items()] + [p for g in DOCUMENTS for p in sorted(ROOT.glob(g))]
    found: dict[str, list[str]] = {}
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for ref in REFERENCE.findall(line):
                found.setdefault(ref, []).append(f"{_where(path)}:{number}")
    return found


def test_every_dotted_jaxsim_reference_resolves():
    broken = [
        f"{ref} ({', '.join(where[:3])})"
        for ref, where in sorted(_references().items())
        if not ref.startswith(NOT_MODULES) and not _resolves(ref.split(".")[1:], "jaxsim")
    ]
    assert not broken, "references to modules or names that do not exist:\n" + "\n".join(broken)


def test_the_reference_check_tells_real_names_from_stale_ones():
    assert _resolves(["shell", "api", "backtest"], "jaxsim")
    assert _resolves(["backtest"], "jaxsim")  # a lazy public name
    assert _resolves(["forecasters", "toto"], "jaxsim")  # a lazy module
    assert _resolves(["data", "load_prices"], "jaxsim")  # a package re-export
    assert _resolves(["report", "result", "BacktestResult", "save"], "jaxsim")
    assert _resolves(["config", "BacktestConfig", "n_sims"], "jaxsim")  # a dataclass field
    assert not _resolves(["engine", "program", "backtest"], "jaxsim")
    assert not _resolves(["report", "result", "BacktestResult", "no_such_method"], "jaxsim")
    assert not _resolves(["nowhere"], "jaxsim")
    assert REFERENCE.findall("see :func:`jaxsim.shell.api.backtest`, not jaxsim/shell/api.py") == [
        "jaxsim.shell.api.backtest"
    ]
