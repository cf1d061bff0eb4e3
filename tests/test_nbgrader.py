"""Instructors can assign the exercises: nbgrader metadata is consistent, and nbgrader itself
generates the student copies and autogrades them (masters: full marks; untouched copies: zero,
failing only inside exercises with NotImplementedError; one exercise solved: its points only)."""
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
sys.path.insert(0, str(ROOT / "scripts"))
import nbgrader_course  # noqa: E402

MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def cells(path):
    return json.loads(path.read_text())["cells"]


def source(cell):
    return "".join(cell["source"])


def nbgrader_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def exercises(path):
    """{exercise number: {"task", "solution", "check": (index, cell)}} from the Exercises section."""
    found, number = {}, None
    for i, cell in enumerate(cells(path)):
        text, meta = source(cell), nbgrader_meta(cell)
        heading = re.search(r"\*\*Exercise (\d+)\b", text) if cell["cell_type"] == "markdown" else None
        if heading:
            number = int(heading.group(1))
            found.setdefault(number, {})["task"] = (i, cell)
        if meta.get("solution"):
            found.setdefault(number, {})["solution"] = (i, cell)
        if meta.get("grade"):
            found.setdefault(number, {})["check"] = (i, cell)
    return found


def solution_lines(path):
    """Lines written between the markers that appear nowhere else in the master notebook."""
    inside, outside = set(), set()
    for cell in cells(path):
        within = False
        for line in source(cell).splitlines():
            if line.strip() in MARKERS:
                within = line.strip() == MARKERS[0]
                continue
            (inside if within else outside).add(line.strip())
    return {line for line in inside - outside if len(line) > 3}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_metadata_is_consistent(path):
    found = exercises(path)
    assert len(found) >= 2 and sorted(found) == list(range(1, len(found) + 1)), f"exercises {sorted(found)}"
    for number, parts in found.items():
        assert set(parts) == {"task", "solution", "check"}, f"exercise {number} has {sorted(parts)}"
        (t, task), (s, solution), (c, check) = parts["task"], parts["solution"], parts["check"]
        assert t < s < c, f"exercise {number}: instructions, then the cell to write, then its check"
        meta = nbgrader_meta(task)
        assert meta["locked"] is True and meta["grade"] is False and meta["solution"] is False, "read-only"
        assert nbgrader_meta(solution)["locked"] is False and nbgrader_meta(solution)["grade"] is False
        meta = nbgrader_meta(check)
        assert meta["locked"] is True and meta["solution"] is False and meta["points"] > 0, meta
        assert source(check).startswith("# Self-check"), f"exercise {number}'s graded cell is its self-check"
        stated = re.search(r"\*\((\d+) points?\)\*", source(task))
        assert stated and int(stated.group(1)) == meta["points"], "points in the instructions = points graded"
        # The answer goes inside a function body, so an untouched student copy still defines the function
        # and fails in its check with NotImplementedError, not with a NameError somewhere later.
        begin = next(line for line in source(solution).splitlines() if line.strip() == MARKERS[0])
        assert begin.startswith("    "), f"exercise {number}: the solution region must be inside a function"
    for cell in cells(path):
        meta, text = nbgrader_meta(cell), source(cell)
        if meta:
            assert meta["schema_version"] == 3 and meta["grade_id"], meta
        if any(marker in text for marker in MARKERS):
            assert meta.get("solution"), f"solution markers outside a solution cell: {text[:80]}"
            assert text.count(MARKERS[0]) == text.count(MARKERS[1]) == 1


def test_grade_ids_are_unique():
    ids = [nbgrader_meta(c)["grade_id"] for path in NOTEBOOKS for c in cells(path) if nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def autograded_errors(course_dir, student):
    """[(notebook, grade_id or None, exception name)] of every error in a student's graded notebooks."""
    errors = []
    for path in sorted((course_dir / "autograded" / student / nbgrader_course.ASSIGNMENT).glob("*.ipynb")):
        for cell in cells(path):
            for output in cell.get("outputs", []):
                if output["output_type"] == "error":
                    errors.append((path.name, nbgrader_meta(cell).get("grade_id"), output["ename"]))
    return errors


def test_nbgrader_round_trip(tmp_path):
    """generate_assignment, then autograde three submissions, all with nbgrader itself (quick mode)."""
    course_dir, exercises_dir = tmp_path / "course", tmp_path / "exercises"
    released = nbgrader_course.release(out=exercises_dir, course_dir=course_dir)
    names = [p.name for p in NOTEBOOKS]
    assert sorted(p.name for p in released.glob("*.ipynb")) == names
    assert sorted(p.name for p in exercises_dir.glob("*.ipynb")) == names

    # No solution survives in the student copies; each solution region became a NotImplementedError.
    for path in NOTEBOOKS:
        student_text = "\n".join(source(c) for c in cells(released / path.name))
        assert "SOLUTION" not in student_text.replace("`SOLUTION` marker", "")
        student_lines = {line.strip() for line in student_text.splitlines()}
        leaked = sorted(solution_lines(path) & student_lines)
        assert not leaked, f"{path.name}: solution text in the student copy: {leaked}"
        stubs = [source(c).count("raise NotImplementedError()") for c in cells(released / path.name)
                 if nbgrader_meta(c).get("solution")]
        assert stubs == [1] * len(exercises(path)), stubs
        # The master says it is the solved edition; the student copy says it is the exercise copy.
        assert "*The solved edition:" in source(cells(path)[0])
        first = source(cells(released / path.name)[0])
        assert "*Your exercise copy:" in first and "solved edition is [notebooks/" in first and "*The solved edition:" not in first

    # `make exercises` keeps a learner's work unless FORCE=1.
    mine = exercises_dir / names[0]
    mine.write_text(mine.read_text().replace("raise NotImplementedError()", "return 'my answer'"))
    nbgrader_course.release(out=exercises_dir, course_dir=course_dir)
    assert "my answer" in mine.read_text()
    nbgrader_course.release(out=exercises_dir, force=True, course_dir=course_dir)
    assert "my answer" not in mine.read_text()

    # Three submissions: the masters, untouched student copies, and notebook 04 with only exercise 2 done.
    submitted = course_dir / "submitted"
    for student, folder in (("masters", ROOT / "notebooks"), ("untouched", released)):
        shutil.copytree(folder, submitted / student / nbgrader_course.ASSIGNMENT,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    one = "04_aggregation.ipynb"
    solved = exercises(ROOT / "notebooks" / one)[2]["solution"][1]
    notebook = json.loads((released / one).read_text())
    index = next(i for i, c in enumerate(notebook["cells"]) if nbgrader_meta(c).get("grade_id") == nbgrader_meta(solved)["grade_id"])
    notebook["cells"][index]["source"] = solved["source"]
    (submitted / "one_exercise" / nbgrader_course.ASSIGNMENT).mkdir(parents=True)
    (submitted / "one_exercise" / nbgrader_course.ASSIGNMENT / one).write_text(json.dumps(notebook))

    table = nbgrader_course.grade(course_dir)
    _, maximum = nbgrader_course.scores(course_dir)
    stems = [n.removesuffix(".ipynb") for n in names]
    assert sorted(maximum) == stems and sum(maximum.values()) > 0

    assert table["masters"] == {n: (maximum[n], maximum[n]) for n in stems}, "the masters get full marks"
    assert autograded_errors(course_dir, "masters") == []

    assert all(score == 0 for score, _ in table["untouched"].values()), table["untouched"]
    errors = autograded_errors(course_dir, "untouched")
    assert errors, "an untouched copy must fail its self-checks"
    assert all(grade_id and ename == "NotImplementedError" for _, grade_id, ename in errors), errors
    checks = {(p.name, nbgrader_meta(x["check"][1])["grade_id"]) for p in NOTEBOOKS for x in exercises(p).values()}
    assert {(nb, grade_id) for nb, grade_id, _ in errors} == checks, "every self-check fails, nothing else"

    points = nbgrader_meta(exercises(ROOT / "notebooks" / one)[2]["check"][1])["points"]
    assert table["one_exercise"][one.removesuffix(".ipynb")][0] == points
    assert [g for _, g, _ in autograded_errors(course_dir, "one_exercise")] == ["nb04_ex1_check"]


def test_grading_with_nothing_collected_says_where_to_put_submissions(tmp_path):
    with pytest.raises(SystemExit, match=r"Nothing to grade: put each student's notebooks in .*submitted/<student>/fedcourse/"):
        nbgrader_course.grade(course_dir=tmp_path)


def test_releasing_over_graded_submissions_says_what_to_do(tmp_path):
    (tmp_path / "autograded" / "ada" / "fedcourse").mkdir(parents=True)
    with pytest.raises(SystemExit, match=r"already holds graded submissions of 'fedcourse' \(ada\).*move the folder aside"):
        nbgrader_course.release(out=None, course_dir=tmp_path)
