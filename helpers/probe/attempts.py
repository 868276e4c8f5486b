"""One handshake attempt: the versions a scan tries and the probe's context (introduced in notebook 08).

A scanner learns everything by making *offers*. Each attempt opens a fresh TCP
connection and runs one handshake with a client context that offers exactly one thing:
one version (``minimum_version = maximum_version``) and, for TLS 1.2 and older, a
chosen list of cipher suites. The server either completes the handshake, and the
attempt records the version, suite and certificate it picked, or refuses (an alert such
as ``protocol_version`` or ``handshake_failure``, RFC 8446 §6.2), and the attempt
records the short reason. Nothing is sent after the handshake.

One refusal is not a "no": a server that requires a client certificate (mutual TLS)
agrees on version and suite in its ServerHello, asks with a CertificateRequest, and only
then ends a TLS 1.2 handshake with an alert, because the probe has no certificate to
show. The attempt keeps the server's bytes (the handshake runs through memory BIOs over
the socket) and reads them: that version and suite count as accepted, with a note
"client certificate required" (``_agreed_before_refusal``). ``openssl s_client
-tls1_2`` shows the same: protocol and cipher agreed, "Client Certificate Types", then
the server's ``handshake_failure`` alert.

The probe context (:func:`_probe_context`) switches off verification and lowers
OpenSSL's security level to 0: a scanner must *see* a 1024-bit DH group or a TLS 1.0
server to report it, and at the default level 2 our own client would refuse first.
Those connections send no application data and nothing they return is trusted; whether
the certificate is trusted comes from the separate verifying handshake in ``trust``.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import warnings
from dataclasses import dataclass

__all__ = ["VERSIONS", "DEFAULT_TIMEOUT"]

#: The versions a scan tries, oldest first, as ``SSLSocket.version()`` names them.
VERSIONS: tuple[str, ...] = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_TLS_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_PRETTY = {"TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2", "TLSv1.3": "TLS 1.3"}

DEFAULT_TIMEOUT = 2.0  # seconds per handshake: loopback answers in milliseconds


def _probe_context(version: str, ciphers: str = "ALL:COMPLEMENTOFALL") -> ssl.SSLContext:
    """A client context that accepts anything, to *see* what a server offers.

    Never use such a context for real traffic: it checks no certificate (anyone could
    answer) and allows everything OpenSSL's security levels forbid.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # a probe looks, it never trusts (see the module docstring)
    # @SECLEVEL=0: let OpenSSL offer TLS 1.0/1.1 and accept 1024-bit DH and SHA-1, so the
    # probe can report them. At the default level 2 the client would refuse first.
    ctx.set_ciphers(f"{ciphers}:@SECLEVEL=0")
    with warnings.catch_warnings():
        # Python warns that TLS 1.0/1.1 are deprecated (RFC 8996): that is what we test.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = _TLS_VERSIONS[version]
        ctx.maximum_version = _TLS_VERSIONS[version]
    return ctx


@dataclass
class _Hello:
    version: str | None = None
    cipher: tuple[str, str, int] | None = None
    cert: bytes | None = None
    error: str | None = None
    group: str | None = None  # the (EC)DH group, from SSLSocket.group() (Python >= 3.15)
    # Set when the server agreed on version and suite, asked for a client certificate
    # (CertificateRequest) and refused the handshake without one: the refusal's reason.
    client_certificate: str | None = None


def _negotiated_group(tls: ssl.SSLSocket) -> str | None:
    """The key-exchange group of a handshake, if this Python can say (3.15 and newer).

    ``SSLSocket.group()`` arrived in Python 3.15 (October 2026). Before that, Python does
    not say which group was used, and the scan reads it off the wire (``key_exchange``).
    """
    method = getattr(tls, "group", None)
    if method is None:
        return None
    try:
        return method()
    except (ssl.SSLError, ValueError):  # pragma: no cover - defensive: no group to report
        return None


def _short_error(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(exc, ssl.SSLError) and reason:
        return str(reason)
    text = str(exc) or type(exc).__name__
    return text[:120]


# RFC 5246 §7.4.4: a TLS 1.2 server that wants the client's certificate sends a
# CertificateRequest (handshake type 13) in its first flight, in clear, after ServerHello
# and before ServerHelloDone. A client without one answers with an empty Certificate and
# the server, if it insists, ends the handshake with a fatal alert (OpenSSL:
# handshake_failure, RFC 5246 §7.4.6; TLS 1.3 has certificate_required, RFC 8446 §4.4.2.4).
# By then the ServerHello has agreed on version and suite: for a scanner that version and
# that suite are *accepted*; what failed is the client's authentication, not the offer.
_CERTIFICATE_REQUEST = 13


def _agreed_before_refusal(received: bytes, exc: OSError) -> _Hello | None:
    """Decode the server's plaintext flight of a failed handshake (TLS 1.2 and older).

    If it has a ServerHello and a CertificateRequest, the failure was the missing client
    certificate: report what the ServerHello agreed on. Otherwise None.
    """
    from ..errors import ParseError
    from ..handshake import Certificate, HandshakeParser, RecordParser, ServerHello, decode_messages

    try:
        parser, messages = HandshakeParser(), []
        for record in RecordParser().feed(received):
            if record.content_type == 20:  # ChangeCipherSpec: what follows is encrypted
                break
            if record.content_type == 22:
                messages += parser.feed(record.payload)
        decoded = decode_messages(messages)
    except ParseError:
        return None
    hello = next(
        (d for d in decoded if isinstance(d, ServerHello) and not d.is_hello_retry_request), None
    )
    if hello is None or not any(m.msg_type == _CERTIFICATE_REQUEST for m in messages):
        return None
    chain = next((d for d in decoded if isinstance(d, Certificate)), None)
    return _Hello(
        hello.version,
        (hello.cipher_suite_name, hello.version, 0),  # IANA name; strength not reported
        chain.certificates[0] if chain is not None and chain.certificates else None,
        client_certificate=_short_error(exc),
    )


def _handshake(
    address: tuple[str, int], server_hostname: str | None, ctx: ssl.SSLContext, timeout: float
) -> _Hello:
    """One handshake over a real socket, through memory BIOs so the server's bytes are kept.

    Keeping them is what lets a refused handshake still say what was agreed before the
    refusal (:func:`_agreed_before_refusal`).
    """
    received = bytearray()
    try:
        with socket.create_connection(address, timeout=timeout) as raw:
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
            try:
                while True:
                    try:
                        tls.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        raw.sendall(outgoing.read())
                        data = raw.recv(65536)
                        if not data:
                            incoming.write_eof()
                        received += data
                        incoming.write(data)
                raw.sendall(outgoing.read())
            except OSError as exc:  # ssl.SSLError is an OSError, and so is a reset after the alert
                with contextlib.suppress(OSError):
                    raw.sendall(outgoing.read())  # our own alert, if OpenSSL wrote one
                return _agreed_before_refusal(bytes(received), exc) or _Hello(
                    error=_short_error(exc)
                )
            return _Hello(
                tls.version(),
                tls.cipher(),
                tls.getpeercert(binary_form=True),
                group=_negotiated_group(tls),
            )
    except OSError as exc:
        return _Hello(error=_short_error(exc))
