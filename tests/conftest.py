"""Test-wide setup: the offline guard, a private cache (removed at the end), live mode off.

Every test in this suite runs with :mod:`helpers.netguard` on: any attempt to
resolve a name through DNS or to connect anywhere but loopback fails loudly.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import names, netguard

ROOT = Path(__file__).resolve().parent.parent

#: The throw-away cache this session created, removed again in :func:`pytest_unconfigure`.
_CREATED_CACHE: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    # Live mode is never on in tests, whatever the caller's shell says.
    os.environ.pop("TLS_COURSE_LIVE", None)
    # Nor does a teacher's shared lab (TLS_COURSE_LAB) leak in: each test starts its own.
    os.environ.pop("TLS_COURSE_LAB", None)
    # Generated CA material goes to a throw-away cache, never to ~/.cache or the repo; the
    # session removes it at the end (pytest_unconfigure): it holds lab and client keys.
    if "TLS_COURSE_CACHE" not in os.environ:
        global _CREATED_CACHE
        _CREATED_CACHE = tempfile.mkdtemp(prefix="tls-course-cache-")
        os.environ["TLS_COURSE_CACHE"] = _CREATED_CACHE
    # Matplotlib must not try to open a window.
    os.environ.setdefault("MPLBACKEND", "Agg")
    netguard.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the cache this session made (never one the caller chose with TLS_COURSE_CACHE).

    It runs after every test and fixture has finished, pass or fail. A worker process that
    inherited the variable did not create the cache, so it leaves it to the session that did.
    """
    global _CREATED_CACHE
    if _CREATED_CACHE is not None:
        shutil.rmtree(_CREATED_CACHE, ignore_errors=True)
        if os.environ.get("TLS_COURSE_CACHE") == _CREATED_CACHE:
            del os.environ["TLS_COURSE_CACHE"]
        _CREATED_CACHE = None


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="module", autouse=True)
def _module_leaves_lab_names_as_it_found_them() -> Iterator[None]:
    """Stop the lab a module started through ``get_lab()``; fail a module that leaks names.

    ``helpers.lab.get_lab()`` (directly, or through ``diagnose.check("expired")``,
    ``probe.scan``, ``live.survey``) keeps one lab per *process* on purpose: a kernel
    reuses it until it exits. A pytest session is one process for every module, so
    without this the first module's lab stays up for the rest of the run, its names
    stay in :mod:`helpers.names`, and ``expired.lab.localhost`` resolves in modules
    that expect it never to (``test_netguard.py``).
    """
    from helpers import lab

    found_lab, found_names = lab.running_lab(), names.table()
    yield
    started = lab.running_lab()
    if started is not None and started is not found_lab:
        started.stop()
    left = names.table()
    assert left == found_names, (
        f"this module left lab names registered in helpers.names: {sorted(set(left) - set(found_names))}"
        " (stop every Lab you start; pair names.add with names.remove, or use names.resolving)"
    )


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    from . import notebooks

    if notebooks.TIMES:
        terminalreporter.section("notebook execution times (fresh kernel, offline)")
        for name, seconds in sorted(notebooks.TIMES.items()):
            flag = "" if seconds < notebooks.BUDGET_S else f"  OVER BUDGET ({notebooks.BUDGET_S} s)"
            terminalreporter.write_line(f"{seconds:6.1f} s  {name}{flag}")


@pytest.fixture
def no_lab_spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """No lab running in this process, and a spy where the real resolver would be.

    With no lab, :mod:`helpers.names` has no wrapper in place, so ``socket.getaddrinfo``
    *is* the real resolver: the spy takes its place (and the place names.py keeps for it),
    records every host it is asked about and resolves nothing. A test then asserts that a
    lab name never reached it (issue 13, N1: lab names must not leak to DNS).
    """
    asked: list[str] = []

    def spy(host: object, *args: object, **kwargs: object) -> list[object]:
        asked.append(host.decode() if isinstance(host, bytes) else str(host))
        raise socket.gaierror(socket.EAI_NONAME, "the spy resolves nothing")

    monkeypatch.setattr(names, "_table", {})
    for where in (socket, names):
        prefix = "_real_" if where is names else ""
        monkeypatch.setattr(where, prefix + "getaddrinfo", spy)
        monkeypatch.setattr(where, prefix + "gethostbyname", spy)
    return asked
