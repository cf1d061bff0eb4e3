"""The course's times, kept in one file, docs/course.json, and printed from it everywhere else.

docs/course.json holds each notebook's name, summary and prerequisites (edited by hand), its teaching
and exercise minutes (estimated from the notebook at PACE below) and its computing seconds and peak
memory (measured by `make bench`). The README's and INSTRUCTORS.md's tables are `[[[cog]]]` blocks
that call the functions below; each notebook's header carries its "**Time:**" line.

    python scripts/course_times.py             # check that everything agrees (tests run this)
    python scripts/course_times.py --estimate  # minutes from the notebooks; regenerate tables and headers
    python scripts/course_times.py --write     # the same, with `make bench`'s figures: build/bench.json
                                               # (full mode, 2 cores), bench-1cpu.json (`--cpus 1`),
                                               # bench-quick.json (`--quick`)
"""
import argparse
import io
import json
import re
import sys
from pathlib import Path

import nbwriter

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "docs" / "course.json"
TABLES = [ROOT / "README.md", ROOT / "INSTRUCTORS.md"]  # their [[[cog]]] blocks call the functions below
PEAKS = ROOT / "helpers" / "peak_memory.json"  # each notebook's peak MB, read by runtime.ensure_memory_fits
HEADER = re.compile(r"\*\*Time:\*\*.*?(?=\n\n|\Z)", re.S)  # the header's paragraph that header_line() writes
# INSTRUCTORS.md's assessment table: | 00 | 1 · title | code | 2 | easy | 10 | what it assesses |
ASSESSMENT_ROW = re.compile(r"^(\| (\d\d) \| (\d+|Q) · [^|]+\| (?:code|written) \| \d+ \| [^|]+ \| )(\d+)( \|.*)$",
                            re.M)

# The pace the minutes assume: an assumption about a class, not a measurement of learners (pilot it).
PACE = dict(
    prose_words_per_minute=60,  # about a third of silent technical reading: predict, run, discuss
    code_lines_per_minute=5,  # read a teaching cell, run it, read what it prints
    task_words_per_minute=100,  # read an exercise's instructions
    minutes_per_answer_line=2,  # write, run and fix one line of the reference answer
    minutes_per_exercise=5,  # run the self-check and read what it says, per exercise
    minutes_per_question=10,  # a written answer of a few sentences, quoting one's own figures
)
SOLUTION = ("### BEGIN SOLUTION", "### END SOLUTION")


def _words(markdown):
    """Words a learner reads: hints and "under the hood" notes are folded, link targets are not read."""
    markdown = re.sub(r"<details>.*?</details>", "", markdown, flags=re.S)
    markdown = re.sub(r"\]\([^)]*\)", "]", markdown)
    return len(re.findall(r"[A-Za-z0-9][\w'’.-]*", markdown))


def _code_lines(code):
    return [line for line in code.splitlines() if line.strip() and not line.strip().startswith("#")]


def _up_to_5(minutes):
    return max(5, 5 * -(-round(minutes, 6) // 5))


def exercise_minutes(path):
    """{"1": minutes, "2": ..., "Q": ...} of a notebook's exercises and written question at PACE."""
    minutes = {}
    for cell in json.loads(path.read_text())["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
        text = "".join(cell["source"])
        found = re.fullmatch(r"nb\d\d_(ex(\d+)|q\d+)_(task|solution)", grade_id)
        if not found:
            continue
        key = found[2] or "Q"
        if found[3] == "task":
            minutes[key] = minutes.get(key, 0) + _words(text) / PACE["task_words_per_minute"] + PACE[
                "minutes_per_question" if key == "Q" else "minutes_per_exercise"]
        elif cell["cell_type"] == "code" and SOLUTION[0] in text:
            answer = text.split(SOLUTION[0])[1].split(SOLUTION[1])[0]
            minutes[key] = minutes.get(key, 0) + len(_code_lines(answer)) * PACE["minutes_per_answer_line"]
    return {key: int(_up_to_5(value)) for key, value in minutes.items()}


def teaching_minutes(path):
    """A notebook's teaching minutes at PACE: its prose and code outside the exercises."""
    teaching = 0.0
    for cell in json.loads(path.read_text())["cells"][1:]:  # the header is read with the course table
        text = "".join(cell["source"])
        if not cell.get("metadata", {}).get("nbgrader"):
            teaching += (_words(text) / PACE["prose_words_per_minute"] if cell["cell_type"] == "markdown"
                         else len(_code_lines(text)) / PACE["code_lines_per_minute"])
    return int(_up_to_5(teaching))


def notebooks():
    return {p.name[:2]: p for p in nbwriter.NOTEBOOKS}


def load():
    return json.loads(DATA.read_text())["notebooks"]


def _exercises(row):
    return sum(row["exercise_min"].values())


def _total(table, key):
    return sum(_exercises(row) if key == "exercises" else row[key] for row in table.values())


# --- What the [[[cog]]] blocks of README.md and INSTRUCTORS.md print ---------------------------------------


def _table(header, align, rows):
    cells = ["|" + "|".join(f" {cell} " if str(cell) else " " for cell in row) + "|" for row in rows]
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|", *cells]) + "\n"


def readme_course_table():
    return _table(["notebook", "what you do", "time: teaching + exercises · computing, full mode, 2 cores / 1 core"],
                  ["---"] * 3, [[f"[{n} · {r['name']}](notebooks/{notebooks()[n].name})", r["summary"],
                                 f"{r['teaching_min']} + {_exercises(r)} min · {r['full_s']} s / {r['one_core_s']} s"]
                                for n, r in load().items()])


def readme_speed_table():
    table = load()
    rows = [[f"{n} · {r['name']}", f"{r['full_s']} s", f"{r['one_core_s']} s", f"{r['quick_s']} s",
             f"{r['peak_mb']:,}" + (f" {r['peak_note']}" if r.get("peak_note") else "")] for n, r in table.items()]
    rows.append(["whole course", *(f"{_total(table, k)} s" for k in ("full_s", "one_core_s", "quick_s")),
                 f"{max(r['peak_mb'] for r in table.values()):,} max"])
    return _table(["notebook", "full, 2 cores", "full, 1 core", "quick, 2 cores", "peak MB, full (kernel + workers)"],
                  ["---"] + ["---:"] * 4, rows)


def instructors_table():
    table = load()
    rows = [[f"{n} · {r['name']}", f"{r['teaching_min']} min", f"{_exercises(r)} min", f"{r['full_s']} s",
             f"{r['one_core_s']} s", f"{r['quick_s']} s", r["prerequisites"]] for n, r in table.items()]
    rows.append(["whole course", f"{_total(table, 'teaching_min')} min", f"{_total(table, 'exercises')} min",
                 *(f"{_total(table, k)} s" for k in ("full_s", "one_core_s", "quick_s")), ""])
    return _table(["notebook", "teaching", "exercises", "full mode, 2 cores", "full mode, 1 core",
                   "quick mode, 2 cores", "prerequisites"], ["---"] + ["---:"] * 5 + ["---"], rows)


def schedule_table(*weeks):
    """A schedule: each week's notebooks ("00 01 02"), their minutes, the command that releases them."""
    table, rows = load(), []
    for week, numbers in enumerate(map(str.split, weeks), start=1):
        if not set(numbers) <= set(table):
            raise ValueError(f"week {week}: no notebook {sorted(set(numbers) - set(table))} in {DATA.name}")
        command = f'{"make exercises " if week == 1 else ""}ASSIGNMENT=week{week} NOTEBOOKS="{" ".join(numbers)}"'
        minutes = sum(table[n]["teaching_min"] + _exercises(table[n]) for n in numbers)
        rows.append([week, ", ".join(numbers), f"{minutes} min", f"`{command}`"])
    return _table(["week", "notebooks", "teaching + exercises", "assignment"], ["---", "---", "---:", "---"], rows)


def header_line(row):
    """The "**Time:**" paragraph of a notebook's first cell."""
    return (f"**Time:** teaching {row['teaching_min']} min · exercises {_exercises(row)} min · computing in full "
            f"mode {row['full_s']} s on 2 cores, {row['one_core_s']} s on 1 core (`make bench`; quick mode is "
            f"shorter). **Prerequisites:** {row['prerequisites']}.")


# --- Checking and writing --------------------------------------------------------------------------------


def _cog(*args):
    """Run cog on the README and INSTRUCTORS.md; (exit status, what it printed)."""
    from cogapp import Cog

    cog, printed = Cog(), io.StringIO()
    cog.set_output(stdout=printed, stderr=printed)
    status = cog.main(["cog", *args, "-I", str(ROOT / "scripts"), *map(str, TABLES)])
    return status, printed.getvalue()


def problems():
    """Everything that disagrees with docs/course.json or with the estimate at PACE, in words."""
    table, paths, found = load(), notebooks(), []
    if list(table) != list(paths):
        found.append(f"{DATA.relative_to(ROOT)} lists notebooks {list(table)}; the notebooks are {list(paths)}")
    assessment = ROOT / "INSTRUCTORS.md"
    listed = {(m[2], m[3]): int(m[4]) for m in ASSESSMENT_ROW.finditer(assessment.read_text())}
    for number, path in paths.items():
        row = table.get(number)
        if row is None:
            continue
        estimated = (teaching_minutes(path), exercise_minutes(path))
        if estimated != (row["teaching_min"], row["exercise_min"]):
            found.append(f"{path.name}: at the stated pace {estimated}; {DATA.relative_to(ROOT)} says "
                         f"{(row['teaching_min'], row['exercise_min'])} (--estimate)")
        header = HEADER.search("".join(nbwriter.read(path).cells[0].source))
        if not header or header[0] != header_line(row):
            found.append(f"{path.name}: its header's time line should read {header_line(row)!r} (--estimate)")
        mine = {key: minutes for (n, key), minutes in listed.items() if n == number}
        if mine != row["exercise_min"]:
            found.append(f"INSTRUCTORS.md's assessment table gives {number}'s exercises {mine} minutes; "
                         f"{DATA.relative_to(ROOT)}: {row['exercise_min']} (--estimate)")
    if json.loads(PEAKS.read_text()) != {number: row["peak_mb"] for number, row in table.items()}:
        found.append(f"{PEAKS.relative_to(ROOT)} (the memory guard's figures) differs from {DATA.relative_to(ROOT)}")
    status, printed = _cog("--check")
    if status:
        found.append(f"the tables in {', '.join(p.name for p in TABLES)} are not what {DATA.relative_to(ROOT)} "
                     f"gives (--estimate regenerates them): {printed.strip()}")
    return found


def _bench(name, mode):
    path = ROOT / "build" / name
    if not path.exists():
        sys.exit(f"build/{name} is missing: run `make bench` first (see this script's docstring)")
    rows = {row["name"][:2]: row for row in json.loads(path.read_text()).get("notebooks", [])}
    failed = [row["name"] for row in rows.values() if not row["ok"]]
    if failed or any(row["mode"] != mode for row in rows.values()):
        sys.exit(f"build/{name} should hold {mode}-mode rows of notebooks that ran; failed: {failed}")
    return rows


def write(bench=False):
    """Estimate the minutes (and, with `bench`, read the measured seconds) into docs/course.json; then
    regenerate the tables, the notebooks' headers (only those that change) and the memory guard's figures."""
    everything = json.loads(DATA.read_text())
    table, paths = everything["notebooks"], notebooks()
    if set(table) != set(paths):
        sys.exit(f"{DATA.relative_to(ROOT)} lists notebooks {sorted(table)}; the notebooks are {sorted(paths)}: "
                 f"add or remove its entries (name, summary, prerequisites) first")
    measured = bench and [_bench("bench.json", "full"), _bench("bench-1cpu.json", "full"),
                          _bench("bench-quick.json", "quick")]
    for number, path in paths.items():
        row = table[number]
        row.update(teaching_min=teaching_minutes(path), exercise_min=exercise_minutes(path))
        if measured:
            full, one_core, quick = (rows[number] for rows in measured)
            row.update(full_s=round(full["seconds"]), one_core_s=round(one_core["seconds"]),
                       quick_s=round(quick["seconds"]), peak_mb=max(full["peak_rss_mb"], one_core["peak_rss_mb"]))
    DATA.write_text(json.dumps(everything, indent=1, ensure_ascii=False) + "\n")
    PEAKS.write_text(json.dumps({number: row["peak_mb"] for number, row in table.items()}, indent=1) + "\n")
    status, printed = _cog("-r")
    if status:
        sys.exit(f"cog could not regenerate the tables:\n{printed}")
    instructors = ROOT / "INSTRUCTORS.md"
    instructors.write_text(ASSESSMENT_ROW.sub(
        lambda m: f"{m[1]}{table[m[2]]['exercise_min'].get(m[3], m[4])}{m[5]}", instructors.read_text()))
    for number, path in paths.items():
        notebook = nbwriter.read(path)
        first = HEADER.sub(lambda m: header_line(table[number]), notebook.cells[0].source, count=1)
        if first != notebook.cells[0].source:
            notebook.cells[0].source = first
            nbwriter.write(notebook, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--estimate", action="store_true", help="minutes from the notebooks; regenerate everything")
    parser.add_argument("--write", action="store_true", help="--estimate, and the figures of `make bench`")
    args = parser.parse_args()
    if args.estimate or args.write:
        write(bench=args.write)
    found = problems()
    for problem in found:
        print("✗", problem)
    print(f"{DATA.relative_to(ROOT)}, the README, INSTRUCTORS.md and the notebooks agree on the course's times"
          if not found else f"{len(found)} disagreement(s): run `python scripts/course_times.py --estimate`")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
