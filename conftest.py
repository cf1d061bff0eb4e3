"""Test-session plumbing: quick mode by default, and no TFF `worker_binary` left behind.

TFF starts `worker_binary` as a child of whichever process runs a computation (this pytest
process, or a notebook kernel that nbval started) and never stops it. We make pytest a *child
subreaper* (Linux), so a worker orphaned by a finished kernel is re-parented to pytest instead of
to init; at the end of the session any worker still running below pytest is a leak: it is stopped
by its pid and the session fails.
"""
import ctypes
import os
import sys
import time

import pytest

os.environ.setdefault("COURSE_QUICK", "1")  # kernels inherit it; `make test-full` sets 0
os.environ.setdefault("COURSE_STRICT", "1")  # every runtime.check in a notebook must hold under test

from helpers import workers  # noqa: E402

PR_SET_CHILD_SUBREAPER = 36


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items):
    """nbval's items (notebooks run in kernels) are the slow tier, whichever path collected them."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)


def pytest_sessionstart(session):
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _leaked_workers(grace_seconds=15.0):
    """Workers below pytest not started by pytest itself, after giving kernels time to exit."""
    own = set(workers.worker_pids())  # this process's own: the course's atexit hook stops them
    deadline = time.monotonic() + grace_seconds
    while True:
        leaked = [pid for pid in workers.worker_pids(recursive=True) if pid not in own]
        if not leaked or time.monotonic() > deadline:
            return leaked
        time.sleep(0.5)


def _reap_exited_children():
    """Collect the exit status of finished children (orphans adopted as subreaper included),
    so none lingers as a zombie once pytest ends."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def pytest_sessionfinish(session, exitstatus):
    workers.stop_own_workers()
    leaked = _leaked_workers()
    if leaked:
        workers.stop_processes(leaked)
        sys.stderr.write(
            f"\nFAILED: {len(leaked)} TFF worker_binary process(es) outlived the code that started "
            f"them (pids {leaked}); stopped now. A notebook kernel or test leaks workers.\n"
        )
        session.exitstatus = 1
    _reap_exited_children()
