"""The course's website (scripts/book.py, `make book`; .ci/run builds it in quick mode, then runs this file).

The built site in build/book/html must not hold the answer key (no line of a solution block or hidden
test, no model answer, no self-check's output, no part of the instructor guide's per-notebook sections),
must render the notebooks' Markdown tables, give every figure an alt text that says what it shows, link
each page's exercise copy (Binder and download) and the course's order; Chromium opens the index and two
notebook pages and screenshots them with a plot in view (build/ci/book/).

The checks of a built site run only with COURSE_BOOK_REQUIRED=1 (`make book` and .ci/run's book step set
it, and then a missing site fails): `make test` skips them, so a site left in build/book/html by an
earlier build, from other notebooks, can neither fail nor pass it. The other tests here always run.
"""
import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import nbformat
import pytest
from course import ROOT

import badges
import book
import nbwriter

HTML = ROOT / "build" / "book" / "html"
SHOTS = ROOT / "build" / "ci" / "book"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN = r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("COURSE_BOOK_REQUIRED") == "1"


@pytest.fixture(scope="module")
def site():
    if not REQUIRED:
        pytest.skip("the built website is checked with COURSE_BOOK_REQUIRED=1 (`make book` does it)")
    if not (HTML / "index.html").exists():
        pytest.fail("no website built in build/book/html (`make book`, or `python scripts/book.py --quick`)")
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
    """{line: notebook} for every line of a solution block, a hidden test (and a written model answer) that
    shows the answer: long enough to mean something, not a comment, and not also in the notebooks' public
    text (their cells without the solutions and hidden tests), where it would be no secret."""
    public, secret = [], {}
    for path in nbwriter.NOTEBOOKS:
        for cell in nbwriter.read(path)["cells"]:
            source, grading = cell["source"], cell.get("metadata", {}).get("nbgrader", {})
            if cell["cell_type"] == "markdown" and grading.get("solution"):
                for sentence in re.split(r"(?<=[.;:])\s+|\n", source):  # a model answer, graded by hand
                    if len(sentence.strip()) >= 40:
                        secret[squeeze(sentence)] = path.name
                continue
            blocks = re.findall(rf"{BEGIN}(.*?){END}", source, re.S) + re.findall(HIDDEN, source, re.S)
            public.append(re.sub(HIDDEN, "", re.sub(rf"{BEGIN}.*?{END}", "", source, flags=re.S), flags=re.S))
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
    hidden = {squeeze(line) for path in nbwriter.NOTEBOOKS for cell in nbwriter.read(path)["cells"]
              for block in re.findall(HIDDEN, cell["source"], re.S) for line in block.splitlines()}
    assert len(hidden & set(lines)) > 100, "the hidden tests' lines are looked for too"


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


def test_no_self_check_shows_its_output(site):
    """A self-check run on the solved master prints the answer's values ("z = 0.87 gives ε = 7.96"): on the
    page, under a stub that raises, it shows nothing. Code cells are matched to the page's in order."""
    checks = 0
    for path in nbwriter.NOTEBOOKS:
        code = [c for c in nbwriter.read(path)["cells"] if c["cell_type"] == "code"]
        soup = page_text(site / f"{path.stem}.html")
        cells = soup.select("div.cell")
        assert len(cells) == len(code), f"{path.name}: {len(cells)} code cells on the page, {len(code)} in the master"
        for number, (cell, shown) in enumerate(zip(code, cells)):
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
                checks += 1
                assert not shown.select("div.cell_output"), f"{path.name}: self-check (code cell {number}) output"
        assert "YOUR ANSWER HERE" not in soup.get_text(), f"{path.name}: a written answer's placeholder"
    assert checks >= 29, f"only {checks} self-checks found"


def test_markdown_tables_are_rendered(site):
    """Markdown() outputs (06's claims table, 07 and 08's result tables) as tables, not as raw pipes."""
    tables = 0
    for path in nbwriter.NOTEBOOKS:
        for out in page_text(site / f"{path.stem}.html").select("div.cell_output"):
            raw = re.search(r"^\s*\|[-—–: |]+\|\s*$", out.get_text(), re.M)
            assert not raw, (path.name, out.get_text()[:160])
            tables += len(out.select("table"))
    assert tables >= 5, f"only {tables} tables in the notebooks' outputs"


def test_no_page_shows_a_library_warning(site):
    """A warning in an output (a deprecated argument, absl's log of a changed option) is noise a reader
    cannot act on: the notebook should not cause it, or should quiet the log it expects."""
    for path in nbwriter.NOTEBOOKS:
        for out in page_text(site / f"{path.stem}.html").select("div.cell_output"):
            noise = re.search(r"\w*Warning: .*|WARNING:absl.*", out.get_text())
            assert not noise, f"{path.name}: {noise.group(0)[:160]}"


def guide_sections():
    """INSTRUCTORS.md's per-notebook sections (### NN · ... up to the next top-level heading): the grading key."""
    text = (ROOT / "INSTRUCTORS.md").read_text()
    found = re.search(r"^### \d\d · .*?(?=^# )", text, re.M | re.S)
    assert found, "INSTRUCTORS.md has no per-notebook sections before a top-level heading"
    return found.group(0)


def test_the_instructor_page_holds_no_grading_key(site):
    """Model answers (quoted or paraphrased), rubrics, hidden tests and common mistakes stay in the repository:
    no marker of each kind, and no run of 40 plain characters from the guide's per-notebook sections."""
    text = squeeze(page_text(site / "instructors.html").get_text(" "))
    for marker in ("hidden:", "Rubric", "model answer quotes", "Common mistakes", "is also right and passes"):
        assert marker not in text, marker
    key = guide_sections()
    public = squeeze((ROOT / "INSTRUCTORS.md").read_text().replace(key, ""))  # e.g. the exercises' titles
    runs = {squeeze(run) for run in re.findall(r"[^`*_\[\]()|\n]{40,}", key)} - {""}
    found = [run for run in runs if run in text and run not in public]
    assert not found, f"{len(found)} passages of the grading key on instructors.html, e.g. {found[:3]}"
    links = [a["href"] for a in page_text(site / "instructors.html").select("a[href]")]
    assert any(h.startswith("https://github.com/") and "INSTRUCTORS.md" in h for h in links), "a link to the key"


def test_the_readme_page_reads_as_part_of_the_live_site(site):
    text = squeeze(page_text(site / "readme.html").get_text(" "))
    assert "has not run yet" not in text and "Read the course online" not in text


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
    for line in page_text(site / order[-1]).find_all(string=re.compile("arXiv:")):  # references' titles
        assert not line.parent.find_parent("p").select("a[href*='glossary.html#term-']"), line
    assert (site / "search.html").exists() and (site / "searchindex.js").exists()


@pytest.mark.slow
def test_chromium_shows_the_index_and_two_pages_with_a_plot(site):
    if not CHROMIUM:
        if os.environ.get("CI") or REQUIRED:
            raise RuntimeError("the website's check needs Debian's chromium (`apt install chromium`; .ci/run "
                               "installs it)")
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


def test_the_readme_links_the_website_of_binder_repo():
    """README's first lines link the site pages.yml publishes for BINDER_REPO; `make badges` moves it."""
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:5])
    assert badges.site_url(book.binder_repo()) in head, "README's first lines: `make badges` rewrites the link"
    moved = badges.rewrite_readme(head, "Someone/fork-of-course")
    assert "https://someone.github.io/fork-of-course/" in moved and badges.site_url(book.binder_repo()) not in moved


def describe_figure(fig):
    """docs/book/figure_alt.py's alt text for `fig`, as a kernel's display formatter adds it."""
    class Formatter:
        def format(self, obj, include=None, exclude=None):
            return {"image/png": "..."}, {}

    class Shell:
        display_formatter = Formatter()

    shell = Shell()
    exec((ROOT / "docs" / "book" / "figure_alt.py").read_text(), {"get_ipython": lambda: shell})
    return shell.display_formatter.format(fig)[1]["image/png"]["alt"]


def test_alt_texts_name_what_a_figure_shows():
    """The cases a reviewer found misdescribed: a colorbar read as a panel, categories on the y ticks left out,
    legend entries with commas, and no word of what the lines do."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (heat, boxes) = plt.subplots(1, 2)
    fig.colorbar(heat.imshow([[0.0, 0.5], [0.25, 1.0]]), ax=heat, label="fraction of the writer's data")
    heat.set_xlabel("digit")
    boxes.boxplot([[1, 2, 3], [4, 5, 6]], orientation="horizontal")
    boxes.set_yticks([1, 2], ["label skew", "quantity skew"])
    boxes.set_xlabel("images per client")
    alt = describe_figure(fig)
    assert "unlabelled axis" not in alt and "plots values against" not in alt and "One panel" not in alt, alt
    assert "2 panels" in alt and "label skew, quantity skew" in alt and "0 to 1" in alt, alt
    plt.close(fig)

    fig, ax = plt.subplots()
    ax.plot([0.1, 0.5, 0.9], label="NaN client, course's mean")
    ax.plot([0.1, 0.05, 0.01], label="NaN client, TFF's default")
    ax.set(xlabel="round", ylabel="test accuracy")
    ax.legend()
    alt = describe_figure(fig)
    assert "NaN client, course's mean; NaN client, TFF's default" in alt, alt
    assert "course's mean 0.1 to 0.9" in alt and "TFF's default 0.1 to 0.01" in alt, alt
    plt.close(fig)


def test_nbval_runs_are_current_for_the_site(request, tmp_path, monkeypatch):
    """.ci/run builds with --no-execute from conftest.py's copies of nbval's runs: a notebook that ran to the
    end in this session's mode is current by book.current's key; one with a cell missing is not."""
    plugin = next(p for p in request.config.pluginmanager.get_plugins()
                  if Path(getattr(p, "__file__", "")) == ROOT / "conftest.py")
    monkeypatch.setattr(plugin, "BOOK_OUTPUTS", str(tmp_path))
    monkeypatch.setenv("COURSE_QUICK", "1")
    master_path = nbwriter.NOTEBOOKS[0]
    runs = plugin.BookRuns(book.helpers_key())
    for name, drop in (("complete", 0), ("short", 1)):
        notebook = nbformat.read(str(master_path), as_version=4)  # as nbval reads it
        code = [c for c in notebook.cells if c.cell_type == "code"]
        outputs = {n: [{"output_type": "stream", "name": "stdout", "text": "ran\n"}] for n in range(len(code) - drop)}
        runs.runs = {name: {"path": tmp_path / name / master_path.name, "notebook": notebook, "outputs": outputs}}
        runs.pytest_sessionfinish(None)
        written = tmp_path / master_path.name
        found, why = book.current(written, nbwriter.read(master_path), quick=True)
        assert (why == "current") == (drop == 0), (name, why)
        assert book.current(written, nbwriter.read(master_path), quick=False)[1] == "a quick-mode run"
