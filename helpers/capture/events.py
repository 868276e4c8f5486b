"""A capture's bytes as TLS records with labels: :class:`Event` (notebook 01; decoded in 06).

A capture is only bytes. :meth:`Capture.events <helpers.capture.Capture.events>` feeds
each direction to the sans-IO parsers of :mod:`helpers.handshake`: a
:class:`~helpers.handshake.RecordParser` per direction cuts the chunks into records
(keeping a partial record until the next chunk completes it), and a
:class:`~helpers.handshake.HandshakeParser` per direction reassembles the plaintext
handshake messages inside them. Every record becomes one :class:`Event`, labelled with
what it carries.

Then it marks what is encrypted:

* in **TLS 1.2**, everything after a ChangeCipherSpec in that direction (the first
  handshake record after it is that side's Finished);
* in **TLS 1.3**, every application_data (type 23) record, which is everything after
  ServerHello except the compatibility ChangeCipherSpec (RFC 8446 appendix D.4).

The names of encrypted handshake messages are **educated guesses** here, from their
position: the server's first encrypted flight is labelled by how many records it has
(:func:`_flight_labels`), and the client's first encrypted record is its Finished.
:mod:`helpers.tls13` decrypts them and tells you for sure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ParseError
from ..handshake import Alert, HandshakeMessage, HandshakeParser, Record, RecordParser, parse_alert
from .chunks import ARROWS, DIRECTIONS, Chunk, Direction

__all__ = ["Event"]


@dataclass(frozen=True, repr=False)
class Event:
    """One TLS record of a capture, with the handshake messages it completed.

    ``messages`` holds the plaintext handshake messages whose last byte arrived in this
    record (empty for encrypted records and for non-handshake records). ``label`` is a
    human name: ``"ClientHello"``, ``"ServerHello, Certificate, ServerKeyExchange,
    ServerHelloDone"``, ``"ChangeCipherSpec"``, ``"Finished (encrypted)"``,
    ``"application data"``, ``"Alert (fatal, bad_record_mac)"`` ...
    """

    direction: Direction
    t: float
    record: Record
    messages: list[HandshakeMessage]
    encrypted: bool
    label: str

    @property
    def size(self) -> int:
        """Bytes on the wire (record header included)."""
        return 5 + len(self.record.payload)

    @property
    def names(self) -> list[str]:
        """The names of the plaintext handshake messages completed here."""
        return [m.type_name for m in self.messages]

    def __repr__(self) -> str:
        lock = " 🔒" if self.encrypted else ""
        return f"Event({self.direction}, t={self.t * 1000:.1f} ms, {self.label}{lock}, {self.size} bytes)"


def _events_from_chunks(
    chunks: Iterable[Chunk], *, tls13: bool, strict: bool
) -> tuple[list[Event], str | None]:
    """Cut both directions into records and label them (see the module docstring).

    ``tls13`` says whether the ServerHello negotiated TLS 1.3. With ``strict`` a
    direction that is not TLS raises :class:`~helpers.errors.ParseError`; without it
    that direction stops producing events and the error comes back as the second item.
    """
    error = None
    parsers = {d: RecordParser() for d in DIRECTIONS}
    handshakes = {d: HandshakeParser() for d in DIRECTIONS}
    ccs_seen = {d: False for d in DIRECTIONS}
    encrypted_handshakes = {d: 0 for d in DIRECTIONS}
    broken: set[str] = set()
    client_encrypted = False  # TLS 1.3: has the client sent its encrypted Finished yet?
    server_flight: list[int] = []  # TLS 1.3: indexes of the server's encrypted flight
    events: list[Event] = []
    for chunk in chunks:
        d = chunk.direction
        if d in broken:
            continue
        try:
            records = parsers[d].feed(chunk.data)
        except ParseError as exc:
            if strict:
                raise
            broken.add(d)
            error = f"{ARROWS[d]}: {exc}"
            continue
        for record in records:
            ctype = record.content_type
            messages: list[HandshakeMessage] = []
            encrypted = ctype == 23 or (ccs_seen[d] and not tls13)
            if ctype == 20:
                encrypted = False
                label = "ChangeCipherSpec"
                if not tls13:
                    ccs_seen[d] = True
            elif ctype == 21 and not encrypted:
                label, encrypted = _alert_label(record)
            elif not encrypted and ctype == 22:
                messages = handshakes[d].feed(record.payload)
                names = [m.type_name for m in messages]
                if handshakes[d].pending_type is not None:
                    names.append(f"{_pending_name(handshakes[d])} (fragment)")
                label = ", ".join(names) or "handshake (empty)"
            elif ctype == 24:
                label = "Heartbeat"
            elif tls13 and ctype == 23:
                if d == "s2c" and not client_encrypted:
                    server_flight.append(len(events))
                    label = "encrypted handshake"
                elif d == "c2s" and not client_encrypted:
                    client_encrypted = True
                    label = "Finished (encrypted)"
                else:
                    label = "application data"
            elif ctype == 22:
                encrypted_handshakes[d] += 1
                label = (
                    "Finished (encrypted)"
                    if encrypted_handshakes[d] == 1
                    else "encrypted handshake"
                )
            elif ctype == 21:
                label = "Alert (encrypted)"
            else:
                label = "application data"
            events.append(Event(d, chunk.t, record, messages, encrypted, label))
    for index, label in zip(server_flight, _flight_labels(len(server_flight)), strict=True):
        e = events[index]
        events[index] = Event(e.direction, e.t, e.record, e.messages, e.encrypted, label)
    return events, error


def _pending_name(parser: HandshakeParser) -> str:
    from ..handshake import HANDSHAKE_TYPES

    pending = parser.pending_type
    return HANDSHAKE_TYPES.get(pending, f"message type {pending}") if pending is not None else "?"


def _alert_label(record: Record) -> tuple[str, bool]:
    try:
        alert: Alert = parse_alert(record.payload)
    except ParseError:
        return "Alert (encrypted)", True
    return f"Alert ({alert.level_name}, {alert.description_name})", False


def _flight_labels(n: int) -> list[str]:
    """Best guesses for the records of a TLS 1.3 server's encrypted flight.

    OpenSSL writes one record per message: EncryptedExtensions, [CertificateRequest],
    Certificate, CertificateVerify, Finished; a resumed (PSK) handshake has only
    EncryptedExtensions and Finished. Other stacks pack the flight into fewer records.
    """
    guesses = {
        1: ["EncryptedExtensions…Finished"],
        2: ["EncryptedExtensions", "Finished"],
        4: ["EncryptedExtensions", "Certificate", "CertificateVerify", "Finished"],
        5: [
            "EncryptedExtensions",
            "CertificateRequest",
            "Certificate",
            "CertificateVerify",
            "Finished",
        ],
    }
    if n in guesses:
        return [f"{name} (encrypted)" for name in guesses[n]]
    if n == 0:
        return []
    middle = ["encrypted handshake"] * (n - 2)
    return ["EncryptedExtensions… (encrypted)", *middle, "…Finished (encrypted)"]
