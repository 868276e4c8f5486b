"""The key exchange, read off the wire from recorded handshakes (introduced in notebook 08).

Before Python 3.15, Python does not say which (EC)DH group a handshake used:
``SSLSocket.cipher()`` names the suite, not the curve or the size of the prime. So the
scan reads it from the handshake bytes. It makes one handshake per key-exchange family
the server accepted (ECDHE, DHE, and TLS 1.3) through a recording
:class:`helpers.capture.Relay`, and :mod:`helpers.handshake` decodes what the server sent:

* **TLS 1.2 and older**: the ServerKeyExchange message carries the curve (ECDHE) or
  the DH parameters, whose prime ``dh_p`` gives the group's size (DHE). TLS 1.0 and
  1.1 lay it out without a signature algorithm, hence ``legacy=``.
* **TLS 1.3**: the ServerHello's key_share extension names the group. On Python >= 3.15
  ``SSLSocket.group()`` says it directly, and the scan uses that instead (``source``).

On OpenSSL >= 3.5 the TLS 1.3 group is usually the hybrid **X25519MLKEM768** (x25519
plus ML-KEM-768, FIPS 203): the client sends that share first and servers pick it. Its
strength is rated by its classical part (``keys._group_strength`` says why).

Static RSA key transport has no group: its strength is the certificate's RSA key, and
it is listed with ``forward_secret`` False. Every :class:`KeyExchange` carries its size
in RSA-equivalent bits (see ``keys``), which is what the grade compares, and the
server's public share itself: a server that sends the *same* share twice reuses its
"ephemeral" key, which you can see from outside (:func:`server_key_shares`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import names
from ..errors import ParseError
from .attempts import DEFAULT_TIMEOUT, _handshake, _probe_context
from .keys import _group_bits, _group_strength, _post_quantum_part

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from .result import Scan

__all__ = ["KeyExchange", "server_key_shares"]


@dataclass(frozen=True)
class KeyExchange:
    """A key exchange the server performed, read from the handshake bytes."""

    kind: str  # "ECDHE", "DHE", "RSA" (key transport) or "TLS 1.3 (EC)DHE"
    group: str  # "x25519", "secp256r1", "1024-bit finite-field group", ...
    bits: int  # size of the group (EC: curve bits; DH: prime bits; RSA: modulus)
    rsa_bits: int  # strength in RSA-equivalent bits (NIST SP 800-57)
    version: str  # the TLS version of that handshake
    suite: str  # the suite that was negotiated
    public: bytes = field(default=b"", repr=False)  # the server's share, as sent
    source: str = "wire"  # "wire" (decoded bytes) or "SSLSocket.group()" (Python >= 3.15)

    @property
    def forward_secret(self) -> bool:
        return self.kind != "RSA"

    @property
    def post_quantum(self) -> str | None:
        """The ML-KEM part of a hybrid or post-quantum group (``"ML-KEM-768"``), else None."""
        return _post_quantum_part(self.group)


def _tls13(group: str, version: str, suite: str, public: bytes, source: str) -> KeyExchange:
    return KeyExchange(
        "TLS 1.3 (EC)DHE",
        group,
        _group_bits(group),
        _group_strength(group),
        version,
        suite,
        public,
        source,
    )


def _key_exchanges(
    result: Scan, address: tuple[str, int], sni: str | None, timeout: float
) -> list[KeyExchange]:
    """Record one handshake per key-exchange family and decode what the server sent."""
    from ..capture import Relay
    from ..handshake import parse_server_key_exchange

    jobs: list[tuple[str, str, str]] = []  # (family, version, suite)
    for family in ("ECDHE", "DHE"):
        suite = next((s for s in result.suites if s.kex == family), None)
        if suite is not None:
            jobs.append((family, suite.version, suite.name))
    found: list[KeyExchange] = []
    if result.tls13_group is not None:  # Python >= 3.15 said it: SSLSocket.group()
        found.append(
            _tls13(
                result.tls13_group, "TLSv1.3", result.tls13_suite or "?", b"", "SSLSocket.group()"
            )
        )
    elif result.versions.get("TLSv1.3"):
        jobs.append(("TLS 1.3", "TLSv1.3", "ALL"))
    if jobs:
        # The target is the caller's own choice (scan() already asked for live mode for
        # a real host), so the fenced Relay may forward to it: allow_remote=True, and the
        # Relay still calls helpers.live.require() itself for anything that is not local.
        with Relay(target=address, label="probe", allow_remote=True) as relay:
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
                share = hello.key_share
                group = hello.selected_group or "?"
                public = share.key_exchange if share is not None else b""
                found.append(_tls13(group, version, suite, public, "wire"))
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
                        bits, equivalent = _group_bits(group), _group_strength(group)
                    else:
                        bits = 8 * len((ske.dh_p or b"").lstrip(b"\x00"))
                        group, equivalent = f"{bits}-bit finite-field group", bits
                    found.append(
                        KeyExchange(family, group, bits, equivalent, version, suite, ske.public)
                    )
    static = next((s for s in result.suites if s.kex == "RSA"), None)
    if static is not None and result.certificate is not None:
        bits = result.certificate.key_bits
        found.append(KeyExchange("RSA", "key transport", bits, bits, static.version, static.iana))
    return found


def server_key_shares(
    target: str | tuple[str, int],
    count: int = 2,
    *,
    version: str = "TLSv1.3",
    server_hostname: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[KeyExchange]:
    """Record ``count`` handshakes and return the server's key share of each.

    "Ephemeral" (EC)DH means a fresh key pair per handshake; that is what makes the key
    exchange forward secret. A server that reuses its (EC)DH key for many connections
    (some TLS terminators did, for speed) weakens that: whoever steals the key from the
    server's memory decrypts every recorded session made with it. This is visible from
    outside: two handshakes, two ``public`` values, equal means reused. ``version``
    picks TLS 1.3 (key_share in the ServerHello) or TLS 1.2 (ServerKeyExchange).
    ``target`` is a lab scenario name, ``"host:port"``, a URL or ``(host, port)``.
    """
    from ..capture import Relay
    from ..handshake import parse_server_key_exchange
    from .scanner import _is_local, _resolve_target

    _, address, sni, _ = _resolve_target(target, server_hostname, None)
    names.refuse_unserved(address[0])  # a lab name no lab serves never reaches DNS
    if not _is_local(address[0]):
        from .. import live

        live.require()
    shares: list[KeyExchange] = []
    # The caller chose the target; live mode alone decides for a real host (see above).
    with Relay(target=address, label="key shares", allow_remote=True) as relay:
        for _ in range(count):
            _handshake(relay.address, sni, _probe_context(version), timeout)
        captures = relay.wait(count, timeout=timeout * 2)
    for capture in captures:
        hello = capture.server_hello
        if hello is None:
            continue
        suite = hello.cipher_suite_name
        if version == "TLSv1.3":
            share = hello.key_share
            group = hello.selected_group or "?"
            public = share.key_exchange if share is not None else b""
            shares.append(_tls13(group, version, suite, public, "wire"))
            continue
        family = "DHE" if "_DHE_" in suite else "ECDHE"
        for event in capture.events(strict=False):
            for message in event.messages:
                if message.msg_type == 12:  # server_key_exchange
                    ske = parse_server_key_exchange(message.body, key_exchange=family)
                    group = ske.group_name
                    shares.append(
                        KeyExchange(
                            family,
                            group,
                            _group_bits(group),
                            _group_strength(group),
                            version,
                            suite,
                            ske.public,
                        )
                    )
    return shares
