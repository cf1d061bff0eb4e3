"""Runtime plumbing every notebook shares: Python check, quiet logs, QUICK mode, seeding,
checks that explain themselves, and the memory guard (TFF's worker processes: `workers`).

Import this module *before* TensorFlow so the log level takes effect.
"""
import json
import os
import random
import re
import sys
import time
from pathlib import Path

# TensorFlow reads this when its C++ core loads. 3 also hides the spurious "Unable to register
# cuDNN/cuFFT/cuBLAS factory" lines TF 2.14 prints on every CPU import; real failures still raise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


class UnsupportedPythonError(RuntimeError):
    """This Python cannot run TensorFlow Federated."""


def supported_python(text):
    """((3, low), (3, high)), the oldest and newest minor versions that `requires-python` in the text of
    pyproject.toml allows. Read with a regular expression: tomllib is missing on the Pythons refused here."""
    match = re.search(r'^requires-python\s*=\s*"\s*>=\s*3\.(\d+)\s*,\s*<\s*3\.(\d+)\s*"', text, re.M)
    if not match or int(match.group(1)) >= int(match.group(2)):
        raise ValueError('pyproject.toml must state the course\'s Python as requires-python = ">=3.A,<3.B" '
                         '(B > A), the form helpers/runtime.py and scripts/setup_env.sh read')
    return (3, int(match.group(1))), (3, int(match.group(2)) - 1)


def _versions(low, high):
    return f"{low[0]}.{low[1]}" if low == high else f"{low[0]}.{low[1]}-{high[0]}.{high[1]}"


def _read_pyproject():
    try:
        return PYPROJECT.read_text()
    except FileNotFoundError:
        raise RuntimeError(f"{PYPROJECT} is missing: helpers/ reads the course's Python from the pyproject.toml "
                           "beside it. Use the course from its repository (`make setup` installs it editable).") \
            from None


#: The course's Python (oldest, newest), from pyproject.toml's requires-python: stated once, there.
SUPPORTED_PYTHON = supported_python(_read_pyproject())


def check_python(version_info=None):
    """Raise `UnsupportedPythonError` unless this Python is one pyproject.toml's requires-python allows."""
    major, minor = tuple(version_info or sys.version_info)[:2]
    low, high = SUPPORTED_PYTHON
    if not low <= (major, minor) <= high:
        wanted, newest = _versions(low, high), f"{high[0]}.{high[1]}"
        raise UnsupportedPythonError(
            f"This course needs Python {wanted} (TensorFlow Federated 0.87.0, its newest release, does not "
            f"install on 3.12 or newer, and the course's pinned packages are resolved for {wanted}); this is "
            f"Python {major}.{minor}. Install Python {newest} (e.g. `pyenv install {newest}`, "
            f"`apt install python{newest}` or `conda create -n tff python={newest}`) and run `make setup` "
            f"again, which builds the course's .venv with it."
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
    the explanation instead of a traceback. Returns nothing, so a cell that ends with a check
    shows only the check's line."""
    if condition:
        print(f"✓ {what}")
        return
    message = f"⚠ expected: {what}" + (f"\n  why: {why}" if why else "")
    if STRICT:
        raise CheckFailed(message)
    print(message)

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


# --- Memory: a session's limit, and the kernels that share it -------------------------------
# On Binder or a JupyterHub every kernel of a session shares one memory limit (a cgroup, 2 GB on
# mybinder.org). A notebook's kernel keeps its memory after the last cell, and JupyterLab keeps it
# running while its tab is open; a new notebook whose peak does not fit gets killed mid-run.

#: Each notebook's peak (kernel + TFF workers, MB) measured by `make bench` in full mode (README).
PEAK_MB = json.loads(Path(__file__).with_name("peak_memory.json").read_text())


class NotEnoughMemory(RuntimeError):
    """This notebook's measured peak does not fit in what the session's memory limit leaves."""


def _read(path):
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


# Each cgroup version's files: (mount points, limit, usage, the memory.stat key of page cache)
_CGROUP_FILES = {"v1": (("/sys/fs/cgroup/memory",), "memory.limit_in_bytes", "memory.usage_in_bytes",
                        "total_cache"),
                 "v2": (("/sys/fs/cgroup", "/sys/fs/cgroup/unified"), "memory.max", "memory.current",
                        "file")}


def memory_cgroups():
    """[(folder, version)] of the memory cgroup this process runs in, innermost first, up to the root."""
    found = []
    for line in (_read("/proc/self/cgroup") or "").splitlines():
        _, controllers, path = line.split(":", 2)
        version = "v2" if controllers == "" else "v1" if "memory" in controllers.split(",") else None
        if version is None:
            continue
        for root in _CGROUP_FILES[version][0]:
            parts = [p for p in path.split("/") if p]
            for depth in range(len(parts), -1, -1):
                if Path(root, *parts[:depth]).is_dir():
                    found.append((Path(root, *parts[:depth]), version))
    return found


def memory_limit():
    """(limit, in use) in bytes of the memory cgroup this process runs in (v1 or v2; the smallest limit
    on the way to the root, page cache not counted as in use), or None where no limit is set."""
    found = []
    for folder, version in memory_cgroups():
        _, limit_file, usage_file, cache = _CGROUP_FILES[version]
        limit, usage = _read(folder / limit_file), _read(folder / usage_file)
        if limit and limit.isdigit() and int(limit) < 2**60 and usage:
            stat = dict(line.split() for line in (_read(folder / "memory.stat") or "").splitlines())
            found.append((int(limit), int(usage) - int(stat.get(cache, 0))))
    return min(found) if found else None


def _memory_with_workers(proc):
    import psutil

    total = 0
    for p in [proc] + proc.children(recursive=True):
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def other_kernels():
    """[(notebook or None, pid, bytes held with its workers)] of the other Jupyter kernels that share
    this process's memory limit (its cgroups), largest first."""
    import psutil

    found, mine = [], _read("/proc/self/cgroup")
    for proc in psutil.process_iter():
        try:
            if proc.pid == os.getpid() or "ipykernel_launcher" not in " ".join(proc.cmdline()):
                continue
            if _read(f"/proc/{proc.pid}/cgroup") != mine:
                continue
            notebook = os.path.basename(proc.environ().get("JPY_SESSION_NAME", "")) or None
            found.append((notebook, proc.pid, _memory_with_workers(proc)))
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return sorted(found, key=lambda k: -k[2])


def ensure_memory_fits(notebook=None):
    """Raise NotEnoughMemory, saying which kernels to shut down, when this notebook's measured peak
    would not fit in the session's memory limit; do nothing where no limit is set (a laptop), or
    when COURSE_MEMORY_CHECK=0."""
    import psutil

    found = memory_limit() if _flag("COURSE_MEMORY_CHECK", "1") else None
    if found is None:
        return
    limit, used = found
    notebook = notebook or os.path.basename(os.environ.get("JPY_SESSION_NAME", ""))
    peak = PEAK_MB.get(notebook[:2], max(PEAK_MB.values())) * 2**20
    need = max(0, peak - _memory_with_workers(psutil.Process()))
    if used + need <= limit:
        return
    mb = lambda n: f"{n / 2**20:,.0f} MB"  # noqa: E731
    others = "".join(f"\n  - {name or f'a kernel with no notebook (pid {pid})'}: {mb(held)}"
                     for name, pid, held in other_kernels())
    raise NotEnoughMemory(
        f"This notebook needs about {mb(peak)} at its peak, but this session is limited to "
        f"{mb(limit)} and {mb(used)} are in use: its kernel would be killed mid-run. "
        + (f"Other notebooks' kernels hold:{others}\n" if others else "")
        + "Shut down the kernels you no longer need, then run this cell again: in each notebook's tab, "
        "Kernel → Shut Down Kernel (closing the tab does it too in the course's JupyterLab), or "
        "the Running Terminals and Kernels panel in the left sidebar. To run anyway (and risk "
        "the kernel being killed): run `%env COURSE_MEMORY_CHECK=0` first.")


def setup(seed=DEFAULT_SEED, threads_per_op=None):
    """One call at the top of every notebook: check Python, quiet TF, seed.
    (Importing `helpers` has already stopped workers left by killed kernels, arranged for this
    process's own to stop at exit, and checked that this notebook fits in the session's memory limit.)

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


class Timer:
    """`with Timer() as t: ...` then `t.seconds`."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False
