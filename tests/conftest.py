"""Test-wide setup: the offline guard, a private cache, live mode off.

Every test in this suite runs with :mod:`helpers.netguard` on: any attempt to
resolve a name through DNS or to connect anywhere but loopback fails loudly.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from helpers import netguard

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    # Live mode is never on in tests, whatever the caller's shell says.
    os.environ.pop("TLS_COURSE_LIVE", None)
    # Nor does a teacher's shared lab (TLS_COURSE_LAB) leak in: each test starts its own.
    os.environ.pop("TLS_COURSE_LAB", None)
    # Generated CA material goes to a throw-away cache, never to ~/.cache or the repo.
    if "TLS_COURSE_CACHE" not in os.environ:
        os.environ["TLS_COURSE_CACHE"] = tempfile.mkdtemp(prefix="tls-course-cache-")
    # Matplotlib must not try to open a window.
    os.environ.setdefault("MPLBACKEND", "Agg")
    netguard.install()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    from . import notebooks

    if notebooks.TIMES:
        terminalreporter.section("notebook execution times (fresh kernel, offline)")
        for name, seconds in sorted(notebooks.TIMES.items()):
            flag = "" if seconds < notebooks.BUDGET_S else f"  OVER BUDGET ({notebooks.BUDGET_S} s)"
            terminalreporter.write_line(f"{seconds:6.1f} s  {name}{flag}")
