#!/usr/bin/env bash
# Build Binder's environment in the order repo2docker (what mybinder.org runs) builds it, and check it:
#   1. repo2docker's own plan for this repository (`repo2docker --no-build`, no Docker needed):
#      the Python of binder/runtime.txt (tests check it is pyproject.toml's), then binder/requirements.txt,
#      then binder/postBuild;
#   2. its base environment for that Python: the Python packages of its conda lock
#      (environment.py-3.11-linux-64.lock for 3.11: JupyterLab, Notebook, JupyterHub's single-user server,
#      IPython 9, pydantic...), at those versions, from the package index;
#   3. `pip install -r binder/requirements.txt` on top, then `binder/postBuild`;
#   4. `pip check` (only the conflicts the README explains may remain), JupyterLab serves the course,
#      `jupyterhub-singleuser` starts as far as it can without a hub, and notebook 00 runs.
# The image itself needs a Docker daemon; this builds the same environment in build/binder-env.
set -euo pipefail
cd "$(dirname "$0")/.."
R2D_VERSION=2026.4.0  # the repo2docker release this check follows (mybinder.org tracks recent releases)
env_dir=build/binder-env
tool_dir=build/repo2docker
runtime=$(tr -d '[:space:]' < binder/runtime.txt)
version=${runtime#python-}
python=$(command -v "python$version" || true)
if [ -z "$python" ] && command -v python3 >/dev/null && [ "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$version" ]; then
  python=$(command -v python3)
fi
[ -n "$python" ] || { echo "binder/runtime.txt asks for Python $version, which this machine does not have." >&2; exit 1; }
start=$(date +%s)
pip_quiet=(-q --disable-pip-version-check)

# 1. repo2docker's plan, and its lock file.
if [ ! -x "$tool_dir/bin/repo2docker" ] || ! "$tool_dir/bin/pip" show -q "jupyter-repo2docker==$R2D_VERSION" 2>/dev/null; then
  rm -rf "$tool_dir"
  "$python" -m venv "$tool_dir"
  "$tool_dir/bin/pip" install "${pip_quiet[@]}" "jupyter-repo2docker==$R2D_VERSION"
fi
"$tool_dir/bin/repo2docker" --no-build --debug . > build/repo2docker-plan.txt 2> build/repo2docker-plan.log || {
  tail -n 20 build/repo2docker-plan.log; echo "repo2docker --no-build failed (log: build/repo2docker-plan.log)" >&2; exit 1; }
lock=$("$tool_dir/bin/python" -c 'import os, repo2docker.buildpacks.conda as c; print(os.path.join(os.path.dirname(c.__file__), "environment.py-'"$version"'-linux-64.lock"))')
"$tool_dir/bin/python" scripts/binder_base.py plan build/repo2docker-plan.txt "$version"

# 2. The base environment, as repo2docker's conda lock pins it.
rm -rf "$env_dir"
"$python" -m venv "$env_dir"
export PATH="$PWD/$env_dir/bin:$PATH" VIRTUAL_ENV="$PWD/$env_dir"
python scripts/binder_base.py requirements "$lock" > build/binder-base.txt
pip install "${pip_quiet[@]}" --no-deps -r build/binder-base.txt
base_done=$(date +%s)
# 3. What repo2docker runs next, in the same order.
pip install "${pip_quiet[@]}" -r binder/requirements.txt
bash binder/postBuild
echo "binder environment built in $(( $(date +%s) - start )) s ($(python --version)): repo2docker's base $(( base_done - start )) s, then binder/"

# 4. Checks.
pip check > build/binder-pip-check.txt 2>&1 || true
python scripts/binder_base.py pip-check build/binder-pip-check.txt
python scripts/binder_base.py serve
python - <<'PY'
import os, sys
import nbformat
from nbclient import NotebookClient

os.environ["COURSE_QUICK"] = "1"
path = "notebooks/00_environment_and_vocabulary.ipynb"
nb = nbformat.read(path, as_version=4)
# "python3" is ipykernel's own kernelspec in this environment: the kernel runs this Python.
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": "notebooks"}}).execute()
errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
assert not errors, errors
exercises = sorted(os.listdir("exercises"))
assert "00_environment_and_vocabulary.ipynb" in exercises, "postBuild must write the exercise copies"
settings = os.path.join(sys.prefix, "share", "jupyter", "lab", "settings", "overrides.json")
assert os.path.isfile(settings), "postBuild must install the course's JupyterLab settings"
import helpers, tensorflow_federated
assert helpers.__file__.startswith(os.getcwd()) and sys.prefix.endswith("binder-env"), (helpers.__file__, sys.prefix)
print(f"notebook 00 ran in {sys.prefix} with TFF {tensorflow_federated.__version__}; {len(exercises)} exercise copies")
PY
echo "binder environment: ok ($(( $(date +%s) - start )) s in all)"
