"""Shared pieces of the reliability tests: synthetic price frames, a sampled forecaster, checks.

Every reliability test uses the same few compiled shapes (N = 5 simulations, context cap 32, so any
history of >= 45 rows is trimmed to one program) and the same forecaster objects, so the jit cache is
shared across test files run in one pytest process.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsim import forecasters


def xla_flags(devices: int = 1) -> str:
    """This session's XLA_FLAGS (conftest's compile settings) with ``devices`` host devices, for a
    subprocess: same code generation as this process, so bit-identity across processes holds."""
    import os
    import re

    rest = re.sub(r"--xla_force_host_platform_device_count=\d+", "", os.environ.get("XLA_FLAGS", "")).split()
    return " ".join([f"--xla_force_host_platform_device_count={devices}", *rest])


N_SIMS = 5
CAP = 32  # max_context: histories of >= 45 rows all compile to one program
SAMPLES = 16


def sampled_fn(context, valid, key):
    """Draws ~ Normal(mean, std) of the context's valid returns (a key-dependent forecaster)."""
    n = jnp.maximum(valid.sum(), 1)
    mean = jnp.where(valid, context, 0.0).sum() / n
    var = jnp.where(valid, (context - mean) ** 2, 0.0).sum() / n
    return mean + jnp.sqrt(var) * jax.random.normal(key, (SAMPLES,))


SAMPLED = forecasters.from_function(sampled_fn, num_samples=SAMPLES)
NAIVE = forecasters.naive()
HIST = forecasters.historical_mean()
EVENTS = (
    "constant_segment",
    "all_constant",
    "split_up",
    "split_down",
    "flat_bars",
    "zero_volume",
    "no_volume",
    "spike",
)


def synthetic_frame(
    n: int, seed: int, *, level: float = 50.0, vol: float = 0.02, events: tuple[str, ...] = ()
) -> pd.DataFrame:
    """A valid daily OHLCV frame of ``n`` business days (columns Date, Open, High, Low, Close, Volume).

    Heavy-tailed returns (Student t, 3 dof) around ``level``; the log-price span is capped so a
    20,000-row history stays inside float32. ``events`` add edge cases: constant segments or a
    constant series, a 10x split up or down (all prices after a row scaled), flat bars
    (O = H = L = C), zero volume, no volume column, a one-day +300% spike.
    """
    rng = np.random.default_rng(seed)
    r = np.clip(rng.standard_t(3, n) * vol, -0.5, 1.0)
    if "constant_segment" in events and n > 2:
        a = int(rng.integers(0, n - 1))
        r[a : a + int(rng.integers(1, n - a + 1))] = 0.0
    if "all_constant" in events:
        r[:] = 0.0
    logp = np.cumsum(np.log1p(r))
    logp -= logp[0]
    span = float(np.ptp(logp))
    if span > 12.0:
        logp *= 12.0 / span
    close = level * np.exp(logp)
    opens = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, vol / 4, n))
    wick = np.abs(rng.normal(0, vol / 2, (2, n)))
    high = np.maximum(opens, close) * (1 + wick[0])
    low = np.minimum(opens, close) / (1 + wick[1])
    cols = [opens, high, low, close]
    for name, factor in (("split_up", 10.0), ("split_down", 0.1)):
        if name in events and n > 1:
            i = int(rng.integers(1, n))
            for c in cols:
                c[i:] *= factor
    if "spike" in events and n > 2:
        i = int(rng.integers(1, n - 1))
        for c in cols:
            c[i] *= 4.0
    if "flat_bars" in events or "all_constant" in events:
        mask = rng.random(n) < (1.0 if "all_constant" in events else 0.3)
        for c in (opens, high, low):
            c[mask] = close[mask]
    frame = pd.DataFrame(
        {"Date": pd.bdate_range("1990-01-01", periods=n), "Open": opens, "High": high, "Low": low, "Close": close}
    )
    if "no_volume" not in events:
        volume = rng.integers(1_000, 5_000_000, n).astype(float)
        if "zero_volume" in events:
            volume[rng.random(n) < 0.5] = 0.0
        frame["Volume"] = volume
    return frame


def synthetic_prices(symbol: str, n: int = 120, seed: int = 0, **kw):
    from jaxsim.data.prices import load_prices

    return load_prices(synthetic_frame(n, seed, **kw), symbol=symbol)


def numeric_columns(records: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every numeric record field as a float64 array (list cells stacked); dates and text excluded."""
    out = {}
    for name in records.columns:
        col = records[name]
        if isinstance(col.iloc[0], list):
            out[name] = np.asarray(col.tolist(), np.float64)
        elif name != "date" and (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            out[name] = col.to_numpy(np.float64)
    return out


def non_finite_fields(result) -> list[str]:
    """Names of record and summary fields holding NaN or inf (empty for a clean result)."""
    bad = [k for k, v in numeric_columns(result.records).items() if not np.all(np.isfinite(v))]
    summary = result.summary.to_numpy(np.float64)
    bad += [f"summary.{c}" for j, c in enumerate(result.summary.columns) if not np.all(np.isfinite(summary[:, j]))]
    bad += [f"limit_prices.{k}" for k, v in result.limit_prices.items() if not np.isfinite(v)]
    return bad


def assert_records_close(a, b, *, rtol=1e-5, atol=1e-6, skip=("walk_forward_",), skip_suffix=(), rows=None):
    """Every numeric field of two results' records agrees (optionally on the first ``rows`` rows);
    fields starting with ``skip`` or ending with ``skip_suffix`` are not compared."""
    ca, cb = numeric_columns(a.records), numeric_columns(b.records)
    assert set(ca) == set(cb)
    bad = []
    for k in sorted(ca):
        if k.startswith(skip) or (skip_suffix and k.endswith(skip_suffix)):
            continue
        x, y = ca[k][:rows], cb[k][:rows]
        if x.shape != y.shape or not np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True):
            bad.append(f"{k}: max |diff| {np.nanmax(np.abs(x - y)) if x.shape == y.shape else 'shape'}")
    assert not bad, "fields differ: " + "; ".join(bad)
