"""What went wrong with this TLS connection, in plain English (introduced in notebook 02).

Theory of operation
-------------------
A client that opens ``https://host:port/`` climbs a ladder, and every rung can break:

====  ==============================  ===========================================  ==================
rung  what happens                    what breaks                                  kind
====  ==============================  ===========================================  ==================
1     the name becomes an address     no such name, no network                     ``dns``
2     a TCP connection opens          nothing listens, a firewall drops packets    ``refused``,
                                                                                   ``timeout``
3     TLS records are exchanged       the port speaks something else (HTTP)        ``not-tls``
4     the handshake agrees on         no common version, weak parameters,          ``protocol-version``,
      version, cipher and keys        the server wants a client certificate        ``weak-dh``, ...
      (RFC 8446 §4)
5     the certificate chain is        expired, unknown issuer, revoked, weak       ``expired``,
      validated (RFC 5280 §6.1)                                                    ``untrusted-root``, ...
6     the name is matched             the certificate is for another name          ``hostname-mismatch``
      (RFC 6125 §6, RFC 9110 §4.3.4)
====  ==============================  ===========================================  ==================

Python reports each break as an exception, and ``requests`` wraps that exception two or
three times before you see it::

    requests.exceptions.SSLError            <- what your ``except`` catches
      .args[0]  urllib3 MaxRetryError       <- "Max retries exceeded ..."
        .reason urllib3 SSLError
          ssl.SSLCertVerificationError      <- the real answer: .verify_code == 10

:func:`explain` walks that chain (``__cause__``, ``__context__``, ``.reason`` and
``.args``), finds the most specific exception in it and looks up a short **kind**
(``"expired"``) in :data:`ADVICE`, one table of plain-English explanations and fixes
that you can read on its own. :func:`check` makes a connection itself, with
:mod:`ssl` or with ``requests``, and returns the same :class:`Diagnosis` plus what it
saw on the way: the TLS version, the cipher suite and the certificates the server sent.
:func:`atlas` runs every lab scenario through both clients and tabulates what each one
raised: the "exception atlas" of notebook 02.

Two details worth knowing:

* **Verification happens inside the handshake.** When it fails, Python closes the
  connection and the learner never sees the certificates that caused it. Python 3.13
  can still read them from the failed socket (``SSLSocket.get_unverified_chain()``);
  on older Pythons, and for ``requests``, which hides its socket, :func:`check` opens a
  *second* connection that does not verify, reads the chain the server sends and
  closes without sending a byte of application data (see :func:`_probe_chain`). That
  probe is the only non-verifying connection in the course helpers, and nothing ever
  trusts what it returns.
* **A check is a verdict of one client's policy, not of the certificate.** Python's
  :func:`ssl.create_default_context` still accepts a certificate whose name is only in
  the Common Name; ``requests`` (through urllib3) does not. Revocation is checked only
  if you hand over a CRL (``crl=``). The atlas shows where the two clients differ.

:func:`check` never raises for a network or TLS failure: it returns a failed
:class:`Diagnosis`. Mistakes in the call itself (a malformed URL, a CA file that does
not exist) raise :class:`~helpers.errors.UsageError`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import errno
import html
import ipaddress
import os
import re
import socket
import ssl
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from .cards import ChainCard, Table
from .errors import OfflineViolation, UsageError

if TYPE_CHECKING:
    from .lab import Expect, Lab, Scenario

__all__ = [
    "ADVICE",
    "Advice",
    "Atlas",
    "AtlasRow",
    "Diagnosis",
    "atlas",
    "check",
    "exception_chain",
    "explain",
]

_UTC = _dt.timezone.utc  # noqa: UP017 (datetime.UTC is 3.11+; the package supports 3.10)

#: Seconds a :func:`check` waits for each step (connect, handshake, first HTTP bytes).
DEFAULT_TIMEOUT = 5.0

# --------------------------------------------------------------------------- the texts


class Advice(NamedTuple):
    """What a kind of failure means, and what to do about it."""

    explanation: str
    fix: str


#: Every kind :func:`check` and :func:`explain` can report, with a plain-English
#: explanation and a fix. Read it top to bottom: it is a tour of what goes wrong in TLS.
ADVICE: Mapping[str, Advice] = {
    "ok": Advice(
        "The handshake completed: the server proved it holds the private key of a "
        "certificate that chains to a root in your trust store, that is within its "
        "validity period and that names the host you asked for (RFC 8446 §4.4.2-4.4.4, "
        "RFC 5280 §6.1).",
        "Nothing to fix.",
    ),
    # ---- rung 5: the certificate chain (RFC 5280 §6.1 path validation)
    "expired": Advice(
        "A certificate in the chain is past its notAfter date. Every certificate carries a "
        "validity period (RFC 5280 §4.1.2.5) and path validation rejects one outside it "
        "(§6.1.3 (a)(2)): after that date its key may be retired, stolen or no longer watched.",
        "Admin: renew the certificate, reload the server and automate renewal (ACME, "
        "RFC 8555). Learner: check that this machine's clock and date are right.",
    ),
    "not-yet-valid": Advice(
        "A certificate's notBefore date is still in the future (RFC 5280 §4.1.2.5). Almost "
        "always a clock is wrong: the client's, or the CA's when it issued the certificate.",
        "Check the clocks on both machines (NTP). Admin: issue certificates with a notBefore "
        "slightly in the past, as CAs do.",
    ),
    "hostname-mismatch": Advice(
        "The certificate is valid, but for other names. The client compares the host in the "
        "URL with the certificate's subjectAltName entries (RFC 5280 §4.2.1.6; matching "
        "rules in RFC 6125 §6 and RFC 9110 §4.3.4); a certificate for another name proves "
        "nothing about this one.",
        "Learner: use exactly a name the certificate lists (see the chain below). Admin: "
        "reissue the certificate with every name clients use in subjectAltName, or serve "
        "the right certificate for this name (SNI, RFC 6066 §3).",
    ),
    "self-signed": Advice(
        "The server sent a certificate that signs itself and is not in your trust store. "
        "Anyone can make one for any name, so it proves nothing: a path must end at a trust "
        "anchor you chose beforehand (RFC 5280 §6.1.1 (d)).",
        "Admin: get a certificate from a CA your clients trust (for a public site, an ACME "
        "CA). For your own test server, trust that one certificate explicitly "
        "(cafile=its PEM file); never switch verification off.",
    ),
    "untrusted-root": Advice(
        "The chain ends at a root CA that is not in your trust store. The server even sent "
        "the root, but sending a root proves nothing: trust anchors come from the client's "
        "own store (RFC 5280 §6.1.1 (d)).",
        "If the CA is one you should trust (your company's or the lab's), pass its "
        "certificate as cafile= (requests: verify='ca.pem' or REQUESTS_CA_BUNDLE). "
        "Otherwise the server needs a certificate from a CA its clients trust.",
    ),
    "unknown-issuer": Advice(
        "Your client cannot find the certificate of the CA that signed the top certificate "
        "the server sent, neither in what the server sent nor in its trust store, so it "
        "cannot build a path (RFC 5280 §6.1). Most often the server left out its "
        "intermediate certificate: TLS says the server sends its chain (RFC 8446 §4.4.2), "
        "and browsers hide the mistake by fetching or remembering intermediates, while "
        "Python, curl and most APIs do not. Less often the issuer is a CA you do not trust.",
        "Look at the chain below. Admin: configure the server with the full chain "
        "(leaf, then intermediates: fullchain.pem) and test with check() or "
        "`openssl s_client -showcerts`. If the issuer is a private CA you should trust, "
        "pass its root as cafile=.",
    ),
    "revoked": Advice(
        "The CA has revoked this certificate: its serial number is on the CA's certificate "
        "revocation list (RFC 5280 §5.3.1 reasons, §6.3 CRL processing). Its key may have "
        "leaked, or it was replaced. Python only finds this out when it is given the CRL.",
        "Admin: install a new certificate with a new key. Clients should keep checking "
        "revocation, not stop.",
    ),
    "crl-problem": Advice(
        "Revocation checking was switched on, but there is no usable CRL for this "
        "certificate's issuer: none was loaded, or it has expired (RFC 5280 §5.1.2.5 "
        "nextUpdate), so the client cannot tell whether the certificate is revoked.",
        "Load a current CRL issued by the CA that issued the server's certificate (crl=...).",
    ),
    "weak-key": Advice(
        "A certificate's public key is too small for your client's security policy. Python "
        "runs OpenSSL at security level 2, which wants RSA keys of at least 2048 bits "
        "(112-bit security, NIST SP 800-57); a 1024-bit RSA key is within reach of a "
        "well-funded attacker.",
        "Admin: issue a new certificate with an ECDSA P-256 or an RSA-2048 (or larger) key.",
    ),
    "weak-signature": Advice(
        "A certificate in the chain is signed over a broken hash, such as SHA-1 (practical "
        "collisions since 2017, chosen-prefix since 2020) or MD5. A signature over a "
        "colliding hash can be transplanted onto a forged certificate, so OpenSSL refuses "
        "it at security level 1 and above (RFC 9155 deprecates SHA-1 in TLS signatures).",
        "Admin: reissue the certificate (and any intermediate) signed with SHA-256 or better.",
    ),
    "bad-signature": Advice(
        "A signature in the chain does not verify: the certificate was altered, or the "
        "certificate that claims to be its issuer has a different key (RFC 5280 §6.1.3 "
        "(a)(1)).",
        "Admin: check that the chain file holds the intermediate that really issued the "
        "leaf, and reissue if the certificate was damaged.",
    ),
    "invalid-ca": Advice(
        "A certificate in the chain signed another certificate without being allowed to: "
        "it lacks basicConstraints cA=TRUE or the keyCertSign key usage, or a path-length "
        "limit was exceeded (RFC 5280 §4.2.1.9, §4.2.1.3, §6.1.4 (k)-(n)). Otherwise any "
        "site's certificate could mint certificates for every other site.",
        "Admin: get the certificate from a real CA; a leaf's key must never be used to sign "
        "certificates.",
    ),
    "wrong-purpose": Advice(
        "The certificate may not identify a TLS server: its extendedKeyUsage does not "
        "include serverAuth (RFC 5280 §4.2.1.12), for example a client or e-mail "
        "certificate.",
        "Admin: issue a server certificate whose extendedKeyUsage includes serverAuth.",
    ),
    "nonconforming": Advice(
        "A certificate breaks an RFC 5280 profile rule that strict verification enforces "
        "(missing key identifiers, a non-critical basicConstraints on a CA, an empty "
        "subjectAltName ...). Python 3.13 turns this on by default (VERIFY_X509_STRICT).",
        "Admin: reissue the certificate with a conforming profile (any current CA or "
        "helpers.pki does this).",
    ),
    "certificate-invalid": Advice(
        "Certificate path validation failed for a reason not covered by the other kinds "
        "(RFC 5280 §6.1); the raw message below names it.",
        "Read the raw OpenSSL message and the chain below; `openssl verify -show_chain` "
        "gives the same verdict with more detail.",
    ),
    # ---- rung 4: the handshake (RFC 8446 §4, alerts §6.2)
    "client-cert-required": Advice(
        "The server asks the client to prove who it is with a certificate (mutual TLS: "
        "CertificateRequest, RFC 8446 §4.3.2) and you sent none. Under TLS 1.3 the client "
        "finishes its side of the handshake first, so the refusal (alert "
        "certificate_required, §6.2) only shows up on the first read.",
        "Present a client certificate the server's CA issued: client_cert=(cert, key) here, "
        "cert=(cert, key) in requests, ctx.load_cert_chain(cert, key) with ssl.",
    ),
    "client-cert-rejected": Advice(
        "The server did not accept the client certificate you sent: it does not know its "
        "CA, or the certificate is expired, revoked or not meant for clients (alerts "
        "bad_certificate, unknown_ca, certificate_expired; RFC 8446 §6.2).",
        "Use a client certificate issued by the CA the server trusts, valid today, with "
        "extendedKeyUsage clientAuth.",
    ),
    "protocol-version": Advice(
        "Client and server have no TLS version in common (alert protocol_version, "
        "RFC 8446 §6.2). Usually the server offers only TLS 1.0 or 1.1, which RFC 8996 "
        "(2021) deprecated and which Python refuses by default (minimum TLS 1.2).",
        "Admin: enable TLS 1.2 and 1.3 on the server. Do not lower the client's minimum "
        "version to get through.",
    ),
    "weak-dh": Advice(
        "The server chose a finite-field Diffie-Hellman key exchange with a group of 1024 "
        "bits or fewer, which precomputation breaks (Logjam, 2015), so your client refused "
        "it (OpenSSL: dh key too small).",
        "Admin: prefer ECDHE (X25519, P-256) or TLS 1.3; if DHE must stay, use the RFC 7919 "
        "groups of 2048 bits or more.",
    ),
    "handshake-failure": Advice(
        "The handshake was aborted (alert handshake_failure or similar, RFC 8446 §6.2): the "
        "two sides share no cipher suite, group or signature algorithm, or the server "
        "refused something about the client.",
        "Compare what the client offers with what the server accepts (openssl s_client, or "
        "the ClientHello decoder of notebook 06). Admin: enable modern suites and groups.",
    ),
    "unrecognized-name": Advice(
        "The server does not serve the name you sent in SNI (alert unrecognized_name, "
        "RFC 6066 §3), so it has no certificate to offer for it.",
        "Check the host name in the URL; admin: configure a certificate for that name.",
    ),
    "legacy-renegotiation": Advice(
        "The server does not support secure renegotiation (RFC 5746), which OpenSSL 3 "
        "requires; such servers are old and vulnerable (CVE-2009-3555).",
        "Admin: upgrade the server's TLS library.",
    ),
    "bad-record-mac": Advice(
        "A TLS record failed its integrity check: the AEAD tag (RFC 8446 §5.2; in TLS 1.2 "
        "the record MAC, RFC 5246 §6.2.3) did not match, so the receiver refused the record "
        "and ended the connection with a bad_record_mac alert (RFC 8446 §6.2). Bytes were "
        "changed on the way (an attacker, a broken middlebox or network card) or the two "
        "sides derived different keys. TLS never delivers data it cannot authenticate.",
        "If it happens once, retry. If it repeats, look for what sits between the two ends "
        "(a TLS-inspecting proxy, a load balancer, NIC offloading) and capture the traffic "
        "on both sides to see where the bytes change.",
    ),
    "closed": Advice(
        "The server closed the connection in the middle of the handshake without a TLS "
        "alert (an EOF where a record was due). The server may have rejected us before TLS "
        "started (an access list, a wrong SNI name) or crashed, or a middlebox cut the "
        "connection.",
        "Read the server's log; check that this port speaks TLS and that nothing in between "
        "interferes.",
    ),
    # ---- rungs 1-3: name, TCP, records
    "not-tls": Advice(
        "Something answered, but not with TLS: the first bytes back are not a TLS record "
        "header (RFC 8446 §5.1), so OpenSSL reports a 'wrong version number' (OpenSSL 3.2+: "
        "'record layer failure'). Almost always the port speaks plain HTTP, or the URL says "
        "https:// for an http:// service.",
        "Use the port that speaks TLS (443 by convention), or http:// if the service "
        "really is plain text. Admin: put TLS in front of the service.",
    ),
    "dns": Advice(
        "The host name could not be turned into an address, so no connection was even "
        "tried. The name may be misspelt or may not exist. Names under .invalid never "
        "resolve (RFC 6761 §6.4), and lab names exist only while the lab runs.",
        "Check the spelling of the host; for lab hosts, start the lab with "
        "helpers.lab.get_lab() and use lab.url(name).",
    ),
    "refused": Advice(
        "The machine answered, but nothing listens on that port: it replied to our TCP SYN "
        "with a reset (RFC 9293 §3.10.7). TLS never started.",
        "Check the port number and that the server is running.",
    ),
    "timeout": Advice(
        "Nothing came back in time. Either the TCP connection was never answered (a "
        "firewall dropping packets, a wrong address) or it opened and the server never sent "
        "its half of the handshake (overloaded, or a service that waits for the client to "
        "speak a different protocol).",
        "Check host and port, then any firewall in between; retry with a longer timeout=.",
    ),
    "reset": Advice(
        "The connection was reset (TCP RST) during the handshake: the server, or a "
        "middlebox, dropped it abruptly.",
        "Read the server's log; a firewall or a TLS-inspecting proxy may be interfering.",
    ),
    "unreachable": Advice(
        "There is no route to that address: the network is down or the address is wrong.",
        "Check the network connection and the address.",
    ),
    "blocked": Advice(
        "The course's offline guard (helpers.netguard) stopped this connection before it "
        "left the machine: lessons and tests run against the local lab.",
        "Use a lab host (helpers.lab.get_lab(), lab.url(name)); to reach real hosts turn "
        "live mode on with helpers.live.enable() in a notebook.",
    ),
    "tls-error": Advice(
        "OpenSSL reported a TLS error that is not one of the usual ones; the raw message "
        "below names it.",
        "Search for the OpenSSL reason in the raw message (in capitals, e.g. NO_SHARED_CIPHER).",
    ),
    "error": Advice(
        "The connection failed with an error that is not a TLS or network failure this "
        "module knows.",
        "Read the raw message and the exception chain below.",
    ),
}

# --------------------------------------------------------------------------- classification

# OpenSSL's verify messages (X509_verify_cert_error_string), lower-cased. Matching on the
# text rather than the number keeps working across OpenSSL versions: the numbers moved
# (X509_V_ERR_INVALID_CA was 24 in OpenSSL 1.1 and is 79 in 3.0), the texts did not.
_VERIFY_MESSAGES: dict[str, str] = {
    "certificate has expired": "expired",
    "certificate is not yet valid": "not-yet-valid",
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
    "RECORD_LAYER_FAILURE": "not-tls",
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
    ("record layer failure", "not-tls"),
    ("packet length too long", "not-tls"),
    ("unknown protocol", "not-tls"),
    ("alert protocol version", "protocol-version"),
    ("unsupported protocol", "protocol-version"),
    ("no protocols available", "protocol-version"),
    ("dh key too small", "weak-dh"),
    ("bad record mac", "bad-record-mac"),
    ("certificate required", "client-cert-required"),
    ("alert handshake failure", "handshake-failure"),
    ("doesn't match", "hostname-mismatch"),  # urllib3's own match_hostname
    ("eof occurred in violation of protocol", "closed"),
    ("unexpected eof", "closed"),
    ("name or service not known", "dns"),
    ("temporary failure in name resolution", "dns"),
    ("nodename nor servname", "dns"),
    ("failed to resolve", "dns"),
    ("getaddrinfo failed", "dns"),
    ("connection refused", "refused"),
    ("timed out", "timeout"),
    ("connection reset", "reset"),
)

_UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL}


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it wraps, outermost first.

    Libraries keep the original exception in four places, and we follow all of them:
    ``__cause__`` (``raise X from e``), ``__context__`` (raised while handling ``e``),
    ``.reason`` (urllib3's ``MaxRetryError`` and ``NewConnectionError``) and ``.args``
    (``requests.exceptions.SSLError(MaxRetryError(...))``). Each exception appears once.
    """
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 32:
        item = todo.pop(0)
        if any(item is s for s in seen):
            continue
        seen.append(item)
        reason = getattr(item, "reason", None)
        # __context__ only when Python itself would print it ("During handling of ...").
        context = None if item.__suppress_context__ else item.__context__
        for nxt in (item.__cause__, reason, *getattr(item, "args", ()), context):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return seen


def _qualname(exc: BaseException) -> str:
    """``ssl.SSLCertVerificationError``, ``requests.exceptions.SSLError``, ``TimeoutError``."""
    cls = type(exc)
    module = cls.__module__
    if module in ("builtins", "__main__"):
        return cls.__qualname__
    if module == "_ssl":
        module = "ssl"
    return f"{module}.{cls.__qualname__}"


def _verify_kind(message: str | None, code: int | None) -> str | None:
    if message:
        # OpenSSL 1.1 wrote "self signed"; Python appends ", certificate is not valid for
        # 'host'." to a hostname mismatch.
        key = message.strip().lower().replace("self signed", "self-signed")
        if key in _VERIFY_MESSAGES:
            return _VERIFY_MESSAGES[key]
        head = key.split(",", 1)[0]
        if head in _VERIFY_MESSAGES:
            return _VERIFY_MESSAGES[head]
    if code is not None and ssl.OPENSSL_VERSION_INFO >= (3, 0):
        return _VERIFY_CODES.get(code)
    return None


class _Finding(NamedTuple):
    score: int  # how specific: 3 typed and recognised, 2 recognised by text, 1 generic
    kind: str
    exc: BaseException


def _judge(exc: BaseException) -> _Finding | None:
    """What one exception, on its own, says about the failure."""
    if isinstance(exc, OfflineViolation):
        return _Finding(4, "blocked", exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        kind = _verify_kind(getattr(exc, "verify_message", None), getattr(exc, "verify_code", None))
        if kind:
            return _Finding(3, kind, exc)
        phrase = _phrase_kind(str(exc))
        return _Finding(2 if phrase else 1, phrase or "certificate-invalid", exc)
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None)
        if reason in _REASONS:
            return _Finding(3, _REASONS[reason], exc)
        if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return _Finding(3, "closed", exc)
        if reason == "CERTIFICATE_VERIFY_FAILED":
            kind = _message_verify_kind(str(exc))
            return _Finding(2 if kind else 1, kind or "certificate-invalid", exc)
        phrase = _phrase_kind(str(exc))
        return _Finding(2 if phrase else 1, phrase or "tls-error", exc)
    if isinstance(exc, socket.gaierror):
        return _Finding(3, "dns", exc)
    if isinstance(exc, ConnectionRefusedError):
        return _Finding(3, "refused", exc)
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since Python 3.10
        return _Finding(3, "timeout", exc)
    if isinstance(exc, ConnectionResetError):
        return _Finding(3, "reset", exc)
    if isinstance(exc, (ConnectionAbortedError, BrokenPipeError)):
        return _Finding(3, "closed", exc)
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS:
        return _Finding(3, "unreachable", exc)
    typed = _library_kind(exc)
    if typed:
        return _Finding(2, typed, exc)
    text = str(exc)
    kind = _message_verify_kind(text) or _phrase_kind(text)
    if kind:
        return _Finding(2, kind, exc)
    return None


def _library_kind(exc: BaseException) -> str | None:
    """requests/urllib3 classes that name the failure even when their cause is gone."""
    names = {c.__name__ for c in type(exc).__mro__}
    if names & {"NameResolutionError"}:
        return "dns"
    if names & {"ConnectTimeoutError", "ReadTimeoutError", "Timeout", "ConnectTimeout"}:
        return "timeout"
    return None


def _message_verify_kind(text: str) -> str | None:
    """``... certificate verify failed: certificate has expired (_ssl.c:1006)`` -> expired."""
    marker = "certificate verify failed:"
    low = text.lower()
    if marker not in low:
        return None
    rest = low.split(marker, 1)[1]
    rest = rest.split("(_ssl.c", 1)[0].strip().rstrip("')\"")
    return _verify_kind(rest, None)


def _phrase_kind(text: str) -> str | None:
    low = text.lower()
    for phrase, kind in _PHRASES:
        if phrase in low:
            return kind
    return None


class _Verdict(NamedTuple):
    kind: str
    cause: BaseException
    chain: list[BaseException]


def _classify(exc: BaseException) -> _Verdict:
    chain = exception_chain(exc)
    best: _Finding | None = None
    for item in chain:  # outermost first; a deeper exception wins a tie
        finding = _judge(item)
        if finding is not None and (best is None or finding.score >= best.score):
            best = finding
    if best is None:
        return _Verdict("error", chain[-1], chain)
    return _Verdict(best.kind, best.exc, chain)


# --------------------------------------------------------------------------- the result


def _cn(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if values:
        return str(values[0].value)
    return name.rfc4514_string() or "(empty name)"


def _san(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in ext.value]


def _not_after(cert: x509.Certificate) -> _dt.datetime:
    return cert.not_valid_after_utc


def _not_before(cert: x509.Certificate) -> _dt.datetime:
    return cert.not_valid_before_utc


def _is_self_issued(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _key_text(cert: x509.Certificate) -> str:
    key = cert.public_key()
    size = getattr(key, "key_size", None)
    kind = type(key).__name__.replace("_", "").replace("PublicKey", "")
    return f"{kind} {size} bits" if size else kind


def _hash_name(cert: x509.Certificate) -> str:
    try:
        algorithm = cert.signature_hash_algorithm
    except Exception:  # noqa: BLE001 - an algorithm cryptography does not know
        return cert.signature_algorithm_oid.dotted_string
    return algorithm.name.upper() if algorithm else "no separate hash (EdDSA)"


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _eku(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return []
    return [getattr(oid, "_name", None) or oid.dotted_string for oid in ext.value]


@dataclass
class Diagnosis:
    """The verdict on one TLS connection: what happened, why, and what to do.

    ``ok`` and ``kind`` are the verdict (``kind`` is ``"ok"`` on success, else a key of
    :data:`ADVICE`); ``explanation`` and ``fix`` come from that table and ``detail`` adds
    what this particular connection showed (dates, names, how many certificates were
    sent). ``message``, ``exception``, ``cause`` and ``verify_code`` are the raw facts:
    the outermost exception you would catch, the one inside it that decided the verdict,
    and OpenSSL's ``X509_V_ERR_*`` number. ``chain`` holds the certificates exactly as the
    server sent them, leaf first; ``chain_source`` says whether they came from the
    verified connection or from the non-verifying probe that reads them after a failure.
    """

    target: str
    ok: bool
    kind: str
    via: str = "ssl"
    host: str | None = None
    port: int | None = None
    message: str = ""
    exception: str | None = None
    cause: str | None = None
    exceptions: tuple[str, ...] = ()
    verify_code: int | None = None
    verify_message: str | None = None
    version: str | None = None
    cipher: str | None = None
    chain: list[x509.Certificate] = field(default_factory=list)
    chain_source: str = ""
    status: int | None = None
    elapsed: float | None = None
    notes: list[str] = field(default_factory=list)
    #: The exception object itself (``None`` when ``ok``), for ``raise d.error`` or
    #: ``Expect.matches(d.error)``.
    error: BaseException | None = field(default=None, repr=False, compare=False)

    # ---- the texts
    @property
    def explanation(self) -> str:
        """What this kind of failure means (from :data:`ADVICE`)."""
        return ADVICE.get(self.kind, ADVICE["error"]).explanation

    @property
    def fix(self) -> str:
        """What a learner or an admin should do about it (from :data:`ADVICE`)."""
        return ADVICE.get(self.kind, ADVICE["error"]).fix

    @property
    def leaf(self) -> x509.Certificate | None:
        """The server's own certificate, if we saw it."""
        return self.chain[0] if self.chain else None

    @property
    def detail(self) -> str:
        """One or two sentences about *this* connection, read from the chain."""
        return _detail(self)

    @property
    def headline(self) -> str:
        """``OK`` or ``FAILED: expired`` plus what was checked."""
        verdict = "OK" if self.ok else f"FAILED: {self.kind}"
        return f"{verdict} - {self.target} (via {self.via})"

    def __str__(self) -> str:
        lines = [self.headline]
        if not self.ok:
            lines.append(f"  raw:  {self.exception or ''}: {self.message}".rstrip())
            if self.verify_code is not None:
                lines.append(f"  verify_code: {self.verify_code} ({self.verify_message})")
        if self.version:
            lines.append(f"  TLS:  {self.version}, {self.cipher}")
        lines.append(f"  why:  {self.explanation}")
        if self.detail:
            lines.append(f"  seen: {self.detail}")
        lines.append(f"  fix:  {self.fix}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        for i, cert in enumerate(self.chain):
            lines.append(f"  [{i}] {_cn(cert.subject)}  <-  issued by {_cn(cert.issuer)}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return _diagnosis_html(self)


def _detail(d: Diagnosis) -> str:
    leaf = d.leaf
    if leaf is None:
        if d.kind == "dns" and d.host:
            return f"No address for {d.host!r}."
        return ""
    now = _dt.datetime.now(_UTC)
    if d.kind == "expired":
        late = [c for c in d.chain if _not_after(c) < now]
        if late:
            c = late[0]
            days = (now - _not_after(c)).days
            return f"{_cn(c.subject)!r} expired on {_not_after(c):%Y-%m-%d %H:%M} UTC ({days} days ago)."
    if d.kind == "not-yet-valid":
        early = [c for c in d.chain if _not_before(c) > now]
        if early:
            c = early[0]
            return f"{_cn(c.subject)!r} becomes valid on {_not_before(c):%Y-%m-%d %H:%M} UTC."
    if d.kind == "hostname-mismatch":
        names = _san(leaf)
        listed = (
            ", ".join(names) if names else f"no subjectAltName at all (CN {_cn(leaf.subject)!r})"
        )
        said = f"You asked for {d.host!r}; the certificate names {listed}."
        if not names:
            said += (
                " Python's ssl module still falls back to the Common Name; requests and "
                "browsers do not (RFC 6125 §6.4.4)."
            )
        return said
    if d.kind in ("unknown-issuer", "untrusted-root", "self-signed"):
        top = d.chain[-1]
        sent = f"The server sent {len(d.chain)} certificate{'s' if len(d.chain) != 1 else ''}"
        if d.kind == "unknown-issuer" and len(d.chain) == 1 and not _is_self_issued(leaf):
            return (
                f"{sent}: only its own, issued by {_cn(leaf.issuer)!r}. Roots do not sign "
                "server certificates directly (CA/Browser Forum Baseline Requirements "
                "§6.1.7), so a lone certificate that is not self-signed almost always means "
                "the intermediate was left out: an incomplete chain."
            )
        if d.kind == "unknown-issuer":
            return f"{sent}; nobody here knows {_cn(top.issuer)!r}, the issuer of the last one."
        return f"{sent}, ending with {_cn(top.subject)!r}, which is not in your trust store."
    if d.kind == "revoked":
        return f"Serial number {leaf.serial_number:#x} is on the CRL you loaded."
    if d.kind == "weak-key":
        sizes = [f"{_cn(c.subject)!r}: {_key_text(c)}" for c in d.chain]
        return "Keys in the chain: " + "; ".join(sizes) + "."
    if d.kind == "weak-signature":
        sigs = [f"{_cn(c.subject)!r} signed with {_hash_name(c)}" for c in d.chain]
        return "; ".join(sigs) + "."
    if d.kind == "invalid-ca":
        signers = [c for c in d.chain[1:] if not _is_ca(c)]
        if signers:
            return f"{_cn(signers[0].subject)!r} signed the certificate below it, but its basicConstraints say cA=FALSE."
    if d.kind == "wrong-purpose":
        return f"The certificate's extendedKeyUsage: {', '.join(_eku(leaf)) or 'none'}."
    if d.ok and d.version:
        return f"{d.version} with {d.cipher}; the server's certificate is for {', '.join(_san(leaf)) or _cn(leaf.subject)}."
    return ""


# --------------------------------------------------------------------------- explain()


def explain(exc: BaseException, *, target: str | None = None, via: str | None = None) -> Diagnosis:
    """Turn an exception your own code caught into a :class:`Diagnosis`.

    Works on anything :mod:`ssl`, :mod:`socket`, ``urllib3`` or ``requests`` raises::

        try:
            requests.get(url, timeout=5)
        except Exception as e:
            diagnose.explain(e)       # shows a card: kind, explanation, fix

    The exception chain is unwrapped (see :func:`exception_chain`) and the most specific
    exception in it decides the kind; ``exception`` is the class you caught, ``cause``
    the one that decided. ``target`` defaults to the URL of the request, when the
    exception carries one.
    """
    if not isinstance(exc, BaseException):
        raise UsageError(
            f"explain() needs an exception, not {type(exc).__name__}.",
            "Catch it first: try: ... except Exception as e: diagnose.explain(e)",
        )
    verdict = _classify(exc)
    url = target or _url_of(exc)
    host, port = _host_port_of(url)
    cause = verdict.cause
    code = getattr(cause, "verify_code", None)
    return Diagnosis(
        target=url or "?",
        ok=False,
        kind=verdict.kind,
        via=via or _via_of(verdict.chain),
        host=host,
        port=port,
        message=_message_of(cause),
        exception=_qualname(exc),
        cause=_qualname(cause),
        exceptions=tuple(_qualname(e) for e in verdict.chain),
        verify_code=code if isinstance(code, int) else None,
        verify_message=getattr(cause, "verify_message", None),
        error=exc,
    )


def _message_of(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, OSError) and exc.strerror and not text:
        return exc.strerror
    return text or type(exc).__name__


def _url_of(exc: BaseException) -> str | None:
    for item in exception_chain(exc):
        request = getattr(item, "request", None)
        url = getattr(request, "url", None)
        if isinstance(url, str):
            return url
    return None


def _host_port_of(url: str | None) -> tuple[str | None, int | None]:
    if not url:
        return None, None
    try:
        parts = urlsplit(url if "://" in url else "//" + url)
        return parts.hostname, parts.port or (443 if parts.scheme in ("https", "") else 80)
    except ValueError:
        return None, None


def _via_of(chain: Sequence[BaseException]) -> str:
    modules = {type(e).__module__.split(".")[0] for e in chain}
    if "requests" in modules:
        return "requests"
    if "urllib3" in modules:
        return "urllib3"
    return "ssl"


# --------------------------------------------------------------------------- check()


@dataclass(frozen=True)
class _Target:
    text: str
    host: str
    port: int
    path: str
    url: str


def _parse_target(target: str) -> _Target:
    if not isinstance(target, str) or not target.strip():
        raise UsageError(
            f"check() needs a URL or host[:port], not {target!r}.",
            "For example check('https://valid.lab.localhost:8443/') or check('example.com:443').",
        )
    text = target.strip()
    parts = urlsplit(text if "://" in text else "//" + text)
    if parts.scheme not in ("", "https"):
        raise UsageError(
            f"{text!r} is not an https:// URL, so there is no TLS to check.",
            "Use https://... or host:port.",
        )
    try:
        port = parts.port or 443
    except ValueError as exc:
        raise UsageError(f"{text!r} has an invalid port ({exc}).", "Ports are 1-65535.") from exc
    host = parts.hostname
    if not host:
        raise UsageError(f"{text!r} has no host name.", "Write it as https://host:port/.")
    shown = f"[{host}]" if ":" in host else host
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return _Target(text, host, port, path, f"https://{shown}:{port}{path}")


def _is_never_resolvable(host: str) -> str | None:
    """Why ``host`` must not be looked up at all, or ``None`` if it may be.

    RFC 6761 §6.4: names under ``.invalid`` never resolve, and resolvers should answer
    "no such name" without asking anyone. Lab names (``*.lab.localhost``) are answered
    only by :mod:`helpers.names` while a lab runs; outside that they must not reach DNS.
    """
    name = host.rstrip(".").lower()
    if name == "invalid" or name.endswith(".invalid"):
        return (
            f"{host!r} is under .invalid, which never resolves (RFC 6761 §6.4); no lookup was made."
        )
    from . import names

    if names.is_lab_name(name) and names.lookup(name) is None:
        return (
            f"{host!r} is a lab name, but no running lab has it in its hosts table "
            "(lab names are never sent to DNS)."
        )
    return None


def _running_lab() -> Lab | None:
    """The lab :func:`helpers.lab.get_lab` started in this process, if any (never starts one)."""
    from .lab import running_lab

    return running_lab()


def _lab_for(host: str, port: int, lab: Lab | None) -> Lab | None:
    """The lab that serves ``host:port``, so its CA can be the default trust store."""
    from . import names

    candidate = lab if lab is not None else _running_lab()
    if candidate is None:
        return None
    if names.is_lab_name(host):
        return candidate
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.is_loopback and port in _lab_ports(candidate):
        return candidate
    return None


def _lab_ports(lab: Lab) -> set[int]:
    return {lab.port(name) for name in lab.scenarios} if lab.running else set()


_VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


def _tls_version(value: ssl.TLSVersion | str | None, what: str) -> ssl.TLSVersion | None:
    if value is None or isinstance(value, ssl.TLSVersion):
        return value
    key = str(value).replace("TLSv", "").replace("_", ".").replace("TLS", "").strip()
    key = {"1": "1.0"}.get(key, key)
    if key in _VERSIONS:
        return _VERSIONS[key]
    raise UsageError(
        f"{what}={value!r} is not a TLS version.",
        "Use ssl.TLSVersion.TLSv1_2 or a string such as 'TLSv1.2' or '1.3'.",
    )


def _path(value: str | os.PathLike[str] | None, what: str) -> str | None:
    if value is None:
        return None
    path = Path(value)
    if not path.is_file():
        raise UsageError(
            f"{what} {str(path)!r} is not a file.", f"Pass the path of an existing {what}."
        )
    return str(path)


def _client_cert(value: Any) -> tuple[str, str | None] | None:
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return (_path(value, "client certificate") or "", None)
    if isinstance(value, Sequence) and len(value) == 2:
        return (_path(value[0], "client certificate") or "", _path(value[1], "client key"))
    raise UsageError(
        f"client_cert={value!r} is neither a path nor a (cert, key) pair.",
        "Pass client_cert=(cert_path, key_path), e.g. client_cert=lab.client_cert.",
    )


@dataclass(frozen=True)
class _Options:
    cafile: str | None
    crl: str | None
    client_cert: tuple[str, str | None] | None
    timeout: float
    min_version: ssl.TLSVersion | None
    max_version: ssl.TLSVersion | None


def _context(opts: _Options, *, for_requests: bool = False) -> ssl.SSLContext:
    """The verifying client context every check starts from."""
    # create_default_context() = CERT_REQUIRED + check_hostname + TLS 1.2 minimum: the
    # chain must lead to a trusted root and name this host, which is what stops a
    # man-in-the-middle from presenting his own certificate.
    try:
        ctx = ssl.create_default_context(cafile=opts.cafile)
        if opts.crl:
            # The CRL must be signed by the leaf's issuer; CHECK_LEAF consults it for the
            # server's own certificate (RFC 5280 §6.3). Without it a revoked certificate
            # passes: Python never downloads CRLs by itself.
            ctx.load_verify_locations(cafile=opts.crl)
            ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        if opts.client_cert:
            ctx.load_cert_chain(*opts.client_cert)
    except (ssl.SSLError, ValueError) as exc:
        raise UsageError(
            f"Could not load the certificates for this check ({exc}).",
            "cafile=, crl= and client_cert= must be PEM files (a CA bundle, a CRL, a cert and its key).",
        ) from exc
    if opts.min_version is not None:
        ctx.minimum_version = opts.min_version
    if opts.max_version is not None:
        ctx.maximum_version = opts.max_version
    if for_requests:
        # urllib3 2 refuses the Common Name fallback (RFC 6125 §6.4.4): names must be in
        # subjectAltName. Keep that policy when we hand requests a context of our own.
        ctx.hostname_checks_common_name = False
    return ctx


def _der_chain(sock: ssl.SSLSocket) -> list[bytes]:
    """The certificates the peer sent, as DER, leaf first."""
    getter = getattr(sock, "get_unverified_chain", None)  # public since Python 3.13
    if getter is None:
        # Python 3.10-3.12 have the same method, undocumented, on the private _sslobj.
        getter = getattr(getattr(sock, "_sslobj", None), "get_unverified_chain", None)
    if getter is not None:
        try:
            items = getter() or []
        except (ValueError, ssl.SSLError):
            items = []
        # 3.13 returns DER bytes; the private 3.10-3.12 method returns objects whose
        # public_bytes() gives PEM text.
        out = [
            i if isinstance(i, bytes) else ssl.PEM_cert_to_DER_cert(i.public_bytes()) for i in items
        ]
        if out:
            return out
    der = sock.getpeercert(binary_form=True)
    return [der] if der else []


def _parse_chain(ders: Iterable[bytes]) -> list[x509.Certificate]:
    out = []
    for der in ders:
        try:
            out.append(x509.load_der_x509_certificate(der))
        except ValueError:
            continue
    return out


def _probe_chain(t: _Target, opts: _Options) -> list[x509.Certificate]:
    """Read the chain a server sends, *without* verifying it, after a failed check.

    This is the one non-verifying connection in the course helpers, and it exists only
    so that a learner can look at the certificates that were just rejected. It does the
    handshake, copies the certificates and closes: it never sends application data, it
    never presents the client certificate (that would identify you to a server nobody
    vouched for), and nothing it returns is trusted. Python 3.13 can read the chain of
    the failed connection itself (``SSLSocket.get_unverified_chain()``); on older Pythons
    this second connection is the way to see it.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # read-only probe: see the docstring
    if opts.min_version is not None:
        ctx.minimum_version = opts.min_version
    if opts.max_version is not None:
        ctx.maximum_version = opts.max_version
    try:
        with socket.create_connection((t.host, t.port), timeout=opts.timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=t.host) as sock:
                return _parse_chain(_der_chain(sock))
    except (OSError, ValueError):
        return []


def _http_status(sock: ssl.SSLSocket, t: _Target) -> int | None:
    """Send one HTTP/1.1 request and read the status line (RFC 9112 §4)."""
    host = f"[{t.host}]" if ":" in t.host else t.host
    request = (
        f"GET {t.path} HTTP/1.1\r\nHost: {host}:{t.port}\r\n"
        "User-Agent: helpers.diagnose\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(request.encode("ascii", "replace"))
    data = b""
    while b"\r\n" not in data and len(data) < 8192:
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split()
    if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None


def _failed(
    exc: BaseException,
    t: _Target,
    via: str,
    started: float,
    *,
    chain: list[x509.Certificate] | None = None,
    source: str = "",
    version: str | None = None,
    cipher: str | None = None,
) -> Diagnosis:
    d = explain(exc, target=t.text, via=via)
    d.host, d.port = t.host, t.port
    d.chain = chain or []
    d.chain_source = source if d.chain else ""
    d.version, d.cipher = version, cipher
    d.elapsed = time.monotonic() - started
    return d


def _no_lookup_failure(t: _Target, via: str, why: str) -> Diagnosis:
    # A real gaierror, made here instead of by the resolver: this name must not be sent.
    exc = socket.gaierror(socket.EAI_NONAME, why)
    d = _failed(exc, t, via, time.monotonic())
    d.elapsed = 0.0
    return d


def _check_ssl(t: _Target, opts: _Options, probe: bool) -> Diagnosis:
    started = time.monotonic()
    ctx = _context(opts)
    try:
        raw = socket.create_connection((t.host, t.port), timeout=opts.timeout)
    except (OSError, OfflineViolation) as exc:
        return _failed(exc, t, "ssl", started)
    with raw:
        # server_hostname does two jobs: it is sent as SNI (for names only, RFC 6066 §3)
        # and it is what check_hostname matches the certificate against.
        sock = ctx.wrap_socket(raw, server_hostname=t.host, do_handshake_on_connect=False)
        with sock:
            try:
                sock.do_handshake()
            except (OSError, ValueError) as exc:
                chain: list[x509.Certificate] = []
                source = ""
                if isinstance(exc, ssl.SSLCertVerificationError):
                    if hasattr(sock, "get_unverified_chain"):  # Python 3.13+
                        chain, source = _parse_chain(_der_chain(sock)), "the failed connection"
                    elif probe:
                        chain, source = _probe_chain(t, opts), "a second, non-verifying probe"
                return _failed(exc, t, "ssl", started, chain=chain, source=source)
            version, cipher = sock.version(), (sock.cipher() or ("",))[0]
            chain = _parse_chain(_der_chain(sock))
            try:
                status = _http_status(sock, t)
            except ssl.SSLError as exc:
                # TLS 1.3: a refused client certificate arrives as an alert after the
                # client's handshake has finished (RFC 8446 §4.4.2.4).
                return _failed(
                    exc,
                    t,
                    "ssl",
                    started,
                    chain=chain,
                    source="the verified connection",
                    version=version,
                    cipher=cipher,
                )
            except OSError:
                status = None  # TLS worked; the server just did not answer HTTP
    return Diagnosis(
        target=t.text,
        ok=True,
        kind="ok",
        via="ssl",
        host=t.host,
        port=t.port,
        version=version,
        cipher=cipher,
        chain=chain,
        chain_source="the verified connection",
        status=status,
        elapsed=time.monotonic() - started,
    )


def _check_requests(t: _Target, opts: _Options, probe: bool) -> Diagnosis:
    import requests
    from requests.adapters import HTTPAdapter

    started = time.monotonic()
    session = requests.Session()
    session.trust_env = False  # no proxies or REQUESTS_CA_BUNDLE from the environment
    if opts.crl or opts.min_version or opts.max_version:
        ctx = _context(opts, for_requests=True)

        class _ContextAdapter(HTTPAdapter):
            """requests has no ssl_context= argument; an adapter hands ours to urllib3."""

            def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
                kwargs["ssl_context"] = ctx
                super().init_poolmanager(*args, **kwargs)

        session.mount("https://", _ContextAdapter())
    verify: str | bool = opts.cafile or True  # True: requests' own bundle (certifi)
    cert: Any = None
    if opts.client_cert:
        cert = opts.client_cert if opts.client_cert[1] else opts.client_cert[0]
    try:
        with session:
            response = session.get(
                t.url,
                timeout=(opts.timeout, opts.timeout),
                verify=verify,
                cert=cert,
                allow_redirects=False,
                stream=True,
            )
            with response:
                sock = getattr(getattr(response.raw, "connection", None), "sock", None)
                version = cipher = None
                chain: list[x509.Certificate] = []
                if isinstance(sock, ssl.SSLSocket):
                    version, cipher = sock.version(), (sock.cipher() or ("",))[0]
                    chain = _parse_chain(_der_chain(sock))
                status = response.status_code
    except Exception as exc:  # noqa: BLE001 - every failure becomes a Diagnosis
        verdict_chain = exception_chain(exc)
        if any(isinstance(e, OfflineViolation) for e in verdict_chain):
            return _failed(exc, t, "requests", started)
        if not isinstance(exc, requests.RequestException) and not any(
            isinstance(e, (OSError, ssl.SSLError)) for e in verdict_chain
        ):
            raise  # a bug, not a network failure: let it show
        chain, source = [], ""
        if probe and any(isinstance(e, ssl.SSLCertVerificationError) for e in verdict_chain):
            chain, source = _probe_chain(t, opts), "a second, non-verifying probe"
        return _failed(exc, t, "requests", started, chain=chain, source=source)
    return Diagnosis(
        target=t.text,
        ok=True,
        kind="ok",
        via="requests",
        host=t.host,
        port=t.port,
        version=version,
        cipher=cipher,
        chain=chain,
        chain_source="the verified connection" if chain else "",
        status=status,
        elapsed=time.monotonic() - started,
    )


def check(
    target: str,
    *,
    cafile: str | os.PathLike[str] | None = None,
    crl: str | os.PathLike[str] | None = None,
    client_cert: tuple[str | os.PathLike[str], str | os.PathLike[str]]
    | str
    | os.PathLike[str]
    | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    min_version: ssl.TLSVersion | str | None = None,
    max_version: ssl.TLSVersion | str | None = None,
    via: str = "ssl",
    lab: Lab | None = None,
    probe: bool = True,
) -> Diagnosis:
    """Connect to ``target`` over TLS and say what happened.

    ``target`` is a URL (``https://expired.lab.localhost:8443/``), ``host:port``
    (``example.com:443``; the port defaults to 443) or the name of a lab scenario
    (``"expired"``, which starts the lab if needed).

    ``via="ssl"`` uses :func:`ssl.create_default_context` and a raw socket, then sends
    one HTTP request to see the status line (and any alert that only arrives after the
    handshake). ``via="requests"`` makes the same request with ``requests`` and reports
    what it raised (ignoring proxy and CA-bundle environment variables, so the answer
    does not depend on your shell). Both verify: the certificate chain must lead to a trusted root
    (``cafile``: a PEM bundle; default: the system store for ssl, certifi for requests,
    and the lab's CA for lab hosts) and must name the host.

    ``crl`` loads a certificate revocation list and turns on ``VERIFY_CRL_CHECK_LEAF``;
    ``client_cert`` is ``(cert, key)`` for servers that want one (mutual TLS);
    ``min_version``/``max_version`` pin the protocol (``"TLSv1.2"``). ``timeout`` is in
    seconds, for each step. ``probe=False`` skips the second connection that reads the
    chain after a verification failure.

    Never raises for network or TLS failures: the result has ``ok=False``, a ``kind``,
    the raw ``message`` and the explanation. Show it in a notebook, or ``print()`` it.
    """
    if via not in ("ssl", "requests"):
        raise UsageError(
            f"via={via!r} is not a client this module knows.", "Use via='ssl' or via='requests'."
        )
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise UsageError(
            f"timeout={timeout!r} must be a positive number of seconds.", "Try timeout=5."
        )
    target_text = target
    if isinstance(target, str) and _looks_like_scenario(target):
        from .lab import get_lab

        lab = lab or get_lab()
        target_text = lab.url(target)
    t = _parse_target(target_text)
    if target_text != target:
        t = _Target(target, t.host, t.port, t.path, t.url)
    opts = _Options(
        cafile=_path(cafile, "CA bundle"),
        crl=_path(crl, "CRL"),
        client_cert=_client_cert(client_cert),
        timeout=float(timeout),
        min_version=_tls_version(min_version, "min_version"),
        max_version=_tls_version(max_version, "max_version"),
    )
    _context(opts)  # a bad cafile/crl/client_cert is the caller's mistake: UsageError now
    why = _is_never_resolvable(t.host)
    if why:
        return _no_lookup_failure(t, via, why)
    notes: list[str] = []
    if opts.cafile is None:
        serving = _lab_for(t.host, t.port, lab)
        if serving is not None:
            opts = dataclasses.replace(opts, cafile=str(serving.ca_bundle))
            notes.append("Trusted the lab's CA (lab.ca_bundle), as for every lab host.")
    d = _check_ssl(t, opts, probe) if via == "ssl" else _check_requests(t, opts, probe)
    d.notes = notes + d.notes
    if d.ok and not opts.crl:
        d.notes.append("Revocation was not checked (pass crl= to check a CRL).")
    return d


def _looks_like_scenario(target: str) -> bool:
    if not target or any(c in target for c in ".:/[]"):
        return False
    try:
        from .lab import SCENARIOS
    except ImportError:
        return False
    return target in SCENARIOS


# --------------------------------------------------------------------------- atlas()


@dataclass(frozen=True)
class AtlasRow:
    """One lab scenario seen through one client."""

    scenario: str
    client: str
    ok: bool
    kind: str
    exception: str
    cause: str
    verify_code: int | None
    message: str
    expected: str
    matched: bool
    version: str | None = None


@dataclass
class Atlas:
    """Every lab scenario through every client: what was raised, and was it expected?"""

    rows: list[AtlasRow]
    elapsed: float
    strict: bool = False

    def __iter__(self) -> Iterator[AtlasRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def matched(self) -> bool:
        """True when every row matched its scenario's expectation."""
        return all(r.matched for r in self.rows)

    @property
    def mismatches(self) -> list[AtlasRow]:
        return [r for r in self.rows if not r.matched]

    def row(self, scenario: str, client: str) -> AtlasRow:
        for r in self.rows:
            if r.scenario == scenario and r.client == client:
                return r
        raise KeyError((scenario, client))

    def __str__(self) -> str:
        lines = [f"{'scenario':22} {'client':9} {'kind':20} {'code':>4}  exception"]
        for r in self.rows:
            code = "" if r.verify_code is None else str(r.verify_code)
            mark = "" if r.matched else "   <-- expected " + r.expected
            lines.append(
                f"{r.scenario:22} {r.client:9} {r.kind:20} {code:>4}  {r.cause or '-'}{mark}"
            )
        lines.append(f"{len(self.rows)} rows in {self.elapsed:.2f} s; all matched: {self.matched}")
        return "\n".join(lines)

    def table(self) -> Table:
        """The rows as a :class:`helpers.cards.Table`."""
        return _atlas_table(self)

    def _repr_html_(self) -> str:
        return _atlas_html(self)


def _expected(scenario: Scenario, client: str, strict: bool) -> Expect:
    """The verdict a scenario predicts for ``client`` ("ssl" or "requests").

    The lab records Python's default context as ``expect``, stricter settings as
    ``strict`` and clients that decide differently in ``tools`` (requests refuses the
    Common Name fallback that the ssl module still allows).
    """
    if client in scenario.tools:
        return scenario.tools[client]
    base = scenario.expect
    if strict and scenario.strict is not None:
        base = scenario.strict
    return base


def atlas(
    lab: Lab | None = None,
    *,
    clients: Sequence[str] = ("ssl", "requests"),
    strict: bool = False,
    timeout: float = 2.0,
    workers: int = 8,
) -> Atlas:
    """Run every lab scenario through each client and tabulate what they raised.

    Each row holds the exception class (outermost and the decisive one inside it), the
    verify code, the raw message and the kind, and whether the result matched the
    scenario's expectation (:class:`helpers.lab.Expect`). ``strict=True`` also loads the
    lab's CRL where a scenario asks for revocation checking (``check_flags``).
    The connections run in a small thread pool against the one running lab.
    """
    from .lab import get_lab

    lab = lab or get_lab()
    started = time.monotonic()
    jobs = [(name, client) for name in lab.scenarios for client in clients]

    def run(job: tuple[str, str]) -> AtlasRow:
        name, client = job
        scenario = lab.scenarios[name]
        crl = None
        if strict and "VERIFY_CRL_CHECK_LEAF" in getattr(scenario, "check_flags", ()):
            crl = lab.crl
        d = check(
            lab.url(name),
            cafile=lab.ca_bundle,
            crl=crl,
            timeout=timeout,
            via=client,
            lab=lab,
            probe=False,
        )
        expect = _expected(scenario, client, strict)
        return AtlasRow(
            scenario=name,
            client=client,
            ok=d.ok,
            kind=d.kind,
            exception=d.exception or "",
            cause=d.cause or "",
            verify_code=d.verify_code,
            message=d.message,
            expected=expect.describe(),
            matched=bool(expect.matches(d.error)),
            version=d.version,
        )

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        rows = list(pool.map(run, jobs))
    return Atlas(rows=rows, elapsed=time.monotonic() - started, strict=strict)


# --------------------------------------------------------------------------- HTML

# Every box sets its own text *and* background colour, so the card reads the same in
# light and dark JupyterLab themes (the rule helpers.cards follows too).
_GREEN, _RED, _FG, _MUTED, _BG, _BORDER = (
    "#1a7f37",
    "#cf222e",
    "#1f2328",
    "#57606a",
    "#f6f8fa",
    "#d0d7de",
)
_FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:13px;"


def _short_class(name: str) -> str:
    """``requests.exceptions.SSLError`` -> ``requests.SSLError``: short, still unambiguous."""
    if "." not in name:
        return name
    package, _, cls = name.rpartition(".")
    return f"{package.split('.')[0]}.{cls}"


def _diagnosis_html(d: Diagnosis) -> str:
    e = html.escape
    colour = _GREEN if d.ok else _RED
    verdict = "&#10004; OK" if d.ok else f"&#10008; {e(d.kind)}"
    rows: list[tuple[str, str]] = []
    if not d.ok:
        rows.append(("raw message", f"<code>{e(d.message)}</code>"))
        caught = e(d.exception or "")
        if d.cause and d.cause != d.exception:
            caught += f" &larr; inside it: {e(d.cause)}"
        rows.append(("exception", caught))
        if d.verify_code is not None:
            rows.append(("verify_code", f"{d.verify_code} ({e(d.verify_message or '')})"))
    if d.version:
        rows.append(("negotiated", f"{e(d.version)}, {e(d.cipher or '')}"))
    if d.status is not None:
        rows.append(("HTTP status", str(d.status)))
    if d.elapsed is not None:
        rows.append(("time", f"{d.elapsed * 1000:.0f} ms"))
    facts = "".join(
        f"<tr><th style='text-align:left;padding-right:1em;vertical-align:top;color:{_MUTED};"
        f"background:{_BG}'>{k}</th><td style='text-align:left;color:{_FG};background:{_BG}'>"
        f"{v}</td></tr>"
        for k, v in rows
    )
    para = f"margin:4px 0;color:{_FG}"
    detail = f"<p style='{para}'>{e(d.detail)}</p>" if d.detail else ""
    notes = "".join(f"<p style='margin:4px 0;color:{_MUTED}'>{e(n)}</p>" for n in d.notes)
    chain = ""
    if d.chain:
        source = f" (read by {e(d.chain_source)})" if d.chain_source else ""
        chain = (
            f"<div style='margin-top:6px;color:{_FG}'><b>Certificates the server sent</b>"
            f"{source}, leaf first:</div>{ChainCard(d.chain)._repr_html_()}"
        )
    return (
        f"<div class='tls-diagnosis' style='{_FONT}border:1px solid {_BORDER};border-radius:6px;"
        f"max-width:680px;margin:4px 0;color:{_FG};background:{_BG}'>"
        f"<div style='background:{colour};color:#fff;padding:6px 10px;border-radius:5px 5px 0 0'>"
        f"<b>{verdict}</b> &middot; <code style='color:#fff;background:{colour}'>{e(d.target)}</code>"
        f" via {e(d.via)}</div>"
        f"<div style='padding:6px 10px;background:{_BG}'>"
        f"<p style='{para}'>{e(d.explanation)}</p>{detail}"
        f"<p style='{para}'><b>What to do:</b> {e(d.fix)}</p>"
        f"<table style='margin:4px 0;background:{_BG}'>{facts}</table>{notes}{chain}</div></div>"
    )


def _compact(message: str, limit: int = 90) -> str:
    """The informative part of an OpenSSL message, for a table cell."""
    text = re.sub(r"\s*\(_ssl\.c:\d+\)", "", message)
    text = text.replace("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: ", "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _atlas_table(a: Atlas) -> Table:
    rows = []
    for r in a.rows:
        caught = _short_class(r.exception)
        if r.cause and r.cause != r.exception:
            caught += " <- " + _short_class(r.cause)
        message = _compact(r.message)
        rows.append(
            {
                "scenario": r.scenario,
                "client": r.client,
                "kind": r.kind,
                "exception": caught or "-",
                "verify_code": r.verify_code,
                "message": message,
                "expected": r.expected,
                "matched": r.matched,
            }
        )
    summary = f"Exception atlas: {len(a.rows)} connections in {a.elapsed:.2f} s; " + (
        "every one matched its expectation." if a.matched else f"{len(a.mismatches)} did not match."
    )
    return Table(rows, title=summary)


def _atlas_html(a: Atlas) -> str:
    return _atlas_table(a)._repr_html_()
