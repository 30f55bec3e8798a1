"""Honest defaults (walk_forward, the full history, --like-original) and forecast-seed uncertainty
(``n_seeds``: one program vmapped over K keys; docs/protocols.md#defaults, #seeds)."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest

import jaxsim
from jaxsim.cli.app import main
from jaxsim.config import LIKE_ORIGINAL, BacktestConfig
from jaxsim.errors import ConfigError
from jaxsim.forecast.forecasters import DEMO_LABEL
from jaxsim.report.seeds import pooled_verdict

N = 30
SEEDS = (4, 5, 6)


def _noisy(context, valid, key):
    """A forecaster whose draws depend on the key (so seeds differ) and on the context."""
    return 0.3 * context[-1] + 0.01 * jax.random.normal(key, (32,))


NOISY = jaxsim.forecasters.from_function(_noisy, num_samples=32)


@pytest.fixture(scope="module")
def runs():
    p = jaxsim.sample("MSFT")
    pooled = jaxsim.backtest(p, NOISY, n_sims=N, protocol="walk_forward", seed=SEEDS[0], n_seeds=len(SEEDS))
    alone = [jaxsim.backtest(p, NOISY, n_sims=N, protocol="walk_forward", seed=s) for s in SEEDS]
    return pooled, alone


def test_defaults_are_walk_forward_on_the_full_history():
    c = BacktestConfig()
    assert (c.n_sims, c.protocol, c.n_seeds) == ("all", "walk_forward", 1)
    assert LIKE_ORIGINAL == {"protocol": "legacy", "n_sims": 50}
    with pytest.raises(ConfigError, match="n_seeds must be an integer >= 1"):
        BacktestConfig(n_seeds=0)
    assert jaxsim.forecasters.naive().kind == "naive"
    assert "demo model" in DEMO_LABEL and "not the official Toto" in DEMO_LABEL


def test_each_seed_equals_a_separate_run_with_that_seed(runs):
    pooled, alone = runs
    assert [r.metadata["seed"] for r in pooled.seed_results] == list(SEEDS)
    assert pooled.seed_results[0] is not None and len(pooled.seeds) == len(SEEDS)
    for got, want in zip(pooled.seed_results, alone):
        assert got.metadata["stock_key"] == want.metadata["stock_key"]
        num = [c for c in want.records.columns if want.records[c].dtype.kind == "f"]
        np.testing.assert_allclose(got.records[num].to_numpy(), want.records[num].to_numpy(), rtol=0, atol=1e-6)
        np.testing.assert_allclose(got.daily.to_numpy(), want.daily.to_numpy(), rtol=0, atol=1e-6)
    # the seeds differ (otherwise the spread would say nothing)
    a, b = (r.records["simple_strategy_return"].to_numpy() for r in alone[:2])
    assert not np.allclose(a, b)


def test_seed_spread_is_the_statistics_of_the_separate_runs(runs):
    pooled, alone = runs
    spread = pooled.seed_spread()
    assert list(spread.columns[:5]) == ["mean", "min", "max", "q10", "q90"]
    values = np.stack([r.seed_table().stack(future_stack=True).to_numpy(float) for r in alone], axis=1)
    cols = spread[[f"seed {s}" for s in SEEDS]].to_numpy(float)
    np.testing.assert_allclose(cols, values, rtol=1e-4, atol=1e-6)
    row = spread.loc[("simple", "Return [%]")]
    seeds = [r.stats().loc["Return [%]", "simple"] for r in alone]
    assert row["min"] == pytest.approx(min(seeds), abs=1e-4) and row["max"] == pytest.approx(max(seeds), abs=1e-4)
    assert row["mean"] == pytest.approx(np.mean(seeds), abs=1e-4)
    assert row["q10"] == pytest.approx(np.quantile(seeds, 0.1), abs=1e-4)
    one = alone[0].seed_spread()  # one seed: a spread of zero width
    assert (one["min"] == one["max"]).all() or one["min"].isna().any()


def _u(beats: dict, sharpe: dict, in_sample=()):
    class U:
        selection = pd.DataFrame({"Beats Zero": pd.Series(beats), "Sharpe (daily)": pd.Series(sharpe)})

    U.in_sample = tuple(in_sample)
    return U


def test_pooled_verdict_needs_every_seed():
    s = {"a": 0.1, "b": 0.2, "maxdiff": 0.9}
    every = [
        _u({"a": True, "b": True, "maxdiff": True}, s, ("maxdiff",)),
        _u({"a": True, "b": False, "maxdiff": True}, s),
    ]
    line = pooled_verdict(every)
    assert line.endswith("a beats zero at 95% in all 2 seeds")  # b fails seed 2; maxdiff is in-sample
    assert "maxdiff fitted in-sample, not tested" in line
    some = pooled_verdict([_u({"a": True, "b": False}, s), _u({"a": False, "b": False}, s)])
    assert "no strategy beats zero at 95% in every seed" in some and "a in 1 of 2" in some
    assert pooled_verdict([_u({"a": False}, s)]).endswith("no strategy beats zero at 95% for any seed")


def test_seed_keys_come_from_the_seeds(runs):
    with pytest.raises(ConfigError, match="pass seed=, not key="):
        jaxsim.backtest("MSFT", NOISY, n_sims=N, n_seeds=2, key=jax.random.key(0))
    pooled, _ = runs
    header = pooled.header_lines()
    assert header[0].startswith(f"MSFT: evaluated {pooled.daily.index[0].date()} .. {pooled.daily.index[-1].date()}")
    assert f"{N} simulations" in header[0] and "seeds 4..6 (3)" in header[1] and "walk_forward" in header[1]
    assert "annualised figures extrapolate" in header[2]


def test_like_original_is_the_old_default_bit_for_bit(capsys):
    """`--like-original` prints the summary of legacy / 50 simulations (the defaults before the full
    history and walk_forward became the defaults), bit for bit."""
    assert main(["backtest", "MSFT", "--model", "naive", "--like-original", "--no-cache"]) == 0
    out = capsys.readouterr().out
    old = jaxsim.backtest("MSFT", jaxsim.forecasters.naive(), n_sims=50, protocol="legacy", seed=0)
    assert old.summary.to_string(float_format=lambda v: f"{v:.4f}") in out
    assert "Backtest summary for MSFT (50 simulations, protocol legacy)" in out
    assert "legacy (the original's: MaxDiff fitted in-sample" in out


def test_cli_seeds_prints_the_spread_and_the_pooled_verdict(capsys, tmp_path):
    argv = ["backtest", "MSFT", "--model", "naive", "--sims", "20", "--seeds", "2", "--no-cache"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "Over 2 forecast seeds (mean [min, max]" in out
    assert "pooled over 2 forecast seeds: a strategy counts only if it beats zero in every seed" in out
    spread = pd.read_csv(tmp_path / "o" / "seed_spread.csv", index_col=[0, 1])
    assert {"seed 0", "seed 1", "mean"} <= set(spread.columns)
    assert main(["backtest", "--seeds", "0"]) == 2
