"""A ready-made tamper hook for the relay: :func:`flip_record_byte` (introduced in notebook 01).

A :class:`~helpers.capture.Relay` accepts ``tamper(direction, data, index) -> bytes``,
called on every chunk before it is forwarded. :func:`flip_record_byte` builds one that
flips a single bit in a single TLS record. A chunk is not a record (TCP may deliver
half a record or several), so the hook keeps every byte of its direction and follows the
record framing itself: each record is a five-byte header (content type, version, a
two-byte length) and then ``length`` bytes of payload (RFC 8446 §5.1).

Flip a bit in an encrypted record and the receiver's AEAD check fails: it sends a
``bad_record_mac`` alert and the connection dies (RFC 8446 §5.2). TLS detects tampering;
it does not repair it. What Python raises on the receiving side depends on OpenSSL:
``[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC]`` on 3.0, ``[SSL: RECORD_LAYER_FAILURE]``
from 3.2 on (the new record layer wraps the precise reason, and Python shows only the
last error). The sender reads the alert: ``SSLV3_ALERT_BAD_RECORD_MAC`` on both.
:func:`helpers.diagnose.explain` calls all of them ``bad-record-mac``.
"""

from __future__ import annotations

from collections.abc import Callable

from .chunks import Direction

__all__ = ["flip_record_byte"]


def flip_record_byte(
    direction: Direction = "s2c", content_type: int = 23, occurrence: int = 0, position: int = -1
) -> Callable[[str, bytes, int], bytes]:
    """A tamper hook for :class:`Relay` that flips one bit of one TLS record.

    It follows the record framing of ``direction`` and XORs ``0x01`` into byte
    ``position`` of the payload of the ``occurrence``-th record of ``content_type``
    (default: the last byte, part of the AEAD tag, of the first application_data record
    the server sends). The receiver's decryption fails: ``bad_record_mac``.
    """
    stream = bytearray()
    done = False

    def hook(chunk_direction: str, data: bytes, index: int) -> bytes:
        nonlocal done
        if chunk_direction != direction or done:
            return data
        start = len(stream)
        stream.extend(data)
        offset, seen = 0, 0
        while offset + 5 <= len(stream):
            ctype = stream[offset]
            length = int.from_bytes(stream[offset + 3 : offset + 5], "big")
            if ctype == content_type:
                if seen == occurrence:
                    if length == 0:
                        return data
                    target = offset + 5 + (position % length)
                    if start <= target < len(stream):
                        out = bytearray(data)
                        out[target - start] ^= 0x01
                        done = True
                        return bytes(out)
                    return data
                seen += 1
            offset += 5 + length
        return data

    return hook
