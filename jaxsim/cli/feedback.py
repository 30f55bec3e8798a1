"""What the command line shows while it waits: an elapsed-time line around a long step.

On a terminal the line is redrawn in place every half second (``| compiling ... 12 s``) and ends
with the total time; when stderr is a file or a pipe it is one line at the start and one at the end,
so logs stay readable. The body may set the yielded line's ``note`` to say what happened instead
of ``done`` (``compiling the backtest program from its stored trace: loaded from XLA's cache in 0.4 s``).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time

__all__ = ["elapsed", "compile_reporter"]

_FRAMES = "|/-\\"


class _Line:
    """The line :func:`elapsed` shows; ``note`` replaces ``done`` at its end."""

    __slots__ = ("note",)

    def __init__(self):
        self.note: str | None = None


@contextlib.contextmanager
def elapsed(message: str, stream=None, *, interval: float = 0.5, tty: bool | None = None):
    """Show ``message`` with the seconds elapsed while the body runs.

    Args:
      message: what is happening, e.g. ``"compiling the backtest program"``.
      stream: where to write (default ``sys.stderr``).
      interval: seconds between redraws on a terminal.
      tty: force (True) or suppress (False) the redrawn line; default ``stream.isatty()``.
    """
    stream = sys.stderr if stream is None else stream
    if tty is None:
        tty = bool(getattr(stream, "isatty", lambda: False)())
    t0 = time.monotonic()
    done = threading.Event()

    def redraw():
        frame = 0
        while not done.wait(interval):
            frame += 1
            stream.write(f"\r{_FRAMES[frame % 4]} {message} {time.monotonic() - t0:.0f} s")
            stream.flush()

    if tty:
        stream.write(f"{_FRAMES[0]} {message}")
        stream.flush()
        thread = threading.Thread(target=redraw, name="jaxsim-elapsed", daemon=True)
        thread.start()
    else:
        stream.write(f"{message} ...\n")
        stream.flush()
    ok = False
    line = _Line()
    try:
        yield line
        ok = True
    finally:
        done.set()
        if tty:
            thread.join()
        seconds = time.monotonic() - t0
        end = f"{line.note or 'done'} in {seconds:.1f} s" if ok else f"stopped after {seconds:.1f} s"
        stream.write(f"\r{message}: {end}\x1b[K\n" if tty else f"{message}: {end}\n")
        stream.flush()


def compile_reporter(stream=None):
    """A reporter for :func:`jaxsim.engine.compilation.set_compile_reporter`: :func:`elapsed` on ``stream``."""

    def report(message: str):
        return elapsed(message, stream)

    return report
