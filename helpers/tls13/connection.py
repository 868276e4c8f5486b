"""Replaying one connection: :func:`decrypt` and :func:`decrypt_capture` (notebook 06).

To decrypt, this file replays what each receiver does. It splits the bytes of each
direction into records (:class:`helpers.handshake.RecordParser`) and follows the
handshake (:class:`helpers.handshake.HandshakeParser`) to know when each side switches
keys: the handshake traffic secret for the first protected record, the application
traffic secret after that side's Finished (§7.2), the next secret after a KeyUpdate.
It opens each record (:mod:`.protection`), keeps the transcript of the handshake
messages, and checks what the endpoints checked (:mod:`.authentication`): the
CertificateVerify signature (§4.4.3) and both Finished MACs (§4.4.4).

The server's direction is replayed first: its flight needs only the ClientHello, while
the client's Finished needs the server's whole flight in the transcript. After a
HelloRetryRequest, the first ClientHello is replaced in the transcript by its hash
(§4.4.1).

0-RTT (§2.3, §4.2.10): a resuming client may send application data right after its
ClientHello, under ``CLIENT_EARLY_TRAFFIC_SECRET``, and closes it with an
EndOfEarlyData message under the same secret. When the key log has that secret, the
early records are decrypted and EndOfEarlyData enters the transcript between the
server's Finished and the client's (§4.4.1), so the client Finished verifies. When the
server rejected the early data (its EncryptedExtensions has no ``early_data``), the
client sends no EndOfEarlyData and goes straight on under its handshake secret. Without
the early secret, the early records are kept and marked.

A key log holds only the secrets the endpoint derived. A client that rejects the
server's certificate (the lab's ``expired``) stops before deriving the application
traffic secrets: its key log has the handshake secrets only. Records whose secret is
missing are kept and marked (``Record.missing_secret``) instead of ending the replay,
so the server's whole flight still decrypts and verifies, and the client's alert is
read (``Decrypted.client_alert``, ``Decrypted.outcome``). Measured: OpenSSL 3.0 and 3.5
clients (Python, curl) send that alert in clear, as they have not switched their write
key yet; GnuTLS's gnutls-cli encrypts it under ``CLIENT_HANDSHAKE_TRAFFIC_SECRET``.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography import x509

from ..errors import DecryptError
from ..handshake import (
    Certificate,
    CertificateVerify,
    CompressedCertificate,
    HandshakeMessage,
    HandshakeParser,
    RecordParser,
    ServerHello,
    decode_message,
)
from ..handshake import Record as WireRecord
from .authentication import certificate_verify_content, finished_verify_data, verify_signature
from .keylog import parse_keylog
from .protection import open_record
from .result import Decrypted, Direction, Message, Record, record_name
from .suites import SUITES, CipherSuite
from .timeline import _interleave, _stamp
from .traffic import TrafficKeys, decode_key_update, next_traffic_secret, traffic_keys

if TYPE_CHECKING:
    from ..capture import Capture

_LABELS = {
    ("c2s", "handshake"): "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    ("s2c", "handshake"): "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    ("c2s", "application"): "CLIENT_TRAFFIC_SECRET_0",
    ("s2c", "application"): "SERVER_TRAFFIC_SECRET_0",
}


@dataclass
class _Side:
    """The receive state for one direction: its records, its keys, its counter."""

    direction: Direction
    wire: list[WireRecord]  # the records as they travelled (helpers.handshake.Record)
    parser: HandshakeParser = field(default_factory=HandshakeParser)
    position: int = 0
    keys: TrafficKeys | None = None
    key_label: str | None = None
    sequence: int = 0  # the AEAD counter under the current key (§5.3)
    protected: int = 0  # encrypted records seen so far, across keys
    done: list[Record] = field(default_factory=list)
    switched: bool = False  # True once the first protected record chose its key

    def switch(self, label: str, keys: TrafficKeys | None) -> None:
        """From now on, records in this direction use ``label``; ``keys`` is None when
        the key log lacks that secret (those records are kept, marked, not opened)."""
        self.key_label, self.keys, self.sequence = label, keys, 0
        self.switched = True


_EARLY = "CLIENT_EARLY_TRAFFIC_SECRET"

# ClientHello enters the transcript in read_client_hellos (and HRR replaces it);
# NewSessionTicket and KeyUpdate come after the handshake (§4.6) and never enter it.
_NOT_IN_TRANSCRIPT = {1, 4, 24}


class _Connection:
    """Replays a connection, one direction after the other (see :func:`decrypt`)."""

    def __init__(self, client_bytes: bytes, server_bytes: bytes, keylog: str | bytes) -> None:
        # Bytes after the last complete record (a cut capture) are left out.
        self.client = _Side("c2s", RecordParser().feed(client_bytes))
        self.server = _Side("s2c", RecordParser().feed(server_bytes))
        self.keylog = parse_keylog(keylog)
        self.transcript: list[bytes] = []
        self.client_hellos: list[bytes] = []
        self.suite: CipherSuite | None = None
        self.secrets: dict[str, bytes] = {}
        self.client_random = b""
        self.certificates: list[x509.Certificate] = []
        self.client_certificates: list[x509.Certificate] = []
        self.early_data_offered = False
        self.early_data_accepted = False  # the server's EncryptedExtensions says early_data
        self.early_data_unread = False  # an early record stayed closed (no early secret)
        self.version = ""  # from the ServerHello: "TLSv1.3" when decrypting goes on

    # -- the clear part ---------------------------------------------------

    def read_client_hellos(self) -> None:
        """The client's first records are in the clear: ClientHello (twice after HRR)."""
        side = self.client
        while side.position < len(side.wire):
            raw = side.wire[side.position]
            if raw.content_type == 23:
                break
            self.plain_record(side, raw)
            side.position += 1
        hellos = [m.decoded for r in side.done for m in r.messages if m.msg_type == 1]
        if not hellos:
            raise DecryptError(
                "The client's bytes do not start with a ClientHello.",
                "Pass the bytes the client sent (Capture.client_bytes) from the first byte on.",
            )
        self.client_hellos = [m.raw for r in side.done for m in r.messages if m.msg_type == 1]
        self.early_data_offered = hellos[0].extension(42) is not None
        client_random = hellos[0].random
        if client_random not in self.keylog:
            raise DecryptError(
                f"The key log has no secrets for this connection (client random {client_random.hex()[:16]}…).",
                "Pass the key log written during this connection (SSLContext.keylog_filename).",
            )
        self.client_random = client_random
        self.secrets = self.keylog[client_random]
        self.transcript = [self.client_hellos[0]]

    def plain_record(self, side: _Side, raw: WireRecord) -> Record:
        record = Record(
            direction=side.direction,
            index=len(side.done),
            offset=raw.offset,
            wire=raw.raw,
            outer_type=raw.content_type,
            encrypted=False,
            inner_type=raw.content_type,
            content=raw.payload,
        )
        if raw.content_type == 22:
            for msg in side.parser.feed(raw.payload):
                record.messages.append(self.on_message(side, msg, encrypted=False))
        side.done.append(record)
        return record

    # -- the protected part -----------------------------------------------

    def secret(self, label: str) -> bytes | None:
        """The secret ``label`` from the key log, or None when the endpoint never wrote it.

        A client that abandons the handshake (it rejected the server's certificate)
        never derives the application traffic secrets, so it never logs them: the
        records they protect cannot be opened, everything before them can.
        """
        return self.secrets.get(label)

    def keys_for(self, label: str) -> TrafficKeys | None:
        secret = self.secret(label)
        return None if secret is None else traffic_keys(self.current_suite(), secret)

    def protected_record(self, side: _Side, raw: WireRecord) -> Record:
        assert self.suite is not None
        if not side.switched:
            label = _LABELS[(side.direction, "handshake")]
            if side.direction == "c2s" and self.early_data_offered and _EARLY in self.secrets:
                label = _EARLY  # 0-RTT: the client's first protected records (§2.3)
            side.switch(label, self.keys_for(label))
        if side.keys is None:
            return self.unopened_record(side, raw)
        header = raw.raw[:5]
        try:
            inner_type, content = open_record(
                self.suite, side.keys, side.sequence, header, raw.payload
            )
        except DecryptError as error:
            if side.key_label == _EARLY and not self.early_data_accepted:
                # The server rejected the early data: no EndOfEarlyData, the client
                # went on under its handshake secret (§4.2.10).
                label = _LABELS[(side.direction, "handshake")]
                side.switch(label, self.keys_for(label))
                return self.protected_record(side, raw)
            if self.is_early_data(side):
                return self.skip_early_data(side, raw)
            name = record_name(
                side.direction, len(side.done), side.protected, side.sequence, side.key_label
            )
            raise DecryptError(
                f"{name[0].upper()}{name[1:]}, at offset {raw.offset}, failed authentication:"
                " the key log does not match or the bytes were changed.",
                error.hint,
            ) from None
        record = self.count_protected(side, raw, inner_type, content, keys=side.keys)
        if inner_type == 22:
            for msg in side.parser.feed(content):
                record.messages.append(self.on_message(side, msg, encrypted=True))
        return record

    def unopened_record(self, side: _Side, raw: WireRecord) -> Record:
        """A protected record whose traffic secret is not in the key log: kept, marked."""
        return self.count_protected(side, raw, raw.content_type, b"", missing_secret=side.key_label)

    def count_protected(
        self, side: _Side, raw: WireRecord, inner_type: int, content: bytes, **extra: Any
    ) -> Record:
        """Record a protected record, opened or not. Either way it used up one sequence
        number under the current key (the nonce counter, §5.3), so the next one is read
        with the right nonce."""
        record = Record(
            direction=side.direction,
            index=len(side.done),
            offset=raw.offset,
            wire=raw.raw,
            outer_type=raw.content_type,
            encrypted=True,
            inner_type=inner_type,
            content=content,
            key_label=side.key_label,
            sequence=side.sequence,
            protected_index=side.protected,
            **extra,
        )
        side.sequence += 1
        side.protected += 1
        side.done.append(record)
        return record

    def is_early_data(self, side: _Side) -> bool:
        """0-RTT records come before the client's first handshake-key record (§2.3)."""
        return (
            side.direction == "c2s"
            and self.early_data_offered
            and side.sequence == 0
            and (side.key_label or "").startswith("CLIENT_HANDSHAKE")
        )

    def skip_early_data(self, side: _Side, raw: WireRecord) -> Record:
        """A 0-RTT record while the key log has no CLIENT_EARLY_TRAFFIC_SECRET: kept, marked."""
        record = Record(
            direction=side.direction,
            index=len(side.done),
            offset=raw.offset,
            wire=raw.raw,
            outer_type=23,
            encrypted=True,
            inner_type=23,
            content=b"",
            key_label=_EARLY,
            missing_secret=_EARLY,
        )
        side.done.append(record)
        self.early_data_unread = True
        return record

    def run(self, side: _Side) -> None:
        while side.position < len(side.wire):
            raw = side.wire[side.position]
            side.position += 1
            if raw.content_type == 23 and self.suite is not None:
                self.protected_record(side, raw)
            else:
                self.plain_record(side, raw)

    # -- what each handshake message changes -----------------------------

    def on_message(self, side: _Side, msg: HandshakeMessage, *, encrypted: bool) -> Message:
        message = Message(side.direction, msg, encrypted)
        kind = msg.msg_type
        message.decoded = (
            decode_key_update(msg.body) if kind == 24 else decode_message(msg, tls13=True)
        )
        if kind == 2:
            self.on_server_hello(message)
            return message
        if kind == 8:  # EncryptedExtensions: did the server accept 0-RTT? (§4.2.10)
            self.early_data_accepted = message.decoded.extension(42) is not None
        elif kind in (11, 25):  # Certificate, or CompressedCertificate (RFC 8879)
            self.keep_certificates(side, message)
        elif kind == 15:
            self.check_certificate_verify(side, message)
        elif kind == 20:
            self.check_finished(side, message)
        if kind not in _NOT_IN_TRANSCRIPT:
            self.transcript.append(message.raw)
        if kind == 20:
            # §7.2: Finished is the last message under the handshake keys.
            label = _LABELS[(side.direction, "application")]
            side.switch(label, self.keys_for(label))
        elif kind == 24:
            self.key_update(side)
        elif kind == 5:
            # EndOfEarlyData (§4.5): the last message under the early secret; it is in
            # the transcript (appended above), and the handshake secret takes over.
            label = _LABELS[(side.direction, "handshake")]
            side.switch(label, self.keys_for(label))
        return message

    def on_server_hello(self, message: Message) -> None:
        hello = message.decoded
        assert isinstance(hello, ServerHello)
        if hello.is_hello_retry_request:
            # §4.4.1: after a HelloRetryRequest, ClientHello1 is replaced in the
            # transcript by a synthetic message_hash message carrying its hash.
            suite = SUITES.get(hello.cipher_suite, SUITES[0x1301])
            first = suite.digest(self.transcript[0])
            self.transcript = [bytes([254, 0, 0, len(first)]) + first, message.raw]
            self.transcript += self.client_hellos[1:2]
            return
        self.version = hello.version
        if hello.version != "TLSv1.3":
            raise DecryptError(
                f"This connection negotiated {hello.version}, not TLS 1.3.",
                "This module decrypts TLS 1.3 only; set minimum_version = TLSVersion.TLSv1_3.",
            )
        if hello.cipher_suite not in SUITES:
            raise DecryptError(
                f"The server chose {hello.cipher_suite_name}, which this module does not decrypt.",
                "Python and OpenSSL negotiate one of "
                + ", ".join(s.name for s in SUITES.values())
                + ".",
            )
        self.suite = SUITES[hello.cipher_suite]
        self.transcript.append(message.raw)

    def keep_certificates(self, side: _Side, message: Message) -> None:
        decoded = message.decoded
        if isinstance(decoded, CompressedCertificate):
            # OpenSSL 3.2+ (RFC 8879): the transcript keeps the compressed message as
            # sent; only the certificates are read from the decompressed one.
            decoded = decoded.certificate()
        assert isinstance(decoded, Certificate)
        certificates = decoded.x509()
        if side.direction == "s2c":
            self.certificates = certificates
        else:
            self.client_certificates = certificates

    def check_certificate_verify(self, side: _Side, message: Message) -> None:
        verify = message.decoded
        assert isinstance(verify, CertificateVerify)
        server = side.direction == "s2c"
        certificates = self.certificates if server else self.client_certificates
        content = certificate_verify_content(self.transcript_hash(), server=server)
        message.ok = bool(certificates) and verify_signature(
            certificates[0], verify.algorithm, verify.signature, content
        )

    def check_finished(self, side: _Side, message: Message) -> None:
        secret = self.secret(_LABELS[(side.direction, "handshake")])
        if secret is None:  # cannot happen for a record we opened, but stay honest
            return
        if side.direction == "c2s" and self.early_data_accepted and self.early_data_unread:
            # EndOfEarlyData was in a record we could not open: the transcript has a
            # hole, so the MAC cannot be checked (neither right nor wrong).
            return
        suite = self.current_suite()
        message.expected = finished_verify_data(suite, secret, self.transcript_hash())
        message.ok = hmac.compare_digest(message.expected, message.body)

    def key_update(self, side: _Side) -> None:
        assert side.keys is not None
        suite = self.current_suite()
        label = re.sub(r"_(\d+)$", lambda m: f"_{int(m.group(1)) + 1}", side.key_label or "")
        side.switch(label, traffic_keys(suite, next_traffic_secret(suite, side.keys.secret)))

    def current_suite(self) -> CipherSuite:
        if self.suite is None:
            raise DecryptError(
                "An encrypted handshake message arrived before the ServerHello.",
                "Pass each direction's bytes from its first byte on.",
            )
        return self.suite

    def transcript_hash(self) -> bytes:
        return self.current_suite().digest(b"".join(self.transcript))

    # -- the whole connection --------------------------------------------

    def replay(self) -> Decrypted:
        self.read_client_hellos()
        # The server's flight only needs the ClientHello(s); the client's Finished
        # needs the server's whole flight in the transcript: server first.
        self.run(self.server)
        if self.suite is None:
            raise DecryptError(
                "The server's bytes contain no ServerHello.",
                "Pass the bytes the server sent (Capture.server_bytes) from the first byte on.",
            )
        self.run(self.client)
        return Decrypted(
            suite=self.suite,
            client_random=self.client_random,
            records=_interleave(self.client.done, self.server.done),
            server_certificates=self.certificates,
            keylog_secrets=dict(self.secrets),
            version=self.version,
        )


def decrypt(client_bytes: bytes, server_bytes: bytes, keylog: str | bytes) -> Decrypted:
    """Decrypt one TLS 1.3 connection from the raw bytes of each direction and a key log.

    ``client_bytes`` is everything the client sent (starting with its ClientHello),
    ``server_bytes`` everything the server sent: a :class:`~helpers.capture.Capture`,
    the TCP payloads of a pcap, or a published trace such as RFC 8448. Raises
    :class:`~helpers.errors.DecryptError` when a record does not authenticate. A record
    whose traffic secret is not in the key log (an abandoned handshake never logs the
    application secrets) is kept with ``missing_secret`` set; ``Decrypted.outcome`` says
    how the handshake ended.

    Without timestamps the two directions are merged in protocol order (hellos,
    server flight, client flight, then the client's records before the server's).
    """
    return _Connection(client_bytes, server_bytes, keylog).replay()


def decrypt_capture(capture: Capture, keylog: str | bytes) -> Decrypted:
    """:func:`decrypt` for a :class:`~helpers.capture.Capture`, ordered by the capture's clock."""
    result = decrypt(capture.client_bytes, capture.server_bytes, keylog)
    _stamp(result.records, capture.chunks)
    result.records = _interleave(result.client_records, result.server_records)
    return result
