"""Shared helpers of the Toto tests: the committed small-config fixtures and error metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "toto"


def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "reference.npz") as f:
        return dict(f)


def rel_err(actual, expected, floor: float | str = 0.0) -> float:
    """max |a - e| / max(|e|, floor): elementwise relative error, guarded against values near zero.

    ``floor="mean"`` uses the mean |e| of the whole tensor (for signed quantities such as the mixture
    locations, or small probabilities, whose float32 error is absolute, not relative)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if floor == "mean":
        floor = float(np.mean(np.abs(expected)))
    return float(np.max(np.abs(actual - expected) / np.maximum(np.abs(expected), floor)))


def series_rel_err(actual, expected) -> float:
    """Max over series (all leading axes) of max_t |a - e| / max_t |e|."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(actual - expected).max(-1) / np.abs(expected).max(-1)))
