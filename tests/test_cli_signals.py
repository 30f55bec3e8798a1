"""jaxsim.cli.signals: SIGINT/SIGTERM become a clean stop (exit 130, one message, no traceback).

Real subprocesses and real signals: a loop with stopping points stops at the next one; a main thread
stuck in a long call is abandoned after the grace period; a second signal ends it at once.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxsim.cli.signals import EXIT_INTERRUPTED, MESSAGE, StopRequest

ROOT = Path(__file__).resolve().parents[1]

LOOP = """
import sys, time, threading
from jaxsim.cli.signals import graceful_interrupts, Interrupted, MESSAGE
mode = sys.argv[1]
try:
    with graceful_interrupts(grace=float(sys.argv[2])) as stop:
        for i in range(600):
            print(i, flush=True)
            if mode == "stuck" and i == 3:
                threading.Event().wait(60)   # a long call that never reaches a stopping point
            stop.check()
            time.sleep(0.05)
except Interrupted:
    print("stopped at a stopping point", flush=True)
    print(MESSAGE, file=sys.stderr)
    sys.exit(130)
"""


def _start(mode, grace=30.0):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", LOOP, mode, str(grace)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for_line(proc, text, timeout=60.0):
    t0 = time.monotonic()
    lines = []
    while time.monotonic() - t0 < timeout:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.strip() == text:
            return lines
    raise AssertionError(f"never printed {text!r}: {lines}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_at_the_next_stopping_point(sig):
    proc = _start("loop")
    _wait_for_line(proc, "3")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == EXIT_INTERRUPTED
    assert "stopped at a stopping point" in out
    assert err.strip() == MESSAGE and "Traceback" not in err


def test_stuck_main_thread_is_abandoned_after_the_grace_period():
    proc = _start("stuck", grace=0.5)
    _wait_for_line(proc, "3")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == EXIT_INTERRUPTED
    assert time.monotonic() - t0 < 20  # the 60 s call was abandoned
    assert "stopped at a stopping point" not in out
    assert err.strip() == MESSAGE and "Traceback" not in err


def test_second_signal_abandons_at_once():
    proc = _start("stuck", grace=60.0)
    _wait_for_line(proc, "3")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == EXIT_INTERRUPTED and MESSAGE in err and "Traceback" not in err


def test_stop_request_flag():
    stop = StopRequest()
    assert not stop.requested and not stop()
    stop.check()  # nothing requested: no error
    stop.set(signal.SIGINT)
    stop.set(signal.SIGTERM)
    assert stop.requested and stop.signum == signal.SIGINT and not stop.acknowledged
    with pytest.raises(Exception, match="interrupted: rerun the same command to resume"):
        stop.check()
    assert stop.acknowledged


def test_handlers_are_restored():
    from jaxsim.cli.signals import graceful_interrupts

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with graceful_interrupts() as stop:
        assert signal.getsignal(signal.SIGINT) is not before[0]
        assert not stop.requested
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
