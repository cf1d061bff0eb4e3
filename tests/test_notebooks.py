"""Notebooks are stored clean and share one anatomy; code saved to helpers matches its notebook."""
import ast
import collections
import json
import re

import pytest

from course import NOTEBOOKS, ROOT


def cells(path):
    return json.loads(path.read_text())["cells"]


def test_there_are_notebooks():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert len(set(numbers)) == len(numbers), "one notebook per number"
    assert numbers == list(range(11)), "the course is 00-10, each number once"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path):
    for i, cell in enumerate(cells(path)):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, f"cell {i} has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_same_anatomy(path):
    nb = cells(path)
    text = "\n".join("".join(c["source"]) for c in nb if c["cell_type"] == "markdown")
    code = "\n".join("".join(c["source"]) for c in nb if c["cell_type"] == "code")
    first = "".join(nb[0]["source"])
    assert first.startswith(f"# {path.name[:2]} · "), "title first"
    assert "mybinder.org/v2/gh/" in first and path.name in first, "Binder badge opening this notebook"
    assert "You will learn to" in first and "Time:" in first, "objectives and time"
    order = ["## Setup", "## Step 1", "**Exercise 1", "## Recap", "## Next"]
    positions = [text.find(h) for h in order]
    assert -1 not in positions and positions == sorted(positions), dict(zip(order, positions))
    assert "runtime.setup(" in code
    assert code.count("### BEGIN SOLUTION") == code.count("### END SOLUTION") >= 2
    assert code.count("# Self-check") >= 2


# Taught code that later notebooks reuse is saved in helpers/ (d2l's `#@save`): its teaching cell
# has this line right above the function (or its decorators), and the two copies stay identical.
SAVED_MARKER = re.compile(r"^# saved in (helpers/\w+\.py)$")
LOOKS_LIKE_MARKER = re.compile(r"^\s*#\s*saved\b", re.I | re.M)  # catches misspelt markers too
WHOLLY_SAVED = ("helpers/model.py", "helpers/fedavg.py")  # every function in them is taught
PARTLY_SAVED = {"helpers/data.py": {"preprocess"},
                "helpers/populations.py": {"iid_partition", "label_mix", "label_concentration"}}


def _function_source(source, name):
    """`def name` with its decorators as written in `source`, or None if it has no such top-level function."""
    tree = ast.parse(source)
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if node is None:
        return None
    first = min([d.lineno for d in node.decorator_list] + [node.lineno])  # decorators included
    return "\n".join(source.splitlines()[first - 1:node.end_lineno])


def saved_code(paths):
    """([(helper file, function name, notebook)], [problems]) from the markers in the notebooks' code cells."""
    pairs, problems = [], []
    for path in paths:
        for i, cell in enumerate(cells(path)):
            source = "".join(cell["source"])
            if cell["cell_type"] != "code" or not LOOKS_LIKE_MARKER.search(source):
                continue
            lines = source.splitlines()
            defs = {min([d.lineno for d in n.decorator_list] + [n.lineno]): n.name
                    for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
            for number, line in enumerate(lines, start=1):
                if not LOOKS_LIKE_MARKER.match(line):
                    continue
                where = f"{path.name}, cell {i}, line {number}"
                marker, name = SAVED_MARKER.match(line), defs.get(number + 1)
                if not marker or not name:
                    problems.append(f"{where}: write `# saved in helpers/<module>.py` on the line right above a "
                                    f"top-level def (or its decorators); found {line!r}")
                    continue
                helper = ROOT / marker[1]
                saved = _function_source(helper.read_text(), name) if helper.exists() else None
                if not helper.exists():
                    problems.append(f"{where}: {marker[1]} does not exist")
                elif saved is None:
                    problems.append(f"{where}: {marker[1]} has no top-level function {name}: copy the cell's there")
                elif saved != _function_source(source, name):
                    problems.append(f"{where}: {name} differs from its copy in {marker[1]}: copy the notebook's "
                                    f"version there (the notebook is where it is taught)")
                pairs.append((marker[1], name, path.name))
    return pairs, problems


def unmarked_or_repeated(pairs):
    """Functions of the saved modules that no marker names, or that several do."""
    expected = {(module, n.name) for module in WHOLLY_SAVED for n in ast.parse((ROOT / module).read_text()).body
                if isinstance(n, ast.FunctionDef)}
    expected |= {(module, name) for module, names in PARTLY_SAVED.items() for name in names}
    marked = collections.Counter((module, name) for module, name, _ in pairs)
    return ([f"{module}: {name} is marked in no notebook" for module, name in sorted(expected - set(marked))]
            + [f"{module}: {name} is marked {count} times" for (module, name), count in sorted(marked.items())
               if count > 1])


def test_code_saved_in_helpers_matches_its_notebook():
    """Every `# saved in helpers/...` marker names a function saved there, identical to the notebook's; every
    function of the saved modules is marked exactly once."""
    pairs, problems = saved_code(NOTEBOOKS)
    assert not problems + unmarked_or_repeated(pairs), "\n".join(problems + unmarked_or_repeated(pairs))
    assert len(pairs) >= 12  # the functions above, at least


def test_saved_code_check_reports_what_is_wrong(tmp_path):
    def cell(source):
        return {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}

    notebook = tmp_path / "99_made_up.ipynb"
    notebook.write_text(json.dumps({"cells": [
        cell("# saved in helpers/nowhere.py\ndef f():\n    pass\n"),
        cell("# saved in helpers/model.py\ndef not_there():\n    pass\n"),
        cell("# saved in helpers/model.py\ndef create_model():\n    return None\n"),
        cell("# saved in helpers/model.py\nx = 1\n"),
        cell("# Saved in helpers/model.py\ndef create_model():\n    pass\n"),
        cell("# saved in helpers/model.py\n\ndef create_model():\n    pass\n"),
    ]}))
    pairs, problems = saved_code([notebook])
    assert [p.split(": ", 1)[1][:30] for p in problems] == [
        "helpers/nowhere.py does not ex", "helpers/model.py has no top-le", "create_model differs from its ",
        "write `# saved in helpers/<mod", "write `# saved in helpers/<mod", "write `# saved in helpers/<mod"]
    missing = unmarked_or_repeated(pairs + pairs)
    assert "helpers/fedavg.py: client_update is marked in no notebook" in missing
    assert "helpers/model.py: create_model is marked 2 times" in missing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_references_point_at_notebooks_that_exist(path):
    """Every "notebook NN", "notebooks NN and MM" and link to NN_*.ipynb names a notebook that exists."""
    numbers = {p.name[:2] for p in NOTEBOOKS}
    names = {p.name for p in NOTEBOOKS}
    text = "\n".join("".join(c["source"]) for c in cells(path))
    mentioned = set(re.findall(r"[Nn]otebooks?\s+(\d\d)\b", text))
    mentioned |= set(re.findall(r"[Nn]otebooks \d\d(?:, \d\d)* and (\d\d)\b", text))
    mentioned |= {m[:2] for m in re.findall(r"\b(\d\d)_[a-z_]+\.ipynb", text)}
    assert mentioned <= numbers, f"refers to notebooks {sorted(mentioned - numbers)}, which do not exist"
    links = set(re.findall(r"\((\d\d_[a-z_]+\.ipynb)\)", text))
    assert links <= names, sorted(links - names)
    assert "coming next" not in text.lower() and "coming soon" not in text.lower()


def _section(text, heading):
    """The markdown under `heading` up to the next heading of the same level or higher."""
    start = text.index(heading)
    following = re.search(r"^#{1,2} ", text[start + len(heading):], re.M)
    return text[start:start + len(heading) + (following.start() if following else len(text))]


def test_the_notebooks_form_a_chain_and_their_links_resolve():
    """00 -> ... -> 10: every Next links the next notebook, every Previous the one before, and every
    link to a file of the repository (not a web address) names a file that exists."""
    for i, path in enumerate(NOTEBOOKS):
        nb = cells(path)
        first = "".join(nb[0]["source"])
        text = "\n".join("".join(c["source"]) for c in nb if c["cell_type"] == "markdown")
        if i + 1 < len(NOTEBOOKS):
            following = NOTEBOOKS[i + 1].name
            assert f"]({following})" in _section(text, "## Next"), f"{path.name}: Next must link {following}"
        else:
            assert "end of the course" in _section(text, "## Next")
        assert "close its tab" in _section(text, "## Next"), f"{path.name}: Next says what happens to this kernel"
        if i > 0:
            assert "Previous: [" in first and f"]({NOTEBOOKS[i - 1].name})" in first, f"{path.name}: Previous"
        for link in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", link) or link.startswith("#"):
                continue
            if link.startswith("../exercises/"):  # written by `make exercises` / `make lab`, not in the repository
                assert link == f"../exercises/{path.name}", f"{path.name}: {link} is not its own exercise copy"
                continue
            assert (path.parent / link.split("#")[0]).exists(), f"{path.name}: {link} does not exist"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_teaching_cells_check_with_explanations_not_bare_asserts(path):
    """Claims outside exercises go through runtime.check (✓ / ⚠ with the reason; raises under CI), so a
    learner who changes a setting reads why the claim was expected instead of an AssertionError.
    Exercise self-checks (nbgrader cells) keep plain asserts."""
    for i, cell in enumerate(cells(path)):
        if cell["cell_type"] != "code" or cell.get("metadata", {}).get("nbgrader"):
            continue
        code = "".join(cell["source"])
        assert not re.search(r"^\s*assert\b|np\.testing\.assert", code, re.M), f"cell {i}: use runtime.check"


def _is_exercise(cell):
    return bool(cell.get("metadata", {}).get("nbgrader"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_carpentries_header_and_key_points(path):
    """Questions and objectives open the notebook, with the times (checked against INSTRUCTORS.md and
    the README by test_the_course_times_agree); the recap gives the key points."""
    nb = cells(path)
    first = "".join(nb[0]["source"])
    assert re.search(r"\*\*Questions\*\*\n(- .+\n){2,}", first), "two or more questions in the first cell"
    assert first.index("**Questions**") < first.index("**You will learn to**") < first.index("**Time:**")
    assert any("".join(c["source"]).startswith("## Recap: key points\n- ") for c in nb), "a key-points recap"


def test_the_course_times_agree():
    """docs/course.json holds the minutes the notebooks take at the stated pace, and the README's and
    INSTRUCTORS.md's tables (`cog --check`), the notebooks' headers and the memory guard's figures are what
    it gives (scripts/course_times.py --estimate regenerates them)."""
    import course_times

    assert course_times.problems() == []


def test_the_course_times_check_finds_a_figure_changed_in_one_place(monkeypatch):
    import course_times

    table = course_times.load()
    table["05"]["full_s"] += 1
    monkeypatch.setattr(course_times, "load", lambda: table)
    found = course_times.problems()
    assert any(p.startswith("05_iterative_process.ipynb: its header's time line") for p in found), found
    assert any("README.md, INSTRUCTORS.md are not what docs/course.json gives" in p for p in found), found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lessons_read_as_lessons(path):
    """Readable cells, predictions before answers, hints under each exercise, no dated run logs."""
    nb = cells(path)
    long = [i for i, c in enumerate(nb) if c["cell_type"] == "code" and not _is_exercise(c)
            and len("".join(c["source"]).splitlines()) > 33]
    assert not long, f"code cells over ~30 lines outside exercises: {long}; move plumbing to helpers or split them"
    prompts = [i for i, c in enumerate(nb)
               if c["cell_type"] == "markdown" and "**Predict, then run.**" in "".join(c["source"])]
    predictions = sum("".join(nb[i]["source"]).count("**Predict, then run.**") for i in prompts)
    assert predictions >= 2, "two or more predictions"
    assert all(nb[i + 1]["cell_type"] == "code" for i in prompts), (
        "each prediction comes right before the cell that answers it")
    tasks = [c for c in nb
             if re.search(r"_ex\d+_task$", c.get("metadata", {}).get("nbgrader", {}).get("grade_id", ""))]
    assert tasks and all("<details><summary>Hint" in "".join(c["source"]) for c in tasks), "a hint under every exercise"
    text = "\n".join("".join(c["source"]) for c in nb)
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b|\bchecked (on )?20\d\d", text), "dates belong in docs/DEVELOPING.md"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if "05" <= p.name[:2] <= "09"], ids=lambda p: p.name)
def test_experiment_notebooks_say_what_to_try(path):
    nb = cells(path)
    tries = [c for c in nb if c["cell_type"] == "markdown" and "".join(c["source"]).startswith("**Try it**")]
    assert tries and re.search(r"`[A-Z_]+", "".join(tries[0]["source"])), "a 'Try it' cell naming settings"
    assert not any("solved edition" in "".join(c["source"]) for c in tries), "learners try it in place"


def test_the_readme_keeps_no_run_log():
    text = (ROOT / "README.md").read_text()
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b|\bmissed\b|earlier version", text), "history goes to docs/DEVELOPING.md"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_as_jupyter_saves_it(path):
    """In nbformat's form (`scripts/nbwriter.py` writes it), a learner's first save in JupyterLab changes nothing."""
    import nbformat

    assert nbformat.writes(nbformat.read(str(path), as_version=4)) + "\n" == path.read_text(), \
        f"run `.venv/bin/python scripts/nbwriter.py` to store {path.name} as JupyterLab saves it"
