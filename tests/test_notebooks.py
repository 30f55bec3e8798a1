"""The notebooks (jupytext percent scripts under notebooks/) execute top to bottom at their small
settings, in a fresh kernel, with outputs kept only in memory (git holds the stripped sources)."""

import os
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
# figures each executed notebook shows inline (image/png outputs), at least
MIN_IMAGES = {
    "01_quickstart": 4,
    "02_multiplier_tuning": 3,
    "03_forecaster_parity_speed": 0,
    "04_custom_strategy": 2,
    "05_portfolio": 1,
}


def test_the_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == [
        "01_quickstart",
        "02_multiplier_tuning",
        "03_forecaster_parity_speed",
        "04_custom_strategy",
        "05_portfolio",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, monkeypatch):
    nb = jupytext.read(path)
    assert nb.cells and "FULL = False" in "".join(c.source for c in nb.cells)
    # the kernel runs in notebooks/ and must import this checkout's jaxsim
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    # the kernel's own default backend (inline), as a user gets it: plots must show without pyplot
    # calls and must not switch it (01 asserts the backend is unchanged after plotting)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors
    images = [
        o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert len(images) >= MIN_IMAGES[path.stem]
