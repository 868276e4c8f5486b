"""Finding and executing the course notebooks (shared by the notebook tests and tools/).

Each notebook runs in a fresh kernel that is kept off the network twice over:

* **A network namespace** (Linux): the kernel is started with ``unshare -n`` (as root) or
  ``unshare -rn`` (an unprivileged user with user namespaces), so it has only its own
  loopback interface. Whatever a cell does, ``curl`` in a subprocess, C code through
  ``ctypes``, a "spawn" child, nothing can leave the machine, nor reach a server on the
  *test process's* loopback. The kernel still talks to us: its ZMQ sockets are Unix
  sockets (``transport="ipc"``), which live in the file system, not in a network
  namespace. Where no namespace can be made (macOS, a container without the
  privilege, ``TLS_COURSE_NO_NETNS=1``), the run says so in one line at the end.
* **The offline guard** (:mod:`helpers.netguard`), switched on by an IPython startup
  file: its error message says what was blocked and why. It also writes down every
  attempt in a file of this kernel's own; after each cell we read the new lines, so a
  notebook that reached for the network fails its test *even when a helper caught the
  error* (``diagnose.check`` turns it into ``Diagnosis(kind="blocked")``), and the
  failure names the cell.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
SOLUTION_DIR = NOTEBOOK_DIR / "solutions"

#: The notebook standard's budget for one notebook, kernel start included (seconds).
BUDGET_S = 12.0
#: No single cell may take longer than this (seconds).
CELL_TIMEOUT_S = 60

#: Seconds each notebook took in this run (printed at the end of the pytest run).
TIMES: dict[str, float] = {}

#: The environment variable that tells the startup file where this kernel's record goes.
RECORD_ENV = "TLS_COURSE_GUARD_RECORD"

_STARTUP = f"""\
# Written by the course's test harness: every kernel under test is offline, and every
# attempt to leave the machine is written down for the harness (tests/notebooks.py).
import os as _os
import helpers.netguard as _guard
_guard.install(record=_os.environ.pop({RECORD_ENV!r}, None))
del _guard, _os
"""

# Run inside the new namespace, before the kernel: bring `lo` up (a new namespace's only
# interface starts down), then become the kernel with exec. The same ioctls as
# `ip link set lo up`, so the Debian test roots need no iproute2. SIOCGIFFLAGS/SIOCSIFFLAGS
# read and write `struct ifreq`: a 16-byte interface name, then the flags (a short).
_LOOPBACK_UP = """\
import fcntl, os, socket, struct, sys
IFREQ, SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = "16sH22x", 0x8913, 0x8914, 0x1
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    flags = struct.unpack(IFREQ, fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack(IFREQ, b"lo", 0)))[1]
    fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack(IFREQ, b"lo", flags | IFF_UP))
if sys.argv[1:] == ["--probe"]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        socket.create_connection(server.getsockname(), timeout=5).close()
    print(os.readlink("/proc/self/ns/net"))
else:
    os.execv(sys.argv[1], sys.argv[1:])
"""


@dataclass(frozen=True)
class Sandbox:
    """How the kernels of this run are cut off from the network."""

    prefix: tuple[str, ...]  # put in front of the kernel's command line; () for none
    summary: str  # one line for the end of the test run

    @property
    def isolated(self) -> bool:
        return bool(self.prefix)


def _own_netns() -> str:
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return ""


@functools.cache
def sandbox() -> Sandbox:
    """Find out once per run whether kernels can get a loopback-only network namespace."""
    fallback = "NOTICE: notebook kernels ran WITHOUT a network namespace ({}); only the offline audit hook guarded them"
    if os.environ.get("TLS_COURSE_NO_NETNS"):
        return Sandbox((), fallback.format("TLS_COURSE_NO_NETNS is set"))
    unshare = shutil.which("unshare")
    if not sys.platform.startswith("linux") or unshare is None:
        return Sandbox((), fallback.format("no `unshare` on this system"))
    # root: a plain network namespace; anyone else: inside a user namespace of their own.
    choices = [("-n",), ("-rn",)] if os.geteuid() == 0 else [("-rn",)]
    why = ""
    for flags in choices:
        prefix = (unshare, *flags, "--", sys.executable, "-I", "-S", "-c", _LOOPBACK_UP)
        try:
            probe = subprocess.run(
                [*prefix, "--probe"], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            why = f"unshare {' '.join(flags)}: {exc}"
            continue
        inside = probe.stdout.strip()
        if probe.returncode == 0 and inside.startswith("net:") and inside != _own_netns():
            summary = f"notebook kernels ran in a loopback-only network namespace (unshare {' '.join(flags)}) plus the offline audit hook"
            return Sandbox(prefix, summary)
        why = f"unshare {' '.join(flags)}: " + (probe.stderr.strip().splitlines() or ["failed"])[-1]
    return Sandbox((), fallback.format(why))


class SandboxedKernelManager(KernelManager):
    """A KernelManager whose kernel starts inside :func:`sandbox`'s network namespace."""

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return [*sandbox().prefix, *super().format_kernel_cmd(extra_arguments)]


def lessons() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def solutions() -> list[Path]:
    return sorted(SOLUTION_DIR.glob("[0-9][0-9]_*.ipynb"))


def short_name(path: Path) -> str:
    """``00_start_here.ipynb`` or ``solutions/00_start_here.ipynb``: a readable test id."""
    return str(path.relative_to(NOTEBOOK_DIR))


_MADE_IPYTHON_DIRS: list[Path] = []


def _remove_ipython_dirs() -> None:
    while _MADE_IPYTHON_DIRS:
        shutil.rmtree(_MADE_IPYTHON_DIRS.pop(), ignore_errors=True)


def guarded_ipython_dir() -> Path:
    """A throw-away IPYTHONDIR whose startup file installs the offline guard.

    It is removed when the test process exits (or earlier, with :func:`remove_ipython_dir`):
    IPython keeps a history database there, which may hold what the cells did.
    """
    ipdir = Path(tempfile.mkdtemp(prefix="tls-course-ipython-"))
    if not _MADE_IPYTHON_DIRS:
        atexit.register(_remove_ipython_dirs)
    _MADE_IPYTHON_DIRS.append(ipdir)
    startup = ipdir / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-offline-guard.py").write_text(_STARTUP)
    return ipdir


def remove_ipython_dir(ipdir: Path) -> None:
    """Remove a directory made by :func:`guarded_ipython_dir` now rather than at exit."""
    shutil.rmtree(ipdir, ignore_errors=True)
    if ipdir in _MADE_IPYTHON_DIRS:
        _MADE_IPYTHON_DIRS.remove(ipdir)


def kernel_env(ipython_dir: Path | None, record: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TLS_COURSE_LIVE", None)  # live mode is never on under test
    env.pop("TLS_COURSE_LAB", None)  # nor a teacher's shared lab: each kernel starts its own
    env.pop("MPLBACKEND", None)  # let the kernel use the inline backend
    env.pop(RECORD_ENV, None)
    if ipython_dir is not None:
        env["IPYTHONDIR"] = str(ipython_dir)
        if record is not None:
            env[RECORD_ENV] = str(record)
    return env


@dataclass
class Run:
    """One notebook run: the executed notebook, its time, what went wrong."""

    nb: nbformat.NotebookNode
    seconds: float
    #: Every network attempt the offline guard saw, caught or not, each naming its cell.
    attempts: list[str] = field(default_factory=list)
    #: The cell that raised (nbclient stops there), or None.
    error: CellExecutionError | None = None

    def network_report(self) -> str:
        return "reached for the network: " + "; ".join(self.attempts)


class _RecordReader:
    """Reads the kernel's record of network attempts after each cell (see helpers/netguard.py)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.guard_started = False
        self.cell = "before the first cell"
        self.attempts: list[str] = []

    def starting(self, cell: Any, cell_index: int, **_: Any) -> None:
        self.cell = f"cell {cell_index} (id {cell.get('id', '?')})"

    def read(self, *_: Any, **__: Any) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        if len(data) < self.offset:
            self.attempts.append(f"{self.cell}: the record of network attempts was truncated")
            self.offset = 0
        complete = data.rfind(b"\n", self.offset) + 1  # a line still being written waits
        for line in data[self.offset : complete].splitlines():
            seen = json.loads(line)
            if seen["action"] == "install":
                self.guard_started = True
                continue
            how = "blocked" if seen["blocked"] else "NOT blocked: the guard had been switched off"
            self.attempts.append(f"{self.cell}: {seen['action']} {seen['target']} ({how})")
        self.offset = max(self.offset, complete)


def execute(nb: nbformat.NotebookNode, cwd: Path, ipython_dir: Path | None) -> Run:
    """Run ``nb`` top to bottom in a fresh, sandboxed kernel.

    Stops at the first cell that raises (``Run.error``). A kernel that dies or a cell over
    :data:`CELL_TIMEOUT_S` raises nbclient's exception.
    """
    # The kernel talks to us over Unix sockets (IPC) rather than unencrypted TCP on
    # loopback, so no other local user can read or drive it, and it reaches us from
    # inside its network namespace. Its files, and the record of network attempts, live
    # in a temporary directory that goes away with the kernel.
    with tempfile.TemporaryDirectory(prefix="tls-course-kernel-") as private:
        record = _RecordReader(Path(private) / "network-attempts.jsonl")
        km = SandboxedKernelManager(
            kernel_name="python3", transport="ipc", ip=str(Path(private) / "k")
        )
        client = NotebookClient(
            nb,
            km=km,
            timeout=CELL_TIMEOUT_S,
            allow_errors=False,
            resources={"metadata": {"path": str(cwd)}},
            on_cell_execute=record.starting,
            on_cell_executed=record.read,
        )
        run = Run(nb, 0.0, record.attempts)
        start = time.perf_counter()
        try:
            client.execute(env=kernel_env(ipython_dir, record.path))
        except CellExecutionError as exc:
            run.error = exc
        run.seconds = time.perf_counter() - start
        record.read()  # anything a background thread tried after the last cell finished
        if ipython_dir is not None and client.code_cells_executed and not record.guard_started:
            run.attempts.append(
                "the offline guard never started in the kernel (its IPython startup file failed)"
            )
        return run


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
