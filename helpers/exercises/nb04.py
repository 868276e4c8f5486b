"""Checks for the exercises of notebook 04 · Generating certificates.

The checks use what you build the way a real deployment would: a CA signs your CSR and
a server on 127.0.0.1 presents the result to clients that verify it (with the strict flag
``ssl.create_default_context()`` sets on Python 3.13+, where the exercise says so); a key
file is read back with and without its password, its permissions are read from the file
system, and every ``chmod`` your code makes is watched, to see whether the key was ever
readable by others before it.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import ssl
import stat
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import exercise

_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _key():
    from ..pki import new_private_key

    return new_private_key()


def _same_key(a, b) -> bool:
    return a.public_bytes(*_SPKI) == b.public_bytes(*_SPKI)


def _handshake_errors(
    chain: Sequence[x509.Certificate],
    key,
    trust_pem: bytes,
    names: Sequence[str],
    *,
    strict: bool = False,
) -> dict[str, str]:
    """Serve ``chain`` on 127.0.0.1 and connect once per name; return {name: why it failed}."""
    from ..pki import Leaf
    from ..servers import LoginServer

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    Leaf(chain[0], key, None, list(chain)).configure_server(server_ctx)
    failures: dict[str, str] = {}
    with LoginServer(tls=server_ctx) as server:
        for name in names:
            client = ssl.create_default_context(cadata=trust_pem.decode("ascii"))
            if strict:
                client.verify_flags |= ssl.VERIFY_X509_STRICT
            else:  # on Python 3.13+ the default context is strict already: switch it off
                client.verify_flags &= ~ssl.VERIFY_X509_STRICT
            try:
                with (
                    socket.create_connection(server.address, timeout=5) as raw,
                    client.wrap_socket(raw, server_hostname=name),
                ):
                    pass
            except ssl.SSLCertVerificationError as exc:
                failures[name] = f"verify code {exc.verify_code}: {exc.verify_message}"
            except (ssl.SSLError, OSError) as exc:
                failures[name] = f"{type(exc).__name__}: {exc}"
    return failures


# --------------------------------------------------------------------------- make_csr_for


@exercise(
    "nb04",
    params=("key", "names"),
    hints=[
        "x509.CertificateSigningRequestBuilder().subject_name(...).add_extension(...)"
        ".sign(key, hashes.SHA256())",
        "The names go in an x509.SubjectAlternativeName extension: a DNSName for each host "
        "name, an IPAddress(ipaddress.ip_address(...)) for each address.",
        "Try ipaddress.ip_address(name) first; a ValueError means it is a host name. Put the "
        "first name in the subject's Common Name too, for humans.",
    ],
)
def make_csr_for(answer):
    from ..pki import CA

    key = _key()
    names = ["shop.lab.localhost", "www.shop.lab.localhost", "127.0.0.1"]
    csr = answer(key, list(names))
    assert isinstance(csr, x509.CertificateSigningRequest), (
        f"return an x509.CertificateSigningRequest, not {type(csr).__name__}"
    )
    assert csr.is_signature_valid, "the CSR's signature does not verify: sign it with `key`"
    assert _same_key(csr.public_key(), key.public_key()), (
        "the CSR carries another public key: build it for the key you were given"
    )
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise AssertionError(
            "the CSR has no subjectAltName extension: clients look for names only there"
        ) from None
    dns, ips = san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)
    assert "127.0.0.1" not in dns, (
        "127.0.0.1 is in the CSR as a DNSName: addresses go in an x509.IPAddress entry "
        "(RFC 5280 §4.2.1.6), or clients connecting to the address will not find it"
    )
    assert sorted(dns) == sorted(names[:2]), f"the CSR's DNS names are {dns}, expected {names[:2]}"
    assert ips == [ipaddress.ip_address("127.0.0.1")], f"the CSR's IP addresses are {ips}"

    root = CA("Exercise Root CA")
    inter = root.create_intermediate("Exercise Issuing CA")
    cert = inter.sign_csr(csr)
    failures = _handshake_errors([cert, inter.cert], key, root.cert_pem, names)
    assert not failures, "after the CA signed your CSR, real handshakes failed for " + "; ".join(
        f"{name} ({why})" for name, why in failures.items()
    )


# --------------------------------------------------------------------------- build_server_cert


@exercise(
    "nb04",
    params=("ca", "name"),
    hints=[
        "Start from x509.CertificateBuilder(): subject_name, issuer_name(ca.cert.subject), "
        "public_key, serial_number, not_valid_before/after, then .sign(ca.key, hashes.SHA256()).",
        "Add the name as an x509.SubjectAlternativeName([x509.DNSName(name)]) and "
        "BasicConstraints(ca=False, path_length=None), critical.",
        "VERIFY_X509_STRICT wants an authorityKeyIdentifier: "
        "x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.cert.public_key()) "
        "(a SubjectKeyIdentifier.from_public_key(...) is good manners too).",
    ],
)
def build_server_cert(answer):
    from ..errors import KeyMismatchError
    from ..pki import CA, ensure_key_matches

    root = CA("Exercise Root CA")
    ca = root.create_intermediate("Exercise Issuing CA")
    name = f"api-{secrets.token_hex(3)}.lab.localhost"
    got = answer(ca, name)
    assert isinstance(got, tuple) and len(got) == 2, (
        f"return a tuple (certificate, private_key), not {type(got).__name__}"
    )
    cert, key = got
    assert isinstance(cert, x509.Certificate), (
        f"the first item should be an x509.Certificate, not {type(cert).__name__}"
    )
    try:
        ensure_key_matches(cert, key)
    except (KeyMismatchError, AttributeError):
        raise AssertionError(
            "the private key you returned does not belong to the certificate"
        ) from None
    assert cert.issuer == ca.cert.subject, (
        f"the certificate's issuer is {cert.issuer.rfc4514_string()!r}; use ca.cert.subject"
    )
    try:
        cert.verify_directly_issued_by(ca.cert)
    except Exception:  # noqa: BLE001 - any failure means "not signed by ca"
        raise AssertionError("the certificate is not signed by ca.key") from None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    assert name in san.get_values_for_type(x509.DNSName), (
        f"{name} is not in the certificate's subjectAltName: Python's ssl still falls back to "
        "the Common Name, but requests and browsers look only at the SAN"
    )
    relaxed = _handshake_errors([cert, ca.cert], key, root.cert_pem, [name], strict=False)
    assert not relaxed, f"a client without strict mode refused it for {name}: {relaxed[name]}"
    strict = _handshake_errors([cert, ca.cert], key, root.cert_pem, [name], strict=True)
    assert not strict, (
        f"a client without strict mode accepted it, but with VERIFY_X509_STRICT (set by "
        f"ssl.create_default_context() on Python 3.13+, and by requests with urllib3 >= 2.4 "
        f"there) the handshake failed: {strict[name]}"
    )


# --------------------------------------------------------------------------- write_key_securely


@exercise(
    "nb04",
    params=("path", "key", "password"),
    returns_none=True,
    hints=[
        "key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, "
        "serialization.BestAvailableEncryption(password.encode())) gives the encrypted PEM.",
        "os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) creates the file 0600, "
        "but the mode is used only when the file is *created*: an existing file keeps its mode.",
        "So also call os.fchmod(fd, 0o600) before writing, or write a new file and "
        "os.replace() it over the old one (what helpers.pki.write_private_key does).",
    ],
)
def write_key_securely(answer):
    from ..errors import KeyPasswordError
    from ..pki import load_private_key

    key = _key()
    password = "correct horse " + secrets.token_hex(4)
    with tempfile.TemporaryDirectory(prefix="tls-course-ex-") as tmp:
        fresh = Path(tmp) / "new-key.pem"
        with _ChmodWatch() as watch:
            answer(fresh, key, password)
        assert fresh.is_file(), "no file was written at the path you were given"
        watch.assert_never_exposed()
        _check_key_file(fresh, key, password, load_private_key, KeyPasswordError)

        # An old key file, readable by everyone, already sits at the path.
        old = Path(tmp) / "server-key.pem"
        old.write_text("an old key that everybody could read\n")
        os.chmod(old, 0o644)  # noqa: S103 - the mistake this exercise is about
        with _ChmodWatch() as watch:
            answer(old, key, password)
        watch.assert_never_exposed()
        mode = stat.S_IMODE(old.stat().st_mode)
        assert mode == 0o600, (
            f"when the file already existed with mode {stat.filemode(0o100644)}, it stayed "
            f"{stat.filemode(stat.S_IFREG | mode)}: os.open's mode applies only to new files"
        )
        _check_key_file(old, key, password, load_private_key, KeyPasswordError)


class _ChmodWatch:
    """Look at a file at the moment the answer calls ``os.chmod``/``os.fchmod`` on it.

    Writing a key and *then* tightening the mode leaves a window in which the key sits in
    a file that other local users may open; a file opened in that window stays readable
    after the chmod (permissions are checked at ``open()`` only). So when the answer
    changes a mode, we read that file as it is just before the change: if it already
    holds a private key and its mode lets group or others read it, the key was exposed.
    ``Path.chmod`` goes through ``os.chmod``, so it is seen too.
    """

    def __init__(self) -> None:
        self.exposed: list[str] = []

    def _look(self, mode: int, read: Callable[[], bytes]) -> None:
        try:
            data = read()
        except OSError:
            return
        if b"PRIVATE KEY-----" in data and mode & 0o077:
            self.exposed.append(stat.filemode(stat.S_IFREG | mode))

    def __enter__(self) -> _ChmodWatch:
        self._chmod, self._fchmod = os.chmod, os.fchmod
        real_chmod, real_fchmod = self._chmod, self._fchmod

        def chmod(path: Any, mode: int, *args: Any, **kwargs: Any) -> None:
            if isinstance(path, int):  # os.chmod(fd, mode) is fchmod
                self._look_fd(path)
            else:
                try:
                    self._look(
                        stat.S_IMODE(os.stat(path).st_mode), Path(os.fspath(path)).read_bytes
                    )
                except (OSError, TypeError):
                    pass
            real_chmod(path, mode, *args, **kwargs)

        def fchmod(fd: int, mode: int) -> None:
            self._look_fd(fd)
            real_fchmod(fd, mode)

        os.chmod, os.fchmod = chmod, fchmod  # type: ignore[assignment]
        return self

    def _look_fd(self, fd: int) -> None:
        try:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
        except OSError:
            return
        self._look(mode, lambda: _read_fd(fd))

    def __exit__(self, *exc: object) -> None:
        os.chmod, os.fchmod = self._chmod, self._fchmod  # type: ignore[assignment]

    def assert_never_exposed(self) -> None:
        assert not self.exposed, (
            f"your code wrote the key first and tightened the mode afterwards: until the chmod, "
            f"the key sat in a file with mode {self.exposed[0]} that any local user could open, "
            "and a file opened in that moment stays readable after the chmod. Create the file "
            "0600 from the start (os.open(path, flags, 0o600)) and, if it already existed, "
            "os.fchmod it *before* writing the key."
        )


def _read_fd(fd: int) -> bytes:
    """What the file behind ``fd`` holds, even if ``fd`` was opened write-only."""
    try:
        return os.pread(fd, 1 << 16, 0)
    except OSError:
        with open(f"/proc/self/fd/{fd}", "rb") as f:  # Linux: reopen for reading
            return f.read()


def _check_key_file(path: Path, key, password: str, load, KeyPasswordError) -> None:  # noqa: N803
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600, (
        f"the key file's mode is {stat.filemode(stat.S_IFREG | mode)}; it must be -rw------- "
        "(0600): nobody but the owner may read a private key"
    )
    data = path.read_bytes()
    assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data, (
        "the file does not hold an encrypted PEM key (-----BEGIN ENCRYPTED PRIVATE KEY-----)"
    )
    try:
        load(path)
    except KeyPasswordError:
        pass
    else:
        raise AssertionError("the key loads without a password: encrypt it")
    try:
        loaded = load(path, password)
    except KeyPasswordError:
        raise AssertionError("the key does not load with the password you were given") from None
    assert _same_key(loaded.public_key(), key.public_key()), "the file holds a different key"


__all__ = ["build_server_cert", "make_csr_for", "write_key_securely"]
