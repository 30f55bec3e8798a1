"""A command line and Python API that never surprise (issue 27): a mistyped flag names the closest one;
``--out`` is created or refused before any compile; intraday bars are named as such and aggregated to
correct daily bars (never cut to one bar per day); ``plot(prices=...)`` takes what ``backtest`` takes;
``compare`` uses the compile cache and shows progress; "loading" is said only of a real load; a resumed
multi-stock run prints every stock.

Cheap throughout: the naive forecaster, 3 simulations, one program shape for every backtest here
(compiled once per process), a toy program for the compile messages.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import jaxsim
from jaxsim.cli.app import main
from jaxsim.errors import ConfigError, PriceDataError

DAYS = 40  # daily bars of the hand-made hourly series (7 bars a day)
HOURS = 7
N_SIMS = "3"


def _hourly(days: int = DAYS, seed: int = 0) -> pd.DataFrame:
    """Hourly bars 09:30 .. 15:30 on ``days`` business days; every bar valid, each with its own range."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2024-01-02", periods=days)
    stamps = [d + pd.Timedelta(hours=9.5 + h) for d in dates for h in range(HOURS)]
    n = len(stamps)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.r_[100.0, close[:-1]] * (1 + rng.normal(0, 0.001, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0.0005, 0.004, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0.0005, 0.004, n))
    volume = rng.integers(100, 1000, n).astype(float)
    return pd.DataFrame({"Date": stamps, "Open": open_, "High": high, "Low": low, "Close": close, "Volume": volume})


def _expected_daily(frame: pd.DataFrame) -> pd.DataFrame:
    """The daily bars by hand: each date's first Open, max High, min Low, last Close, summed Volume."""
    f = frame.sort_values("Date")
    day = pd.to_datetime(f["Date"]).dt.date
    return f.groupby(day).agg(
        Open=("Open", "first"),
        High=("High", "max"),
        Low=("Low", "min"),
        Close=("Close", "last"),
        Volume=("Volume", "sum"),
    )


def _one_line_error(capsys) -> str:
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def hourly_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hourly") / "HR.csv"
    _hourly().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def result(hourly_csv):
    """One backtest of the resampled hourly series (the program shape of every run in this module)."""
    prices = jaxsim.load_prices(hourly_csv, resample="1D")
    return jaxsim.backtest(prices, jaxsim.forecasters.naive(), n_sims=int(N_SIMS), protocol="legacy")


# ----------------------------------------------------------------------------------------------------
# Flag typos


def test_a_mistyped_flag_is_one_line_with_the_closest_flag(capsys):
    for argv, fragment in (
        (["backtest", "--simz", "3"], "unrecognized argument --simz (did you mean --sims?)"),
        (["backtest", "--sims", "3", "--modle=naive"], "unrecognized argument --modle=naive (did you mean --model?)"),
        (["backtset"], "invalid choice: 'backtset'"),
        (["data", "clean", "a.csv", "b.csv", "--resampel", "1D"], "(did you mean --resample?)"),
        (["compare", "--modles", "naive"], "(did you mean --models?)"),
        (["backtest", "--model", "naiv"], "did you mean naive?"),
    ):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        line = _one_line_error(capsys)
        assert fragment in line and "usage:" not in line, line
        assert line.startswith(
            ("jaxsim backtest: error:", "jaxsim: error:", "jaxsim data clean: error:", "jaxsim compare")
        )
    with pytest.raises(SystemExit):
        main(["backtset"])
    assert "did you mean backtest?" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------
# --out: created or refused before any compile


@pytest.fixture
def refused(tmp_path, monkeypatch, hourly_csv):
    """An argument that must be refused before any work: the backtest entry points fail if called.

    Yields ``(afile, single, multi)``: a plain file to put paths under and the single- and multi-stock
    command lines without the output flag; after the test, the trace count has not moved (nothing
    was compiled)."""
    from jaxsim.engine import program
    from jaxsim.shell import api

    def never(*a, **k):
        raise AssertionError("the backtest ran although its output path was unusable")

    monkeypatch.setattr(api, "backtest", never)
    monkeypatch.setattr(api, "backtest_many", never)
    traces = program.trace_count()
    afile = tmp_path / "prices.csv"
    afile.write_text("x")
    single = ["backtest", "--csv", str(hourly_csv), "--resample", "1D", "--model", "naive", "--sims", N_SIMS]
    multi = [
        "backtest",
        "--symbols",
        "HR",
        "--data-dir",
        str(hourly_csv.parent),
        "--resample",
        "1D",
        "--model",
        "naive",
    ]
    yield afile, single, multi
    assert program.trace_count() == traces  # nothing compiled


def _read_only_folder(tmp_path: Path) -> Path | None:
    """An existing folder this process cannot write in: a folder made read-only, or, for root (who
    writes anywhere on a normal file system), /sys/fs of the read-only sysfs; None where neither is."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
        return locked
    sysfs = Path("/sys/fs")
    return sysfs if sysfs.is_dir() and not os.access(sysfs, os.W_OK) else None


def test_out_that_cannot_be_written_exits_2_before_any_compile(tmp_path, capsys, refused):
    afile, base, multi = refused
    cases = [
        (str(afile / "sub" / "run"), f"--out {afile / 'sub' / 'run'}: {afile} is a file, not a folder"),
        (str(afile), "is an existing file; give a folder"),
    ]
    if Path("/sys").is_dir() and not os.access("/sys", os.W_OK):
        cases.append(("/sys/jaxsim-test/run", "--out /sys/jaxsim-test/run: cannot create the folder /sys/jaxsim-test"))
    locked = _read_only_folder(tmp_path)
    if locked is not None:
        cases.append((str(locked / "run"), f"--out {locked / 'run'}: cannot write in {locked}"))
    for out, fragment in cases:
        assert main([*base, "--out", out]) == 2
        line = _one_line_error(capsys)
        assert line.startswith("error: ") and fragment in line, line
    assert main([*multi, "--out", str(afile / "run")]) == 2
    assert f"{afile} is a file, not a folder" in _one_line_error(capsys)


def test_output_json_that_cannot_be_written_exits_2_before_any_compile(tmp_path, capsys, refused):
    from jaxsim.cli.validate import validate_backtest

    afile, base, multi = refused
    cases = [(str(afile / "sub" / "s.json"), f"--output-json {afile / 'sub' / 's.json'}: {afile} is a file")]
    locked = _read_only_folder(tmp_path)
    if locked is not None:
        cases.append((str(locked / "s.json"), f"--output-json {locked / 's.json'}: cannot write in {locked}"))
        cases.append((str(locked / "new" / "s.json"), f"cannot create the folder {locked / 'new'} in {locked}"))
    for path, fragment in cases:
        assert main([*base, "--output-json", path]) == 2
        line = _one_line_error(capsys)
        assert line.startswith("error: ") and fragment in line, line
    assert main([*multi, "--output-json", str(afile / "{symbol}.json")]) == 2
    assert f"{afile} is a file" in _one_line_error(capsys)
    # a template's folders are created up to its first {symbol} part, and nothing is left in them
    from jaxsim.cli.app import build_parser

    args = build_parser().parse_args([*multi, "--output-json", str(tmp_path / "j" / "{symbol}" / "s.json")])
    validate_backtest(args)
    assert (tmp_path / "j").is_dir() and list((tmp_path / "j").iterdir()) == []


def test_missing_parents_of_out_are_created_and_the_run_lands_there(tmp_path, capsys, hourly_csv, result):
    out = tmp_path / "new" / "nested" / "run"
    summary = tmp_path / "json" / "deep" / "HR.json"  # its missing folders are created too
    argv = ["backtest", "--csv", str(hourly_csv), "--resample", "1D", "--model", "naive", "--sims", N_SIMS]
    code = main([*argv, "--out", str(out), "--output-json", str(summary), "--no-cache"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert (out / "records.csv").is_file() and (out / "summary.csv").is_file()
    assert json.loads(summary.read_text())["symbol"] == "HR"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no probe or temporary left
    # the resampled series ran: the same numbers as the Python API on load_prices(..., resample="1D")
    saved = pd.read_csv(out / "summary.csv", index_col=0)
    np.testing.assert_allclose(saved["Return"].to_numpy(), result.summary["Return"].to_numpy(), rtol=1e-6)
    assert f"saved to {out}" in stdout


# ----------------------------------------------------------------------------------------------------
# Intraday bars


def test_hourly_bars_aggregate_to_correct_daily_bars():
    frame = _hourly(days=5)
    expected = _expected_daily(frame)
    shuffled = frame.sample(frac=1.0, random_state=3)  # order of the input rows does not matter
    prices = jaxsim.load_prices(shuffled, symbol="HR", resample="1D")
    assert len(prices) == 5 and list(prices.dates) == [np.datetime64(d) for d in expected.index]
    for field in ("Open", "High", "Low", "Close", "Volume"):
        np.testing.assert_array_equal(
            getattr(prices, field.lower()), expected[field].to_numpy(np.float32), err_msg=field
        )
    # daily High = max of the day's hourly Highs, and so on, spelled out for the first day
    day = frame.iloc[:HOURS]
    assert prices.high[0] == np.float32(day["High"].max()) and prices.low[0] == np.float32(day["Low"].min())
    assert prices.open[0] == np.float32(day["Open"].iloc[0]) and prices.close[0] == np.float32(day["Close"].iloc[-1])
    assert prices.volume[0] == np.float32(day["Volume"].sum())
    # the high is not the last hour's (what keeping the last bar of a day would give)
    assert prices.high[0] > np.float32(day["High"].iloc[-1]) or day["High"].iloc[-1] == day["High"].max()


def test_a_bars_day_is_its_own_time_zones_calendar_date():
    # New York evening bars: 19:00 and 20:00 -05:00 are 00:00 and 01:00 UTC the next day
    stamps = ["2024-01-02 18:00-05:00", "2024-01-02 19:00-05:00", "2024-01-02 20:00-05:00", "2024-01-03 09:30-05:00"]
    frame = pd.DataFrame(
        {"Date": stamps, "Open": [10, 11, 12, 13], "High": [11, 14, 12.5, 13.5], "Low": [9, 10.5, 11.5, 12.5]}
    )
    frame["Close"] = [11, 12, 12.2, 13.2]
    prices = jaxsim.load_prices(frame, symbol="NY", resample="1D")
    assert list(prices.dates) == [np.datetime64("2024-01-02"), np.datetime64("2024-01-03")]
    np.testing.assert_array_equal(prices.open, np.float32([10, 13]))
    np.testing.assert_array_equal(prices.high, np.float32([14, 13.5]))
    np.testing.assert_array_equal(prices.low, np.float32([9, 12.5]))
    np.testing.assert_array_equal(prices.close, np.float32([12.2, 13.2]))
    assert prices.volume is None


def test_intraday_bars_are_named_and_never_cut_to_one_bar_a_day():
    frame = _hourly(days=3)
    with pytest.raises(PriceDataError) as e:
        jaxsim.load_prices(frame, symbol="HR")
    message = str(e.value)
    assert "intraday bars" in message and "resample='1D'" in message and "--resample 1D" in message
    assert "duplicate date" not in message and "data clean" not in message  # cleaning would not help
    assert "2024-01-02 09:30 (row 0)" in message  # rows named by their time
    with pytest.raises(PriceDataError, match="cleaning would keep one bar per date"):
        jaxsim.load_prices(frame, symbol="HR", clean=True)
    # a true duplicate (the same date, no time) is still a duplicate date, repairable by cleaning
    daily = _expected_daily(frame).reset_index(names="Date")
    with pytest.raises(PriceDataError, match="duplicate date in 2 rows.*data clean"):
        jaxsim.load_prices(pd.concat([daily, daily.iloc[[1]]]), symbol="HR")
    # with resample, cleaning works on the bars: a repeated timestamp is dropped (the last kept)
    dup = pd.concat([frame, frame.iloc[[3]].assign(High=frame["High"].iloc[3] * 1.5)])
    with pytest.raises(PriceDataError, match="duplicate timestamp"):
        jaxsim.load_prices(dup, symbol="HR", resample="1D")
    cleaned = jaxsim.load_prices(dup, symbol="HR", resample="1D", clean=True)
    assert cleaned.high[0] == np.float32(frame["High"].iloc[3] * 1.5)
    assert "duplicate timestamp (kept the last occurrence)" in str(cleaned.cleaning)
    # daily data passes unchanged; an unknown rule is refused
    aapl = jaxsim.sample("AAPL")
    again = jaxsim.load_prices(aapl.to_frame(), resample="1d")
    np.testing.assert_array_equal(again.high, aapl.high)
    np.testing.assert_array_equal(again.dates, aapl.dates)
    with pytest.raises(ConfigError, match="resample must be '1D'"):
        jaxsim.load_prices(frame, symbol="HR", resample="1h")


def test_data_commands_on_hourly_bars(tmp_path, capsys, hourly_csv):
    dest = tmp_path / "daily.csv"
    # clean refuses: nothing written, one line, exit 2
    assert main(["data", "clean", str(hourly_csv), str(dest)]) == 2
    assert "intraday bars" in _one_line_error(capsys) and not dest.exists()
    # show names the intraday bars and rejects (exit 1); with --resample it is ok
    assert main(["data", "show", str(hourly_csv)]) == 1
    shown = capsys.readouterr().out
    assert "error: intraday bars (several per date at different times) in 280 rows: 2024-01-02 09:30 (line 2)" in shown
    assert "verdict:    rejected by load_prices: intraday bars (--resample 1D aggregates them" in shown
    assert main(["data", "show", str(hourly_csv), "--resample", "1D"]) == 0
    shown = capsys.readouterr().out
    assert f"rows:       {DAYS * HOURS} ({DAYS} daily bars after --resample)" in shown and "verdict:    ok" in shown
    # clean --resample 1D writes the correct daily bars
    assert main(["data", "clean", str(hourly_csv), str(dest), "--resample", "1D"]) == 0
    assert f"resampled to {DAYS} daily bars" in capsys.readouterr().out
    written = pd.read_csv(dest, index_col=0)
    expected = _expected_daily(pd.read_csv(hourly_csv, parse_dates=["Date"]))
    np.testing.assert_allclose(
        written[["Open", "High", "Low", "Close", "Volume"]].to_numpy(), expected.to_numpy(), rtol=1e-6
    )


# ----------------------------------------------------------------------------------------------------
# Python / notebook parity


def test_plot_takes_whatever_backtest_takes(result, hourly_csv):
    prices = jaxsim.load_prices(hourly_csv, resample="1D")

    def lines(fig):
        return [np.asarray(line.get_ydata(), float) for line in fig.axes[0].lines]

    reference = lines(result.plot("equity", prices=prices))
    for source in (prices.to_frame(), prices):
        got = lines(result.plot("equity", prices=source))
        assert len(got) == len(reference) and all(np.allclose(a, b) for a, b in zip(got, reference))
    heat = result.plot("heatmap", prices=prices.to_frame(), resolution=5)
    assert heat.axes
    with pytest.raises(FileNotFoundError):
        result.plot("equity", prices="no-such-file-or-sample")


def test_compare_uses_the_compile_cache_and_shows_progress(tmp_path, capsys, monkeypatch, result):
    from jaxsim.engine import compilation

    seen = []  # the folder each command turns the caches on at (conftest keeps them off in-process)
    monkeypatch.setattr(
        compilation.CacheSettings,
        "apply",
        lambda self: seen.append(self.resolve()) or compilation.disable_compilation_cache(),
    )
    daily = tmp_path / "HRD.csv"
    jaxsim.load_prices(_hourly(), symbol="HRD", resample="1D").to_frame().to_csv(daily)
    cache = tmp_path / "cache"
    table = tmp_path / "made" / "for" / "table.csv"
    argv = ["compare", "--csv", str(daily), "--models", "naive", "--sims", N_SIMS, "--resamples", "20"]
    assert main([*argv, "--cache-dir", str(cache), "--out", str(table)]) == 0
    out, err = capsys.readouterr()
    assert seen == [cache]  # the backtests ran with the compile cache of --cache-dir, as `jaxsim backtest`
    assert "[1/1] backtest with naive ..." in err and "[1/1] backtest with naive: done in" in err
    assert table.is_file() and "Forecaster comparison for HRD" in out
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main([*argv, "--out", str(afile / "t.csv")]) == 2
    assert f"{afile} is a file, not a folder" in _one_line_error(capsys)


LOADING = """
import io, json, sys
from pathlib import Path
import jax.numpy as jnp
from jaxsim.cli.feedback import elapsed
from jaxsim.engine.compilation import CacheSettings, ProgramCache, caching

folder, stream, lines = Path(sys.argv[1]), io.StringIO(), []

def run():
    cache = ProgramCache(lambda x, static: x * static + 1.0, name="toy", message="compiling the toy program")
    with caching(CacheSettings(folder), lambda m: elapsed(m, stream, tty=False)):
        assert cache(jnp.arange(3.0), static=2.0, token="toy-2").tolist() == [1.0, 3.0, 5.0]
    lines.append(stream.getvalue().strip().splitlines()[-1])
    stream.seek(0)
    stream.truncate()

def remove(xla_cache):
    for p in (folder / "programs").glob("*.xlaexe"):
        p.unlink()
    for p in folder.iterdir() if xla_cache else ():
        if p.name != "programs":
            p.unlink()

run()
remove(xla_cache=True)  # only the stored trace is left, as after a Ctrl-C during the XLA compile
run()
remove(xla_cache=False)  # the trace and XLA's cache: XLA answers
run()
stored = bool(list((folder / "programs").glob("*.xlaexe")))
remove(xla_cache=True)
run()  # compiles and stores the executable again
run()  # loads it
print(json.dumps({"lines": lines, "stored_after_xla_hit": stored}))
"""


def test_loading_is_said_only_of_a_real_load(tmp_path):
    """The compile line says "loading" only when the executable is loaded; a stored trace that XLA must
    still compile (e.g. after a Ctrl-C during the compile) says "compiling", and its end says when XLA's
    own cache answered. A subprocess: in-process tests keep the disk caches off (conftest)."""
    import subprocess
    import sys

    from reliability_helpers import xla_flags

    root = str(Path(jaxsim.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=root, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(1))
    p = subprocess.run(
        [sys.executable, "-c", LOADING, str(tmp_path / "cache")], capture_output=True, text=True, env=env, timeout=240
    )
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout.strip().splitlines()[-1])
    first, trace_only, xla_hit, again, loaded = got["lines"]
    assert first.startswith("compiling the toy program: done in")
    assert trace_only.startswith("compiling the toy program from its stored trace: done in")
    assert xla_hit.startswith("compiling the toy program from its stored trace: loaded from XLA's cache in")
    assert not got["stored_after_xla_hit"]  # an executable XLA's cache gave is not stored
    assert again.startswith("compiling the toy program from its stored trace: done in")
    assert loaded.startswith("loading the cached toy program: done in")


def test_a_resumed_run_prints_every_stock(tmp_path, capsys, result):
    data = tmp_path / "data"
    data.mkdir()
    for i, sym in enumerate(("AA", "BB", "CC")):
        jaxsim.load_prices(_hourly(seed=i), symbol=sym, resample="1D").to_frame().to_csv(data / f"{sym}.csv")
    out = tmp_path / "run"
    argv = ["backtest", "--data-dir", str(data), "--model", "naive", "--sims", N_SIMS, "--chunk-size", "1"]
    assert main([*argv, "--symbols", "AA,BB", "--out", str(out), "--no-cache"]) == 0
    first = capsys.readouterr().out
    assert main([*argv, "--symbols", "AA,BB,CC", "--out", str(out), "--no-cache"]) == 0
    second = capsys.readouterr().out
    assert "1 written, 2 already complete, 0 failed" in second
    table = second.split("Symbol", 1)[1]
    assert all(f"\n{s} " in table for s in ("AA", "BB", "CC"))
    # the earlier stocks' rows are those the first run printed
    for sym in ("AA", "BB"):
        row = next(line for line in first.splitlines() if line.startswith(f"{sym} "))
        assert row in second
    stocks = pd.read_csv(out / "stocks.csv", index_col=0)
    assert list(stocks.index) == ["AA", "BB", "CC"]
