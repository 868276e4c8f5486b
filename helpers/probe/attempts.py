"""One handshake attempt: the versions a scan tries and the probe's context (introduced in notebook 08).

A scanner learns everything by making *offers*. Each attempt opens a fresh TCP
connection and runs one handshake with a client context that offers exactly one thing:
one version (``minimum_version = maximum_version``) and, for TLS 1.2 and older, a
chosen list of cipher suites. The server either completes the handshake, and the
attempt records the version, suite and certificate it picked, or refuses (an alert such
as ``protocol_version`` or ``handshake_failure``, RFC 8446 §6.2), and the attempt
records the short reason. Nothing is sent after the handshake.

The probe context (:func:`_probe_context`) switches off verification and lowers
OpenSSL's security level to 0: a scanner must *see* a 1024-bit DH group or a TLS 1.0
server to report it, and at the default level 2 our own client would refuse first.
Those connections send no application data and nothing they return is trusted; whether
the certificate is trusted comes from the separate verifying handshake in ``trust``.
"""

from __future__ import annotations

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


def _handshake(
    address: tuple[str, int], server_hostname: str | None, ctx: ssl.SSLContext, timeout: float
) -> _Hello:
    try:
        with (
            socket.create_connection(address, timeout=timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
        ):
            return _Hello(
                tls.version(),
                tls.cipher(),
                tls.getpeercert(binary_form=True),
                group=_negotiated_group(tls),
            )
    except (ssl.SSLError, OSError) as exc:
        return _Hello(error=_short_error(exc))
