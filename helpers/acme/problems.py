"""ACME problem documents: how an ACME server says "no" (RFC 8555 §6.7; notebook 10).

Theory of operation
-------------------
An ACME server never answers an error with a bare status code. It sends a *problem
document* (RFC 7807, now RFC 9457) with the media type ``application/problem+json``::

    HTTP/1.1 400 Bad Request
    Content-Type: application/problem+json

    {"type": "urn:ietf:params:acme:error:badNonce",
     "detail": "The nonce was already used: ask newNonce for a fresh one.",
     "status": 400}

The ``type`` is a URN from the ACME registry (RFC 8555 §6.7, table below), so a client
can react to the *kind* of error (retry once on ``badNonce``, §6.5) without parsing the
English ``detail``, which is for humans. Some problems carry more members:
``badSignatureAlgorithm`` lists the ``algorithms`` the server accepts (§6.2), and a
problem about several identifiers may carry ``subproblems`` (§6.7.1).

:class:`AcmeProblem` is both sides of that: the lab's ACME CA (:mod:`helpers.acme.ca`)
raises one and sends :meth:`AcmeProblem.document`; the client (:mod:`helpers.acme.client`)
turns a document it received back into an :class:`AcmeProblem` with
:meth:`AcmeProblem.from_document`, so a learner reads one sentence and a hint instead of
a JSON blob. It is a :class:`~helpers.errors.CourseError` and a :class:`ValueError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import CourseError

__all__ = ["ACME_ERROR_PREFIX", "PROBLEM_TYPES", "AcmeProblem"]

#: Every ACME error type is this prefix plus a short name (RFC 8555 §6.7).
ACME_ERROR_PREFIX = "urn:ietf:params:acme:error:"

#: The registered ACME error types (RFC 8555 §6.7, plus RFC 9773's ``alreadyReplaced``
#: and the profiles draft's ``invalidProfile``), with what each means.
PROBLEM_TYPES: dict[str, str] = {
    "accountDoesNotExist": "The request named an account (kid) that does not exist",
    "alreadyReplaced": "The certificate in 'replaces' was already replaced (RFC 9773 §7.4)",
    "alreadyRevoked": "The certificate to revoke was already revoked",
    "badCSR": "The CSR is unacceptable (e.g. wrong names, a weak key)",
    "badNonce": "The client sent an unacceptable anti-replay nonce",
    "badPublicKey": "The JWS was signed by a public key the server does not support",
    "badRevocationReason": "The revocation reason is not allowed",
    "badSignatureAlgorithm": "The JWS was signed with an algorithm the server does not support",
    "caa": "CAA records forbid the CA from issuing for this name",
    "compound": "Several problems: see subproblems",
    "connection": "The server could not connect to the validation target",
    "dns": "There was a problem with a DNS query during validation",
    "externalAccountRequired": "This server requires external account binding",
    "incorrectResponse": "The response received did not match the challenge's requirements",
    "invalidContact": "A contact URL for an account was invalid",
    "invalidProfile": "The order asked for a profile this server does not offer",
    "malformed": "The request message was malformed",
    "orderNotReady": "The order is not ready to be finalized (authorizations are not valid)",
    "rateLimited": "The request exceeds a rate limit",
    "rejectedIdentifier": "The server will not issue certificates for this identifier",
    "serverInternal": "The server experienced an internal error",
    "tls": "The server received a TLS error during validation",
    "unauthorized": "The client lacks sufficient authorization",
    "unsupportedContact": "A contact URL uses an unsupported scheme",
    "unsupportedIdentifier": "An identifier is of an unsupported type",
    "userActionRequired": "Visit the instance URL and take the actions it says",
}

# What a learner can try next, per type (the CourseError hint).
_HINTS: dict[str, str] = {
    "badNonce": "Fetch a fresh nonce (HEAD newNonce, or the Replay-Nonce of the last answer) "
    "and sign the request again: each nonce works once (RFC 8555 §6.5).",
    "badSignatureAlgorithm": "Sign with ES256 (an EC P-256 key) or RS256 (RSA, 2048 bits or more).",
    "malformed": "Compare the request with the RFC 8555 section quoted in helpers/acme/ca.py.",
    "unauthorized": "Sign with the account key that owns this resource.",
    "accountDoesNotExist": "Register first (newAccount), then use the account URL as kid.",
    "rejectedIdentifier": "Ask only for names under the lab's domain (lab.localhost).",
    "unsupportedIdentifier": 'Use identifiers of type "dns".',
    "badCSR": "Build the CSR with a fresh key (not the account key) for exactly the order's names.",
    "orderNotReady": "Answer every challenge and poll the order until its status is ready.",
    "alreadyRevoked": "Nothing to do: the certificate is on the CRL already.",
    "invalidProfile": "Pick one of the profiles in directory['meta']['profiles'].",
    "incorrectResponse": "Serve exactly the key authorization (token.thumbprint) at the URL.",
    "connection": "Start the HTTP-01 responder on the port the CA validates (http01_port).",
}


class AcmeProblem(CourseError, ValueError):
    """An ACME problem: ``type`` (short name, e.g. ``"badNonce"``), ``detail``, ``status``.

    ``extra`` holds other members of the document (``algorithms``, ``subproblems``,
    ``identifier``). ``type`` stays the full string when it is not an ACME URN (another
    RFC 7807 problem type).
    """

    def __init__(
        self,
        type: str,  # noqa: A002 (the RFC's member name)
        detail: str,
        status: int = 400,
        *,
        hint: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        short = type.removeprefix(ACME_ERROR_PREFIX)
        self.type = short
        self.detail = detail.strip()
        self.status = int(status)
        self.extra: dict[str, Any] = dict(extra or {})
        what = f"The ACME server answered {short} ({self.status}): {self.detail.rstrip('.')}."
        super().__init__(what, _HINTS.get(short, "") if hint is None else hint)

    @property
    def urn(self) -> str:
        """The ``type`` member as sent: ``urn:ietf:params:acme:error:<type>``."""
        return self.type if ":" in self.type else ACME_ERROR_PREFIX + self.type

    def document(self) -> dict[str, Any]:
        """The problem document to send (RFC 8555 §6.7, RFC 7807 §3.1)."""
        return {**self.extra, "type": self.urn, "detail": self.detail, "status": self.status}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], status: int) -> AcmeProblem:
        """The problem a server sent (``doc``) with the HTTP ``status`` it came with.

        A missing or odd member is tolerated: a client must be able to report any
        server's error, even a badly formed one.
        """
        if not isinstance(doc, Mapping):
            return cls(
                "serverInternal", f"an error without a problem document: {doc!r:.200}", status
            )
        kind = doc.get("type")
        detail = doc.get("detail")
        extra = {k: v for k, v in doc.items() if k not in ("type", "detail", "status")}
        return cls(
            str(kind) if isinstance(kind, str) and kind else "about:blank",
            str(detail) if detail is not None else "(no detail given)",
            status,
            extra=extra,
        )

    def __repr__(self) -> str:
        return f"AcmeProblem({self.type!r}, {self.detail!r}, {self.status})"
