"""jaxsim.data.prices (and its private helper jaxsim.data.table): loading, validation, cleaning, samples."""

import csv
import gzip
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxsim
from jaxsim.data.prices import Prices, check_history, describe_prices, load_prices, required_rows
from jaxsim.errors import ConfigError, InsufficientHistoryError, JaxsimError, PriceDataError

pytestmark = pytest.mark.strict_promotion

GOOD = """Date,Open,High,Low,Close,Volume
2020-01-02,10.0,11.0,9.5,10.5,1000
2020-01-03,10.5,11.5,10.0,11.0,1100
2020-01-06,11.0,12.0,10.5,11.5,1200
2020-01-07,11.5,12.5,11.0,12.0,1300
2020-01-08,12.0,12.5,11.5,11.8,1400
"""


def _write(tmp_path, text, name="TEST.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _mutate(line_no, new_line):
    """GOOD with data line ``line_no`` (file line, header = 1) replaced."""
    lines = GOOD.splitlines()
    lines[line_no - 1] = new_line
    return "\n".join(lines) + "\n"


def _raw_rows(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- happy paths, both shared layouts


def test_good_csv_loads_exact_values(tmp_path):
    p = load_prices(_write(tmp_path, GOOD))
    assert p.symbol == "TEST" and len(p) == 5
    assert p.dates.dtype == np.dtype("datetime64[D]")
    assert all(getattr(p, f).dtype == np.float32 for f in ("open", "high", "low", "close", "volume"))
    np.testing.assert_array_equal(p.close, np.float32([10.5, 11.0, 11.5, 12.0, 11.8]))
    np.testing.assert_array_equal(p.volume, np.float32([1000, 1100, 1200, 1300, 1400]))
    assert str(p.dates[2]) == "2020-01-06"
    assert p.cleaning is None


def test_all_shared_daily_files_load(daily_dir):
    files = sorted(daily_dir.glob("*.csv"))
    assert len(files) == 42
    for f in files:
        p = load_prices(f)
        rows = _raw_rows(f)
        assert p.symbol == f.stem.upper()
        assert len(p) == len(rows)
        assert np.all(np.diff(p.dates.astype(np.int64)) > 0)
        # Yahoo layout: Date,close,high,low,open,volume (lower case, odd column order)
        np.testing.assert_array_equal(p.close, np.float32([r["close"] for r in rows]))
        np.testing.assert_array_equal(p.open, np.float32([r["open"] for r in rows]))
        assert str(p.dates[0]) == rows[0]["Date"] and str(p.dates[-1]) == rows[-1]["Date"]


def test_wiki_aapl_raw_newest_first_becomes_ascending(shared_dir):
    path = shared_dir / "data" / "WIKI-AAPL.csv"
    rows = _raw_rows(path)  # newest first
    p = load_prices(path, symbol="AAPL")
    assert len(p) == len(rows) == 9400
    assert str(p.dates[0]) == "1980-12-12" == rows[-1]["Date"]
    assert str(p.dates[-1]) == "2018-03-27" == rows[0]["Date"]
    assert p.close[0] == np.float32(28.75) and p.close[-1] == np.float32(168.34)
    np.testing.assert_array_equal(p.high[::-1], np.float32([r["High"] for r in rows]))
    np.testing.assert_array_equal(p.volume[::-1], np.float32([r["Volume"] for r in rows]))


def test_wiki_aapl_adjusted_uses_adj_columns(shared_dir):
    path = shared_dir / "data" / "WIKI-AAPL.csv"
    rows = _raw_rows(path)[::-1]
    p = load_prices(path, adjusted=True)
    for field, col in [("open", "Adj. Open"), ("low", "Adj. Low"), ("close", "Adj. Close"), ("volume", "Adj. Volume")]:
        np.testing.assert_array_equal(getattr(p, field), np.float32([r[col] for r in rows]))
    assert p.close[0] == np.float32(0.42270591588018)
    # 1987-06-16 2:1 split: raw close roughly halves, adjusted close does not
    raw = load_prices(path)
    i = int(np.flatnonzero(raw.dates == np.datetime64("1987-06-16"))[0])
    assert raw.close[i] / raw.close[i - 1] < 0.6
    assert 0.8 < p.close[i] / p.close[i - 1] < 1.2


@pytest.mark.parametrize(
    "names",
    [
        ("Date", "Open", "High", "Low", "Close", "Volume"),
        ("date", "open", "high", "low", "close", "volume"),
        ("DATE", "OPEN", "HIGH", "LOW", "CLOSE", "VOLUME"),
        ("timestamp", "Open", "high", "LOW", "Close", "vol"),
    ],
)
def test_column_spellings(tmp_path, names):
    text = ",".join(names) + "\n" + GOOD.split("\n", 1)[1]
    p = load_prices(_write(tmp_path, text))
    np.testing.assert_array_equal(p.low, np.float32([9.5, 10.0, 10.5, 11.0, 11.5]))
    assert p.volume is not None


def test_dataframe_with_datetime_index_is_not_modified():
    idx = pd.date_range("2021-03-01", periods=4, freq="B", name="Date")
    df = pd.DataFrame(
        {"Open": [1.0, 2, 3, 4], "High": [2.0, 3, 4, 5], "Low": [0.5, 1, 2, 3], "Close": [1.5, 2.5, 3.5, 4.5]},
        index=idx,
    )
    before = df.copy()
    p = load_prices(df, symbol="X")
    pd.testing.assert_frame_equal(df, before)
    assert p.volume is None and p.symbol == "X"
    assert str(p.dates[-1]) == "2021-03-04"
    pd.testing.assert_frame_equal(p.to_frame(), df.astype(np.float32), check_freq=False, check_index_type=False)


def test_dataframe_index_named_date_and_the_frames_own_symbol():
    df = pd.DataFrame(
        {"open": [1.0, 2.0], "high": [2.0, 3.0], "low": [0.5, 1.0], "close": [1.5, 2.5]},
        index=pd.Index(["2020-05-01", "2020-05-04"], name="date"),
    )
    # no silent "UNKNOWN": the name picks the stock's draws, so an unnamed frame is refused in one line
    with pytest.raises(PriceDataError, match=r"^the DataFrame has no symbol: pass symbol='NAME'") as e:
        load_prices(df)
    assert "\n" not in str(e.value)
    p = load_prices(df, symbol="AEM")
    assert p.symbol == "AEM" and str(p.dates[1]) == "2020-05-04"
    named = df.copy()
    named.attrs["symbol"] = "ATTR"
    assert load_prices(named).symbol == "ATTR" and load_prices(named, symbol="X").symbol == "X"
    assert load_prices(df.assign(Ticker="COL")).symbol == "COL"  # a one-valued symbol/ticker column
    with pytest.raises(PriceDataError, match="'symbol' column holds 2 symbols"):
        load_prices(df.assign(symbol=["A", "B"]))
    titled = df.copy()
    object.__setattr__(titled, "name", "NAMED")  # df.name, set without pandas' attribute warning
    assert load_prices(titled).symbol == "NAMED"
    assert load_prices(df.assign(name=["x", "y"]), symbol="Y").symbol == "Y"  # a "name" column is no name
    assert load_prices(p.to_frame()).symbol == "AEM"  # to_frame keeps the name


def test_unsorted_dates_are_sorted_with_their_rows(tmp_path):
    lines = GOOD.splitlines()
    shuffled = "\n".join([lines[0], lines[3], lines[1], lines[5], lines[2], lines[4]]) + "\n"
    p = load_prices(_write(tmp_path, shuffled))
    q = load_prices(_write(tmp_path, GOOD, "REF.csv"), symbol="TEST")
    np.testing.assert_array_equal(p.dates, q.dates)
    np.testing.assert_array_equal(p.close, q.close)
    assert describe_prices(tmp_path / "TEST.csv").order == "unsorted"


def test_parquet_round_trip(tmp_path):
    p = jaxsim.sample("MSFT")
    path = tmp_path / "msft.parquet"
    p.to_frame().to_parquet(path)
    q = load_prices(path)
    assert q.symbol == "MSFT"
    for f in ("dates", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(q, f), getattr(p, f))


def test_to_frame_round_trip_and_slicing():
    p = jaxsim.sample("IBM")
    q = load_prices(p.to_frame(), symbol="IBM")
    np.testing.assert_array_equal(q.close, p.close)
    t = p.tail(100)
    assert len(t) == 100 and t.dates[-1] == p.dates[-1] and t.close[0] == p.close[-100]
    assert len(p[10:20]) == 10 and p[10:20].open[0] == p.open[10]
    with pytest.raises(ConfigError):
        p.tail(0)


# ---------------------------------------------------------------- errors name problem and rows


@pytest.mark.parametrize(
    "line, new, expect",
    [
        (3, "2020-01-03,abc,11.5,10.0,11.0,1100", "non-numeric open in 1 row: 2020-01-03 (line 3)"),
        (4, "2020-01-06,11.0,12.0,10.5,,1200", "missing (NaN) close in 1 row: 2020-01-06 (line 4)"),
        (4, "2020-01-06,11.0,12.0,10.5,NaN,1200", "missing (NaN) close in 1 row: 2020-01-06 (line 4)"),
        (5, "2020-01-07,11.5,inf,11.0,12.0,1300", "infinite high in 1 row: 2020-01-07 (line 5)"),
        (2, "2020-01-02,10.0,11.0,0,10.5,1000", "zero or negative low in 1 row: 2020-01-02 (line 2)"),
        (6, "2020-01-08,-12.0,12.5,11.5,11.8,1400", "zero or negative open in 1 row: 2020-01-08 (line 6)"),
        (5, "2020-01-07,11.5,11.0,12.5,12.0,1300", "High below Low in 1 row: 2020-01-07 (line 5)"),
        (
            4,
            "2020-01-03,11.0,12.0,10.5,11.5,1200",
            "duplicate date in 2 rows: 2020-01-03 (line 3), 2020-01-03 (line 4)",
        ),
        (4, "Jan-six,11.0,12.0,10.5,11.5,1200", "unparseable date in 1 row: line 4 (date 'Jan-six')"),
        (4, ",11.0,12.0,10.5,11.5,1200", "missing date in 1 row"),
        (3, "2020-01-03,10.5,11.5,10.0,11.0,-5", "negative volume in 1 row: 2020-01-03 (line 3)"),
    ],
)
def test_bad_rows_are_rejected_by_name(tmp_path, line, new, expect):
    path = _write(tmp_path, _mutate(line, new))
    with pytest.raises(PriceDataError) as e:
        load_prices(path)
    assert expect in str(e.value)
    assert str(e.value).startswith("TEST: ")
    assert not describe_prices(path).ok


def test_every_problem_is_reported_at_once(tmp_path):
    text = _mutate(2, "2020-01-02,10.0,9.0,9.5,10.5,1000")
    text = text.replace("2020-01-08,12.0", "2020-01-08,zz")
    with pytest.raises(PriceDataError) as e:
        load_prices(_write(tmp_path, text))
    assert "High below Low in 1 row: 2020-01-02 (line 2)" in str(e.value)
    assert "non-numeric open in 1 row: 2020-01-08 (line 6)" in str(e.value)


def test_many_bad_rows_show_first_five_and_count(tmp_path):
    dates = pd.bdate_range("2020-01-01", periods=12)
    lines = ["Date,Open,High,Low,Close"] + [f"{d:%Y-%m-%d},1,0.5,1,1" for d in dates]
    with pytest.raises(PriceDataError) as e:
        load_prices(_write(tmp_path, "\n".join(lines)))
    msg = str(e.value)
    assert "High below Low in 12 rows: 2020-01-01 (line 2), 2020-01-02 (line 3)" in msg
    assert "2020-01-07 (line 6), ..." in msg and "2020-01-08" not in msg


def test_missing_columns_named_with_found_columns(tmp_path):
    with pytest.raises(
        PriceDataError, match=r"missing column\(s\) high, low; found columns \['Date', 'Open', 'Close'\]"
    ):
        load_prices(_write(tmp_path, "Date,Open,Close\n2020-01-02,1,2\n"))
    with pytest.raises(PriceDataError, match=r"missing column\(s\) date"):
        load_prices(pd.DataFrame({"Open": [1.0], "High": [1.0], "Low": [1.0], "Close": [1.0]}), symbol="X")


def test_structural_errors(tmp_path):
    with pytest.raises(PriceDataError, match="ambiguous columns"):
        load_prices(_write(tmp_path, "Date,Open,open,High,Low,Close\n2020-01-02,1,1,2,1,1\n"))
    with pytest.raises(PriceDataError, match="no data rows"):
        load_prices(_write(tmp_path, "Date,Open,High,Low,Close\n"))
    with pytest.raises(PriceDataError, match="unsupported file type"):
        load_prices(_write(tmp_path, GOOD, "prices.xlsx"))
    with pytest.raises(FileNotFoundError):
        load_prices(tmp_path / "nope.csv")
    with pytest.raises(PriceDataError, match="adjusted=True needs adjusted columns"):
        load_prices(_write(tmp_path, GOOD), adjusted=True)
    with pytest.raises(PriceDataError, match="file path or a pandas DataFrame"):
        load_prices(42)


def test_open_outside_range_is_a_warning_not_an_error(tmp_path, caplog):
    path = _write(tmp_path, _mutate(3, "2020-01-03,12.0,11.5,10.0,11.0,1100"))
    with caplog.at_level(logging.WARNING, logger="jaxsim.data.prices"):
        p = load_prices(path)
    assert len(p) == 5
    assert "Open outside [Low, High] in 1 row: 2020-01-03 (line 3)" in caplog.text
    (warn,) = describe_prices(path).problems
    assert warn.kind == "open_outside_range" and not warn.fatal


def test_hand_built_prices_are_validated():
    d = np.array(["2020-01-02", "2020-01-03"], dtype="datetime64[D]")
    ok = Prices("X", d, [1, 2], [2, 3], [0.5, 1], [1.5, 2.5])
    assert ok.close.dtype == np.float32 and not ok.close.flags.writeable
    with pytest.raises(PriceDataError, match="high below low: 1 row: 2020-01-03"):
        Prices("X", d, [1, 2], [2, 0.5], [0.5, 1], [1.5, 2.5])
    with pytest.raises(PriceDataError, match="not strictly ascending"):
        Prices("X", d[::-1], [1, 2], [2, 3], [0.5, 1], [1.5, 2.5])
    with pytest.raises(PriceDataError, match="one length"):
        Prices("X", d, [1, 2, 3], [2, 3], [0.5, 1], [1.5, 2.5])
    with pytest.raises(PriceDataError, match="close is NaN or infinite: 1 row: 2020-01-02"):
        Prices("X", d, [1, 2], [2, 3], [0.5, 1], [np.nan, 2.5])
    with pytest.raises(PriceDataError, match="volume is negative"):
        Prices("X", d, [1, 2], [2, 3], [0.5, 1], [1.5, 2.5], volume=[1, -1])
    assert issubclass(PriceDataError, JaxsimError)


# ---------------------------------------------------------------- explicit cleaning


def test_clean_repairs_and_reports_every_change(tmp_path):
    text = GOOD + "2020-01-09,12.0,11.0,12.5,12.2,1500\n"  # line 7: High < Low -> swapped
    text += "2020-01-10,12.2,12.4,12.0,12.9,1600\n"  # line 8: Close above High -> widened
    text += "2020-01-13,1,2,1,abc,1\n"  # line 9: non-numeric -> dropped
    text += "2020-01-06,99,100,98,99.5,1\n"  # line 10: duplicate of line 4, kept
    path = _write(tmp_path, text)
    with pytest.raises(PriceDataError):
        load_prices(path)
    p = load_prices(path, clean=True)
    rep = p.cleaning
    assert (rep.rows_in, rep.rows_out) == (9, 7)
    actions = dict(rep.changes)
    assert actions["dropped rows: non-numeric close"] == ("2020-01-13 (line 9)",)
    assert actions["dropped rows: duplicate date (kept the last occurrence)"] == ("2020-01-06 (line 4)",)
    assert actions["swapped High and Low: High below Low"] == ("2020-01-09 (line 7)",)
    assert actions["widened High/Low to contain Open/Close"] == ("2020-01-10 (line 8)",)
    assert len(p) == 7 and str(p.dates[-1]) == "2020-01-10"
    i = int(np.flatnonzero(p.dates == np.datetime64("2020-01-06"))[0])
    assert p.close[i] == np.float32(99.5)  # the last occurrence won
    assert (p.high[-2], p.low[-2]) == (np.float32(12.5), np.float32(11.0))
    assert p.high[-1] == np.float32(12.9)
    assert "9 rows in, 7 rows out" in str(rep)


def test_clean_on_good_data_changes_nothing(tmp_path):
    p = load_prices(_write(tmp_path, GOOD), clean=True)
    assert p.cleaning.changes == () and len(p) == 5


# ---------------------------------------------------------------- history requirement


def test_required_rows_formula():
    assert required_rows(50) == 59
    assert (
        required_rows(50, 512) == 570
    )  # docs/backtest.md#required-rows: "50 sims + 7 horizons + context 512 ~ 570 rows"
    assert required_rows(1) == 10
    with pytest.raises(ConfigError):
        required_rows(0)


def test_check_history_boundary():
    p = jaxsim.sample("AAPL").tail(59)
    check_history(p, 50)
    with pytest.raises(InsufficientHistoryError, match="need 60 rows .* only 59 rows"):
        check_history(p, 50, min_context=2)
    with pytest.raises(InsufficientHistoryError, match="50 simulations"):
        check_history(p.tail(58), 50)


# ---------------------------------------------------------------- bundled samples


def test_sample_aapl_matches_file_and_split_is_raw():
    p = jaxsim.sample("aapl")
    rows = _raw_rows(Path(jaxsim.__file__).parent / "data" / "sample_data" / "AAPL.csv.gz")
    assert p.symbol == "AAPL" and len(p) == len(rows) == 3270
    assert (str(p.dates[0]), str(p.dates[-1])) == ("2000-03-01", "2013-03-01")
    assert p.close[0] == np.float32(130.31) and p.close[-1] == np.float32(430.47)
    i = int(np.flatnonzero(p.dates == np.datetime64("2005-02-28"))[0])
    assert p.close[i - 1] == np.float32(88.99) and p.close[i] == np.float32(44.86)


def test_sample_adjusted_scales_by_adj_close():
    rows = _raw_rows(Path(jaxsim.__file__).parent / "data" / "sample_data" / "GOOG.csv.gz")
    p = jaxsim.sample("GOOG", adjusted=True)
    adj = np.array([r["Adj Close"] for r in rows], float)
    factor = adj / np.array([r["Close"] for r in rows], float)
    np.testing.assert_allclose(p.close, adj, rtol=1e-6)
    np.testing.assert_allclose(p.open, np.array([r["Open"] for r in rows], float) * factor, rtol=1e-6)
    np.testing.assert_array_equal(p.volume, np.float32([r["Volume"] for r in rows]))


def test_available_samples_and_unknown_symbol():
    names = jaxsim.available_samples()
    assert names == ("AAPL", "GOOG", "IBM", "MSFT")
    for n in names:
        assert len(jaxsim.sample(n)) >= required_rows(50, 512)
    with pytest.raises(ConfigError, match="no bundled sample 'TSLA'; available samples: AAPL, GOOG, IBM, MSFT"):
        jaxsim.sample("TSLA")


# ---------------------------------------------------------------- property: row order never matters


@settings(max_examples=25, deadline=None)
@given(st.permutations(range(20)), st.integers(0, 2**31 - 1))
def test_any_row_order_loads_to_the_same_series(perm, seed):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 20)))
    df = pd.DataFrame(
        {
            "date": pd.bdate_range("2019-06-03", periods=20),
            "open": close * 1.001,
            "high": close * 1.02,
            "low": close * 0.98,
            "close": close,
        }
    )
    a = load_prices(df, symbol="P")
    b = load_prices(df.iloc[list(perm)], symbol="P")
    np.testing.assert_array_equal(a.dates, b.dates)
    np.testing.assert_array_equal(a.close, b.close)
    np.testing.assert_array_equal(a.close, close.astype(np.float32))


def test_time_zones_keep_the_local_calendar_date():
    # yfinance-style exports carry UTC offsets that change with daylight saving time
    df = pd.DataFrame(
        {
            "Date": ["2020-03-06 00:00:00-05:00", "2020-03-09 00:00:00-04:00", "2020-03-10 00:00:00+09:00"],
            "Open": [1.0, 2, 3],
            "High": [2.0, 3, 4],
            "Low": [1.0, 1, 1],
            "Close": [1.5, 2, 3],
        }
    )
    p = load_prices(df, symbol="TZ")
    assert [str(d) for d in p.dates] == ["2020-03-06", "2020-03-09", "2020-03-10"]
    idx = pd.DatetimeIndex(["2021-01-04", "2021-01-05"]).tz_localize("Asia/Tokyo")
    q = load_prices(df.iloc[:2].drop(columns="Date").set_index(idx), symbol="TZ")
    assert [str(d) for d in q.dates] == ["2021-01-04", "2021-01-05"]
