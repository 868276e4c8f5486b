"""Every notebook executes top to bottom, offline, in a fresh kernel, within budget."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import nbformat
import pytest

from . import notebooks as nbs


class _SandboxLine:
    """Says once, at the end of the run, how the kernels were kept off the network."""

    def pytest_terminal_summary(self, terminalreporter) -> None:
        terminalreporter.write_line(nbs.sandbox().summary)


@pytest.fixture(scope="module")
def ipython_dir(request):
    plugins = request.config.pluginmanager
    if not plugins.has_plugin("tls-course-notebook-sandbox"):
        plugins.register(_SandboxLine(), "tls-course-notebook-sandbox")
    ipdir = nbs.guarded_ipython_dir()
    yield ipdir
    nbs.remove_ipython_dir(ipdir)


def _failed(run: nbs.Run) -> str:
    """The learner-facing error, not the whole notebook."""
    return str(run.error)[-2000:]


@pytest.mark.notebooks
@pytest.mark.parametrize("path", nbs.lessons() + nbs.solutions(), ids=nbs.short_name)
def test_notebook_runs_clean(path, ipython_dir):
    nb = nbformat.read(path, as_version=4)
    run = nbs.execute(nb, path.parent, ipython_dir)
    if run.error is not None:
        pytest.fail(f"{path.name} failed: {_failed(run)}")
    nbs.TIMES[nbs.short_name(path)] = run.seconds
    assert nbs.error_outputs(run.nb) == []
    assert run.attempts == [], f"{path.name} {run.network_report()}"
    assert run.seconds < nbs.BUDGET_S, (
        f"{path.name} took {run.seconds:.1f} s (budget {nbs.BUDGET_S} s)"
    )


@pytest.mark.notebooks
def test_offline_guard_trips_inside_a_kernel(ipython_dir, tmp_path):
    """A kernel under test cannot reach the internet: connecting and resolving both fail loudly."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import socket\n"
            "from helpers.errors import OfflineViolation\n"
            "results = []\n"
            "for attempt in (lambda: socket.create_connection(('192.0.2.1', 443), timeout=1),\n"
            "                lambda: socket.getaddrinfo('example.com', 443),\n"
            "                lambda: socket.getnameinfo(('192.0.2.1', 443), 0),\n"
            "                lambda: socket.getaddrinfo('expired.lab.localhost', 443)):\n"
            "    try:\n"
            "        attempt()\n"
            "        results.append('allowed')\n"
            "    except OfflineViolation:\n"
            "        results.append('blocked')\n"
            "print(results)"
        ),
        nbformat.v4.new_code_cell("socket.create_connection(('198.51.100.7', 80), timeout=1)"),
    ]
    run = nbs.execute(nb, tmp_path, ipython_dir)
    assert run.error is not None and "OfflineViolation" in str(run.error)
    printed = nb.cells[0].outputs[0]["text"]
    assert printed.strip() == "['blocked', 'blocked', 'blocked', 'blocked']"
    # Every one of them is on the record, with its cell, the caught ones included.
    assert [a.split(" (id", 1)[0] for a in run.attempts] == [f"cell {i}" for i in (0, 0, 0, 0, 1)]


@pytest.mark.notebooks
def test_a_caught_or_unguarded_attempt_still_fails_the_notebook(ipython_dir, tmp_path):
    """A helper that turns the guard's error into a result, or a cell that switches the guard
    off, cannot hide an attempt: the harness reads the kernel's record after every cell."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("A notebook that checks a real host by mistake."),
        nbformat.v4.new_code_cell("import socket\nfrom helpers import diagnose, netguard"),
        nbformat.v4.new_code_cell("print(diagnose.check('https://example.com/').kind)"),
        nbformat.v4.new_code_cell(
            "netguard._active = False\n"
            "with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:\n"
            "    try:\n"
            "        s.connect(('192.0.2.1', 9))  # UDP: picks a route, sends nothing\n"
            "    except OSError as exc:\n"
            "        print(exc)  # in the network namespace there is no route at all"
        ),
        nbformat.v4.new_code_cell("netguard.uninstall()"),
    ]
    cell_ids = [cell.id for cell in nb.cells]
    run = nbs.execute(nb, tmp_path, ipython_dir)
    assert run.error is None and nbs.error_outputs(run.nb) == []
    assert nb.cells[2].outputs[0]["text"].strip() == "blocked"  # a quiet, readable result ...
    assert run.attempts == [  # ... that the notebook test does not let pass
        f"cell 2 (id {cell_ids[2]}): resolve 'example.com' (blocked)",
        f"cell 3 (id {cell_ids[3]}): connect to ('192.0.2.1', 9)"
        " (NOT blocked: the guard had been switched off)",
        f"cell 4 (id {cell_ids[4]}): switch off the offline guard"
        " (NOT blocked: the guard had been switched off)",
    ]
    assert "cell 2 (id" in run.network_report()


@pytest.mark.notebooks
def test_kernel_runs_in_a_loopback_only_network_namespace(ipython_dir, tmp_path):
    """What the audit hook cannot see (a subprocess, C code) is stopped by the namespace."""
    if not nbs.sandbox().isolated:
        pytest.skip(nbs.sandbox().summary)
    nb = nbformat.v4.new_notebook()
    with socket.create_server(("127.0.0.1", 0)) as ours:  # on the test process's loopback
        reach = f"import socket; socket.create_connection({ours.getsockname()!r}, timeout=5)"
        nb.cells = [
            nbformat.v4.new_code_cell(
                "import os, socket, subprocess, sys\n"
                "print(os.readlink('/proc/self/ns/net'))\n"
                "print(' '.join(name for _, name in socket.if_nameindex()))\n"
                f"child = subprocess.run([sys.executable, '-c', {reach!r}], capture_output=True, text=True)\n"
                "print('ConnectionRefusedError' in child.stderr)\n"
                "getent = subprocess.run(['getent', 'hosts', 'example.com'], capture_output=True, timeout=30)\n"
                "print(getent.returncode)"
            ),
            nbformat.v4.new_code_cell(
                "import socket, threading\n"  # loopback inside the namespace is up and works
                "with socket.create_server(('127.0.0.1', 0)) as server:\n"
                "    threading.Thread(target=lambda: server.accept()[0].sendall(b'hi')).start()\n"
                "    with socket.create_connection(server.getsockname(), timeout=5) as c:\n"
                "        print(c.recv(2))"
            ),
        ]
        run = nbs.execute(nb, tmp_path, ipython_dir)
    assert run.error is None, str(run.error)
    netns, interfaces, refused, getent = nb.cells[0].outputs[0]["text"].split("\n")[:4]
    assert netns != os.readlink("/proc/self/ns/net"), "the kernel shares the test's network"
    assert interfaces == "lo"
    assert refused == "True", "a subprocess of the kernel reached the test process's loopback"
    assert getent != "0", "a subprocess of the kernel resolved example.com"
    assert nb.cells[1].outputs[0]["text"].strip() == "b'hi'"
    assert run.attempts == []  # the hook saw none of it: only the namespace stopped them


@pytest.mark.notebooks
def test_a_kernel_whose_guard_did_not_start_fails(tmp_path):
    """A broken startup file would leave the kernel unguarded and unrecorded: that fails too."""
    ipdir = nbs.guarded_ipython_dir()
    try:
        (ipdir / "profile_default" / "startup" / "00-offline-guard.py").write_text("1 / 0\n")
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("print('no guard here')")]
        run = nbs.execute(nb, tmp_path, ipdir)
    finally:
        nbs.remove_ipython_dir(ipdir)
    assert run.error is None
    assert run.attempts == [
        "the offline guard never started in the kernel (its IPython startup file failed)"
    ]


def test_without_a_namespace_the_run_says_so_in_one_line(monkeypatch):
    monkeypatch.setenv("TLS_COURSE_NO_NETNS", "1")
    nbs.sandbox.cache_clear()
    try:
        fallback = nbs.sandbox()
    finally:
        nbs.sandbox.cache_clear()  # the next kernel probes again, without the variable
    assert not fallback.isolated and fallback.prefix == ()
    assert fallback.summary.startswith("NOTICE: notebook kernels ran WITHOUT a network namespace")
    assert "\n" not in fallback.summary


def test_the_ipython_dir_is_removed_when_the_test_process_exits():
    made = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tests import notebooks; print(notebooks.guarded_ipython_dir())",
        ],
        cwd=nbs.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert made and not os.path.exists(made), f"{made} was left behind"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", nbs.lessons(), ids=nbs.short_name)
def test_run_all_twice_in_one_kernel(path, ipython_dir):
    """Run All, then Run All again without a restart: servers and the lab are reused or
    restarted cleanly, never "address already in use"."""
    nb = nbformat.read(path, as_version=4)
    again = [nbformat.from_dict(dict(cell)) for cell in nb.cells]
    for index, cell in enumerate(again):
        cell["id"] = f"second-run-{index}"  # ids must stay unique within one notebook
    nb.cells = nb.cells + again
    run = nbs.execute(nb, path.parent, ipython_dir)
    if run.error is not None:
        pytest.fail(f"{path.name} failed on the second Run All: {_failed(run)}")
    assert nbs.error_outputs(run.nb) == []
    assert run.attempts == [], f"{path.name} {run.network_report()}"
