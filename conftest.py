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


# --- The course's website (scripts/book.py): nbval's runs of the notebooks, kept as executed notebooks ---
# With COURSE_BOOK_OUTPUTS=<folder> (.ci/run sets build/book/executed/nbval), each notebook nbval runs is
# written there at the end of the session with the outputs its cells produced, so the site is built from
# `make test`'s own runs instead of running every notebook again. nbval keeps a cell's outputs in its item's
# `test_outputs`; a notebook whose cells did not all run and pass is written marked unfinished, and
# scripts/book.py executes it again. Figures get their alt text from docs/book/figure_alt.py, loaded by
# the kernels through IPYTHONDIR.
BOOK_OUTPUTS = os.environ.get("COURSE_BOOK_OUTPUTS")


class BookRuns:
    """The plugin registered when COURSE_BOOK_OUTPUTS is set: records every notebook cell nbval runs."""

    def __init__(self, helpers):
        self.helpers = helpers  # the helpers' key when the session started (book.helpers_key)
        self.runs = {}  # notebook node id -> {"path", "notebook": nbval's parsed notebook, "outputs": {...}, ...}

    def pytest_runtest_logreport(self, report):
        """A notebook cell that failed (or errored in its set-up) marks its notebook's run unfinished."""
        if report.failed and ".ipynb::" in report.nodeid:
            run = self.runs.setdefault(report.nodeid.split("::")[0], {})
            run["failed"] = run.get("failed", 0) + 1

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        yield
        outputs = getattr(item, "test_outputs", None)  # nbval's IPyNbCell: the outputs of its run
        if item.path.suffix == ".ipynb" and outputs is not None:
            run = self.runs.setdefault(item.nodeid.split("::")[0], {})
            run["path"], run["notebook"] = item.path, item.parent.nb
            run.setdefault("outputs", {})[item.cell_num] = list(outputs)

    def pytest_sessionfinish(self, session):
        import nbformat

        import book

        quick = os.environ.get("COURSE_QUICK") == "1"
        os.makedirs(BOOK_OUTPUTS, exist_ok=True)
        for run in self.runs.values():
            if "notebook" not in run:
                continue
            notebook = nbformat.from_dict(run["notebook"])
            code = [cell for cell in notebook.cells if cell.cell_type == "code"]
            for number, cell in enumerate(code):
                outputs = run["outputs"].get(number)
                cell.outputs = [nbformat.from_dict(o) for o in outputs or []]
                cell.execution_count = number + 1 if outputs is not None else None
                for output in cell.outputs:
                    if output.output_type == "execute_result":
                        output.execution_count = cell.execution_count
            complete = len(run["outputs"]) == len(code) and not run.get("failed")
            book.stamp(notebook, quick, complete=complete, helpers=self.helpers)
            nbformat.write(notebook, os.path.join(BOOK_OUTPUTS, run["path"].name))


def pytest_configure(config):
    if BOOK_OUTPUTS:
        import book

        os.environ["IPYTHONDIR"] = str(book.ipython_dir())  # the kernels record each figure's alt text
        config.pluginmanager.register(BookRuns(book.helpers_key()), "course-book-runs")
