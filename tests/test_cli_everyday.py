"""The command line as a new user meets it, in real subprocesses: every row of the "tried / happened"
table of the everyday-use issue is now a clear one-line error or the right behaviour; Ctrl-C exits 130
and a rerun resumes without touching finished stocks; one PRNG key rule for a stock whichever command
runs it; a second run loads the compiled program instead of compiling it.

Small settings throughout (``--model naive`` or a few samples of the default model, few simulations,
short synthetic histories) so each process compiles small programs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_helpers import synthetic_frame, xla_flags

import jaxsim

PACKAGE_ROOT = str(Path(jaxsim.__file__).resolve().parents[1])
MESSAGE = "interrupted: rerun the same command to resume"


def _env(tmp_path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=PACKAGE_ROOT, XDG_CACHE_HOME=str(tmp_path / "xdg"), JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = xla_flags(1)  # one CPU device, as a user's machine (the suite's compile settings)
    env.pop("TQDM_DISABLE", None)
    return env


def _cmd(*argv) -> list[str]:
    return [sys.executable, "-c", "import sys; from jaxsim.cli import main; sys.exit(main())", *map(str, argv)]


def _cli(tmp_path, *argv, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(
        _cmd(*argv), capture_output=True, text=True, env=_env(tmp_path), timeout=timeout, cwd=tmp_path
    )


def _csvs(folder: Path, spec: dict[str, int]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for i, (sym, n) in enumerate(spec.items()):
        paths[sym] = folder / f"{sym}.csv"
        synthetic_frame(n, 7 + i).to_csv(paths[sym], index=False)
    return paths


def _clean_error(p: subprocess.CompletedProcess, *fragments):
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert p.stdout == ""  # nothing computed, nothing printed
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


# ----------------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, before any compute


def test_bad_input_rows_are_one_line_errors(tmp_path):
    data = _csvs(tmp_path / "data", {"AEM": 120})
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    _clean_error(_cli(tmp_path, "backtest", "--samples", "0"), "--samples must be >= 1, got 0")
    _clean_error(_cli(tmp_path, "backtest", "--sims", "-1"), "--sims must be >= 1")
    _clean_error(_cli(tmp_path, "backtest", "--out", afile), "is an existing file")
    _clean_error(_cli(tmp_path, "backtest", "--csv", tmp_path / "data"), "is a folder; give one price file")
    _clean_error(_cli(tmp_path, "backtest", "--csv", tmp_path / "missing.csv"), "no such file")
    _clean_error(
        _cli(tmp_path, "backtest", "--model", "naive", "--weights", "/nonexistent"),
        "--weights applies to --model toto or kronos, not naive",
    )
    _clean_error(_cli(tmp_path, "backtest", "--tokenizer", tmp_path), "--tokenizer applies to --model kronos only")
    _clean_error(
        _cli(tmp_path, "backtest", "--symbols", "AEM,ZZZZ,QQQ", "--data-dir", tmp_path / "data"),
        "for 2 symbol(s): ZZZZ, QQQ",
    )
    msft = tmp_path / "res"
    msft.mkdir()
    (msft / "metadata.json").write_text(json.dumps({"symbol": "MSFT"}))
    _clean_error(_cli(tmp_path, "backtest", "IBM", "--out", msft), "holds the results of MSFT", "--force")
    bad = tmp_path / "bad.csv"
    bad.write_text(data["AEM"].read_text() + "2099-01-01,1,0.5,2,1,10\n")  # High below Low
    line = _clean_error(_cli(tmp_path, "backtest", "--csv", bad, "--model", "naive"), "High below Low")
    assert "`jaxsim data clean IN OUT`" in line and "`jaxsim backtest --clean`" in line
    help_text = _cli(tmp_path, "backtest", "--help").stdout
    assert "exit codes: 0 ok; 1 some stocks failed" in " ".join(help_text.split())


# ----------------------------------------------------------------------------------------------------
# Behaviour rows


def test_clean_short_history_and_unfitted_walk_forward(tmp_path):
    data = _csvs(tmp_path / "data", {"SHORT": 40})
    bad = tmp_path / "SHORT.csv"
    bad.write_text(data["SHORT"].read_text() + "2099-01-01,1,0.5,2,1,10\n")
    p = _cli(
        tmp_path,
        "backtest",
        "--csv",
        bad,
        "--clean",
        "--model",
        "naive",
        "--sims",
        "1",
        "--protocol",
        "walk_forward",
        "--no-cache",
    )
    assert p.returncode == 0, p.stderr
    assert "SHORT: cleaning: 41 rows in, 41 rows out" in p.stderr
    assert "swapped High and Low" in p.stderr
    assert (
        "warning: SHORT: the earliest simulation forecasts from 32 return(s), less than one 64-return patch" in p.stderr
    )
    assert "warning: SHORT: walk_forward with 1 simulation(s): none has an earlier fitted window" in p.stderr
    assert "Backtest summary for SHORT (1 simulations, protocol walk_forward)" in p.stdout
    assert "optimized=" not in p.stdout and "no fitted window" in p.stdout


def _close(a, b, rel=1e-6):
    """Nested dicts of numbers equal to float32 rounding (the sharded multi-stock program is a separate
    XLA executable; a different key would change them at the 1e-2 level)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _close(a[k], b[k], rel)
    elif isinstance(a, float) and isinstance(b, float):
        assert b == pytest.approx(a, rel=rel, abs=1e-7)
    else:
        assert a == b


@pytest.mark.slow
def test_one_key_rule_for_a_stock(tmp_path):
    """--csv, --symbols (in memory) and --symbols --out (resumable run_many) give the same numbers."""
    data = _csvs(tmp_path / "data", {"AAA": 150})
    common = ("--samples", "16", "--sims", "3", "--max-context", "64", "--seed", "4", "--cache-dir", tmp_path / "cache")
    single = _cli(tmp_path, "backtest", "--csv", data["AAA"], *common, "--output-json", tmp_path / "single.json")
    assert single.returncode == 0, single.stderr
    many = _cli(
        tmp_path,
        "backtest",
        "--symbols",
        "aaa",
        "--data-dir",
        tmp_path / "data",
        *common,
        "--output-json",
        tmp_path / "many-{symbol}.json",
    )
    assert many.returncode == 0, many.stderr
    assert many.stdout.startswith("AAA: best ")  # the cross-stock line, as the stock finished
    run = _cli(
        tmp_path,
        "backtest",
        "--symbols",
        "AAA",
        "--data-dir",
        tmp_path / "data",
        *common,
        "--out",
        tmp_path / "run",
        "--output-json",
        tmp_path / "run-{symbol}.json",
    )
    assert run.returncode == 0, run.stderr
    a, b, c = (json.loads((tmp_path / f).read_text()) for f in ("single.json", "many-AAA.json", "run-AAA.json"))
    for other in (b, c):
        _close(a["strategies"], other["strategies"])
        _close(a["jaxsim"]["limit_prices"], other["jaxsim"]["limit_prices"])
        # one device, one stock per call: the universe runs load the single-stock program (not compiled,
        # docs/compilation.md#shared-programs), so the numbers are the same bits
        assert other["strategies"] == a["strategies"]
    for p in (many, run):
        assert "loading the cached backtest program" in p.stderr and "compiling the backtest" not in p.stderr, p.stderr
    assert a["strategies"]["simple"]["return"] is not None


def test_second_run_loads_the_compiled_program(tmp_path):
    data = _csvs(tmp_path / "data", {"AAA": 90})
    argv = ("backtest", "--csv", data["AAA"], "--model", "naive", "--sims", "4", "--cache-dir", tmp_path / "c")
    first = _cli(tmp_path, *argv)
    assert first.returncode == 0, first.stderr
    assert "compiling the backtest program (first run for this shape; cached afterwards)" in first.stderr
    programs = tmp_path / "c" / "programs"
    assert list(programs.glob("backtest-*.jaxexport"))
    # compiled for this machine too, and so is the verdict's statistics program: the next run loads both
    assert list(programs.glob("backtest-*.xlaexe")) and list(programs.glob("uncertainty-*.xlaexe"))
    second = _cli(tmp_path, *argv)
    assert second.returncode == 0, second.stderr
    assert "compiling the backtest program" not in second.stderr
    assert "loading the cached backtest program" in second.stderr
    assert second.stdout == first.stdout
    off = _cli(tmp_path, *argv[:-2], "--no-cache")
    assert off.returncode == 0 and "compiling the backtest program" in off.stderr and off.stdout == first.stdout


# ----------------------------------------------------------------------------------------------------
# Ctrl-C


def _popen(tmp_path, *argv):
    return subprocess.Popen(
        _cmd(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path), cwd=tmp_path
    )


def _await(stream, text, timeout=300.0):
    t0, seen = time.monotonic(), []
    while time.monotonic() - t0 < timeout:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"never saw {text!r}: {''.join(seen)[-2000:]}")


def _interrupted(proc, err_before):
    out, err = proc.communicate(timeout=120)
    err = "".join(err_before) + err
    assert proc.returncode == 130, (proc.returncode, err[-3000:])
    assert err.rstrip().endswith(MESSAGE)
    assert "Traceback" not in err and "Segmentation" not in err
    return out, err


def test_ctrl_c_single_stock(tmp_path):
    data = _csvs(tmp_path / "data", {"AAA": 90})
    argv = (
        "backtest",
        "--csv",
        data["AAA"],
        "--model",
        "naive",
        "--sims",
        "4",
        "--cache-dir",
        tmp_path / "c",
        "--out",
        tmp_path / "out",
    )
    proc = _popen(tmp_path, *argv)
    seen = _await(proc.stderr, "compiling the backtest program")
    proc.send_signal(signal.SIGINT)
    _interrupted(proc, seen)
    assert not (tmp_path / "out" / "records.csv").exists()
    again = _cli(tmp_path, *argv)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "out" / "records.csv").exists()


def test_ctrl_c_many_stocks_then_resume(tmp_path):
    symbols = ["S1", "S2", "S3", "S4", "S5", "S6"]
    _csvs(tmp_path / "data", {s: 90 for s in symbols})
    out = tmp_path / "run"
    argv = (
        "backtest",
        "--symbols",
        ",".join(symbols),
        "--data-dir",
        tmp_path / "data",
        "--model",
        "naive",
        "--sims",
        "4",
        "--chunk-size",
        "1",
        "--out",
        out,
        "--cache-dir",
        tmp_path / "c",
    )
    proc = _popen(tmp_path, *argv)
    _await(proc.stdout, "S1: best ")
    proc.send_signal(signal.SIGINT)
    _interrupted(proc, [])
    finished = [s for s in symbols if (out / s / "done.json").exists()]
    assert 1 <= len(finished) < len(symbols)
    before = {(s, f.name): f.read_bytes() for s in finished for f in (out / s).iterdir()}
    mtimes = {(s, f.name): f.stat().st_mtime_ns for s in finished for f in (out / s).iterdir()}
    again = _cli(tmp_path, *argv)
    assert again.returncode == 0, again.stderr
    assert f"{len(symbols) - len(finished)} written, {len(finished)} already complete, 0 failed" in again.stdout
    assert all((out / s / "done.json").exists() for s in symbols)
    assert {(s, f.name): f.read_bytes() for s in finished for f in (out / s).iterdir()} == before
    assert {(s, f.name): f.stat().st_mtime_ns for s in finished for f in (out / s).iterdir()} == mtimes
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    mode = (out / symbols[-1] / "records.csv").stat().st_mode & 0o777
    assert mode == 0o666 & ~_umask()  # readable by others under the usual umask


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_backtest_accepts_a_frame_a_path_or_a_sample_name(tmp_path):
    from jaxsim import forecasters

    path = _csvs(tmp_path, {"AAA": 90})["AAA"]
    import pandas as pd

    kw = dict(n_sims=3, max_context=32)
    from_path = jaxsim.backtest(str(path), forecasters.naive(), **kw)
    from_frame = jaxsim.backtest(pd.read_csv(path), forecasters.naive(), symbol="AAA", **kw)
    from_prices = jaxsim.backtest(jaxsim.load_prices(path), forecasters.naive(), **kw)
    assert from_path.symbol == from_frame.symbol == "AAA"
    pd.testing.assert_frame_equal(from_path.summary, from_prices.summary)
    pd.testing.assert_frame_equal(from_frame.summary, from_prices.summary)
    ibm = jaxsim.backtest("ibm", forecasters.naive(), **kw)
    assert ibm.symbol == "IBM" and str(ibm.records["date"].iloc[0].date()) == "2013-02-28"  # row T-2
    many = jaxsim.backtest_many({"AAA": path, "IBM": "IBM"}, forecasters.naive(), **kw)
    pd.testing.assert_frame_equal(many["IBM"].summary, ibm.summary)
