"""What the tests share about the repository: where it is, and its notebooks (00_..., 01_..., in order),
both as scripts/nbwriter.py defines them for the scripts too.

Tests import it as `course` (pyproject.toml's pytest `pythonpath` holds tests/), and scripts/*.py by
their own names (it holds scripts/ too).
"""
from nbwriter import NOTEBOOKS, ROOT

__all__ = ["NOTEBOOKS", "ROOT"]
