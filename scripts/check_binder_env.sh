#!/usr/bin/env bash
# Build Binder's environment the way repo2docker does, from binder/ alone, and run notebook 00 in it:
#   Python from binder/runtime.txt -> pip install -r binder/requirements.txt -> binder/postBuild
# in a new virtual environment (build/binder-env), then notebook 00 in quick mode with its kernel.
# repo2docker itself needs a Docker daemon; this is the same sequence of steps without the image.
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir=build/binder-env
runtime=$(tr -d '[:space:]' < binder/runtime.txt)
version=${runtime#python-}
python=$(command -v "python$version" || true)
if [ -z "$python" ] && command -v python3 >/dev/null && [ "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$version" ]; then
  python=$(command -v python3)
fi
[ -n "$python" ] || { echo "binder/runtime.txt asks for Python $version, which this machine does not have." >&2; exit 1; }

rm -rf "$env_dir"
"$python" -m venv "$env_dir"
export PATH="$PWD/$env_dir/bin:$PATH" VIRTUAL_ENV="$PWD/$env_dir"
start=$(date +%s)
pip install -q --disable-pip-version-check -r binder/requirements.txt
bash binder/postBuild
echo "binder environment built in $(( $(date +%s) - start )) s ($(python --version))"

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
echo "binder environment: ok"
