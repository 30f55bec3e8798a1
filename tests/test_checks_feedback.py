"""Degenerate-setup warnings (jaxsim.report.checks) and the elapsed-time line (jaxsim.cli.feedback)."""

import io

import pytest

from jaxsim.cli.feedback import elapsed
from jaxsim.report.checks import context_lengths, earliest_context, setup_warnings


def test_earliest_context_geometry():
    # Origins t = T-N-7 .. T-2 see t-1 returns: 19 rows and 10 simulations leave the oldest one return.
    assert earliest_context(19, 10) == 1
    assert earliest_context(3270, 50) == 3212
    assert earliest_context(3270, 50, max_context=256) == 256
    assert context_lengths(19, 10).tolist() == list(range(1, 17))


def test_short_context_warning():
    (w,) = setup_warnings(19, 10, symbol="X")
    assert w.startswith(
        "X: the earliest simulation forecasts from 1 return(s), less than one 64-return patch "
        "(16 of 16 forecast contexts are shorter)"
    )
    assert setup_warnings(3270, 50) == []
    assert setup_warnings(200, 50) == []  # 142 >= 64


def test_walk_forward_unfitted_warnings():
    (w,) = setup_warnings(3270, 1, protocol="walk_forward")
    assert "none has an earlier fitted window (that needs N >= 7)" in w
    (w,) = setup_warnings(3270, 10, protocol="walk_forward")
    assert "the 6 oldest of 10 simulations have no earlier fitted window" in w


def test_elapsed_line_without_a_terminal():
    buf = io.StringIO()
    with elapsed("compiling the backtest program", buf):
        pass
    lines = buf.getvalue().splitlines()
    assert lines[0] == "compiling the backtest program ..."
    assert lines[1].startswith("compiling the backtest program: done in ") and len(lines) == 2


def test_elapsed_line_on_a_terminal_redraws():
    import time

    buf = io.StringIO()
    with pytest.raises(KeyError):
        with elapsed("compiling", buf, interval=0.01, tty=True):
            time.sleep(0.1)
            raise KeyError("x")
    text = buf.getvalue()
    assert text.count("\r") >= 3 and "compiling: stopped after" in text and text.endswith("\n")
