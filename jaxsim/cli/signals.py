"""Ctrl-C and SIGTERM for the command line: stop cleanly, exit 130, never a traceback.

Why the default behaviour is bad: Python raises KeyboardInterrupt in the main thread at the next
bytecode, which during a backtest is somewhere inside jax (a compile, a dispatch, a gc callback).
The exception unwinds through XLA's Python frames (a long traceback) or is swallowed by a callback
(the run goes on), and when it does reach the top the interpreter shuts down while XLA's own
threads still run, which crashes it ("Segmentation fault", exit 139).

What :func:`graceful_interrupts` does instead:

* SIGINT/SIGTERM only set a flag (:class:`StopRequest`); nothing is raised inside jax. The shell
  checks the flag between units of work (chunks, stocks) and stops there
  (:meth:`StopRequest.check` raises :class:`Interrupted`, caught at the top of the command).
* A compiled call cannot be interrupted, and Python runs signal handlers only between bytecodes of
  the main thread, so a watchdog thread hears the signal through :func:`signal.set_wakeup_fd`. When
  the main thread has not reached a stopping point ``grace`` seconds later (or a second signal
  arrives), the watchdog abandons the work in flight: it prints the message and ends the process
  with :func:`os._exit` (no interpreter shutdown, so no crash). Every file jaxsim writes is written
  to a temporary name and renamed, so abandoning leaves no partial result behind.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
import time

__all__ = ["EXIT_INTERRUPTED", "MESSAGE", "Interrupted", "StopRequest", "graceful_interrupts"]

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
MESSAGE = "interrupted: rerun the same command to resume"
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """Raised at a stopping point after SIGINT/SIGTERM (caught by the command line: exit 130)."""


class StopRequest:
    """Set by a signal; read by the work loop between units of work.

    Attributes:
      signum: the first signal received, or None.
    """

    def __init__(self):
        self._event = threading.Event()
        self._acknowledged = threading.Event()
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def __call__(self) -> bool:
        """True once a stop was requested (usable as a ``should_stop`` callback)."""
        return self._event.is_set()

    def set(self, signum: int | None = None) -> None:
        if self.signum is None:
            self.signum = signum
        self._event.set()

    def check(self) -> None:
        """Raise :class:`Interrupted` when a stop was requested (and tell the watchdog we stopped)."""
        if self._event.is_set():
            self._acknowledged.set()
            raise Interrupted(MESSAGE)

    @property
    def acknowledged(self) -> bool:
        return self._acknowledged.is_set()


def _abandon(stream) -> None:
    """End the process now: flush what was printed, print the message, exit 130 without shutdown."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        stream.write(f"\n{MESSAGE}\n")
        stream.flush()
    os._exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def graceful_interrupts(grace: float = 2.0, stream=None):
    """Turn SIGINT/SIGTERM into a :class:`StopRequest` for the body (see the module docstring).

    Args:
      grace: seconds the main thread gets to reach a stopping point before the work in flight is
        abandoned (a second signal abandons at once).
      stream: where the watchdog prints the message (default ``sys.stderr``).

    Yields:
      The :class:`StopRequest`. Outside the main thread (where handlers cannot be installed) it is a
      request that is never set, and the signals keep their default behaviour.
    """
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    stream = sys.stderr if stream is None else stream
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    closing = threading.Event()

    def handler(signum, frame):  # runs in the main thread, between bytecodes: only a flag
        stop.set(signum)

    def watchdog():
        seen, deadline = 0, None
        while not closing.is_set():
            timeout = 0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))
            ready, _, _ = select.select([read_fd], [], [], timeout)
            if ready:
                try:
                    data = os.read(read_fd, 64)
                except OSError:
                    return
                for byte in data:
                    if byte in _SIGNALS:
                        seen += 1
                        stop.set(byte)
                        if deadline is None:
                            deadline = time.monotonic() + grace
                if seen >= 2 and not closing.is_set():
                    _abandon(stream)
            if deadline is not None and time.monotonic() >= deadline and not stop.acknowledged and not closing.is_set():
                _abandon(stream)

    previous = {s: signal.signal(s, handler) for s in _SIGNALS}
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    thread = threading.Thread(target=watchdog, name="jaxsim-signals", daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        closing.set()
        signal.set_wakeup_fd(previous_fd)
        for s, h in previous.items():
            signal.signal(s, h)
        thread.join(timeout=1.0)
        os.close(read_fd)
        os.close(write_fd)
