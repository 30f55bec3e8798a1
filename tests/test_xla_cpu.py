"""The XLA:CPU workaround (jaxsim.engine.xla_cpu): YNNPACK only for single dots, set through
XLA_FLAGS at import and through jaxsim's own compile options. The crash it prevents (a stack
overflow in YNNPACK's runtime) is exercised by notebook 04's 10-stock backtest."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from jaxsim.engine import xla_cpu

YNN = xla_cpu.YNN_FLAG


@pytest.fixture
def fresh(monkeypatch):
    """apply_xla_flags as if jax had no backend yet, on jaxlib 0.10."""
    monkeypatch.setattr(xla_cpu, "_backends_started", lambda: False)
    monkeypatch.setattr(xla_cpu, "_jaxlib_version", lambda: (0, 10, 2))


def test_apply_appends_the_flag_once(fresh):
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    assert xla_cpu.apply_xla_flags(env)
    assert env["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=4 {YNN}=individual_dot"
    assert not xla_cpu.apply_xla_flags(env)  # already there
    assert env["XLA_FLAGS"].count(YNN) == 1
    empty = {}
    assert xla_cpu.apply_xla_flags(empty) and empty["XLA_FLAGS"] == f"{YNN}=individual_dot"


def test_apply_leaves_a_users_setting_and_a_started_or_old_jax(fresh, monkeypatch):
    mine = {"XLA_FLAGS": f"{YNN}=-reduce"}
    assert not xla_cpu.apply_xla_flags(mine) and mine["XLA_FLAGS"] == f"{YNN}=-reduce"
    monkeypatch.setattr(xla_cpu, "_jaxlib_version", lambda: (0, 9, 0))
    old = {}
    assert not xla_cpu.apply_xla_flags(old) and old == {}
    monkeypatch.setattr(xla_cpu, "_jaxlib_version", lambda: (0, 10, 2))
    monkeypatch.setattr(xla_cpu, "_backends_started", lambda: True)
    started = {}
    assert not xla_cpu.apply_xla_flags(started) and started == {}


def test_compile_options_keep_the_library_for_dots_only(monkeypatch):
    if jax.default_backend() != "cpu" or xla_cpu._jaxlib_version() < (0, 10):
        pytest.skip("XLA:CPU on jaxlib >= 0.10 only")
    monkeypatch.setenv("XLA_FLAGS", "")  # as if jax had started without jaxsim's flag
    options = xla_cpu.compiler_options()
    assert options == {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
    x = jnp.ones((640, 480), jnp.float32)
    reduce = jax.jit(lambda x: (x * 2 + 1).sum(0)).lower(x).compile(compiler_options=options)
    dot = jax.jit(lambda a, b: a @ b).lower(x, x.T).compile(compiler_options=options)
    assert "__ynn_fusion" not in reduce.as_text()  # the fusion kind that crashed
    assert "__ynn_fusion" in dot.as_text()  # the option was parsed: single dots keep YNNPACK
    monkeypatch.setenv("XLA_FLAGS", f"{YNN}=-reduce")  # the user's own choice wins
    assert xla_cpu.compiler_options() == {}


def test_import_sets_the_flag_before_jax_starts():
    code = "import os, jaxsim; print(os.environ.get('XLA_FLAGS', ''))"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    if xla_cpu._jaxlib_version() >= (0, 10):
        assert out.stdout.strip() == f"{YNN}=individual_dot"
    env["XLA_FLAGS"] = f"{YNN}=-reduce"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{YNN}=-reduce"
