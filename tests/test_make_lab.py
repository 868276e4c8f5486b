"""`make lab` really serves JupyterLab on loopback (started, probed, stopped by PID).

It serves the whole repository, not just notebooks/: the lessons say "open `helpers/...py`", and
JupyterLab can only open what is under its root directory.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from . import notebooks as nbs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_make_lab_serves_jupyterlab_on_loopback(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_TOKEN=token, JUPYTER_RUNTIME_DIR=str(tmp_path))
    proc = subprocess.Popen(
        ["make", "-s", "lab", f"JUPYTER_PORT={port}", "JUPYTER_ARGS=--no-browser"],
        cwd=nbs.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so we stop make and Jupyter together
    )
    try:
        status, deadline = None, time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                url = f"http://127.0.0.1:{port}/api/status?token={token}"
                with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback)
                    status = (resp.status, json.load(resp))
                    break
            except OSError:
                time.sleep(0.5)
        assert status is not None, (
            f"JupyterLab did not answer: {proc.stderr.read1().decode()[-2000:] if proc.poll() is not None else 'still starting'}"
        )
        code, body = status
        assert code == 200 and "started" in body
        # The root is the repository: a helper module and notebook 00 are both reachable.
        for path in ("helpers/__init__.py", "notebooks/00_start_here.ipynb"):
            url = f"http://127.0.0.1:{port}/api/contents/{path}?content=0&token={token}"
            with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (loopback)
                model = json.load(resp)
                assert resp.status == 200 and model["path"] == path, (path, model)
        # The page a browser is sent to first is notebook 00, inside the repository root.
        opened = [p.read_text() for p in tmp_path.glob("jpserver-file-to-run-*-open.html")]
        assert opened and "lab/tree/notebooks/00_start_here.ipynb" in opened[0], opened
        # It listens on loopback only: the same port on another local address is closed.
        with socket.socket() as s:
            s.settimeout(1)
            assert s.connect_ex(("127.0.0.2", port)) != 0
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop the process group this test created (make and the Jupyter it started)."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
