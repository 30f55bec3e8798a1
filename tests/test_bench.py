"""Smoke tests of the benchmark harness (jaxsim.bench.harness, jaxsim.bench.suites) at tiny sizes.

Structure and numbers (FLOP counts, memory accounting, table text) are asserted; timings never are.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim.bench import harness as bench
from jaxsim.bench import suites as bench_suites
from jaxsim.models.toto.model import TOTO_BASE, TotoConfig, count_params, init_toto

TINY = TotoConfig(
    patch_size=16,
    embed_dim=32,
    num_layers=2,
    num_heads=2,
    mlp_hidden_dim=64,
    spacewise_every_n_layers=2,
    k_components=3,
)


def test_toto_flops_match_anchors_base():
    # docs/models.md#flop-counts: L=512 every position unembedded 2.49 GFLOP, last patch only 1.90 GFLOP,
    # L=2048 10.0 GFLOP
    all_pos = bench.toto_forward_flops(TOTO_BASE, 512, unembed_tokens=8, substeps=64)
    last = bench.toto_forward_flops(TOTO_BASE, 512, unembed_tokens=1, substeps=64)
    long = bench.toto_forward_flops(TOTO_BASE, 2048, unembed_tokens=32, substeps=64)
    assert all_pos / 1e9 == pytest.approx(2.49, abs=0.01)
    assert last / 1e9 == pytest.approx(1.90, abs=0.01)
    assert long / 1e9 == pytest.approx(10.0, abs=0.05)
    # per token: transformer 226.5 MFLOP (12 layers), unembed 75.5, head 9.4 (anchors 4.2)
    one_token = bench.toto_forward_flops(TOTO_BASE, 64, unembed_tokens=1, substeps=64)
    assert one_token / 1e6 == pytest.approx(226.5 + 75.5 + 9.4 + 0.1, abs=0.3)


def test_flop_count_agrees_with_xla_cost_analysis():
    from jaxsim.models.toto.forecast import next_step_mixture

    params = init_toto(TINY, jax.random.key(0))
    program = jax.jit(lambda p, c, v: next_step_mixture(p, TINY, c, v))
    compiled = program.lower(params, jnp.zeros((2, 256)), jnp.ones((2, 256), bool)).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    ours = 2 * bench.toto_forward_flops(TINY, 256)
    # XLA also counts elementwise work (norms, softmax, scaler): ours is the matmul part, within 15% below
    assert ours <= cost["flops"] <= 1.15 * ours


def test_bench_small_config_matches_reference_runner():
    # benchmarks/reference_runner.py "small": the torch model has 355,808 parameters
    assert count_params(init_toto(bench_suites.TOTO_BENCH_SMALL, jax.random.key(0))) == 355_808
    assert bench_suites.TOTO_BENCH_SMALL.patch_size == TOTO_BASE.patch_size


def test_time_compiled_and_program_memory():
    a = jnp.ones((64, 64), jnp.float32)
    timing, compiled = bench.time_compiled(jax.jit(jnp.dot), a, a, repeats=2)
    assert len(timing.runs) == 2 and timing.compile_s >= 0 and timing.run_s >= 0
    np.testing.assert_allclose(np.asarray(timing.output), 64.0)
    mem = bench.program_memory(compiled)
    assert mem["argument_mib"] == pytest.approx(2 * 64 * 64 * 4 / 2**20)
    assert mem["output_mib"] == pytest.approx(64 * 64 * 4 / 2**20)
    assert mem["peak_mib"] >= mem["argument_mib"] + mem["output_mib"] - 1e-9


def test_time_call_and_matmul_peak():
    calls = []
    timing = bench.time_call(lambda: calls.append(1) or jnp.zeros(3), repeats=2)
    assert len(calls) == 3 and len(timing.runs) == 2
    peak = bench.matmul_peak(64, repeats=1)
    assert peak["n"] == 64 and peak["flops_per_s"] == pytest.approx(2 * 64**3 / peak["seconds"])


def test_markdown_table_and_environment():
    text = bench.markdown_table(
        [dict(a=1, b=0.12345, c=float("nan")), dict(a=2, b=None, c=1.0)],
        [("a", "A", "d"), ("b", "B (s)", ".2f"), ("c", "C", ".1%")],
    )
    assert text.splitlines() == ["| A | B (s) | C |", "|---|---|---|", "| 1 | 0.12 | n/a |", "| 2 | - | 100.0% |"]
    env = bench.environment()
    assert env["backend"] == jax.default_backend() and env["device_count"] == len(jax.devices())
    header = bench.header_markdown(env, "extra")
    assert header.startswith("_") and header.endswith("; extra_") and env["jax"] in header


def test_plots_write_png(tmp_path):
    p = bench.plot_lines(
        tmp_path / "a.png", [dict(series={"x": ([1, 2], [3, 4])}, xlabel="n", logx=True)], title="t", footer="f"
    )
    q = bench.plot_bars(tmp_path / "b.png", ["reference", "jaxsim"], [10.0, 0.1], ylabel="s", annotate=["10", "0.1"])
    for path in (p, q):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backtest_stats_counts_contexts_and_flops():
    from jaxsim.data.prices import sample

    prices = sample("AAPL")
    fc = bench_suites.toto_forecaster(TINY, num_samples=8)
    row = bench_suites.backtest_stats([prices, prices], fc, n_sims=2, max_context=48, repeats=1)
    assert row["stocks"] == 2 and row["contexts"] == 2 * 4 * (2 + 6)
    assert row["context"] == 48  # cap 48 is already a multiple of P = 16
    assert row["model_flops"] == 2 * 4 * 8 * bench.toto_forward_flops(TINY, 48)
    assert row["peak_mib"] > 0 and math.isfinite(row["gflops_per_s"])


def test_cli_bench_parser():
    from jaxsim.cli.app import build_parser, cmd_bench

    args = build_parser().parse_args(["bench", "scaling", "--quick", "--out", "x", "--dtype", "bfloat16"])
    assert args.func is cmd_bench and args.suite == "scaling" and args.quick and args.dtype == "bfloat16"
    assert build_parser().parse_args(["bench"]).suite == "all"
    with pytest.raises(ValueError):
        bench_suites.run_suite("nope", "x")
