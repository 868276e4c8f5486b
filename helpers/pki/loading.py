"""Reading certificates and keys back, with readable errors (notebook 04; used from 02).

Certificates and keys travel as PEM (base64 between ``-----BEGIN ...-----`` lines) or
DER (the raw ASN.1 bytes), in files, in strings pasted into a notebook, in downloads.
When the bytes are wrong, ``cryptography`` answers with an ASN.1 parser's complaint;
the functions here look at what was passed first (a key where a certificate was
expected? an HTML error page? an encrypted key without a password?) and raise one
:class:`~helpers.errors.PEMError` or :class:`~helpers.errors.KeyPasswordError`
sentence that says what happened and what to try.

What counts as a file name: bytes are always the data itself; a ``str`` is PEM text
when it contains ``-----BEGIN``, otherwise a path (``load_certificate(lab.ca_bundle)``
and ``load_certificate("server.pem")`` are the common calls, so that stays). A ``str``
that cannot be a path (a line break, a NUL, ``-----``, more than 4096 characters: pasted
text that lost its BEGIN line) is refused with a sentence rather than looked up on disk.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from ..errors import KeyPasswordError, PEMError, UsageError
from .files import Password, _password_bytes
from .leaf import Leaf
from .panics import converts_panics

__all__ = ["load_certificate", "load_certificates", "load_pkcs12", "load_private_key"]

_RECOPY = (
    "Copy the certificate again, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----."
)
_P12_HINT = "Check the password; an unprotected bundle needs password=None."
# What cryptography raises for bytes that are not a certificate: ValueError, or
# InvalidVersion (an Exception of its own) for a version field other than v1/v2/v3.
_BAD_CERTIFICATE = (ValueError, x509.InvalidVersion)
_PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


#: Longer than any path the kernel accepts (Linux PATH_MAX): a str this long is text.
_MAX_PATH = 4096


def _not_a_path(text: str) -> str | None:
    """Why ``text`` (a str without ``-----BEGIN``) cannot be a file name, or None."""
    if "\x00" in text:
        return "it contains a NUL character"
    if "\n" in text or "\r" in text:
        return "it has line breaks"
    if "-----" in text:
        return "it has '-----' (part of a PEM block) but no '-----BEGIN' line"
    if len(text) > _MAX_PATH:
        return f"it is {len(text)} characters long"
    return None


def _read_input(data: object, what: str) -> bytes:
    """Bytes from bytes, PEM text, or a file name (str or Path)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str) and "-----BEGIN" in data:
        try:
            return data.encode("utf-8")
        except UnicodeEncodeError:
            raise PEMError(
                f"This {what} text holds characters that are not valid Unicode (a lone surrogate).",
                "Read the file as bytes (open(path, 'rb')) and pass those.",
            ) from None
    if not isinstance(data, (str, os.PathLike)):
        raise UsageError(
            f"The {what} must be bytes, PEM text or a file path, not {type(data).__name__}.",
            f"Pass the {what} itself (bytes or PEM text) or the name of the file it is in.",
        )
    if isinstance(data, str):
        why = _not_a_path(data)
        if why is not None:
            shown = data[:40] + ("..." if len(data) > 40 else "")
            raise PEMError(
                f"{shown!r} is neither PEM text (no '-----BEGIN' line) nor a file name ({why}).",
                f"Pass the whole PEM block from -----BEGIN to -----END, the {what} as bytes, "
                "or the path of the file.",
            )
    try:
        path = Path(data)
        return path.read_bytes()
    except FileNotFoundError:
        raise PEMError(
            f"There is no file {str(path)!r} (a str without a '-----BEGIN' line is taken as a file name).",
            f"Check the path, or pass the {what} itself as PEM text or bytes.",
        ) from None
    except ValueError:  # a NUL inside an os.PathLike
        raise PEMError(
            f"{os.fspath(data)!r} is not a usable file name (it contains a NUL character).",
            f"Check the path, or pass the {what} itself as PEM text or bytes.",
        ) from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise PEMError(
                f"A file name of {len(str(data))} characters is longer than this system allows, "
                "so this is probably not a path.",
                f"Pass the {what} itself (PEM text with its -----BEGIN line, or bytes) or a real path.",
            ) from None
        raise PEMError(
            f"The file {str(path)!r} could not be read ({exc.strerror}).",
            "Check the path and its permissions.",
        ) from None


# RFC 1421 §4.6.1.3 / RFC 1423 §1.1: a traditional ("Proc-Type: 4,ENCRYPTED") PEM key
# names its cipher and IV in a header:  DEK-Info: AES-256-CBC,<IV in hex>. A CBC IV is
# exactly one cipher block long.
_DEK_INFO = re.compile(rb"^[ \t]*DEK-Info[ \t]*:([^\r\n]*)", re.IGNORECASE | re.MULTILINE)
_IV_BYTES = {
    "AES-128-CBC": 16,
    "AES-192-CBC": 16,
    "AES-256-CBC": 16,
    "DES-CBC": 8,
    "DES-EDE-CBC": 8,
    "DES-EDE3-CBC": 8,
}


def _check_dek_info(raw: bytes) -> None:
    """Refuse a DEK-Info header whose IV does not fit its cipher, before cryptography sees it.

    cryptography 50.0.2 panics (a Rust assertion, :mod:`helpers.pki.panics`) on an AES key
    whose IV is 8-15 bytes; a damaged header deserves a sentence, not a backtrace.
    """
    for match in _DEK_INFO.finditer(raw):
        cipher, _, iv = match.group(1).decode("latin-1").strip().partition(",")
        cipher, iv = cipher.strip().upper(), iv.strip()
        if not iv or any(c not in "0123456789abcdefABCDEF" for c in iv) or len(iv) % 2:
            raise PEMError(
                f"The key's DEK-Info header is damaged: {match.group(1).decode('latin-1').strip()[:60]!r} "
                "is not '<cipher>,<IV in hex>'.",
                "Copy the key file again; the header should read like DEK-Info: AES-256-CBC,<32 hex digits>.",
            )
        expected = _IV_BYTES.get(cipher)
        if expected is not None and len(iv) != 2 * expected:
            raise PEMError(
                f"The key's DEK-Info header gives a {len(iv) // 2}-byte IV for {cipher}, "
                f"which needs exactly {expected} (one cipher block, RFC 1423 §1.1): the header is damaged.",
                "Copy the key file again, or export the key once more (PKCS#8 with "
                "'openssl pkcs8 -topk8' has no DEK-Info header at all).",
            )


def _pem_labels(data: bytes) -> list[str]:
    return [m.decode("ascii") for m in _PEM_LABEL.findall(data)]


def _not_this(labels: list[str], wanted: str) -> str:
    return (
        f"This PEM holds {', '.join(dict.fromkeys(labels))}, not {wanted}."
        if labels
        else f"This is not {wanted}."
    )


@converts_panics(PEMError, "A certificate in this data could not be parsed", _RECOPY)
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
    except _BAD_CERTIFICATE as exc:
        raise PEMError(
            f"A certificate in this PEM bundle is damaged or truncated ({exc}).",
            "Copy each block again, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----.",
        ) from None


@converts_panics(PEMError, "The certificate could not be parsed", _RECOPY)
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
        except _BAD_CERTIFICATE as exc:
            raise PEMError(
                f"The PEM certificate is damaged or truncated ({_short(exc)}).",
                "Copy the whole block again, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----.",
            ) from None
    try:
        return x509.load_der_x509_certificate(raw)
    except _BAD_CERTIFICATE:
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


_RECOPY = (
    "Copy the certificate again, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----."
)


def _short(exc: Exception) -> str:
    text = str(exc).split(". Details:")[0]
    return text[:160]


@converts_panics(
    PEMError,
    "The private key could not be read",
    "Copy the whole PEM block again, including the -----BEGIN/-----END lines.",
)
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
    if is_pem:
        _check_dek_info(raw)
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


@converts_panics(PEMError, "The PKCS#12 bundle could not be parsed", _P12_HINT)
def load_pkcs12(data: bytes | str | os.PathLike[str], password: Password = None) -> Leaf:
    """Open a PKCS#12 bundle (``.p12``/``.pfx``) as a :class:`Leaf` (issuer unknown).

    ``data`` is the bundle's bytes or the path of the file. A PKCS#12 password is text:
    RFC 7292 Appendix B.1 turns it into a BMPString (UTF-16), so a ``bytes`` password
    must be valid UTF-8.
    """
    raw = _read_input(data, "PKCS#12 bundle")
    if b"-----BEGIN" in raw:
        labels = _pem_labels(raw)
        raise PEMError(
            f"This is PEM text ({', '.join(dict.fromkeys(labels)) or 'a -----BEGIN block'}), "
            "not a PKCS#12 bundle: .p12/.pfx files are binary DER.",
            "Use load_certificate() / load_private_key() for PEM, or pass the .p12 file's bytes.",
        )
    pw = _password_bytes(password)
    if pw is not None:
        try:
            pw.decode("utf-8")
        except UnicodeDecodeError:
            raise KeyPasswordError(
                f"This PKCS#12 password is {len(pw)} bytes that are not UTF-8 text "
                "(RFC 7292 Appendix B.1 makes a password a string).",
                "Pass the password as a str, or as the UTF-8 bytes of one.",
            ) from None
    try:
        bundle = pkcs12.load_pkcs12(raw, pw)
    except (ValueError, TypeError) as exc:
        raise KeyPasswordError(
            f"The PKCS#12 bundle could not be opened: wrong or missing password, or damaged data ({_short(exc)}).",
            _P12_HINT,
        ) from None
    except UnsupportedAlgorithm as exc:
        raise PEMError(
            f"This PKCS#12 bundle uses an algorithm this build cannot read ({_short(exc)}).",
            "Export it again with AES-256 (openssl pkcs12 -export without -legacy).",
        ) from None
    if bundle.cert is None or bundle.key is None:
        raise PEMError(
            "This PKCS#12 bundle does not hold both a certificate and its private key.",
            "Export it again with the private key included.",
        )
    return Leaf.from_parts(
        bundle.cert.certificate, bundle.key, [c.certificate for c in bundle.additional_certs]
    )
