"""NewSessionTicket: a ticket to resume the session later (introduced in notebook 06; resumption: 05).

After a handshake the server may hand the client a *ticket*: an opaque blob, encrypted
with a key only the server knows, from which it can rebuild the session's state. The
next connection presents the ticket and skips the certificate and the signature
(notebook 05 resumes with it, notebook 06 times it). In TLS 1.2 (RFC 5077) the ticket
arrives in clear, just before the server's ChangeCipherSpec; in TLS 1.3 it is a
post-handshake message (RFC 8446 §4.6.1), encrypted, with a nonce and an age offset
added, hence the ``tls13`` flag of :func:`parse_new_session_ticket`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .display import _hex
from .extensions import Extension, _HasExtensions, _read_extensions
from .reader import _as_bytes, _Reader

__all__ = [
    "NewSessionTicket",
    "parse_new_session_ticket",
]


# RFC 8446 §4.6.1 (New Session Ticket Message):
#
#     struct {
#         uint32 ticket_lifetime;
#         uint32 ticket_age_add;
#         opaque ticket_nonce<0..255>;
#         opaque ticket<1..2^16-1>;
#         Extension extensions<0..2^16-2>;
#     } NewSessionTicket;
#
# RFC 5077 §3.3 (TLS 1.2):
#
#     struct {
#         uint32 ticket_lifetime_hint;
#         opaque ticket<0..2^16-1>;
#     } NewSessionTicket;


@dataclass(frozen=True, repr=False)
class NewSessionTicket(_HasExtensions):
    """A resumption ticket: an opaque blob only the server can read."""

    lifetime: int
    ticket: bytes
    age_add: int | None = None  # TLS 1.3
    nonce: bytes | None = None  # TLS 1.3
    extensions: list[Extension] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"NewSessionTicket(lifetime={self.lifetime}s, ticket {len(self.ticket)} bytes)"

    def _rows(self) -> list[tuple[str, Any]]:
        return [
            ("lifetime (s)", self.lifetime),
            ("ticket", f"{len(self.ticket)} bytes: {_hex(self.ticket)}"),
            ("nonce", _hex(self.nonce) if self.nonce is not None else "(TLS 1.2)"),
        ]


def parse_new_session_ticket(
    body: bytes | bytearray | memoryview, *, tls13: bool = True, offset: int = 0
) -> NewSessionTicket:
    r = _Reader(_as_bytes(body), offset)
    lifetime = r.u32("ticket_lifetime")
    if not tls13:
        ticket = r.opaque(2, "ticket")
        r.done("the NewSessionTicket")
        return NewSessionTicket(lifetime, ticket)
    age_add = r.u32("ticket_age_add")
    nonce = r.opaque(1, "ticket_nonce")
    ticket = r.opaque(2, "ticket", 1)
    extensions = _read_extensions(r, "new_session_ticket")
    r.done("the NewSessionTicket")
    return NewSessionTicket(lifetime, ticket, age_add, nonce, extensions)
