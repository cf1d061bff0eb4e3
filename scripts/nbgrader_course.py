"""The course as an nbgrader assignment: student copies and autograding, with nbgrader itself.

    python scripts/nbgrader_course.py release [--out exercises] [--force]   (make exercises)
    python scripts/nbgrader_course.py grade                                  (make grade)

`release` copies `notebooks/` into an nbgrader course folder (`build/nbgrader`, git-ignored) as the
source of one assignment, `fedcourse`, runs `nbgrader generate_assignment`, and copies the student
version of every notebook to `--out` (default `exercises/`, beside `notebooks/`). Files already
there are kept (a learner's work), unless `--force`.

`grade` runs `nbgrader autograde fedcourse` on whatever has been collected into
`build/nbgrader/submitted/<student>/fedcourse/*.ipynb` and prints a score table (also written to
`build/nbgrader/grades.csv`). Notebooks run in quick mode unless COURSE_QUICK=0.

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

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
COURSE_DIR = ROOT / "build" / "nbgrader"
COURSE_ID = ASSIGNMENT = "fedcourse"  # one course, one assignment: every notebook

CONFIG = '''\
# Written by scripts/nbgrader_course.py: the course folder of the course's nbgrader assignment.
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.root = {root!r}
# Quick-mode notebooks need up to about a minute a cell; full mode about three (notebook 05).
c.Execute.timeout = 1200
'''


def notebooks():
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


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


def prepare(course_dir=COURSE_DIR):
    """The course folder with `notebooks/` as the source of the assignment."""
    source = course_dir / "source" / ASSIGNMENT
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    for path in notebooks():
        shutil.copy2(path, source / path.name)
    (course_dir / "nbgrader_config.py").write_text(CONFIG.format(course_id=COURSE_ID, root=str(course_dir)))


SOLVED = "*The solved edition:"  # how each master's first cell starts its note (notebooks/NN_*.ipynb)


def label_exercise_copy(path):
    """In a student copy, the master's note "the solved edition: ... open the exercise copy" becomes
    "your exercise copy: ... the solved edition is notebooks/NN"."""
    notebook = json.loads(path.read_text())
    first = "".join(notebook["cells"][0]["source"])
    lines = first.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(SOLVED):
            lines[i] = (f"*Your exercise copy: write the exercises here; each self-check cell says whether your answer "
                        f"is right. The solved edition is [notebooks/{path.name}](../notebooks/{path.name}).*")
    notebook["cells"][0]["source"] = "\n".join(lines).splitlines(keepends=True)
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def missing(out=ROOT / "exercises"):
    """The masters that have no exercise copy in `out` yet."""
    return [p.name for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) if not (Path(out) / p.name).exists()]


def release(out=ROOT / "exercises", force=False, course_dir=COURSE_DIR):
    """Generate the student version of every notebook; copy it to `out`. Returns the release folder."""
    graded = sorted(p.parent.name for p in (course_dir / "autograded").glob(f"*/{ASSIGNMENT}"))
    if graded:  # nbgrader would stop with a traceback: it protects the grades of an assignment's submissions
        sys.exit(f"{course_dir} already holds graded submissions of '{ASSIGNMENT}' ({', '.join(graded)}), and "
                 f"nbgrader will not regenerate an assignment that has submissions. Keep the grades "
                 f"({course_dir / 'grades.csv'}), move the folder aside (e.g. `mv {course_dir} {course_dir}-graded`), "
                 f"then run `make exercises` again.")
    prepare(course_dir)
    nbgrader(course_dir, "generate_assignment", ASSIGNMENT, "--force")
    released = course_dir / "release" / ASSIGNMENT
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


def scores(course_dir=COURSE_DIR):
    """{student: {notebook: (score, max_score)}} from the gradebook, for every submission graded."""
    from nbgrader.api import Gradebook, MissingEntry

    table = {}
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", course_id=COURSE_ID) as gradebook:
        assignment = gradebook.find_assignment(ASSIGNMENT)
        for student in gradebook.students:
            try:
                submission = gradebook.find_submission(ASSIGNMENT, student.id)
            except MissingEntry:
                continue
            table[student.id] = {nb.name: (nb.score, nb.max_score) for nb in submission.notebooks}
        maximum = {nb.name: nb.max_score for nb in assignment.notebooks}
    return table, maximum


def grade(course_dir=COURSE_DIR):
    """Autograde every collected submission and print the score table."""
    submitted = course_dir / "submitted"
    students = sorted(p.parent.name for p in submitted.glob(f"*/{ASSIGNMENT}")) if submitted.exists() else []
    if not students:
        sys.exit(f"Nothing to grade: put each student's notebooks in {submitted}/<student>/{ASSIGNMENT}/ "
                 f"(nbgrader collect, or nbgrader zip_collect, does this), then run `make grade` again.")
    if not (course_dir / "release" / ASSIGNMENT).exists():
        release(out=None, course_dir=course_dir)
    nbgrader(course_dir, "autograde", ASSIGNMENT, "--force")
    table, maximum = scores(course_dir)
    names, most = sorted(maximum), sum(maximum.values())
    points = {student: [row.get(n, (0, 0))[0] for n in names] for student, row in sorted(table.items())}
    with open(course_dir / "grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *names, "total", "max"])
        writer.writerows([student, *row, sum(row), most] for student, row in points.items())
    width = max(len(s) for s in [*table, "student"])
    print(f"{'student':{width}}  " + "  ".join(n[:2] for n in names) + "  total")
    for student, row in points.items():
        print(f"{student:{width}}  " + "  ".join(f"{p:2g}" for p in row) + f"  {sum(row):g}/{most:g}")
    print(f"{'max':{width}}  " + "  ".join(f"{maximum[n]:2g}" for n in names))
    print(f"Scores per notebook also in {course_dir / 'grades.csv'}; graded notebooks in {course_dir / 'autograded'}/.")
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    r = commands.add_parser("release", help="write the exercise (student) copies")
    r.add_argument("--out", default=str(ROOT / "exercises"))
    r.add_argument("--force", action="store_true", help="replace exercise copies that already exist")
    r.add_argument("--missing-only", action="store_true",
                   help="do nothing when every notebook already has its exercise copy (what `make lab` runs)")
    commands.add_parser("grade", help="autograde collected submissions and print the scores")
    args = parser.parse_args(argv)
    if args.command == "release":
        if args.missing_only and not missing(args.out):
            return
        release(Path(args.out), force=args.force)
    else:
        grade()


if __name__ == "__main__":
    main()
