"""Every notebook, run in JupyterLab in a real (headless) Chromium, shows no error.

This is what a learner does: open the notebook, wait for the kernel, Run All, read.
JupyterLab serves a *copy* of the notebooks (Run All would otherwise autosave outputs
into the repository) from 127.0.0.1 with a token; its kernels get the offline guard.
Screenshots of each notebook's end state land in build/screenshots/ for a person to look at.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from . import notebooks as nbs

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = nbs.ROOT / "build" / "screenshots"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _quiet_settings(directory: Path) -> Path:
    notification = directory / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false"}))
    return directory


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: .ci/run installs it with apt-get (package chromium)")
    work = tmp_path_factory.mktemp("lab-root")
    shutil.copytree(nbs.NOTEBOOK_DIR, work / "notebooks")
    shutil.copytree(nbs.ROOT / "data", work / "data")
    port, token = _free_port(), secrets.token_hex(16)
    env = nbs.kernel_env(nbs.guarded_ipython_dir())
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={work}",
        "--LabApp.expose_app_in_browser=True",
        # A workspace of its own: otherwise tabs restored from earlier runs steal the focus.
        f"--LabApp.workspaces_dir={work / 'workspaces'}",
        # Settings of its own, where the "would you like to get news?" pop-up is switched off.
        f"--LabApp.user_settings_dir={_quiet_settings(work / 'settings')}",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(work / "jupyter.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:  # noqa: S310
                    json.load(r)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(
                        "JupyterLab did not start:\n" + (work / "jupyter.log").read_text()[-3000:]
                    )
                time.sleep(0.3)
        yield base, token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the process group we started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.mark.parametrize("path", nbs.lessons(), ids=nbs.short_name)
def test_run_all_in_jupyterlab_shows_no_error(path, jupyterlab, browser):
    base, token = jupyterlab
    code_cells = sum(c.cell_type == "code" for c in nbformat.read(path, as_version=4).cells)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        # ?reset: start from an empty workspace, not the tabs the previous test left open.
        page.goto(f"{base}/lab/tree/notebooks/{path.name}?reset&token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        # The status bar says "Idle" before the kernel is connected; ask the session itself.
        page.wait_for_function(
            """() => {
                const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                const s = w && w.sessionContext;
                return !!(s && s.isReady && s.session && s.session.kernel
                          && s.session.kernel.connectionStatus === 'connected'
                          && s.session.kernel.status === 'idle');
            }""",
            timeout=60_000,
        )
        page.click(".jp-Notebook .jp-Cell >> nth=0")  # Run All does nothing without a focused cell
        page.evaluate("window.jupyterapp.commands.execute('runmenu:run-all')")
        # Done when every code cell has an execution count and the kernel is idle again.
        page.wait_for_function(
            """(n) => {
                const w = window.jupyterapp.shell.currentWidget;
                const cells = [...w.content.model.cells].filter(c => c.type === 'code');
                const done = cells.filter(c => c.executionCount !== null).length;
                return done >= n && w.sessionContext.session.kernel.status === 'idle';
            }""",
            arg=code_cells,
            timeout=90_000,
        )
        # What the learner sees: error or stderr output areas anywhere in the page...
        errors = page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        )
        texts = [errors.nth(i).inner_text()[:300] for i in range(errors.count())]
        # ...and, for cells scrolled out of view, the same question asked of the model.
        texts += page.evaluate(
            """() => [...window.jupyterapp.shell.currentWidget.content.model.cells]
                .flatMap(c => c.type === 'code' ? c.outputs.toJSON() : [])
                .filter(o => o.output_type === 'error' || o.name === 'stderr')
                .map(o => (o.ename || '') + ' ' + (o.evalue || o.text || '').slice(0, 300))"""
        )
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{path.stem}.png"), full_page=True)
        assert texts == [], f"error output in {path.name}: {texts}"
    finally:
        page.close()
        _shut_down_kernels(base, token)


def _shut_down_kernels(base: str, token: str) -> None:
    """Stop the kernels this test started, through JupyterLab's REST API."""
    with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=5) as r:  # noqa: S310
        sessions = json.load(r)
    for session in sessions:
        request = urllib.request.Request(
            f"{base}/api/sessions/{session['id']}?token={token}", method="DELETE"
        )
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310 (loopback)
