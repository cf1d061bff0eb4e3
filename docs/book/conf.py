"""Sphinx configuration of the course's website. scripts/book.py writes the sources (build/book/src) and runs
sphinx-build with this folder as its configuration (`-c docs/book`): `make book`, or .ci/run in quick mode."""
import json
import os
from pathlib import Path

from docutils import nodes

REPO = os.environ.get("COURSE_BOOK_REPO", "fedcourse/tff-federated-digits")

project = "Federated image classification with TensorFlow Federated"
author = "the course's authors"
copyright = "the course's authors; data: LEAF and EMNIST (see the README)"
extensions = ["myst_nb", "sphinx.ext.githubpages"]  # githubpages: .nojekyll, so Pages serves _static/

# Notebooks arrive executed (scripts/book.py): myst-nb never runs a kernel here.
nb_execution_mode = "off"
nb_merge_streams = True
# Markdown() outputs (the claims tables of 06-08) are MyST, which has tables; CommonMark, the default,
# has none and shows them as raw pipes ("gfm" would need linkify-it-py).
nb_render_markdown_format = "myst"
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 4  # README#section links, as GitHub makes them
exclude_patterns = ["downloads/**", "_build", "**.ipynb_checkpoints"]
# Warnings are errors (-W): a broken internal link or a missing image fails the build. Left out: a heading
# level skipped in the README or the instructor guide (they are read on GitHub too, where it is harmless).
suppress_warnings = ["myst.header"]

html_theme = "sphinx_book_theme"
html_title = "Federated image classification with TFF"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_last_updated_fmt = "%Y-%m-%d"
html_copy_source = False  # the pages' sources hold the master's outputs; the downloads are the exercise copies
html_show_sourcelink = False
html_theme_options = {
    "repository_url": f"https://github.com/{REPO}",
    "use_repository_button": True,
    "use_download_button": False,  # each page links its exercise copy instead
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "navigation_with_keys": False,
}


def figure_alt_texts(app, doctree):
    """myst-nb names each output image by its content's SHA-256; scripts/book.py recorded each one's alt text
    (from docs/book/figure_alt.py, at execution) under that name."""
    table = Path(app.srcdir) / "_alt_texts.json"
    if not table.exists():
        return
    alt = json.loads(table.read_text())
    for image in doctree.findall(nodes.image):
        name = Path(image["uri"]).stem
        if name in alt and not image.get("alt"):
            image["alt"] = alt[name]


def setup(app):
    app.connect("doctree-read", figure_alt_texts)
