"""TLS records and handshake messages, decoded sans-IO (introduced in notebook 06 (capture: 01)).

Theory of operation
-------------------
TLS is two protocols stacked on top of each other.

The **record layer** cuts the byte stream into *records*. Each record starts with a
five-byte header: a content type (handshake, alert, change_cipher_spec,
application_data), a legacy version number and a length. The payload follows.
A record never carries more than 2**14 bytes of plaintext.

The **handshake protocol** speaks in *messages* (ClientHello, ServerHello,
Certificate, ...), each with a four-byte header: a type and a 24-bit length. Handshake
messages travel inside handshake records, but the two framings are independent: one
message may be split across several records, and one record may carry several
messages.

And TCP adds a third framing of its own: a ``recv()`` call returns whatever bytes have
arrived, which may be half a record or three records and a bit. So a parser that is
fed bytes as they arrive must **keep a buffer**: :class:`RecordParser` holds on to an
incomplete record until the rest arrives, and :class:`HandshakeParser` holds on to an
incomplete message until the records that complete it arrive. That is the whole trick
behind h11 and every other sans-IO parser: *bytes in, events out, no sockets*. The
parser never reads from the network, so it can be tested by feeding it bytes one at a
time, and the same code decodes a live relay, a MemoryBIO pair or a saved capture.

What can you read? **TLS 1.2** sends the whole handshake in plaintext except the two
Finished messages: everything a record carries after a ChangeCipherSpec in that
direction is encrypted. **TLS 1.3** encrypts everything after ServerHello: the server's
EncryptedExtensions, Certificate, CertificateVerify and Finished travel in records
whose outer type says application_data (23). A ChangeCipherSpec may still appear, as a
meaningless plaintext record kept for middleboxes (RFC 8446 appendix D.4). So in a
TLS 1.3 capture the only decodable handshake messages are ClientHello and ServerHello
(and a HelloRetryRequest); :mod:`helpers.tls13` decrypts the rest with a key log.

Every parse function here raises exactly one exception type for malformed input:
:class:`helpers.errors.ParseError`, naming the byte offset and what was expected.

Where things are, in reading order
----------------------------------
Everything below is importable from ``helpers.handshake`` itself.

=====================  ===============================================================
``registry.py``        the IANA names of TLS's numbers (suites, groups, alerts, ...),
                       ``cipher_suite_name()`` and friends, GREASE, ``HRR_RANDOM``
``reader.py``          the bounds-checked reader every parser uses (vectors, integers)
``display.py``         how decoded objects show as HTML tables in a notebook
``records.py``         the record layer: ``Record``, ``RecordParser``, ``parse_records``
``messages.py``        handshake framing: ``HandshakeMessage``, ``HandshakeParser``,
                       and ``decode_message``, which picks the right parser below
``extensions.py``      the extension block: ``Extension``, ``KeyShareEntry``,
                       ``parse_extensions`` (SNI, ALPN, supported_versions, ...)
``hellos.py``          ``ClientHello``, ``ServerHello`` (and HelloRetryRequest)
``authentication.py``  ``Certificate`` (and RFC 8879's ``CompressedCertificate``),
                       ``CertificateVerify``, ``Finished``
``tls12.py``           TLS 1.2's key exchange: ``ServerKeyExchange``,
                       ``ServerHelloDone``, ``ClientKeyExchange``
``server_params.py``   ``EncryptedExtensions``, ``CertificateRequest``
``tickets.py``         ``NewSessionTicket``
``alerts.py``          ``Alert`` and ``ChangeCipherSpec``
=====================  ===============================================================
"""

from __future__ import annotations

from .alerts import Alert, ChangeCipherSpec, parse_alert, parse_change_cipher_spec
from .authentication import (
    Certificate,
    CertificateVerify,
    CompressedCertificate,
    Finished,
    parse_certificate,
    parse_certificate_verify,
    parse_compressed_certificate,
    parse_finished,
)
from .extensions import Extension, KeyShareEntry, parse_extensions
from .hellos import ClientHello, ServerHello, parse_client_hello, parse_server_hello
from .messages import (
    HandshakeMessage,
    HandshakeParser,
    decode_message,
    decode_messages,
    parse_handshake_messages,
)
from .records import Record, RecordParser, parse_records
from .registry import (
    ALERT_DESCRIPTIONS,
    CIPHER_SUITES,
    CONTENT_TYPES,
    EXTENSION_TYPES,
    HANDSHAKE_TYPES,
    HRR_RANDOM,
    NAMED_GROUPS,
    SIGNATURE_SCHEMES,
    alert_name,
    cipher_suite_name,
    extension_name,
    group_name,
    is_grease,
    key_exchange_of,
    signature_scheme_name,
    version_name,
)
from .server_params import (
    CertificateRequest,
    EncryptedExtensions,
    parse_certificate_request,
    parse_encrypted_extensions,
)
from .tickets import NewSessionTicket, parse_new_session_ticket
from .tls12 import (
    ClientKeyExchange,
    ServerHelloDone,
    ServerKeyExchange,
    parse_client_key_exchange,
    parse_server_hello_done,
    parse_server_key_exchange,
)

# Also importable from here, as they were before the package was split (not in __all__).
from .records import MAX_RECORD_LENGTH as MAX_RECORD_LENGTH  # isort: skip
from .records import RECORD_HEADER as RECORD_HEADER  # isort: skip
from .registry import (  # isort: skip
    ALERT_LEVELS as ALERT_LEVELS,
    CERT_COMPRESSION as CERT_COMPRESSION,
    COMPRESSION_METHODS as COMPRESSION_METHODS,
    DOWNGRADE_TLS11 as DOWNGRADE_TLS11,
    DOWNGRADE_TLS12 as DOWNGRADE_TLS12,
    EC_POINT_FORMATS as EC_POINT_FORMATS,
    PSK_MODES as PSK_MODES,
    VERSIONS as VERSIONS,
)

__all__ = [
    "CONTENT_TYPES",
    "HANDSHAKE_TYPES",
    "CIPHER_SUITES",
    "EXTENSION_TYPES",
    "NAMED_GROUPS",
    "SIGNATURE_SCHEMES",
    "ALERT_DESCRIPTIONS",
    "HRR_RANDOM",
    "Record",
    "HandshakeMessage",
    "RecordParser",
    "HandshakeParser",
    "Extension",
    "KeyShareEntry",
    "ClientHello",
    "ServerHello",
    "Certificate",
    "CompressedCertificate",
    "ServerKeyExchange",
    "ServerHelloDone",
    "ClientKeyExchange",
    "Finished",
    "EncryptedExtensions",
    "CertificateVerify",
    "CertificateRequest",
    "NewSessionTicket",
    "ChangeCipherSpec",
    "Alert",
    "parse_records",
    "parse_handshake_messages",
    "parse_extensions",
    "parse_client_hello",
    "parse_server_hello",
    "parse_certificate",
    "parse_compressed_certificate",
    "parse_server_key_exchange",
    "parse_server_hello_done",
    "parse_client_key_exchange",
    "parse_finished",
    "parse_encrypted_extensions",
    "parse_certificate_verify",
    "parse_certificate_request",
    "parse_new_session_ticket",
    "parse_change_cipher_spec",
    "parse_alert",
    "decode_message",
    "decode_messages",
    "version_name",
    "cipher_suite_name",
    "group_name",
    "signature_scheme_name",
    "extension_name",
    "alert_name",
    "is_grease",
    "key_exchange_of",
]
