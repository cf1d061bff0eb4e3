import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

from helpers import runtime, workers


# The course's Python, as pyproject.toml states it (the tests below derive theirs from it too).
(_, LOW), (_, HIGH) = runtime.SUPPORTED_PYTHON


def test_the_supported_python_is_read_from_pyproject():
    text = runtime.PYPROJECT.read_text()
    assert runtime.supported_python(text) == runtime.SUPPORTED_PYTHON
    assert runtime.supported_python('requires-python = ">=3.9,<3.12"\n') == ((3, 9), (3, 11))
    assert runtime.supported_python('[project]\nrequires-python = ">= 3.10 , < 3.11"') == ((3, 10), (3, 10))


@pytest.mark.parametrize("text", ['requires-python = ">=3.11"', 'requires-python = "~=3.11"',
                                  'requires-python = ">=3.12,<3.11"', 'name = "x"'])
def test_a_requires_python_it_cannot_read_is_named(text):
    with pytest.raises(ValueError, match=r'requires-python = ">=3.A,<3.B"'):
        runtime.supported_python(text)


@pytest.mark.parametrize("version", [(3, HIGH + 1, 0), (3, HIGH + 2, 1), (3, LOW - 1, 18), (2, 7, 18)])
def test_unsupported_python_is_refused_with_what_to_do(version):
    with pytest.raises(runtime.UnsupportedPythonError) as err:
        runtime.check_python(version)
    message = str(err.value)
    wanted = f"3.{LOW}" if LOW == HIGH else f"3.{LOW}-3.{HIGH}"
    assert f"this is Python {version[0]}.{version[1]}" in message and f"needs Python {wanted} " in message
    assert f"pyenv install 3.{HIGH}" in message and "make setup" in message


def test_supported_python_passes():
    for minor in range(LOW, HIGH + 1):
        runtime.check_python((3, minor, 0))
    runtime.check_python()  # this one: the venv is built with it


@pytest.mark.parametrize("value,expected", [("1", True), ("true", True), ("0", False), ("", False), ("no", False)])
def test_quick_flag(monkeypatch, value, expected):
    monkeypatch.setenv("X_FLAG", value)
    assert runtime._flag("X_FLAG") is expected


def test_seeding_repeats_exactly():
    import numpy as np
    import tensorflow as tf

    runtime.set_seed(7)
    a = (np.random.rand(3), tf.random.uniform([3]).numpy())
    runtime.set_seed(7)
    b = (np.random.rand(3), tf.random.uniform([3]).numpy())
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def _run_script(code, env=None, returncode=0):
    """Run code in a fresh Python; stdout/stderr to a file, not a pipe (a leaked worker would hold a pipe open)."""
    out_path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"course-test-{os.getpid()}.out")
    with open(out_path, "w") as out:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], stdout=out,
                              stderr=subprocess.STDOUT, timeout=300, env=env)
    text = open(out_path).read()
    os.unlink(out_path)
    assert proc.returncode == returncode, text
    return text


def test_plain_script_using_the_course_leaves_no_worker_behind():
    text = _run_script("""
        from helpers import workers
        import tensorflow_federated as tff
        assert tff.federated_computation(lambda: 'hi')() == b'hi'
        print("WORKER", workers.worker_pids())
    """)
    line = next(line for line in text.splitlines() if line.startswith("WORKER"))
    pids = eval(line.split(" ", 1)[1])
    assert len(pids) == 1, text  # the script really started a worker ...
    # ... and it is gone
    assert not psutil.pid_exists(pids[0]) or psutil.Process(pids[0]).status() == psutil.STATUS_ZOMBIE


def test_stop_processes_kills_by_pid():
    proc = subprocess.Popen(["sleep", "60"])
    assert workers.stop_processes([proc.pid], timeout=2) == [proc.pid]
    assert proc.wait(timeout=5) is not None


def test_a_worker_left_by_a_killed_kernel_is_stopped_by_the_next_one(capsys):
    """SIGKILL skips `atexit`: the worker of a killed process lives on, until the next course process
    finds it (its owner is gone) and stops it by pid. Workers started by hand, or whose owner is alive,
    are left alone."""
    text = _run_script("""
        import os, signal
        from helpers import workers
        import tensorflow_federated as tff
        assert tff.federated_computation(lambda: 'hi')() == b'hi'
        print("WORKER", workers.worker_pids(), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """, returncode=-signal.SIGKILL)
    orphan = eval(next(line for line in text.splitlines() if line.startswith("WORKER")).split(" ", 1)[1])[0]
    assert psutil.pid_exists(orphan) and psutil.Process(orphan).status() != psutil.STATUS_ZOMBIE
    by_hand_env = {k: v for k, v in os.environ.items() if k != workers.OWNER_VARIABLE}
    import portpicker

    by_hand = subprocess.Popen([str(workers.worker_binary()), f"--port={portpicker.pick_unused_port()}"],
                               env=by_hand_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ours = subprocess.Popen([str(workers.worker_binary()), f"--port={portpicker.pick_unused_port()}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # (other orphans may exist: a kernel that nbgrader's tests ended may be seconds from stopping its own)
        found = workers.orphaned_workers()
        assert orphan in found and by_hand.pid not in found and ours.pid not in found, found
        assert orphan in workers.stop_orphaned_workers()
        assert "TFF worker(s) left running by a course kernel that died" in capsys.readouterr().out
        assert not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == psutil.STATUS_ZOMBIE
        assert by_hand.poll() is None and ours.poll() is None, "only the orphan is stopped"
        assert orphan not in workers.orphaned_workers()
    finally:
        workers.stop_processes([by_hand.pid, ours.pid], timeout=0.5)
        by_hand.wait(timeout=10), ours.wait(timeout=10)


def test_the_memory_guard_names_the_kernels_to_shut_down(monkeypatch):
    """Where the session's limit leaves too little for this notebook's measured peak, importing the
    course says so before TensorFlow loads, naming the other kernels; with room, or no limit, or
    COURSE_MEMORY_CHECK=0, it says nothing."""
    gib = 2**30
    monkeypatch.setattr(runtime, "other_kernels", lambda: [("05_iterative_process.ipynb", 11, gib)])
    monkeypatch.setattr(runtime, "memory_limit", lambda: (2 * gib, int(1.2 * gib)))
    monkeypatch.setattr(runtime, "_memory_with_workers", lambda proc: 100 * 2**20)  # a fresh kernel
    with pytest.raises(runtime.NotEnoughMemory) as err:
        runtime.ensure_memory_fits("07_privacy_and_security.ipynb")
    message = str(err.value)
    assert f"needs about {runtime.PEAK_MB['07']:,} MB" in message and "limited to 2,048 MB" in message
    assert "05_iterative_process.ipynb: 1,024 MB" in message and "Kernel → Shut Down Kernel" in message
    monkeypatch.setattr(runtime, "memory_limit", lambda: (2 * gib, int(0.2 * gib)))
    runtime.ensure_memory_fits("07_privacy_and_security.ipynb")  # room enough
    monkeypatch.setattr(runtime, "memory_limit", lambda: None)
    runtime.ensure_memory_fits("07_privacy_and_security.ipynb")  # a laptop: no limit
    monkeypatch.setattr(runtime, "memory_limit", lambda: (2 * gib, int(1.9 * gib)))
    monkeypatch.setenv("COURSE_MEMORY_CHECK", "0")
    runtime.ensure_memory_fits("07_privacy_and_security.ipynb")  # the learner chose to risk it


def test_the_memory_limit_is_read_from_this_process_cgroup():
    found = runtime.memory_limit()
    assert found is None or (0 < found[1] < found[0]), found
