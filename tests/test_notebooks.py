"""Every notebook executes top to bottom, offline, in a fresh kernel, within budget."""

from __future__ import annotations

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from . import notebooks as nbs


@pytest.fixture(scope="module")
def ipython_dir():
    return nbs.guarded_ipython_dir()


@pytest.mark.notebooks
@pytest.mark.parametrize("path", nbs.lessons() + nbs.solutions(), ids=nbs.short_name)
def test_notebook_runs_clean(path, ipython_dir):
    nb = nbformat.read(path, as_version=4)
    try:
        executed, seconds = nbs.execute(nb, path.parent, ipython_dir)
    except CellExecutionError as exc:  # show the learner-facing error, not the whole notebook
        pytest.fail(f"{path.name} failed: {str(exc)[-2000:]}")
    nbs.TIMES[nbs.short_name(path)] = seconds
    assert nbs.error_outputs(executed) == []
    assert seconds < nbs.BUDGET_S, f"{path.name} took {seconds:.1f} s (budget {nbs.BUDGET_S} s)"


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
    with pytest.raises(CellExecutionError) as info:
        nbs.execute(nb, tmp_path, ipython_dir)
    assert "OfflineViolation" in str(info.value)
    printed = nb.cells[0].outputs[0]["text"]
    assert printed.strip() == "['blocked', 'blocked', 'blocked']"


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
    try:
        executed, _ = nbs.execute(nb, path.parent, ipython_dir)
    except CellExecutionError as exc:
        pytest.fail(f"{path.name} failed on the second Run All: {str(exc)[-2000:]}")
    assert nbs.error_outputs(executed) == []
