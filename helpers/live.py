"""The one switch for live-host cells (introduced in notebook 00).

The series runs offline against the local lab. Cells that talk to real internet
hosts (badssl.com, well-known sites) run only when live mode is on:

* set the environment variable ``TLS_COURSE_LIVE=1`` before starting JupyterLab, or
* call ``helpers.live.enable()`` in a notebook.

Tests never turn it on. Live cells use :data:`TIMEOUT` and compare "expected" with
"got" tolerantly, because live hosts drift: certificates are renewed, sites move.
"""

from __future__ import annotations

import os

from .errors import LiveModeOff

ENV_VAR = "TLS_COURSE_LIVE"
TIMEOUT = 5.0  # seconds, for every live connection

_override: bool | None = None


def enabled() -> bool:
    """True when live-host cells should run."""
    if _override is not None:
        return _override
    return os.environ.get(ENV_VAR, "").strip().lower() in {"1", "true", "yes", "on"}


def enable() -> None:
    """Turn live mode on for this kernel."""
    global _override
    _override = True


def disable() -> None:
    """Turn live mode off for this kernel (the default)."""
    global _override
    _override = False


def require() -> None:
    """Raise :class:`~helpers.errors.LiveModeOff` unless live mode is on."""
    if not enabled():
        raise LiveModeOff(
            "This cell talks to real internet hosts and live mode is off.",
            f"Set {ENV_VAR}=1 or call helpers.live.enable() to run it.",
        )


def banner() -> str:
    """One line for a notebook to print: is live mode on, and how to change it."""
    if enabled():
        return "Live mode is ON: cells marked 'live' will contact real hosts (timeout 5 s)."
    return (
        "Live mode is OFF: everything runs against the local lab. "
        f"To try real hosts, set {ENV_VAR}=1 or run helpers.live.enable()."
    )
