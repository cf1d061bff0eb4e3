"""The course as nbgrader assignments: student copies, collecting, autograding, with nbgrader itself.

    python scripts/nbgrader_course.py release [--assignment A] [--notebooks 00 01] [--out exercises] [--force]
    python scripts/nbgrader_course.py zip_collect [--assignment A]     (an LMS download, see INSTRUCTORS.md)
    python scripts/nbgrader_course.py grade [--assignment A]           (make grade)
    python scripts/nbgrader_course.py scores [--assignment A]          (make scores: the table, no grading)

`release` copies the chosen notebooks (all by default) from `notebooks/` into an nbgrader course folder
(`build/nbgrader`, git-ignored) as the source of one assignment (`fedcourse` by default; `week1`, ...
for a weekly schedule: several assignments share one gradebook), marks every teaching cell read-only
for nbgrader (editable in the student copy, so learners can experiment, and restored from the source
when grading), runs `nbgrader generate_assignment`,
and copies the student version of every notebook to `--out` (default `exercises/`, beside
`notebooks/`). Files already there are kept (a learner's work), unless `--force`.

`zip_collect` unpacks the zip files and notebooks put in `build/nbgrader/downloaded/<assignment>/archive/`
(an LMS's download of the submissions) into `submitted/<student>/<assignment>/`, with the file-name
pattern set in the course folder's `nbgrader_config.py` (`<student>_<notebook>.ipynb`).

`grade` runs `nbgrader autograde <assignment>` on whatever has been collected into
`build/nbgrader/submitted/<student>/<assignment>/*.ipynb`, prints a score table (also written to
`build/nbgrader/grades-<assignment>.csv`) and says which answers still need grading by hand.
Notebooks run in quick mode unless COURSE_QUICK=0.

Kernels run this interpreter (the course's .venv): the script writes a `python3` kernelspec that
points at it and puts it first on JUPYTER_PATH, so another Jupyter installed on the machine cannot
take over. nbgrader calls the `alembic` program: this interpreter's bin folder goes first on PATH.
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbwriter

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"  # the masters in it: nbwriter.NOTEBOOKS, see notebooks()
COURSE_DIR = ROOT / "build" / "nbgrader"
COURSE_ID = ASSIGNMENT = "fedcourse"  # the course, and its default assignment: every notebook

CONFIG = r'''# Written by scripts/nbgrader_course.py: the course folder of the course's nbgrader assignment.
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.root = {root!r}
# Quick-mode notebooks need up to about a minute a cell; full mode about three (notebook 05).
c.Execute.timeout = 1200
# Learners may edit and re-run every teaching cell to experiment ("Try it"): teaching cells stay
# nbgrader's read-only cells (autograde restores them from the source) but are not locked in the
# student copy. Self-checks stay locked: they hold the grader's code.
c.LockCells.lock_readonly_cells = False
# nbgrader zip_collect: an LMS download of files named <student>_<notebook>.ipynb, e.g.
# ada_05_iterative_process.ipynb (student "ada"; nbgrader matches the whole path). Adapt the pattern
# to your LMS's file names (INSTRUCTORS.md, *Release, collect, grade*, gives patterns for Moodle's and
# Canvas's downloads: check them against yours). A renamed notebook is still collected, and
# `make grade` names it: it is not graded until it carries the released name.
c.FileNameCollectorPlugin.named_regexp = r"^.*/(?P<student_id>[A-Za-z0-9.-]+)_(?P<file_id>[^/]+\.ipynb)$"
'''


def notebooks():
    return list(nbwriter.NOTEBOOKS)


def environment(course_dir):
    """PATH with this interpreter's bin first (for `alembic`), and a kernelspec for this Python."""
    kernel_dir = course_dir / "jupyter" / "kernels" / "python3"
    kernel_dir.mkdir(parents=True, exist_ok=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python"}))
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["JUPYTER_PATH"] = os.pathsep.join([str(course_dir / "jupyter"), env.get("JUPYTER_PATH", "")])
    env.setdefault("COURSE_QUICK", "1")
    return env


def nbgrader(course_dir, *args):
    """Run one nbgrader command in the course folder; stop with its output if it fails."""
    command = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course_dir}"]
    result = subprocess.run(command, cwd=course_dir, env=environment(course_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        sys.exit(f"`nbgrader {' '.join(args)}` failed (exit {result.returncode}):\n{result.stdout}")
    return result.stdout


def chosen(numbers=None):
    """The masters whose two-digit numbers are in `numbers` (all when None), with a clear error for a typo."""
    if not numbers:
        return notebooks()
    known = {p.name[:2]: p for p in notebooks()}
    unknown = [n for n in numbers if n not in known]
    if unknown:
        sys.exit(f"No notebook numbered {', '.join(unknown)}: choose among {' '.join(sorted(known))} "
                 f"(e.g. NOTEBOOKS=\"00 01\").")
    return [known[n] for n in sorted(set(numbers))]


def lock_teaching_cells(path):
    """Every cell that is not part of an exercise becomes nbgrader's read-only cell: the student copy
    lets the learner edit and re-run it (CONFIG turns off nbgrader's lock), and autograding restores it
    from the source, so an edit cannot change what is graded."""
    notebook = nbwriter.read(path)
    for i, cell in enumerate(notebook["cells"]):
        if i > 0 and "nbgrader" not in cell.get("metadata", {}):  # the first cell: relabelled per copy
            cell.setdefault("metadata", {})["nbgrader"] = {
                "grade": False, "solution": False, "locked": True, "schema_version": 3,
                "grade_id": f"nb{path.name[:2]}_cell_{i}"}
    nbwriter.write(notebook, path)


def prepare(course_dir=COURSE_DIR, assignment=ASSIGNMENT, numbers=None):
    """The course folder with the chosen notebooks of `notebooks/` as the source of `assignment`."""
    source = course_dir / "source" / assignment
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    for path in chosen(numbers):
        shutil.copy2(path, source / path.name)
        lock_teaching_cells(source / path.name)
    (course_dir / "nbgrader_config.py").write_text(CONFIG.format(course_id=COURSE_ID, root=str(course_dir)))


SOLVED = "*The solved edition:"  # how each master's first cell starts its note (notebooks/NN_*.ipynb)


def label_exercise_copy(path):
    """In a student copy, the master's note "the solved edition: ... open the exercise copy" becomes
    "your exercise copy: ... the solved edition is notebooks/NN"."""
    notebook = nbwriter.read(path)
    first = notebook["cells"][0]["source"]
    lines = first.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(SOLVED):
            lines[i] = (f"*Your exercise copy: write the exercises here; each self-check cell says whether your answer "
                        f"is right. The solved edition is [notebooks/{path.name}](../notebooks/{path.name}).*")
    notebook["cells"][0]["source"] = "\n".join(lines)
    nbwriter.write(notebook, path)


def missing(out=ROOT / "exercises"):
    """The masters that have no exercise copy in `out` yet."""
    return [p.name for p in notebooks() if not (Path(out) / p.name).exists()]


def release(out=ROOT / "exercises", force=False, course_dir=COURSE_DIR, assignment=ASSIGNMENT, numbers=None):
    """Generate the student version of the chosen notebooks; copy it to `out`. Returns the release folder."""
    graded = sorted(p.parent.name for p in (course_dir / "autograded").glob(f"*/{assignment}"))
    if graded:  # nbgrader would stop with a traceback: it protects the grades of an assignment's submissions
        sys.exit(f"{course_dir} already holds graded submissions of '{assignment}' ({', '.join(graded)}), and "
                 f"nbgrader will not regenerate an assignment that has submissions. Keep the grades "
                 f"({course_dir / f'grades-{assignment}.csv'}), release under a new name (ASSIGNMENT=...), or move "
                 f"the folder aside (e.g. `mv {course_dir} {course_dir}-graded`), then run `make exercises` again.")
    prepare(course_dir, assignment, numbers)
    released = course_dir / "release" / assignment
    if released.exists():  # notebooks dropped from the assignment must not linger in its release
        shutil.rmtree(released)
    nbgrader(course_dir, "generate_assignment", assignment, "--force")
    for path in sorted(released.glob("*.ipynb")):
        label_exercise_copy(path)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        kept = []
        for path in sorted(released.glob("*.ipynb")):
            target = out / path.name
            if target.exists() and not force:
                kept.append(target.name)
                continue
            shutil.copy2(path, target)
        print(f"Exercise copies of {len(list(released.glob('*.ipynb')))} notebooks in {out}/ "
              f"(solutions: {NOTEBOOKS.relative_to(ROOT)}/).")
        if kept:
            print(f"Kept your existing {', '.join(kept)} (make exercises FORCE=1 replaces them).")
    return released


def scores(course_dir=COURSE_DIR, assignment=ASSIGNMENT):
    """({student: {notebook: (score, max_score)}}, {notebook: max_score}, {student: [notebooks needing
    manual grading]}) from the gradebook, for every submission of `assignment` that was graded."""
    from nbgrader.api import Gradebook, MissingEntry

    table, manual = {}, {}
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", course_id=COURSE_ID) as gradebook:
        found = gradebook.find_assignment(assignment)
        for student in gradebook.students:
            try:
                submission = gradebook.find_submission(assignment, student.id)
            except MissingEntry:
                continue
            table[student.id] = {nb.name: (nb.score, nb.max_score) for nb in submission.notebooks}
            manual[student.id] = [nb.name for nb in submission.notebooks if nb.needs_manual_grade]
        maximum = {nb.name: nb.max_score for nb in found.notebooks}
    return table, maximum, manual


def print_scores(course_dir=COURSE_DIR, assignment=ASSIGNMENT):
    """The score table of `assignment` (also to grades-<assignment>.csv) and what awaits manual grading."""
    table, maximum, manual = scores(course_dir, assignment)
    names, most = sorted(maximum), sum(maximum.values())
    points = {student: [row.get(n, (0, 0))[0] for n in names] for student, row in sorted(table.items())}
    with open(course_dir / f"grades-{assignment}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *names, "total", "max"])
        writer.writerows([student, *row, sum(row), most] for student, row in points.items())
    width = max(len(s) for s in [*table, "student"])
    print(f"{assignment}: points per notebook (autograded now; written answers count once graded by hand)")
    print(f"{'student':{width}}  " + "  ".join(n[:2] for n in names) + "  total")
    for student, row in points.items():
        print(f"{student:{width}}  " + "  ".join(f"{p:2g}" for p in row) + f"  {sum(row):g}/{most:g}")
    print(f"{'max':{width}}  " + "  ".join(f"{maximum[n]:2g}" for n in names))
    waiting = {student: names for student, names in manual.items() if names}
    if waiting:
        print(f"\nWritten answers to grade by hand ({sum(map(len, waiting.values()))} notebooks): "
              + "; ".join(f"{student}: {', '.join(n[:2] for n in names)}"
                          for student, names in sorted(waiting.items())))
        print("Grade them in formgrader: `make instructor`, then `make lab`, menu Nbgrader > Formgrader > Manual "
              f"Grading > {assignment} (rubrics in INSTRUCTORS.md). Then `make scores ASSIGNMENT={assignment}` prints "
              "this table with their points, without grading again.")
    print(f"Scores per notebook also in {course_dir / f'grades-{assignment}.csv'}; graded notebooks in "
          f"{course_dir / 'autograded'}/.")
    return table


def misnamed(course_dir, assignment):
    """{student: [submitted files that are not a notebook of the assignment]}: renamed files score 0."""
    expected = {p.name for p in (course_dir / "release" / assignment).glob("*.ipynb")}
    return {folder.parent.name: sorted(p.name for p in folder.glob("*.ipynb") if p.name not in expected)
            for folder in sorted((course_dir / "submitted").glob(f"*/{assignment}"))
            if any(p.name not in expected for p in folder.glob("*.ipynb"))}


def ensure_released(course_dir, assignment):
    """The whole course can be released on the fly; a weekly assignment must have been released."""
    if (course_dir / "release" / assignment).exists():
        return
    if assignment != ASSIGNMENT:
        sys.exit(f"Assignment '{assignment}' was never released in {course_dir}: run `make exercises "
                 f"ASSIGNMENT={assignment} NOTEBOOKS=\"...\"` first, with the notebooks it holds.")
    release(out=None, course_dir=course_dir, assignment=assignment)


def zip_collect(course_dir=COURSE_DIR, assignment=ASSIGNMENT):
    """`nbgrader zip_collect`: the LMS download in downloaded/<assignment>/archive/ into submitted/."""
    archive = course_dir / "downloaded" / assignment / "archive"
    if not any(archive.glob("*")):
        sys.exit(f"Nothing to collect: put the LMS's zip file(s) or the notebooks, named <student>_<notebook>.ipynb, "
                 f"in {archive}/ and run this again.")
    ensure_released(course_dir, assignment)
    return nbgrader(course_dir, "zip_collect", assignment, "--force")


def grade(course_dir=COURSE_DIR, assignment=ASSIGNMENT):
    """Autograde every collected submission of `assignment` and print the score table."""
    submitted = course_dir / "submitted"
    students = sorted(p.parent.name for p in submitted.glob(f"*/{assignment}")) if submitted.exists() else []
    if not students:
        sys.exit(f"Nothing to grade: put each student's notebooks in {submitted}/<student>/{assignment}/ "
                 f"(nbgrader collect, or nbgrader zip_collect, does this), then run `make grade` again.")
    ensure_released(course_dir, assignment)
    wrong = misnamed(course_dir, assignment)
    for student, names in wrong.items():
        print(f"⚠ {student} submitted {', '.join(names)}: not a notebook of {assignment} (renamed?), so not graded. "
              f"Rename it to the released name and run `make grade ASSIGNMENT={assignment}` again.")
    # nbgrader stops the whole run at a submission without any notebook of the assignment: leave those out
    released = {p.name for p in (course_dir / "release" / assignment).glob("*.ipynb")}
    nothing = sorted(student for student in students
                     if not any(p.name in released for p in (submitted / student / assignment).glob("*.ipynb")))
    if len(nothing) < len(students):
        nbgrader(course_dir, "autograde", assignment, "--force",
                 *([f"--CourseDirectory.student_id_exclude={','.join(nothing)}"] if nothing else []))
    for student in nothing:
        print(f"⚠ {student}: no notebook of {assignment} was submitted under its released name: "
              "nothing graded (0 points).")
    return print_scores(course_dir, assignment)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    r = commands.add_parser("release", help="write the exercise (student) copies")
    r.add_argument("--out", default=str(ROOT / "exercises"))
    r.add_argument("--force", action="store_true", help="replace exercise copies that already exist")
    r.add_argument("--missing-only", action="store_true",
                   help="do nothing when every notebook already has its exercise copy (what `make lab` runs)")
    r.add_argument("--notebooks", nargs="*", default=None, help="two-digit numbers, e.g. 00 01 (default: all)")
    for name, text in (("zip_collect", "collect an LMS download into submitted/"),
                       ("grade", "autograde collected submissions and print the scores"),
                       ("scores", "print the score table from the gradebook, without grading again")):
        commands.add_parser(name, help=text)
    for command in commands.choices.values():
        command.add_argument("--assignment", default=ASSIGNMENT, help=f"assignment name (default {ASSIGNMENT})")
    args = parser.parse_args(argv)
    if args.command == "release":
        if args.missing_only and not missing(args.out):
            return
        release(Path(args.out), force=args.force, assignment=args.assignment, numbers=args.notebooks)
    elif args.command == "zip_collect":
        print(zip_collect(assignment=args.assignment))
    elif args.command == "grade":
        grade(assignment=args.assignment)
    else:
        print_scores(assignment=args.assignment)


if __name__ == "__main__":
    main()
