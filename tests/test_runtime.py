import os
import subprocess
import sys
import textwrap

import psutil
import pytest

from helpers import runtime


@pytest.mark.parametrize("version", [(3, 12, 0), (3, 13, 1), (3, 8, 18), (2, 7, 18)])
def test_unsupported_python_is_refused_with_what_to_do(version):
    with pytest.raises(runtime.UnsupportedPythonError) as err:
        runtime.check_python(version)
    message = str(err.value)
    assert f"Python {version[0]}.{version[1]}" in message
    assert "3.9-3.11" in message and "make setup" in message


@pytest.mark.parametrize("version", [(3, 9, 0), (3, 10, 4), (3, 11, 7)])
def test_supported_python_passes(version):
    runtime.check_python(version)


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


def _run_script(code, env=None):
    """Run code in a fresh Python; stdout/stderr to a file, not a pipe (a leaked worker would hold a pipe open)."""
    out_path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"course-test-{os.getpid()}.out")
    with open(out_path, "w") as out:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], stdout=out,
                              stderr=subprocess.STDOUT, timeout=300, env=env)
    text = open(out_path).read()
    os.unlink(out_path)
    assert proc.returncode == 0, text
    return text


def test_plain_script_using_the_course_leaves_no_worker_behind():
    text = _run_script("""
        from helpers import runtime
        import tensorflow_federated as tff
        assert tff.federated_computation(lambda: 'hi')() == b'hi'
        print("WORKER", runtime.worker_pids())
    """)
    line = next(l for l in text.splitlines() if l.startswith("WORKER"))
    pids = eval(line.split(" ", 1)[1])
    assert len(pids) == 1, text  # the script really started a worker ...
    assert not psutil.pid_exists(pids[0]) or psutil.Process(pids[0]).status() == psutil.STATUS_ZOMBIE  # ... and it is gone


def test_stop_processes_kills_by_pid():
    proc = subprocess.Popen(["sleep", "60"])
    assert runtime.stop_processes([proc.pid], timeout=2) == [proc.pid]
    assert proc.wait(timeout=5) is not None
