"""Notebooks are stored clean and share one anatomy; code saved to helpers matches its notebook."""
import ast
import inspect
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


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


def _function_source(source, name):
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    first = min([d.lineno for d in node.decorator_list] + [node.lineno])  # decorators included
    return "\n".join(source.splitlines()[first - 1:node.end_lineno])


@pytest.mark.parametrize("notebook,module,name", [
    ("01_model_and_centralized_baseline.ipynb", "helpers.model", "create_model"),
    ("02_federated_data_and_preprocessing.ipynb", "helpers.data", "preprocess"),
    ("03_client_update.ipynb", "helpers.fedavg", "client_update"),
    ("04_aggregation.ipynb", "helpers.fedavg", "server_optimizer_update"),
    ("05_iterative_process.ipynb", "helpers.fedavg", "fedavg_computations"),
    ("05_iterative_process.ipynb", "helpers.fedavg", "build_fedavg_process"),
])
def test_code_saved_in_helpers_matches_its_notebook(notebook, module, name):
    import importlib

    code = [("".join(c["source"])) for c in cells(ROOT / "notebooks" / notebook) if c["cell_type"] == "code"]
    taught = next(_function_source(c, name) for c in code if re.search(rf"^def {name}\(", c, re.M))
    function = getattr(importlib.import_module(module), name)
    function = getattr(function, "python_function", function)  # tf.function keeps the original here
    saved = inspect.getsource(function).strip()
    assert taught == saved


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
            assert f"]({NOTEBOOKS[i + 1].name})" in _section(text, "## Next"), f"{path.name}: Next must link {NOTEBOOKS[i + 1].name}"
        else:
            assert "end of the course" in _section(text, "## Next")
        assert "close its tab" in _section(text, "## Next"), f"{path.name}: Next says what happens to this kernel"
        if i > 0:
            assert f"Previous: [" in first and f"]({NOTEBOOKS[i - 1].name})" in first, f"{path.name}: Previous"
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
    """The README, INSTRUCTORS.md and every notebook's header give the same teaching, exercise and
    computing times (scripts/course_times.py writes them from `make bench`)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("course_times", ROOT / "scripts" / "course_times.py")
    course_times = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(course_times)
    assert course_times.problems() == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lessons_read_as_lessons(path):
    """Readable cells, predictions before answers, hints under each exercise, no dated run logs."""
    nb = cells(path)
    long = [i for i, c in enumerate(nb) if c["cell_type"] == "code" and not _is_exercise(c)
            and len("".join(c["source"]).splitlines()) > 33]
    assert not long, f"code cells over ~30 lines outside exercises: {long}; move plumbing to helpers or split them"
    prompts = [i for i, c in enumerate(nb) if c["cell_type"] == "markdown" and "**Predict, then run.**" in "".join(c["source"])]
    assert sum("".join(nb[i]["source"]).count("**Predict, then run.**") for i in prompts) >= 2, "two or more predictions"
    assert all(nb[i + 1]["cell_type"] == "code" for i in prompts), "each prediction comes right before the cell that answers it"
    tasks = [c for c in nb if re.search(r"_ex\d+_task$", c.get("metadata", {}).get("nbgrader", {}).get("grade_id", ""))]
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
