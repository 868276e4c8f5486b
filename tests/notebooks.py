"""Finding and executing the course notebooks (shared by the notebook tests and tools/).

Each notebook runs in a fresh kernel whose IPython startup file switches on the
offline guard (:mod:`helpers.netguard`), so a cell that tries to reach the
internet fails loudly instead of hanging or, worse, passing on a connected laptop.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
SOLUTION_DIR = NOTEBOOK_DIR / "solutions"

#: The notebook standard's budget for one notebook, kernel start included (seconds).
BUDGET_S = 12.0
#: No single cell may take longer than this (seconds).
CELL_TIMEOUT_S = 60

#: Seconds each notebook took in this run (printed at the end of the pytest run).
TIMES: dict[str, float] = {}

_STARTUP = """\
# Written by the course's test harness: every kernel under test is offline.
import helpers.netguard as _guard
_guard.install()
del _guard
"""


def lessons() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def solutions() -> list[Path]:
    return sorted(SOLUTION_DIR.glob("[0-9][0-9]_*.ipynb"))


def short_name(path: Path) -> str:
    """``00_start_here.ipynb`` or ``solutions/00_start_here.ipynb``: a readable test id."""
    return str(path.relative_to(NOTEBOOK_DIR))


def guarded_ipython_dir() -> Path:
    """A throw-away IPYTHONDIR whose startup file installs the offline guard."""
    ipdir = Path(tempfile.mkdtemp(prefix="tls-course-ipython-"))
    startup = ipdir / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-offline-guard.py").write_text(_STARTUP)
    return ipdir


def kernel_env(ipython_dir: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TLS_COURSE_LIVE", None)  # live mode is never on under test
    env.pop("TLS_COURSE_LAB", None)  # nor a teacher's shared lab: each kernel starts its own
    env.pop("MPLBACKEND", None)  # let the kernel use the inline backend
    if ipython_dir is not None:
        env["IPYTHONDIR"] = str(ipython_dir)
    return env


def execute(
    nb: nbformat.NotebookNode, cwd: Path, ipython_dir: Path | None
) -> tuple[nbformat.NotebookNode, float]:
    """Run ``nb`` top to bottom in a fresh kernel; return it with outputs, and the seconds taken."""
    # The kernel talks to us over Unix sockets (IPC) rather than unencrypted TCP on
    # loopback, so no other local user can read or drive it. Their files live in a
    # temporary directory that goes away with the kernel.
    with tempfile.TemporaryDirectory(prefix="tls-course-kernel-") as sockets:
        km = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(sockets) / "k"))
        client = NotebookClient(
            nb,
            km=km,
            timeout=CELL_TIMEOUT_S,
            allow_errors=False,
            resources={"metadata": {"path": str(cwd)}},
        )
        start = time.perf_counter()
        client.execute(env=kernel_env(ipython_dir))
        return nb, time.perf_counter() - start


def error_outputs(nb: nbformat.NotebookNode) -> list[str]:
    """Every error or stderr output in an executed notebook, as short strings."""
    found = []
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"cell {index}: {out.get('ename')}: {out.get('evalue')}")
            elif out.get("output_type") == "stream" and out.get("name") == "stderr":
                found.append(f"cell {index}: stderr: {out.get('text', '')[:300]}")
    return found
