"""The verifying client context behind every :func:`~helpers.diagnose.check` (notebook 02).

:func:`check`'s options (``cafile=``, ``crl=``, ``client_cert=``, ``min_version=``,
``max_version=``) are checked here, so a mistake in the call raises
:class:`~helpers.errors.UsageError` before any connection is made. They then become one
:class:`ssl.SSLContext` built on :func:`ssl.create_default_context`: the chain must lead
to a trusted root and name the host, with TLS 1.2 at least. The options add a trust
anchor, a CRL or a client certificate, or pin the versions; none of them turns
verification off.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError

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
    # create_default_context() = CERT_REQUIRED + check_hostname: the chain must lead to a
    # trusted root and name this host, which is what stops a man-in-the-middle from
    # presenting his own certificate. Its minimum version is TLS 1.2 on python.org
    # Pythons but MINIMUM_SUPPORTED on Debian/Ubuntu builds (--with-ssl-default-suites=
    # openssl): a check reports what *this* Python's default client decides.
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
        if opts.min_version is None:
            # ... and sets TLS 1.2 as the minimum on every Python, whatever the build.
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx
