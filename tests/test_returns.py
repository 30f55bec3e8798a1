"""Return transform of docs/backtest.md#return-transform: golden case F, edge cases, window validity, target frame."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxsim.forecast.returns import return_transform, target_frame, window_returns

pytestmark = pytest.mark.strict_promotion

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "golden_backtest_cases.json").read_text())


def assert_golden(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    err = np.abs(got - want)
    assert np.all((err <= 1e-6) | (err <= 1e-5 * np.abs(want))), (got, want)


def test_golden_f():
    g = GOLDEN["F_pre_process"]
    assert_golden(return_transform(np.asarray(g["Close_in"], np.float32)), g["Close_out"])


def test_non_finite_and_zero_denominator_map_to_zero():
    x = np.array([1.0, np.nan, 2.0, 0.0, 0.0, np.inf, 3.0], np.float32)
    r = np.asarray(return_transform(x))
    # nan/1-1 -> 0; 2/nan -> 0; 0/2-1 = -1; 0/0 -> 0 (zero denominator); inf/0 -> 0; 3/inf-1 = -1
    np.testing.assert_array_equal(r, [1.0, 0.0, 0.0, -1.0, 0.0, 0.0, -1.0])


def test_target_frame():
    x = np.array([10.0, 11.0, 12.1, 12.1, 6.05, 6.655, 7.0, 8.0, 9.0, 10.0], np.float32)
    r = np.asarray(return_transform(x))
    np.testing.assert_allclose(np.asarray(target_frame(x)), r[1:])  # y[t] = r[t+1]
    np.testing.assert_allclose(r[1:4], [0.1, 0.1, 0.0], atol=1e-6)


def test_window_returns_marks_the_first_data_row_and_padding():
    x = np.array([0.0, 0.0, 100.0, 110.0, 99.0], np.float32)
    valid = np.array([False, False, True, True, True])
    r = np.asarray(window_returns(x, valid))
    np.testing.assert_allclose(r, [0.0, 0.0, 1.0, 0.1, -0.1], atol=1e-6)
    full = np.asarray(window_returns(x[2:], np.ones(3, bool)))
    np.testing.assert_allclose(full, np.asarray(return_transform(x[2:])))


def test_jit_and_vmap():
    rng = np.random.default_rng(1)
    x = (100 * np.cumprod(1 + 0.01 * rng.normal(size=(3, 12)), axis=1)).astype(np.float32)
    batched = jax.jit(jax.vmap(return_transform))(x)
    for k in range(3):
        np.testing.assert_allclose(np.asarray(batched[k]), np.asarray(return_transform(x[k])), atol=1e-7)


def test_docstring_examples():
    import doctest

    import jaxsim.forecast.returns

    assert doctest.testmod(jaxsim.forecast.returns).failed == 0
