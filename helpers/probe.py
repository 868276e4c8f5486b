"""Probe a TLS server like a tiny sslyze, then grade it (introduced in notebook 08).

Theory of operation
-------------------
A server's TLS configuration cannot be read from outside; it can only be *asked*, one
handshake at a time. :func:`scan` asks:

1. **Versions.** One handshake per version with ``minimum_version = maximum_version``
   pinned to it: TLS 1.0, 1.1, 1.2, 1.3. The server either answers with a ServerHello
   for that version or refuses (alert protocol_version, RFC 8446 §6.2). SSL 2 and 3
   cannot be tried: OpenSSL 3 no longer contains them (RFC 6176, RFC 7568).
2. **Cipher suites (TLS 1.2 and older).** One handshake per suite, offering that suite
   *alone* (``set_ciphers(name)``), at the highest version below 1.3 the server accepts.
   Accepted means the server picked it. The candidates are every suite the local
   OpenSSL knows (``ctx.get_ciphers()``) except PSK and SRP suites, which need a
   shared secret the probe does not have. The handshakes run in a small thread pool:
   they are mostly waiting, so 8 at a time cost about as much as one.
3. **TLS 1.3 suites** cannot be chosen from Python (``set_ciphers`` only affects
   TLS 1.2 and older, and there is no ``set_ciphersuites``), so the scan reports the
   suite the server *negotiated*.
4. **Key exchange.** Python does not say which (EC)DH group a handshake used, so the
   scan reads it off the wire: a few handshakes go through a recording
   :class:`helpers.capture.Relay` and :mod:`helpers.handshake` decodes the
   ServerKeyExchange (TLS 1.2: the curve, or the size of the DH prime ``dh_p``) or the
   ServerHello key_share (TLS 1.3: the group).
5. **Trust.** One last handshake with a *verifying* context (chain to a trusted root,
   host name), and over that verified connection one ``GET /`` to read the
   ``Strict-Transport-Security`` header (RFC 6797 §8.1: a client must ignore it on a
   connection with certificate errors, so the scan does too).

The probe contexts (steps 1-4) switch off verification and lower OpenSSL's security
level to 0: a scanner must *see* a 1024-bit DH group or a TLS 1.0 server to report
it. Those connections send no application data and nothing they return is trusted.
Whether the certificate is trusted comes from step 5 alone.

:func:`grade` turns a :class:`Scan` into a letter, in the spirit of the SSL Labs *SSL
Server Rating Guide* (version 2009 and its published grading changes): three category
scores (protocol 30 %, key exchange 30 %, cipher strength 40 %), a letter from the
total, then caps for known weaknesses and the special grades T (not trusted) and M
(name mismatch). Every number and rule is in the tables below
(:data:`PROTOCOL_SCORES`, :data:`KEY_EXCHANGE_SCORES`, :data:`CIPHER_SCORES`,
:data:`LETTERS`, :data:`RULES`), and a :class:`Grade` shows how it was reached.

Simplified on purpose, compared with SSL Labs: no browser handshake simulations (the
forward-secrecy rule looks at the accepted suites instead), no vulnerability tests
(Heartbleed, ROBOT, renegotiation...), suites probed at one version only, and SHA-1 or
small certificate keys give F here (SSL Labs reports such certificates as not trusted,
T, because browsers reject them).
"""

from __future__ import annotations

import html
import ipaddress
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from . import live
from .cards import Table
from .errors import ConnectionProblem, ParseError, UsageError

__all__ = [
    "CIPHER_SCORES",
    "HSTS",
    "KEY_EXCHANGE_SCORES",
    "LETTERS",
    "PROTOCOL_SCORES",
    "RULES",
    "VERSIONS",
    "WEIGHTS",
    "CertificateFacts",
    "Grade",
    "KeyExchange",
    "Rule",
    "Scan",
    "Suite",
    "Trust",
    "grade",
    "letter_for",
    "parse_hsts",
    "rules_table",
    "scan",
]

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
DEFAULT_WORKERS = 8  # handshakes in flight at once
_NO_CREDENTIALS = ("kx-psk", "kx-rsa-psk", "kx-dhe-psk", "kx-ecdhe-psk", "kx-srp")

# --------------------------------------------------------------------------- the rating tables

#: Protocol score per version (SSL Server Rating Guide, "Protocol support"). The category
#: score is the average of the best and the worst version the server accepts.
PROTOCOL_SCORES: dict[str, int] = {
    "SSLv2": 0,
    "SSLv3": 80,
    "TLSv1": 90,
    "TLSv1.1": 95,
    "TLSv1.2": 100,
    "TLSv1.3": 100,
}

#: Key exchange score by strength in RSA-equivalent bits ("Key exchange"): the first row
#: whose bound the strength is *below* applies. Anonymous key exchange scores 0.
KEY_EXCHANGE_SCORES: tuple[tuple[int, int], ...] = (
    (512, 20),
    (1024, 40),
    (2048, 80),
    (4096, 90),
    (2**31, 100),
)

#: Cipher score by symmetric key strength in bits ("Cipher strength"): first row whose
#: bound the strength is below. The category score averages the strongest and weakest.
CIPHER_SCORES: tuple[tuple[int, int], ...] = (
    (1, 0),  # no encryption at all (NULL suites)
    (128, 20),
    (256, 80),
    (2**31, 100),
)

#: Category weights (they sum to 1).
WEIGHTS: dict[str, float] = {"protocol": 0.3, "key_exchange": 0.3, "cipher": 0.4}

#: Letter from the total score: the first row whose minimum the score reaches.
LETTERS: tuple[tuple[float, str], ...] = (
    (80, "A"),
    (65, "B"),
    (50, "C"),
    (35, "D"),
    (20, "E"),
    (0, "F"),
)

#: RSA-equivalent strength of elliptic-curve groups (NIST SP 800-57 Part 1, Table 2):
#: a 256-bit curve gives ~128-bit security, like RSA-3072.
_EC_RSA_EQUIVALENT = {
    "x25519": 3072,
    "secp256r1": 3072,
    "prime256v1": 3072,
    "x448": 7680,
    "secp384r1": 7680,
    "secp521r1": 15360,
    "ffdhe2048": 2048,
    "ffdhe3072": 3072,
    "ffdhe4096": 4096,
}


def letter_for(score: float) -> str:
    """The letter for a total score (:data:`LETTERS`)."""
    for minimum, letter in LETTERS:
        if score >= minimum:
            return letter
    return "F"


def _bucket(value: int, table: Sequence[tuple[int, int]]) -> int:
    for bound, score in table:
        if value < bound:
            return score
    return table[-1][1]


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class Suite:
    """One cipher suite the server accepted (TLS 1.2 and older), as OpenSSL describes it."""

    name: str  # OpenSSL's name, e.g. ECDHE-ECDSA-AES128-GCM-SHA256
    iana: str  # the RFC name, e.g. TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    version: str  # the version it was accepted at
    kex: str  # "ECDHE", "DHE", "RSA" (static), "anon"
    auth: str  # "ECDSA", "RSA", "none"
    cipher: str  # "aes-128-gcm", "chacha20-poly1305", "aes-256-cbc", "des-ede3-cbc", "rc4" ...
    bits: int  # symmetric strength in bits (0 for NULL encryption)
    aead: bool  # authenticated encryption (GCM, CCM, ChaCha20-Poly1305): no CBC padding oracles

    @property
    def forward_secret(self) -> bool:
        """Ephemeral (EC)DH: recorded traffic stays safe if the server key leaks later."""
        return self.kex in ("ECDHE", "DHE")


@dataclass(frozen=True)
class KeyExchange:
    """A key exchange the server performed, read from the handshake bytes."""

    kind: str  # "ECDHE", "DHE", "RSA" (key transport) or "TLS 1.3 (EC)DHE"
    group: str  # "x25519", "secp256r1", "1024-bit finite-field group", ...
    bits: int  # size of the group (EC: curve bits; DH: prime bits; RSA: modulus)
    rsa_bits: int  # strength in RSA-equivalent bits (NIST SP 800-57)
    version: str  # the TLS version of that handshake
    suite: str  # the suite that was negotiated

    @property
    def forward_secret(self) -> bool:
        return self.kind != "RSA"


@dataclass(frozen=True)
class CertificateFacts:
    """What the scan read from the server's certificate (the leaf)."""

    cert: x509.Certificate
    key_type: str  # "RSA", "EC", "Ed25519", ...
    key_bits: int
    rsa_bits: int  # RSA-equivalent strength of the key
    signature_hash: str  # "sha256", "sha1", ... (the CA's signature on this certificate)
    subject: str

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertificateFacts:
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            kind, bits, equivalent = "RSA", key.key_size, key.key_size
        elif isinstance(key, ec.EllipticCurvePublicKey):
            kind, bits = "EC", key.curve.key_size
            equivalent = _EC_RSA_EQUIVALENT.get(key.curve.name, 3072 if bits >= 256 else 2048)
        elif isinstance(key, ed25519.Ed25519PublicKey):
            kind, bits, equivalent = "Ed25519", 256, 3072
        elif isinstance(key, ed448.Ed448PublicKey):
            kind, bits, equivalent = "Ed448", 456, 7680
        elif isinstance(key, dsa.DSAPublicKey):
            kind, bits, equivalent = "DSA", key.key_size, key.key_size
        else:  # pragma: no cover - other key types do not occur in TLS server certificates
            kind, bits, equivalent = type(key).__name__, 0, 0
        digest = cert.signature_hash_algorithm
        subject = cert.subject.rfc4514_string() or "(empty subject)"
        return cls(cert, kind, bits, equivalent, digest.name if digest else "none", subject)


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


@dataclass
class Scan:
    """Everything :func:`scan` learned about one server. Display it, or pass it to :func:`grade`."""

    target: str
    host: str
    port: int
    server_hostname: str | None
    versions: dict[str, bool] = field(default_factory=dict)
    version_errors: dict[str, str] = field(default_factory=dict)
    suites: list[Suite] = field(default_factory=list)
    suites_version: str | None = None
    suites_tried: int = 0
    tls13_suite: str | None = None
    tls13_bits: int | None = None
    key_exchanges: list[KeyExchange] = field(default_factory=list)
    certificate: CertificateFacts | None = None
    trust: Trust | None = None
    hsts: HSTS | None = None
    http_status: str | None = None
    handshakes: int = 0
    elapsed: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def accepted_versions(self) -> list[str]:
        """Accepted versions, oldest first (``"TLSv1.2"``, ``"TLSv1.3"``)."""
        return [v for v in VERSIONS if self.versions.get(v)]

    @property
    def forward_secrecy(self) -> bool:
        """Does any accepted way in use ephemeral (EC)DH? (TLS 1.3 always does.)"""
        return bool(self.versions.get("TLSv1.3")) or any(s.forward_secret for s in self.suites)

    def __repr__(self) -> str:
        return (
            f"<Scan {self.target}: {', '.join(self.accepted_versions) or 'no TLS'}, "
            f"{len(self.suites)} suites, {self.handshakes} handshakes in {self.elapsed:.2f} s>"
        )

    def _repr_html_(self) -> str:
        return _scan_html(self)


# --------------------------------------------------------------------------- handshakes


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


@dataclass
class _Hello:
    version: str | None = None
    cipher: tuple[str, str, int] | None = None
    cert: bytes | None = None
    error: str | None = None


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
            return _Hello(tls.version(), tls.cipher(), tls.getpeercert(binary_form=True))
    except (ssl.SSLError, OSError) as exc:
        return _Hello(error=_short_error(exc))


def _suite_of(info: dict[str, Any], version: str) -> Suite:
    from .handshake import CIPHER_SUITES

    kea = info.get("kea", "")
    auth = info.get("auth", "").removeprefix("auth-")
    kex = {"kx-ecdhe": "ECDHE", "kx-dhe": "DHE", "kx-rsa": "RSA"}.get(kea, kea)
    if auth == "null":
        kex = "anon"
    return Suite(
        name=info["name"],
        iana=CIPHER_SUITES.get(info["id"] & 0xFFFF, info["name"]),
        version=version,
        kex=kex,
        auth={"rsa": "RSA", "ecdsa": "ECDSA", "dss": "DSA", "null": "none"}.get(auth, auth),
        cipher=str(info.get("symmetric", "")),
        bits=int(info.get("strength_bits") or 0),
        aead=bool(info.get("aead")),
    )


def _candidates(version: str) -> list[dict[str, Any]]:
    """Every TLS 1.2-or-older suite the local OpenSSL can offer at ``version``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    out = []
    for info in ctx.get_ciphers():
        if info["protocol"] == "TLSv1.3" or info.get("kea") in _NO_CREDENTIALS:
            continue
        if version in ("TLSv1", "TLSv1.1") and info["protocol"] == "TLSv1.2":
            continue  # GCM, SHA-256 MACs... were defined for TLS 1.2 (RFC 5246) only
        out.append(info)
    return out


# --------------------------------------------------------------------------- the scan


def _is_local(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost" or host.endswith(".localhost")


def _resolve_target(
    target: str | tuple[str, int], server_hostname: str | None, cafile: str | None
) -> tuple[str, tuple[str, int], str | None, str | None]:
    """(label, address to connect to, SNI name, CA file) for a scenario, URL or host:port."""
    if isinstance(target, tuple):
        host, port = target[0], int(target[1])
        return f"{host}:{port}", (host, port), server_hostname or host, cafile
    text = str(target).strip()
    from .lab import SCENARIOS

    if text in SCENARIOS:
        from .lab import get_lab

        lab = get_lab()
        return (
            text,
            lab.address(text),
            server_hostname or lab.host(text),
            cafile or str(lab.ca_bundle),
        )
    parts = urlsplit(text if "//" in text else f"//{text}")
    if not parts.hostname:
        raise UsageError(
            f"{text!r} is neither a lab scenario, a URL nor host:port.",
            "Try scan('valid'), scan('https://valid.lab.localhost:PORT/') or scan(('127.0.0.1', 8443)).",
        )
    host = parts.hostname
    port = parts.port or 443
    return f"{host}:{port}", (host, port), server_hostname or host, cafile


def scan(
    target: str | tuple[str, int],
    *,
    server_hostname: str | None = None,
    cafile: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    workers: int = DEFAULT_WORKERS,
    http: bool = True,
    label: str | None = None,
) -> Scan:
    """Probe one server: versions, suites, key exchange, certificate, trust and HSTS.

    ``target`` is a lab scenario name (``"dh-1024"``; the lab starts if needed and its
    CA is trusted), a URL, ``"host:port"`` or ``(host, port)``. ``server_hostname`` is
    the name sent in SNI and checked on the certificate (default: the host). ``cafile``
    is what the trust check trusts (default: the system store; the lab CA for lab
    scenarios). ``timeout`` is per handshake, ``workers`` the handshakes in flight.
    ``http=False`` skips the ``GET /`` that reads the HSTS header. ``label`` names the
    server in displays (default: the scenario name or ``host:port``).

    Hosts other than loopback and ``*.localhost`` need live mode (:mod:`helpers.live`).
    """
    name, address, sni, ca = _resolve_target(target, server_hostname, cafile)
    if not _is_local(address[0]) and not live.enabled():
        live.require()
    sni_sent: str | None = sni
    if sni is not None:
        try:
            ipaddress.ip_address(sni.strip("[]"))
            sni_sent = None  # RFC 6066 §3: SNI carries host names, never addresses
        except ValueError:
            pass
    start = time.perf_counter()
    result = Scan(label or name, address[0], address[1], sni)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        hellos = dict(
            zip(
                VERSIONS,
                pool.map(
                    lambda v: _handshake(address, sni_sent, _probe_context(v), timeout), VERSIONS
                ),
                strict=True,
            )
        )
        result.handshakes += len(VERSIONS)
        for version, hello in hellos.items():
            result.versions[version] = hello.version is not None
            if hello.error:
                result.version_errors[version] = hello.error
        if not result.accepted_versions:
            result.elapsed = time.perf_counter() - start
            result.notes.append("No TLS version was accepted: the port may not speak TLS.")
            return result
        tls13 = hellos["TLSv1.3"]
        if tls13.cipher is not None:
            result.tls13_suite, result.tls13_bits = tls13.cipher[0], tls13.cipher[2]
        legacy = [v for v in VERSIONS[:-1] if result.versions[v]]
        if legacy:
            version = legacy[-1]
            candidates = _candidates(version)
            result.suites_version, result.suites_tried = version, len(candidates)
            outcomes = pool.map(
                lambda info: _handshake(
                    address, sni_sent, _probe_context(version, info["name"]), timeout
                ),
                candidates,
            )
            result.suites = [
                _suite_of(info, version)
                for info, hello in zip(candidates, outcomes, strict=True)
                if hello.version is not None
            ]
            result.handshakes += len(candidates)
        der = next((h.cert for h in hellos.values() if h.cert), None)
        if der:
            result.certificate = CertificateFacts.of(x509.load_der_x509_certificate(der))
        trust = pool.submit(_trust, address, sni, sni_sent, ca, timeout, http)
        result.key_exchanges = _key_exchanges(result, address, sni_sent, timeout)
        result.trust, result.hsts, result.http_status = trust.result()
        result.handshakes += 1
    result.elapsed = time.perf_counter() - start
    return result


def _key_exchanges(
    result: Scan, address: tuple[str, int], sni: str | None, timeout: float
) -> list[KeyExchange]:
    """Record one handshake per key-exchange family and decode what the server sent."""
    from .capture import Relay
    from .handshake import parse_server_key_exchange

    jobs: list[tuple[str, str, str]] = []  # (family, version, suite)
    for family in ("ECDHE", "DHE"):
        suite = next((s for s in result.suites if s.kex == family), None)
        if suite is not None:
            jobs.append((family, suite.version, suite.name))
    if result.versions.get("TLSv1.3"):
        jobs.append(("TLS 1.3", "TLSv1.3", "ALL"))
    found: list[KeyExchange] = []
    if jobs:
        with Relay(target=address, label="probe") as relay:
            for _family, version, suite_name in jobs:
                _handshake(relay.address, sni, _probe_context(version, suite_name), timeout)
            try:
                captures = relay.wait(len(jobs), timeout=timeout * 2)
            except TimeoutError:
                captures = list(relay.captures)
        result.handshakes += len(jobs)
        for (family, version, _), capture in zip(jobs, captures, strict=False):
            hello = capture.server_hello
            if hello is None:
                continue
            suite = hello.cipher_suite_name
            if family == "TLS 1.3":
                group = hello.selected_group or "?"
                bits = _group_bits(group)
                found.append(
                    KeyExchange(
                        "TLS 1.3 (EC)DHE",
                        group,
                        bits,
                        _EC_RSA_EQUIVALENT.get(group, bits),
                        version,
                        suite,
                    )
                )
                continue
            for event in capture.events(strict=False):
                for message in event.messages:
                    if message.msg_type != 12:  # server_key_exchange
                        continue
                    try:
                        ske = parse_server_key_exchange(
                            message.body,
                            key_exchange=family,
                            legacy=version in ("TLSv1", "TLSv1.1"),
                        )
                    except ParseError:
                        continue
                    if ske.group is not None:
                        group = ske.group_name
                        bits = _group_bits(group)
                        equivalent = _EC_RSA_EQUIVALENT.get(group, bits)
                    else:
                        bits = 8 * len((ske.dh_p or b"").lstrip(b"\x00"))
                        group, equivalent = f"{bits}-bit finite-field group", bits
                    found.append(KeyExchange(family, group, bits, equivalent, version, suite))
    static = next((s for s in result.suites if s.kex == "RSA"), None)
    if static is not None and result.certificate is not None:
        bits = result.certificate.key_bits
        found.append(KeyExchange("RSA", "key transport", bits, bits, static.version, static.iana))
    return found


def _group_bits(group: str) -> int:
    sizes = {"x25519": 255, "x448": 448, "secp256r1": 256, "secp384r1": 384, "secp521r1": 521}
    if group in sizes:
        return sizes[group]
    if group.startswith("ffdhe") and group[5:].isdigit():
        return int(group[5:])
    return 0


def _trust(
    address: tuple[str, int],
    sni: str | None,
    sni_sent: str | None,
    cafile: str | None,
    timeout: float,
    http: bool,
) -> tuple[Trust, HSTS | None, str | None]:
    """Verify chain and name; over the verified connection, read the HSTS header."""
    from .diagnose import explain

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


# --------------------------------------------------------------------------- the grade


@dataclass(frozen=True)
class Rule:
    """A rule that caps (or, for A+, raises) the grade when its test finds evidence."""

    id: str
    cap: str  # "T", "M", "F", "C", "B" or "A+"
    when: str  # the condition, in words
    why: str  # the attack or the reason
    source: str  # where the rule comes from
    test: Callable[[Scan], str | None] = field(repr=False, compare=False)


def _not_trusted(s: Scan) -> str | None:
    t = s.trust
    if t is not None and not t.ok and t.verify_code is not None and t.kind != "hostname-mismatch":
        return f"verification failed: {t.message} (code {t.verify_code})"
    return None


def _mismatch(s: Scan) -> str | None:
    t = s.trust
    if t is not None and t.kind == "hostname-mismatch":
        return f"{t.message} (code {t.verify_code})"
    return None


def _weak_cert_key(s: Scan) -> str | None:
    c = s.certificate
    if c is None:
        return None
    if (c.key_type in ("RSA", "DSA") and c.key_bits < 2048) or (
        c.key_type == "EC" and c.key_bits < 224
    ):
        return f"the certificate's key is {c.key_type} {c.key_bits} bits"
    return None


def _weak_signature(s: Scan) -> str | None:
    c = s.certificate
    if c is not None and c.signature_hash in ("sha1", "md5", "md2"):
        return f"the certificate is signed with {c.signature_hash.upper()}"
    return None


def _insecure_suites(s: Scan) -> str | None:
    bad = [x.name for x in s.suites if x.kex == "anon" or x.bits == 0]
    return f"accepts {', '.join(bad[:3])}" if bad else None


def _tiny_dh(s: Scan) -> str | None:
    small = [k for k in s.key_exchanges if k.kind == "DHE" and k.bits < 1024]
    return f"DHE with a {small[0].bits}-bit group" if small else None


def _no_tls12(s: Scan) -> str | None:
    if s.accepted_versions and not s.versions.get("TLSv1.2") and not s.versions.get("TLSv1.3"):
        return f"best version is {_PRETTY[s.accepted_versions[-1]]}"
    return None


def _rc4(s: Scan) -> str | None:
    bad = [x.name for x in s.suites if "rc4" in x.cipher.lower()]
    return f"accepts {', '.join(bad[:3])}" if bad else None


def _64bit_block(s: Scan) -> str | None:
    bad = [x.name for x in s.suites if "des" in x.cipher.lower() or "idea" in x.cipher.lower()]
    return f"accepts {', '.join(bad[:3])}" if bad else None


def _old_versions(s: Scan) -> str | None:
    old = [_PRETTY[v] for v in ("TLSv1", "TLSv1.1") if s.versions.get(v)]
    return f"accepts {' and '.join(old)}" if old else None


def _weak_dh(s: Scan) -> str | None:
    weak = [k for k in s.key_exchanges if k.kind == "DHE" and 1024 <= k.bits < 2048]
    return f"DHE with a {weak[0].bits}-bit group" if weak else None


def _no_forward_secrecy(s: Scan) -> str | None:
    if s.accepted_versions and not s.forward_secrecy:
        return "every accepted suite uses static RSA key transport"
    return None


def _hsts_long(s: Scan) -> str | None:
    if s.hsts is not None and s.hsts.max_age >= 15_768_000:
        return f"Strict-Transport-Security: {s.hsts.raw}"
    return None


#: Every rule, in the order they are checked. T and M replace the letter (the security
#: of the connection does not matter when an attacker can impersonate the server);
#: F, C and B cap it; A+ rewards an A with nothing capped.
RULES: tuple[Rule, ...] = (
    Rule(
        "not-trusted",
        "T",
        "the certificate chain does not verify (self-signed, unknown or untrusted root, expired...)",
        "an active attacker can present their own certificate (notebook 07)",
        "SSL Server Rating Guide: T grade",
        _not_trusted,
    ),
    Rule(
        "name-mismatch",
        "M",
        "the certificate does not name the host",
        "a certificate for another name proves nothing about this one (RFC 6125 §6)",
        "SSL Server Rating Guide: M grade",
        _mismatch,
    ),
    Rule(
        "weak-certificate-key",
        "F",
        "the certificate key is RSA/DSA < 2048 bits or EC < 224 bits",
        "RSA-1024 is within reach of factoring by a well-funded attacker (NIST SP 800-131A)",
        "this course (SSL Labs treats such certificates as not trusted)",
        _weak_cert_key,
    ),
    Rule(
        "sha1-signature",
        "F",
        "the certificate is signed with SHA-1 or MD5",
        "chosen-prefix collisions let an attacker forge a matching certificate (SHAttered 2017, Shambles 2020)",
        "this course (SSL Labs: not trusted, since browsers dropped SHA-1 in 2017)",
        _weak_signature,
    ),
    Rule(
        "anonymous-or-null",
        "F",
        "accepts anonymous (no authentication) or NULL (no encryption) suites",
        "anonymous suites invite a man in the middle; NULL sends plaintext",
        "SSL Server Rating Guide: zero scores",
        _insecure_suites,
    ),
    Rule(
        "tiny-dh",
        "F",
        "DHE with a group smaller than 1024 bits",
        "Logjam (2015): 512-bit export-grade groups fall in minutes",
        "SSL Labs 1.17 (May 2015)",
        _tiny_dh,
    ),
    Rule(
        "no-tls12",
        "C",
        "neither TLS 1.2 nor TLS 1.3 is supported",
        "only TLS 1.2+ offers AEAD suites; older versions rely on CBC constructions with known attacks",
        "SSL Labs, May 2015",
        _no_tls12,
    ),
    Rule(
        "rc4",
        "C",
        "accepts RC4 suites",
        "RC4 keystream biases recover plaintext; RFC 7465 (2015) prohibits RC4 in TLS",
        "SSL Labs, May 2015",
        _rc4,
    ),
    Rule(
        "64-bit-block",
        "C",
        "accepts 3DES or another 64-bit block cipher",
        "Sweet32 (2016): birthday collisions on 64-bit blocks after ~32 GB of traffic",
        "SSL Labs, 2017",
        _64bit_block,
    ),
    Rule(
        "tls-1.0-1.1",
        "B",
        "accepts TLS 1.0 or TLS 1.1",
        "deprecated by RFC 8996 (2021): SHA-1/MD5 in the handshake, CBC attacks (BEAST, POODLE-TLS)",
        "SSL Labs, January 2020",
        _old_versions,
    ),
    Rule(
        "weak-dh",
        "B",
        "DHE with a group smaller than 2048 bits",
        "Logjam (2015): a 1024-bit group is within reach of nation-state precomputation",
        "SSL Labs, after Logjam (2015)",
        _weak_dh,
    ),
    Rule(
        "no-forward-secrecy",
        "B",
        "no accepted suite uses ephemeral (EC)DH and TLS 1.3 is not supported",
        "with static RSA, whoever later steals the server key decrypts every recorded session",
        "SSL Labs, 2018 (judged there with browser handshake simulations)",
        _no_forward_secrecy,
    ),
    Rule(
        "hsts",
        "A+",
        "grade A, nothing capped, and HSTS with max-age >= 6 months (15,768,000 s)",
        "HSTS stops SSL-stripping: the browser never tries http:// again (RFC 6797 §2.3)",
        "SSL Labs A+ criteria",
        _hsts_long,
    ),
)

_ORDER = ["F", "E", "D", "C", "B", "A", "A+"]


def rules_table() -> Table:
    """Every rule of :data:`RULES` as a table, for reading in a notebook."""
    return Table(
        [
            {"rule": r.id, "grade": r.cap, "when": r.when, "why": r.why, "source": r.source}
            for r in RULES
        ],
        title="Grade rules (helpers.probe.RULES), checked top to bottom",
    )


@dataclass
class Grade:
    """A letter and how it was reached (see :func:`grade`)."""

    target: str
    letter: str  # final: A+, A-F, T or M
    score: float  # weighted total, 0-100
    numeric_letter: str  # the letter the score alone gives
    capped_letter: str  # after F/C/B caps, before T/M/A+
    protocol: int
    key_exchange: int
    cipher: int
    applied: list[tuple[Rule, str]]  # (rule, evidence) for every rule that fired
    explain: dict[str, str]  # category -> how its score was computed

    @property
    def caps(self) -> list[str]:
        """The cap letters of the rules that fired (``["B", "C"]``), without T/M/A+."""
        return [r.cap for r, _ in self.applied if r.cap in ("F", "C", "B")]

    def __repr__(self) -> str:
        fired = ", ".join(r.id for r, _ in self.applied) or "none"
        return f"<Grade {self.letter} for {self.target}: score {self.score:.1f}, rules: {fired}>"

    def _repr_html_(self) -> str:
        return _grade_html(self)


def _weighted(protocol: int, key_exchange: int, cipher: int) -> float:
    if 0 in (protocol, key_exchange, cipher):
        return 0.0  # the guide: a zero in any category makes the whole score zero
    return (
        WEIGHTS["protocol"] * protocol
        + WEIGHTS["key_exchange"] * key_exchange
        + WEIGHTS["cipher"] * cipher
    )


def grade(result: Scan) -> Grade:
    """Grade a :class:`Scan` with the tables and :data:`RULES` of this module."""
    versions = result.accepted_versions
    if not versions:
        raise ConnectionProblem(
            f"{result.target} accepted no TLS version, so there is nothing to grade.",
            "Check the host and port, and that the server speaks TLS.",
        )
    scores = [PROTOCOL_SCORES[v] for v in versions]
    protocol = round((max(scores) + min(scores)) / 2)
    explain = {
        "protocol": f"best {_PRETTY[versions[-1]]} = {max(scores)}, worst {_PRETTY[versions[0]]} = "
        f"{min(scores)}: ({max(scores)} + {min(scores)}) / 2 = {protocol}"
    }
    strengths: list[tuple[int, str]] = []
    if result.certificate is not None:
        c = result.certificate
        strengths.append(
            (c.rsa_bits, f"certificate {c.key_type} {c.key_bits} (≈ RSA {c.rsa_bits})")
        )
    for k in result.key_exchanges:
        if k.kind != "RSA":
            strengths.append((k.rsa_bits, f"{k.kind} {k.group} (≈ RSA {k.rsa_bits})"))
    if any(s.kex == "anon" for s in result.suites):
        key_exchange = 0
        explain["key_exchange"] = "anonymous key exchange accepted: 0"
    elif strengths:
        weakest = min(strengths)
        key_exchange = _bucket(weakest[0], KEY_EXCHANGE_SCORES)
        explain["key_exchange"] = f"weakest: {weakest[1]} → {key_exchange}"
    else:
        key_exchange = 0
        explain["key_exchange"] = "no key exchange could be observed: 0"
    bits = [s.bits for s in result.suites]
    if result.tls13_bits is not None:
        bits.append(result.tls13_bits)
    if bits:
        strong, weak = _bucket(max(bits), CIPHER_SCORES), _bucket(min(bits), CIPHER_SCORES)
        cipher = round((strong + weak) / 2)
        explain["cipher"] = (
            f"strongest {max(bits)} bits = {strong}, weakest {min(bits)} bits = {weak}: "
            f"({strong} + {weak}) / 2 = {cipher}"
        )
    else:
        cipher = 0
        explain["cipher"] = "no cipher suite observed: 0"
    score = _weighted(protocol, key_exchange, cipher)
    numeric = letter_for(score)
    applied = [(rule, evidence) for rule in RULES if (evidence := rule.test(result)) is not None]
    capped = numeric
    for rule, _ in applied:
        if rule.cap in ("F", "C", "B") and _ORDER.index(rule.cap) < _ORDER.index(capped):
            capped = rule.cap
    letter = capped
    if any(r.cap == "A+" for r, _ in applied):
        if capped == "A" and not any(r.cap in ("F", "C", "B") for r, _ in applied):
            letter = "A+"
        else:
            applied = [(r, e) for r, e in applied if r.cap != "A+"]
    for special in ("M", "T"):  # T wins over M: an untrusted chain says nothing about names
        if any(r.cap == special for r, _ in applied):
            letter = special
    return Grade(
        result.target,
        letter,
        score,
        numeric,
        capped,
        protocol,
        key_exchange,
        cipher,
        applied,
        explain,
    )


# --------------------------------------------------------------------------- display

_FG, _MUTED, _BG, _BORDER, _TRACK = "#1f2328", "#57606a", "#f6f8fa", "#d0d7de", "#e3e6ea"
_LETTER_COLOURS = {
    "A+": "#1a7f37",
    "A": "#1a7f37",
    "B": "#9a6700",
    "C": "#bc4c00",
    "D": "#cf222e",
    "E": "#cf222e",
    "F": "#a40e26",
    "T": "#6e40c9",
    "M": "#6e40c9",
}
_FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:13px;"


def _table(
    headers: Iterable[str], rows: Iterable[Iterable[str]], highlight: Iterable[bool] = ()
) -> str:
    cell = f"padding:2px 8px;border-bottom:1px solid {_BORDER};text-align:left;vertical-align:top;"
    head = "".join(f'<th style="{cell}background:{_TRACK};color:{_FG}">{h}</th>' for h in headers)
    marks = list(highlight)
    body = []
    for i, row in enumerate(rows):
        bg = "#fff1e5" if i < len(marks) and marks[i] else _BG
        body.append(
            "<tr>"
            + "".join(f'<td style="{cell}background:{bg};color:{_FG}">{v}</td>' for v in row)
            + "</tr>"
        )
    return (
        f'<table style="border-collapse:collapse;margin:4px 0;{_FONT}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _scan_html(s: Scan) -> str:
    e = html.escape
    yes, no = (
        f'<b style="color:{_LETTER_COLOURS["A"]}">yes</b>',
        f'<span style="color:{_MUTED}">no</span>',
    )
    version_rows = []
    for v in VERSIONS:
        accepted = s.versions.get(v)
        detail = ""
        if not accepted:
            detail = e(s.version_errors.get(v, ""))
        elif v == "TLSv1.3":
            detail = f"negotiated {e(s.tls13_suite or '?')}"
        version_rows.append([_PRETTY[v], yes if accepted else no, detail])
    parts = [
        f'<div style="{_FONT}color:{_FG};background:{_BG};border:1px solid {_BORDER};padding:8px 12px;margin:4px 0">',
        f'<div style="font-weight:600;font-size:14px">Scan of {e(s.target)}'
        f' <span style="font-weight:400;color:{_MUTED}">({s.handshakes} handshakes, {s.elapsed:.2f} s)</span></div>',
        _table(["version", "accepted", "detail"], version_rows),
    ]
    if s.suites_version:
        suite_rows = [
            [
                f"<code>{e(x.iana)}</code>",
                e(x.kex),
                yes if x.forward_secret else f'<b style="color:{_LETTER_COLOURS["C"]}">no</b>',
                e(x.cipher),
                str(x.bits),
                "AEAD" if x.aead else "CBC/stream",
            ]
            for x in s.suites
        ]
        parts.append(
            f"<div>Cipher suites accepted at {_PRETTY[s.suites_version]}: {len(s.suites)} of "
            f"{s.suites_tried} tried, one handshake each.</div>"
        )
        parts.append(
            _table(
                ["suite (RFC name)", "key exchange", "forward secrecy", "cipher", "bits", "mode"],
                suite_rows,
                [not x.forward_secret or not x.aead for x in s.suites],
            )
        )
    if s.key_exchanges:
        parts.append("<div>Key exchange, read from the handshake bytes:</div>")
        parts.append(
            _table(
                ["kind", "group", "size", "≈ RSA bits", "seen with"],
                [
                    [
                        e(k.kind),
                        e(k.group),
                        f"{k.bits} bits",
                        str(k.rsa_bits),
                        f"{_PRETTY[k.version]}, {e(k.suite)}",
                    ]
                    for k in s.key_exchanges
                ],
                [k.rsa_bits < 2048 or not k.forward_secret for k in s.key_exchanges],
            )
        )
    facts = []
    if s.certificate is not None:
        c = s.certificate
        facts.append(
            f"certificate: <code>{e(c.subject)}</code>, {e(c.key_type)} {c.key_bits} bits, signed with {e(c.signature_hash)}"
        )
    if s.trust is not None:
        t = s.trust
        verdict = "trusted, name matches" if t.ok else f"{e(t.kind)}: {e(t.message)}"
        facts.append(f"trust check (verifying handshake): {verdict}")
    if s.hsts is not None:
        facts.append(
            f"HSTS: max-age {s.hsts.max_age} s ({s.hsts.days:.0f} days)"
            f"{', includeSubDomains' if s.hsts.include_subdomains else ''}"
            f"{', preload' if s.hsts.preload else ''}"
        )
    elif s.trust is not None and s.trust.ok:
        facts.append("HSTS: no Strict-Transport-Security header")
    facts += [e(n) for n in s.notes]
    parts.append("<br>".join(facts))
    parts.append("</div>")
    return "".join(parts)


def _bar(score: int, weight: float) -> str:
    return (
        f'<div style="display:inline-block;width:160px;height:10px;background:{_TRACK};'
        f'vertical-align:middle;border-radius:3px"><div style="width:{score}%;height:10px;'
        f'background:#0072B2;border-radius:3px"></div></div>'
        f" <b>{score}</b> × {weight:.1f}"
    )


def _grade_html(g: Grade) -> str:
    e = html.escape
    colour = _LETTER_COLOURS.get(g.letter, _FG)
    badge = (
        f'<div style="min-width:64px;height:64px;border-radius:8px;background:{colour};color:#ffffff;'
        f'font-size:34px;font-weight:700;display:flex;align-items:center;justify-content:center;padding:0 6px">{e(g.letter)}</div>'
    )
    rows = [
        ["protocol", _bar(g.protocol, WEIGHTS["protocol"]), e(g.explain["protocol"])],
        [
            "key exchange",
            _bar(g.key_exchange, WEIGHTS["key_exchange"]),
            e(g.explain["key_exchange"]),
        ],
        ["cipher strength", _bar(g.cipher, WEIGHTS["cipher"]), e(g.explain["cipher"])],
    ]
    if 0 in (g.protocol, g.key_exchange, g.cipher):
        formula = "a category scored 0, so the score is 0"
    else:
        formula = (
            f"{WEIGHTS['protocol']}×{g.protocol} + {WEIGHTS['key_exchange']}×{g.key_exchange}"
            f" + {WEIGHTS['cipher']}×{g.cipher} = {g.score:.1f}"
        )
    steps = [f"{formula} → {g.numeric_letter}"]
    for rule, _ in g.applied:
        steps.append(f"{rule.id} → {rule.cap}")
    steps.append(f"final <b>{e(g.letter)}</b>")
    if g.letter in ("T", "M"):
        steps.append(f"({e(g.capped_letter)} if the certificate problem were fixed)")
    fired = {r.id: ev for r, ev in g.applied}
    rule_rows = [
        [
            f"<code>{e(r.id)}</code>",
            f"<b>{e(r.cap)}</b>",
            e(r.when),
            f'<b style="color:{_LETTER_COLOURS["C"]}">{e(fired[r.id])}</b>'
            if r.id in fired
            else "—",
        ]
        for r in RULES
    ]
    return (
        f'<div style="{_FONT}color:{_FG};background:{_BG};border:1px solid {_BORDER};'
        f'border-left:5px solid {colour};padding:8px 12px;margin:4px 0">'
        f'<div style="display:flex;gap:12px;align-items:center">{badge}<div>'
        f'<div style="font-weight:600;font-size:14px">{e(g.target)}</div>'
        f"{_table(['category', 'score × weight', 'how'], rows)}"
        f'<div style="color:{_MUTED}">{" · ".join(steps)}</div></div></div>'
        f"<details><summary>every rule (fired rules show their evidence)</summary>"
        f"{_table(['rule', 'grade', 'when', 'evidence here'], rule_rows, [r.id in fired for r in RULES])}"
        f"</details></div>"
    )
