"""The trust check: one verifying handshake, chain and host name (introduced in notebook 08).

Every other handshake of a scan uses a probe context that trusts nothing and checks
nothing (see ``attempts``). Whether the certificate is trusted comes from this one last
handshake, made with a *verifying* context: the chain must lead to a trusted root (the
system store, or ``cafile``) and the certificate must name the host. A failure is
classified with :func:`helpers.diagnose.explain`, so a :class:`Trust` carries the same
short kind (``"self-signed"``, ``"hostname-mismatch"``...) notebook 02 taught, and the
grade turns those kinds into T and M.

The verifying context keeps those two checks on and nothing else: the protocol floor
and the security level are lowered, because old versions, weak keys and SHA-1 are
graded separately (a TLS 1.0 server can still have a trusted certificate). Over the
verified connection the check reads the HSTS header (see ``hsts``).
"""

from __future__ import annotations

import socket
import ssl
import warnings
from dataclasses import dataclass

from .attempts import _short_error
from .hsts import HSTS, _read_hsts, parse_hsts

__all__ = ["Trust"]


@dataclass(frozen=True)
class Trust:
    """The verdict of a verifying handshake: chain to a trusted root, and host name.

    ``kind`` is a :data:`helpers.diagnose.ADVICE` key (``"ok"``, ``"self-signed"``,
    ``"hostname-mismatch"``...); ``verify_code`` is OpenSSL's ``X509_V_ERR_*`` number
    when certificate verification failed, else None.
    """

    ok: bool
    kind: str
    verify_code: int | None = None
    message: str = ""


def _verifying_context(cafile: str | None) -> ssl.SSLContext:
    """A client that checks the chain and the name, and nothing the grade checks itself.

    Chain to a trusted root and host name stay on (that is the question). The protocol
    floor and the security level are lowered, because old versions, weak keys and SHA-1
    are graded separately: a TLS 1.0 server can still have a trusted certificate.
    """
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    return ctx


def _trust(
    address: tuple[str, int],
    sni: str | None,
    sni_sent: str | None,
    cafile: str | None,
    timeout: float,
    http: bool,
) -> tuple[Trust, HSTS | None, str | None]:
    """Verify chain and name; over the verified connection, read the HSTS header."""
    from ..diagnose import explain

    ctx = _verifying_context(cafile)
    if sni_sent is None:
        ctx.check_hostname = sni is not None  # an IP address: checked against iPAddress SANs
    try:
        with socket.create_connection(address, timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=sni) as tls:
                header, status = _read_hsts(tls, sni or address[0]) if http else (None, None)
    except ssl.SSLCertVerificationError as exc:
        d = explain(exc)
        return Trust(False, d.kind, exc.verify_code, exc.verify_message or str(exc)), None, None
    except (ssl.SSLError, OSError) as exc:
        d = explain(exc)
        return Trust(False, d.kind, None, _short_error(exc)), None, None
    return Trust(True, "ok"), parse_hsts(header), status
