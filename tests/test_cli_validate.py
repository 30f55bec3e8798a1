"""jaxsim.cli.validate: every bad argument is a one-line UsageError before any compute."""

import json

import pytest

from jaxsim.cli.app import build_parser
from jaxsim.cli.validate import (
    EXIT_CODES_HELP,
    UsageError,
    check_out,
    find_symbol_files,
    parse_symbols,
    validate_backtest,
)

GOOD = "Date,Open,High,Low,Close,Volume\n2020-01-02,10.0,11.0,9.5,10.5,1000\n"
SAMPLES = ("AAPL", "GOOG", "IBM", "MSFT")


def _args(*argv):
    return build_parser().parse_args(["backtest", *argv])


def _error(*argv, **kw) -> str:
    with pytest.raises(UsageError) as e:
        validate_backtest(_args(*argv), available_samples=SAMPLES, **kw)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_counts():
    assert _error("--samples", "0") == "--samples must be >= 1, got 0"
    assert _error("--sims", "0") == "--sims must be >= 1, got 0"
    assert _error("--sims", "-3") == "--sims must be >= 1, got -3"
    assert _error("--max-context", "0") == "--max-context must be >= 1, got 0"
    assert _error("--symbols", "A", "--chunk-size", "0") == "--chunk-size must be >= 1, got 0"


def test_paths(tmp_path):
    assert "is a folder; give one price file" in _error("--csv", str(tmp_path))
    assert _error("--csv", str(tmp_path / "nope.csv")) == f"--csv {tmp_path / 'nope.csv'}: no such file"
    (tmp_path / "x.json").write_text("{}")
    assert "unsupported file type" in _error("--csv", str(tmp_path / "x.json"))
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    assert (
        _error("--out", str(afile)) == f"--out {afile} is an existing file; give a folder (it is created when missing)"
    )
    assert _error("--out", str(afile / "sub")) == f"--out {afile / 'sub'}: {afile} is a file, not a folder"
    # missing parents are created (the folder itself is left to the writer); nothing else is
    assert validate_backtest(_args("--out", str(tmp_path / "no" / "such")), available_samples=SAMPLES) is None
    assert (tmp_path / "no").is_dir() and not (tmp_path / "no" / "such").exists()
    assert [p.name for p in (tmp_path / "no").iterdir()] == []  # the write probe is gone
    assert _error("--data-dir", str(tmp_path)) == "--data-dir is only used with --symbols"
    assert "is a folder; give a file name" in _error("--output-json", str(tmp_path))


def test_out_holding_another_symbols_results(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "metadata.json").write_text(json.dumps({"symbol": "MSFT"}))
    assert _error("IBM", "--out", str(out)) == (
        f"--out {out} holds the results of MSFT; writing IBM there would replace them (use another folder, or --force)"
    )
    validate_backtest(_args("IBM", "--out", str(out), "--force"), available_samples=SAMPLES)
    validate_backtest(_args("msft", "--out", str(out)), available_samples=SAMPLES)  # same symbol: a rerun
    with pytest.raises(UsageError, match="single-stock results of MSFT"):
        check_out(out, ["A", "B"], multi=True)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "manifest.json").write_text("{}")
    with pytest.raises(UsageError, match="multi-stock run"):
        check_out(tmp_path / "run", ["IBM"], multi=False)


def test_flags_that_do_not_apply(tmp_path):
    assert _error("--model", "naive", "--weights", "/nonexistent") == (
        "--weights applies to --model toto or kronos, not naive (the flag would be ignored)"
    )
    assert _error("--tokenizer", str(tmp_path)) == "--tokenizer applies to --model kronos only, not default"
    assert _error("--model", "naive", "--samples", "8").startswith("--samples applies to sampling models")
    assert _error("--model", "toto") == "--model toto needs --weights DIR (a converted Toto weight folder)"
    assert _error("--model", "toto", "--weights", str(tmp_path / "w")) == f"--weights {tmp_path / 'w'}: no such folder"
    assert _error("--model", "kronos", "--weights", str(tmp_path)).startswith("--model kronos needs --weights DIR and")
    assert _error("--model", "naive", "--hyperparams", str(tmp_path)).startswith("--hyperparams configures toto")
    assert _error("--hyperparams", str(tmp_path / "h")) == f"--hyperparams {tmp_path / 'h'}: no such folder"
    validate_backtest(_args("--model", "naive"), available_samples=SAMPLES)
    validate_backtest(_args("--hyperparams", str(tmp_path)), available_samples=SAMPLES)


def test_unknown_symbols_are_listed_at_once(tmp_path):
    for sym in ("AEM", "ibm"):
        (tmp_path / f"{sym}.csv").write_text(GOOD)
    assert _error("--symbols", "AEM,ZZZZ,ibm,QQQ", "--data-dir", str(tmp_path)) == (
        f"no price file in {tmp_path} for 2 symbol(s): ZZZZ, QQQ (looked for <SYMBOL>.csv/.csv.gz/.parquet)"
    )
    files = find_symbol_files(parse_symbols("aem, IBM ,AEM"), tmp_path)
    assert files == {"AEM": tmp_path / "AEM.csv", "IBM": tmp_path / "ibm.csv"}
    assert "no such folder" in _error("--symbols", "AEM", "--data-dir", str(tmp_path / "nope"))
    assert "names no symbol" in _error("--symbols", " , ")
    assert _error("ZZZZ").startswith("no bundled sample 'ZZZZ' (available: AAPL, GOOG, IBM, MSFT)")


def test_exit_codes_are_documented():
    assert "0 ok" in EXIT_CODES_HELP and "1 some stocks failed" in EXIT_CODES_HELP
    assert "2 bad input" in EXIT_CODES_HELP and "130 interrupted" in EXIT_CODES_HELP
