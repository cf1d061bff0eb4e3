"""Runtime plumbing every notebook shares: Python check, quiet logs, QUICK mode,
seeding, and clean-up of the `worker_binary` process that TFF starts.

Import this module *before* TensorFlow so the log level takes effect.
"""
import atexit
import os
import random
import signal
import sys
import time
from pathlib import Path

# TensorFlow reads this when its C++ core loads. 3 also hides the spurious "Unable to register
# cuDNN/cuFFT/cuBLAS factory" lines TF 2.14 prints on every CPU import; real failures still raise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SUPPORTED_PYTHON = ((3, 9), (3, 11))  # TFF 0.87.0 declares Requires-Python >=3.9,<3.12


class UnsupportedPythonError(RuntimeError):
    """This Python cannot run TensorFlow Federated."""


def check_python(version_info=None):
    """Raise `UnsupportedPythonError` unless Python is 3.9-3.11 (what TFF supports)."""
    major, minor = tuple(version_info or sys.version_info)[:2]
    low, high = SUPPORTED_PYTHON
    if not low <= (major, minor) <= high:
        raise UnsupportedPythonError(
            f"This course needs Python 3.9-3.11 (TensorFlow Federated 0.87.0, its newest release, "
            f"does not install on other versions); this is Python {major}.{minor}. Install Python 3.11 "
            f"(e.g. `pyenv install 3.11`, `apt install python3.11` or `conda create -n tff python=3.11`) "
            f"and run `make setup` again, which builds the course's .venv with it."
        )


def _flag(name, default="0"):
    value = os.environ.get(name, default).strip().lower()
    return value not in ("", "0", "false", "no", "off")


#: True when COURSE_QUICK=1: notebooks shrink rounds and clients (same code paths) so CI is fast.
QUICK = _flag("COURSE_QUICK")

DEFAULT_SEED = 42

#: True under CI (tests set COURSE_STRICT=1): a teaching check that does not hold raises.
STRICT = _flag("COURSE_STRICT")


class CheckFailed(AssertionError):
    """A claim a notebook verifies did not hold (raised only when STRICT)."""


def check(condition, what, why=""):
    """Verify a claim in a teaching cell: print "✓ what" when it holds; otherwise "⚠ expected: what",
    with `why` (the reason to expect it, and which setting may have changed it). Under CI
    (COURSE_STRICT=1) a claim that fails raises `CheckFailed`; a learner who changed a setting gets
    the explanation instead of a traceback."""
    if condition:
        print(f"✓ {what}")
        return True
    message = f"⚠ expected: {what}" + (f"\n  why: {why}" if why else "")
    if STRICT:
        raise CheckFailed(message)
    print(message)
    return False

#: Where notebooks save what later notebooks or learners reuse (git-ignored).
ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "artifacts"


def set_seed(seed=DEFAULT_SEED):
    """Seed Python, NumPy and TensorFlow so a run can be repeated exactly."""
    import numpy as np
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    tf.keras.utils.set_random_seed(seed)


def setup(seed=DEFAULT_SEED, threads_per_op=None):
    """One call at the top of every notebook: check Python, quiet TF, seed, clean up on exit.

    `threads_per_op=1` runs each TensorFlow op on one thread: faster for the many tiny batches of
    notebook 06, whose runs use the cores by training several clients at once. It takes effect only
    before TensorFlow's first op (a re-run of the setup cell keeps the setting it has).
    Returns QUICK so a notebook can write `QUICK = runtime.setup()`.
    """
    check_python()
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    if threads_per_op is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads_per_op)
        except RuntimeError:  # TensorFlow already started: the setting cannot change any more
            pass
    set_seed(seed)
    return QUICK


# --- TFF's worker_binary ---------------------------------------------------------------
# TFF runs computations in a separate C++ process (`worker_binary`) that it starts lazily as a
# child of this Python process and never stops: it outlives the interpreter (and holds any pipe
# the interpreter's stdout was). We stop the ones *this* process started, by pid, at exit.


def _is_worker(proc):
    import psutil

    try:
        cmd = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return bool(cmd) and os.path.basename(cmd[0]) == "worker_binary"


def worker_pids(parent_pid=None, recursive=False):
    """Pids of TFF `worker_binary` processes started by `parent_pid` (default: this process)."""
    import psutil

    try:
        parent = psutil.Process(parent_pid or os.getpid())
        children = parent.children(recursive=recursive)
    except psutil.NoSuchProcess:
        return []
    return sorted(p.pid for p in children if _is_worker(p))


def stop_processes(pids, timeout=5.0):
    """Stop processes by pid: SIGINT (TFF's own way), then SIGKILL after `timeout` s."""
    import psutil

    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGINT)
            procs.append(proc)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=timeout)
    return [p.pid for p in procs]


def stop_workers():
    """Stop the `worker_binary` processes this Python process started; returns their pids."""
    return stop_processes(worker_pids())


atexit.register(stop_workers)


class Timer:
    """`with Timer() as t: ...` then `t.seconds`."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False
