"""Multi-process runs (jax.distributed on CPU, loopback coordinator): the same bytes as one process,
per-stock resume whatever the process count, failures reported in the merged manifest.

Every process is a fresh Python started here (``jaxsim backtest ... --distributed`` or a small
run_many script), with one CPU device each and a shared persistent compilation cache so the later
processes skip the compile. Timeouts are generous: the test machine may be heavily loaded.

Byte comparison: every file of a stock folder must be identical except the wall-clock field
``seconds_chunk`` of ``metadata.json`` (the only timing field; it is dropped before comparing, and
the rest of the file must match exactly) and, in ``done.json``, the size/sha256 entry of
``metadata.json`` that follows from it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from reliability_helpers import synthetic_frame, xla_flags

import jaxsim
from jaxsim.errors import ConfigError
from jaxsim.report.cross_stock import TABLE
from jaxsim.shell.distributed import DistributedConfig, split_stocks, stock_rows
from jaxsim.shell.runs import DONE, MANIFEST, is_complete, read_manifest

PACKAGE_ROOT = str(Path(jaxsim.__file__).resolve().parents[1])
GOOD = ("AAA", "BBB", "CCC", "DDD", "EEE")
SYMBOLS = GOOD + ("BAD",)
ROWS = 100  # one length: one compile per process
START = 600  # seconds for a process (start, join, compile, run) on a loaded machine
CLI = "import sys; from jaxsim.cli import main; sys.exit(main(sys.argv[1:]))"
CHILD = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from jaxsim.shell.distributed import DistributedConfig, initialize
    cfg = json.loads(sys.argv[1])
    dist = None
    if cfg["n"] > 1:  # join before any JAX computation
        dist = DistributedConfig(f"127.0.0.1:{cfg['port']}", cfg["n"], cfg["pid"])
        initialize(dist)
    from jaxsim import forecasters
    from jaxsim.shell.runs import run_many

    def on_stock(symbol, folder):
        if cfg["stall"]:  # a slow process: the test kills it here, after its first stock
            print("STALL", symbol, flush=True)
            time.sleep(3600)

    paths = [Path(cfg["data"]) / f"{s}.csv" for s in cfg["symbols"]]
    rep = run_many(paths, cfg["out"], forecaster=forecasters.naive(), n_sims=5, chunk_size=1,
                   on_stock=on_stock, distributed=dist)
    print(json.dumps({"done": rep.done, "skipped": rep.skipped, "failed": rep.failed}), flush=True)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("xla-cache")
    e = dict(
        os.environ,
        PYTHONPATH=PACKAGE_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=xla_flags(1),
        TQDM_DISABLE="1",
        JAX_COMPILATION_CACHE_DIR=str(cache),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1",
    )
    for k in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        e.pop(k, None)
    return e


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("data")
    for i, s in enumerate(GOOD):
        synthetic_frame(ROWS, 40 + i, vol=0.02).to_csv(d / f"{s}.csv", index=False)
    (d / "BAD.csv").write_text("Date,Open\n2020-01-01,1\n")  # corrupt: no High/Low/Close
    return d


def _cli_args(data, out, *extra):
    return [
        sys.executable,
        "-c",
        CLI,
        "backtest",
        "--symbols",
        ",".join(SYMBOLS),
        "--data-dir",
        str(data),
        "--model",
        "naive",
        "--sims",
        "5",
        "--chunk-size",
        "1",
        "--out",
        str(out),
        *extra,
    ]


def _distributed(n, port, pid):
    return ["--distributed", "--coordinator", f"127.0.0.1:{port}", "--num-processes", str(n), "--process-id", str(pid)]


def _run_all(commands, env, timeout=START):
    """Run processes side by side (output to files: a full pipe must never block a process that the
    others wait for at a barrier); returns (returncode, stdout, stderr) per process."""
    import tempfile

    with tempfile.TemporaryDirectory() as logs:
        files = [
            (open(Path(logs) / f"{i}.out", "w+"), open(Path(logs) / f"{i}.err", "w+")) for i in range(len(commands))
        ]
        procs = [subprocess.Popen(c, env=env, stdout=o, stderr=e, text=True) for c, (o, e) in zip(commands, files)]
        try:
            for p in procs:
                p.wait(timeout=timeout)
        finally:
            for p in procs:
                p.kill()
                p.wait()
        outs = []
        for p, (o, e) in zip(procs, files):
            o.seek(0)
            e.seek(0)
            outs.append((p.returncode, o.read(), e.read()))
            o.close()
            e.close()
    return outs


def _shares():
    return split_stocks(list(SYMBOLS), [ROWS] * len(GOOD) + [1], 2)


def _normalised(folder: Path) -> dict:
    """Every file's bytes; metadata.json without its wall-clock field; done.json without metadata's hash."""
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    meta = json.loads(files.pop("metadata.json"))
    assert isinstance(meta.pop("seconds_chunk"), float)
    assert not [k for k in meta if "second" in k or "time" in k], "another timing field: normalise it too"
    done = json.loads(files.pop(DONE))
    done["files"].pop("metadata.json")
    return {**files, "metadata.json": meta, DONE: done}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data, env):
    """One single-process run and one two-process run of the same command."""
    base = tmp_path_factory.mktemp("runs")
    single = _run_all([_cli_args(data, base / "single", "--portfolio")], env)[0]
    port = _free_port()
    pair = _run_all([_cli_args(data, base / "pair", "--portfolio", *_distributed(2, port, i)) for i in range(2)], env)
    return base, single, pair


def test_split_is_balanced_deterministic_and_covers_every_stock():
    symbols = [f"S{i}" for i in range(7)]
    rows = [500, 100, 300, 300, 200, 900, 100]
    shares = split_stocks(symbols, rows, 3)
    assert shares == split_stocks(symbols, rows, 3)
    assert sorted(s for share in shares for s in share) == sorted(symbols)
    # longest first to the least-loaded: S5(900)->0, S0(500)->1, S2(300)->2, S3(300)->2, S4(200)->1, S1->2, S6->1
    assert shares == (("S5",), ("S0", "S4", "S6"), ("S1", "S2", "S3"))
    assert split_stocks(symbols, rows, 1) == (tuple(symbols),)
    with pytest.raises(ConfigError):
        split_stocks(symbols, rows[:-1], 2)


def test_distributed_config_reads_flags_then_environment():
    env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "2"}
    assert DistributedConfig.from_env(env) == DistributedConfig("10.0.0.1:1234", 4, 2)
    assert DistributedConfig.from_env(env, process_id=3) == DistributedConfig("10.0.0.1:1234", 4, 3)
    assert DistributedConfig.from_env({}) == DistributedConfig()  # jax's cluster auto-detection
    for bad in (dict(coordinator="nohost"), dict(num_processes=0), dict(num_processes=2, process_id=2)):
        with pytest.raises(ConfigError):
            DistributedConfig(**bad)


def test_stock_rows_counts_csv_data_rows(data):
    assert stock_rows(data / "AAA.csv") == ROWS
    assert stock_rows(data / "missing.csv") == 0


def test_two_processes_write_the_same_bytes_as_one(runs):
    base, single, pair = runs
    assert single[0] == 1 and "BAD: FAILED" in single[2], single[2][-2000:]
    for rc, _out, _err in pair:
        assert rc == 1, [e[:3000] for _, _, e in pair]  # each process exits 1: the run has a failed stock
    shares = _shares()
    assert "BAD" in shares[1] and set(GOOD) & set(shares[0]) and set(GOOD) & set(shares[1])
    for s in GOOD:
        assert is_complete(base / "pair" / s)
        assert _normalised(base / "pair" / s) == _normalised(base / "single" / s), s
    assert not (base / "pair" / ".parts").exists()  # merged and removed by process 0
    assert (base / "pair" / TABLE).read_bytes() == (base / "single" / TABLE).read_bytes()  # whole-run table
    # --portfolio: process 0 replays it after the barrier, from the merged folder: the single run's portfolio
    for name in ("portfolio.csv", "weights.csv", "plan.csv"):
        assert (base / "pair" / name).read_bytes() == (base / "single" / name).read_bytes(), name


def test_a_stock_failing_in_one_process_is_in_the_merged_manifest(runs):
    base, _, pair = runs
    manifest = read_manifest(base / "pair")
    stocks = manifest["stocks"]
    assert {s for s, v in stocks.items() if v["status"] == "done"} == set(GOOD)
    bad = stocks["BAD"]
    assert bad["status"] == "failed" and bad["stage"] == "load" and bad["process"] == 1
    assert "PriceDataError" in bad["error"] and "close" in bad["error"]
    assert "BAD: FAILED" in pair[0][2]  # process 0 reports the whole run, BAD failed in process 1
    assert "5 written, 0 already complete, 1 failed" in pair[0][1]
    single = read_manifest(base / "single")
    assert single["settings"] == manifest["settings"]


def _child(data, out, n, pid, port=0, stall=False):
    cfg = dict(data=str(data), out=str(out), symbols=list(SYMBOLS), n=n, pid=pid, port=port, stall=stall)
    return [sys.executable, "-c", CHILD, json.dumps(cfg)]


def _snapshot(out: Path) -> dict:
    return {
        str(p.relative_to(out)): (p.stat().st_mtime_ns, p.read_bytes())
        for d in sorted(out.iterdir())
        if is_complete(d)
        for p in sorted(d.iterdir())
    }


def _wait_for(pred, timeout, what):
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _wait_line(proc, prefix, timeout):
    t0 = time.monotonic()
    for line in proc.stdout:  # blocks per line; a stuck process hits the communicate timeouts below
        if line.startswith(prefix):
            return line
        if time.monotonic() - t0 > timeout:
            break
    raise AssertionError(f"no {prefix!r} line from the process (exit code {proc.poll()})")


def _finish_and_compare(out, runs, report, finished, before):
    base = runs[0]
    assert sorted(report["skipped"]) == sorted(finished)
    assert sorted(report["done"]) == sorted(set(GOOD) - set(finished))
    assert report["failed"].keys() == {"BAD"}
    after = _snapshot(out)
    assert {k: v for k, v in after.items() if k in before} == before  # finished stocks untouched
    for s in GOOD:
        assert _normalised(out / s) == _normalised(base / "single" / s), s
    assert {s for s, v in read_manifest(out)["stocks"].items() if v["status"] == "done"} == set(GOOD)


def test_a_two_process_run_killed_mid_run_completes_with_one_process(tmp_path, data, env, runs):
    out = tmp_path / "run"
    port = _free_port()
    p0, p1 = (
        subprocess.Popen(
            _child(data, out, 2, i, port, stall=i == 1),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for i in range(2)
    )
    try:
        first = _wait_line(p1, "STALL", START).split()[1]
        p1.send_signal(signal.SIGKILL)  # process 1 dies after its first stock
        share0 = _shares()[0]
        # process 0 finishes its share (or is ended by jax.distributed once it notices the dead peer)
        _wait_for(
            lambda: all(is_complete(out / s) for s in share0) or p0.poll() is not None, START, "process 0's share"
        )
        p0.send_signal(signal.SIGKILL)  # the scheduler ends the job (process 0 waits at the barrier)
    finally:
        for p in (p0, p1):
            p.kill()
            p.communicate()
    finished = sorted(d.name for d in out.iterdir() if is_complete(d))
    assert first in finished and set(finished) < set(GOOD), finished  # killed mid-run
    assert MANIFEST not in {p.name for p in out.iterdir()} or read_manifest(out) is not None
    before = _snapshot(out)
    rc, stdout, err = _run_all([_child(data, out, 1, 0)], env)[0]
    assert rc == 0, err[-3000:]
    _finish_and_compare(out, runs, json.loads(stdout.strip().splitlines()[-1]), finished, before)


def test_a_one_process_run_killed_mid_run_completes_with_two_processes(tmp_path, data, env, runs):
    out = tmp_path / "run"
    p = subprocess.Popen(
        _child(data, out, 1, 0, stall=True), env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        first = _wait_line(p, "STALL", START).split()[1]
        p.send_signal(signal.SIGKILL)
    finally:
        p.kill()
        p.communicate()
    finished = sorted(d.name for d in out.iterdir() if is_complete(d))
    assert finished == [first]
    before = _snapshot(out)
    port = _free_port()
    results = _run_all([_child(data, out, 2, i, port) for i in range(2)], env)
    for rc, _, err in results:
        assert rc == 0, err[-3000:]
    _finish_and_compare(out, runs, json.loads(results[0][1].strip().splitlines()[-1]), finished, before)
