"""Certificates and keys as bytes and files: PEM, encrypted PKCS#8, mode 0600 (notebook 04).

A certificate is public: it goes out in every handshake, and its PEM file may be
world-readable. A private key is the one secret of the whole arrangement, so it is
written as PKCS#8 PEM, optionally encrypted with a password, into a file that only its
owner can read, created that way from the start (:func:`_write_secret` says why a
chmod afterwards is too late). :meth:`Leaf.write <helpers.pki.Leaf.write>` and
:meth:`CA.write <helpers.pki.CA.write>` write the usual three files (certificate,
key, chain) and return their paths as :class:`CertFiles`.

Reading these files back, with readable errors, is :mod:`helpers.pki.loading`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ..errors import PKIError, UsageError

__all__ = ["CertFiles", "Password", "private_key_pem", "write_private_key"]

#: A key password: str (encoded as UTF-8) or bytes; None means "not encrypted".
Password = str | bytes | None


def _password_bytes(password: Password) -> bytes | None:
    """The password as bytes (a str as UTF-8); anything else is the caller's mistake.

    Checked, not just ``bytes(password)``: ``bytes(5)`` is five NUL bytes, which would
    quietly become the password of a key written with ``password=5``.
    """
    if password is None:
        return None
    if isinstance(password, str):
        try:
            return password.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(
                "This password holds characters that cannot be encoded as UTF-8 (a lone surrogate).",
                "Type the password again, or pass it as bytes.",
            ) from None
    if isinstance(password, (bytes, bytearray, memoryview)):
        return bytes(password)
    raise UsageError(
        f"A password is a str or bytes, not {type(password).__name__}.",
        "Pass password='...' (or password=None for no encryption).",
    )


def _encryption(password: Password) -> serialization.KeySerializationEncryption:
    pw = _password_bytes(password)
    if pw is None:
        return serialization.NoEncryption()
    if not pw:
        raise PKIError(
            "An empty password cannot encrypt a key.", "Pass password=None or a real one."
        )
    # BestAvailableEncryption: PKCS#8 with PBES2 (a slow KDF + AES-256), so an attacker
    # who copies the file must still guess the password, slowly.
    return serialization.BestAvailableEncryption(pw)


def private_key_pem(key: PrivateKeyTypes, password: Password = None) -> bytes:
    """PEM PKCS#8 for ``key``; with a ``password``, the encrypted form."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, _encryption(password)
    )


def _write_secret(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that it is never readable by anyone else.

    The file is created 0600 by ``os.open`` itself, then renamed into place. A chmod
    *after* writing would leave a window in which another local user can open the file
    (and an open file descriptor stays readable after the chmod). O_EXCL + O_NOFOLLOW
    refuse to write through a symlink planted at the temporary name.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_private_key(
    path: str | os.PathLike[str], key: PrivateKeyTypes, password: Password = None
) -> Path:
    """Write ``key`` as PEM PKCS#8 to ``path``, created with mode 0600; return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_secret(target, private_key_pem(key, password))
    return target


class CertFiles(NamedTuple):
    """Paths written by :meth:`Leaf.write` / :meth:`CA.write`."""

    cert: Path  #: the certificate alone (PEM)
    key: Path  #: its private key (PEM PKCS#8, mode 0600)
    chain: Path  #: certificate + intermediates (PEM): what ``load_cert_chain`` wants


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_files(
    directory: str | os.PathLike[str],
    name: str,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    key: PrivateKeyTypes,
    password: Password,
) -> CertFiles:
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    files = CertFiles(
        cert=folder / f"{name}-cert.pem",
        key=folder / f"{name}-key.pem",
        chain=folder / f"{name}-chain.pem",
    )
    files.cert.write_bytes(_pem(cert))
    files.chain.write_bytes(b"".join(_pem(c) for c in chain))
    write_private_key(files.key, key, password)
    return files
