"""What a client decides about a TLS 1.0- or 1.1-only server, on *this* machine (notebook 02).

The lab's ``tls-1.0-only`` and ``tls-1.1-only`` servers speak one old version each, at
OpenSSL security level 0 (the only level at which OpenSSL 3.1+ speaks TLS 1.0/1.1 at all).
What a client makes of them is not a property of the server: it depends on the client's
``minimum_version``, its security level and its OpenSSL, and those differ between the
Pythons and tools learners have. Measured with the lab (``tests/test_lab.py``,
``tests/test_lab_tools.py``) on Python 3.11 + OpenSSL 3.0.19 and Python 3.13 + OpenSSL
3.5.9:

===========================================  =============================================
the client                                   what happens
===========================================  =============================================
minimum TLS 1.2 (python.org Pythons since    it offers TLS 1.2+ only; the server answers with
3.10, curl >= 8.16)                          a ``protocol_version`` alert (RFC 8446 §6.2)
minimum below 1.2, OpenSSL >= 3.1, security  the same: "SSL 3, TLS 1.0, TLS 1.1 and DTLS 1.0
level >= 1                                   only work at security level 0" (OpenSSL 3.1
                                             NEWS), so the client does not offer them
minimum below 1.2, OpenSSL 3.0, security     TLS 1.0 is offered and agreed, then the client
level >= 1 (Debian 12's Python on 3.0,       refuses the server's MD5-SHA1 / SHA-1
curl < 8.16, ``openssl s_client`` 3.0)       ServerKeyExchange signature: "legacy sigalg
                                             disallowed or unsupported"
security level 0 and a minimum that allows   the connection works: the lesson's "a client
the version                                  that lowers its own guard gets in"
===========================================  =============================================

The lab's servers have ECDSA certificates, so the OpenSSL 3.0 row always ends with that
signature refusal. A TLS 1.0 server with an RSA certificate and RSA key transport (for
example ``AES128-SHA``) signs nothing, and there OpenSSL 3.0 at security level 2 *completes*
the handshake if the client's cipher list has such a suite: measured, Debian 12's own
``/usr/bin/python3.11`` (OpenSSL 3.0.19, OpenSSL's ``DEFAULT`` list) with
``ssl.create_default_context()`` connects over TLS 1.0 (``tests/test_lab.py`` shows it);
a python.org-style Python removes RSA key transport from its list and gets a
``handshake_failure`` instead. OpenSSL 3.0 keeps TLS 1.0/1.1 out only where a handshake
signature needs SHA-1 or MD5.

A Python's minimum depends on how it was built: python.org, pyenv and conda Pythons are
built with ``--with-ssl-default-suites=python`` and set TLS 1.2 themselves; Debian and
Ubuntu build with ``--with-ssl-default-suites=openssl``, so ``minimum_version`` is
``MINIMUM_SUPPORTED`` and OpenSSL (and its configuration file) decides. Ubuntu also
patches its OpenSSL so that security level 2 forbids TLS below 1.2 (Ubuntu's own
documentation; not measured here), which puts its clients in the first row. That is why the
verdicts below read the running Python's context instead of assuming a minimum.

:func:`python_verdict` answers for :func:`ssl.create_default_context` (it reads a fresh
``SSLContext(PROTOCOL_TLS_CLIENT)``, which has the same minimum and security level).
:func:`tool_verdict` answers for ``curl`` and ``openssl s_client``: it runs
``curl --version`` / ``openssl version`` once to learn which OpenSSL they use. An
``openssl.cnf`` that raises ``MinProtocol`` moves a 3.0 tool to the ``protocol_version``
verdict; the lab does not read that file and says so in :data:`NOTE`.
"""

from __future__ import annotations

import functools
import re
import shutil
import ssl
import subprocess
import sys
from typing import NamedTuple

from .expect import Expect

__all__ = [
    "HANDSHAKE_FAILURE",
    "LEGACY_SIGALG",
    "NOTE",
    "OP_LEGACY_SERVER_CONNECT",
    "PROTOCOL_VERSION",
    "TLS_VERSIONS",
    "UNSAFE_RENEGOTIATION",
    "CURL_TRUNCATED",
    "SSL_EOF",
    "UNEXPECTED_EOF",
    "ToolVersions",
    "allows_legacy_server",
    "default_is_x509_strict",
    "offers",
    "python_verdict",
    "renegotiation_verdict",
    "rsa_kx_verdict",
    "shares_suite",
    "strict_verdict",
    "suites_of",
    "tool_rsa_kx_verdict",
    "tool_suites",
    "tool_truncation_verdict",
    "tool_verdict",
    "tool_versions",
]

#: The server's ``protocol_version`` alert: the client offered nothing it speaks.
PROTOCOL_VERSION = Expect(False, None, "tlsv1 alert protocol version", "SSLError")
#: OpenSSL 3.0 agreed on TLS 1.0/1.1, then refused the MD5-SHA1/SHA-1 handshake signature.
LEGACY_SIGALG = Expect(False, None, "legacy sigalg disallowed or unsupported", "SSLError")

#: What the scenarios' ``note`` says, for every version at once.
NOTE = (
    "Which refusal you see depends on your client, not on the server. A client whose "
    "minimum is TLS 1.2 (python.org Pythons, curl >= 8.16) or whose OpenSSL is 3.1 or "
    "newer (TLS 1.0/1.1 only at security level 0) does not offer TLS 1.0/1.1: the server "
    "answers 'protocol version'. On OpenSSL 3.0 a client with a lower minimum (Debian and "
    "Ubuntu Pythons, older curl, openssl s_client) agrees on TLS 1.0/1.1 and then rejects "
    "the server's SHA-1/MD5 handshake signature: 'legacy sigalg disallowed or "
    "unsupported'. (Against a TLS 1.0 server with RSA key transport, which signs nothing, "
    "such an OpenSSL 3.0 client even connects.) A MinProtocol line in openssl.cnf changes "
    "a tool's minimum too, and Ubuntu patches its OpenSSL so that security level 2 itself "
    "forbids TLS below 1.2 (Ubuntu's clients then see 'protocol version'; not measured here)."
)

#: A scenario's ``tls_version`` name -> :class:`ssl.TLSVersion` (also used by the servers).
TLS_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1_1": ssl.TLSVersion.TLSv1_1,
    "TLSv1_2": ssl.TLSVersion.TLSv1_2,
    "TLSv1_3": ssl.TLSVersion.TLSv1_3,
}

_LOWEST = ssl.TLSVersion.TLSv1  # what MINIMUM_SUPPORTED means in every OpenSSL 3 build


def _resolved(minimum: ssl.TLSVersion) -> ssl.TLSVersion:
    return _LOWEST if minimum == ssl.TLSVersion.MINIMUM_SUPPORTED else minimum


def offers(
    version: ssl.TLSVersion,
    *,
    openssl: tuple[int, ...],
    security_level: int,
    minimum: ssl.TLSVersion,
) -> bool:
    """Does a client with this OpenSSL, security level and minimum offer ``version``?

    Only TLS 1.0 and 1.1 depend on the OpenSSL version: from 3.1 on they need security
    level 0 (OpenSSL 3.1 NEWS); 3.0 still offers them at levels 1 and 2.
    """
    if _resolved(minimum) > version:
        return False
    if version >= ssl.TLSVersion.TLSv1_2:
        return True
    return security_level == 0 or tuple(openssl[:2]) < (3, 1)


def _verdict(
    version: ssl.TLSVersion, openssl: tuple[int, ...], level: int, minimum: ssl.TLSVersion
) -> Expect:
    if not offers(version, openssl=openssl, security_level=level, minimum=minimum):
        return PROTOCOL_VERSION
    if level == 0:
        return Expect(ok=True)
    return LEGACY_SIGALG  # OpenSSL 3.0, level >= 1: the handshake signature is refused


def python_verdict(version: ssl.TLSVersion) -> Expect:
    """The verdict of ``ssl.create_default_context()`` on this Python against a server that
    speaks only ``version`` (TLS 1.0 or 1.1)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # same minimum and level, no CA loading
    return _verdict(version, ssl.OPENSSL_VERSION_INFO, ctx.security_level, ctx.minimum_version)


class ToolVersions(NamedTuple):
    """The versions that decide the tools' verdicts; ``None`` when unknown or not installed."""

    openssl: tuple[int, ...] | None  # `openssl version`
    curl: tuple[int, ...] | None  # `curl --version`, the curl release
    curl_openssl: tuple[int, ...] | None  # the OpenSSL libcurl is linked with


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _run(*cmd: str) -> str:
    if shutil.which(cmd[0]) is None:
        return ""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


@functools.cache
def tool_versions() -> ToolVersions:
    """Ask ``openssl`` and ``curl`` once which versions they are (no network)."""
    openssl = re.match(r"OpenSSL (\d+\.\d+\.\d+)", _run("openssl", "version"))
    curl_text = _run("curl", "--version")
    curl = re.match(r"curl (\d+\.\d+\.\d+)", curl_text)
    linked = re.search(r"\bOpenSSL/(\d+\.\d+\.\d+)", curl_text)
    return ToolVersions(
        _numbers(openssl.group(1)) if openssl else None,
        _numbers(curl.group(1)) if curl else None,
        _numbers(linked.group(1)) if linked else None,
    )


def tool_verdict(tool: str, version: ssl.TLSVersion) -> Expect | None:
    """The verdict of ``"curl"`` or ``"openssl"`` (``s_client``) on this machine.

    Both run at OpenSSL's default security level (1 on an unconfigured 3.0, 2 from 3.2
    and in Debian's configuration: >= 1 either way). ``openssl s_client``'s minimum is
    OpenSSL's own (TLS 1.0); curl's is TLS 1.2 from curl 8.16.0 on, TLS 1.0 before.
    ``None`` when the tool is missing or not built on OpenSSL: the lab cannot say.
    """
    found = tool_versions()
    if tool == "openssl":
        if found.openssl is None:
            return None
        return _verdict(version, found.openssl, 1, ssl.TLSVersion.MINIMUM_SUPPORTED)
    if tool == "curl":
        if found.curl is None or found.curl_openssl is None:
            return None
        minimum = (
            ssl.TLSVersion.TLSv1_2 if found.curl >= (8, 16) else ssl.TLSVersion.MINIMUM_SUPPORTED
        )
        return _verdict(version, found.curl_openssl, 1, minimum)
    raise ValueError(f"no verdict for tool {tool!r}: use 'curl' or 'openssl'")


# --------------------------------------------------------------------------- issue 14
# The "legacy servers you cannot fix" and the strict-verification scenarios (notebook 09):
# again verdicts that belong to the client, computed for the running Python.

#: The server found no cipher suite in common with the client (RFC 5246 §7.4.1.3).
HANDSHAKE_FAILURE = Expect(False, None, "alert handshake failure", "SSLError")
#: The server's ServerHello lacks renegotiation_info (RFC 5746 §4.1): OpenSSL 3 hangs up.
UNSAFE_RENEGOTIATION = Expect(False, None, "unsafe legacy renegotiation disabled", "SSLError")
#: ``ssl.OP_LEGACY_SERVER_CONNECT`` (named in Python 3.12+; the number works everywhere).
OP_LEGACY_SERVER_CONNECT = getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0x4)


def default_is_x509_strict() -> bool:
    """Does ``ssl.create_default_context()`` set ``VERIFY_X509_STRICT`` on this Python?

    Python 3.13 added it (with ``VERIFY_X509_PARTIAL_CHAIN``) to the default context, so
    OpenSSL then enforces RFC 5280's "MUST"s it otherwise lets through (a CA's
    basicConstraints critical, keyUsage on a CA, authorityKeyIdentifier present).
    Read from the version rather than by building a context: building one loads the
    whole system trust store; ``tests/test_lab_strict.py`` checks both agree.
    """
    return sys.version_info >= (3, 13)


def strict_verdict(code: int, message: str) -> Expect:
    """The default context's verdict on a chain that only ``VERIFY_X509_STRICT`` refuses."""
    if default_is_x509_strict():
        return Expect(False, code, message, "SSLCertVerificationError")
    return Expect(ok=True)


def _tls12_suites(ctx: ssl.SSLContext) -> set[str]:
    return {c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"}


def suites_of(cipher_string: str) -> frozenset[str]:
    """The TLS 1.2 suites an OpenSSL cipher string names, on this OpenSSL."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers(cipher_string)
    return frozenset(_tls12_suites(ctx))


def shares_suite(cipher_string: str) -> bool:
    """Does this Python's default client offer one of the suites in ``cipher_string``?

    python.org, pyenv and conda Pythons (``--with-ssl-default-suites=python``) offer
    only forward-secret (ECDHE/DHE) suites in TLS 1.2; Debian and Ubuntu Pythons
    (``--with-ssl-default-suites=openssl``) keep OpenSSL's ``DEFAULT`` list, which on
    OpenSSL 3.0 and 3.5 still contains RSA key transport (``AES128-GCM-SHA256``, ...).
    Read from a fresh client context: the same list ``create_default_context()`` has.
    """
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return bool(_tls12_suites(client) & suites_of(cipher_string))


def rsa_kx_verdict(cipher_string: str) -> Expect:
    """The default context's verdict on a TLS 1.2 server offering only ``cipher_string``."""
    return Expect(ok=True) if shares_suite(cipher_string) else HANDSHAKE_FAILURE


def allows_legacy_server() -> bool:
    """Does a fresh client context carry ``OP_LEGACY_SERVER_CONNECT``? OpenSSL 3 leaves it
    off (1.1.1 had it on), unless an ``openssl.cnf`` ``Options = UnsafeLegacyServerConnect``
    line puts it back; the context shows what the configuration did."""
    return bool(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).options & OP_LEGACY_SERVER_CONNECT)


def renegotiation_verdict() -> Expect:
    """The default context's verdict on a TLS 1.2 server that does not speak RFC 5746."""
    return Expect(ok=True) if allows_legacy_server() else UNSAFE_RENEGOTIATION


@functools.cache
def tool_suites() -> frozenset[str] | None:
    """The TLS 1.2 suites ``openssl s_client`` offers by default: ``openssl ciphers -s
    -tls1_2`` (OpenSSL's ``DEFAULT`` list after its configuration file); ``None`` when
    ``openssl`` is missing. curl with OpenSSL sets no list of its own either (measured:
    curl 7.88.1 + OpenSSL 3.0, curl 8.14.1 + OpenSSL 3.5 agree with s_client)."""
    out = _run("openssl", "ciphers", "-s", "-tls1_2")
    if not out.strip():
        return None
    return frozenset(out.strip().split(":"))


def tool_rsa_kx_verdict(cipher_string: str) -> Expect | None:
    """curl's and ``openssl s_client``'s verdict on the ``rsa-kx-only`` server, or ``None``
    when ``openssl`` is not installed."""
    offered = tool_suites()
    if offered is None:
        return None
    return Expect(ok=True) if offered & suites_of(cipher_string) else HANDSHAKE_FAILURE


#: ``openssl s_client`` and newer curl on a server that hangs up without close_notify:
#: the body arrives, then OpenSSL 3 reports the bare TCP end (``SSL_R_UNEXPECTED_EOF_WHILE_READING``).
UNEXPECTED_EOF = Expect(False, None, "unexpected eof while reading", None, "read")
#: What Python raises there when it is asked to (``suppress_ragged_eofs=False``, or an
#: :class:`ssl.SSLObject`): "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation
#: of protocol" (measured on OpenSSL 3.0.22 and 3.5.9).
SSL_EOF = Expect(False, None, "UNEXPECTED_EOF_WHILE_READING", "SSLEOFError", "read")
#: curl's words for it: "curl: (56) OpenSSL SSL_read: ... unexpected eof while reading"
#: (with OpenSSL 3.2+ some releases say "SSL_ERROR_SYSCALL" instead, curl issue #13389).
CURL_TRUNCATED = Expect(False, None, "OpenSSL SSL_read", None, "read")


def tool_truncation_verdict(tool: str) -> Expect | None:
    """``curl``'s or ``openssl s_client``'s verdict on the ``truncation`` server.

    ``openssl s_client`` prints the body, then the error, and exits 1 (measured: OpenSSL
    3.0.22 and 3.5.9). curl depends on its release and its OpenSSL: measured, curl 7.88.1
    + OpenSSL 3.0 treats the bare end as the end of the body (exit 0), curl 8.14.1 +
    OpenSSL 3.5 fails with error 56. OpenSSL 3.2 changed how the end is reported, and curl
    issue #17471 (2025) describes curl making OpenSSL 3.0 strict too; the lab counts curl
    on OpenSSL 3.2+ or curl 8.15+ as failing, older pairs as accepting. ``None`` when the
    tool is missing.
    """
    found = tool_versions()
    if tool == "openssl":
        return None if found.openssl is None else UNEXPECTED_EOF
    if tool == "curl":
        if found.curl is None or found.curl_openssl is None:
            return None
        if tuple(found.curl_openssl[:2]) >= (3, 2) or found.curl >= (8, 15):
            return CURL_TRUNCATED
        return Expect(ok=True)
    raise ValueError(f"no verdict for tool {tool!r}: use 'curl' or 'openssl'")
