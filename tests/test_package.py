"""The package as a user meets it: light import, documented public names, metadata, shipped data."""

import hashlib
import inspect
import json
import re
import subprocess
import sys
import tomllib
from importlib.resources import files
from pathlib import Path

import jaxsim

ROOT = Path(__file__).resolve().parents[1]

_PROBE = r"""
import json, sys
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
import jaxsim
{extra}
print(json.dumps({{"modules": sorted(sys.modules), "opened": opened, "pkg": jaxsim.__file__}}))
"""


def _probe(extra=""):
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(extra=extra)], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_import_is_light_and_reads_no_data_files():
    r = _probe()
    heavy = {"jax", "jaxlib", "flax", "optax", "numpy", "pandas", "matplotlib", "safetensors"}
    assert heavy.isdisjoint(r["modules"]), heavy & set(r["modules"])
    pkg_dir = str(Path(r["pkg"]).parent)
    non_code = [p for p in r["opened"] if p.startswith(pkg_dir) and not p.endswith((".py", ".pyc"))]
    assert non_code == [], non_code


def test_data_layer_and_cli_do_not_import_jax():
    r = _probe("jaxsim.load_prices; jaxsim.sample; import jaxsim.cli.app; jaxsim.cli.app.build_parser()")
    assert {"jaxsim.data.prices", "jaxsim.cli.app", "jaxsim.cli.weights"} <= set(r["modules"])
    assert "jax" not in r["modules"] and "flax" not in r["modules"]


def test_building_the_parser_imports_no_numpy():
    """`jaxsim --help` (and the start of every command) loads no numpy, pandas or JAX: the weight
    registry and the data layer are imported by the commands that use them."""
    r = _probe("import jaxsim.cli.app; jaxsim.cli.app.build_parser()")
    heavy = {"numpy", "pandas", "jax", "safetensors"}
    assert heavy.isdisjoint(r["modules"]), heavy & set(r["modules"])


def test_importing_any_module_does_no_jax_work():
    """Every module imports without starting a JAX backend (no arrays built at import), so a user can
    still choose the platform after ``import jaxsim...``."""
    code = (
        "import importlib, pkgutil, jaxsim\n"
        "names = [m.name for m in pkgutil.walk_packages(jaxsim.__path__, 'jaxsim.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "from jax._src import xla_bridge\n"
        "print(len(names), xla_bridge.backends_are_initialized())"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    n, started = out.stdout.split()
    assert int(n) > 40 and started == "False", out.stdout


def test_public_names_are_documented_and_in_readme():
    readme = (ROOT / "README.md").read_text()
    assert len(jaxsim.__all__) == len(set(jaxsim.__all__))
    for name in jaxsim.__all__:
        doc = inspect.getdoc(getattr(jaxsim, name))
        assert doc and len(doc) > 20, f"jaxsim.{name} has no docstring"
        assert f"`{name}" in readme or f"jaxsim.{name}" in readme, f"README does not mention {name}"
    assert set(jaxsim.__all__) <= set(dir(jaxsim))


def test_metadata_matches_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["version"] == jaxsim.__version__
    assert meta["project"]["name"] == "jaxsim-backtest"  # PyPI's "jaxsim" is an unrelated project
    assert meta["project"]["scripts"]["jaxsim"] == "jaxsim.cli:main"
    assert "pytest>=8" in meta["project"]["optional-dependencies"]["test"]
    assert any(d.startswith("jax[cuda12]") for d in meta["project"]["optional-dependencies"]["cuda"])
    out = subprocess.run(
        [sys.executable, "-m", "jaxsim.cli.app", "--version"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"jaxsim {jaxsim.__version__}"


def test_sample_files_match_provenance():
    """Every bundled file is listed in PROVENANCE.md with its true sha256 and row count."""
    data = files("jaxsim.data") / "sample_data"
    provenance = (data / "PROVENANCE.md").read_text()
    assert "public domain" in provenance.lower() and "bokeh-sampledata" in provenance
    table = re.findall(r"^\| `(\w+)\.csv\.gz` \| [^|]+ \| ([\d,]+) \|.*`([0-9a-f]{64})` \|$", provenance, re.M)
    assert sorted(sym for sym, _, _ in table) == list(jaxsim.available_samples())
    for sym, rows, sha in table:
        blob = (data / f"{sym}.csv.gz").read_bytes()
        assert hashlib.sha256(blob).hexdigest() == sha, sym
        assert len(jaxsim.sample(sym)) == int(rows.replace(",", ""))
