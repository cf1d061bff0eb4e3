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
