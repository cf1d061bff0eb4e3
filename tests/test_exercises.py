"""The exercises practise the course's code, sit right after the step they practise, pay for effort,
and have no answer on screen anywhere else; notebook code fits a projector."""
import json
import re

import pytest

from course import NOTEBOOKS, ROOT

MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
MAX_LINE = 88  # what a projector shows at a readable size (black's default)


def cells(path):
    return json.loads(path.read_text())["cells"]


def source(cell):
    return "".join(cell["source"])


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")


def solutions(path):
    """[(grade_id, index, the code between the markers)] of the code exercises."""
    found = []
    for i, cell in enumerate(cells(path)):
        text = source(cell)
        if cell["cell_type"] == "code" and MARKERS[0] in text:
            found.append((grade_id(cell), i, text.split(MARKERS[0])[1].split(MARKERS[1])[0]))
    return found


def answer_lines(code):
    """The lines a learner writes: not blank, not comments."""
    return [line.strip() for line in code.splitlines() if line.strip() and not line.strip().startswith("#")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_code_lines_fit_a_projector(path):
    long = [(i, n + 1, len(line)) for i, cell in enumerate(cells(path)) if cell["cell_type"] == "code"
            for n, line in enumerate(source(cell).splitlines()) if len(line) > MAX_LINE]
    assert not long, f"(cell, line, length) over {MAX_LINE} characters: {long}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_practice_comes_where_the_step_is_taught(path):
    """The first exercise sits before the last third of the notebook, and every exercise follows a
    taught step (no block of exercises after the last step)."""
    nb = cells(path)
    tasks = [i for i, c in enumerate(nb) if re.search(r"_ex\d+_task$", grade_id(c))]
    assert tasks, "no exercise"
    position = tasks[0] + 1  # counted from 1, as a reader counts cells
    assert position <= len(nb) * 2 / 3, f"first exercise at cell {position} of {len(nb)}"
    steps = [i for i, c in enumerate(nb) if c["cell_type"] == "markdown" and source(c).startswith("## Step")]
    assert steps and steps[0] < tasks[0], "an exercise comes after the step it practises"
    assert not any(source(c).startswith("## Exercises") for c in nb), "exercises are interleaved, not a section"


def test_the_exercises_practise_tff_and_tensorflow():
    """At least eight exercises whose answers write TFF or TensorFlow code, one or more in each notebook
    that teaches one of the five steps in TFF (02 preprocessing, 03 client update, 04 aggregation,
    05 the iterative process) and in 08 (an aggregator)."""
    tff_answers = {}
    for path in NOTEBOOKS:
        for gid, _, code in solutions(path):
            if re.search(r"\b(tff|tf)\.", code):
                tff_answers.setdefault(path.name[:2], []).append(gid)
    assert sum(len(v) for v in tff_answers.values()) >= 8, tff_answers
    missing = {"02", "03", "04", "05", "08"} - set(tff_answers)
    assert not missing, f"no TFF or TensorFlow exercise in {sorted(missing)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_points_track_effort(path):
    """An answer of three lines or fewer is worth at most two points."""
    nb = cells(path)
    for gid, _, code in solutions(path):
        check_id = gid.replace("_solution", "_check")
        points = next(c["metadata"]["nbgrader"]["points"] for c in nb if grade_id(c) == check_id)
        if len(answer_lines(code)) <= 3:
            assert points <= 2, f"{gid}: {len(answer_lines(code))} answer lines for {points} points"


def _shown_elsewhere(path, index):
    """Every cell of the notebook but the solution cell itself (teaching cells, other exercises,
    self-checks with their hidden tests removed), and the helpers a learner can open."""
    texts = []
    for i, cell in enumerate(cells(path)):
        if i == index:
            continue
        text = source(cell)
        if "### BEGIN HIDDEN TESTS" in text:  # graders' code: never shown to a learner
            text = re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", text, flags=re.S)
        texts.append(text)
    texts += [p.read_text() for p in sorted((ROOT / "helpers").glob("*.py"))]
    return [answer_lines(t) for t in texts]


def _normal(line):
    return re.sub(r"\s+", "", line)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_answer_is_on_screen_elsewhere(path):
    """No three consecutive answer lines appear together anywhere a learner can read (the rest of the
    notebook, the helpers package), and at most a third of an answer's lines appear there at all:
    an answer may use an idiom the step taught, not copy a cell or a helper."""
    for gid, index, code in solutions(path):
        mine = [_normal(line) for line in answer_lines(code) if len(line) >= 12]
        if not mine:
            continue
        elsewhere = _shown_elsewhere(path, index)
        seen = {_normal(line) for text in elsewhere for line in text}
        triples = {tuple(_normal(x) for x in text[k:k + 3]) for text in elsewhere for k in range(len(text) - 2)}
        copied = [tuple(mine[k:k + 3]) for k in range(len(mine) - 2) if tuple(mine[k:k + 3]) in triples]
        assert not copied, f"{gid}: these answer lines appear together outside the exercise: {copied[0]}"
        shared = [line for line in mine if line in seen]
        assert len(shared) <= len(mine) / 3, (
            f"{gid}: {len(shared)} of {len(mine)} answer lines shown elsewhere: {shared}")
