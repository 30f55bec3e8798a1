"""A universe in one run: why stocks are bucketed by exact length, one compile per bucket, stocks.csv."""

from __future__ import annotations

import json

import jax
import numpy as np
import pandas as pd
from reliability_helpers import synthetic_frame

from jaxsim import forecasters
from jaxsim.engine.program import trace_count
from jaxsim.report.cross_stock import TABLE
from jaxsim.shell.runs import run_many


def _left_padded(values: np.ndarray, length: int):
    context = np.zeros((1, 1, length), np.float32)
    context[0, 0, -len(values) :] = values
    valid = np.zeros((1, length), bool)
    valid[0, -len(values) :] = True
    return context, valid


def test_toto_forecasts_do_not_depend_on_whole_padded_patches():
    """Padding a shorter stock to a longer one's length pads every context further to the left with
    whole padded patches; the forecasters mask them (docs/compilation.md#length-buckets), so the
    embedded Toto forecasts the same draws to float rounding and stocks of different lengths share a
    program (the unmasked, upstream model moves by ~1e-3: tests/test_length_buckets.py)."""
    f = forecasters.default(num_samples=16)
    values = np.random.default_rng(0).normal(0.0, 0.02, 40).astype(np.float32)
    keys = jax.random.split(jax.random.key(3), 1)[None]  # (X=1, n=1)
    alone = np.asarray(f.forecast_group(*_left_padded(values, 64), keys).samples)
    again = np.asarray(f.forecast_group(*_left_padded(values, 64), keys).samples)
    padded = np.asarray(f.forecast_group(*_left_padded(values, 128), keys).samples)
    np.testing.assert_array_equal(alone, again)
    assert alone.shape == padded.shape == (1, 1, 16)
    np.testing.assert_allclose(padded, alone, rtol=1e-5, atol=1e-7)


def test_one_compile_per_length_bucket_and_the_cross_stock_table(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    lengths = {"AAA": 60, "BBB": 60, "CCC": 75}
    for i, (s, rows) in enumerate(lengths.items()):
        synthetic_frame(rows, 10 + i, vol=0.02).to_csv(data / f"{s}.csv", index=False)
    before = trace_count()
    report = run_many(
        sorted(data.glob("*.csv")),
        tmp_path / "run",
        forecaster=forecasters.naive(),
        n_sims=5,
        chunk_size=4,
        protocol="legacy",
    )
    assert sorted(report.done) == sorted(lengths) and report.failed == {}
    assert trace_count() - before == 1  # 60 and 75 rows: one length bucket, one program
    table = pd.read_csv(tmp_path / "run" / TABLE, index_col=0)
    assert list(table.index) == sorted(lengths)
    for symbol, row in table.iterrows():
        meta = json.loads((tmp_path / "run" / symbol / "metadata.json").read_text())
        assert row["Best Strategy"] == meta["best_strategy"] and row["N Sims"] == 5
