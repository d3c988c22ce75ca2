"""A pool of worker processes that never outlives the process that started it.

`export --jobs N` draws in N spawned processes of about 130 MB each. When the main process dies
(Ctrl-C, SIGTERM from `kill` or a scheduler, even SIGKILL, which runs no cleanup at all) the
workers must go too, and with them the multiprocessing resource tracker, which exits once every
process holding its pipe has. Three guards:

- on Linux each worker asks the kernel for SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG);
- a watchdog thread in each worker sees its parent's pid change (it was reparented) and signals
  itself, for other systems and for the case the kernel's signal cannot cover;
- in the parent, SIGTERM while the pool runs terminates the workers and exits with status 143
  (`exit_on_sigterm`, which export also uses when it draws in its own process, so a `kill`
  unwinds like Ctrl-C).

A worker signalled in the middle of a task finishes the image it is drawing, takes away any
folder it made that stayed empty, and exits; between tasks it exits at once.

The main process's handler raises SystemExit, so a `kill` stops it at once. That exception can
come out changed: a signal that lands while pybind11 (torch, matplotlib) converts arguments
becomes a TypeError ("incompatible function arguments"), which code that reports a failed
sentence would take and go on; library code may even swallow it (catch the TypeError and take
another path). So the handlers also set a flag, and `stop_if_sigterm()` ends the process where
the CLI and export catch exceptions and between export's images.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WATCH_SECONDS = 0.5  # how often a worker checks that its parent is still there
EXIT_ON_SIGTERM = 128 + signal.SIGTERM

_in_task = False
_sigterm = False  # a SIGTERM arrived: whatever unwinds now is its doing, under whichever name


def stop_if_sigterm() -> None:
    """Where an exception is caught, and between two steps of a long loop: if a SIGTERM came, stop
    now, whatever the exception is called or whether library code swallowed it."""
    if _sigterm:
        raise SystemExit(EXIT_ON_SIGTERM)


# --- the parent's side -------------------------------------------------------------------------------


@contextlib.contextmanager
def bound_pool(jobs: int):
    """A ProcessPoolExecutor (spawn: a forked child would inherit torch's thread pools, a known
    deadlock) whose `submit` runs tasks so a signal can stop them cleanly. On any exception, or on
    SIGTERM, the workers are terminated before it propagates; on success the pool shuts down
    normally."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker, initargs=(os.getpid(),))
    with exit_on_sigterm():
        try:
            yield _BoundPool(pool)
        except BaseException:
            _terminate(pool)
            raise
        pool.shutdown(wait=True)


class _BoundPool:
    def __init__(self, pool) -> None:
        self._pool = pool

    def submit(self, fn, *args):
        return self._pool.submit(_run_task, fn, *args)


@contextlib.contextmanager
def exit_on_sigterm():
    """Inside the block, SIGTERM becomes SystemExit(143) in the main thread, so `finally` and
    `except` blocks run as for Ctrl-C: bound_pool terminates its workers, atomic_write removes its
    temporary file. Outside the main thread (where Python allows no handler) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum, frame):
        global _sigterm
        _sigterm = True
        raise SystemExit(EXIT_ON_SIGTERM)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(pool) -> None:
    """Stop the workers now: SIGTERM (they unwind their task and exit), SIGKILL after 5 s."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # pid -> Process; private but stable
    for process in procs:
        with contextlib.suppress(Exception):
            process.terminate()
    deadline = time.monotonic() + 5
    for process in procs:
        with contextlib.suppress(Exception):
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1)
    pool.shutdown(wait=True, cancel_futures=True)


# --- the worker's side --------------------------------------------------------------------------------


def _init_worker(parent: int) -> None:
    """Ctrl-C is the parent's to handle (it stops the pool); SIGTERM ends the worker; the worker
    dies with `parent`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still covers it
    threading.Thread(target=_watch, args=(parent,), name="attnviz-parent-watch", daemon=True).start()


def _watch(parent: int) -> None:
    # The parent may already be gone before prctl ran; then only this notices (getppid changes).
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    while True:  # the main thread runs the handler at its next bytecode; repeat in case it was busy
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(WATCH_SECONDS)


def _on_sigterm(signum, frame) -> None:
    # Between tasks: go now. In a task: only note it; the task stops at its next step
    # (render_task calls stop_if_sigterm before and after each image), so it never stops halfway
    # through writing a file. An exception raised from here would land wherever the worker is,
    # a weakref callback or a garbage collector pass included, where Python prints it as
    # "Exception ignored" and goes on.
    global _sigterm
    _sigterm = True
    if not _in_task:
        os._exit(EXIT_ON_SIGTERM)


def _run_task(fn, *args):
    global _in_task
    _in_task = True
    try:
        result = fn(*args)
    except BaseException:
        if _sigterm:  # the task stopped for the signal and has unwound (folders it made removed)
            os._exit(EXIT_ON_SIGTERM)
        raise
    finally:
        _in_task = False
    if _sigterm:  # it came during the task's last image: nothing would ask this worker again
        os._exit(EXIT_ON_SIGTERM)
    return result
