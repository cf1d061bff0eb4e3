"""The course's website (scripts/book.py, `make book`; .ci/run builds it in quick mode, then runs this file).

The built site in build/book/html must not hold the answer key (no line of a solution block, no model
answer), must give every figure an alt text that says what it shows, must link each page's exercise copy
(Binder and download) and the course's order; Chromium opens the index and two notebook pages and
screenshots them with a plot in view (build/ci/book/). Without a built site these tests are skipped
(`make test` runs before .ci/run builds it), unless COURSE_BOOK_REQUIRED=1, which .ci/run sets.
"""
import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import pytest
from course import ROOT

import nbwriter

HTML = ROOT / "build" / "book" / "html"
SHOTS = ROOT / "build" / "ci" / "book"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").exists():
        message = "no website built in build/book/html (`make book`, or `python scripts/book.py --quick`)"
        if os.environ.get("COURSE_BOOK_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return HTML


@functools.lru_cache(maxsize=None)
def page_text(path):
    """A page's parsed HTML without its scripts and styles (parsed once per session)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(path.read_text(), "html.parser")
    for tag in soup(["script", "style"]):
        tag.decompose()
    return soup


def squeeze(text):
    return re.sub(r"\s+", " ", text).strip()


def solution_lines():
    """{line: notebook} for every line of a solution block (and of a written model answer) that shows
    the answer: long enough to mean something, not a comment, and not also in the notebooks' public text
    (their cells without the solutions), where it would be no secret."""
    public, secret = [], {}
    for path in nbwriter.NOTEBOOKS:
        for cell in nbwriter.read(path)["cells"]:
            source, grading = cell["source"], cell.get("metadata", {}).get("nbgrader", {})
            if cell["cell_type"] == "markdown" and grading.get("solution"):
                for sentence in re.split(r"(?<=[.;:])\s+|\n", source):  # a model answer, graded by hand
                    if len(sentence.strip()) >= 40:
                        secret[squeeze(sentence)] = path.name
                continue
            blocks = re.findall(rf"{BEGIN}(.*?){END}", source, re.S)
            public.append(re.sub(rf"{BEGIN}.*?{END}", "", source, flags=re.S))
            for block in blocks:
                for line in block.splitlines():
                    line = squeeze(line)
                    if len(line) >= 16 and not line.startswith("#"):
                        secret[line] = path.name
    public = squeeze("\n".join(public))
    return {line: name for line, name in secret.items() if line not in public}


def test_the_check_for_solutions_has_solutions_to_look_for():
    lines = solution_lines()
    names = set(lines.values())
    assert len(lines) > 100 and len(names) == len(nbwriter.NOTEBOOKS), (len(lines), sorted(names))


def test_no_solution_is_on_the_site(site):
    """Every page's text (code cells as the reader sees them) and every downloadable notebook."""
    lines = solution_lines()
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= len(nbwriter.NOTEBOOKS) + 4
    found = []
    for path in pages + sorted(site.rglob("*.ipynb")):
        text = squeeze(page_text(path).get_text(" ") if path.suffix == ".html" else path.read_text())
        found += [f"{path.relative_to(site)}: {line!r} (a solution line of {name})"
                  for line, name in lines.items() if line in text]
    assert not found, "solutions on the site:\n" + "\n".join(found[:30])
    stubs = sum(page_text(site / f"{p.stem}.html").get_text().count("raise NotImplementedError()")
                for p in nbwriter.NOTEBOOKS)
    assert stubs >= 2 * len(nbwriter.NOTEBOOKS), "each exercise shows its stub"


def test_every_figure_says_what_it_shows(site):
    figures = 0
    for path in nbwriter.NOTEBOOKS:
        soup = page_text(site / f"{path.stem}.html")
        for image in soup.select("div.cell_output img"):
            alt = image.get("alt", "")
            assert len(alt) >= 25 and not re.fullmatch(r"(?i)(figure|image|png)\s*\d*", alt), (path.name, alt)
            assert (site / image["src"]).exists(), (path.name, image["src"])
            figures += 1
    assert figures >= 10, f"only {figures} figures on the notebook pages"


def test_each_page_links_its_exercise_copy_and_the_course_order(site):
    index = page_text(site / "index.html")
    links = [a["href"] for a in index.select("article a[href]")]
    order = [p.stem + ".html" for p in nbwriter.NOTEBOOKS]
    assert [h for h in links if h in order][:len(order)] == order, "the notebook table, in course order"
    for i, path in enumerate(nbwriter.NOTEBOOKS):
        soup = page_text(site / f"{path.stem}.html")
        hrefs = [a["href"] for a in soup.select("a[href]")]
        assert any(h.startswith("https://mybinder.org/") and h.endswith(f"exercises/{path.name}") for h in hrefs)
        downloads = [h for h in hrefs if h.startswith("_downloads/") and h.endswith(path.name)]
        assert downloads and (site / downloads[0]).exists(), f"{path.name}: download link"
        previous, following = soup.select_one("a.left-prev"), soup.select_one("a.right-next")
        assert previous["href"] == ("index.html" if i == 0 else order[i - 1])
        assert following["href"] == (order[i + 1] if i + 1 < len(order) else "glossary.html")
    assert any("glossary.html#term-" in a["href"] for a in page_text(site / order[1]).select("a[href]"))
    assert (site / "search.html").exists() and (site / "searchindex.js").exists()


@pytest.mark.slow
def test_chromium_shows_the_index_and_two_pages_with_a_plot(site):
    if not CHROMIUM:
        if os.environ.get("CI"):
            raise RuntimeError("CI needs Debian's chromium for the website test: .ci/run installs it with apt.")
        pytest.skip("no chromium here (Debian: `apt install chromium`); CI runs this test")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/index.html")
            page.get_by_role("link", name=re.compile("00 · environment")).first.wait_for(timeout=30_000)
            page.screenshot(path=str(SHOTS / "01-index.png"))
            for n, name in enumerate(["01_model_and_centralized_baseline", "06_best_practices"], start=2):
                page.goto(f"{base}/{name}.html")
                figure = page.locator("div.cell_output img").first
                figure.scroll_into_view_if_needed(timeout=30_000)
                assert figure.is_visible() and figure.evaluate("img => img.complete && img.naturalWidth > 100")
                assert figure.get_attribute("alt"), "the figure has an alt text"
                page.screenshot(path=str(SHOTS / f"0{n}-{name}-plot.png"))
            page.goto(f"{base}/search.html?q=federated_mean")
            page.locator("ul.search li").first.wait_for(timeout=30_000)
            page.screenshot(path=str(SHOTS / "04-search.png"))
            browser.close()
    finally:
        server.shutdown()
    assert all((SHOTS / f).stat().st_size > 10_000 for f in os.listdir(SHOTS) if f.endswith(".png"))


def test_the_site_builds_from_the_masters_without_touching_them():
    """scripts/book.py writes only under build/book (never notebooks/): its paths say so."""
    import book

    assert book.SRC.is_relative_to(ROOT / "build" / "book") and book.HTML.is_relative_to(ROOT / "build" / "book")
    assert Path(book.__file__).parent == ROOT / "scripts"
