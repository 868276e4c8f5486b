"""The classroom's JupyterHub, for real (issue 16): ``make hub``'s hub on loopback, students log in.

The hub is started from the committed files exactly as ``make hub`` starts it
(``classroom/hubctl.py`` with classroom/jupyterhub_config.py, configurable-http-proxy from
``classroom/node_modules``, the teacher's shared lab), in hubctl's background mode, and stopped by
its supervisor's PID; each test then checks that no process it started is left. ``make test``
builds the classroom venv and runs ``npm ci --prefix classroom`` first (the Makefile's ``test``
target).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import requests

from . import hub_driver
from .hub_driver import LESSON_00, Hub

pytestmark = [pytest.mark.classroom, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _classroom_installed():
    why = hub_driver.missing()
    if why:  # `make test` builds both: missing means pytest was run by hand before make hub
        pytest.fail(why)


def _assert_all_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 10
    while hub_driver.alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not hub_driver.alive(pids), f"left running after hubctl stop: {hub_driver.alive(pids)}"


def test_a_student_logs_in_and_gets_jupyterlab_on_notebook_00(tmp_path):
    hub = Hub(state=tmp_path / "hub").start()
    started: list[int] = []
    try:
        # FirstUseAuthenticator, as configured for a real room: the first login sets the password.
        lab = hub.login("alice", "correct-horse-7")
        started = hub.pids()
        assert lab.status_code == 200, (lab.status_code, lab.url)
        assert lab.url == f"{hub.url}/user/alice/lab/tree/{LESSON_00}", lab.url
        assert "jupyter-config-data" in lab.text  # JupyterLab's page, served through the proxy
        # ... and notebook 00 is there, in alice's own copy of the course, without the solutions.
        contents = lab.session.get(f"{hub.url}/user/alice/api/contents/{LESSON_00}", timeout=60)
        assert contents.status_code == 200
        assert contents.json()["content"]["cells"][0]["source"].startswith("# 00 · ")
        listing = lab.session.get(f"{hub.url}/user/alice/api/contents/notebooks", timeout=60)
        assert "solutions" not in {item["name"] for item in listing.json()["content"]}
        # Her kernel joins the teacher's shared lab, through TLS_COURSE_LAB.
        token = hub.user_token("alice")
        kernel = hub_driver.Kernel(hub, "alice", token, LESSON_00)
        try:
            cell = kernel.execute(
                "import os, sys\n"
                f"assert os.environ['TLS_COURSE_LAB'] == {hub.info['lab']!r}\n"
                "assert sys.prefix.endswith('build/classroom/venv'), sys.prefix\n"
                "import helpers.lab\n"
                "lab = helpers.lab.get_lab()\n"
                "assert lab.url('valid').startswith('https://')"
            )
        finally:
            kernel.close()
        assert cell.ok, cell.problems
        # The password is now alice's: the same name with another password is refused.
        other = requests.Session()
        page = other.get(f"{hub.url}/hub/login", timeout=60)
        xsrf = page.text.split('name="_xsrf" value="', 1)[1].split('"', 1)[0]
        wrong = other.post(
            f"{hub.url}/hub/login",
            data={"username": "alice", "password": "not-her-password", "_xsrf": xsrf},
            allow_redirects=False, timeout=60,
        )  # fmt: skip
        assert wrong.status_code == 403
        started = sorted(set(started) | set(hub.pids()))
    finally:
        hub.stop()
    assert started
    _assert_all_gone(started)


def test_bench_hub_three_students_run_notebook_02_without_a_failure(tmp_path):
    bench = subprocess.Popen(
        [sys.executable, "bench/hub.py", "--students", "3", "--burst", "1",
         "--state", str(tmp_path / "bench")],
        cwd=hub_driver.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        stdout, stderr = bench.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        bench.terminate()  # bench/hub.py stops its hub on SIGTERM
        stdout, stderr = bench.communicate(timeout=120)
        pytest.fail(f"bench/hub.py took more than 300 s:\n{stderr[-3000:]}")
    done = subprocess.CompletedProcess(bench.args, bench.returncode, stdout, stderr)
    print(done.stdout[-4000:], done.stderr[-4000:])
    assert done.returncode == 0, done.stderr[-3000:]
    summary = [line for line in done.stdout.splitlines() if line.startswith("{")]
    result = json.loads(summary[-1])
    assert result["students"] == 3
    assert result["failures"] == 0, result
    assert result["cells_executed"] == 3 * result["cells_per_student"] > 0
    assert result["solo_cells_executed"] == result["cells_per_student"]
    assert result["leftover_processes"] == []
