"""Test-wide settings: 4 fake CPU devices (sharding code runs in CI), fast XLA compiles, shared data discovery, strict
promotion for the modules marked ``pytestmark = pytest.mark.strict_promotion``."""

import os

# 4 fake CPU devices; and cheaper LLVM code generation: the suite's time is mostly XLA compiles of
# programs that then run for milliseconds (about a quarter less wall time, same math; subprocess
# tests inherit the flags)
os.environ.setdefault(
    "XLA_FLAGS",
    "--xla_force_host_platform_device_count=4 --xla_backend_optimization_level=0 "
    "--xla_llvm_disable_expensive_passes=true",
)
os.environ.setdefault("TQDM_DISABLE", "1")
# the command line keeps compiled programs in $XDG_CACHE_HOME; in-process CLI tests must not fill the user's
os.environ.setdefault("XDG_CACHE_HOME", __import__("tempfile").mkdtemp(prefix="jaxsim-test-cache-"))
# One XLA compilation cache for the session, shared by the xdist workers (they inherit the controller's
# environment) and by the subprocesses tests start: many tests compile the same program (the default
# backtest of a sample, a module's fixture that another module builds too), and the suite's time is
# mostly XLA compiles. Only XLA's executables are shared: jaxsim's own program store stays off in
# process, so every test still traces what it traces (trace counters keep their meaning). Entries are
# written under a file lock (a size limit turns jax's locking on), so a worker never reads a partial one.
SESSION_XLA_CACHE = os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", __import__("tempfile").mkdtemp(prefix="jaxsim-test-xla-")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(8 << 30))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout; tests that need it skip cleanly when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture(scope="session")
def daily_dir(shared_dir) -> Path:
    d = shared_dir / "data" / "daily"
    if not d.is_dir():
        pytest.skip("../shared/data/daily is not present")
    return d


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "strict_promotion(rank=True): run under jax_numpy_dtype_promotion="
        "'strict' (no silent int->float or bool->float) and, unless rank=False, "
        "jax_numpy_rank_promotion='raise' (no implicit rank broadcasting)",
    )


@pytest.fixture(autouse=True)
def _strict_promotion(request):
    """Strict dtype and rank promotion while a marked test runs (traces inside it are checked).

    Opt-in per module (``pytestmark = pytest.mark.strict_promotion``): a module is marked once every
    function it exercises is explicit about dtypes (and ranks; ``rank=False`` where Flax-style
    broadcasting of a ``(D,)`` scale over ``(..., D)`` stays). Module- and session-scoped fixtures
    are computed outside this context.
    """
    marker = request.node.get_closest_marker("strict_promotion")
    if marker is None:
        yield
        return
    import jax

    rank = "raise" if marker.kwargs.get("rank", True) else "allow"
    with jax.numpy_dtype_promotion("strict"), jax.numpy_rank_promotion(rank):
        yield


@pytest.fixture(autouse=True)
def _no_persistent_cache_in_process(request, monkeypatch):
    """In-process CLI calls keep jaxsim's program store off: toggling it on and off inside one
    test process (jax decides once per process, jaxsim resets that decision) is what the command line
    never does, and a long test session should not depend on it. Subprocess tests still use the caches.

    XLA's own cache stays at the session folder (:data:`SESSION_XLA_CACHE`): a test (or a module
    fixture, which runs outside this one) that leaves jax's cache folder elsewhere is named in a
    warning and the folder is set back, so later tests in the worker never read or write its own."""
    import jax

    from jaxsim.engine import compilation

    monkeypatch.setattr(compilation.CacheSettings, "apply", lambda self: compilation.disable_compilation_cache())
    yield
    compilation.disable_compilation_cache()
    left = jax.config.jax_compilation_cache_dir
    if left != SESSION_XLA_CACHE:
        import warnings

        warnings.warn(f"{request.node.nodeid} left jax's compilation cache at {left}; set back", stacklevel=1)
        jax.config.update("jax_compilation_cache_dir", SESSION_XLA_CACHE)
        compilation._reset_xla_cache()


def _memory_mappings() -> int:
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:  # not Linux: no per-process mapping limit to stay under
        return 0


@pytest.fixture(autouse=True)
def _bounded_compiled_programs():
    """Drop compiled programs after a test once the process holds many memory mappings.

    Every XLA:CPU executable keeps its machine code in mappings of its own, and a whole-suite session
    compiles thousands of them: past Linux's default ``vm.max_map_count`` (65,530) the next compile
    segfaults. Clearing costs only recompiles in later tests, so it waits until a quarter of that;
    checked after every test (a module can compile dozens of programs), reading /proc/self/maps."""
    yield
    if _memory_mappings() > 15_000:
        import gc

        from jaxsim.engine.compilation import clear_compiled_programs

        gc.collect()
        clear_compiled_programs()
