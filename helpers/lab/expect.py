"""The verdict a client reaches against a lab scenario: :class:`Expect` (notebook 02).

One small value type shared by :mod:`helpers.lab.scenarios` (the data) and
:mod:`helpers.lab.legacy` (the verdicts that depend on the running Python and OpenSSL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["OK", "Expect"]


@dataclass(frozen=True)
class Expect:
    """The verdict a client reaches.

    ``ok``
        True when the request succeeds.
    ``verify_code``
        OpenSSL's ``X509_V_ERR_*`` number for certificate-verification failures
        (``SSLCertVerificationError.verify_code``), else ``None``.
    ``error``
        A short text that appears in ``str(exception)``: the verify message
        (``"certificate has expired"``) or the OpenSSL reason (``"DH_KEY_TOO_SMALL"``).
    ``exception``
        The class name of the :mod:`ssl` exception (``"SSLCertVerificationError"``,
        ``"SSLError"``); ``None`` when ``ok``.
    ``when``
        ``"handshake"`` or ``"read"``: when the failure shows up. Under TLS 1.3 the client
        finishes its handshake first, so a refused client certificate is only reported
        by the first read (RFC 8446 §4.4.2.4).
    """

    ok: bool
    verify_code: int | None = None
    error: str | None = None
    exception: str | None = None
    when: str = "handshake"

    def matches(self, exc: BaseException | None) -> bool:
        """Does ``exc`` (``None`` for success) fit this verdict?

        Follows ``__cause__``/``__context__`` and ``args`` so that a ``requests`` or
        ``urllib3`` exception wrapping the :mod:`ssl` one matches too.
        """
        if exc is None:
            return self.ok
        if self.ok:
            return False
        for inner in _exception_chain(exc):
            code = getattr(inner, "verify_code", None)
            if self.verify_code is not None and code != self.verify_code:
                continue
            if self.error is not None and self.error.lower() not in str(inner).lower():
                continue
            if self.exception is not None and type(inner).__name__ != self.exception:
                continue
            return True
        return False

    def describe(self) -> str:
        """One line: ``OK`` or ``SSLCertVerificationError 10: certificate has expired``."""
        if self.ok:
            return "OK"
        parts = [self.exception or "error"]
        if self.verify_code is not None:
            parts.append(f"{self.verify_code}:")
        if self.error:
            parts.append(self.error)
        if self.when != "handshake":
            parts.append(f"(on first {self.when})")
        return " ".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "verify_code": self.verify_code, "error": self.error}


def _exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything it wraps: causes, contexts and exceptions in ``args``."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 20:
        item = todo.pop(0)
        if any(item is s for s in seen):
            continue
        seen.append(item)
        for nxt in (item.__cause__, item.__context__, *getattr(item, "args", ())):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
        reason = getattr(item, "reason", None)  # urllib3.MaxRetryError.reason
        if isinstance(reason, BaseException):
            todo.append(reason)
    return seen


OK = Expect(ok=True)
