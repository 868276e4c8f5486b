"""Traffic keys: from a traffic secret to a write key and IV (introduced in notebook 06).

A traffic secret is never used as a key itself. RFC 8446 §7.3 derives from it the two
values the AEAD needs::

    [sender]_write_key = HKDF-Expand-Label(Secret, "key", "", key_length)
    [sender]_write_iv  = HKDF-Expand-Label(Secret, "iv", "", iv_length)

Each side switches keys twice during the handshake (to its handshake traffic secret
after the hellos, to its application traffic secret after its Finished), and may
switch again at any time afterwards by sending a KeyUpdate: the next application
traffic secret is derived from the current one (§7.2), so an old key never helps
with the new traffic. :func:`decode_key_update` reads that one-byte message, which
:mod:`helpers.handshake` leaves alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ParseError
from .schedule import hkdf_expand_label
from .suites import CipherSuite


@dataclass(frozen=True)
class TrafficKeys:
    """The write key and IV derived from one traffic secret (RFC 8446 §7.3)."""

    secret: bytes
    key: bytes
    iv: bytes


def traffic_keys(suite: CipherSuite, secret: bytes) -> TrafficKeys:
    """[sender]_write_key / _write_iv = HKDF-Expand-Label(Secret, "key" / "iv", "", length)."""
    return TrafficKeys(
        secret=secret,
        key=hkdf_expand_label(suite, secret, "key", b"", suite.key_length),
        iv=hkdf_expand_label(suite, secret, "iv", b"", suite.iv_length),
    )


def next_traffic_secret(suite: CipherSuite, secret: bytes) -> bytes:
    """After a KeyUpdate (§7.2): application_traffic_secret_N+1 =
    HKDF-Expand-Label(application_traffic_secret_N, "traffic upd", "", Hash.length)."""
    return hkdf_expand_label(suite, secret, "traffic upd", b"", suite.hash_length)


# RFC 8446 §4.6.3 (Key and Initialization Vector Update):
#
#     enum {
#         update_not_requested(0), update_requested(1), (255)
#     } KeyUpdateRequest;
#
#     struct {
#         KeyUpdateRequest request_update;
#     } KeyUpdate;


def decode_key_update(body: bytes) -> dict[str, bool]:
    """The one message :mod:`helpers.handshake` does not decode: KeyUpdate."""
    if len(body) != 1 or body[0] > 1:
        raise ParseError(
            f"Expected a one-byte KeyUpdate (0 or 1) but found {body.hex() or 'nothing'}",
            "The peer sent a malformed KeyUpdate.",
        )
    return {"update_requested": body[0] == 1}
