"""jaxsim.engine.compilation: where the caches live, and a program stored by one process and reloaded
by the next (no retrace there, same numbers), the StableHLO and the executable, or the executable
alone for an output jax.export cannot store."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from reliability_helpers import xla_flags

from jaxsim.engine.compilation import CacheSettings, compile_notice, default_cache_dir, set_compile_reporter

ROOT = Path(__file__).resolve().parents[1]


def test_default_cache_dir_follows_xdg():
    assert default_cache_dir({"XDG_CACHE_HOME": "/x/cache", "HOME": "/h"}) == Path("/x/cache/jaxsim/xla")
    assert default_cache_dir({"HOME": "/h"}) == Path("/h/.cache/jaxsim/xla")
    assert default_cache_dir({"XDG_CACHE_HOME": "relative", "HOME": "/h"}) == Path("/h/.cache/jaxsim/xla")


def test_settings():
    assert CacheSettings(enabled=False).resolve({"HOME": "/h"}) is None
    assert CacheSettings().resolve({"HOME": "/h"}) == Path("/h/.cache/jaxsim/xla")
    assert CacheSettings("/tmp/c").resolve() == Path("/tmp/c")


def test_compile_reporter_hook():
    seen = []

    class Report:
        def __init__(self, message):
            seen.append(("start", message))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            seen.append(("end",))

    previous = set_compile_reporter(Report)
    try:
        with compile_notice("compiling x"):
            seen.append(("body",))
    finally:
        set_compile_reporter(previous)
    assert seen == [("start", "compiling x"), ("body",), ("end",)]


SCRIPT = """
import json, sys
import jax, jax.numpy as jnp
from jaxsim.engine.compilation import ProgramCache, enable_compilation_cache
enable_compilation_cache(sys.argv[1])
traced = []

def program(params, x, key, static):
    traced.append(1)
    scale, = static
    noise = jax.random.normal(key, x.shape)
    return {"y": params["w"] * x * scale + noise, "s": jnp.sum(x)}

cache = ProgramCache(program, name="toy", message="compiling the toy program")
params = {"w": jnp.float32(2.0)}
x = jnp.arange(4, dtype=jnp.float32)
out = cache(params, x, jax.random.key(3), static=(3.0,), token="toy-3")
again = cache(params, x + 1, jax.random.key(3), static=(3.0,), token="toy-3")  # same shapes: no retrace
other = cache(params, x, jax.random.key(3), static=(3.0,), token=None)  # memo hit regardless of the token
print(json.dumps({"traced": len(traced), "y": out["y"].tolist(), "s": float(again["s"])}))
"""


def test_program_is_stored_and_reloaded_by_a_new_process(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(1))

    def run():
        p = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, env=env, timeout=240
        )
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout.strip().splitlines()[-1])

    first = run()
    stored = list((tmp_path / "programs").glob("toy-*.jaxexport"))
    assert len(stored) == 1 and first["traced"] == 1
    assert len(list((tmp_path / "programs").glob("toy-*.xlaexe"))) == 1  # and its compiled executable
    second = run()
    assert second["traced"] == 0  # loaded, not traced
    assert second["y"] == first["y"] and second["s"] == first["s"] == 10.0
    assert any(p.name != "programs" for p in tmp_path.iterdir())  # XLA's own cache entries
    # programs/ gone, XLA's cache kept: XLA answers the compile, and an executable it loaded would be
    # stored without its kernels ("Function ... not found" in the next process): only the StableHLO is
    for p in (tmp_path / "programs").iterdir():
        p.unlink()
    third = run()
    assert third["traced"] == 1 and not list((tmp_path / "programs").glob("toy-*.xlaexe"))
    fourth = run()
    assert fourth["traced"] == 0 and fourth["y"] == third["y"] == first["y"]


HELPER = """
import json, sys
from typing import NamedTuple
import jax, jax.numpy as jnp, numpy as np
from jaxsim.engine.compilation import ProgramCache, enable_compilation_cache
enable_compilation_cache(sys.argv[1])


class Out(NamedTuple):  # jax.export cannot store this output: only the compiled executable is stored
    mean: jax.Array
    noise: jax.Array
    chol: jax.Array  # a LAPACK call: the reloading process registers jax's LAPACK kernels itself


def program(x, key, static):
    a = jnp.eye(2) * jnp.mean(x)
    return Out(jnp.mean(x) * static, jax.random.uniform(key, (3,)), jnp.linalg.cholesky(a))


cache = ProgramCache(program, name="helper", message=None)
out = cache(np.arange(6, dtype=np.float32), jax.random.key(1), static=2.0, token="helper-2")
assert isinstance(out, Out)
print(json.dumps({"traced": cache.trace_count, "mean": float(out.mean), "noise": np.asarray(out.noise).tolist(),
                  "chol": np.asarray(out.chol).tolist()}))
"""


def test_helper_program_is_stored_as_an_executable_and_reloaded(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(1))

    def run():
        p = subprocess.run(
            [sys.executable, "-c", HELPER, str(tmp_path)], capture_output=True, text=True, env=env, timeout=240
        )
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout.strip().splitlines()[-1])

    first = run()
    assert first["traced"] == 1 and first["mean"] == 5.0
    np.testing.assert_allclose(first["chol"], np.sqrt(2.5) * np.eye(2), rtol=1e-6)
    assert len(list((tmp_path / "programs").glob("helper-*.xlaexe"))) == 1
    assert not list((tmp_path / "programs").glob("helper-*.jaxexport"))
    second = run()
    assert second == {**first, "traced": 0}  # loaded, not traced: the same numbers
