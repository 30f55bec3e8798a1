"""Shared fixtures of the Kronos tests: the committed mini + tokenizer-2k checkpoint and its unit goldens
(built by tools/reference/kronos_fixtures.py in the kronos-finance reference environment)."""

from pathlib import Path

import numpy as np
import pytest

from jaxsim.models.kronos.checkpoint import load_kronos

FIX = Path(__file__).parent / "fixtures" / "kronos"


@pytest.fixture(scope="module")
def bundle():
    return load_kronos(FIX / "mini", FIX / "tokenizer-2k")


@pytest.fixture(scope="module")
def unit():
    return dict(np.load(FIX / "unit_mini.npz"))
