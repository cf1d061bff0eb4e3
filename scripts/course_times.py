"""The course's times, kept the same in the README, INSTRUCTORS.md and every notebook's header.

Teaching and exercise minutes are estimated from the notebooks at a stated pace (PACE below, and
INSTRUCTORS.md says it): teaching from the words and code lines a learner reads outside the exercises,
exercises from each task's words and its reference answer's lines; computing times come from `make bench` in full mode on 2 cores (build/bench.json) and on 1 core
(`make bench ARGS="--skip-throughput --cpus 1"`: build/bench-1cpu.json), quick mode from a quick run
saved as build/bench-quick.json.

    python scripts/course_times.py           # check that the three places agree (tests run this)
    python scripts/course_times.py --write   # write the benchmark's figures into all three
    python scripts/course_times.py --sync    # after editing minutes in INSTRUCTORS.md: copy them to the others
    python scripts/course_times.py --estimate  # minutes from the notebooks at PACE into all three
"""
import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README, INSTRUCTORS = ROOT / "README.md", ROOT / "INSTRUCTORS.md"
PEAKS = ROOT / "helpers" / "peak_memory.json"  # each notebook's peak MB, read by runtime.ensure_memory_fits

# | 00 · environment and vocabulary | 20 min | 25 min | 11 s | 12 s | 10 s | prerequisites |
INSTRUCTORS_ROW = re.compile(r"^\| (\d\d) · ([^|]+?) \| (\d+) min \| (\d+) min \| (\d+) s \| (\d+) s \| (\d+) s \| ([^|]+?) \|$", re.M)
# **Time:** teaching 20 min · exercises 25 min · computing in full mode 11 s on 2 cores, 12 s on 1 core
NOTEBOOK_TIME = re.compile(r"\*\*Time:\*\* teaching (\d+) min · exercises (\d+) min · computing in full mode "
                           r"(\d+) s on 2 cores, (\d+) s on 1 core")
NOTEBOOK_PARAGRAPH = re.compile(r"\*\*Time:\*\*.*?(?=\n\n|\Z)", re.S)
# INSTRUCTORS.md's assessment table: | 00 | 1 · title | code | 2 | easy | 10 | what it assesses |
ASSESSMENT_ROW = re.compile(r"^(\| (\d\d) \| (\d+|Q) · [^|]+\| (?:code|written) \| \d+ \| [^|]+ \| )(\d+)( \|.*)$", re.M)
# INSTRUCTORS.md's sample schedules: | 1 | 00, 01, 02 | 325 min | assignment |
SCHEDULE_ROW = re.compile(r"^\| (\d) \| ((?:\d\d, )*\d\d) \| (\d+) min \|", re.M)
# the README's course table: last column "20 + 25 min · 11 s / 12 s"
README_COURSE_ROW = re.compile(r"^(\| \[(\d\d) · .*\| )(\d+) \+ (\d+) min · (\d+) s / (\d+) s \|$", re.M)
# the README's speed table: | 00 environment and vocabulary | 11 s | 12 s | 10 s | 741 |
README_SPEED_ROW = re.compile(r"^\| (\d\d) ([^|·]+?) \| (\d+) s \| (\d+) s \| (\d+) s \| ([\d,]+)( [^|]*)? \|$", re.M)
README_SPEED_TOTAL = re.compile(r"^\| whole course \| (\d+) s \| (\d+) s \| (\d+) s \| ([\d,]+) max \|$", re.M)
INSTRUCTORS_TOTAL = re.compile(r"^\| whole course \| (\d+) min \| (\d+) min \| (\d+) s \| (\d+) s \| (\d+) s \| \|$", re.M)


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


def estimate(path, each=None):
    """(teaching minutes, exercise minutes) of a notebook at PACE (`each`: its exercise_minutes,
    when already computed)."""
    teaching = 0.0
    for cell in json.loads(path.read_text())["cells"][1:]:  # the header is read with the course table
        text = "".join(cell["source"])
        if not cell.get("metadata", {}).get("nbgrader"):
            teaching += (_words(text) / PACE["prose_words_per_minute"] if cell["cell_type"] == "markdown"
                         else len(_code_lines(text)) / PACE["code_lines_per_minute"])
    return int(_up_to_5(teaching)), sum((each or exercise_minutes(path)).values())


def notebooks():
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def instructors_table(text=None):
    """{number: dict(teaching, exercises, full, one_core, quick, prerequisites)} from INSTRUCTORS.md."""
    text = INSTRUCTORS.read_text() if text is None else text
    return {m[1]: dict(title=m[2], teaching=int(m[3]), exercises=int(m[4]), full=int(m[5]), one_core=int(m[6]),
                       quick=int(m[7]), prerequisites=m[8]) for m in INSTRUCTORS_ROW.finditer(text)}


def first_cell(path):
    return "".join(json.loads(path.read_text())["cells"][0]["source"])


def problems():
    """Every disagreement between INSTRUCTORS.md, the README and the notebooks' headers, in words."""
    table, found = instructors_table(), []
    numbers = [p.name[:2] for p in notebooks()]
    if sorted(table) != numbers:
        found.append(f"INSTRUCTORS.md's time table lists {sorted(table)}, the notebooks are {numbers}")
    instructors = INSTRUCTORS.read_text()
    for path in notebooks():
        row, match = table.get(path.name[:2]), NOTEBOOK_TIME.search(first_cell(path))
        if row is None:
            continue
        listed = {m[3]: int(m[4]) for m in ASSESSMENT_ROW.finditer(instructors) if m[2] == path.name[:2]}
        each = exercise_minutes(path)
        if listed != each:
            found.append(f"INSTRUCTORS.md's assessment table gives {path.name[:2]}'s exercises {listed} minutes; "
                         f"at the stated pace they take {each} (--estimate)")
        minutes = estimate(path, each)
        if (row["teaching"], row["exercises"]) != minutes:
            found.append(f"INSTRUCTORS.md gives {path.name[:2]} {row['teaching']} + {row['exercises']} min; "
                         f"at the stated pace it takes {minutes[0]} + {minutes[1]} (--estimate)")
        if not match:
            found.append(f"{path.name}: no '**Time:** teaching N min · exercises N min · computing ...' line")
        elif tuple(map(int, match.groups())) != (row["teaching"], row["exercises"], row["full"], row["one_core"]):
            found.append(f"{path.name} says {match.group(0)!r}; INSTRUCTORS.md says {row}")
        if f"**Prerequisites:** {row['prerequisites']}" not in first_cell(path):
            found.append(f"{path.name}: prerequisites differ from INSTRUCTORS.md's ({row['prerequisites']})")
    readme = README.read_text()
    course = {m[2]: tuple(map(int, m.groups()[2:])) for m in README_COURSE_ROW.finditer(readme)}
    speed = {m[1]: (int(m[3]), int(m[4]), int(m[5])) for m in README_SPEED_ROW.finditer(readme)}
    for number, row in table.items():
        if course.get(number) != (row["teaching"], row["exercises"], row["full"], row["one_core"]):
            found.append(f"README's course table, {number}: {course.get(number)}; INSTRUCTORS.md: {row}")
        if speed.get(number) != (row["full"], row["one_core"], row["quick"]):
            found.append(f"README's speed table, {number}: {speed.get(number)}; INSTRUCTORS.md: {row}")
    peaks = {m[1]: int(m[6].replace(",", "")) for m in README_SPEED_ROW.finditer(readme)}
    if peaks != json.loads(PEAKS.read_text()):
        found.append(f"helpers/peak_memory.json (the memory guard's figures) differs from the README's peaks {peaks}")
    total = README_SPEED_TOTAL.search(readme)
    sums = tuple(sum(row[k] for row in table.values()) for k in ("full", "one_core", "quick"))
    if not total or tuple(map(int, total.groups()[:3])) != sums:
        found.append(f"README's 'whole course' row should read {sums[0]} s | {sums[1]} s | {sums[2]} s")
    for week in SCHEDULE_ROW.finditer(instructors):  # the sample schedules' weeks
        numbers = week[2].split(", ")
        minutes = sum(table[n]["teaching"] + table[n]["exercises"] for n in numbers if n in table)
        if minutes != int(week[3]):
            found.append(f"INSTRUCTORS.md's schedule gives week {week[1]} ({week[2]}) {week[3]} min; "
                         f"the times table adds up to {minutes}")
    total = INSTRUCTORS_TOTAL.search(instructors)
    sums = tuple(sum(row[k] for row in table.values()) for k in ("teaching", "exercises", "full", "one_core", "quick"))
    if not total or tuple(map(int, total.groups())) != sums:
        found.append(f"INSTRUCTORS.md's 'whole course' row should read {sums}")
    return found


def _bench(path):
    if not path.exists():
        sys.exit(f"{path.relative_to(ROOT)} is missing: run `make bench` first (see this script's docstring)")
    rows = json.loads(path.read_text()).get("notebooks", [])
    failed = [row["name"] for row in rows if not row["ok"]]
    if failed:
        sys.exit(f"{path.relative_to(ROOT)}: these notebooks failed in the benchmark: {failed}")
    return {row["name"][:2]: row for row in rows}


def sync():
    """Copy INSTRUCTORS.md's table as it stands (minutes edited by hand) into its total, the README and the headers."""
    text = INSTRUCTORS.read_text()
    table = instructors_table(text)
    INSTRUCTORS.write_text(INSTRUCTORS_TOTAL.sub("| whole course | {} min | {} min | {} s | {} s | {} s | |".format(*_sums(table)), text))
    _write_readme_rows_and_headers(table)


def write_estimates():
    """Put the minutes estimated at PACE into INSTRUCTORS.md's table, then everywhere else."""
    text = INSTRUCTORS.read_text()
    each = {path.name[:2]: exercise_minutes(path) for path in notebooks()}
    minutes = {path.name[:2]: estimate(path, each[path.name[:2]]) for path in notebooks()}
    text = INSTRUCTORS_ROW.sub(lambda m: "| {} · {} | {} min | {} min | {} s | {} s | {} s | {} |".format(
        m[1], m[2], *minutes[m[1]], m[5], m[6], m[7], m[8]), text)
    text = ASSESSMENT_ROW.sub(lambda m: f"{m[1]}{each[m[2]].get(m[3], m[4])}{m[5]}", text)
    text = SCHEDULE_ROW.sub(lambda m: "| {} | {} | {} min |".format(
        m[1], m[2], sum(sum(minutes[n]) for n in m[2].split(", "))), text)
    INSTRUCTORS.write_text(text)
    sync()


def _sums(table):
    return [sum(row[k] for row in table.values()) for k in ("teaching", "exercises", "full", "one_core", "quick")]


def _write_readme_rows_and_headers(table):
    readme = README_COURSE_ROW.sub(lambda m: "{}{} + {} min · {} s / {} s |".format(
        m[1], *(table[m[2]][k] for k in ("teaching", "exercises", "full", "one_core"))), README.read_text())
    README.write_text(readme)
    for path in notebooks():
        row = table[path.name[:2]]
        line = (f"**Time:** teaching {row['teaching']} min · exercises {row['exercises']} min · computing in full mode "
                f"{row['full']} s on 2 cores, {row['one_core']} s on 1 core (`make bench`; quick mode is shorter). "
                f"**Prerequisites:** {row['prerequisites']}.")
        nb = json.loads(path.read_text())
        first = NOTEBOOK_PARAGRAPH.sub(lambda m: line, "".join(nb["cells"][0]["source"]), count=1)
        nb["cells"][0]["source"] = first.splitlines(True)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def write():
    """Put the benchmark's figures into INSTRUCTORS.md, the README and every notebook's header."""
    full, one_core = _bench(ROOT / "build" / "bench.json"), _bench(ROOT / "build" / "bench-1cpu.json")
    quick = _bench(ROOT / "build" / "bench-quick.json")
    for name, rows, mode in (("bench.json", full, "full"), ("bench-1cpu.json", one_core, "full"),
                             ("bench-quick.json", quick, "quick")):
        if any(row["mode"] != mode for row in rows.values()):
            sys.exit(f"build/{name} should hold {mode}-mode rows")
    text = INSTRUCTORS.read_text()
    table = instructors_table(text)
    for number, row in table.items():
        row.update(full=round(full[number]["seconds"]), one_core=round(one_core[number]["seconds"]),
                   quick=round(quick[number]["seconds"]))
    text = INSTRUCTORS_ROW.sub(lambda m: "| {0} · {1} | {2} min | {3} min | {4} s | {5} s | {6} s | {7} |".format(
        m[1], m[2], *(table[m[1]][k] for k in ("teaching", "exercises", "full", "one_core", "quick", "prerequisites"))), text)
    INSTRUCTORS.write_text(text)
    sync()  # the total, the README's course table and the notebooks' headers

    readme = README.read_text()
    readme = README_SPEED_ROW.sub(lambda m: "| {} {} | {} s | {} s | {} s | {:,}{} |".format(
        m[1], m[2], table[m[1]]["full"], table[m[1]]["one_core"], table[m[1]]["quick"],
        max(full[m[1]]["peak_rss_mb"], one_core[m[1]]["peak_rss_mb"]), m[7] or ""), readme)
    PEAKS.write_text(json.dumps({n: max(r["peak_rss_mb"], one_core[n]["peak_rss_mb"]) for n, r in sorted(full.items())},
                                indent=1) + "\n")
    peak = max(max(r["peak_rss_mb"], one_core[n]["peak_rss_mb"]) for n, r in full.items())
    readme = README_SPEED_TOTAL.sub("| whole course | {} s | {} s | {} s | {:,} max |".format(*_sums(table)[2:], peak), readme)
    README.write_text(readme)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write the benchmark's figures into all three places")
    parser.add_argument("--sync", action="store_true", help="copy INSTRUCTORS.md's minutes into the README and headers (no benchmark)")
    parser.add_argument("--estimate", action="store_true", help="estimate the minutes from the notebooks at PACE")
    args = parser.parse_args()
    if args.estimate:
        write_estimates()
    if args.write:
        write()
    elif args.sync:
        sync()
    found = problems()
    for problem in found:
        print("✗", problem)
    print("README, INSTRUCTORS.md and the notebooks agree on the course's times" if not found else
          f"{len(found)} disagreement(s): run `python scripts/course_times.py --estimate` (minutes) or "
          f"`--write` (after `make bench`)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
