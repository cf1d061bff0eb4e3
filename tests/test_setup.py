"""The set-up script refuses Pythons TFF cannot run on, at once and with what to install."""
import os
import shutil
import subprocess
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
