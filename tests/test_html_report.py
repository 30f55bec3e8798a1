"""The HTML report and the files of an --out folder: report.html (single stock), index.html (runs),
``jaxsim report DIR``, trades.csv against the fills, every table oldest first with flat columns, and a
render in headless Chromium where one is installed.

Cheap by design: one module-scoped run_many of two synthetic stocks (a from_function forecaster, 8
simulations, a 32-row context cap, one compiled program) serves every test."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from reliability_helpers import CAP, SAMPLED, synthetic_frame

from jaxsim.cli import main
from jaxsim.data.prices import load_prices
from jaxsim.report.html import nested_forecasts
from jaxsim.report.trades import TRADE_COLUMNS, trades_frame
from jaxsim.shell.runs import is_complete, run_many

N = 8
SETTINGS = dict(n_sims=N, max_context=CAP)
SECTIONS = ("header", "verdict", "stats", "uncertainty", "equity", "forecasts", "maxdiff", "trades", "summary")
REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two stocks of one length through run_many (the CLI's --symbols --out path), which saves each
    stock folder with its prices; AAA's folder and result serve the single-stock tests."""
    base = tmp_path_factory.mktemp("html")
    paths = []
    for i, sym in enumerate(("AAA", "BBB")):
        path = base / "data" / f"{sym}.csv"
        path.parent.mkdir(exist_ok=True)
        synthetic_frame(90, 70 + i).to_csv(path, index=False)
        paths.append(path)
    results = {}
    report = run_many(paths, base / "run", forecaster=SAMPLED, chunk_size=2, on_result=results.__setitem__, **SETTINGS)
    assert report.done == ("AAA", "BBB")
    return SimpleNamespace(
        base=base, run=base / "run", one=base / "run" / "AAA", result=results["AAA"], prices=load_prices(paths[0])
    )


def _sections(html: str) -> set[str]:
    return set(re.findall(r'<(?:section|header) id="([a-z]+)"', html))


def _self_contained(html: str) -> None:
    assert not REMOTE.search(html), REMOTE.search(html)
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html


def test_single_stock_report_has_every_section_and_embeds_its_figures(run):
    html = (run.one / "report.html").read_text()
    assert _sections(html) == set(SECTIONS)
    _self_contained(html)
    assert html.count('src="data:image/png;base64,') == 3  # equity, fan, heatmap (run_many has the prices)
    unc = json.loads((run.one / "uncertainty.json").read_text())
    assert unc["verdict"] in html and "@media print" in html
    assert set(unc["bootstrap"]) >= {"Sharpe Ratio", "CAGR [%]", "Mean Daily Return [%]"}
    trades = pd.read_csv(run.one / "trades.csv")
    assert f"{len(trades)} round trips" in html
    for name in run.result.summary.index:  # every strategy in the stats table
        assert f"<th>{name}</th>" in html


def test_result_report_writes_one_page(run, tmp_path):
    path = run.result.report(tmp_path / "page.html")
    html = path.read_text()
    assert path == tmp_path / "page.html" and _sections(html) == set(SECTIONS)
    assert html.count("data:image/png;base64,") == 2  # no prices: no heatmap, and the page says why
    assert "No heatmap figure" in html
    assert run.result.report(tmp_path / "folder").name == "report.html"


def test_tables_are_oldest_first_with_flat_columns(run):
    for name in ("records.csv", "daily.csv", "equity.csv", "forecasts.csv", "trades.csv"):
        frame = pd.read_csv(run.one / name)
        dates = pd.to_datetime(frame.iloc[:, 0] if name != "trades.csv" else frame["exit_date"])
        assert dates.is_monotonic_increasing, name
        assert not any(str(c).startswith("Unnamed") for c in frame.columns), name
    records = pd.read_csv(run.one / "records.csv")
    np.testing.assert_allclose(records["close"], run.result.records["close"][::-1], rtol=1e-6)
    daily = pd.read_csv(run.one / "daily.csv", index_col=0, parse_dates=True)
    equity = pd.read_csv(run.one / "equity.csv", index_col=0, parse_dates=True)
    np.testing.assert_allclose(equity, (1 + daily.fillna(0)).cumprod(), rtol=1e-12)
    flat = pd.read_csv(run.one / "forecasts.csv", index_col=0, parse_dates=True)
    assert "close_point" in flat.columns and "close_q0.9" in flat.columns
    pd.testing.assert_frame_equal(
        nested_forecasts(flat), run.result.forecasts, check_freq=False, check_names=False, check_index_type=False
    )


def test_signal_trades_of_a_hand_made_case():
    """Three days, simple long / short / flat: two close-to-close round trips at the closes."""
    dates = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04"], name="date")
    daily = pd.DataFrame({"simple": [0.0099, -0.0208, -0.001]}, index=dates)
    closes = np.array([100.0, 101.0, 99.0, 98.0])  # the close before the first day, then the three days
    fake = SimpleNamespace(
        daily=daily,
        exposure=pd.DataFrame({"simple": [True, True, False]}, index=dates),
        oos={"oos_position_simple_strategy": np.array([0.0, -1.0, 1.0])},  # row order: newest first
        records=pd.DataFrame({"date": dates[::-1], "close": closes[1:][::-1]}),
        closes=pd.Series(closes, index=[dates[0] - pd.Timedelta(days=1), *dates]),
        metadata={},
    )
    trades = trades_frame(fake)
    assert list(trades.columns) == list(TRADE_COLUMNS)
    assert trades["side"].tolist() == ["long", "short"]
    assert trades["entry_price"].tolist() == [100.0, 101.0] and trades["exit_price"].tolist() == [101.0, 99.0]
    assert trades["entry_date"].iloc[1] == dates[0] and trades["exit_date"].tolist() == list(dates[:2])
    assert trades["return"].tolist() == [0.0099, -0.0208] and set(trades["kind"]) == {"close_to_close"}


def test_trades_csv_equals_the_fills(run):
    """trades.csv against the prices and the program's own P&L: signal trades buy and sell at the
    closes; a MaxDiff fill lies inside the day's range and its P&L, recomputed from the fill prices,
    is the P&L the program recorded for that day."""
    trades = pd.read_csv(run.one / "trades.csv", parse_dates=["entry_date", "exit_date"])
    p = run.prices
    bars = pd.DataFrame(
        {"high": p.high, "low": p.low, "close": p.close}, index=pd.DatetimeIndex(np.asarray(p.dates, "datetime64[ns]"))
    )
    daily, exposure = run.result.daily, run.result.exposure
    for name in ("simple", "buy_hold"):
        t = trades[trades["strategy"] == name]
        assert len(t) == exposure[name].sum()
        np.testing.assert_allclose(t["exit_price"], bars.loc[t["exit_date"], "close"], rtol=1e-6)
        np.testing.assert_allclose(t["entry_price"], bars.loc[t["entry_date"], "close"], rtol=1e-6)
        np.testing.assert_allclose(t["return"], daily.loc[t["exit_date"], name], rtol=1e-9)
    md = trades[trades["strategy"] == "maxdiff"]
    assert len(md) > 0 and md["entry_price"].notna().all()
    day = bars.loc[md["exit_date"]]
    long = (md["side"] == "long").to_numpy()
    eps = 1e-4 * day["close"].to_numpy()
    # a long buys when the low goes below its limit, a short sells when the high goes above it
    assert (md["entry_price"].to_numpy()[long] > day["low"].to_numpy()[long] - eps[long]).all()
    assert (md["entry_price"].to_numpy()[~long] < day["high"].to_numpy()[~long] + eps[~long]).all()
    assert (md["exit_price"].to_numpy() <= day["high"].to_numpy() + eps).all()
    assert (md["exit_price"].to_numpy() >= day["low"].to_numpy() - eps).all()
    np.testing.assert_allclose(md["return"], daily.loc[md["exit_date"], "maxdiff"], atol=2e-6)
    prev = bars["close"].shift(1).loc[md["exit_date"]].to_numpy()
    sign = np.where(long, 1.0, -1.0)
    gross = sign * (md["exit_price"].to_numpy() - md["entry_price"].to_numpy()) / prev
    fee = run.result.metadata["fee"]
    assert np.all(np.isclose(gross, md["return"], atol=2e-5) | np.isclose(gross - fee, md["return"], atol=2e-5))


def test_multi_stock_run_has_an_index_linking_every_report(run):
    index = (run.run / "index.html").read_text()
    _self_contained(index)
    table = pd.read_csv(run.run / "stocks.csv", index_col=0)
    for sym in ("AAA", "BBB"):
        assert f'href="{sym}/report.html"' in index
        page = (run.run / sym / "report.html").read_text()
        assert _sections(page) == set(SECTIONS)
        _self_contained(page)
        assert table.loc[sym, "Verdict"] in index
        assert is_complete(run.run / sym)


def test_report_command_renders_saved_folders(run, tmp_path, capsys):
    # an older folder: no report.html, no trades.csv, two-row forecasts.csv header; the page renders
    # what it has and says what is missing
    old = tmp_path / "old"
    shutil.copytree(run.one, old)
    (old / "report.html").unlink()
    (old / "trades.csv").unlink()
    flat = pd.read_csv(old / "forecasts.csv", index_col=0)
    nested_forecasts(flat).to_csv(old / "forecasts.csv")  # the two header rows jaxsim wrote before
    assert main(["report", str(old)]) == 0
    html = (old / "report.html").read_text()
    assert _sections(html) == set(SECTIONS) and "trades.csv is not in this folder" in html
    assert html.count("data:image/png;base64,") == 2  # equity and fan redrawn from the CSVs; no heatmap
    assert main(["report", str(old)]) == 0 and "kept for 1 stock" in capsys.readouterr().out
    # a run folder: a stock page rendered again is recorded in done.json, so a resume still skips it
    runs = tmp_path / "run"
    shutil.copytree(run.run, runs)
    (runs / "index.html").unlink()
    (runs / "AAA" / "report.html").write_text("stale")
    assert not is_complete(runs / "AAA")
    assert main(["report", str(runs), "--force"]) == 0
    assert "written for 2 stock(s): AAA, BBB" in capsys.readouterr().out
    assert (runs / "index.html").is_file() and all(is_complete(runs / s) for s in ("AAA", "BBB"))
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def _browser() -> str | None:
    return next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(_browser() is None, reason="no chromium / chromium-browser / google-chrome on PATH")
@pytest.mark.parametrize("page", ["run/AAA/report.html", "run/index.html"])
def test_pages_render_in_headless_chromium(run, page, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [
            _browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # a page that fetched anything would log an error
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,1600",
            f"--screenshot={shot}",
            (run.base / page).as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Failed to load resource" in line]
    assert not console, console
    image = Image.open(shot).convert("L")
    assert image.size == (1200, 1600)
    low, high = image.getextrema()
    assert high - low > 100 and len(image.getcolors(maxcolors=1 << 16) or []) > 20  # not blank
