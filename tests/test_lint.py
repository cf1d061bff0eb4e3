"""`ruff check` finds nothing (rules: pyproject.toml's [tool.ruff]), so `make test` and CI fail when it does."""
import subprocess
import sys
from pathlib import Path

from course import ROOT


def test_ruff_finds_nothing():
    ruff = Path(sys.executable).parent / "ruff"
    assert ruff.exists(), f"{ruff} is missing: `make setup` installs it (requirements.in)"
    result = subprocess.run([str(ruff), "check", "--output-format=concise", "."], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    found = result.stdout + result.stderr
    assert result.returncode == 0, f"`ruff check` (`make lint`) found these ([*]: `ruff check --fix` fixes):\n{found}"
