"""The course's exceptions, in one place (introduced in notebook 00).

A learner should never meet a wall of traceback in a lesson. Every error the helpers
raise on purpose is a :class:`CourseError`: its message is one sentence that says
*what happened* and a second that says *what to try*. In Jupyter, IPython calls
``_render_traceback_`` and shows just those sentences; in a script you get the usual
traceback, with the same readable message at the bottom.

Each class also inherits from the built-in exception a Python programmer would
expect (``ValueError`` for bad input, ``ConnectionError`` for the network), so
``except ValueError`` keeps working.
"""

from __future__ import annotations


class CourseError(Exception):
    """Base class: ``what`` happened, and ``hint`` says what to try next."""

    def __init__(self, what: str, hint: str = "") -> None:
        self.what = what.strip()
        self.hint = hint.strip()
        super().__init__(self.what + (" " + self.hint if self.hint else ""))

    def _render_traceback_(self) -> list[str]:
        """IPython hook: show one readable line instead of a traceback."""
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


class PEMError(CourseError, ValueError):
    """Bytes that should be a PEM or DER certificate, key or CSR are not."""


class KeyPasswordError(CourseError, ValueError):
    """A private key could not be decrypted: the password is missing or wrong."""


class KeyMismatchError(CourseError, ValueError):
    """A private key does not belong to the certificate it was paired with."""


class PKIError(CourseError, ValueError):
    """A certificate, key, CSR or CRL was asked for with options that cannot work.

    For example an unknown key type, ``not_after`` before ``not_before``, or revoking a
    certificate at a CA that did not issue it.
    """


class ParseError(CourseError, ValueError):
    """Bytes fed to a protocol parser are not what the RFC grammar expects.

    ``offset`` is the position in the input where the parser gave up.
    """

    def __init__(self, what: str, hint: str = "", *, offset: int | None = None) -> None:
        self.offset = offset
        where = f" (at byte offset {offset})" if offset is not None else ""
        super().__init__(what.rstrip(".") + where + ".", hint)


class DecryptError(CourseError, ValueError):
    """A TLS record could not be decrypted: wrong key, wrong nonce or tampered bytes."""


class ConnectionProblem(CourseError, ConnectionError):
    """A connection could not be made or completed (DNS, refused, timeout, not TLS)."""


class LiveModeOff(CourseError, RuntimeError):
    """A cell wanted to reach a real internet host while live mode is off."""


class OfflineViolation(CourseError, RuntimeError):
    """Something tried to leave this machine while the offline guard is on.

    Deliberately *not* an ``OSError``: libraries that catch network errors and retry
    (urllib3 does) must not swallow it.
    """


class PlotDataError(CourseError, ValueError):
    """A drawing function was given something it cannot draw (or nothing at all)."""


class LabError(CourseError, RuntimeError):
    """The local lab (``helpers.lab``) cannot do what was asked: not running, unknown scenario, no port."""


class UsageError(CourseError, ValueError):
    """A helper was called with an argument it cannot use: a malformed URL, an unknown option, a missing file."""


class OCSPError(CourseError, ValueError):
    """An OCSP answer cannot be trusted or used (RFC 6960): unsigned by the issuer, for another certificate, stale, or an error status."""
