"""Instructors can assign the exercises: nbgrader metadata is consistent, and nbgrader itself
generates the student copies and autogrades them (masters: full marks; untouched copies: zero,
failing only inside exercises with NotImplementedError; one exercise solved: its points only).

What each piece of evidence costs decides where it lives. nbval already executes every master, hidden
tests included (tests run `notebooks/`), so every graded cell of every master passes; the round trip
checks that nbgrader's maximum is exactly those cells' points and autogrades one master end to end
(the weekly test grades two more). Executing all eleven masters a second time under nbgrader proved
nothing more and cost a third of `make test`. The untouched copies differ from the masters, so all of
them are autograded: that is the only way to show the teaching cells never need a learner's answer."""
import json
import re
import shutil
import zipfile

import nbgrader_course
import pytest
from course import NOTEBOOKS, ROOT

MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def cells(path):
    return json.loads(path.read_text())["cells"]


def source(cell):
    return "".join(cell["source"])


def nbgrader_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def exercises(path, kind="Exercise"):
    """{number: {"task", "solution", "check": (index, cell)}} of the code exercises (kind="Exercise") or of
    the written questions (kind="Question", whose answer cell is both "solution" and "check")."""
    found, number, current = {}, None, None
    for i, cell in enumerate(cells(path)):
        text, meta = source(cell), nbgrader_meta(cell)
        heading = re.search(r"\*\*(Exercise|Question) (\d+)\b", text) if cell["cell_type"] == "markdown" else None
        if heading:
            current, number = heading.group(1), int(heading.group(2))
            if current == kind:
                found.setdefault(number, {})["task"] = (i, cell)
        if current != kind:
            continue
        if meta.get("solution"):
            found.setdefault(number, {})["solution"] = (i, cell)
        if meta.get("grade"):
            found.setdefault(number, {})["check"] = (i, cell)
    return found


def questions(path):
    return exercises(path, kind="Question")


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


def test_nbval_runs_every_master_with_its_hidden_tests():
    """The round trip autogrades one master and leaves the others' graded cells to nbval: `make test` must
    collect notebooks/ with nbval, and no graded cell may be skipped by it or allowed to raise."""
    import tomllib

    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "notebooks" in options["testpaths"] and "--nbval-lax" in options["addopts"].split()
    not_run = {"nbval-skip", "raises-exception"}
    skipped = [nbgrader_meta(c)["grade_id"] for path in NOTEBOOKS for c in cells(path)
               if nbgrader_meta(c).get("grade") and not_run & set(c["metadata"].get("tags", []))]
    assert not skipped, f"graded cells nbval would skip or let fail: {skipped}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_self_check_has_hidden_tests(path):
    """Hidden tests run only when grading: a solution that hard-codes the visible cases still fails."""
    for number, parts in exercises(path).items():
        text = source(parts["check"][1])
        assert text.count("### BEGIN HIDDEN TESTS") == text.count("### END HIDDEN TESTS") == 1, f"exercise {number}"
        hidden = text.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
        assert re.search(r"\bassert|np\.testing\.assert", hidden), f"exercise {number}: hidden tests that test"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if "01" <= p.name[:2] <= "09"], ids=lambda p: p.name)
def test_written_questions_are_graded_by_hand_with_a_rubric(path):
    found = questions(path)
    assert found, "at least one written question (notebooks 01-09)"
    instructors = (ROOT / "INSTRUCTORS.md").read_text()
    for number, parts in found.items():
        assert set(parts) == {"task", "solution", "check"}, f"question {number}: {sorted(parts)}"
        (t, task), (a, answer) = parts["task"], parts["check"]
        assert t < a and parts["solution"][0] == a and answer["cell_type"] == "markdown"
        assert nbgrader_meta(task)["locked"] is True and not nbgrader_meta(task)["grade"]
        meta = nbgrader_meta(answer)
        assert meta["grade"] and meta["solution"] and not meta["locked"] and meta["points"] > 0
        stated = re.search(r"\*\((\d+) points?, graded by your instructor\)\*", source(task))
        assert stated and int(stated.group(1)) == meta["points"]
        assert len(source(answer).split()) > 40, "the master holds a model answer"
        section = instructors.split(f"`{meta['grade_id']}`", 1)
        assert len(section) == 2 and "Rubric" in section[1][:2500], \
            f"INSTRUCTORS.md: a rubric under `{meta['grade_id']}`"


def autograded_errors(course_dir, student):
    """[(notebook, grade_id or None, exception name)] of every error in a student's graded notebooks."""
    errors = []
    for path in sorted((course_dir / "autograded" / student / nbgrader_course.ASSIGNMENT).glob("*.ipynb")):
        for cell in cells(path):
            for output in cell.get("outputs", []):
                if output["output_type"] == "error":
                    errors.append((path.name, nbgrader_meta(cell).get("grade_id"), output["ename"]))
    return errors


@pytest.mark.slow
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
                 if nbgrader_meta(c).get("solution") and c["cell_type"] == "code"]
        assert stubs == [1] * len(exercises(path)), stubs
        assert "HIDDEN TESTS" not in student_text, f"{path.name}: hidden tests must not reach students"
        for parts in questions(path).values():  # written answers: the model answer is replaced
            answer = source(parts["check"][1])
            assert answer.split(":*")[-1].strip()[:60] not in student_text, f"{path.name}: the model answer leaked"
        # Teaching cells are editable in the student copy (learners experiment) and nbgrader's read-only
        # cells (restored from the source when grading); self-checks are locked.
        for cell in cells(released / path.name)[1:]:  # the first cell says which copy this is
            meta = nbgrader_meta(cell)
            if meta.get("grade") and not meta.get("solution"):
                assert cell["metadata"].get("editable") is False, source(cell)[:60]
            elif not meta.get("solution"):
                assert meta.get("locked") and cell["metadata"].get("editable", True), source(cell)[:60]
        # The master says it is the solved edition; the student copy says it is the exercise copy.
        assert "*The solved edition:" in source(cells(path)[0])
        first = source(cells(released / path.name)[0])
        assert "*Your exercise copy:" in first and "solved edition is [notebooks/" in first
        assert "*The solved edition:" not in first

    # `make exercises` keeps a learner's work unless FORCE=1.
    mine = exercises_dir / names[0]
    mine.write_text(mine.read_text().replace("raise NotImplementedError()", "return 'my answer'"))
    nbgrader_course.release(out=exercises_dir, course_dir=course_dir)
    assert "my answer" in mine.read_text()
    nbgrader_course.release(out=exercises_dir, force=True, course_dir=course_dir)
    assert "my answer" not in mine.read_text()

    # Four submissions: a master (03: code exercises and a written question); every untouched student copy;
    # notebook 04 with only exercise 2 done (and a teaching cell edited by accident); notebook 01 with
    # exercise 1 answered by hard-coding its visible cases.
    submitted = course_dir / "submitted"
    master = "03_client_update.ipynb"
    (submitted / "masters" / nbgrader_course.ASSIGNMENT).mkdir(parents=True)
    shutil.copy2(ROOT / "notebooks" / master, submitted / "masters" / nbgrader_course.ASSIGNMENT / master)
    shutil.copytree(released, submitted / "untouched" / nbgrader_course.ASSIGNMENT,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))

    def submit(student, name, answers, edit=None):
        """A student copy of `name` with {grade_id: source} written into it; `edit` (index, source) changes a cell."""
        notebook = json.loads((released / name).read_text())
        for cell in notebook["cells"]:
            cell["source"] = answers.get(nbgrader_meta(cell).get("grade_id"), cell["source"])
        if edit:
            notebook["cells"][edit[0]]["source"] = edit[1]
        (submitted / student / nbgrader_course.ASSIGNMENT).mkdir(parents=True)
        (submitted / student / nbgrader_course.ASSIGNMENT / name).write_text(json.dumps(notebook))

    one = "04_aggregation.ipynb"
    solved = exercises(ROOT / "notebooks" / one)[2]["solution"][1]
    first_code = next(i for i, c in enumerate(cells(released / one)) if c["cell_type"] == "code" and i > 2)
    submit("one_exercise", one, {nbgrader_meta(solved)["grade_id"]: solved["source"]},
           edit=(first_code, "raise RuntimeError('a teaching cell edited by accident')"))
    hard = "01_model_and_centralized_baseline.ipynb"
    ex1, ex2 = exercises(ROOT / "notebooks" / hard)[1], exercises(ROOT / "notebooks" / hard)[2]
    submit("hard_coder", hard, {
        nbgrader_meta(ex1["solution"][1])["grade_id"]:  # the visible cases' answers, looked up
            "def conv_dense_params(filters, kernel_size, pool_size, num_classes, image_size=28):\n"
            "    return {(32, 3, 2, 10): 54_410, (16, 5, 3, 10): 10_666}[\n"
            "        (filters, kernel_size, pool_size, num_classes)]\n",
        nbgrader_meta(ex2["solution"][1])["grade_id"]: ex2["solution"][1]["source"]})

    table = nbgrader_course.grade(course_dir)
    _, maximum, manual = nbgrader_course.scores(course_dir)
    stems = [n.removesuffix(".ipynb") for n in names]
    assert sorted(maximum) == stems and sum(maximum.values()) > 0
    written = {p.stem: sum(nbgrader_meta(q["check"][1])["points"] for q in questions(p).values()) for p in NOTEBOOKS}
    assert sum(written.values()) > 0

    # Every master: nbgrader's maximum is exactly its graded cells' points (nbval runs each of those cells,
    # hidden tests included, on the master); one master graded end to end gets them all but the written ones.
    graded_points = {p.stem: sum(nbgrader_meta(c)["points"] for c in cells(p) if nbgrader_meta(c).get("grade"))
                     for p in NOTEBOOKS}
    assert maximum == graded_points
    code_points = {p.stem: sum(nbgrader_meta(x["check"][1])["points"] for x in exercises(p).values())
                   for p in NOTEBOOKS}
    assert all(code_points[n] + written[n] == maximum[n] for n in stems), \
        "every graded cell is an exercise or a question"
    stem = master.removesuffix(".ipynb")
    assert written[stem] and code_points[stem], "the graded master has both kinds of points"
    assert table["masters"][stem] == (code_points[stem], maximum[stem]), \
        "the master gets every autograded point; its written answer waits for manual grading"
    assert stem in manual["masters"], "written answers are left to grade by hand"
    assert autograded_errors(course_dir, "masters") == []

    assert all(score == 0 for score, _ in table["untouched"].values()), table["untouched"]
    errors = autograded_errors(course_dir, "untouched")
    assert errors, "an untouched copy must fail its self-checks"
    assert all(grade_id and ename == "NotImplementedError" for _, grade_id, ename in errors), errors
    checks = {(p.name, nbgrader_meta(x["check"][1])["grade_id"]) for p in NOTEBOOKS for x in exercises(p).values()}
    assert {(nb, grade_id) for nb, grade_id, _ in errors} == checks, "every self-check fails, nothing else"

    # Exercises are independent, and the edited teaching cell was restored from the source before grading.
    points = nbgrader_meta(exercises(ROOT / "notebooks" / one)[2]["check"][1])["points"]
    assert table["one_exercise"][one.removesuffix(".ipynb")][0] == points
    others = sorted(nbgrader_meta(x["check"][1])["grade_id"]
                    for n, x in exercises(ROOT / "notebooks" / one).items() if n != 2)
    assert sorted(g for _, g, _ in autograded_errors(course_dir, "one_exercise")) == others

    # Hard-coding the visible cases passes the visible check (its "correct" line is printed) and loses
    # the exercise's points to the hidden tests; exercise 2 still scores.
    assert table["hard_coder"][hard.removesuffix(".ipynb")][0] == nbgrader_meta(ex2["check"][1])["points"]
    graded = cells(course_dir / "autograded" / "hard_coder" / nbgrader_course.ASSIGNMENT / hard)
    check = next(c for c in graded if nbgrader_meta(c).get("grade_id") == nbgrader_meta(ex1["check"][1])["grade_id"])
    printed = "".join("".join(o.get("text", "")) for o in check["outputs"] if o["output_type"] == "stream")
    assert "Exercise 1 correct" in printed
    assert [o["ename"] for o in check["outputs"] if o["output_type"] == "error"] == ["KeyError"]


def test_grading_with_nothing_collected_says_where_to_put_submissions(tmp_path):
    where = r"Nothing to grade: put each student's notebooks in .*submitted/<student>/fedcourse/"
    with pytest.raises(SystemExit, match=where):
        nbgrader_course.grade(course_dir=tmp_path)


def test_releasing_over_graded_submissions_says_what_to_do(tmp_path):
    (tmp_path / "autograded" / "ada" / "fedcourse").mkdir(parents=True)
    what_to_do = r"already holds graded submissions of 'fedcourse' \(ada\).*move the folder aside"
    with pytest.raises(SystemExit, match=what_to_do):
        nbgrader_course.release(out=None, course_dir=tmp_path)


@pytest.mark.slow
def test_weekly_assignments_and_an_lms_download(tmp_path, capsys):
    """Two assignments (a week each) in one gradebook, released with NOTEBOOKS; an LMS download (a zip of
    <student>_<notebook>.ipynb files) collected with zip_collect; a renamed notebook is named, and scores 0."""
    course_dir, first, last = tmp_path / "course", NOTEBOOKS[0], NOTEBOOKS[-1]
    week1 = nbgrader_course.release(out=None, course_dir=course_dir, assignment="week1", numbers=[first.name[:2]])
    nbgrader_course.release(out=None, course_dir=course_dir, assignment="week2", numbers=[last.name[:2]])
    assert [p.name for p in week1.glob("*.ipynb")] == [first.name]
    with pytest.raises(SystemExit, match=r"No notebook numbered 42: choose among 00 01"):
        nbgrader_course.release(out=None, course_dir=course_dir, assignment="week3", numbers=["42"])
    with pytest.raises(SystemExit, match=r"'week9' was never released"):
        nbgrader_course.ensure_released(course_dir, "week9")

    # The LMS's download: ada sent the solved notebook, bob an untouched copy that his browser renamed.
    archive = course_dir / "downloaded" / "week1" / "archive"
    archive.mkdir(parents=True)
    renamed = first.name.replace(".ipynb", " (1).ipynb")
    with zipfile.ZipFile(archive / "submissions.zip", "w") as bundle:
        bundle.write(first, f"ada_{first.name}")
        bundle.write(week1 / first.name, f"bob_{renamed}")
    nbgrader_course.zip_collect(course_dir, "week1")
    assert (course_dir / "submitted" / "ada" / "week1" / first.name).exists()
    assert nbgrader_course.misnamed(course_dir, "week1") == {"bob": [renamed]}
    # week2, collected by hand: carol's solved notebook.
    (course_dir / "submitted" / "carol" / "week2").mkdir(parents=True)
    shutil.copy2(last, course_dir / "submitted" / "carol" / "week2" / last.name)

    week1_scores = nbgrader_course.grade(course_dir, "week1")
    assert f"bob submitted {renamed}: not a notebook of week1 (renamed?)" in capsys.readouterr().out
    week2_scores = nbgrader_course.grade(course_dir, "week2")
    score, most = week1_scores["ada"][first.stem]
    assert score == most > 0, "notebook 00's exercises are all autograded"
    assert week1_scores.get("bob", {}).get(first.stem, (0, most))[0] == 0, "a renamed notebook scores 0"
    assert week2_scores["carol"][last.stem][0] == week2_scores["carol"][last.stem][1] > 0
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", course_id=nbgrader_course.COURSE_ID) as gradebook:
        assert sorted(a.name for a in gradebook.assignments) == ["week1", "week2"], "one gradebook, two assignments"


def test_the_instructors_table_matches_the_notebooks():
    """INSTRUCTORS.md's assessment table (points per exercise and question) and the README's totals are
    the notebooks' own nbgrader points."""
    text = (ROOT / "INSTRUCTORS.md").read_text()
    listed = {(m[1], m[2], m[3]): int(m[4]) for m in re.finditer(
        r"^\| (\d\d) \| (\d|Q) · [^|]+ \| (code|written) \| (\d+) \|", text, re.M)}
    actual = {}
    for path in NOTEBOOKS:
        for number, parts in exercises(path).items():
            actual[path.name[:2], str(number), "code"] = nbgrader_meta(parts["check"][1])["points"]
        for parts in questions(path).values():
            actual[path.name[:2], "Q", "written"] = nbgrader_meta(parts["check"][1])["points"]
    assert listed == actual
    code = sum(p for (_, _, kind), p in actual.items() if kind == "code")
    written = sum(p for (_, _, kind), p in actual.items() if kind == "written")
    count_code = sum(kind == "code" for _, _, kind in actual)
    count_written = sum(kind == "written" for _, _, kind in actual)
    readme, text = " ".join((ROOT / "README.md").read_text().split()), " ".join(text.split())
    assert f"{count_code} autograded exercises ({code} points" in readme
    assert f"{count_written} written questions graded by hand ({written} points" in readme
    assert f"**{count_code} code exercises, {code} points, autograded.**" in text
    assert f"**{count_written} written questions, {written} points, graded by you**" in text
