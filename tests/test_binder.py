"""Binder (repo2docker) installs exactly the versions `make setup` installs."""
import re
from pathlib import Path

import binder_base
from course import NOTEBOOKS, ROOT

from helpers import runtime


def pins(path):
    """{name: version} of a requirements file, following `-r` includes."""
    found = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found.update(pins(Path(path).parent / line[3:].strip()))
        elif "==" in line:
            name, version = line.split("==", 1)
            found[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return found


def test_binder_requirements_pin_the_same_versions():
    top = pins(ROOT / "requirements.txt")
    assert pins(ROOT / "binder" / "requirements.txt") == top
    for name in ("tensorflow", "jupyter", "matplotlib", "nbval", "ipython", "jax", "jaxlib"):
        assert name in top, name


def test_binder_uses_the_courses_python_and_installs_tff_without_deps():
    # repo2docker reads only binder/runtime.txt, which cannot refer to pyproject.toml: checked against it here.
    low, high = runtime.SUPPORTED_PYTHON
    runtime_txt = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert runtime_txt == f"python-{high[0]}.{high[1]}", \
        f"binder/runtime.txt says {runtime_txt!r}; pyproject.toml's requires-python allows {low}..{high}"
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert "--no-deps -r requirements-tff.txt" in post_build
    assert pins(ROOT / "requirements-tff.txt") == {"tensorflow-federated": "0.87.0"}
    assert (ROOT / "binder" / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"


def test_every_binder_link_opens_its_notebook_in_jupyterlab_from_one_repository():
    import json

    from badges import binder_url

    repo = re.search(r"^BINDER_REPO \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    links = []
    for path in NOTEBOOKS:
        first = "".join(json.loads(path.read_text())["cells"][0]["source"])
        assert f"({binder_url(repo, path.name)})" in first, path.name
        links += re.findall(r"mybinder\.org/v2/gh/[^)\s]+", first)
    readme = (ROOT / "README.md").read_text()
    assert f"({binder_url(repo, '00_environment_and_vocabulary.ipynb')})" in readme
    links += re.findall(r"mybinder\.org/v2/gh/[^)\s]+", readme)
    assert all(link.startswith(f"mybinder.org/v2/gh/{repo}/HEAD?urlpath=lab/tree/exercises/") for link in links), links
    assert "BINDER_REPO" in readme


def test_binder_gets_the_course_settings_and_the_exercise_copies():
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert "python jupyter/install.py" in post_build, "the course's JupyterLab and server settings"
    assert "scripts/nbgrader_course.py release" in post_build
    import json

    settings = json.loads((ROOT / "jupyter" / "overrides.json").read_text())
    assert settings["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    assert settings["@jupyterlab/notebook-extension:tracker"]["kernelShutdown"] is True


def test_the_course_server_culls_idle_kernels(tmp_path):
    """jupyter/install.py puts the culling settings where the Jupyter server reads them, keeping what
    the environment had; a server started from that environment uses them."""
    import json
    import subprocess
    import sys

    target = tmp_path / "etc" / "jupyter" / "jupyter_server_config.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"ServerApp": {"shutdown_no_activity_timeout": 7}}))
    subprocess.run([sys.executable, "-c", f"import sys; sys.prefix = {str(tmp_path)!r}; "
                    f"exec(open({str(ROOT / 'jupyter' / 'install.py')!r}).read(), {{'__file__': "
                    f"{str(ROOT / 'jupyter' / 'install.py')!r}}})"], check=True)
    config = json.loads(target.read_text())
    assert config["ServerApp"] == {"shutdown_no_activity_timeout": 7}, "other settings are kept"
    kernels = config["MappingKernelManager"]
    assert kernels["cull_idle_timeout"] == 1800 and not kernels["cull_busy"]
    assert (tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json").exists()
    code = ("from jupyter_server.serverapp import ServerApp; app = ServerApp(); "
            "app.initialize(argv=['--no-browser', '--allow-root', '--ServerApp.port=0']); "
            "km = app.kernel_manager; print('CULL', km.cull_idle_timeout, km.cull_connected, km.cull_busy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120).stdout
    assert "CULL 1800 True False" in out, out


def test_the_base_environment_takes_the_python_packages_of_repo2dockers_lock(tmp_path, capsys):
    lock = tmp_path / "environment.py-3.11-linux-64.lock"
    lock.write_text("@EXPLICIT\n" + "\n".join(f"https://conda.anaconda.org/conda-forge/{p}#0123" for p in (
        "linux-64/openssl-3.5.4-h26f9b46_0.conda", "linux-64/python-3.11.14-hd63d673_1_cpython.conda",
        "noarch/jupyterlab-4.4.9-pyhd8ed1ab_0.conda", "noarch/jupyterhub-base-5.4.0-pyh31011fe_0.conda",
        "noarch/jupyterhub-singleuser-5.4.0-pyh31011fe_0.conda", "linux-64/pydantic-core-2.41.4-py311h902ca64_0.conda",
        "noarch/typing_extensions-4.15.0-pyhcf101f3_0.conda", "noarch/typing-extensions-4.15.0-h396c80c_0.conda")))
    binder_base.requirements(lock)
    assert capsys.readouterr().out.split() == ["jupyterlab==4.4.9", "jupyterhub==5.4.0", "pydantic-core==2.41.4",
                                               "typing_extensions==4.15.0"]


def test_pip_check_allows_only_tffs_own_pins(tmp_path):
    import pytest

    explained = ("tensorflow-federated 0.87.0 has requirement jax==0.4.14, but you have jax 0.4.13.\n"
                 "tensorflow-federated 0.87.0 has requirement typing-extensions==4.5.*,>=4.5.0, "
                 "but you have typing-extensions 4.15.0.\n")
    (tmp_path / "ok.txt").write_text(explained)
    binder_base.pip_check(tmp_path / "ok.txt")
    unexplained = "pydantic 2.12.2 has requirement typing-extensions>=4.14.1, but you have typing-extensions 4.5.0.\n"
    (tmp_path / "bad.txt").write_text(explained + unexplained)
    with pytest.raises(SystemExit, match="pydantic 2.12.2"):
        binder_base.pip_check(tmp_path / "bad.txt")


def test_the_plan_must_install_requirements_before_postbuild(tmp_path):
    import pytest

    lock = "environment-2epy-2d3-2e11-2dlinux-2d64-2elock"
    (tmp_path / "plan.log").write_text("Building conda environment for python=3.11\n")
    install = 'RUN pip install --no-cache-dir -r "binder/requirements.txt"'
    (tmp_path / "plan.txt").write_text(f"COPY x/{lock} /tmp/env\n{install}\nRUN ./binder/postBuild\n")
    binder_base.plan(tmp_path / "plan.txt", "3.11")
    (tmp_path / "plan.txt").write_text(f"COPY x/{lock} /tmp/env\nRUN ./binder/postBuild\n{install}\n")
    with pytest.raises(AssertionError, match="then run binder/postBuild"):
        binder_base.plan(tmp_path / "plan.txt", "3.11")
    with pytest.raises(AssertionError, match="does not plan Python 3.12"):
        binder_base.plan(tmp_path / "plan.txt", "3.12")
