"""Multi-process runs with :mod:`jax.distributed`: start the runtime, split the stocks, meet at a barrier.

:func:`jaxsim.shell.runs.run_many` with ``distributed=`` runs one universe across P processes (one
per host, or several on one host): every process is started with the same command and settings,
:func:`initialize` joins them through ``jax.distributed.initialize``, :func:`split_stocks` gives each
process its share, each process runs its share on its *local* devices (``jax.local_devices()``) and
writes its stocks into the shared ``out_dir``, and after :func:`barrier` process 0 merges the
processes' part manifests into ``manifest.json``.

The split rule (deterministic, needs no communication): stocks sorted by (row count descending,
symbol) are dealt one by one to the process with the least rows so far (ties: the lowest process
id), the "longest first" greedy rule, so each process gets a similar number of rows. It is a
function of the symbols, their row counts and P only, never of what is already on disk, so every
process computes the same shares even while the others write. A stock's result never depends on P
or on its process: its key is ``fold_in(key, crc32(symbol))`` and it runs padded to the same chunk
size, so the per-stock folders are the same bytes whatever the process count, and a run started
with P processes resumes with any other count (finished stocks are skipped per stock).

The barrier (:func:`barrier`) is the coordination service's own, so processes that finish their
shares far apart in time still meet (a device collective would not: on CPU, gloo gives up setting up
its context after 30 s). A process that dies leaves the others to ``jax.distributed``'s heartbeat
check, which ends them; a rerun (with any process count) then completes the missing stocks.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
from jax.experimental import multihost_utils

from jaxsim.errors import ConfigError

try:  # jax's own runtime state: what jax.experimental.array_serialization uses (a private module, so guarded)
    from jax._src import distributed as _jax_distributed
except ImportError:  # pragma: no cover
    _jax_distributed = None

__all__ = ["DistributedConfig", "resolve_distributed", "initialize", "split_stocks", "stock_rows", "barrier"]

ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    """How this process joins a multi-process run (arguments of ``jax.distributed.initialize``).

    Attributes:
      coordinator: ``HOST:PORT`` of process 0's coordinator service (None: jax's cluster
        auto-detection, e.g. SLURM or Open MPI, when the environment provides nothing).
      num_processes: P, the number of processes (None: auto-detected).
      process_id: this process's id in ``0..P-1`` (None: auto-detected).
      initialization_timeout: seconds to wait for every process to join (default 300; generous
        because hosts start at different times).
    """

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    initialization_timeout: int = 300

    def __post_init__(self):
        if self.coordinator is not None and (
            ":" not in self.coordinator or not self.coordinator.rsplit(":", 1)[1].isdigit()
        ):
            raise ConfigError(f"coordinator must be HOST:PORT, got {self.coordinator!r}")
        for name in ("num_processes", "process_id"):
            value = getattr(self, name)
            if value is not None:
                try:
                    object.__setattr__(self, name, int(value))
                except (TypeError, ValueError):
                    raise ConfigError(f"{name} must be an integer, got {value!r}") from None
        if self.num_processes is not None and self.num_processes < 1:
            raise ConfigError(f"num_processes must be >= 1, got {self.num_processes}")
        if self.process_id is not None and (
            self.process_id < 0 or (self.num_processes is not None and self.process_id >= self.num_processes)
        ):
            raise ConfigError(
                f"process_id must be in 0..num_processes-1, got {self.process_id} (num_processes {self.num_processes})"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given) -> DistributedConfig:
        """A config from explicit values, else ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` /
        ``JAX_PROCESS_ID`` (unset ones stay None: jax's cluster auto-detection fills them)."""
        environ = os.environ if environ is None else environ
        env = dict(zip(("coordinator", "num_processes", "process_id"), (environ.get(k) or None for k in ENV)))
        return cls(**{**env, **{k: v for k, v in given.items() if v is not None}})


def resolve_distributed(distributed: Any) -> DistributedConfig | None:
    """``None``/``False`` -> None; ``True`` -> :meth:`DistributedConfig.from_env`; a config as is."""
    if distributed is None or distributed is False:
        return None
    if distributed is True:
        return DistributedConfig.from_env()
    if isinstance(distributed, DistributedConfig):
        return distributed
    raise ConfigError(f"distributed must be True, False/None or a DistributedConfig, got {type(distributed).__name__}")


def initialize(config: DistributedConfig) -> tuple[int, int]:
    """Join the run (``jax.distributed.initialize``, once per process); returns (process id, count).

    Must run before any JAX computation in the process (build the forecaster after it). A second call
    finds the runtime started and only returns the ids.
    """
    if not jax.distributed.is_initialized():
        try:
            jax.distributed.initialize(
                config.coordinator,
                config.num_processes,
                config.process_id,
                initialization_timeout=int(config.initialization_timeout),
            )
        except RuntimeError as e:
            raise ConfigError(
                f"jax.distributed.initialize failed ({e}); start it before any JAX computation "
                "and check --coordinator / --num-processes / --process-id"
            ) from None
    return jax.process_index(), jax.process_count()


def barrier(name: str, timeout_s: float = 7 * 24 * 3600) -> None:
    """Wait until every process reaches the barrier ``name`` (at most ``timeout_s``).

    It is the coordination service's barrier (the one ``jax.distributed`` itself uses for checkpoints
    and shutdown): no devices or collectives are involved, so processes may arrive hours apart, which a
    first collective cannot allow (gloo gives up setting up its context after 30 s). Names must be
    unique within a run of the processes. Falls back to
    :func:`jax.experimental.multihost_utils.sync_global_devices` where that service is unavailable.
    """
    client = getattr(getattr(_jax_distributed, "global_state", None), "client", None)
    if client is None:
        multihost_utils.sync_global_devices(name)
        return
    client.wait_at_barrier(name, int(min(timeout_s, 2**31 / 1000 - 1) * 1000))


def stock_rows(source) -> int:
    """A cheap row count of a source for balancing (data rows of a CSV, ``len`` of frames/Prices;
    the file size for other formats; 0 when unreadable: such a stock fails in its process)."""
    if hasattr(source, "__len__") and not isinstance(source, (str, bytes, os.PathLike)):
        return len(source)
    try:
        path = Path(source)
        name = path.name.lower()
        if name.endswith(".csv") or name.endswith(".csv.gz"):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as f:
                return max(sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b"")) - 1, 0)
        return path.stat().st_size
    except (OSError, EOFError, TypeError, ValueError):
        return 0


def split_stocks(symbols: Sequence[str], rows: Sequence[int], num_processes: int) -> tuple[tuple[str, ...], ...]:
    """The share of each process (tuples in input order): longest first, to the least-loaded process.

    Deterministic in (symbols, rows, num_processes); see the module docstring.
    """
    if int(num_processes) < 1:
        raise ConfigError(f"num_processes must be >= 1, got {num_processes}")
    if len(rows) != len(symbols):
        raise ConfigError(f"split_stocks: {len(rows)} row counts for {len(symbols)} symbols")
    load = [0] * int(num_processes)
    owner = {}
    for r, s in sorted(zip(rows, symbols), key=lambda x: (-int(x[0]), x[1])):
        p = min(range(len(load)), key=lambda i: (load[i], i))
        owner[s] = p
        load[p] += max(int(r), 1)
    return tuple(tuple(s for s in symbols if owner[s] == p) for p in range(len(load)))
