"""Signed lab descriptions: the proof that what a student downloads comes from the lab (notebook 02).

The fingerprint a student types pins one thing: the lab's root CA certificate. But that
certificate is public (``GET /ca.pem`` hands it to anyone), so someone in the room who
answers in the teacher's place can serve the *real* CA next to a forged CRL, forged
chains and port numbers of their choosing. The pin must cover everything else too.

The root could sign the description itself, but its private key exists only while a
lab generation is built and is never written to disk (:mod:`helpers.lab.build`); a
shared lab that started from the cache has no root key at all. So the root *delegates*,
the way an OCSP responder is delegated (RFC 6960 §4.2.2.2): at build time it certifies a
**description signer**, a key whose certificate can sign lab descriptions and nothing
else (keyUsage digitalSignature, ``CA:FALSE``, an extended key usage of its own and no
``serverAuth``: it cannot serve TLS or issue certificates).

What travels (:data:`~helpers.lab.remote.description.FORMAT` 2) is an *envelope*::

    {"kind": "tls-course-lab", "format": 2,
     "signed_at": "2026-12-06T09:15:00Z",
     "chain": [SIGNER_PEM, CA_PEM],
     "signature": BASE64,
     "description": "{\\"kind\\": \\"tls-course-lab\\", ... }"}

The description is a *string*: the signature covers its exact bytes, and JSON never has
to be re-serialised the same way twice. The signed message is
``CONTEXT + signed_at + "\\n" + description``: the context string keeps this signature
from meaning anything in another protocol (TLS 1.3 does the same in CertificateVerify,
RFC 8446 §4.4.3), and the time is signed with the description it dates.

:func:`open_envelope` is the student's side, in this order, before anything is
written: size and nesting depth are bounded; the CA's fingerprint must match the one
the student typed; the signer must be directly issued by that CA (signature, validity,
key usages); the signature must verify over the exact bytes; only then is the
description parsed, and its CA must be the same certificate.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ... import pki
from ...errors import LabError
from ..build import DESCRIPTION_SIGNING
from .description import FORMAT, KIND
from .fingerprint import _hex_digits, ca_fingerprint, short_fingerprint

#: Prepended to every signed description (domain separation, as in RFC 8446 §4.4.3).
CONTEXT = b"TLS course lab description, signed by the lab's description signer\x00"
#: JSON deeper than this is refused before it is parsed (a description is 4 levels deep).
MAX_DEPTH = 16
#: A description signed longer ago than this is refused (a replayed old one).
MAX_AGE = _dt.timedelta(days=1)
#: How far ahead of this machine's clock the teacher's clock may be.
MAX_SKEW = _dt.timedelta(minutes=10)
ENVELOPE_KEYS = frozenset({"kind", "format", "signed_at", "chain", "signature", "description"})

_ASK = "Ask the teacher to restart the lab, and check that you typed the teacher's address."
_IMPOSTOR = (
    "Do not use it: check the fingerprint with the teacher (someone in the room may be "
    "answering in the teacher's place)."
)


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)  # noqa: UP017 - Python 3.10 has no datetime.UTC


def _message(signed_at: str, description: bytes) -> bytes:
    return CONTEXT + signed_at.encode("ascii") + b"\n" + description


# --------------------------------------------------------------------------- teacher


@dataclass(frozen=True)
class DescriptionSigner:
    """The teacher's side: the signer certificate and key of a lab generation, and its CA."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate

    @classmethod
    def load(cls, cert: Path, key: Path, ca: Path) -> DescriptionSigner:
        """Read ``signer.pem``, ``signer-key.pem`` and ``ca.pem`` of a lab generation."""
        private = pki.load_private_key(key)
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise LabError(f"{key} is not the lab's description-signing key.", "Rebuild the lab.")
        return cls(pki.load_certificate(cert), private, pki.load_certificate(ca))

    def envelope(self, description: bytes, now: _dt.datetime | None = None) -> bytes:
        """``description`` (the exact JSON bytes) wrapped, dated and signed."""
        signed_at = (now or _now()).strftime("%Y-%m-%dT%H:%M:%SZ")
        signature = self.key.sign(_message(signed_at, description), ec.ECDSA(hashes.SHA256()))
        pem = serialization.Encoding.PEM
        return json.dumps(
            {
                "kind": KIND,
                "format": FORMAT,
                "signed_at": signed_at,
                "chain": [
                    self.cert.public_bytes(pem).decode("ascii"),
                    self.ca.public_bytes(pem).decode("ascii"),
                ],
                "signature": base64.b64encode(signature).decode("ascii"),
                "description": description.decode("utf-8"),
            },
            indent=1,
        ).encode()


# --------------------------------------------------------------------------- student


def _depth(text: str) -> int:
    """How deeply ``text`` nests ``[`` and ``{`` (stops counting past :data:`MAX_DEPTH`).

    One pass over the characters that matter: brackets inside strings are not structure,
    and ``\\"`` does not end a string. Linear on purpose: a regular expression that
    skips strings restarts at every quote of an unterminated one, which a hostile
    endpoint turns into quadratic time.
    """
    depth = peak = 0
    in_string = False
    escaped = -1  # the index of the character a backslash escapes
    for special in re.finditer(r'[\[\]{}"\\]', text):
        at, char = special.start(), special.group()
        if at == escaped:
            continue
        if in_string:
            if char == "\\":
                escaped = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            peak = max(peak, depth)
            if peak > MAX_DEPTH:
                break
        elif char in "]}":
            depth -= 1
    return peak


def _loads(text: bytes | str, what: str, url: str) -> Any:
    """``json.loads`` with the nesting depth bounded first (no RecursionError, no stack use)."""
    not_a_lab = "Check the URL: it is the one `python -m helpers.lab --share` prints."
    try:
        text = text.decode("utf-8") if isinstance(text, bytes) else text
    except UnicodeDecodeError:
        raise LabError(f"{url} sent {what} that is not UTF-8 text.", not_a_lab) from None
    peak = _depth(text)
    if peak > MAX_DEPTH:
        raise LabError(
            f"{url} sent {what} nested more than {MAX_DEPTH} levels deep: not a lab.", not_a_lab
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise LabError(f"{url} sent {what} that is not valid JSON.", not_a_lab) from None


def _certificate(pem: Any, what: str, url: str) -> x509.Certificate:
    try:
        if not isinstance(pem, str):
            raise ValueError(what)
        return pki.load_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeError):
        raise LabError(f"The lab description from {url} carries no valid {what}.", _ASK) from None


def _check_signer(
    signer: x509.Certificate, ca: x509.Certificate, url: str, now: _dt.datetime
) -> None:
    """The signer is certified by the pinned CA, is valid now, and may sign descriptions."""
    refused = f"The description from {url} is signed by a certificate the lab CA did not issue"
    try:
        signer.verify_directly_issued_by(ca)  # issuer name and signature (RFC 5280 §6.1.3)
    except (ValueError, TypeError, InvalidSignature):
        raise LabError(refused + ".", _IMPOSTOR) from None
    if not signer.not_valid_before_utc <= now <= signer.not_valid_after_utc:
        raise LabError(
            f"The description signer of the lab at {url} is not valid now "
            f"(valid {signer.not_valid_before_utc:%Y-%m-%d} to {signer.not_valid_after_utc:%Y-%m-%d}).",
            "Check this machine's clock, then ask the teacher to restart the lab.",
        )
    ext = signer.extensions
    try:
        usage = ext.get_extension_for_class(x509.KeyUsage).value
        purposes = list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value)
        basic = ext.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise LabError(refused + " for signing descriptions.", _IMPOSTOR) from None
    if not usage.digital_signature or basic.ca or purposes != [DESCRIPTION_SIGNING]:
        raise LabError(refused + " for signing descriptions.", _IMPOSTOR)


@dataclass(frozen=True)
class Opened:
    """A verified description: its CA (pinned), signer, date, and the parsed description."""

    ca: x509.Certificate
    fingerprint: str
    signer: x509.Certificate
    signed_at: _dt.datetime
    description: dict[str, Any]


def open_envelope(
    body: bytes, url: str, expected: str | None, now: _dt.datetime | None = None
) -> Opened:
    """Check everything a join endpoint sent; return the description only if it is the lab's.

    ``expected`` is the fingerprint the student typed (normalised hex digits), or None
    for an insecure join (then the CA is whatever the envelope carries, but the
    signature must still verify against it).
    """
    now = now or _now()
    not_a_lab = "Check the URL: it is the one `python -m helpers.lab --share` prints."
    envelope = _loads(body, "a description", url)
    if not isinstance(envelope, dict) or envelope.get("kind") != KIND:
        raise LabError(f"{url} is not a TLS course lab.", not_a_lab)
    if envelope.get("format") != FORMAT:
        raise LabError(
            f"The teacher's lab speaks description format {envelope.get('format')!r}; "
            f"this copy of the course knows format {FORMAT}.",
            "Update the older copy of the course (git pull) and restart.",
        )
    if set(envelope) != ENVELOPE_KEYS:
        extra = ", ".join(sorted(map(str, set(envelope) ^ ENVELOPE_KEYS)))
        raise LabError(
            f"The description from {url} has fields outside its signature ({extra}).", _IMPOSTOR
        )
    chain = envelope["chain"]
    if not isinstance(chain, list) or len(chain) != 2:
        raise LabError(f"The description from {url} carries no signer chain.", _ASK)
    signer = _certificate(chain[0], "description signer", url)
    ca = _certificate(chain[1], "CA certificate", url)
    fingerprint = ca_fingerprint(ca)
    if expected and not _hex_digits(fingerprint).startswith(expected):
        raise LabError(
            f"The lab at {url} has CA fingerprint {short_fingerprint(fingerprint)}, "
            f"not the {short_fingerprint(expected)} you were given.",
            _IMPOSTOR,
        )
    _check_signer(signer, ca, url, now)
    signed_at_text, signature, text = (
        envelope["signed_at"],
        envelope["signature"],
        envelope["description"],
    )
    if not all(isinstance(v, str) for v in (signed_at_text, signature, text)):
        raise LabError(f"The description from {url} is not signed.", _IMPOSTOR)
    try:
        signed_at = _dt.datetime.strptime(signed_at_text, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=_dt.timezone.utc  # noqa: UP017
        )
        raw_signature = base64.b64decode(signature, validate=True)
        description = text.encode("utf-8")
    except (ValueError, binascii.Error, UnicodeError):
        raise LabError(f"The description from {url} is not signed.", _IMPOSTOR) from None
    signer_key = signer.public_key()
    if not isinstance(signer_key, ec.EllipticCurvePublicKey):
        raise LabError(f"The description from {url} is not signed.", _IMPOSTOR)
    try:
        signer_key.verify(
            raw_signature, _message(signed_at_text, description), ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature:
        raise LabError(
            f"The description from {url} does not match its signature: it was changed "
            "after the lab signed it.",
            _IMPOSTOR,
        ) from None
    if not now - MAX_AGE <= signed_at <= now + MAX_SKEW:
        raise LabError(
            f"The description from {url} was signed at {signed_at_text}, too far from "
            f"this machine's clock ({now:%Y-%m-%dT%H:%M:%SZ}) to be a fresh one.",
            "Check this machine's clock; if it is right, someone may be replaying an old "
            "description: ask the teacher.",
        )
    data = _loads(description, "a description", url)
    if not isinstance(data, dict) or data.get("kind") != KIND or data.get("format") != FORMAT:
        raise LabError(f"{url} signed something that is not a lab description.", _ASK)
    inner = _certificate(data.get("ca_pem"), "CA certificate", url)
    if inner != ca:
        raise LabError(
            f"The description from {url} names another CA than the one that signed it.", _ASK
        )
    return Opened(ca, fingerprint, signer, signed_at, data)
