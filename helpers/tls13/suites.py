"""The three TLS 1.3 cipher suites (introduced in notebook 06).

A TLS 1.3 cipher suite names only two things: the AEAD that protects the records and
the hash that HKDF and the transcript use. Key exchange and signature algorithm are
negotiated separately (the key_share and signature_algorithms extensions). RFC 8446
§B.4 registers five::

              +------------------------------+-------------+
              | Description                  | Value       |
              +------------------------------+-------------+
              | TLS_AES_128_GCM_SHA256       | {0x13,0x01} |
              | TLS_AES_256_GCM_SHA384       | {0x13,0x02} |
              | TLS_CHACHA20_POLY1305_SHA256 | {0x13,0x03} |
              | TLS_AES_128_CCM_SHA256       | {0x13,0x04} |
              | TLS_AES_128_CCM_8_SHA256     | {0x13,0x05} |
              +------------------------------+-------------+

:data:`SUITES` holds the first three, the ones OpenSSL (and so Python) enables by
default. Every other file of this package takes a :class:`CipherSuite` as its first
argument: it says how long the keys are, which AEAD to call and which hash to use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ..errors import DecryptError

AEAD = AESGCM | ChaCha20Poly1305


@dataclass(frozen=True)
class CipherSuite:
    """One TLS 1.3 cipher suite: an AEAD and the hash used by HKDF and the transcript."""

    code: int
    name: str
    hash_name: str  # a hashlib name, "sha256" or "sha384"
    key_length: int
    aead: Callable[[bytes], AEAD]
    iv_length: int = 12  # §5.3: iv_length = max(8 bytes, N_MIN) = 12 for all three
    tag_length: int = 16

    @property
    def hash(self) -> hashes.HashAlgorithm:
        return hashes.SHA384() if self.hash_name == "sha384" else hashes.SHA256()

    @property
    def hash_length(self) -> int:
        return self.hash.digest_size

    def digest(self, data: bytes) -> bytes:
        """Transcript-Hash: the suite's hash over ``data``."""
        return hashlib.new(self.hash_name, data).digest()


SUITES: dict[int, CipherSuite] = {
    0x1301: CipherSuite(0x1301, "TLS_AES_128_GCM_SHA256", "sha256", 16, AESGCM),
    0x1302: CipherSuite(0x1302, "TLS_AES_256_GCM_SHA384", "sha384", 32, AESGCM),
    0x1303: CipherSuite(0x1303, "TLS_CHACHA20_POLY1305_SHA256", "sha256", 32, ChaCha20Poly1305),
}


def suite_named(name_or_code: str | int) -> CipherSuite:
    """Look a suite up by IANA name (``"TLS_AES_128_GCM_SHA256"``) or code (``0x1301``)."""
    for suite in SUITES.values():
        if name_or_code in (suite.name, suite.code):
            return suite
    raise DecryptError(
        f"{name_or_code!r} is not a TLS 1.3 cipher suite this module knows.",
        "Use one of " + ", ".join(s.name for s in SUITES.values()) + ".",
    )
