"""Sample aggregation specs of docs/backtest.md#aggregation-specs: golden case E, the
docs/deviations.md#quantile-plus-std decision, numpy parity, errors."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim.errors import ConfigError
from jaxsim.forecast.aggregate import AggregationSpec, aggregate, band, parse_aggregation

pytestmark = pytest.mark.strict_promotion

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "golden_backtest_cases.json").read_text())
E = GOLDEN["E_aggregation"]
SAMPLES = np.asarray(E["samples"], np.float32)
SPECS = [
    "mean",
    "median",
    "p10",
    "p90",
    "trimmed_mean_10",
    "trimmed_mean_20",
    "trimmed_mean_5",
    "lower_trimmed_mean_10",
    "upper_trimmed_mean_10",
    "quantile_0.35",
    "quantile_35",
    "mean_minus_std_0.5",
    "mean_plus_std_0.5",
    "mean_quantile_mix_0.3_0.6",
]


def assert_golden(got, want):
    got, want = float(got), float(want)
    err = abs(got - want)
    assert err <= 1e-6 or err <= 1e-5 * abs(want), (got, want)


@pytest.mark.parametrize("spec", SPECS)
def test_golden_e(spec):
    got = aggregate(SAMPLES, spec)
    assert got.dtype == jnp.float32 and got.shape == ()
    assert_golden(got, E[spec])
    assert abs(float(got) - E[spec]) < 1e-8  # far inside the tolerance thanks to centring


def test_golden_e_band():
    assert_golden(band(SAMPLES), E["band_p60_minus_p40"])


def test_band_is_floored_at_zero():
    assert float(band(np.zeros(10, np.float32))) == 0.0


def test_bug_10_12_quantile_plus_std_is_implemented_as_intended():
    """The original reads quantile_plus_std_0.15_0.5 as quantile_0.5 (golden 0.005). We do not."""
    ours = float(aggregate(SAMPLES, "quantile_plus_std_0.15_0.5"))
    x = SAMPLES.astype(np.float64)
    intended = np.quantile(x, 0.15) + 0.5 * np.std(x)
    assert abs(ours - intended) < 1e-8
    assert abs(ours - E["quantile_plus_std_0.15_0.5"]) > 1e-3  # differs from the buggy golden value
    assert_golden(aggregate(SAMPLES, "quantile_0.5"), E["quantile_plus_std_0.15_0.5"])  # = quantile_K


def reference(x, spec):
    """float64 numpy transcription of the 2.4 table (the original's arithmetic)."""
    x = np.sort(x.astype(np.float64))
    n = len(x)
    frac = lambda t: float(t) / 100 if float(t) > 1 else float(t)  # noqa: E731
    parts = spec.split("_")
    if spec.startswith("trimmed_mean_"):
        k = int(np.floor(n * frac(parts[-1])))
        return x.mean() if k == 0 or 2 * k >= n else x[k : n - k].mean()
    if spec.startswith("lower_trimmed_mean_"):
        return x[: max(1, int(np.floor(n * (1 - frac(parts[-1])))))].mean()
    if spec.startswith("upper_trimmed_mean_"):
        return x[min(n - 1, int(np.floor(n * frac(parts[-1])))) :].mean()
    if spec.startswith("quantile_plus_std_"):
        return np.quantile(x, frac(parts[-2])) + float(parts[-1]) * x.std()
    if spec.startswith("quantile_"):
        return np.quantile(x, frac(parts[-1]))
    if spec.startswith("mean_minus_std_"):
        return x.mean() - float(parts[-1]) * x.std()
    if spec.startswith("mean_plus_std_"):
        return x.mean() + float(parts[-1]) * x.std()
    if spec.startswith("mean_quantile_mix_"):
        w = min(max(float(parts[-1]), 0.0), 1.0)
        return w * x.mean() + (1 - w) * np.quantile(x, frac(parts[-2]))
    return {"mean": x.mean(), "median": np.median(x), "p10": np.quantile(x, 0.1), "p90": np.quantile(x, 0.9)}[spec]


@pytest.mark.parametrize(
    "spec",
    SPECS
    + [
        "quantile_plus_std_0.35_1.5",
        "trimmed_mean_0.49",
        "upper_trimmed_mean_99",
        "lower_trimmed_mean_0.99",
        "mean_quantile_mix_40_2",
    ],
)
def test_matches_float64_reference_on_3072_draws(spec):
    """Production size (3072 Toto draws, returns-scale values with a common offset): float32 stays
    within the golden tolerance of the float64 original."""
    rng = np.random.default_rng(3)
    x = (0.02 + 0.015 * rng.standard_t(4, 3072)).astype(np.float32)
    assert_golden(aggregate(x, spec), reference(x, spec))


def test_parse_is_static_and_percentages():
    assert parse_aggregation("quantile_35") == AggregationSpec("quantile", q=0.35)
    assert parse_aggregation("trimmed_mean_10") == AggregationSpec("trimmed_mean", q=0.1)
    assert parse_aggregation("mean_minus_std_0.5") == AggregationSpec("mean_std", k=-0.5)
    assert parse_aggregation("mean_quantile_mix_0.3_1.7").w == 1.0  # W clipped to [0, 1]
    assert parse_aggregation("MEDIAN") == AggregationSpec("median")


@pytest.mark.parametrize(
    "spec",
    [
        "mode",
        "trimmed_mean_50",
        "trimmed_mean_x",
        "quantile_",
        "quantile_150",
        "mean_plus_std_nan",
        "quantile_plus_std_0.5",
        "",
        "p50",
    ],
)
def test_bad_specs_raise_config_error(spec):
    with pytest.raises(ConfigError):
        aggregate(SAMPLES, spec)


def test_jit_and_vmap_over_leading_axes():
    rng = np.random.default_rng(4)
    x = rng.normal(0, 0.01, (3, 4, 64)).astype(np.float32)
    fn = jax.jit(jax.vmap(jax.vmap(lambda s: aggregate(s, "trimmed_mean_10"))))
    got = np.asarray(fn(x))
    for i in range(3):
        for j in range(4):
            np.testing.assert_allclose(got[i, j], float(aggregate(x[i, j], "trimmed_mean_10")), atol=1e-9)
    np.testing.assert_allclose(np.asarray(jax.vmap(band)(x[0])), [float(band(r)) for r in x[0]], atol=1e-9)


def test_docstring_examples():
    import doctest

    import jaxsim.forecast.aggregate

    assert doctest.testmod(jaxsim.forecast.aggregate).failed == 0
