"""The certificates the server sent, and the one non-verifying probe (notebook 02).

**Verification happens inside the handshake.** When it fails, Python closes the
connection and the learner never sees the certificates that caused it. Python 3.13 can
still read them from the failed socket (``SSLSocket.get_unverified_chain()``, used by
:func:`_der_chain`); on older Pythons, and for ``requests``, which hides its socket,
:func:`~helpers.diagnose.check` opens a *second* connection that does not verify, reads
the chain the server sends and closes without sending a byte of application data
(:func:`_probe_chain`). That probe is the only non-verifying connection in the course
helpers, and nothing ever trusts what it returns.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterable

from cryptography import x509

from ..pki.panics import is_rust_panic
from .context import _Options
from .target import _Target


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
        except (ValueError, x509.InvalidVersion):
            continue  # one certificate cryptography cannot read: still show the others
        except BaseException as exc:  # a Rust panic on hostile bytes (helpers/pki/panics.py)
            if not is_rust_panic(exc):
                raise
            continue
    return out


def _probe_chain(
    t: _Target, opts: _Options, connect: Callable[[], socket.socket] | None = None
) -> list[x509.Certificate]:
    """Read the chain a server sends, *without* verifying it, after a failed check.

    This is the one non-verifying connection in the course helpers, and it exists only
    so that a learner can look at the certificates that were just rejected. It does the
    handshake, copies the certificates and closes: it never sends application data, it
    never presents the client certificate (that would identify you to a server nobody
    vouched for), and nothing it returns is trusted. Python 3.13 can read the chain of
    the failed connection itself (``SSLSocket.get_unverified_chain()``); on older Pythons
    this second connection is the way to see it. ``connect`` opens the TCP connection the
    same way the check did (through the same proxy: behind a TLS-inspecting proxy the
    chain that failed is the proxy's, not the server's).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # read-only probe: see the docstring
    if opts.min_version is not None:
        ctx.minimum_version = opts.min_version
    if opts.max_version is not None:
        ctx.maximum_version = opts.max_version
    try:
        raw = connect() if connect else socket.create_connection((t.host, t.port), opts.timeout)
        with raw:
            with ctx.wrap_socket(raw, server_hostname=t.host) as sock:
                return _parse_chain(_der_chain(sock))
    except (OSError, ValueError):
        return []
