# The course's commands. `make lab` to learn, `make test` to check everything (what CI runs); `make help` lists them.
# `make` alone builds the environment (setup, the first target).
PYTHON ?=
VENV ?= .venv
# The GitHub repository Binder builds the course from: `make badges BINDER_REPO=owner/name` rewrites every Binder link.
BINDER_REPO ?= fedcourse/tff-federated-digits
export PYTHON VENV
# An assignment other than the whole course (`fedcourse`): make exercises ASSIGNMENT=week1 NOTEBOOKS="00 01"
ASSIGNMENT_ARG = $(if $(ASSIGNMENT),--assignment $(ASSIGNMENT))
# nbgrader's panels for instructors; learners keep Validate and the Assignments list.
NBGRADER_INSTRUCTOR_PANELS = @jupyter/nbgrader:formgrader @jupyter/nbgrader:create-assignment @jupyter/nbgrader:course-list

.PHONY: setup help lab instructor learner test test-fast test-full lint requirements bench exercises grade collect scores \
	badges binder-check book clean

setup:  ## build or reuse the pinned environment in .venv
	@bash scripts/setup_env.sh

help:  ## list these commands
	@grep -E '^[a-z-]+:.*## ' $(firstword $(MAKEFILE_LIST)) | sed -E 's/^([a-z-]+):.*## /\1\t/' \
		| awk -F '\t' '{printf "  make %-13s %s\n", $$1, $$2}'

# The repository is the server's root (notebooks/ and exercises/ side by side); the exercise copy of
# notebook 00 opens first: learners start from the exercises, the solved edition is in notebooks/.
LAB_ARGS = --ServerApp.root_dir="$(CURDIR)" $(if $(filter 0,$(shell id -u)),--allow-root) exercises/00_environment_and_vocabulary.ipynb

lab: setup  ## open the course in JupyterLab at the exercise copy of notebook 00 (writes missing exercise copies first, never replaces yours)
	$(VENV)/bin/python scripts/nbgrader_course.py release --missing-only
	$(VENV)/bin/jupyter lab $(LAB_ARGS)

instructor: setup  ## show nbgrader's instructor panels (formgrader, Create Assignment, courses) in this JupyterLab
	$(VENV)/bin/jupyter labextension enable --level=sys_prefix $(NBGRADER_INSTRUCTOR_PANELS)

learner: setup  ## hide them again (what `make setup` does)
	$(VENV)/bin/jupyter labextension disable --level=sys_prefix $(NBGRADER_INSTRUCTOR_PANELS)

test: setup  ## unit tests + every notebook under nbval, in quick mode
	COURSE_QUICK=$${COURSE_QUICK:-1} $(VENV)/bin/python -m pytest

test-fast: setup  ## the unit tier: no notebook runs, browser, Jupyter session or nbgrader round trip; ARGS=--lf
	COURSE_QUICK=$${COURSE_QUICK:-1} $(VENV)/bin/python -m pytest tests -m "not slow" $(ARGS)

test-full: setup  ## the same with notebooks in full mode (their full assertions)
	COURSE_QUICK=0 $(VENV)/bin/python -m pytest

lint: setup  ## ruff check (rules in pyproject.toml); tests/test_lint.py makes `make test` fail on what it finds
	$(VENV)/bin/ruff check $(ARGS) .

# Not after setup: setup installs requirements.txt, the file this rewrites.
requirements: setup  ## compile requirements.txt from requirements.in (keeps every pin; ARGS="-P name" upgrades one)
	$(VENV)/bin/uv pip compile requirements.in -o requirements.txt --python $(VENV)/bin/python --quiet $(ARGS)

bench: setup  ## time and measure every notebook (full mode) and federated vs centralised throughput
	$(VENV)/bin/python scripts/bench.py $(ARGS)

exercises: setup  ## write the exercise copies (solutions removed by nbgrader) to exercises/; FORCE=1 replaces existing ones; ASSIGNMENT=week1 NOTEBOOKS="00 01" for one week's
	$(VENV)/bin/python scripts/nbgrader_course.py release $(if $(FORCE),--force) $(ASSIGNMENT_ARG) $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS))

grade: setup  ## autograde what was collected in build/nbgrader/submitted/<student>/fedcourse/ and print the scores
	$(VENV)/bin/python scripts/nbgrader_course.py grade $(ASSIGNMENT_ARG)

collect: setup  ## unpack an LMS download from build/nbgrader/downloaded/<assignment>/archive/ into submitted/ (nbgrader zip_collect)
	$(VENV)/bin/python scripts/nbgrader_course.py zip_collect $(ASSIGNMENT_ARG)

scores: setup  ## print the score table from the gradebook (after manual grading), without grading again
	$(VENV)/bin/python scripts/nbgrader_course.py scores $(ASSIGNMENT_ARG)

badges: setup  ## point every Binder link (notebooks and README) at BINDER_REPO
	$(VENV)/bin/python scripts/badges.py $(BINDER_REPO)

# The site is checked before anything publishes it (pages.yml runs this target); Chromium's check is .ci/run's.
book: setup  ## the course as a website in build/book/html: every notebook's exercise copy with full-mode outputs (runs reused when current), README, instructor guide, glossary, then its checks (tests/test_book.py); QUICK=1 for quick-mode outputs
	$(VENV)/bin/python scripts/book.py --repo $(BINDER_REPO) $(if $(filter 1,$(QUICK)),--quick) $(ARGS)
	COURSE_BOOK_REQUIRED=1 $(VENV)/bin/python -m pytest -p no:cacheprovider -q -m "not slow" tests/test_book.py

binder-check:  ## build Binder's environment from binder/ alone in build/binder-env and run notebook 00 with it
	bash scripts/check_binder_env.sh

clean:  ## remove the environment and generated files
	rm -rf $(VENV) build artifacts data/cache  # never exercises/: a learner's work
