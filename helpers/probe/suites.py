"""Cipher suites: which ones a scan offers, and what an accepted one tells (introduced in notebook 08).

For TLS 1.2 and older a scan makes one handshake per suite, offering that suite *alone*
(``set_ciphers(name)``), at the highest version below 1.3 the server accepts. Accepted
means the server picked it. The candidates (:func:`_candidates`) are every suite the
local OpenSSL knows (``ctx.get_ciphers()``) except PSK and SRP suites, which need a
shared secret the probe does not have. The handshakes run in a small thread pool: they
are mostly waiting, so 8 at a time cost about as much as one.

Before Python 3.15, TLS 1.3 suites cannot be chosen from Python (``set_ciphers`` only
affects TLS 1.2 and older; ``SSLContext.set_ciphersuites`` arrived in 3.15), so for TLS
1.3 the scan reports the suite the server *negotiated*. All five TLS 1.3 suites are AEAD
(RFC 8446 §B.4), and their key exchange is always ephemeral, since TLS 1.3 has no static
RSA (§1.2): forward secrecy comes from the key exchange, not from the suite.

A :class:`Suite` keeps what OpenSSL says about an accepted suite: its key exchange
(forward secret or not), its authentication, its cipher and strength, and whether it is
AEAD.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

__all__ = ["Suite"]

_NO_CREDENTIALS = ("kx-psk", "kx-rsa-psk", "kx-dhe-psk", "kx-ecdhe-psk", "kx-srp")


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


def _suite_of(info: dict[str, Any], version: str) -> Suite:
    from ..handshake import CIPHER_SUITES

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
