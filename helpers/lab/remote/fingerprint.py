"""The lab CA's fingerprint: what the teacher reads out and ``join()`` checks (notebook 02).

The join endpoint is plain HTTP, so someone else in the room could answer in the
teacher's place with their own CA. The defence is the one ``ssh`` uses on first contact:
compare a fingerprint that came over *another* channel (the teacher's screen, the board).

* :func:`ca_fingerprint` is SHA-256 over the DER certificate, ``AB:CD:...``: the same
  digits browsers and ``openssl x509 -fingerprint -sha256`` show;
* :func:`short_fingerprint` is its first 16 hex digits in groups of four, to read aloud;
* :func:`_expected_fingerprint` normalises what a student typed (any case, with or
  without colons, spaces or ``sha256=``) and refuses anything shorter than
  :data:`MIN_FINGERPRINT_HEX` hex digits: 64 bits cannot be matched by brute force
  during a lesson. :class:`~helpers.lab.RemoteLab` then refuses a CA whose fingerprint
  does not start with those digits.
"""

from __future__ import annotations

import hashlib
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ... import pki
from ...errors import UsageError

MIN_FINGERPRINT_HEX = 16  # 64 bits: not matchable by brute force during a lesson


def ca_fingerprint(cert: x509.Certificate | bytes) -> str:
    """SHA-256 over the DER certificate, ``AB:CD:...``: what browsers and ``openssl x509
    -fingerprint -sha256`` show."""
    if isinstance(cert, bytes):
        cert = pki.load_certificate(cert)
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def short_fingerprint(fingerprint: str) -> str:
    """The first 16 hex digits in groups of four (``3F2A 9B1C 77D0 E4A5``): to read aloud."""
    digits = _hex_digits(fingerprint)[:MIN_FINGERPRINT_HEX]
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def _hex_digits(text: str) -> str:
    return re.sub(r"[\s:\-]", "", text).upper()


def _expected_fingerprint(text: str | None) -> str | None:
    """Normalise what a student typed; ``UsageError`` if it cannot be a fingerprint."""
    if text is None or not text.strip():
        return None
    raw = text.strip()
    if raw.lower().startswith("sha256="):
        raw = raw[len("sha256=") :]
    digits = _hex_digits(raw)
    if not re.fullmatch(r"[0-9A-F]+", digits) or len(digits) > 64:
        raise UsageError(
            f"{text!r} is not a SHA-256 fingerprint.",
            "Copy the hex digits the teacher shows, e.g. '3F2A 9B1C 77D0 E4A5'.",
        )
    if len(digits) < MIN_FINGERPRINT_HEX:
        raise UsageError(
            f"The fingerprint {text!r} is too short to protect you ({len(digits)} hex digits).",
            f"Use at least the first {MIN_FINGERPRINT_HEX} hex digits the teacher shows.",
        )
    return digits
