"""What :func:`~helpers.tls13.decrypt` returns (introduced in notebook 06).

A :class:`Decrypted` connection holds the records of both directions (one
:class:`Record` each), in time order when the capture had a clock. Each record keeps
its bytes as they travelled, the plaintext, and which traffic secret, keys and sequence
number opened it. A handshake record carries the messages it holds (one
:class:`Message` each): the decoded body (the :mod:`helpers.handshake` dataclass) and,
for a CertificateVerify or a Finished, the verdict of the check an endpoint makes.

In a notebook, a :class:`Decrypted` shows as a table of records (``print()`` gives the
same as text), and :meth:`Decrypted.explain` returns an :class:`Explanation`: every
value that goes into decrypting one record, step by step, from the client random to
the inner content type.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from ..errors import DecryptError
from ..handshake import (
    CONTENT_TYPES,
    Alert,
    Certificate,
    CertificateVerify,
    ClientHello,
    CompressedCertificate,
    EncryptedExtensions,
    Finished,
    HandshakeMessage,
    NewSessionTicket,
    ServerHello,
    parse_alert,
)
from .protection import record_nonce
from .schedule import hkdf_label
from .suites import CipherSuite
from .traffic import TrafficKeys

Direction = str  # "c2s" (client to server) or "s2c"


@dataclass
class Message:
    """One handshake message with its decoded body and the check an endpoint makes.

    ``decoded`` is the :mod:`helpers.handshake` dataclass (EncryptedExtensions,
    Certificate, CertificateVerify, Finished, NewSessionTicket, ...). ``ok`` says
    whether a CertificateVerify signature or a Finished MAC verified; ``expected``
    holds the verify_data this module computed for a Finished.
    """

    direction: Direction
    message: HandshakeMessage
    encrypted: bool
    decoded: Any = None
    ok: bool | None = None
    expected: bytes | None = None

    @property
    def name(self) -> str:
        return self.message.type_name

    @property
    def msg_type(self) -> int:
        return self.message.msg_type

    @property
    def raw(self) -> bytes:
        """Header + body: the bytes hashed into the transcript."""
        return self.message.raw

    @property
    def body(self) -> bytes:
        return self.message.body

    def summary(self) -> str:
        d, name = self.decoded, self.name
        if isinstance(d, EncryptedExtensions):
            notes = [f"ALPN {d.alpn}"] if d.alpn else []
            notes += ["server_name acknowledged"] if d.extension(0) is not None else []
            return f"{name} ({', '.join(notes) or ', '.join(d.extension_names) or 'empty'})"
        if isinstance(d, Certificate):
            count = f"{len(d.certificates)} {'entry' if len(d.certificates) == 1 else 'entries'}"
            return f"{name} ({count}: {', '.join(d._subjects())})"
        if isinstance(d, CompressedCertificate):  # RFC 8879, OpenSSL 3.2+
            inner = d.certificate()
            return (
                f"{name} ({d.algorithm_name}, {len(d.compressed)} of {d.uncompressed_length} "
                f"bytes: {', '.join(inner._subjects())})"
            )
        if isinstance(d, CertificateVerify):
            return f"{name} ({d.algorithm_name}, signature {_verdict(self.ok)})"
        if isinstance(d, Finished):
            return f"{name} (verify_data {_verdict(self.ok)})"
        if isinstance(d, NewSessionTicket):
            nonce = d.nonce.hex() if d.nonce else "empty"
            return f"{name} (lifetime {d.lifetime} s, age_add {d.age_add}, nonce {nonce})"
        if isinstance(d, ServerHello):
            return f"{name} ({d.version}, {d.cipher_suite_name})"
        if isinstance(d, ClientHello):
            return f"{name} (SNI {d.server_name!r}, random {d.random.hex()[:16]}…)"
        if isinstance(d, dict):
            return f"{name} ({', '.join(f'{k}={v}' for k, v in d.items())})"
        return name


# What a client's alert says about the server's certificate (RFC 8446 §6.2).
_ALERT_MEANS = {
    "certificate_expired": ": the server's certificate is outside its validity period",
    "unknown_ca": ": it does not trust the issuer of the server's certificate",
    # Measured: GnuTLS 3.7/3.8 sends bad_certificate for an expired certificate too.
    "bad_certificate": ": it rejected the server's certificate (GnuTLS says so for any reason)",
    "certificate_unknown": ": it rejected the server's certificate for another reason",
    "certificate_revoked": ": the server's certificate was revoked",
    "decrypt_error": ": a signature or Finished MAC did not verify",
    "handshake_failure": ": no acceptable set of parameters",
}


def _verdict(ok: bool | None) -> str:
    return {True: "ok", False: "WRONG", None: "not checked"}[ok]


def record_name(
    direction: Direction,
    index: int,
    protected_index: int | None = None,
    sequence: int | None = None,
    key_label: str | None = None,
) -> str:
    """How the course names a record, with all three of its numbers.

    ``index`` counts one direction's records as they travelled, plaintext ones included
    (the server's ServerHello is #0); ``protected_index`` counts only its encrypted
    records; ``sequence`` is the AEAD's counter (RFC 8446 §5.3), which restarts at 0
    under every new traffic secret. E.g. ``"server record #2 (encrypted record #0,
    sequence 0 under SERVER_HANDSHAKE_TRAFFIC_SECRET)"``.
    """
    who = "client" if direction == "c2s" else "server"
    name = f"{who} record #{index}"
    if protected_index is not None and sequence is not None:
        name += f" (encrypted record #{protected_index}, sequence {sequence} under {key_label})"
    return name


@dataclass
class Record:
    """One TLS record of the connection, decrypted if it was protected.

    Three numbers locate it (see :attr:`name`): ``index`` among its direction's records,
    ``protected_index`` among that direction's encrypted ones, and ``sequence``, the
    AEAD's per-key counter (§5.3).
    """

    direction: Direction
    index: int  # position among this direction's records
    offset: int  # first byte of the header in this direction's byte stream
    wire: bytes  # header + payload, exactly as it travelled
    outer_type: int
    encrypted: bool
    inner_type: int
    content: bytes  # the plaintext content (handshake bytes, application data, alert)
    messages: list[Message] = field(default_factory=list)
    key_label: str | None = None  # which traffic secret protected it
    keys: TrafficKeys | None = None
    sequence: int | None = None  # the AEAD's counter under key_label (restarts at 0 per key)
    t: float | None = None  # seconds since capture start, when known
    protected_index: int | None = None  # position among this direction's encrypted records
    # The traffic secret this record needs and the key log lacks (the record stays closed).
    missing_secret: str | None = None

    @property
    def opened(self) -> bool:
        """True for a clear record and for a protected one this module decrypted."""
        return not self.encrypted or self.keys is not None

    @property
    def alert(self) -> Alert | None:
        """The alert this record carries (in clear or decrypted), else None."""
        if self.opened and self.inner_type == 21 and len(self.content) == 2:
            return parse_alert(self.content)
        return None

    @property
    def name(self) -> str:
        """``"server record #2 (encrypted record #0, sequence 0 under SERVER_HANDSHAKE_...)"``."""
        return record_name(
            self.direction, self.index, self.protected_index, self.sequence, self.key_label
        )

    @property
    def type_name(self) -> str:
        return CONTENT_TYPES.get(self.inner_type, f"type {self.inner_type}")

    @property
    def header(self) -> bytes:
        """The 5-byte record header: the AEAD's additional data."""
        return self.wire[:5]

    @property
    def nonce(self) -> bytes | None:
        if self.keys is None or self.sequence is None:
            return None
        return record_nonce(self.keys.iv, self.sequence)

    def summary(self) -> str:
        if self.messages:
            return "; ".join(m.summary() for m in self.messages)
        early = "0-RTT early data, " if self.key_label == "CLIENT_EARLY_TRAFFIC_SECRET" else ""
        if self.missing_secret:
            return f"{early}not decrypted: the key log has no {self.missing_secret}"
        if (alert := self.alert) is not None:
            return f"alert {alert.description_name} ({alert.level_name})"
        if self.inner_type == 23:
            return f"{early or 'application data, '}{len(self.content)} bytes: {_preview(self.content)}"
        if self.inner_type == 20:
            return "change_cipher_spec (middlebox compatibility, ignored)"
        if self.inner_type == 22:
            return "handshake fragment"
        return self.type_name


def _preview(data: bytes, limit: int = 48) -> str:
    text = repr(data[:limit])
    return text + ("…" if len(data) > limit else "")


@dataclass
class AppData:
    """The application bytes each side sent, decrypted and joined."""

    client: bytes
    server: bytes


@dataclass
class Explanation:
    """Step-by-step values of the key schedule and the record decryption, for notebook 06."""

    title: str
    rows: list[tuple[str, str, str]]  # (step, value, how it was obtained)

    def __repr__(self) -> str:
        width = max(len(step) for step, _, _ in self.rows)
        lines = [self.title]
        for step, value, how in self.rows:
            lines.append(f"{step:<{width}}  {value}")
            if how:
                lines.append(f"{'':<{width}}    ↳ {how}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><td style='text-align:left'>{html.escape(step)}</td>"
            f"<td style='text-align:left;font-family:monospace;word-break:break-all'>"
            f"{html.escape(value)}</td>"
            f"<td style='text-align:left'>{html.escape(how)}</td></tr>"
            for step, value, how in self.rows
        )
        return (
            f"<table><caption>{html.escape(self.title)}</caption>"
            "<tr><th>step</th><th>value</th><th>how</th></tr>"
            f"{cells}</table>"
        )


@dataclass
class Decrypted:
    """A decrypted TLS 1.3 connection: records, messages and the checks that were made."""

    suite: CipherSuite
    client_random: bytes
    records: list[Record]  # both directions, in time order when known
    server_certificates: list[x509.Certificate]
    keylog_secrets: dict[str, bytes]
    version: str = "TLSv1.3"  # the ServerHello's supported_versions

    @property
    def client_records(self) -> list[Record]:
        return [r for r in self.records if r.direction == "c2s"]

    @property
    def server_records(self) -> list[Record]:
        return [r for r in self.records if r.direction == "s2c"]

    @property
    def messages(self) -> list[Message]:
        return [m for r in self.records for m in r.messages]

    def find(self, name: str, direction: Direction | None = None) -> Message | None:
        """The first handshake message called ``name`` (from ``direction``), or None."""
        for message in self.messages:
            if message.name == name and direction in (None, message.direction):
                return message
        return None

    @property
    def certificate(self) -> x509.Certificate | None:
        """The server's certificate: the first entry of its Certificate message."""
        return self.server_certificates[0] if self.server_certificates else None

    @property
    def alpn(self) -> str | None:
        ee = self.find("EncryptedExtensions")
        return ee.decoded.alpn if ee else None

    @property
    def certificate_verify_ok(self) -> bool | None:
        message = self.find("CertificateVerify", "s2c")
        return message.ok if message else None

    @property
    def server_finished_ok(self) -> bool | None:
        message = self.find("Finished", "s2c")
        return message.ok if message else None

    @property
    def client_finished_ok(self) -> bool | None:
        message = self.find("Finished", "c2s")
        return message.ok if message else None

    @property
    def missing_secrets(self) -> list[str]:
        """The traffic secrets some records needed and the key log lacked, in order."""
        return list(dict.fromkeys(r.missing_secret for r in self.records if r.missing_secret))

    @property
    def client_alert(self) -> Alert | None:
        """The first alert the client sent (in clear or decrypted), or None."""
        return next((r.alert for r in self.client_records if r.alert is not None), None)

    @property
    def server_alert(self) -> Alert | None:
        """The first alert the server sent (in clear or decrypted), or None."""
        return next((r.alert for r in self.server_records if r.alert is not None), None)

    @property
    def abandoned(self) -> bool:
        """True when the client never sent its Finished: it gave up on the handshake.

        The usual reason: it rejected the server's certificate (expired, untrusted,
        wrong name). It then sends an alert instead of its Finished (RFC 8446 §6.2) and
        never derives the application traffic secrets, so its key log lacks
        ``CLIENT_TRAFFIC_SECRET_0`` and ``SERVER_TRAFFIC_SECRET_0``.
        """
        return self.find("Finished", "c2s") is None

    @property
    def outcome(self) -> str:
        """One sentence: how the handshake ended, read from the bytes."""
        if not self.abandoned:
            verdict = _verdict(self.client_finished_ok)
            return f"Handshake complete: the client sent its Finished (verify_data {verdict})."
        server_done = self.find("Finished", "s2c") is not None
        when = "after the server's Finished" if server_done else "during the server's flight"
        alerts = [r for r in self.client_records if r.alert is not None]
        closed = [r for r in self.client_records if r.missing_secret]
        if alerts:
            record, alert = alerts[0], alerts[0].alert
            assert alert is not None
            how = (
                f"encrypted under {record.key_label}"
                if record.encrypted
                else "in clear, before it had switched to its handshake keys"
            )
            why = _ALERT_MEANS.get(alert.description_name, "")
            return (
                f"The client gave up {when}: instead of its Finished it sent alert "
                f"{alert.description_name} ({alert.level_name}, {how}){why}."
            )
        if closed:
            return (
                f"The client sent no Finished that could be read {when}: "
                f"{len(closed)} record(s) stay closed, the key log has no {closed[0].missing_secret}."
            )
        return f"The client sent no Finished and no alert {when}: the connection just stopped."

    @property
    def early_data(self) -> bytes:
        """The 0-RTT application data the client sent under CLIENT_EARLY_TRAFFIC_SECRET (§2.3).

        Early data can be replayed by an attacker who recorded it (§8): a server must
        accept it only for requests that are safe to run twice. It is also included in
        ``application_data.client``.
        """
        return b"".join(
            r.content
            for r in self.client_records
            if r.key_label == "CLIENT_EARLY_TRAFFIC_SECRET" and r.opened and r.inner_type == 23
        )

    @property
    def early_data_accepted(self) -> bool:
        """True when the server's EncryptedExtensions carries early_data (§4.2.10)."""
        ee = self.find("EncryptedExtensions", "s2c")
        return ee is not None and ee.decoded.extension(42) is not None

    @property
    def application_data(self) -> AppData:
        def joined(direction: Direction) -> bytes:
            return b"".join(
                r.content for r in self.records if r.direction == direction and r.inner_type == 23
            )

        return AppData(client=joined("c2s"), server=joined("s2c"))

    def explain(self, direction: Direction = "s2c", index: int = 0) -> Explanation:
        """The values that decrypt encrypted record #``index`` sent in ``direction``.

        ``index`` counts only the encrypted records of that direction (see
        :func:`record_name`). With the defaults: the server's first encrypted record, the
        one that carries EncryptedExtensions (and usually the certificate).
        """
        protected = [r for r in self.records if r.direction == direction and r.keys is not None]
        if not protected:
            raise DecryptError(
                f"There is no encrypted record in direction {direction!r}.",
                "Use 's2c' for the server's records or 'c2s' for the client's.",
            )
        record = protected[min(index, len(protected) - 1)]
        assert record.keys is not None and record.sequence is not None
        suite, keys = self.suite, record.keys
        label = record.key_label or "?"
        padded_seq = record.sequence.to_bytes(suite.iv_length, "big")
        rows = [
            ("client_random", self.client_random.hex(), "ClientHello.random, sent in the clear"),
            ("cipher suite", f"{suite.name} (0x{suite.code:04x})", "ServerHello.cipher_suite"),
            (label, keys.secret.hex(), "looked up in the key log by client_random"),
            (
                "HkdfLabel for the key",
                hkdf_label("key", b"", suite.key_length).hex(),
                'uint16 length, "tls13 key", empty context (§7.1)',
            ),
            (
                "write key",
                keys.key.hex(),
                f'HKDF-Expand-Label(secret, "key", "", {suite.key_length})',
            ),
            (
                "write iv",
                keys.iv.hex(),
                f'HKDF-Expand-Label(secret, "iv", "", {suite.iv_length})',
            ),
            (
                "sequence number",
                padded_seq.hex(),
                f"{record.sequence}: counts the records under {label}, from 0 (§5.3)",
            ),
            (
                "nonce",
                record_nonce(keys.iv, record.sequence).hex(),
                "iv XOR padded sequence (§5.3)",
            ),
            ("additional data", record.header.hex(), "the 5-byte record header (§5.2)"),
            (
                "encrypted_record",
                _preview(record.wire[5 : -suite.tag_length], 24),
                f"{len(record.wire) - 5 - suite.tag_length} bytes of ciphertext",
            ),
            (
                "authentication tag",
                record.wire[-suite.tag_length :].hex(),
                "last 16 bytes; a wrong key or one changed bit fails this check",
            ),
            (
                "inner content type",
                f"{record.inner_type} ({record.type_name})",
                "last non-zero byte of TLSInnerPlaintext",
            ),
            ("content", _preview(record.content, 32), f"{len(record.content)} bytes"),
        ]
        return Explanation(f"Decrypting {record.name}", rows)

    def __repr__(self) -> str:
        checks = ", ".join(
            f"{label} {_verdict(found.ok) if found else 'absent'}"
            for label, found in (
                ("CertificateVerify", self.find("CertificateVerify", "s2c")),
                ("server Finished", self.find("Finished", "s2c")),
                ("client Finished", self.find("Finished", "c2s")),
            )
        )
        lines = [f"<Decrypted {self.suite.name}, {len(self.records)} records; {checks}>"]
        if self.abandoned or self.missing_secrets:
            lines.append(f"  {self.outcome}")
        for r in self.records:
            arrow = "→" if r.direction == "c2s" else "←"
            lock = "🔒" if r.encrypted else "  "
            lines.append(f"  {arrow} {lock} {r.type_name:<18} {r.summary()}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = []
        for r in self.records:
            arrow = "client → server" if r.direction == "c2s" else "server → client"
            rows.append(
                "<tr>"
                f"<td>#{r.index}</td><td>{arrow}</td>"
                f"<td>{'🔒 ' + html.escape(r.key_label or '') if r.encrypted else 'clear'}</td>"
                f"<td>{html.escape(r.type_name)}</td>"
                f"<td style='text-align:left'>{html.escape(r.summary())}</td>"
                "</tr>"
            )
        return (
            f"<table><caption>TLS 1.3, {html.escape(self.suite.name)}"
            + (f"<br>{html.escape(self.outcome)}" if self.abandoned else "")
            + "</caption>"
            "<tr><th>record</th><th>direction</th><th>protection</th><th>content type</th>"
            "<th>content</th></tr>" + "".join(rows) + "</table>"
        )
