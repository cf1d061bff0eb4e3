"""Point every Binder link (each notebook's badge and the README's) at one GitHub repository, and the
README's link to the course's website at that repository's GitHub Pages site.

    make badges BINDER_REPO=owner/name      # the Makefile's BINDER_REPO is the one place to change

Each link opens JupyterLab on Binder at that notebook's exercise copy:
.../v2/gh/<owner/name>/HEAD?urlpath=lab/tree/exercises/<file>.
"""
import re
import sys
from pathlib import Path

import nbwriter

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\(https://mybinder\.org/v2/gh/[^)\s]+\)")
SITE = re.compile(r"https://[\w.-]+\.github\.io/[\w.-]+/")


def binder_url(repo, notebook):
    # The exercise copy (postBuild writes exercises/): learners start from the exercises.
    return f"https://mybinder.org/v2/gh/{repo}/HEAD?urlpath=lab/tree/exercises/{notebook}"


def site_url(repo):
    """Where .github/workflows/pages.yml publishes the website (GitHub Pages of the repository)."""
    owner, name = repo.split("/")
    return f"https://{owner.lower()}.github.io/{name}/"


def rewrite(text, repo, notebook):
    return LINK.sub(f"({binder_url(repo, notebook)})", text)


def rewrite_readme(text, repo):
    """The README's Binder links and its link to the website (its first lines)."""
    return SITE.sub(site_url(repo), rewrite(text, repo, "00_environment_and_vocabulary.ipynb"))


def main(repo):
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        sys.exit(f"BINDER_REPO must look like owner/name, got {repo!r}")
    for path in nbwriter.NOTEBOOKS:
        nb = nbwriter.read(path)
        new = rewrite(nb.cells[0].source, repo, path.name)
        if new != nb.cells[0].source:
            nb.cells[0].source = new
            nbwriter.write(nb, path)
    readme = ROOT / "README.md"
    readme.write_text(rewrite_readme(readme.read_text(), repo))
    print(f"Binder links point at {repo}; the README's website link at {site_url(repo)}")


if __name__ == "__main__":
    main(sys.argv[1])
