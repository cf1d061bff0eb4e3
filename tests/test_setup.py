"""The set-up: refuses Pythons TFF cannot run on, and builds an environment that runs notebooks."""
import json
import os
import shutil
import subprocess
import sys
import time
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
    (bin_dir / "uname").symlink_to(shutil.which("uname"))
    result = _setup(tmp_path, PATH=str(bin_dir), PYTHON="")
    assert result.returncode == 1
    assert "No Python 3.11 found (python3 is Python 3.12)" in result.stderr


def _fake_platform(tmp_path, system, machine):
    """A PATH whose `uname` reports another platform."""
    bin_dir = tmp_path / "fake-platform"
    bin_dir.mkdir()
    (bin_dir / "uname").write_text(f'#!/bin/sh\ncase "$1" in -s) echo "{system}";; -m) echo "{machine}";; esac\n')
    (bin_dir / "uname").chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


@pytest.mark.parametrize("system,machine,named", [
    ("Darwin", "arm64", "macOS on arm64"), ("Darwin", "x86_64", "macOS on x86_64"),
    ("Linux", "aarch64", "Linux on aarch64"), ("MINGW64_NT-10.0-19045", "x86_64", "Windows (MINGW64_NT-10.0-19045)")])
def test_setup_stops_early_where_tff_has_no_wheel(tmp_path, system, machine, named):
    start = time.monotonic()
    result = _setup(tmp_path, PATH=_fake_platform(tmp_path, system, machine))
    seconds = time.monotonic() - start
    assert result.returncode == 1 and seconds < 1.0, (result.returncode, seconds)
    assert f"This is {named}." in result.stderr and "Linux on x86_64 only" in result.stderr
    for way in ("Binder", "dev container", "WSL2", "Linux x86_64 machine"):
        assert way in result.stderr, way
    assert not (tmp_path / "venv").exists()  # nothing installed


def test_setup_goes_on_to_check_python_on_linux_x86_64(tmp_path):
    result = _setup(tmp_path, PATH=_fake_platform(tmp_path, "Linux", "x86_64"), PYTHON=str(_fake_python(tmp_path, "3.12")))
    assert result.returncode == 1 and "This is" not in result.stderr and "is Python 3.12" in result.stderr


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


def test_the_dev_container_runs_the_readme_commands_on_python_311_x86_64():
    """What can be checked without a Docker daemon: the file parses, its image is a Python 3.11 one on
    x86_64 (TFF's only wheel), it runs the README's set-up, and forwards the port `make lab` serves."""
    config = json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text())
    image = config["image"]
    assert image.startswith("mcr.microsoft.com/devcontainers/python:") and "-3.11-" in image, image
    assert "--platform=linux/amd64" in config["runArgs"], "Apple silicon would otherwise pull an arm64 image"
    readme = (ROOT / "README.md").read_text()
    assert config["postCreateCommand"] == "make setup" and "make setup" in readme and "make lab" in readme
    assert "setup:" in (ROOT / "Makefile").read_text()
    assert 8888 in config["forwardPorts"] and "--ServerApp.port" not in (ROOT / "Makefile").read_text()  # lab's default port
    interpreter = config["customizations"]["vscode"]["settings"]["python.defaultInterpreterPath"]
    assert interpreter.endswith("/.venv/bin/python") and "VENV ?= .venv" in (ROOT / "Makefile").read_text()
    assert ".devcontainer" in readme


def test_learners_do_not_see_nbgraders_instructor_panels():
    """`make setup` disables formgrader, Create Assignment and the course list (`make instructor` shows
    them); Validate and the Assignments list stay."""
    config = json.loads((ROOT / ".venv" / "etc" / "jupyter" / "labconfig" / "page_config.json").read_text())
    disabled = {name for name, off in config["disabledExtensions"].items() if off}
    assert disabled >= {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:course-list"}
    assert not disabled & {"@jupyter/nbgrader:validate-assignment", "@jupyter/nbgrader:assignment-list"}
    makefile = (ROOT / "Makefile").read_text()
    assert "instructor: setup" in makefile and "labextension enable" in makefile
    assert "@jupyter/nbgrader:create-assignment" in (ROOT / "binder" / "postBuild").read_text()
