"""The one way the course's scripts write a notebook: nbformat's, as JupyterLab saves it (sorted keys,
one-space indent, sources split in lines), so that opening and saving a notebook changes nothing.
And the one definition of which notebooks are the course's (NOTEBOOKS), for the scripts and the tests.

    python scripts/nbwriter.py            # rewrite the master notebooks in that form (contents unchanged)
    python scripts/nbwriter.py a.ipynb    # or the notebooks named
"""
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
#: The course's master notebooks, numbered and in order (00_..., 01_...): the solved editions in notebooks/.
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def read(path):
    return nbformat.read(str(path), as_version=4)


def write(notebook, path):
    """Write `notebook` (nbformat's node, or the plain dict of a notebook's JSON) to `path`."""
    nbformat.write(nbformat.from_dict(notebook), str(path))


if __name__ == "__main__":
    for name in sys.argv[1:] or NOTEBOOKS:
        write(read(name), name)
