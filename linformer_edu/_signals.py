"""Ctrl-C and SIGTERM that wait for a safe moment, so a stop never cuts a training step (or a file) in half.

    with StopSignals() as stop:             # main thread: SIGINT and SIGTERM now call stop's handler
        setup()                             # deferring=False: a signal raises at once (nothing to save yet)
        stop.deferring = True
        while stop.received is None:        # deferring: the first signal is only recorded ...
            stop.shielded = True            # ... and while shielded, every signal is (an update in progress)
            one_step()
            stop.shielded = False
    # the previous handlers are back, also after an error

SIGTERM is what `kill`, `timeout`, Slurm, Docker and notebook servers send to stop a process; by default it ends
Python at once, without running `finally` blocks. Inside these blocks it raises `Terminated` instead: a SystemExit
with status 143 (128 + 15, as a shell reports a process that SIGTERM ended), so the clean-up runs and, if nothing
catches it, Python exits with that status. Jupyter's "interrupt kernel"
sends SIGINT to the kernel, which runs cells in its main thread: the same path. In any other thread Python
delivers no signals, so nothing is installed there.
"""
import signal
import threading


class Terminated(SystemExit):
    """SIGTERM arrived (from `kill`, `timeout`, Slurm, Docker or a notebook server) where it could not wait."""

    def __init__(self):
        super().__init__(128 + signal.SIGTERM)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_terminated(signum, frame):
    raise Terminated()


class StopSignals:
    """While its `with` block runs in the main thread, SIGINT and SIGTERM go to `handle`:

    - not `deferring` (the start): raise at once, KeyboardInterrupt for SIGINT, `Terminated` for SIGTERM;
    - `deferring`: the first signal is recorded in `received` (its number), for the code to act on between steps;
      a second one raises at once ("stop now"), unless `shielded`: then it is recorded too, and the work that
      must not be cut finishes first.
    A signal set to be ignored (SIG_IGN, e.g. under nohup) stays ignored. The previous handlers are restored on
    leaving the block, however it is left.
    """

    def __init__(self):
        self.received: int | None = None
        self.deferring = False
        self.shielded = False
        self._previous = {}

    def __enter__(self):
        if _in_main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous = signal.getsignal(signum)
                if previous is not None and previous != signal.SIG_IGN:   # None: set outside Python, can't restore
                    self._previous[signum] = previous
                    signal.signal(signum, self.handle)
        return self

    def __exit__(self, *error):
        while self._previous:
            signum, previous = self._previous.popitem()
            signal.signal(signum, previous)

    def handle(self, signum, frame):
        if self.shielded or (self.deferring and self.received is None):
            self.received = self.received or signum
            return
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


class SigtermRaises:
    """While its `with` block runs in the main thread, SIGTERM raises `Terminated` instead of ending Python at
    once, so `finally` blocks run (a download removes its partial file). Only the default action is replaced: a
    handler someone installed, or SIG_IGN, is left alone."""

    def __enter__(self):
        self._previous = None
        if _in_main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            self._previous = signal.signal(signal.SIGTERM, _raise_terminated)
        return self

    def __exit__(self, *error):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

