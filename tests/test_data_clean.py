"""Cleaning users can act on: `jaxsim data clean IN OUT`, as_prices, the data error's hint."""

import numpy as np
import pandas as pd
import pytest

from jaxsim.cli.app import main
from jaxsim.data.prices import Prices, as_prices, load_prices, sample
from jaxsim.data.writing import save_prices
from jaxsim.errors import ConfigError, PriceDataError

GOOD = """Date,Open,High,Low,Close,Volume
2020-01-02,10.0,11.0,9.5,10.5,1000
2020-01-03,10.5,11.5,10.0,11.0,1100
2020-01-06,11.0,12.0,10.5,11.5,1200
"""
BAD = GOOD + "2020-01-07,11.5,11.0,12.5,12.0,1300\n2020-01-07,1,2,1,x,5\n2020-01-08,0.1,0.3,0.1,0.2,7\n"


def _same(a: Prices, b: Prices):
    assert a.symbol == b.symbol and np.array_equal(a.dates, b.dates)
    for f in ("open", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f


def test_error_names_the_commands_that_repair(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(BAD)
    with pytest.raises(PriceDataError) as e:
        load_prices(path)
    assert "`jaxsim data clean IN OUT` writes a cleaned file" in str(e.value)
    assert "`jaxsim backtest --clean` cleans in memory" in str(e.value)
    assert "data show --clean" not in str(e.value)


def test_written_file_loads_back_bit_identical(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(BAD)
    cleaned = load_prices(path, clean=True)
    out = save_prices(cleaned, tmp_path / "BAD_clean.csv")
    _same(load_prices(out, symbol="BAD"), cleaned)
    text = out.read_text().splitlines()
    assert text[0] == "Date,Open,High,Low,Close,Volume"
    assert text[-1] == "2020-01-08,0.1,0.3,0.1,0.2,7"  # shortest float32 repr, not 0.100000001
    assert len(text) == 1 + len(cleaned) == 6
    aapl = sample("AAPL")
    gz = save_prices(aapl, tmp_path / "AAPL.csv.gz")
    _same(load_prices(gz), aapl)


def test_data_clean_command(tmp_path, capsys):
    src, dst = tmp_path / "bad.csv", tmp_path / "good.csv"
    src.write_text(BAD)
    assert main(["data", "clean", str(src), str(dst)]) == 0
    out = capsys.readouterr().out
    assert "cleaning: 6 rows in, 5 rows out" in out
    assert "- swapped High and Low: High below Low in 1 row: 2020-01-07 (line 5)" in out
    assert f"wrote 5 rows (2020-01-02 .. 2020-01-08) to {dst}" in out
    _same(load_prices(dst, symbol="BAD"), load_prices(src, clean=True))
    assert main(["data", "show", str(dst)]) == 0  # the cleaned file is accepted as is
    capsys.readouterr()
    assert main(["data", "clean", str(src), str(dst)]) == 2  # exists: refused without --force
    assert "exists; use --force" in capsys.readouterr().err
    assert main(["data", "clean", str(src), str(dst), "--force"]) == 0
    assert main(["data", "clean", str(src), str(tmp_path)]) == 2
    assert main(["data", "clean", "AAPL", str(tmp_path / "a.csv")]) == 0
    assert "cleaning: no changes (3270 rows)" in capsys.readouterr().out


def test_as_prices_accepts_every_source(tmp_path):
    path = tmp_path / "AAA.csv"
    path.write_text(GOOD)
    p = load_prices(path)
    _same(as_prices(path), p)
    _same(as_prices(str(path)), p)
    assert as_prices(p) is p
    assert as_prices(p, symbol="ZZ").symbol == "ZZ"
    frame = pd.read_csv(path)
    assert as_prices(frame, symbol="AAA").close.tolist() == p.close.tolist()
    _same(as_prices("aapl"), sample("AAPL"))
    with pytest.raises(PriceDataError, match="is a folder, not a price file"):
        as_prices(tmp_path)
    with pytest.raises(FileNotFoundError, match="neither a price file nor a bundled sample"):
        as_prices("NOPE")
    with pytest.raises(PriceDataError, match="cannot read prices from a int"):
        as_prices(3)
    with pytest.raises(ConfigError):
        as_prices(p, adjusted=True)
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD)
    assert len(as_prices(bad, clean=True)) == 5
