"""The course in a real browser: JupyterLab started as `make lab` starts it, driven by Chromium.

Debian's chromium, driven through Playwright's Python package (which downloads no browser).
`.ci/run` installs chromium; elsewhere the test is skipped, with the reason, when there is none.
Screenshots of every stage go to build/ci/browser/.
"""
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from course import ROOT
SHOTS = ROOT / "build" / "ci" / "browser"
FIRST = "00_environment_and_vocabulary.ipynb"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
KERNEL_IDLE = "() => document.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') === 'idle'"

if not CHROMIUM:
    if os.environ.get("CI"):
        raise RuntimeError("CI needs Debian's chromium for the browser test: .ci/run installs it with apt.")
    pytest.skip("no chromium here (Debian: `apt install chromium`); CI runs this test", allow_module_level=True)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab as `make lab` starts it (the course's notebook 00 opened), on a free loopback port."""
    import portpicker
    import psutil

    import nbgrader_course

    nbgrader_course.release(out=None)  # the student copies, in build/nbgrader/release/fedcourse/
    if nbgrader_course.missing():  # what `make lab` does before it opens exercises/00
        nbgrader_course.release()
    state = tmp_path_factory.mktemp("lab")
    # Test-only user setting: no autosave, so running notebook 00 never writes outputs into the repository.
    (state / "@jupyterlab" / "docmanager-extension").mkdir(parents=True)
    (state / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings").write_text('{"autosave": false}')
    port, token = portpicker.pick_unused_port(), "course-browser-test"
    log = open(state / "lab.log", "w")
    # The arguments of `make lab` (LAB_ARGS in the Makefile), plus a port, a token and fresh user state.
    command = [str(Path(sys.executable).parent / "jupyter"), "lab", f"--ServerApp.root_dir={ROOT}",
               f"exercises/{FIRST}", "--no-browser",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
               f"--LabApp.workspaces_dir={state}", f"--LabApp.user_settings_dir={state}"]
    if os.geteuid() == 0:
        command.append("--allow-root")  # as the Makefile does
    server = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).close()
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, (state / "lab.log").read_text()[-3000:]
            time.sleep(0.5)
    try:
        yield base, token
    finally:
        for proc in [psutil.Process(server.pid)] + psutil.Process(server.pid).children(recursive=True):
            try:
                proc.terminate()
            except psutil.NoSuchProcess:
                pass
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page per test: leaving a notebook with unsaved outputs would ask "leave the page?"."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()


def prompts(page):
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt").all_text_contents()


def outputs_text(page):
    return "\n".join(page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output").all_text_contents())


def test_make_lab_uses_the_same_arguments():
    makefile = (ROOT / "Makefile").read_text()
    assert 'LAB_ARGS = --ServerApp.root_dir="$(CURDIR)"' in makefile and f"exercises/{FIRST}" in makefile
    assert "nbgrader_course.py release --missing-only" in makefile  # the exercise copies exist before lab opens one
    assert "$(VENV)/bin/jupyter lab $(LAB_ARGS)" in makefile


@pytest.mark.slow
def test_notebook_00_runs_in_jupyterlab_through_the_menu(lab, page):
    base, token = lab
    stored = (ROOT / "notebooks" / FIRST).read_bytes()
    # What `make lab` opens in the browser: notebook 00, with its kernel ready and nothing in front of it.
    page.goto(f"{base}/lab/tree/notebooks/{FIRST}?reset&token={token}")
    page.wait_for_selector(f".lm-TabBar-tab.lm-mod-current:has-text('{FIRST}')", timeout=90_000)
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell", timeout=60_000)
    page.wait_for_function(KERNEL_IDLE, timeout=120_000)
    page.screenshot(path=str(SHOTS / "01-notebook-00-opened.png"))
    assert page.locator("text=official Jupyter news").count() == 0, "the news question must not appear"
    assert page.locator(".jp-Dialog").count() == 0, "no dialog before the first cell"
    assert page.get_by_text("Create Assignment").count() == 0, "nbgrader's instructor panels are hidden from learners"
    assert page.get_by_text("Validate").count() >= 1, "learners keep nbgrader's Validate button"

    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
    code_cells = len(prompts(page))
    assert code_cells > 10
    deadline = time.monotonic() + 300
    while True:  # every code cell numbered, none running or waiting, the kernel idle
        shown = prompts(page)
        status = page.locator(".jp-Notebook-ExecutionIndicator").get_attribute("data-status")
        done = all(p.strip("[]: ").isdigit() for p in shown)
        if done and status == "idle":
            break
        assert time.monotonic() < deadline, f"cells did not finish: {shown}"
        time.sleep(1)
    page.screenshot(path=str(SHOTS / "02-notebook-00-run-all.png"), full_page=True)

    text = outputs_text(page)
    assert "Traceback (most recent call last)" not in text, text[text.find("Traceback") - 500:][:3000]
    assert "TFF         0.87.0" in text, "the version check prints TFF's version"
    assert page.locator(".jp-OutputArea-output img").count() >= 1, "a figure is shown"
    progress_bars = page.locator(".jp-OutputArea-output .jupyter-widgets .progress-bar")
    assert progress_bars.count() >= 1, "the progress bar is a widget"
    assert "Hello, World!" in text
    assert (ROOT / "notebooks" / FIRST).read_bytes() == stored, "the notebook on disk must stay as it was"


@pytest.mark.slow
def test_the_student_copy_shows_the_exercise_stub(lab, page):
    base, token = lab
    # `reset`: a fresh workspace, not the previous test's layout with notebook 00 in it.
    page.goto(f"{base}/lab/tree/build/nbgrader/release/fedcourse/{FIRST}?reset&token={token}")
    try:
        page.wait_for_selector(f".lm-TabBar-tab.lm-mod-current:has-text('{FIRST}')", timeout=90_000)
        cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell", has_text="def build_fraction_above")
        cell.scroll_into_view_if_needed(timeout=60_000)
    finally:
        page.screenshot(path=str(SHOTS / "03-student-copy-exercise-1.png"))
    assert page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").count() == 1
    source = cell.locator(".jp-InputArea").text_content()
    assert "raise NotImplementedError()" in source and "tff.federated_mean" not in source, source


@pytest.mark.slow
def test_the_playground_adds_a_curve_when_a_setting_changes(lab, page):
    """Notebook 06's playground in JupyterLab: run the setup cell and the playground cell, change a
    control, press Run, see one more curve; a bad setting gets a message in the panel."""
    base, token = lab
    name = "06_best_practices.ipynb"
    stored = (ROOT / "notebooks" / name).read_bytes()
    page.goto(f"{base}/lab/tree/notebooks/{name}?reset&token={token}")
    page.wait_for_selector(f".lm-TabBar-tab.lm-mod-current:has-text('{name}')", timeout=90_000)
    page.wait_for_function(KERNEL_IDLE, timeout=120_000)
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    try:
        for marker in ("QUICK = runtime.setup(", "playground.Playground("):  # the playground needs only the setup cell
            cell = notebook.locator(".jp-CodeCell", has_text=marker).first
            cell.scroll_into_view_if_needed(timeout=60_000)
            cell.locator(".jp-InputArea-editor").click()
            page.keyboard.press("Control+Enter")
            page.wait_for_timeout(1000)
            page.wait_for_function(KERNEL_IDLE, timeout=300_000)
        panel = notebook.locator(".jupyter-widgets", has_text="clients per round").first
        panel.get_by_text("1 run on the plot").wait_for(timeout=120_000)
        assert panel.locator("img").count() >= 1, "the plot is shown in the panel"
        page.screenshot(path=str(SHOTS / "04-playground-first-run.png"))

        panel.locator(".widget-text", has_text="clients per round").locator("input").fill("20")
        panel.locator(".widget-text", has_text="clients per round").locator("input").press("Enter")
        panel.get_by_role("button", name="Run", exact=True).click()
        panel.get_by_text("2 runs on the plot").wait_for(timeout=120_000)
        assert "20/round" in panel.text_content()
        page.screenshot(path=str(SHOTS / "05-playground-second-run.png"))

        panel.locator(".widget-text", has_text="label skew α").locator("input").fill("-1")
        panel.locator(".widget-text", has_text="label skew α").locator("input").press("Enter")
        panel.get_by_role("button", name="Run", exact=True).click()
        panel.get_by_text("α must be positive").wait_for(timeout=30_000)
        assert "2 runs on the plot" in panel.text_content(), "a bad setting adds no curve"
    finally:
        page.screenshot(path=str(SHOTS / "06-playground-bad-input.png"))
    text = outputs_text(page)
    assert "Traceback (most recent call last)" not in text, text[text.find("Traceback") - 500:][:3000]
    assert (ROOT / "notebooks" / name).read_bytes() == stored, "the notebook on disk must stay as it was"
