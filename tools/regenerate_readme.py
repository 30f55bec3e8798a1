"""Reruns the README's example commands and rewrites the outputs it quotes, so they never go stale.

Every quoted output in README.md sits between a pair of markers naming its generator here::

    <!-- BEGIN generated: stats -->
    ...                       (rewritten by this script; edit the generator, not the text)
    <!-- END generated: stats -->

Run from the repository root::

    PYTHONPATH=. python tools/regenerate_readme.py          # rewrite README.md in place
    PYTHONPATH=. python tools/regenerate_readme.py --check  # exit 1, with a diff, when README.md differs

About 90 s on 2 CPU cores: the quick start's default run (the embedded model on every day of the AAPL
sample, served from the compile cache when it holds the program) and one naive-forecaster backtest of
the bundled AAPL sample (30 simulations, legacy), compiled once and shared by the command-line and the
Python examples (the same program and key).

Not regenerated (each needs the Toto or Kronos models, or the benchmarks, and takes minutes on CPUs):
the model and benchmark figures in the "Models and weights" and "Benchmarks" sections
(``jaxsim bench``, ``tools/*_parity.py``), the plots (``tools/readme_plots.py``) and the report
screenshots (``tools/report_screenshots.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import functools
import io
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
MARKED = re.compile(
    r"(?P<begin><!-- BEGIN generated: (?P<name>[\w-]+) -->)(?P<body>.*?)(?P<end><!-- END generated: (?P=name) -->)",
    re.DOTALL,
)
BACKTEST_ARGV = ["backtest", "AAPL", "--model", "naive", "--sims", "30", "--protocol", "legacy", "--no-cache"]
STATS_COLUMNS = ["simple", "buy_hold", "maxdiff"]  # three of the eight: the README's width


def _cli(*argv: str) -> tuple[int, str, str]:
    """``jaxsim ARGV`` in this process: exit code, stdout, stderr."""
    from jaxsim.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as e:  # argparse errors
            code = e.code
    return code, out.getvalue(), err.getvalue()


@functools.cache
def _naive_result():
    """The README's Python example: the naive forecaster on AAPL, 30 simulations, legacy, key 0."""
    import jax

    import jaxsim

    return jaxsim.backtest("AAPL", jaxsim.forecasters.naive(), n_sims=30, protocol="legacy", key=jax.random.key(0))


def _fenced(text: str) -> str:
    return "\n```\n" + text.rstrip("\n") + "\n```\n"


def data_show() -> str:
    """``jaxsim data show AAPL`` (a fenced block, with the command)."""
    code, out, err = _cli("data", "show", "AAPL")
    assert code == 0, err
    return _fenced("$ jaxsim data show AAPL\n" + out)


def flag_typo() -> str:
    """The one-line error of a mistyped flag (inline code)."""
    code, _, err = _cli("backtest", "--simz", "3")
    assert code == 2, err
    return f"`{err.strip()}`"


def quickstart() -> str:
    """``jaxsim backtest AAPL``: the default run (the embedded model, every day, walk_forward; a fenced block)."""
    code, out, err = _cli("backtest", "AAPL")
    assert code == 0, err
    return _fenced("$ jaxsim backtest AAPL\n" + out)


def cli_verdict() -> str:
    """The verdict line of ``jaxsim backtest AAPL --model naive --sims 30`` (inline code)."""
    code, out, err = _cli(*BACKTEST_ARGV)
    assert code == 0, err
    (line,) = [s for s in out.splitlines() if s.startswith("Verdict:")]
    return f"`{line}`"


def stats() -> str:
    """``result.stats()``, three of the eight columns (a fenced block)."""
    return _fenced(_naive_result().stats()[STATS_COLUMNS].to_string())


def uncertainty() -> str:
    """``print(result.uncertainty(jax.random.key(0)))`` (a fenced block)."""
    import jax

    return _fenced(str(_naive_result().uncertainty(jax.random.key(0))))


GENERATORS = {
    "quickstart": quickstart,
    "data-show": data_show,
    "flag-typo": flag_typo,
    "cli-verdict": cli_verdict,
    "stats": stats,
    "uncertainty": uncertainty,
}


def marker_names(text: str) -> list[str]:
    """The generator names of ``text``'s marked spans, in order."""
    return [m["name"] for m in MARKED.finditer(text)]


def replace_generated(text: str, outputs: dict[str, str]) -> str:
    """``text`` with the body of every marked span replaced by ``outputs[name]`` (markers kept).

    Raises:
      KeyError: a span whose name has no output.
    """
    unknown = sorted(set(marker_names(text)) - set(outputs))
    if unknown:
        raise KeyError(f"no output for the marked span(s) {', '.join(unknown)}")
    return MARKED.sub(lambda m: m["begin"] + outputs[m["name"]] + m["end"], text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when README.md is stale")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    names = marker_names(text)
    unknown = sorted(set(names) - set(GENERATORS))
    if unknown:
        print(f"error: {args.readme}: unknown generated span(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    outputs = {name: GENERATORS[name]() for name in dict.fromkeys(names)}
    new = replace_generated(text, outputs)
    if new == text:
        print(f"{args.readme}: up to date ({len(names)} generated spans)")
        return 0
    if args.check:
        sys.stdout.writelines(
            difflib.unified_diff(
                text.splitlines(True), new.splitlines(True), f"{args.readme} (committed)", f"{args.readme} (now)"
            )
        )
        print(f"{args.readme} is stale: run PYTHONPATH=. python tools/regenerate_readme.py", file=sys.stderr)
        return 1
    args.readme.write_text(new)
    print(f"{args.readme}: rewrote {len(names)} generated spans")
    return 0


if __name__ == "__main__":
    sys.exit(main())
