"""A run folder's bookkeeping: the manifest, each stock's ``done.json``, the lock and the settings.

The layout is :mod:`jaxsim.shell.runs`'s (its docstring). Here: what makes a stock folder complete
(:func:`is_complete`), reading and writing the manifest and the per-process part manifests of a
distributed run (:func:`merge_parts`), the advisory lock (:func:`locked`), and the settings that must
match for a resumed run to be the same run (:func:`run_settings`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import os
from pathlib import Path

import jax
import numpy as np

from jaxsim import __version__
from jaxsim.atomic import write_folder
from jaxsim.errors import ConfigError

__all__ = [
    "MANIFEST",
    "DONE",
    "PARTS",
    "FORMAT",
    "is_complete",
    "read_manifest",
    "json_bytes",
    "write_stock",
    "locked",
    "tree_digest",
    "strategy_identity",
    "run_settings",
    "now",
    "error_text",
    "part_path",
    "merge_parts",
]

MANIFEST = "manifest.json"
DONE = "done.json"
PARTS = ".parts"
FORMAT = "jaxsim-run/1"


def is_complete(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds a finished stock: ``done.json`` and every file it lists, sizes equal."""
    folder = Path(folder)
    try:
        done = json.loads((folder / DONE).read_text())
        return all((folder / name).stat().st_size == info["bytes"] for name, info in done["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def read_manifest(out_dir: str | os.PathLike) -> dict | None:
    """The run manifest of ``out_dir`` (None when there is none). Raises ConfigError when unreadable."""
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: unreadable run manifest ({e}); move it away to start a new run") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a jaxsim run manifest (format {FORMAT!r} expected)")
    return manifest


def json_bytes(obj) -> bytes:
    """The bytes of a manifest file (indented, sorted keys)."""
    return json.dumps(obj, indent=1, sort_keys=True, default=str).encode()


def write_stock(out: Path, symbol: str, result, plots: bool, report: bool = True, prices=None) -> Path:
    """Write one stock's folder ``out/symbol`` atomically (the files of ``BacktestResult.save`` and
    ``done.json`` last, listing them); ``report``: with ``report.html``; ``prices``: the stock's prices,
    for its report's heatmap and MaxDiff fill prices."""
    final = out / symbol
    if final.exists():
        raise ConfigError(
            f"{final} exists but is not a complete stock folder (no valid {DONE}); "
            "it is left untouched: move it away to recompute this stock"
        )
    files = result.files(plot=plots, prices=prices, report=report)
    files[DONE] = json_bytes(
        {
            "symbol": symbol,
            "files": {n: {"bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in files.items()},
        }
    )
    return write_folder(final, files)


@contextlib.contextmanager
def locked(out: Path, name: str = ".lock"):
    """An advisory lock on ``out/<name>`` (released when the process ends, even when killed)."""
    try:
        import fcntl  # deferred: POSIX only
    except ImportError:  # pragma: no cover (Windows): no lock
        yield
        return
    with open(out / name, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(f"{out}: another run is writing to this folder") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def tree_digest(tree) -> str | None:
    """sha256 of a pytree's leaves (shapes, dtypes, bytes); None when it has none."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return None
    h = hashlib.sha256()
    for leaf in leaves:
        a = np.asarray(leaf)
        h.update(str((a.shape, a.dtype)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def strategy_identity(strategy) -> dict:
    """A user strategy as the settings name it: its fields, its function by name, its parameters by digest."""
    fn = strategy.fn
    return {
        "name": strategy.name,
        "kind": strategy.kind,
        "needs_draws": strategy.needs_draws,
        "close_at_eod": strategy.close_at_eod,
        "levels": strategy.levels,
        "fn": f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', fn)}",
        "params_sha256": tree_digest(strategy.params),
    }


def run_settings(forecaster, key, **options) -> dict:
    """What must match for a resumed run to be the same run (JSON-comparable)."""
    config = getattr(forecaster, "config", None)
    fn = getattr(forecaster, "fn", None)
    return json.loads(
        json.dumps(
            {
                "jaxsim": __version__,
                "forecaster": {
                    "kind": forecaster.kind,
                    "class": type(forecaster).__name__,
                    "num_samples": forecaster.draws_per_context(),
                    "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else repr(config),
                    "fn": None if fn is None else f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', fn)}",
                    "params_sha256": tree_digest(getattr(forecaster, "params", None)),
                },
                "key": np.asarray(
                    jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key
                ).tolist(),
                **options,
            },
            default=str,
        )
    )


def now() -> str:
    """The current UTC time, ISO 8601 to the second (manifest timestamps)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def error_text(e: BaseException) -> str:
    """How a failed stock's error is recorded: ``"<ErrorType>: <message>"``."""
    return f"{type(e).__name__}: {e}"


def part_path(out: Path, process: int, count: int) -> Path:
    """The part manifest of process ``process`` of ``count`` in a distributed run."""
    return out / PARTS / f"part-{process}-of-{count}.json"


def merge_parts(out: Path, manifest: dict, count: int, settings: dict) -> tuple[dict, set, set]:
    """Process 0, after the barrier: fold every process's part manifest into ``manifest``; returns it
    with the symbols the processes wrote and skipped."""
    done, skipped = set(), set()
    for i in range(count):
        path = part_path(out, i, count)
        try:
            part = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(f"{path}: part manifest of process {i} unreadable after the barrier ({e})") from None
        if part.get("settings") != settings:
            raise ConfigError(f"{path}: process {i} ran with other settings; every process must get the same command")
        manifest["stocks"].update(part["stocks"])
        done.update(part.get("done", ()))
        skipped.update(part.get("skipped", ()))
    for symbol, entry in list(manifest["stocks"].items()):  # the disk is the truth about finished stocks
        if is_complete(out / symbol) and entry.get("status") != "done":
            manifest["stocks"][symbol] = {"status": "done", "at": now(), "recovered": True}
    return manifest, done, skipped
