"""Binder (repo2docker) installs exactly the versions `make setup` installs."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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


def test_binder_uses_python_311_and_installs_tff_without_deps():
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert "--no-deps -r requirements-tff.txt" in post_build
    assert pins(ROOT / "requirements-tff.txt") == {"tensorflow-federated": "0.87.0"}
    assert (ROOT / "binder" / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"


def test_every_binder_link_opens_its_notebook_in_jupyterlab_from_one_repository():
    import json
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from badges import binder_url

    repo = re.search(r"^BINDER_REPO \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    links = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        first = "".join(json.loads(path.read_text())["cells"][0]["source"])
        assert f"({binder_url(repo, path.name)})" in first, path.name
        links += re.findall(r"mybinder\.org/v2/gh/[^)\s]+", first)
    readme = (ROOT / "README.md").read_text()
    assert f"({binder_url(repo, '00_environment_and_vocabulary.ipynb')})" in readme
    links += re.findall(r"mybinder\.org/v2/gh/[^)\s]+", readme)
    assert all(link.startswith(f"mybinder.org/v2/gh/{repo}/HEAD?urlpath=lab/tree/notebooks/") for link in links), links
    assert "BINDER_REPO" in readme


def test_binder_gets_the_course_settings_and_the_exercise_copies():
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert "jupyter/overrides.json" in post_build and "share/jupyter/lab/settings" in post_build
    assert "scripts/nbgrader_course.py release" in post_build
    import json

    settings = json.loads((ROOT / "jupyter" / "overrides.json").read_text())
    assert settings["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
