"""Reading certificates and keys back, with readable errors (notebook 04; used from 02).

Certificates and keys travel as PEM (base64 between ``-----BEGIN ...-----`` lines) or
DER (the raw ASN.1 bytes), in files, in strings pasted into a notebook, in downloads.
When the bytes are wrong, ``cryptography`` answers with an ASN.1 parser's complaint;
the functions here look at what was passed first (a key where a certificate was
expected? an HTML error page? an encrypted key without a password?) and raise one
:class:`~helpers.errors.PEMError` or :class:`~helpers.errors.KeyPasswordError`
sentence that says what happened and what to try.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from ..errors import KeyPasswordError, PEMError
from .files import Password, _password_bytes
from .leaf import Leaf

__all__ = ["load_certificate", "load_certificates", "load_pkcs12", "load_private_key"]

_PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


def _read_input(data: bytes | str | os.PathLike[str], what: str) -> bytes:
    """Bytes from bytes, PEM text, or a file name (str or Path)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str) and "-----BEGIN" in data:
        return data.encode("utf-8")
    path = Path(data)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PEMError(
            f"There is no file {str(path)!r} (a str without a '-----BEGIN' line is taken as a file name).",
            f"Check the path, or pass the {what} itself as PEM text or bytes.",
        ) from None
    except OSError as exc:
        raise PEMError(
            f"The file {str(path)!r} could not be read ({exc.strerror}).",
            "Check the path and its permissions.",
        ) from None


def _pem_labels(data: bytes) -> list[str]:
    return [m.decode("ascii") for m in _PEM_LABEL.findall(data)]


def _not_this(labels: list[str], wanted: str) -> str:
    return (
        f"This PEM holds {', '.join(dict.fromkeys(labels))}, not {wanted}."
        if labels
        else f"This is not {wanted}."
    )


def load_certificates(data: bytes | str | os.PathLike[str]) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle (a chain file, a CA bundle), in order."""
    raw = _read_input(data, "certificates")
    if b"-----BEGIN" not in raw:
        return [load_certificate(raw)]
    labels = _pem_labels(raw)
    if "CERTIFICATE" not in labels:
        raise PEMError(
            _not_this(labels, "a CERTIFICATE"), "Pass the certificate or chain file instead."
        )
    try:
        return x509.load_pem_x509_certificates(raw)
    except ValueError as exc:
        raise PEMError(
            f"A certificate in this PEM bundle is damaged or truncated ({exc}).",
            "Copy each block again, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----.",
        ) from None


def load_certificate(data: bytes | str | os.PathLike[str]) -> x509.Certificate:
    """A certificate from PEM or DER: bytes, PEM text, or a file name (str or Path).

    With several PEM certificates (a chain file) this returns the first; see
    :func:`load_certificates`. Raises :class:`~helpers.errors.PEMError` with a readable
    message when the input is not a certificate.
    """
    raw = _read_input(data, "certificate")
    if not raw.strip():
        raise PEMError(
            "The certificate data is empty.", "Check that the file was written completely."
        )
    if b"-----BEGIN" in raw:
        labels = _pem_labels(raw)
        if not any(label in ("CERTIFICATE", "X509 CERTIFICATE") for label in labels):
            raise PEMError(
                _not_this(labels, "a CERTIFICATE"),
                "Use load_private_key() for keys; for a certificate, pick the file whose "
                "block starts with -----BEGIN CERTIFICATE-----.",
            )
        try:
            return x509.load_pem_x509_certificate(raw)
        except ValueError as exc:
            raise PEMError(
                f"The PEM certificate is damaged or truncated ({_short(exc)}).",
                "Copy the whole block again, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----.",
            ) from None
    try:
        return x509.load_der_x509_certificate(raw)
    except ValueError:
        looks = (
            "an HTML page"
            if raw.lstrip()[:1] == b"<"
            else "text"
            if raw.isascii()
            else "binary data"
        )
        raise PEMError(
            f"These {len(raw)} bytes look like {looks}, neither a PEM certificate (no "
            "'-----BEGIN CERTIFICATE-----' line) nor a DER one.",
            "Check that you passed the certificate itself, not a key, a CSR or a download error page.",
        ) from None


def _short(exc: Exception) -> str:
    text = str(exc).split(". Details:")[0]
    return text[:160]


def load_private_key(
    data: bytes | str | os.PathLike[str], password: Password = None
) -> PrivateKeyTypes:
    """A private key from PEM (PKCS#8, or traditional "RSA/EC PRIVATE KEY") or DER.

    Raises :class:`~helpers.errors.KeyPasswordError` when the key is encrypted and the
    password is missing or wrong, and :class:`~helpers.errors.PEMError` when the input
    is not a private key at all.
    """
    raw = _read_input(data, "private key")
    pw = _password_bytes(password)
    if not raw.strip():
        raise PEMError(
            "The private key data is empty.", "Check that the file was written completely."
        )
    is_pem = b"-----BEGIN" in raw
    if is_pem:
        labels = _pem_labels(raw)
        if not any(label.endswith("PRIVATE KEY") for label in labels):
            raise PEMError(
                _not_this(labels, "a PRIVATE KEY"),
                "Use load_certificate() for certificates; for the key, pick the file whose "
                "block says PRIVATE KEY.",
            )
    encrypted = b"ENCRYPTED PRIVATE KEY" in raw or b"Proc-Type: 4,ENCRYPTED" in raw
    try:
        if is_pem:
            return serialization.load_pem_private_key(raw, pw)
        return serialization.load_der_private_key(raw, pw)
    except TypeError as exc:
        if "not encrypted" in str(exc):
            raise KeyPasswordError(
                "A password was given, but this private key is not encrypted.",
                "Call load_private_key() without password=.",
            ) from None
        raise KeyPasswordError(
            "This private key is encrypted and no password was given.",
            "Pass password=... (the one used when the key was written).",
        ) from None
    except ValueError as exc:
        if pw is not None and (encrypted or "password" in str(exc).lower()):
            raise KeyPasswordError(
                "The password did not decrypt this private key.",
                "Check the password (passwords are case-sensitive) or find the matching key file.",
            ) from None
        if pw is not None and not is_pem:
            raise KeyPasswordError(
                "These DER bytes could not be read as a private key with this password.",
                "Check the password, and that the bytes are a key (not a certificate).",
            ) from None
        raise PEMError(
            f"The private key could not be read: it is damaged, truncated or not a key ({_short(exc)}).",
            "Copy the whole PEM block again, including the -----BEGIN/-----END lines.",
        ) from None
    except UnsupportedAlgorithm as exc:
        raise PEMError(
            f"This private key uses an algorithm this build cannot read ({_short(exc)}).",
            "Convert it with 'openssl pkcs8 -topk8' or generate an EC or RSA key.",
        ) from None


def load_pkcs12(data: bytes | str | os.PathLike[str], password: Password = None) -> Leaf:
    """Open a PKCS#12 bundle (``.p12``/``.pfx``) as a :class:`Leaf` (issuer unknown)."""
    raw = data if isinstance(data, bytes) else Path(data).read_bytes()
    try:
        bundle = pkcs12.load_pkcs12(raw, _password_bytes(password))
    except ValueError as exc:
        raise KeyPasswordError(
            f"The PKCS#12 bundle could not be opened: wrong or missing password, or damaged data ({_short(exc)}).",
            "Check the password; an unprotected bundle needs password=None.",
        ) from None
    if bundle.cert is None or bundle.key is None:
        raise PEMError(
            "This PKCS#12 bundle does not hold both a certificate and its private key.",
            "Export it again with the private key included.",
        )
    return Leaf.from_parts(
        bundle.cert.certificate, bundle.key, [c.certificate for c in bundle.additional_certs]
    )
