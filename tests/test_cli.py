"""jaxsim.cli.app: `data show`, `data samples`, backtest flags; run in-process through main([...])."""

import sys

import pytest

from jaxsim.cli.app import backtest_config, build_parser, main, run_backtest
from jaxsim.config import BacktestConfig

GOOD = """Date,Open,High,Low,Close,Volume
2020-01-02,10.0,11.0,9.5,10.5,1000
2020-01-03,10.5,11.5,10.0,11.0,1100
2020-01-06,11.0,12.0,10.5,11.5,1200
"""


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_data_show_sample(capsys):
    code, out, err = _run(capsys, "data", "show", "AAPL")
    assert code == 0 and err == ""
    assert "symbol:     AAPL" in out
    assert "rows:       3270" in out
    assert "dates:      2000-03-01 .. 2013-03-01" in out
    assert "last close: 430.4700 (2013-03-01)" in out
    assert "problems:   none" in out and "verdict:    ok" in out


def test_data_show_bad_file_lists_rows_and_exits_1(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(GOOD + "2020-01-07,11.5,11.0,12.5,12.0,1300\n2020-01-07,1,2,1,x,5\n")
    code, out, _ = _run(capsys, "data", "show", str(path))
    assert code == 1
    assert "problems:   3 error(s), 0 warning(s)" in out
    assert "error: High below Low in 1 row: 2020-01-07 (line 5)" in out
    assert "error: non-numeric close in 1 row: 2020-01-07 (line 6)" in out
    assert "error: duplicate date in 2 rows: 2020-01-07 (line 5), 2020-01-07 (line 6)" in out
    assert "rejected" in out
    code, out, _ = _run(capsys, "data", "show", str(path), "--clean")
    assert code == 0
    assert "cleaning: 5 rows in, 4 rows out" in out
    assert "- swapped High and Low: High below Low in 1 row: 2020-01-07 (line 5)" in out


def test_data_show_warning_only_exits_0(tmp_path, capsys):
    path = tmp_path / "w.csv"
    path.write_text(GOOD.replace("2020-01-06,11.0", "2020-01-06,13.0"))
    code, out, _ = _run(capsys, "data", "show", str(path), "--symbol", "ZZ")
    assert code == 0 and "symbol:     ZZ" in out
    assert "warning: Open outside [Low, High] in 1 row: 2020-01-06 (line 4)" in out


def test_structural_errors_are_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "nohigh.csv"
    path.write_text("Date,Open,Low,Close\n2020-01-02,1,1,1\n")
    code, out, err = _run(capsys, "data", "show", str(path))
    assert code == 2 and out == ""
    assert err.startswith("error: NOHIGH: missing column(s) high") and err.count("\n") == 1
    code, _, err = _run(capsys, "data", "show", "no-such-thing")
    assert code == 2 and "neither a file nor a bundled sample (AAPL, GOOG, IBM, MSFT)" in err
    assert "Traceback" not in err


def test_data_show_wiki_layout(shared_dir, capsys):
    code, out, _ = _run(capsys, "data", "show", str(shared_dir / "data" / "WIKI-AAPL.csv"), "--adjusted")
    assert code == 0
    assert "order:      descending dates" in out
    assert "dates:      1980-12-12 .. 2018-03-27" in out and "(adjusted prices)" in out
    assert "last close: 168.3400 (2018-03-27)" in out


def test_data_samples(capsys):
    code, out, _ = _run(capsys, "data", "samples")
    assert code == 0
    lines = out.strip().splitlines()
    assert [l.split()[0] for l in lines] == ["AAPL", "GOOG", "IBM", "MSFT"]
    assert "2148 rows  2004-08-19 .. 2013-03-01" in lines[1]


def test_backtest_flags_and_defaults():
    p = build_parser()
    a = p.parse_args(["backtest"])
    assert (a.symbol, a.model, a.sims, a.protocol, a.seed, a.samples, a.csv, a.seeds) == (
        "AAPL",
        "default",
        None,  # resolved by apply_default_settings: the full history, walk-forward
        None,
        0,
        None,
        None,
        1,
    )
    config = backtest_config(a)
    assert (config.n_sims, config.protocol, config.n_seeds) == ("all", "walk_forward", 1)
    assert config == BacktestConfig()  # the command line's defaults are the Python API's
    # the original's settings: --like-original, and --hyperparams / --output-json users (explicit flags win)
    for argv in (["--like-original"], ["--output-json", "x.json"]):
        config = backtest_config(p.parse_args(["backtest", *argv]))
        assert (config.n_sims, config.protocol) == (50, "legacy")
    config = backtest_config(p.parse_args(["backtest", "--like-original", "--sims", "all", "--seeds", "3"]))
    assert (config.n_sims, config.protocol, config.n_seeds) == ("all", "legacy", 3)
    a = p.parse_args(
        [
            "backtest",
            "MSFT",
            "--model",
            "kronos",
            "--weights",
            "w",
            "--tokenizer",
            "t",
            "--sims",
            "7",
            "--samples",
            "64",
            "--protocol",
            "walk_forward",
            "--out",
            "o",
            "--seed",
            "3",
        ]
    )
    assert (a.symbol, a.model, a.sims, a.samples, a.protocol, a.out, a.seed) == (
        "MSFT",
        "kronos",
        7,
        64,
        "walk_forward",
        "o",
        3,
    )
    with pytest.raises(SystemExit) as e:
        p.parse_args(["backtest", "--csv", "x.csv", "--symbols", "A,B"])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        p.parse_args(["backtest", "--model", "prophet"])


def test_backtest_rejects_bad_counts(capsys):
    # checked before any compute: one line, exit 2 (no argparse usage dump)
    assert main(["backtest", "--sims", "0"]) == 2
    assert capsys.readouterr().err == "error: --sims must be >= 1, got 0\n"
    assert main(["backtest", "--samples", "0"]) == 2
    assert capsys.readouterr().err == "error: --samples must be >= 1, got 0\n"


def test_backtest_without_engine_says_so(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "jaxsim.shell.api", None)  # makes the lazy import fail
    code = run_backtest(build_parser().parse_args(["backtest"]))
    assert code == 2
    assert capsys.readouterr().err.startswith("error: the backtest engine is not available")


def test_readme_example_is_the_real_output(capsys):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    shown = readme.split("$ jaxsim data show AAPL\n", 1)[1].split("```", 1)[0]
    code, out, _ = _run(capsys, "data", "show", "AAPL")
    assert code == 0 and out == shown


def test_readme_generated_spans_are_known_and_the_cheap_ones_current():
    """tools/regenerate_readme.py owns every marked span of the README; the spans that need no backtest
    (data show, a flag typo) are checked here, the backtest ones by its --check (about 30 s)."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("regenerate_readme", root / "tools" / "regenerate_readme.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    text = (
        "a <!-- BEGIN generated: x -->old<!-- END generated: x --> b\n"
        "<!-- BEGIN generated: y -->\n1\n<!-- END generated: y -->"
    )
    assert tool.replace_generated(text, {"x": "`new`", "y": "\n2\n"}) == (
        "a <!-- BEGIN generated: x -->`new`<!-- END generated: x --> b\n<!-- BEGIN generated: y -->\n2\n"
        "<!-- END generated: y -->"
    )
    with pytest.raises(KeyError, match="y"):
        tool.replace_generated(text, {"x": ""})
    readme = (root / "README.md").read_text()
    names = tool.marker_names(readme)
    assert sorted(names) == sorted(tool.GENERATORS)  # each generated once, none unknown
    cheap = {name: tool.GENERATORS[name]() for name in ("data-show", "flag-typo")}
    current = {m["name"]: m["body"] for m in tool.MARKED.finditer(readme)}
    assert {name: current[name] for name in cheap} == cheap
