"""The set-up: refuses Pythons TFF cannot run on, and builds an environment that runs notebooks."""
import difflib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from course import ROOT

from helpers import runtime

# The course's Python, from pyproject.toml (runtime reads it there, as setup_env.sh does).
(_, LOW), (_, HIGH) = runtime.SUPPORTED_PYTHON
NEWEST = f"3.{HIGH}"


def _fake_python(tmp_path, version):
    fake = tmp_path / f"python{version}"
    fake.write_text(f"#!/bin/sh\necho {version}\n")
    fake.chmod(0o755)
    return fake


def _setup(tmp_path, root=ROOT, **env):
    run_env = {**os.environ, "VENV": str(tmp_path / "venv"), **env}
    return subprocess.run([shutil.which("bash"), "scripts/setup_env.sh"], cwd=root, env=run_env,
                          capture_output=True, text=True, timeout=60)


def _wanted(low, high):
    return f"3.{low}" if low == high else f"3.{low}-3.{high}"


@pytest.mark.parametrize("version", [f"3.{HIGH + 1}", f"3.{HIGH + 2}", f"3.{LOW - 1}", "2.7"])
def test_setup_refuses_pythons_outside_requires_python(tmp_path, version):
    result = _setup(tmp_path, PYTHON=str(_fake_python(tmp_path, version)))
    assert result.returncode == 1
    assert f"is Python {version}" in result.stderr and f"needs Python {_wanted(LOW, HIGH)}" in result.stderr
    assert f"pyenv install {NEWEST}" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "venv").exists()  # stopped before building anything


def _copy_of_setup(tmp_path, requires_python):
    """scripts/setup_env.sh in a folder of its own, beside a pyproject.toml stating `requires_python`."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "setup_env.sh", root / "scripts" / "setup_env.sh")
    (root / "pyproject.toml").write_text(f'[project]\nname = "x"\nrequires-python = "{requires_python}"\n')
    for name in ("requirements.txt", "requirements-tff.txt", "jupyter/settings.json", "jupyter/install.py"):
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).touch()  # what the script hashes before it installs
    return root


def test_setup_reads_the_python_version_from_pyproject(tmp_path):
    # Another statement in pyproject.toml moves what setup_env.sh accepts: it has no version of its own.
    root = _copy_of_setup(tmp_path, ">=3.9,<3.11")
    refused = _setup(tmp_path, root=root, PYTHON=str(_fake_python(tmp_path, "3.11")))
    assert refused.returncode == 1 and "is Python 3.11, but the course needs Python 3.9-3.10" in refused.stderr
    assert "pyenv install 3.10" in refused.stderr
    # 3.9 passes the version check: the script goes on (and fails later, the fake Python builds no venv).
    accepted = _setup(tmp_path, root=root, PYTHON=str(_fake_python(tmp_path, "3.9")))
    assert "needs Python" not in accepted.stderr and "Installing the course's pinned packages" in accepted.stdout


@pytest.mark.parametrize("requires_python", [">=3.11", "~=3.11", ">=3.12,<3.11"])
def test_setup_says_what_form_requires_python_must_take(tmp_path, requires_python):
    root = _copy_of_setup(tmp_path, requires_python)
    result = _setup(tmp_path, root=root, PYTHON=str(_fake_python(tmp_path, "3.11")))
    assert result.returncode == 1 and 'requires-python = ">=3.A,<3.B"' in result.stderr, result.stderr


def test_setup_names_a_missing_interpreter(tmp_path):
    result = _setup(tmp_path, PYTHON="python3-does-not-exist")
    assert result.returncode == 1
    assert "not an executable" in result.stderr and f"Install Python {NEWEST}" in result.stderr


def test_setup_without_any_supported_python(tmp_path):
    # A PATH whose only python3 is too new (and no python3.X it allows): the search finds nothing usable.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(f"#!/bin/sh\necho 3.{HIGH + 1}\n")
    (bin_dir / "python3").chmod(0o755)
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))
    (bin_dir / "uname").symlink_to(shutil.which("uname"))
    result = _setup(tmp_path, PATH=str(bin_dir), PYTHON="")
    assert result.returncode == 1
    assert f"No Python {_wanted(LOW, HIGH)} found (python3 is Python 3.{HIGH + 1})" in result.stderr


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
    too_new = str(_fake_python(tmp_path, f"3.{HIGH + 1}"))
    result = _setup(tmp_path, PATH=_fake_platform(tmp_path, "Linux", "x86_64"), PYTHON=too_new)
    assert result.returncode == 1 and "This is" not in result.stderr and f"is Python 3.{HIGH + 1}" in result.stderr


def _compile(out, *options):
    uv = Path(sys.executable).parent / "uv"
    assert uv.exists(), f"{uv} is missing: `make setup` installs it (requirements.in)"
    return subprocess.run([str(uv), "pip", "compile", "requirements.in", "-o", str(out), "--python", sys.executable,
                           "--quiet", *options], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_requirements_txt_is_what_requirements_in_compiles_to(tmp_path):
    """`make requirements` regenerates requirements.txt identically: nobody edited it by hand, and it
    follows requirements.in, requirements-tff.txt and pyproject.toml's [tool.uv] settings."""
    assert "uv pip compile requirements.in -o requirements.txt" in (ROOT / "Makefile").read_text()
    out = tmp_path / "requirements.txt"
    shutil.copy2(ROOT / "requirements.txt", out)  # its pins are the resolver's preferences, as in `make requirements`
    result = _compile(out, "--offline")  # from uv's cache: well under a second
    if result.returncode != 0:  # a cold cache: uv asks the package index once
        result = _compile(out)
    assert result.returncode == 0, f"uv pip compile failed:\n{result.stderr}"
    expected, got = (ROOT / "requirements.txt").read_text(), out.read_text()
    diff = difflib.unified_diff(expected.splitlines(True), got.splitlines(True), "requirements.txt", "recompiled")
    assert got == expected, "requirements.txt is not what `make requirements` makes of requirements.in (run it):\n" \
        + "".join(diff)


def _pins(text):
    return dict(line.split("#")[0].strip().split("==") for line in text.splitlines()
                if "==" in line.split("#")[0])


def test_the_overrides_of_tffs_pins_are_the_versions_requirements_in_explains():
    import tomllib

    overrides = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["override-dependencies"]
    stated = _pins((ROOT / "requirements.in").read_text())
    assert overrides and _pins("\n".join(overrides)).items() <= stated.items(), (overrides, stated)
    assert "tensorflow-federated" not in _pins((ROOT / "requirements.txt").read_text()), "installed --no-deps, after"


def test_the_environment_has_every_pinned_version():
    from importlib.metadata import PackageNotFoundError, version

    wrong = {}
    for name, pinned in _pins((ROOT / "requirements.txt").read_text()).items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        if installed != pinned:
            wrong[name] = (pinned, installed)
    assert not wrong, f"{{name: (pinned, installed)}}: {wrong}; `make setup` installs requirements.txt"


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


@pytest.mark.slow
def test_jupyterlab_serves_the_course(tmp_path):
    """What `make lab` starts: JupyterLab must import and serve (a pin once broke its import)."""
    import time
    import urllib.request

    import portpicker
    import psutil

    port = portpicker.pick_unused_port()
    log = open(tmp_path / "lab.log", "w")
    lab = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--allow-root",
         f"--ServerApp.port={port}",
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


def test_the_dev_container_runs_the_readme_commands_on_the_courses_python_on_x86_64():
    """What can be checked without a Docker daemon: the file parses, its image is one of the course's Python
    (pyproject.toml) on x86_64 (TFF's only wheel), it runs the README's set-up, and forwards the port
    `make lab` serves."""
    config = json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text())
    image = config["image"]
    assert image.startswith("mcr.microsoft.com/devcontainers/python:") and f"-{NEWEST}-" in image, image
    assert "--platform=linux/amd64" in config["runArgs"], "Apple silicon would otherwise pull an arm64 image"
    readme = (ROOT / "README.md").read_text()
    assert config["postCreateCommand"] == "make setup" and "make setup" in readme and "make lab" in readme
    assert "setup:" in (ROOT / "Makefile").read_text()
    # 8888, lab's default port: the Makefile sets none
    assert 8888 in config["forwardPorts"] and "--ServerApp.port" not in (ROOT / "Makefile").read_text()
    interpreter = config["customizations"]["vscode"]["settings"]["python.defaultInterpreterPath"]
    assert interpreter.endswith("/.venv/bin/python") and "VENV ?= .venv" in (ROOT / "Makefile").read_text()
    assert ".devcontainer" in readme


def test_learners_do_not_see_nbgraders_instructor_panels():
    """`make setup` disables formgrader, Create Assignment and the course list (`make instructor` shows
    them); Validate and the Assignments list stay."""
    config = json.loads((ROOT / ".venv" / "etc" / "jupyter" / "labconfig" / "page_config.json").read_text())
    disabled = {name for name, off in config["disabledExtensions"].items() if off}
    panels = {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:course-list"}
    assert disabled >= panels
    assert not disabled & {"@jupyter/nbgrader:validate-assignment", "@jupyter/nbgrader:assignment-list"}
    makefile = (ROOT / "Makefile").read_text()
    assert "instructor: setup" in makefile and "labextension enable" in makefile
    assert "@jupyter/nbgrader:create-assignment" in (ROOT / "binder" / "postBuild").read_text()


def test_the_readme_and_the_dev_container_name_the_python_pyproject_states():
    """pyproject.toml's requires-python is the one statement; where prose or an image must name a version,
    it names that one (TFF's own range, "Python 3.9–3.11", is a fact about TFF and is not matched)."""
    import re

    from helpers import runtime

    newest = "{}.{}".format(*runtime.SUPPORTED_PYTHON[1])
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"[Pp]ython ?(3\.\d+)\b(?![–-])", readme))
    assert named == {newest}, f"README.md names Python {sorted(named)}; pyproject.toml states {newest}"
    image = json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text())["image"]
    assert f"-{newest}-" in image, f"the dev container's image {image} is not Python {newest}"
