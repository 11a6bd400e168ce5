"""Notebook 05's explorer in a real JupyterLab, driven by headless Chromium through Playwright.

The test starts JupyterLab on 127.0.0.1 (a free port, a token, a kernel from this Python), opens a copy of the
notebook (the committed file is never touched), runs all cells, moves the explorer's `k` slider with the
keyboard, and checks that the picture changes in place and that no cell shows an error. Screenshots and the
measured round trips go to test-artifacts/ (git-ignored). Run it alone with `pytest -m browser`.

Chromium: Debian's /usr/bin/chromium when it exists, else Playwright's own (`python -m playwright install
chromium`). Without either the test fails, saying how to install one: `make browser-deps` does it.
"""
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_exploring_low_rank_attention.ipynb"
ARTIFACTS = ROOT / "test-artifacts"
DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
INSTALL_HINT = ("install a Chromium for the browser test: `sudo apt-get install chromium` (Debian/Ubuntu), or "
                "`python -m playwright install chromium`; `make browser-deps` does the right one")
# JupyterLab settings for a quiet, predictable page: no news or update pop-ups, every cell kept in the DOM.
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url, token, method="GET"):
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=5) as response:
        return response.status


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab serving a fresh copy of notebook 05 (outputs cleared); shut down cleanly afterwards."""
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, root / "notebooks" / NOTEBOOK.name)

    kernel = tmp_path / "data" / "kernels" / "python3"          # the kernel runs this test's Python
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python"}))
    for name, values in SETTINGS.items():
        path = tmp_path / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))

    port, token = free_port(), uuid.uuid4().hex
    env = {**os.environ, "JUPYTER_PATH": str(tmp_path / "data"), "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
           "LINFORMER_EDU_QUICK": os.environ.get("LINFORMER_EDU_QUICK", "1")}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")          # JupyterLab refuses to run as root without it
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                request(f"{base}/api/status", token)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + (tmp_path / "jupyterlab.log").read_text())
                time.sleep(0.5)
        yield f"{base}/lab/tree/notebooks/{NOTEBOOK.name}?token={token}", nb
    finally:
        try:
            request(f"{base}/api/shutdown", token, method="POST")   # stops its kernels too
        except OSError:
            pass
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(tmp_path / "jupyterlab.log", ARTIFACTS / "jupyterlab.log")


def launch_chromium(playwright):
    options = dict(headless=True, args=CHROMIUM_ARGS)
    if DEBIAN_CHROMIUM.exists():
        options["executable_path"] = str(DEBIAN_CHROMIUM)
    try:
        return playwright.chromium.launch(**options)
    except Exception as error:  # Playwright's "Executable doesn't exist" and friends
        pytest.fail(f"could not start Chromium ({type(error).__name__}: {str(error).splitlines()[0]}); "
                    f"{INSTALL_HINT}")


# the notebook is open and its kernel has started and gone idle (the status bar says so)
KERNEL_READY = """() => document.querySelector('.jp-Notebook .jp-Cell') !== null &&
    [...document.querySelectorAll('.jp-StatusBar-TextItem')]
        .some(e => /\\(ipykernel\\) \\| Idle/.test(e.textContent))"""


def error_outputs(page):
    """Error outputs, and stderr outputs that hold a traceback, anywhere in the notebook."""
    errors = page.locator(".jp-OutputArea-output[data-mime-type*=error]")
    tracebacks = page.locator('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]',
                              has_text="Traceback")
    return [t.inner_text()[:2000] for t in errors.all() + tracebacks.all()]


def test_the_explorer_updates_in_place_in_a_real_jupyterlab(jupyterlab):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser test needs Python Playwright: `pip install playwright` (in the dev extra); "
                    + INSTALL_HINT)
    url, nb = jupyterlab
    # collapsed cells (the worked solutions) show no prompt: count the cells whose prompt shows a number
    prompts = sum(cell.cell_type == "code" and not cell.metadata.get("jupyter", {}).get("source_hidden")
                  for cell in nb.cells)
    ARTIFACTS.mkdir(exist_ok=True)
    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(url)
            page.wait_for_function(KERNEL_READY, timeout=120_000)   # else "Run All" asks for a kernel first
            page.click('.lm-MenuBar-itemLabel:text-is("Run")')
            page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')
            # all cells have run when every prompt shows its execution count and nothing is left scheduled
            page.wait_for_function(
                "n => [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]"
                ".filter(p => /\\[\\d+\\]/.test(p.textContent)).length === n && document.querySelector("
                "'.jp-Notebook-ExecutionIndicator').dataset.status === 'idle'", arg=prompts, timeout=300_000)
            assert error_outputs(page) == []

            explorer = page.locator(".linformer-explorer").first
            picture = explorer.locator("img.widget-image")
            assert picture.count() == 1 and picture.get_attribute("src").startswith("blob:")
            slider = explorer.locator(".widget-slider").filter(
                has=page.locator(".widget-label", has_text=re.compile(r"^k$")))
            readout, status = slider.locator(".widget-readout"), explorer.locator(".widget-html").first
            assert readout.inner_text() == "16" and "k = 16" in status.inner_text()

            round_trips = []
            for step in range(1, 6):     # each ArrowRight: k + 1, the kernel redraws, the picture is swapped
                before = picture.get_attribute("src")
                slider.locator(".noUi-handle").focus()
                pressed = time.perf_counter()
                page.keyboard.press("ArrowRight")
                page.wait_for_function("([img, old]) => img.src !== old", arg=[picture.element_handle(), before],
                                       timeout=30_000, polling=10)
                round_trips.append(1000 * (time.perf_counter() - pressed))
                assert readout.inner_text() == str(16 + step)
                page.wait_for_function("([el, k]) => el.textContent.includes(`k = ${k}`)",
                                       arg=[status.element_handle(), 16 + step], timeout=30_000)
            assert explorer.locator("img").count() == 1          # swapped in place, never stacked
            assert error_outputs(page) == []
            explorer.scroll_into_view_if_needed()
            explorer.screenshot(path=str(ARTIFACTS / "explorer.png"))
            page.screenshot(path=str(ARTIFACTS / "browser_explorer.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "browser_failure.png"))
            raise
        finally:
            browser.close()
    (ARTIFACTS / "browser_latency.json").write_text(json.dumps({
        "what": "key press on the k slider -> new picture in the page (kernel compute + redraw + transfer)",
        "round_trips_ms": [round(t, 1) for t in round_trips], "median_ms": round(statistics.median(round_trips), 1),
        "test_seconds": round(time.monotonic() - started, 1)}, indent=1))
