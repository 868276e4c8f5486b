"""What changed in TLS for Python programmers, version by version, measured on *your* Python.

Introduced in notebook 00 (the table); notebook 01 and later call :func:`note` for
"on your Python ..." remarks next to a fact that depends on the version.

Why measure instead of comparing version numbers
------------------------------------------------
``sys.version_info`` and ``ssl.OPENSSL_VERSION`` tell you what you *have*, not what it
*does*. Distributions patch and configure their builds: Debian and Ubuntu build Python
with ``--with-ssl-default-suites=openssl``, so ``create_default_context().minimum_version``
is ``MINIMUM_SUPPORTED`` there (the TLS 1.2 floor then comes from OpenSSL's security
level, not from Python); conda-forge, Homebrew and Debian 13 link OpenSSL 3.5, the
python.org and pyenv builds here link 3.0. So every row of :func:`table` is filled in
by looking: ``hasattr`` for APIs, the default context's flags and options, and the
ClientHello your default client really sends (:func:`client_hello`, built in memory
with no network, decoded by :mod:`helpers.handshake`).

Sources for each row (checked in December 2026): "What's New In Python" 3.10 (ssl:
TLS 1.2 minimum, security level 2), 3.12 (``wrap_socket``/``match_hostname`` removed),
3.13 (``VERIFY_X509_STRICT`` + ``VERIFY_X509_PARTIAL_CHAIN``, gh-107361); CPython
gh-136306 and gh-137197 (3.15: ``set_groups``/``get_groups``, ``SSLSocket.group()``,
``set_ciphersuites``); urllib3 2.4.0's changelog (``verify_flags`` of
``create_urllib3_context``, #3571); OpenSSL 3.0 (``SSL_OP_LEGACY_SERVER_CONNECT`` no
longer on by default), OpenSSL 3.2 (RFC 8879 certificate compression), OpenSSL 3.5's
release notes (default key shares X25519MLKEM768 and X25519).
"""

from __future__ import annotations

import functools
import html
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHANGES",
    "Change",
    "Observation",
    "VersionTable",
    "Note",
    "here",
    "client_hello",
    "negotiated_group",
    "offer_only",
    "table",
    "note",
]

#: The hybrid post-quantum group OpenSSL 3.5 offers first (IANA 0x11EC).
HYBRID = "X25519MLKEM768"


@dataclass(frozen=True)
class Observation:
    """What was measured: does the change show here (``applies``), and what was seen."""

    applies: bool
    seen: str


@dataclass(frozen=True)
class Change:
    """One row: since which version, what changed, and how to see it on this machine."""

    key: str
    since: str
    what: str
    measure: Callable[[], Observation]

    def observe(self) -> Observation:
        return self.measure()


def here() -> str:
    """``"Python 3.13.5 with OpenSSL 3.5.9 29 Sep 2026"``: what this kernel runs."""
    v = sys.version_info
    return f"Python {v.major}.{v.minor}.{v.micro} with {ssl.OPENSSL_VERSION}"


def client_hello(ctx: ssl.SSLContext | None = None, server_hostname: str = "example.test") -> Any:
    """The ClientHello ``ctx`` sends (a default client if None), decoded; no network used.

    The client writes its first flight into a :class:`ssl.MemoryBIO` and then waits for a
    server that never comes: those bytes are exactly what would go on the wire.
    """
    if ctx is None:
        return _default_client_hello()
    return _hello_of(ctx, server_hostname)


@functools.lru_cache(maxsize=1)
def _default_client_hello() -> Any:
    return _hello_of(ssl.create_default_context(), "example.test")


def _hello_of(ctx: ssl.SSLContext, server_hostname: str) -> Any:
    from .capture import Capture, Chunk

    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass  # the ClientHello is written; now it would wait for the server
    return Capture([Chunk("c2s", outgoing.read(), 0.0)]).client_hello


def negotiated_group(tls: Any, server_hello: Any = None) -> str | None:
    """The key-exchange group a finished handshake used.

    ``SSLSocket.group()`` (Python 3.15+) asks OpenSSL; older Pythons have no such method,
    so the group is read from the decoded ServerHello's key_share, if one is given.
    """
    group = getattr(tls, "group", None)
    if callable(group):
        return group()
    if server_hello is not None:
        return server_hello.selected_group
    return None


def offer_only(ctx: ssl.SSLContext, group: str) -> ssl.SSLContext:
    """Make ``ctx`` offer (and send a key share for) one key-exchange group only.

    Introduced in notebook 01 (an x25519-only handshake next to the post-quantum hybrid);
    notebook 06 and ``tools/capture_pq.py`` use it too. Returns ``ctx``.

    * Python 3.15+: ``SSLContext.set_groups()`` takes OpenSSL's colon-separated list
      (``"X25519:secp256r1"``), like ``set_ciphers`` (gh-136306). Note that
      ``get_groups()`` lists every group OpenSSL *implements*, not the ones you set.
    * Before 3.15: ``set_ecdh_curve()`` sets exactly one group. Built against OpenSSL 3 it
      calls ``SSL_CTX_set1_groups``, so it works on a client and for X25519. Older builds
      still go through the EC-only API, which knows no X25519 (measured: Debian 12's
      Python 3.11.2 raises ``[EC: UNKNOWN_GROUP]``); then this raises
      :class:`~helpers.errors.UsageError` with one sentence.
    """
    from .errors import UsageError

    set_groups = getattr(ctx, "set_groups", None)
    try:
        if callable(set_groups):
            set_groups(group)
        else:
            ctx.set_ecdh_curve(group)
    except (ssl.SSLError, ValueError) as e:
        raise UsageError(
            f"This Python ({sys.version.split()[0]}, {ssl.OPENSSL_VERSION}) cannot restrict a "
            f"context to {group!r}: {e}. Python 3.15's set_groups() or a newer build's "
            f"set_ecdh_curve() can."
        ) from None
    return ctx


# ------------------------------------------------------------------ the measurements


def _default() -> ssl.SSLContext:
    return ssl.create_default_context()


def _tls12_floor() -> Observation:
    ctx = _default()
    offered = client_hello().versions
    floor = ctx.minimum_version
    seen = (
        f"default context: minimum_version {floor.name}, security level {ctx.security_level}; "
        f"your ClientHello offers {', '.join(offered)}"
    )
    if floor == ssl.TLSVersion.MINIMUM_SUPPORTED:
        seen += (
            " (minimum_version is MINIMUM_SUPPORTED: a Debian/Ubuntu-style build, "
            "--with-ssl-default-suites=openssl; the TLS 1.2 floor then comes from the "
            "security level: above level 0, OpenSSL 3.1+ does not offer TLS 1.0/1.1 and "
            "OpenSSL 3.0 refuses their SHA-1/MD5 handshake signatures; Ubuntu also patches "
            "level 2 to forbid them)"
        )
    effective = floor >= ssl.TLSVersion.TLSv1_2 or ctx.security_level >= 1
    return Observation(effective and ctx.security_level >= 2, seen)


def _removed_functions() -> Observation:
    present = [name for name in ("wrap_socket", "match_hostname") if hasattr(ssl, name)]
    if present:
        seen = "still here (deprecated): " + ", ".join(f"ssl.{n}()" for n in present)
    else:
        seen = "ssl.wrap_socket() and ssl.match_hostname() are gone; use SSLContext.wrap_socket()"
    return Observation(not present, seen)


def _flag_names(flags: int) -> list[str]:
    wanted = ("VERIFY_X509_STRICT", "VERIFY_X509_PARTIAL_CHAIN")
    return [n for n in wanted if hasattr(ssl, n) and flags & getattr(ssl, n)]


def _strict_flags() -> Observation:
    on = _flag_names(_default().verify_flags)
    seen = "create_default_context() sets " + (" + ".join(on) if on else "neither flag")
    return Observation(len(on) == 2, seen)


def _urllib3_flags() -> Observation:
    try:
        import urllib3
        from urllib3.util.ssl_ import create_urllib3_context
    except ImportError:  # pragma: no cover - requests always brings urllib3
        return Observation(False, "urllib3 is not installed")
    on = _flag_names(create_urllib3_context().verify_flags)
    seen = f"urllib3 {urllib3.__version__}: its context sets " + (
        " + ".join(on) if on else "neither flag"
    )
    if not on and sys.version_info < (3, 13):
        seen += " (urllib3 2.4+ adds them only on Python 3.13 and later)"
    return Observation(len(on) == 2, seen)


def _groups_api() -> Observation:
    apis = {
        "SSLContext.set_groups()": hasattr(ssl.SSLContext, "set_groups"),
        "SSLSocket.group()": hasattr(ssl.SSLSocket, "group"),
        "SSLContext.set_ciphersuites()": hasattr(ssl.SSLContext, "set_ciphersuites"),
    }
    have = [name for name, ok in apis.items() if ok]
    if len(have) == len(apis):
        seen = "all three are here"
    else:
        missing = [name for name, ok in apis.items() if not ok]
        seen = "missing: " + ", ".join(missing) + (
            "; a client can still pick one group with set_ecdh_curve(), and the group used "
            "is read from the ServerHello"
        )
    return Observation(len(have) == len(apis), seen)


def _legacy_renegotiation() -> Observation:
    flag = getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0x4)  # named in Python 3.12+
    allowed = bool(_default().options & flag)
    hello = client_hello()
    signals = (
        "TLS_EMPTY_RENEGOTIATION_INFO_SCSV" in hello.cipher_suite_names
        or hello.extension("renegotiation_info") is not None
    )
    seen = (
        "OP_LEGACY_SERVER_CONNECT is "
        + ("ON: servers without RFC 5746 are still accepted" if allowed else "off")
        + ("; your ClientHello signals secure renegotiation (RFC 5746)" if signals else "")
    )
    return Observation(not allowed, seen)


def _certificate_compression() -> Observation:
    ext = client_hello().extension("compress_certificate")
    if ext is None:
        return Observation(False, "your ClientHello does not offer compress_certificate")
    algorithms = ext.value if isinstance(ext.value, list) else None
    named = f" ({', '.join(map(str, algorithms))})" if algorithms else ""
    return Observation(True, f"your ClientHello offers compress_certificate{named}")


def _hybrid_key_share() -> Observation:
    shares = client_hello().key_shares
    listed = ", ".join(f"{k.group_name} ({k.key_length} bytes)" for k in shares)
    return Observation(
        any(k.group_name == HYBRID for k in shares), f"your ClientHello's key shares: {listed}"
    )


#: Every row of the table, oldest change first within Python, then within OpenSSL.
CHANGES: tuple[Change, ...] = (
    Change(
        "tls12-minimum",
        "Python 3.10",
        "a new SSLContext refuses TLS 1.0 and 1.1 (minimum TLS 1.2) and runs at OpenSSL "
        "security level 2 (no RSA/DH keys under 2048 bits); python.org-style builds also drop "
        "cipher suites without forward secrecy or with SHA-1 MACs from the default list",
        _tls12_floor,
    ),
    Change(
        "wrap-socket-removed",
        "Python 3.12",
        "ssl.wrap_socket() and ssl.match_hostname() are removed (deprecated since 3.7; "
        "OpenSSL checks host names itself)",
        _removed_functions,
    ),
    Change(
        "strict-verify",
        "Python 3.13",
        "create_default_context() adds VERIFY_X509_STRICT (RFC 5280 rules: e.g. a "
        "certificate other than a root without an Authority Key Identifier is refused) and "
        "VERIFY_X509_PARTIAL_CHAIN (a trusted intermediate is enough as an anchor)",
        _strict_flags,
    ),
    Change(
        "urllib3-strict",
        "urllib3 2.4 (on Python 3.13+)",
        "requests' own context (create_urllib3_context) sets the same two flags",
        _urllib3_flags,
    ),
    Change(
        "groups-api",
        "Python 3.15",
        "SSLContext.set_groups()/get_groups() choose the key-exchange groups, "
        "SSLSocket.group() says which one a connection used, SSLContext.set_ciphersuites() "
        "sets the TLS 1.3 suites",
        _groups_api,
    ),
    Change(
        "legacy-renegotiation",
        "OpenSSL 3.0",
        "clients refuse servers that do not support secure renegotiation (RFC 5746): "
        "SSL_OP_LEGACY_SERVER_CONNECT is no longer on by default",
        _legacy_renegotiation,
    ),
    Change(
        "cert-compression",
        "OpenSSL 3.2",
        "certificates can travel compressed (RFC 8879): the ClientHello offers "
        "compress_certificate and the server's Certificate becomes a CompressedCertificate",
        _certificate_compression,
    ),
    Change(
        "hybrid-pq",
        "OpenSSL 3.5",
        "hybrid post-quantum key exchange by default: the ClientHello carries an "
        "X25519MLKEM768 key share (1216 bytes) next to an x25519 one, and servers prefer it",
        _hybrid_key_share,
    ),
)

_BY_KEY = {change.key: change for change in CHANGES}


# ------------------------------------------------------------------ display


class VersionTable:
    """The table "what changed, version by version", with this machine's column filled in."""

    def __init__(self, rows: list[tuple[Change, Observation]]) -> None:
        self.rows = rows
        self.platform = here()

    def __getitem__(self, key: str) -> Observation:
        for change, observation in self.rows:
            if change.key == key:
                return observation
        raise KeyError(key)

    def __repr__(self) -> str:
        lines = [f"What changed, version by version; last column measured on {self.platform}"]
        for change, seen in self.rows:
            mark = "yes" if seen.applies else "no "
            lines.append(f"- {change.since}: {change.what}\n    here: {mark} | {seen.seen}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cell = 'style="text-align:left;vertical-align:top;padding:4px 8px;border-top:1px solid #ccc"'
        body = []
        for change, seen in self.rows:
            mark, colour = ("✓ yes", "#1a7f37") if seen.applies else ("✗ not here", "#6b5d00")
            body.append(
                f"<tr><td {cell}><b>{html.escape(change.since)}</b></td>"
                f"<td {cell}>{html.escape(change.what)}</td>"
                f'<td {cell}><b style="color:{colour}">{mark}</b><br>'
                f"{html.escape(seen.seen)}</td></tr>"
            )
        return (
            '<table style="border-collapse:collapse;font-size:90%;color:#1b1b1b;background:#fff">'
            f"<caption style='text-align:left'><b>What changed, version by version</b>; the last "
            f"column is measured on your {html.escape(self.platform)}</caption>"
            f"<tr><th {cell}>since</th><th {cell}>what changed</th>"
            f"<th {cell}>on your machine</th></tr>" + "".join(body) + "</table>"
        )


class Note:
    """An "on your Python ..." remark for a lesson, from one measured row of the table."""

    def __init__(self, change: Change, observation: Observation) -> None:
        self.change = change
        self.observation = observation
        self.platform = here()

    @property
    def text(self) -> str:
        status = "applies here" if self.observation.applies else "does not apply here"
        return (
            f"On your {self.platform}: {self.observation.seen}. "
            f"(Since {self.change.since}, {self.change.what}: {status}.)"
        )

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.observation.applies else "#6b5d00"
        return (
            f'<div style="border-left:5px solid {colour};background:#f4f6f8;color:#1b1b1b;'
            f'padding:6px 10px;margin:4px 0;font-family:sans-serif">'
            f"<b>On your {html.escape(self.platform)}:</b> {html.escape(self.observation.seen)}."
            f"<br><small>Since {html.escape(self.change.since)}: {html.escape(self.change.what)}"
            f" ({'applies here' if self.observation.applies else 'does not apply here'}).</small>"
            "</div>"
        )


def table() -> VersionTable:
    """Measure every change in :data:`CHANGES` on this machine."""
    return VersionTable([(change, change.observe()) for change in CHANGES])


def note(key: str) -> Note:
    """The "on your Python ..." note for one change, e.g. ``note("hybrid-pq")``.

    Keys: ``tls12-minimum``, ``wrap-socket-removed``, ``strict-verify``,
    ``urllib3-strict``, ``groups-api``, ``legacy-renegotiation``, ``cert-compression``,
    ``hybrid-pq``.
    """
    try:
        change = _BY_KEY[key]
    except KeyError:
        raise KeyError(f"no version note {key!r}; known: {', '.join(_BY_KEY)}") from None
    return Note(change, change.observe())
