"""run_many: interrupted multi-stock runs resume, finished stocks stay untouched, failures stay per stock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import pytest
from reliability_helpers import CAP, N_SIMS, SAMPLED, synthetic_frame

import jaxsim
from jaxsim import atomic
from jaxsim.errors import ConfigError
from jaxsim.shell import manifest as run_manifest
from jaxsim.shell import runs
from jaxsim.shell.plan import stock_key
from jaxsim.shell.runs import DONE, MANIFEST, is_complete, read_manifest, run_many

ROOT = Path(__file__).resolve().parents[1]
# where the jaxsim under test lives (the checkout, or site-packages when CI tests the installed wheel)
PACKAGE_ROOT = str(Path(jaxsim.__file__).resolve().parents[1])
SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG")
# report=False: the stock pages cost ~1 s each (tests/test_html_report.py covers them)
OPTIONS = dict(forecaster=SAMPLED, chunk_size=4, n_sims=N_SIMS, max_context=CAP, report=False)


def _write_csvs(folder: Path, symbols=SYMBOLS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, s in enumerate(symbols):
        path = folder / f"{s}.csv"
        synthetic_frame(80 + 15 * i, 40 + i, vol=0.02).to_csv(path, index=False)
        paths.append(path)
    return paths


def _snapshot(out: Path, symbols) -> dict:
    """(mtime_ns, bytes) of every file of the given stock folders."""
    return {
        str(p.relative_to(out)): (p.stat().st_mtime_ns, p.read_bytes())
        for s in symbols
        for p in sorted((out / s).iterdir())
    }


def _leftovers(out: Path) -> list[str]:
    return [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


class Stop(Exception):
    pass


def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(tmp_path):
    paths = _write_csvs(tmp_path / "data")
    out = tmp_path / "run"

    def stop_at_third(symbol, folder):
        assert is_complete(folder)
        if len(list(p for p in out.iterdir() if is_complete(p))) == 3:
            raise Stop(symbol)

    with pytest.raises(Stop):
        run_many(paths, out, on_stock=stop_at_third, **OPTIONS)
    finished = sorted(p.name for p in out.iterdir() if is_complete(p))
    assert len(finished) == 3 and _leftovers(out) == []
    before = _snapshot(out, finished)
    manifest = read_manifest(out)
    assert sum(v["status"] == "done" for v in manifest["stocks"].values()) >= 2  # the 3rd may predate the manifest

    report = run_many(paths, out, **OPTIONS)
    assert sorted(report.skipped) == finished
    assert sorted(report.done) == sorted(set(SYMBOLS) - set(finished)) and report.failed == {}
    assert _snapshot(out, finished) == before  # untouched: same bytes, same mtimes
    assert {s for s, v in read_manifest(out)["stocks"].items() if v["status"] == "done"} == set(SYMBOLS)

    again = run_many(paths, out, **OPTIONS)  # a third call has nothing to do
    assert again.done == () and sorted(again.skipped) == sorted(SYMBOLS)

    straight = run_many(paths, tmp_path / "straight", **OPTIONS)
    assert straight.done == SYMBOLS
    for s in SYMBOLS:  # resumed == uninterrupted, byte for byte
        for name in ("records.csv", "summary.csv"):
            assert (out / s / name).read_bytes() == (tmp_path / "straight" / s / name).read_bytes(), (s, name)


def test_stock_result_equals_a_single_backtest_with_its_key(tmp_path):
    from jaxsim.data.prices import load_prices
    from jaxsim.shell.api import backtest

    paths = _write_csvs(tmp_path / "data", SYMBOLS[:2])
    run_many(paths, tmp_path / "run", key=jax.random.key(9), **OPTIONS)
    import pandas as pd

    records = pd.read_csv(tmp_path / "run" / "BBB" / "records.csv").iloc[::-1]  # oldest first on disk
    # one key rule: the run key, folded with the symbol by backtest itself as by run_many
    alone = backtest(
        load_prices(paths[1]), SAMPLED, n_sims=N_SIMS, max_context=CAP, key=jax.random.key(9), protocol="legacy"
    )
    assert (
        abs(records["simple_strategy_return"].to_numpy() - alone.records["simple_strategy_return"].to_numpy()).max()
        < 1e-6
    )
    assert abs(records["predicted_close"].to_numpy() - alone.records["predicted_close"].to_numpy()).max() < 1e-4


def test_bad_stocks_fail_alone_and_are_retried(tmp_path):
    paths = _write_csvs(tmp_path / "data", SYMBOLS[:3])
    bad = synthetic_frame(80, 1)
    bad.loc[10, "Close"] = float("nan")
    sources = {p.stem: p for p in paths}
    sources.update(
        NANS=bad,
        SHORT=synthetic_frame(8, 2),
        GONE=tmp_path / "data" / "missing.csv",
        **{"BAD/NAME": synthetic_frame(80, 3)},
    )
    out = tmp_path / "run"
    report = run_many(sources, out, **OPTIONS)
    assert sorted(report.done) == sorted(SYMBOLS[:3])
    assert set(report.failed) == {"NANS", "SHORT", "GONE", "BAD/NAME"}
    assert report.failed["NANS"].startswith("PriceDataError") and "missing (NaN) close" in report.failed["NANS"]
    assert report.failed["SHORT"].startswith("InsufficientHistoryError")
    assert report.failed["GONE"].startswith("FileNotFoundError")
    assert report.failed["BAD/NAME"].startswith("ConfigError")
    stocks = read_manifest(out)["stocks"]
    assert stocks["NANS"]["status"] == "failed" and stocks["NANS"]["stage"] == "load"
    assert not (out / "NANS").exists()
    sources["NANS"] = synthetic_frame(80, 1)  # repaired: the retry completes it
    again = run_many(sources, out, **OPTIONS)
    assert again.done == ("NANS",) and set(again.failed) == {"SHORT", "GONE", "BAD/NAME"}
    assert read_manifest(out)["stocks"]["NANS"]["status"] == "done"


def test_a_failing_chunk_is_retried_stock_by_stock(tmp_path, monkeypatch):
    import jaxsim.shell.api as bt

    real = bt.backtest_many

    def flaky(prices, *a, **kw):
        if "CCC" in prices:
            raise RuntimeError("forecaster blew up on CCC")
        return real(prices, *a, **kw)

    monkeypatch.setattr(bt, "backtest_many", flaky)
    paths = _write_csvs(tmp_path / "data", SYMBOLS[:5])
    report = run_many(paths, tmp_path / "run", **OPTIONS)
    assert report.failed == {"CCC": "RuntimeError: forecaster blew up on CCC"}
    assert sorted(report.done) == ["AAA", "BBB", "DDD", "EEE"]
    assert read_manifest(tmp_path / "run")["stocks"]["CCC"]["stage"] == "backtest"


def test_write_failure_leaves_no_partial_folder(tmp_path, monkeypatch):
    real, calls = atomic.write_file, {"n": 0}

    def failing(path, data):
        calls["n"] += 1
        if path.name == "summary.csv" and path.parent.name.startswith(".BBB."):
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(atomic, "write_file", failing)
    paths = _write_csvs(tmp_path / "data", SYMBOLS[:3])
    out = tmp_path / "run"
    report = run_many(paths, out, **OPTIONS)
    assert set(report.failed) == {"BBB"} and "No space left" in report.failed["BBB"]
    assert not (out / "BBB").exists() and _leftovers(out) == []
    assert all(is_complete(out / s) for s in ("AAA", "CCC"))


def test_existing_folders_and_other_settings_are_never_overwritten(tmp_path):
    paths = _write_csvs(tmp_path / "data", SYMBOLS[:2])
    out = tmp_path / "run"
    (out / "AAA").mkdir(parents=True)
    (out / "AAA" / "notes.txt").write_text("mine")
    report = run_many(paths, out, **OPTIONS)
    assert report.done == ("BBB",) and "not a complete stock folder" in report.failed["AAA"]
    assert (out / "AAA" / "notes.txt").read_text() == "mine" and sorted(os.listdir(out / "AAA")) == ["notes.txt"]
    manifest_before = (out / MANIFEST).read_bytes()
    with pytest.raises(ConfigError, match="n_sims"):
        run_many(paths, out, **{**OPTIONS, "n_sims": 6})
    with pytest.raises(ConfigError, match="key"):
        run_many(paths, out, key=jax.random.key(1), **OPTIONS)
    # a user strategy is part of the settings, its parameters by value
    flat = jaxsim.UserStrategy("flat", "signals", lambda v, p: jax.numpy.zeros(6) + p["s"], {"s": 0.0})
    with pytest.raises(ConfigError, match="strategies"):
        run_many(paths, out, strategies=(flat,), **OPTIONS)
    assert run_manifest.strategy_identity(flat) != run_manifest.strategy_identity(flat.replace(params={"s": 1.0}))
    assert run_manifest.strategy_identity(flat) == run_manifest.strategy_identity(flat.replace(params={"s": 0.0}))
    assert (out / MANIFEST).read_bytes() == manifest_before


def test_a_second_writer_is_refused(tmp_path):
    import fcntl

    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        with pytest.raises(ConfigError, match="another run"):
            run_many(_write_csvs(tmp_path / "data", SYMBOLS[:1]), out, **OPTIONS)


def test_corrupt_manifest_and_incomplete_done_file_are_reported(tmp_path):
    paths = _write_csvs(tmp_path / "data", SYMBOLS[:1])
    out = tmp_path / "run"
    run_many(paths, out, **OPTIONS)
    done = json.loads((out / "AAA" / DONE).read_text())
    assert set(done["files"]) == {
        "records.csv",
        "summary.csv",
        "metadata.json",
        "daily.csv",
        "equity.csv",
        "trades.csv",
        "stats.csv",
        "uncertainty.json",
        "forecasts.csv",
        "skill.csv",
    }
    with open(out / "AAA" / "records.csv", "ab") as f:  # a changed file no longer counts as complete
        f.write(b"x")
    assert not is_complete(out / "AAA")
    (out / MANIFEST).write_text("{ truncated")
    with pytest.raises(ConfigError, match="unreadable run manifest"):
        run_many(paths, out, **OPTIONS)


_KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from jaxsim.shell.runs import run_many
    from reliability_helpers import CAP, N_SIMS, SAMPLED
    paths = sorted(Path(sys.argv[1]).glob("*.csv"))
    run_many(paths, sys.argv[2], forecaster=SAMPLED, chunk_size=4, n_sims=N_SIMS, max_context=CAP,
             on_stock=lambda s, f: time.sleep(0.4))
""")


def _finished(out):
    """Stock folders in place; a hidden temporary folder may hold a complete stock about to be renamed."""
    return sorted(p.name for p in out.iterdir() if not p.name.startswith(".") and is_complete(p))


def test_killed_process_resumes(tmp_path):
    """SIGKILL a run part way (no cleanup code runs), then resume in this process."""
    paths = _write_csvs(tmp_path / "data")
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([PACKAGE_ROOT, str(ROOT / "tests")]), JAX_PLATFORMS="cpu")
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(tmp_path / "data"), str(out)],
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if out.is_dir() and len(_finished(out)) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()[-3000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    finished = _finished(out)
    assert 2 <= len(finished) < len(SYMBOLS)
    before = _snapshot(out, finished)
    report = run_many(paths, out, **OPTIONS)
    assert sorted(report.skipped) == finished and report.failed == {}
    assert sorted(report.done + report.skipped) == sorted(SYMBOLS)
    assert _snapshot(out, finished) == before
    assert all(is_complete(out / s) for s in SYMBOLS)
    # temporary folders of the killed process may remain (hidden, never read); no stock folder is partial
    assert all(not p.name.startswith(".") or p.name.endswith((".tmp", ".lock")) for p in out.iterdir())


def test_cli_symbols_run_is_resumable(tmp_path, capsys):
    from jaxsim.cli.app import main

    _write_csvs(tmp_path / "data", SYMBOLS[:3])
    argv = [
        "backtest",
        "--symbols",
        "AAA,BBB,CCC",
        "--data-dir",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "out"),
        "--model",
        "naive",
        "--sims",
        str(N_SIMS),
        "--max-context",
        str(CAP),
    ]
    assert main(argv) == 0
    assert all(is_complete(tmp_path / "out" / s) for s in ("AAA", "BBB", "CCC"))
    first = capsys.readouterr().out
    assert "AAA" in first and "3 written" in first
    assert main(argv) == 0
    assert "3 already complete" in capsys.readouterr().out


def test_raw_uint32_key_is_accepted_and_recorded():
    """Old-style uint32 keys work like typed keys (recorded in the settings, folded per stock)."""
    raw, typed = jax.random.PRNGKey(3), jax.random.key(3)
    assert run_manifest.run_settings(SAMPLED, raw)["key"] == [0, 3] == run_manifest.run_settings(SAMPLED, typed)["key"]
    assert (jax.random.key_data(stock_key(typed, "AAA")) == stock_key(raw, "AAA")).all()


def test_stocks_stream_through_in_chunks(tmp_path, monkeypatch):
    """At most one chunk of loaded prices is alive at a time and no batch exceeds chunk_size stocks."""
    import gc
    import weakref

    import jaxsim.shell.api as bt

    alive, peak, batches = weakref.WeakSet(), {"n": 0}, []
    real_load, real_many = runs._load, bt.backtest_many

    def load(*a, **kw):
        gc.collect()
        prices = real_load(*a, **kw)
        alive.add(prices)
        peak["n"] = max(peak["n"], len(alive))
        return prices

    def many(prices, *a, **kw):
        batches.append(len(prices))
        return real_many(prices, *a, **kw)

    monkeypatch.setattr(runs, "_load", load)
    monkeypatch.setattr(bt, "backtest_many", many)
    symbols = tuple(f"S{i:02d}" for i in range(10))
    report = run_many(_write_csvs(tmp_path / "data", symbols), tmp_path / "run", **OPTIONS)
    assert report.done == symbols
    assert batches == [4, 4, 2]
    assert peak["n"] <= OPTIONS["chunk_size"] + 1
