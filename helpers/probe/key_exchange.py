"""The key exchange, read off the wire from recorded handshakes (introduced in notebook 08).

Python does not say which (EC)DH group a handshake used: ``SSLSocket.cipher()`` names
the suite, not the curve or the size of the prime. So the scan reads it from the
handshake bytes. It makes one handshake per key-exchange family the server accepted
(ECDHE, DHE, and TLS 1.3) through a recording :class:`helpers.capture.Relay`, and
:mod:`helpers.handshake` decodes what the server sent:

* **TLS 1.2 and older**: the ServerKeyExchange message carries the curve (ECDHE) or
  the DH parameters, whose prime ``dh_p`` gives the group's size (DHE). TLS 1.0 and
  1.1 lay it out without a signature algorithm, hence ``legacy=``.
* **TLS 1.3**: the ServerHello's key_share extension names the group.

Static RSA key transport has no group: its strength is the certificate's RSA key, and
it is listed with ``forward_secret`` False. Every :class:`KeyExchange` carries its size
in RSA-equivalent bits (see ``keys``), which is what the grade compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ParseError
from .attempts import _handshake, _probe_context
from .keys import _EC_RSA_EQUIVALENT, _group_bits

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from .result import Scan

__all__ = ["KeyExchange"]


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
