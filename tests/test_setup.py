"""The set-up: refuses Pythons TFF cannot run on, and builds an environment that runs notebooks."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _fake_python(tmp_path, version):
    fake = tmp_path / f"python{version}"
    fake.write_text(f"#!/bin/sh\necho {version}\n")
    fake.chmod(0o755)
    return fake


def _setup(tmp_path, **env):
    run_env = {**os.environ, "VENV": str(tmp_path / "venv"), **env}
    return subprocess.run([shutil.which("bash"), "scripts/setup_env.sh"], cwd=ROOT, env=run_env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("version", ["3.12", "3.13", "3.10"])
def test_setup_refuses_python_312_plus(tmp_path, version):
    result = _setup(tmp_path, PYTHON=str(_fake_python(tmp_path, version)))
    assert result.returncode == 1
    assert f"is Python {version}" in result.stderr and "needs Python 3.11" in result.stderr
    assert "pyenv install 3.11" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "venv").exists()  # stopped before building anything


def test_setup_names_a_missing_interpreter(tmp_path):
    result = _setup(tmp_path, PYTHON="python3.11-does-not-exist")
    assert result.returncode == 1
    assert "not an executable" in result.stderr and "Install Python 3.11" in result.stderr


def test_setup_without_any_supported_python(tmp_path):
    # A PATH whose only python3 is 3.12 (and no python3.11): the search finds nothing usable.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text("#!/bin/sh\necho 3.12\n")
    (bin_dir / "python3").chmod(0o755)
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))
    result = _setup(tmp_path, PATH=str(bin_dir), PYTHON="")
    assert result.returncode == 1
    assert "No Python 3.11 found (python3 is Python 3.12)" in result.stderr


def test_installed_environment_starts_a_kernel():
    """The failure mode of TFF's typing-extensions pin: IPython that cannot start a kernel."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        reply = kc.execute_interactive(
            "import IPython, sys, typing_extensions; print(IPython.__version__, sys.executable)", timeout=60)
        assert reply["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


def test_environment_pins_are_installed():
    from importlib.metadata import version

    assert version("tensorflow-federated") == "0.87.0"
    assert version("ipython") == "8.22.2"
    assert version("tensorflow") == "2.14.1"


def test_jupyterlab_serves_the_course(tmp_path):
    """What `make lab` starts: JupyterLab must import and serve (a pin once broke its import)."""
    import time
    import urllib.request

    import portpicker
    import psutil

    port = portpicker.pick_unused_port()
    log = open(tmp_path / "lab.log", "w")
    lab = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--allow-root", f"--ServerApp.port={port}",
         "--IdentityProvider.token=", f"--ServerApp.root_dir={ROOT}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, body = time.monotonic() + 60, None
        while time.monotonic() < deadline and lab.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/notebooks", timeout=2) as reply:
                    body = json.loads(reply.read())
                break
            except OSError:
                time.sleep(0.5)
        assert body is not None, (tmp_path / "lab.log").read_text()[-2000:]
        assert "00_environment_and_vocabulary.ipynb" in [item["name"] for item in body["content"]]
    finally:
        for proc in [psutil.Process(lab.pid)] + psutil.Process(lab.pid).children(recursive=True):
            proc.terminate()
        lab.wait(timeout=20)
        log.close()
