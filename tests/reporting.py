"""Measurements a test prints for the reader of the run (Chromium's version, what was compared)."""

from __future__ import annotations

import pytest


def report(config: pytest.Config, lines: list[str]) -> None:
    """Show ``lines`` in the run's output, even under -q and output capture."""
    reporter = config.pluginmanager.getplugin("terminalreporter")
    capture = config.pluginmanager.getplugin("capturemanager")
    if reporter is None or capture is None:
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)
