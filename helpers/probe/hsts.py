"""HSTS: the ``Strict-Transport-Security`` header, read and parsed (introduced in notebook 08).

An ``http://`` link or bookmark still starts in plaintext, and an attacker on the path
can keep the user there (SSL stripping). Browsers now try HTTPS first (Chrome since 90,
and from Chrome 154, October 2026, it asks before any public HTTP site), but only HSTS
(RFC 6797) is the server's own, binding answer: a response header, sent over HTTPS, that
tells the browser to use HTTPS only for this host for ``max-age`` seconds, optionally for
every subdomain too. On such a host a certificate error is fatal: the user cannot click
through it (§8.4, §12.1), which is what stops notebook 07's man in the middle.

The scan reads it with one ``GET /`` (:func:`_read_hsts`) over the *verified*
connection of the trust check: RFC 6797 §8.1 says a client must ignore the header on a
connection with certificate errors, so the scan does too. :func:`parse_hsts` follows
the grammar of §6.1, quoted above it. A long ``max-age`` earns the A+ of the grade.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

__all__ = ["HSTS", "parse_hsts"]


@dataclass(frozen=True)
class HSTS:
    """A parsed ``Strict-Transport-Security`` header (RFC 6797 §6.1)."""

    max_age: int  # seconds the browser must use HTTPS only for this host
    include_subdomains: bool  # ... and for every subdomain
    preload: bool  # asks to be put on browsers' built-in list (hstspreload.org, not an RFC)
    raw: str

    @property
    def days(self) -> float:
        return self.max_age / 86400


def parse_hsts(value: str | None) -> HSTS | None:
    """Parse a Strict-Transport-Security header value; None if absent or invalid.

    RFC 6797 §6.1::

        Strict-Transport-Security = "Strict-Transport-Security" ":"
                                    [ directive ]  *( ";" [ directive ] )
        directive                 = directive-name [ "=" directive-value ]
        directive-value           = token | quoted-string

    ``max-age`` is required (§6.1.1); directive names are case-insensitive and may
    appear only once (§6.1 rule 2): a header that breaks either rule is ignored
    (§8.1), so this returns None for it.
    """
    if not value:
        return None
    seen: dict[str, str] = {}
    for part in value.split(";"):
        name, sep, raw = part.strip().partition("=")
        name = name.strip().lower()
        if not name:
            continue
        if name in seen:
            return None
        seen[name] = raw.strip().strip('"') if sep else ""
    try:
        max_age = int(seen["max-age"])
    except (KeyError, ValueError):
        return None
    if max_age < 0:
        return None
    return HSTS(max_age, "includesubdomains" in seen, "preload" in seen, value)


def _read_hsts(tls: ssl.SSLSocket, host: str) -> tuple[str | None, str | None]:
    """Send ``GET /`` and return (Strict-Transport-Security value, status line)."""
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    try:
        tls.sendall(request.encode("ascii", "replace"))
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = tls.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ssl.SSLError, OSError):
        return None, None
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    value = None
    for line in lines[1:]:
        name, _, rest = line.partition(":")
        if name.strip().lower() == "strict-transport-security":
            value = rest.strip()
    return value, (lines[0] if lines and lines[0] else None)
