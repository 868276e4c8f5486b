"""Record protection: open and seal one TLS 1.3 record (introduced in notebook 06).

Every protected record looks like application data from the outside (RFC 8446 §5.2)::

    struct {
        ContentType opaque_type = application_data; /* 23 */
        ProtocolVersion legacy_record_version = 0x0303; /* TLS v1.2 */
        uint16 length;
        opaque encrypted_record[TLSCiphertext.length];
    } TLSCiphertext;

The real content type travels *inside* the encryption, followed by optional zero
padding that hides the true length::

    struct {
        opaque content[TLSPlaintext.length];
        ContentType type;
        uint8 zeros[length_of_padding];
    } TLSInnerPlaintext;

The AEAD (AES-GCM or ChaCha20-Poly1305) authenticates the 5-byte record header as
*additional data*, so nobody can change the header either. Its nonce is never sent
(§5.3): each side counts its records from 0 (the counter restarts at every key
change), pads the 64-bit sequence number on the left to the IV length and XORs it with
the IV. A record cannot be dropped, replayed or reordered without the tag check of
the records *after* it failing: the receiver's counter and the sender's no longer agree.
Dropping the *last* records is another matter: nothing follows them whose tag could
fail. That truncation is caught by ``close_notify`` (RFC 8446 §6.1): a sender ends its
data with that alert, so a stream that stops without one was cut (notebook 05).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag

from ..errors import DecryptError
from .suites import CipherSuite
from .traffic import TrafficKeys


def record_nonce(iv: bytes, sequence: int) -> bytes:
    """The per-record nonce (§5.3): the 64-bit sequence number, left-padded with zeros
    to the IV length, XORed with the static write IV."""
    padded = sequence.to_bytes(len(iv), "big")
    return bytes(a ^ b for a, b in zip(padded, iv, strict=True))


def parse_inner_plaintext(plaintext: bytes) -> tuple[int, bytes]:
    """Split a TLSInnerPlaintext (§5.2) into (content type, content).

    ::

        struct {
            opaque content[TLSPlaintext.length];
            ContentType type;
            uint8 zeros[length_of_padding];
        } TLSInnerPlaintext;

    The type is the last non-zero byte; everything after it is padding.
    """
    end = len(plaintext)
    while end and plaintext[end - 1] == 0:
        end -= 1
    if end == 0:
        raise DecryptError(
            "The decrypted record is all zeros: it has no content type.",
            "RFC 8446 §5.4 calls this an unexpected_message; the sender is broken.",
        )
    return plaintext[end - 1], plaintext[: end - 1]


def open_record(
    suite: CipherSuite, keys: TrafficKeys, sequence: int, header: bytes, encrypted: bytes
) -> tuple[int, bytes]:
    """AEAD-Decrypt one protected record (§5.2) and return (inner type, content).

    ``header`` is the 5-byte record header, used as the additional data; ``encrypted``
    is everything after it (ciphertext and tag).
    """
    nonce = record_nonce(keys.iv, sequence)
    try:
        plaintext = suite.aead(keys.key).decrypt(nonce, encrypted, header)
    except InvalidTag:
        raise DecryptError(
            f"A record failed its {suite.name} authentication check (sequence number {sequence}):"
            " the key is wrong or the bytes were changed.",
            "Use the key log written during this very connection; one flipped bit is enough"
            " for the AEAD to refuse the whole record.",
        ) from None
    return parse_inner_plaintext(plaintext)


def seal_record(
    suite: CipherSuite,
    keys: TrafficKeys,
    sequence: int,
    content_type: int,
    content: bytes,
    padding_length: int = 0,
) -> bytes:
    """The sender's side of :func:`open_record`: a complete protected record."""
    inner = content + bytes([content_type]) + bytes(padding_length)
    length = len(inner) + suite.tag_length
    header = bytes([23, 3, 3]) + length.to_bytes(2, "big")
    nonce = record_nonce(keys.iv, sequence)
    return header + suite.aead(keys.key).encrypt(nonce, inner, header)
