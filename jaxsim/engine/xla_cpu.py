"""XLA:CPU's YNNPACK fusions, limited to single dots (a crash workaround; docs/compilation.md#xla-cpu).

jaxlib 0.10's XLA:CPU hands elementwise and reduce fusions that contain a transpose to YNNPACK,
whose runtime (slinky) overflows a worker thread's stack at moderate sizes: the process dies with
SIGSEGV while the program runs (seen on a 4-stock, 40-simulation backtest of a user strategy; 20
simulations pass). Only ``individual_dot`` keeps YNNPACK, for each dot alone: no crash, the
backtest's records equal within float rounding, and on the 2-core CPU the default full-history
AAPL program ran 4.7 s warm instead of 6.6-7.1 s (N=50: 0.175 s against 0.16-0.19 s).

Two places set it, so that it holds however jax was started:

* :func:`apply_xla_flags` (at ``import jaxsim``) appends the flag to ``XLA_FLAGS`` while jax has
  not yet created its CPU backend; every jit in the process, the user's included, gets it;
* :func:`compiler_options` is passed to jaxsim's own compiles (:class:`ProgramCache`), which
  covers a process that started jax before importing jaxsim.

A user's own ``--xla_cpu_experimental_ynn_fusion_type`` in ``XLA_FLAGS`` is left as it is, and
neither place acts on a jaxlib older than 0.10 (an XLA that does not know the flag would abort).
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

__all__ = ["YNN_FLAG", "apply_xla_flags", "compiler_options", "user_sets_ynn"]

YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
_FLAG_VALUE = "individual_dot"  # the XLA_FLAGS spelling
_OPTION_VALUE = "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"  # the compiler_options spelling (enum name)
_MIN_JAXLIB = (0, 10)


def _jaxlib_version() -> tuple[int, ...]:
    from importlib import metadata

    try:
        text = metadata.version("jaxlib")
    except metadata.PackageNotFoundError:  # pragma: no cover (jax always brings jaxlib)
        return ()
    parts = []
    for p in text.split(".")[:3]:
        digits = "".join(c for c in p if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def user_sets_ynn(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether ``XLA_FLAGS`` already names the YNNPACK fusion types (the user's, or ours)."""
    environ = os.environ if environ is None else environ
    return YNN_FLAG in environ.get("XLA_FLAGS", "")


def _backends_started() -> bool:
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except Exception:  # pragma: no cover (a jax without that helper: assume started, change nothing)
        return True


def apply_xla_flags(environ: MutableMapping[str, str] | None = None) -> bool:
    """Append ``--xla_cpu_experimental_ynn_fusion_type=individual_dot`` to ``XLA_FLAGS``.

    Only while jax has no backend yet (XLA reads the variable once), when the variable does not
    name the flag already, and on jaxlib >= 0.10. Returns whether it changed the variable.
    """
    environ = os.environ if environ is None else environ
    if user_sets_ynn(environ) or _jaxlib_version() < _MIN_JAXLIB or _backends_started():
        return False
    flags = environ.get("XLA_FLAGS", "").strip()
    environ["XLA_FLAGS"] = f"{flags} {YNN_FLAG}={_FLAG_VALUE}".strip()
    return True


def compiler_options() -> dict[str, str]:
    """``compile(compiler_options=...)`` for jaxsim's programs: the single-dot setting on a CPU
    backend, nothing elsewhere or when ``XLA_FLAGS`` decides it."""
    import jax

    if jax.default_backend() != "cpu" or user_sets_ynn() or _jaxlib_version() < _MIN_JAXLIB:
        return {}
    return {YNN_FLAG.removeprefix("--"): _OPTION_VALUE}
