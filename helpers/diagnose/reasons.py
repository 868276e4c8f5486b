"""What OpenSSL and the operating system call each failure, mapped to a kind (notebook 02).

A failed connection reaches Python with names chosen by OpenSSL and the OS: a verify
message and an ``X509_V_ERR_*`` code for a rejected certificate (RFC 5280 §6.1 path
validation), a reason code such as ``WRONG_VERSION_NUMBER`` or
``TLSV1_ALERT_PROTOCOL_VERSION`` for the rest of the handshake (alerts: RFC 8446 §6.2),
an ``errno`` for the network. The tables below map each name to a kind of
:data:`~.advice.ADVICE`. :mod:`.classify` tries them from the most specific (the verify
message) to the least (a phrase in the exception's text). Tables only, no logic: add a
row here when a new OpenSSL names an old failure differently.

Names that changed with the OpenSSL version (Python shows only the *last* error OpenSSL
queued, so when a new OpenSSL wraps an old error in a more general one, the old name is
gone from the exception):

* A record that fails its integrity check (RFC 8446 §5.2) is
  ``DECRYPTION_FAILED_OR_BAD_RECORD_MAC`` on OpenSSL 3.0 and 3.1. OpenSSL 3.2 rewrote the
  record layer: the same failure now arrives as ``RECORD_LAYER_FAILURE`` ("record layer
  failure"), the general error for every record the receiver refused *with an alert*.
  A port that does not speak TLS at all still reads ``WRONG_VERSION_NUMBER`` on every
  version (OpenSSL sends no alert when the first bytes are not a TLS record header), so
  ``RECORD_LAYER_FAILURE`` means "a TLS peer, and one of its records was refused", which
  in practice is a record altered on the way. :data:`_RECORD_LAYER_KIND` holds that
  rule; measured on OpenSSL 3.0.19 and 3.5.9 (``tests/test_diagnose.py``).
* The peer's alert is named ``SSLV3_ALERT_BAD_RECORD_MAC`` on both, but its text reads
  "sslv3 alert bad record mac" on 3.0 and "ssl/tls alert bad record mac" on 3.5 (the
  newer OpenSSLs renamed the SSLv3-era alert texts); the phrases below match the part
  both share.
* A TLS 1.0/1.1-only server: on OpenSSL 3.0 a client whose minimum allows TLS 1.0 offers
  it and then refuses the server's MD5-SHA1/SHA-1 handshake signature
  (``LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED``); from OpenSSL 3.1 on, TLS 1.0/1.1 only
  work at security level 0, the client does not offer them and the server answers with a
  ``protocol_version`` alert. Both are the ``protocol-version`` kind.
"""

from __future__ import annotations

import errno
import ssl

# OpenSSL's verify messages (X509_verify_cert_error_string), lower-cased. Matching on the
# text rather than the number keeps working across OpenSSL versions: the numbers moved
# (X509_V_ERR_INVALID_CA was 24 in OpenSSL 1.1 and is 79 in 3.0), the texts did not.
_VERIFY_MESSAGES: dict[str, str] = {
    "certificate has expired": "expired",
    "certificate is not yet valid": "not-yet-valid",
    # OpenSSL 3.6 added a hint to the text (reported in issue 10, forky's OpenSSL 3.6.5)
    "certificate is not yet valid or the system clock is incorrect": "not-yet-valid",
    "hostname mismatch": "hostname-mismatch",
    "ip address mismatch": "hostname-mismatch",
    "self-signed certificate": "self-signed",
    "self-signed certificate in certificate chain": "untrusted-root",
    "unable to get local issuer certificate": "unknown-issuer",
    "unable to get issuer certificate": "unknown-issuer",
    "unable to verify the first certificate": "unknown-issuer",
    "certificate revoked": "revoked",
    "unable to get certificate crl": "crl-problem",
    "crl has expired": "crl-problem",
    "crl is not yet valid": "crl-problem",
    "unable to get certificate crl issuer": "crl-problem",
    "ee certificate key too weak": "weak-key",
    "ca certificate key too weak": "weak-key",
    "ca signature digest algorithm too weak": "weak-signature",
    "unsupported signature algorithm": "weak-signature",
    "certificate signature failure": "bad-signature",
    "unable to decrypt certificate's signature": "bad-signature",
    "invalid ca certificate": "invalid-ca",
    "invalid non-ca certificate (has ca markings)": "invalid-ca",
    "path length constraint exceeded": "invalid-ca",
    "key usage does not include certificate signing": "invalid-ca",
    "unsuitable certificate purpose": "wrong-purpose",
    "unsupported certificate purpose": "wrong-purpose",
}

# The same verdicts by X509_V_ERR_* number, OpenSSL 3.0 numbering (x509_vfy.h). Only
# used when the message is missing or unknown.
_VERIFY_CODES: dict[int, str] = {
    2: "unknown-issuer",
    3: "crl-problem",
    4: "bad-signature",
    7: "bad-signature",
    9: "not-yet-valid",
    10: "expired",
    11: "crl-problem",
    12: "crl-problem",
    18: "self-signed",
    19: "untrusted-root",
    20: "unknown-issuer",
    21: "unknown-issuer",
    23: "revoked",
    25: "invalid-ca",
    26: "wrong-purpose",
    32: "invalid-ca",
    37: "invalid-ca",
    62: "hostname-mismatch",
    64: "hostname-mismatch",
    66: "weak-key",
    67: "weak-key",
    68: "weak-signature",
    76: "weak-signature",
    79: "invalid-ca",
    **dict.fromkeys(range(83, 95), "nonconforming"),  # VERIFY_X509_STRICT profile checks
}

# OpenSSL reason codes (``ssl.SSLError.reason``) for failures that are not certificate
# verification. Alerts the peer sent are named TLSV1_ALERT_* / SSLV3_ALERT_* / TLSV13_ALERT_*.
_REASONS: dict[str, str] = {
    # plain text where a TLS record should be (RFC 8446 §5.1)
    "WRONG_VERSION_NUMBER": "not-tls",
    "PACKET_LENGTH_TOO_LONG": "not-tls",
    "UNKNOWN_PROTOCOL": "not-tls",
    "HTTP_REQUEST": "not-tls",
    "HTTPS_PROXY_REQUEST": "not-tls",
    # versions (RFC 8996)
    "TLSV1_ALERT_PROTOCOL_VERSION": "protocol-version",
    "UNSUPPORTED_PROTOCOL": "protocol-version",
    "NO_PROTOCOLS_AVAILABLE": "protocol-version",
    "WRONG_SSL_VERSION": "protocol-version",
    "VERSION_TOO_LOW": "protocol-version",
    "VERSION_TOO_HIGH": "protocol-version",
    "TLSV1_ALERT_INAPPROPRIATE_FALLBACK": "protocol-version",
    # OpenSSL 3.0 with a minimum of TLS 1.0 (Debian/Ubuntu Pythons): TLS 1.0 agreed, then
    # the server's MD5-SHA1 / SHA-1 ServerKeyExchange signature refused at level >= 1
    "LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED": "protocol-version",
    # key exchange
    "DH_KEY_TOO_SMALL": "weak-dh",
    "BAD_DH_VALUE": "weak-dh",
    # client certificates (RFC 8446 §4.3.2, §4.4.2.4)
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "client-cert-required",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "client-cert-required",
    "SSLV3_ALERT_BAD_CERTIFICATE": "client-cert-rejected",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "client-cert-rejected",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "client-cert-rejected",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "client-cert-rejected",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "client-cert-rejected",
    "TLSV1_ALERT_UNKNOWN_CA": "client-cert-rejected",
    "TLSV1_ALERT_ACCESS_DENIED": "client-cert-rejected",
    # negotiation
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "handshake-failure",
    "NO_SHARED_CIPHER": "handshake-failure",
    "NO_CIPHERS_AVAILABLE": "handshake-failure",
    "NO_SUITABLE_SIGNATURE_ALGORITHM": "handshake-failure",
    "NO_SUITABLE_KEY_SHARE": "handshake-failure",
    "TLSV1_ALERT_INSUFFICIENT_SECURITY": "handshake-failure",
    "SSLV3_ALERT_ILLEGAL_PARAMETER": "handshake-failure",
    "TLSV1_ALERT_INTERNAL_ERROR": "handshake-failure",
    "TLSV1_ALERT_DECODE_ERROR": "handshake-failure",
    "TLSV1_UNRECOGNIZED_NAME": "unrecognized-name",
    "TLSV1_ALERT_UNRECOGNIZED_NAME": "unrecognized-name",
    "UNSAFE_LEGACY_RENEGOTIATION_DISABLED": "legacy-renegotiation",
    "UNEXPECTED_EOF_WHILE_READING": "closed",
    # record integrity (RFC 8446 §5.2): we refused a record, or the peer told us it did
    "DECRYPTION_FAILED_OR_BAD_RECORD_MAC": "bad-record-mac",
    "SSLV3_ALERT_BAD_RECORD_MAC": "bad-record-mac",
    "BAD_RECORD_MAC": "bad-record-mac",
}

# Last resort for exceptions that only carry text (a wrapper whose cause was lost).
_PHRASES: tuple[tuple[str, str], ...] = (
    ("wrong version number", "not-tls"),
    ("packet length too long", "not-tls"),
    ("unknown protocol", "not-tls"),
    ("alert protocol version", "protocol-version"),
    ("unsupported protocol", "protocol-version"),
    ("no protocols available", "protocol-version"),
    ("legacy sigalg disallowed", "protocol-version"),
    ("dh key too small", "weak-dh"),
    ("bad record mac", "bad-record-mac"),
    ("certificate required", "client-cert-required"),
    ("alert handshake failure", "handshake-failure"),
    ("doesn't match", "hostname-mismatch"),  # urllib3's own match_hostname
    ("eof occurred in violation of protocol", "closed"),
    ("unexpected eof", "closed"),
    ("server disconnected", "closed"),  # httpx RemoteProtocolError, aiohttp
    ("remote end closed connection", "closed"),  # http.client RemoteDisconnected
    ("name or service not known", "dns"),
    ("temporary failure in name resolution", "dns"),
    ("nodename nor servname", "dns"),
    ("failed to resolve", "dns"),
    ("getaddrinfo failed", "dns"),
    ("connection refused", "refused"),
    ("timed out", "timeout"),
    ("connection reset", "reset"),
)

# OpenSSL >= 3.2: "record layer failure" wraps the refused record's real reason (see the
# module docstring). Before 3.2 the name only came from internal record-layer errors,
# which say nothing about the peer: no kind, so the generic "tls-error" applies.
_RECORD_LAYER_REASON = "RECORD_LAYER_FAILURE"
_RECORD_LAYER_PHRASE = "record layer failure"
_RECORD_LAYER_KIND: str | None = "bad-record-mac" if ssl.OPENSSL_VERSION_INFO >= (3, 2) else None

_UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL}
