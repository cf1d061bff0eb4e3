#!/usr/bin/env bash
# Build (or reuse) the course's virtual environment in .venv. Idempotent: a second run that finds
# the same requirements already installed returns in well under a second.
#   PYTHON=/path/to/python3.X bash scripts/setup_env.sh   to choose the interpreter (one that pyproject.toml allows).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"

die() { printf '\nSET-UP STOPPED: %s\n\n' "$*" >&2; exit 1; }

# TensorFlow Federated 0.87.0 publishes one wheel: Linux on x86_64. Say so before installing anything.
check_platform() {
  local os arch name
  os=$(uname -s 2>/dev/null || echo unknown)
  arch=$(uname -m 2>/dev/null || echo unknown)
  case "$os" in
    Linux) [ "$arch" = "x86_64" ] || [ "$arch" = "amd64" ] && return 0; name="Linux on $arch" ;;
    Darwin) name="macOS on $arch" ;;
    MINGW*|MSYS*|CYGWIN*|Windows*) name="Windows ($os)" ;;
    *) name="$os on $arch" ;;
  esac
  die "This is $name. TensorFlow Federated 0.87.0, which the course needs, publishes a wheel for Linux on x86_64 only, so it cannot be installed here.
Ways that work (README, \"Where the course runs\"):
  - Binder: the badge in the README runs the course in your browser, nothing to install;
  - a dev container: open the repository in GitHub Codespaces or in VS Code with Docker (.devcontainer/);
  - Windows: WSL2 with Ubuntu, then \`make setup\` inside it;
  - any Linux x86_64 machine or virtual machine."
}
check_platform

py_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }

# The course's Python is stated once, in pyproject.toml: requires-python = ">=3.A,<3.B". Read with bash
# alone (no sed or Python yet: choosing a Python is what this part does).
python_spec='^requires-python[[:space:]]*=[[:space:]]*"[[:space:]]*>=[[:space:]]*3\.([0-9]+)[[:space:]]*,[[:space:]]*<[[:space:]]*3\.([0-9]+)[[:space:]]*"'
low="" end=""
while IFS= read -r line || [ -n "$line" ]; do
  if [[ $line =~ $python_spec ]]; then low=${BASH_REMATCH[1]}; end=${BASH_REMATCH[2]}; break; fi
done < pyproject.toml
[ -n "$low" ] && [ "$low" -lt "$end" ] \
  || die "pyproject.toml must state the course's Python as requires-python = \">=3.A,<3.B\" (B > A); scripts/setup_env.sh and helpers/runtime.py read it there."
newest="3.$((end - 1))"
if [ "$low" -eq "$((end - 1))" ]; then wanted="3.$low"; else wanted="3.$low-$newest"; fi
supported() { [[ "$1" =~ ^3\.([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge "$low" ] && [ "${BASH_REMATCH[1]}" -lt "$end" ]; }
candidates=()
for ((minor = end - 1; minor >= low; minor--)); do candidates+=("python3.$minor"); done

how_to_install="Install Python $newest (for example \`pyenv install $newest\`, \`sudo apt install python$newest python$newest-venv\`, \`brew install python@$newest\` or \`conda create -n tff python=$newest\`), then run this again, or point PYTHON at it: \`make setup PYTHON=/path/to/python$newest\`."
why="TensorFlow Federated (0.87.0, its newest release) does not install on Python 3.12 or newer, and the course's pinned packages are resolved for $wanted (pyproject.toml's requires-python)."

if [ -n "${PYTHON:-}" ]; then
  command -v "$PYTHON" >/dev/null 2>&1 || die "PYTHON=$PYTHON is not an executable on this machine. $how_to_install"
  version=$(py_version "$PYTHON") || die "PYTHON=$PYTHON does not run. $how_to_install"
  supported "$version" || die "PYTHON=$PYTHON is Python $version, but the course needs Python $wanted: $why $how_to_install"
else
  PYTHON=""
  for candidate in "${candidates[@]}" python3; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    version=$(py_version "$candidate") || continue
    if supported "$version"; then PYTHON=$candidate; break; fi
  done
  if [ -z "$PYTHON" ]; then
    found=$(py_version python3 || true)
    die "No Python $wanted found${found:+ (python3 is Python $found)}. The course needs Python $wanted: $why $how_to_install"
  fi
fi

stamp="$VENV/.course-installed"
want=$( { "$PYTHON" -c 'import sys; print(sys.version)'; cat requirements.txt requirements-tff.txt pyproject.toml jupyter/*.json jupyter/install.py scripts/setup_env.sh; } | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  echo "Course environment is up to date ($VENV, Python $(py_version "$VENV/bin/python"))."
  exit 0
fi

if [ -x "$VENV/bin/python" ] && [ "$(py_version "$VENV/bin/python")" != "$(py_version "$PYTHON")" ]; then
  echo "Rebuilding $VENV: it was made with Python $(py_version "$VENV/bin/python")."
  rm -rf "$VENV"
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" || die "\`$PYTHON -m venv\` failed; on Debian/Ubuntu install python$(py_version "$PYTHON")-venv."

pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
echo "Installing the course's pinned packages into $VENV (a few minutes the first time)..."
"${pip[@]}" install -q -r requirements.txt
# TFF's own jax/jaxlib==0.4.14 pins have no wheel on the package index: install it without them
# (requirements.txt pins the 0.4.13 pair, which works). See requirements.in.
"${pip[@]}" install -q --no-deps -r requirements-tff.txt
"${pip[@]}" install -q --no-deps --no-build-isolation -e .

# The course's JupyterLab and Jupyter server settings (no news question, a closed notebook's kernel
# shut down, idle kernels culled): jupyter/README.md.
"$VENV/bin/python" jupyter/install.py
# Learners see nbgrader's Validate button and Assignments list, not the instructor panels (formgrader,
# Create Assignment, courses); `make instructor` shows them again.
"$VENV/bin/jupyter" labextension disable --level=sys_prefix @jupyter/nbgrader:formgrader \
  @jupyter/nbgrader:create-assignment @jupyter/nbgrader:course-list > /dev/null 2>&1

# The kernel must start: this import is what fails when pip picks the wrong IPython.
"$VENV/bin/python" -c 'import IPython, ipykernel, helpers' \
  || die "the environment in $VENV cannot start a Jupyter kernel (see the error above)."
echo "$want" > "$stamp"
echo "Course environment ready: $VENV (Python $(py_version "$VENV/bin/python"))."
