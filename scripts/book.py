"""The course as a website: every notebook a page with the outputs of an executed run (Sphinx, myst-nb,
sphinx-book-theme; offline), plus the README, the instructor guide and the glossary.

    python scripts/book.py                      # make book: full mode, build/book/html/index.html
    python scripts/book.py --quick              # quick-mode outputs (what CI publishes nowhere, only checks)
    python scripts/book.py --quick --executed build/book/executed/nbval --no-execute   # `make test`'s runs (.ci/run)

Each page is the notebook's **exercise copy** (nbgrader's release: solution blocks replaced by the
`raise NotImplementedError()` stub, hidden tests removed, written answers replaced by a note),
with the outputs of a run of the solved master: an exercise's stub and its self-check show no output (the
master's would print the answer's values), every other cell shows what the master printed and drew.
Outputs come from, in this order, the first that is current for the notebook (the same code cells, in
the same mode, with the same helpers/): `--executed DIR` (conftest.py writes nbval's runs there when
COURSE_BOOK_OUTPUTS is set), build/book/executed/<mode>/ (this script's own earlier runs),
build/executed/<mode>/ (`make bench`'s), else the notebook is executed here with nbclient and kept in
build/book/executed/<mode>/ (`--no-execute`: fail instead, as CI does). Nothing is written into notebooks/.
Every figure gets an alt text that says what it shows (docs/book/figure_alt.py records it when the
notebook runs); the pages link a Binder launch and a download of the exercise copy.
The instructor guide is published without its per-notebook sections (model answers, rubrics, hidden tests,
common mistakes): the page links INSTRUCTORS.md on GitHub for them.
Sphinx runs with -W --keep-going: a broken internal link or a missing image fails the build.
"""
import argparse
import base64
import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbgrader_course
import nbwriter
from badges import binder_url  # the exercise copy's Binder link, as every badge has it

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "build" / "book"
CONF = ROOT / "docs" / "book"
SRC, HTML = BOOK / "src", BOOK / "html"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
GLOSSARY_HEADING = "Glossary"  # notebook 10's step that holds the glossary
# mybinder.org's badge, served with the site so that a page read offline shows no broken image
BINDER_BADGE, LOCAL_BADGE = "https://mybinder.org/badge_logo.svg", "binder_badge.svg"
WRITTEN_ANSWER = "*(In the notebook, you write your answer in this cell.)*"


def binder_repo():
    """BINDER_REPO, as the Makefile sets it (the environment wins: `make book BINDER_REPO=...`)."""
    if os.environ.get("BINDER_REPO"):
        return os.environ["BINDER_REPO"]
    found = re.search(r"^BINDER_REPO \?= *(\S+)", (ROOT / "Makefile").read_text(), re.M)
    return found.group(1)


# --- executed copies ----------------------------------------------------------------------------


def code_key(notebook):
    """What a run's outputs depend on in the notebook: the sequence of cells, and every code cell's source."""
    cells = [[c["cell_type"], c["source"] if c["cell_type"] == "code" else ""] for c in notebook["cells"]]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()[:16]


def helpers_key():
    """The course's helpers, which the notebooks import: a run with other helpers is not current."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "helpers").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def ipython_dir():
    """An IPYTHONDIR whose start-up file records each figure's description (docs/book/figure_alt.py)."""
    startup = BOOK / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    shutil.copy2(CONF / "figure_alt.py", startup / "50-course-figure-alt.py")
    return BOOK / "ipython"


def stamp(notebook, quick, complete=True, helpers=None):
    """Record what a run was: the notebook's code key, the helpers' key (`helpers`: taken when the run
    started), the mode, whether every cell ran."""
    notebook["metadata"]["course_book"] = {"code_key": code_key(notebook), "helpers_key": helpers or helpers_key(),
                                           "quick": bool(quick), "complete": bool(complete)}


def finished(notebook):
    """Every code cell ran (an execution count), and no error outside a cell tagged to raise one."""
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        if cell.get("execution_count") is None:
            return False
        expected = "raises-exception" in cell.get("metadata", {}).get("tags", [])
        if not expected and any(o["output_type"] == "error" for o in cell.get("outputs", [])):
            return False
    return True


def current(path, master, quick):
    """The executed copy at `path` if it is a finished run of `master`'s code in this mode, else None (why)."""
    if not path.exists():
        return None, "none"
    executed = nbwriter.read(path)
    if code_key(executed) != code_key(master):
        return None, "other code"
    recorded = executed["metadata"].get("course_book")
    if recorded:
        if recorded["quick"] != quick:
            return None, f"a {'quick' if recorded['quick'] else 'full'}-mode run"
        if recorded["helpers_key"] != helpers_key():
            return None, "other helpers/"
        if not recorded["complete"]:
            return None, "unfinished"
    else:  # `make bench`'s copies: the mode is in their folder; current if newer than every helper
        newest_helper = max(p.stat().st_mtime for p in (ROOT / "helpers").glob("*.py"))
        if path.stat().st_mtime < newest_helper:
            return None, "older than helpers/"
    if not finished(executed):
        return None, "unfinished"
    return executed, "current"


def execute(master_path, quick, out):
    """Run the master on a fresh kernel (this venv's python3), as `make bench` does; keep the copy in `out`."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    os.environ["COURSE_QUICK"] = "1" if quick else "0"
    os.environ.setdefault("COURSE_STRICT", "1")
    os.environ["IPYTHONDIR"] = str(ipython_dir())
    notebook, helpers = nbwriter.read(master_path), helpers_key()
    client = NotebookClient(notebook, timeout=1800, kernel_name="python3",
                            resources={"metadata": {"path": str(master_path.parent)}})
    try:
        client.execute()
    except CellExecutionError as error:  # a claim that failed (COURSE_STRICT=1), or an error: no site from it
        lines = [line for line in str(error).splitlines() if line.strip()]
        sys.exit(f"{master_path.name} failed in {'quick' if quick else 'full'} mode, so the site is not built: "
                 f"{lines[-1] if lines else error}\n(its run with the traceback is not kept; `COURSE_STRICT=0 make "
                 f"book` shows a failed claim as the notebook's ⚠ message instead of stopping)")
    stamp(notebook, quick, helpers=helpers)
    out.mkdir(parents=True, exist_ok=True)
    nbwriter.write(notebook, out / master_path.name)
    return notebook


def shown(path):
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def executed_copies(quick, extra=None, allow_execute=True):
    """{name: executed notebook} for every master, reused when current, executed otherwise."""
    mode = "quick" if quick else "full"
    own = BOOK / "executed" / mode
    places = ([(ROOT / extra).resolve()] if extra else []) + [own, ROOT / "build" / "executed" / mode]
    copies = {}
    for master_path in nbwriter.NOTEBOOKS:
        master = nbwriter.read(master_path)
        reasons = []
        for place in places:
            found, why = current(place / master_path.name, master, quick)
            if found is not None:
                copies[master_path.name] = found
                print(f"  {master_path.name}: outputs from {shown(place)}/", flush=True)
                break
            reasons.append(f"{shown(place)}: {why}")
        else:
            if not allow_execute:
                sys.exit(f"No current executed copy of {master_path.name} ({'; '.join(reasons)}), and --no-execute "
                         "says not to run it here (.ci/run: did `make test` run this notebook to the end?).")
            start = time.perf_counter()
            print(f"  {master_path.name}: executing in {mode} mode ({'; '.join(reasons)})", flush=True)
            copies[master_path.name] = execute(master_path, quick, own)
            print(f"  {master_path.name}: executed in {time.perf_counter() - start:.0f} s", flush=True)
    return copies


# --- pages --------------------------------------------------------------------------------------


def page_name(repo_path):
    """The site's page for a repository file, or None: notebooks keep their names; READMEs are lower-cased."""
    names = {"README.md": "readme.md", "INSTRUCTORS.md": "instructors.md"}
    if repo_path in names:
        return names[repo_path]
    if repo_path.startswith("notebooks/") and repo_path.endswith(".ipynb"):
        return repo_path.split("/", 1)[1]
    return None


def rewrite_links(text, where, repo):
    """Markdown links of a file at `where` (its folder in the repository, "" for the root) as the site
    needs them: course notebooks and the two guides become pages, exercise copies Binder links, any
    other repository file a link to it on GitHub."""

    def fix(match):
        label, target = match.group(1), match.group(2)
        if re.match(r"^[a-z]+:|^#", target):
            return match.group(0)
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(where, path)).replace(os.sep, "/")
        if resolved.startswith("exercises/") and resolved.endswith(".ipynb"):
            return f"[{label}]({binder_url(repo, resolved.split('/', 1)[1])})"
        page = page_name(resolved)
        if page:
            return f"[{label}]({page}{'#' + anchor if anchor else ''})"
        kind = "tree" if (ROOT / resolved).is_dir() else "blob"
        return f"[{label}](https://github.com/{repo}/{kind}/HEAD/{resolved}{'#' + anchor if anchor else ''})"

    return re.sub(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)\)", fix, text)


def parse_glossary(notebook):
    """[(terms, definition)] from notebook 10's glossary step: one bullet, one entry; its bold words, its terms."""
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "markdown"
                and re.match(rf"#+ .*{GLOSSARY_HEADING}", c["source"]))
    bullets = re.split(r"\n- ", "\n" + cell["source"].split("\n- ", 1)[1])
    entries = []
    for bullet in filter(None, (b.strip() for b in bullets)):
        bullet = " ".join(line.strip() for line in bullet.splitlines())
        terms = []
        for bold in re.findall(r"\*\*([^*]+)\*\*", bullet):
            terms += [t.strip()[0].upper() + t.strip()[1:] for t in bold.split(" / ")]
        entries.append((terms, bullet))
    return entries


def glossary_page(entries, repo):
    lines = ["# Glossary", "",
             "The course's vocabulary, from [notebook 10](10_recap_and_where_next.ipynb)'s last steps; each entry "
             "links to the notebook that teaches it. Pages link a term to its entry where it is first used.", "",
             ":::{glossary}"]
    for terms, definition in entries:
        lines += terms
        lines += ["  " + rewrite_links(definition, "notebooks", repo), ""]
    return "\n".join(lines).rstrip() + "\n:::\n"


# what a glossary link must not go inside: code spans, links and images, bold, HTML, roles
PROTECTED = re.compile(r"(`[^`]*`|!?\[[^\]]*\]\([^)]*\)|\*\*[^*]*\*\*|<[^>]*>|\{[a-z]+\}`[^`]*`)")


def reference_lines(lines):
    """The numbers of the lines of each list item that cites a paper ("et al.", an arXiv number): a term in a
    paper's title is not where the course uses it."""
    found, item = set(), []
    for number, line in enumerate(lines + [""]):
        starts = re.match(r"\s*[-*] ", line) or not line.strip() or not line.startswith(" ")
        if starts and item:
            if re.search(r"et al\.|arXiv:", " ".join(lines[n] for n in item)):
                found.update(item)
            item = []
        if re.match(r"\s*[-*] ", line) or (item and line.strip()):
            item.append(number)
        elif "arXiv:" in line:
            found.add(number)
    return found


def link_terms(text, terms, done):
    """Link the first use on a page of each glossary term (whole words, any case, plural -s) with MyST's
    {term} role; headings, tables, code, links, bold, HTML and references are left alone. `done`: the terms
    already linked."""
    out, fenced, lines = [], False, text.split("\n")
    references = reference_lines(lines)
    for number, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith("```"):
            fenced = not fenced
        if fenced or stripped.startswith(("```", "#", "|", "<")) or number in references:
            out.append(line)
            continue
        segments = [(s, i % 2 == 1) for i, s in enumerate(PROTECTED.split(line))]
        for term in terms:
            if term.lower() in done:
                continue
            pattern = rf"(?<![\w/.-])({re.escape(term)}s?)(?![\w/-])"
            for k, (segment, protected) in enumerate(segments):
                found = None if protected else re.search(pattern, segment, re.IGNORECASE)
                if found:
                    role = f"{{term}}`{found.group(1)} <{term}>`"
                    segments[k:k + 1] = [(segment[:found.start()], False), (role, True),
                                         (segment[found.end():], False)]
                    done.add(term.lower())
                    break
        out.append("".join(s for s, _ in segments))
    return "\n".join(out)


def heading_before(cells, index):
    """The last markdown heading at or above cell `index`: where a figure sits, for a fallback alt text."""
    for cell in reversed(cells[:index + 1]):
        if cell["cell_type"] == "markdown":
            headings = re.findall(r"^#+ (.+)$", cell["source"], re.M)
            if headings:
                return headings[-1].strip()
    return ""


def fallback_alt(cell_source, heading):
    """For a run recorded without figure descriptions (`make bench`'s): what the cell's own code says."""
    said = re.findall(r"(?:title|suptitle|set_title|xlabel|ylabel|set_xlabel|set_ylabel)\s*[=(]\s*f?[\"']([^\"']+)",
                      cell_source)
    kinds = {"imshow": "images", "plot_seeds": "accuracy curves over rounds, one band per setting",
             "plot_rounds": "accuracy curves over rounds", "plot_curves": "curves", "sample_grid": "digit images",
             "round_diagram": "a diagram of one round", "boxplot": "box plots", "hist": "histograms",
             "bar": "bars", "scatter": "points", "plot": "lines"}
    drawn = [what for call, what in kinds.items() if re.search(rf"\b{call}\(", cell_source)]
    what = "; ".join(dict.fromkeys(said))
    return (f"Figure in '{heading}'" + (f": {drawn[0]}" if drawn else "") + (f", titled {what}" if what else "")
            + ".")


def clean_outputs(outputs):
    """Outputs a static page can show: widgets have no state outside a live kernel (their text is a
    placeholder), so they are left out."""
    kept = []
    for output in outputs:
        if WIDGET_VIEW in output.get("data", {}):
            continue
        kept.append(output)
    return kept


def notebook_page(master, release, executed, name, repo, terms, alt_texts, quick):
    """The exercise copy `release` with the outputs of `executed` (a run of `master`), as the site shows it."""
    if not (len(master["cells"]) == len(release["cells"]) == len(executed["cells"])):
        sys.exit(f"{name}: the master, its exercise copy and its run have different cells (the notebook changed "
                 "while the site was being built?); run the build again.")
    page = copy.deepcopy(release)
    done = set()
    for i, cell in enumerate(page["cells"]):
        grading = master["cells"][i].get("metadata", {}).get("nbgrader", {})
        cell["metadata"].pop("nbgrader", None)
        if cell["cell_type"] == "markdown":
            if grading.get("solution"):  # a written answer's cell: the release's placeholder reads as a stray line
                cell["source"] = WRITTEN_ANSWER
                continue
            cell["source"] = rewrite_links(cell["source"], "notebooks", repo).replace(BINDER_BADGE, LOCAL_BADGE)
            if i == 0:
                cell["source"] = first_cell(cell["source"], name, repo, quick)
            if GLOSSARY_HEADING not in cell["source"].split("\n", 1)[0]:
                cell["source"] = link_terms(cell["source"], terms, done)
            continue
        if cell["cell_type"] != "code":
            continue
        # an exercise's stub, and its self-check: the master's outputs would show the answer or its values
        if grading.get("solution") or grading.get("grade"):
            cell["outputs"], cell["execution_count"] = [], None
            continue
        ran = executed["cells"][i]
        cell["outputs"], cell["execution_count"] = clean_outputs(copy.deepcopy(ran.get("outputs", []))), \
            ran.get("execution_count")
        for output in cell["outputs"]:
            png = output.get("data", {}).get("image/png")
            if png:
                alt = output.get("metadata", {}).get("image/png", {}).get("alt") \
                    or fallback_alt(master["cells"][i]["source"], heading_before(page["cells"], i))
                alt_texts[hashlib.sha256(base64.b64decode(png)).hexdigest()] = alt
    page["metadata"].pop("course_book", None)
    return page


def first_cell(source, name, repo, quick):
    """The exercise copy's note ("your exercise copy ...") becomes what the page is, and how to run it."""
    run = "quick-mode (CI's check)" if quick else "full-mode"
    note = (f"*This page is the **exercise copy** of the notebook, with the outputs of a {run} run of the solved "
            f"edition: each exercise shows its task, its stub and its self-check, neither with output. "
            f"Run it yourself: [launch the exercise copy on Binder]({binder_url(repo, name)}) (on Binder, File → "
            f"Download your work before you leave) · {{download}}`download the exercise copy (.ipynb) "
            f"<downloads/{name}>` (it runs inside a clone of the repository on Linux, or under WSL2 or Docker: "
            f"[where the course runs](readme.md#where-the-course-runs)) · "
            f"[the solved edition on GitHub](https://github.com/{repo}/blob/HEAD/notebooks/{name}).*")
    # the badge line's pointer to the README, which on the site is a page
    source = source.replace("Colab: see the README", "Colab: [see the README](readme.md#where-the-course-runs)")
    lines = source.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("*Your exercise copy:"):
            lines[i] = note
            return "\n".join(lines)
    return source + "\n\n" + note


def squeeze(text):
    return re.sub(r"\s+", " ", text).strip()


def answer_lines(masters):
    """The lines that give an answer away: each written model answer's (a markdown cell nbgrader grades by
    hand) and each solution block's, long enough to mean something (tests/test_book.py looks for them)."""
    found = set()
    for master in masters:
        for cell in master["cells"]:
            if cell["cell_type"] == "markdown" and cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                found |= {squeeze(s) for s in re.split(r"(?<=[.;:])\s+|\n", cell["source"]) if len(s.strip()) >= 40}
            for block in re.findall(r"### BEGIN SOLUTION(.*?)### END SOLUTION", cell["source"], re.S):
                found |= {squeeze(line) for line in block.splitlines()
                          if len(line.strip()) >= 16 and not line.strip().startswith("#")}
    return found


def without_answers(text, answers):
    """`text` with every paragraph that quotes a model answer or a solution left out, and said so: the
    instructor guide quotes the written questions' model answers, which the site must not publish."""
    paragraphs = re.split(r"(\n\s*\n)", text)
    withheld = 0
    for i in range(0, len(paragraphs), 2):
        flat = squeeze(paragraphs[i])
        if any(line in flat for line in answers):
            paragraphs[i] = ("*The model answer is left out of the website, which never shows answers; it is in "
                             "INSTRUCTORS.md in the repository.*")
            withheld += 1
    return "".join(paragraphs), withheld


def markdown_page(path, repo, answers):
    folder = path.parent.relative_to(ROOT)
    text, withheld = without_answers(path.read_text(), answers)
    if withheld:
        print(f"  {path.name}: {withheld} paragraphs quoting a model answer left out", flush=True)
    return rewrite_links(text, "" if folder == Path(".") else folder.as_posix(), repo)


def instructors_page(repo, answers):
    """INSTRUCTORS.md without its grading key: each notebook's section under *The notebooks* (model answers,
    rubrics, hidden tests, common mistakes) is replaced by a link to the file on GitHub. Whole sections go,
    not matched sentences, so a paraphrased answer goes too."""
    text = (ROOT / "INSTRUCTORS.md").read_text()
    # from the first notebook's section (### 00 · ...) to the next top-level heading (# Running the course ...)
    found = re.search(r"^### \d\d · .*?(?=^# )", text, re.M | re.S)
    if not found:
        sys.exit("INSTRUCTORS.md: no per-notebook sections (### NN · ...) followed by a top-level heading; the "
                 "website would publish its grading key. Change book.instructors_page with the guide's layout.")
    github = f"https://github.com/{repo}/blob/HEAD/INSTRUCTORS.md#the-notebooks"
    kept_out = (f"*Each notebook's objectives, exercises with what their checks verify, hidden tests, common "
                f"mistakes, and its written question's model answer and rubric are in [INSTRUCTORS.md]({github}) "
                f"in the repository, not on this website, which learners read.*\n\n")
    text = text[:found.start()] + kept_out + text[found.end():]
    text = text.replace("Model answers and rubrics are below, under each notebook.",
                        "Model answers and rubrics are in INSTRUCTORS.md in the repository, under each notebook.")
    text, withheld = without_answers(text, answers)  # a second net, for a model answer quoted elsewhere
    if withheld:
        print(f"  INSTRUCTORS.md: {withheld} more paragraphs quoting a model answer left out", flush=True)
    return rewrite_links(text, "", repo)


def readme_page(repo, answers):
    """The README as a page of the site it announces: without its link to the site (the reader is on it) and
    without the note that the publishing workflow has not run yet (true of a clone, not of the live site)."""
    readme = markdown_page(ROOT / "README.md", repo, answers)
    readme = re.sub(r"(?m)^\*\*Read the course online.*?\n\n", "", readme, count=1, flags=re.S)
    readme = re.sub(r"`\.github/workflows/pages\.yml` builds.*?Source: GitHub Actions\*\.\s*", "", readme,
                    count=1, flags=re.S)
    # the README's title is the site's own (the index): its page is named for what it holds
    return re.sub(r"\A# .*", "# Set-up and reference (the README)", readme)


def readme_table(readme, repo):
    """The README's notebook table (between its cog markers), its links pointing at the pages."""
    found = re.search(r"\[\[\[cog.*?\]\]\] -->\n(.*?)<!-- \[\[\[end\]\]\]", readme, re.S)
    return rewrite_links(found.group(1).strip(), "", repo)


def write_sources(copies, quick, repo):
    """build/book/src: the pages, the downloads, the figures' alt texts, the index."""
    if SRC.exists():
        shutil.rmtree(SRC)
    (SRC / "downloads").mkdir(parents=True)
    released = nbgrader_course.release(out=None, course_dir=BOOK / "nbgrader")
    masters = {p.name: nbwriter.read(p) for p in nbwriter.NOTEBOOKS}
    entries = parse_glossary(masters[nbwriter.NOTEBOOKS[-1].name])
    terms = sorted({t for ts, _ in entries for t in ts}, key=len, reverse=True)
    alt_texts = {}
    for name, master in masters.items():
        shutil.copy2(released / name, SRC / "downloads" / name)
        page = notebook_page(master, nbwriter.read(released / name), copies[name], name, repo, terms, alt_texts, quick)
        nbwriter.write(page, SRC / name)
    (SRC / "glossary.md").write_text(glossary_page(entries, repo))
    answers = answer_lines(masters.values())
    (SRC / "readme.md").write_text(readme_page(repo, answers))
    (SRC / "instructors.md").write_text(instructors_page(repo, answers))
    shutil.copy2(CONF / "_static" / LOCAL_BADGE, SRC / LOCAL_BADGE)
    index = (CONF / "index.md").read_text()
    index = index.replace("{{ notebook_table }}", readme_table((ROOT / "README.md").read_text(), repo))
    index = index.replace("{{ mode }}", "quick-mode (CI's check)" if quick else "full-mode")
    index = index.replace("{{ binder }}", binder_url(repo, nbwriter.NOTEBOOKS[0].name))
    index = index.replace("{{ repository }}", f"https://github.com/{repo}")
    index = index.replace("{{ toctree }}", "\n".join(p.stem for p in nbwriter.NOTEBOOKS))
    (SRC / "index.md").write_text(index)
    (SRC / "_alt_texts.json").write_text(json.dumps(alt_texts, indent=1, ensure_ascii=False))
    return alt_texts


def sphinx(repo, quick):
    """sphinx-build, warnings as errors (broken internal links, missing images); log in build/book/sphinx.log."""
    if HTML.exists():
        shutil.rmtree(HTML)
    env = dict(os.environ, COURSE_BOOK_REPO=repo, COURSE_BOOK_QUICK="1" if quick else "0")
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q", "-c", str(CONF),
               str(SRC), str(HTML), "-d", str(BOOK / "doctrees")]
    with open(BOOK / "sphinx.log", "w") as log:
        result = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        sys.exit(f"sphinx-build failed (exit {result.returncode}):\n{(BOOK / 'sphinx.log').read_text()[-6000:]}")


def size_mb(folder):
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", default=os.environ.get("COURSE_QUICK") == "1",
                        help="quick-mode outputs (default: full mode, unless COURSE_QUICK=1)")
    parser.add_argument("--executed", help="a folder of executed notebooks to reuse first (conftest.py's)")
    parser.add_argument("--repo", default=None, help="owner/name on GitHub (default: the Makefile's BINDER_REPO)")
    parser.add_argument("--no-execute", action="store_true", help="fail rather than execute a notebook")
    args = parser.parse_args(argv)
    repo = args.repo or binder_repo()
    start = time.perf_counter()
    print(f"The course's website, {'quick' if args.quick else 'full'} mode: outputs", flush=True)
    copies = executed_copies(args.quick, args.executed, allow_execute=not args.no_execute)
    outputs_done = time.perf_counter()
    alt_texts = write_sources(copies, args.quick, repo)
    sphinx(repo, args.quick)
    print(f"Built {HTML.relative_to(ROOT)}/index.html ({size_mb(HTML):.1f} MB, {len(alt_texts)} figures with alt "
          f"text) in {time.perf_counter() - start:.0f} s ({outputs_done - start:.0f} s of them for the outputs). "
          f"Open it in a browser, or serve it: python -m http.server -d {HTML.relative_to(ROOT)}", flush=True)


if __name__ == "__main__":
    main()
