"""A private certificate authority in a few objects (introduced in notebook 04, used from 02).

Theory of operation
-------------------
A certificate is a signed statement: "the holder of *this public key* may call itself
*these names* from *not_before* until *not_after*". The signature comes from an issuer
(a certificate authority) whose own certificate says the same about *its* key, and so
on up to a **root**: a self-signed certificate the client already has in its trust
store. Verifying a server therefore means building a chain

    leaf (sent by server) -> intermediate(s) (sent by server) -> root (in the trust store)

and checking every signature, every validity period and every constraint on the way
(RFC 5280 §6). Names are checked last, against the leaf only (RFC 9525, was RFC 6125).

This module makes such chains, the way ``trustme`` does, on top of ``cryptography``:

* :class:`CA` is a root (``CA()``) or an intermediate (``root.create_intermediate()``);
  it holds a certificate and the private key that signs with it.
* :meth:`CA.issue` makes a :class:`Leaf`: a server or client certificate plus its key,
  with ``.chain`` (what a server sends) and helpers to write files or configure an
  :class:`ssl.SSLContext`.
* :meth:`CA.revoke` / :meth:`CA.crl` publish a certificate revocation list (RFC 5280 §5).
* :func:`make_csr` / :meth:`CA.sign_csr` show the real-world path: the key never leaves
  the server; only a *certificate signing request* travels to the CA.
* :func:`load_certificate` / :func:`load_private_key` read PEM or DER and, when the bytes
  are wrong, say so in one sentence instead of an ASN.1 traceback.

Every certificate carries what strict verifiers (Python 3.13's ``VERIFY_X509_STRICT``,
browsers) demand: a critical basicConstraints, a critical keyUsage, and the
authority/subject key identifiers that link a certificate to its issuer's key.

Why EC P-256 is the default
    A P-256 key is generated in tens of microseconds; an RSA-2048 key needs two random
    ~1024-bit primes and takes tens of milliseconds (often far more). P-256 gives about
    128-bit security (RSA needs 3072 bits for that), its signatures are 64 bytes, and
    every TLS 1.2/1.3 client supports it. The lab makes ~20 certificates at start-up, so
    this matters. Ask for ``key_type="rsa"`` when a lesson is *about* RSA.

Nothing here touches the network, and nothing happens at import time.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import re
import secrets
import ssl
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import KeyMismatchError, KeyPasswordError, PEMError, PKIError

if TYPE_CHECKING:
    from .cards import CertificateCard

__all__ = [
    "BACKDATE",
    "CA",
    "DEFAULT_CA_LIFETIME",
    "DEFAULT_LEAF_LIFETIME",
    "CertFiles",
    "Leaf",
    "PrivateKey",
    "ensure_key_matches",
    "load_certificate",
    "load_certificates",
    "load_pkcs12",
    "load_private_key",
    "make_csr",
    "new_private_key",
    "private_key_pem",
    "self_signed",
    "write_private_key",
]

#: The key types this module generates. (``load_private_key`` reads any type.)
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
TimeSpec = _dt.datetime | _dt.timedelta | None
Password = str | bytes | None

#: Roots and intermediates live long: replacing a root means updating every client.
DEFAULT_CA_LIFETIME = _dt.timedelta(days=3650)
#: Leaves live 90 days, like Let's Encrypt's: short lives limit the damage of a stolen key
#: (revocation is unreliable in practice), and make renewal a routine, automated job.
DEFAULT_LEAF_LIFETIME = _dt.timedelta(days=90)
#: ``not_before`` is set an hour in the past so that a client whose clock runs a little
#: behind does not see a brand-new certificate as "not yet valid" (X509 error 9).
BACKDATE = _dt.timedelta(hours=1)

_UTC = _dt.timezone.utc  # noqa: UP017 (datetime.UTC is 3.11+; the package supports 3.10)
_USAGES = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}
_REASONS = {flag.name: flag for flag in x509.ReasonFlags}
_PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


# --------------------------------------------------------------------------- keys


def new_private_key(key_type: str = "ec", size: int | None = None) -> PrivateKey:
    """Generate a private key.

    ``"ec"``: NIST P-256 (``size`` 256, the default), P-384 (384) or P-521 (521).
    ``"rsa"``: 2048 bits by default, any size ``cryptography`` accepts (>= 1024; a
    1024-bit key is useful only to watch OpenSSL's security level reject it).
    ``"ed25519"``: fine for Python and OpenSSL, but browsers do not accept it in the Web PKI.
    """
    kind = key_type.lower()
    if kind == "ec":
        curves: dict[int, ec.EllipticCurve] = {
            256: ec.SECP256R1(),
            384: ec.SECP384R1(),
            521: ec.SECP521R1(),
        }
        curve = curves.get(size or 256)
        if curve is None:
            raise PKIError(
                f"There is no EC key of size {size} here.",
                "Use key_size=None or 256 (P-256), 384 (P-384) or 521 (P-521).",
            )
        return ec.generate_private_key(curve)
    if kind == "rsa":
        bits = size or 2048
        if bits < 1024:
            raise PKIError(
                f"An RSA key of {bits} bits is too small to generate with cryptography.",
                "Use key_size=1024 or more (2048 is the usual minimum today).",
            )
        # 65537 is the public exponent everyone uses; tiny exponents such as 3 invited
        # padding attacks (Bleichenbacher 2006 signature forgery).
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise PKIError(
        f"Unknown key type {key_type!r}.",
        'Use key_type="ec" (the default), "rsa" or "ed25519".',
    )


def _signature_hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.HashAlgorithm | None:
    """The hash a CA uses with its key: matched to the key's strength (RFC 5758 §3.2)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.key_size >= 521:
            return hashes.SHA512()
        return hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()
    if isinstance(key, rsa.RSAPrivateKey):
        return hashes.SHA256()
    return None  # Ed25519/Ed448 fix their own hash: cryptography wants None


def _hash_by_name(
    name: str | None, key: CertificateIssuerPrivateKeyTypes
) -> hashes.HashAlgorithm | None:
    if name is None:
        return _signature_hash(key)
    if name.lower().replace("-", "") == "sha1":
        raise PKIError(
            "cryptography refuses to make new SHA-1 signatures (chosen-prefix collisions are "
            "practical since 2020, SHAttered/Shambles).",
            "Use sha256; to show a SHA-1 certificate being rejected, sign the TBS bytes by hand.",
        )
    table = {
        "sha256": hashes.SHA256,
        "sha384": hashes.SHA384,
        "sha512": hashes.SHA512,
    }
    try:
        return table[name.lower().replace("-", "")]()
    except KeyError:
        raise PKIError(
            f"Unknown signature hash {name!r}.", "Use 'sha256', 'sha384' or 'sha512'."
        ) from None


def _password_bytes(password: Password) -> bytes | None:
    if password is None:
        return None
    return password.encode("utf-8") if isinstance(password, str) else bytes(password)


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


# --------------------------------------------------------------------------- names & time


def _now() -> _dt.datetime:
    # X.509 times have one-second resolution (RFC 5280 §4.1.2.5): drop microseconds.
    return _dt.datetime.now(_UTC).replace(microsecond=0)


def _as_time(value: TimeSpec, now: _dt.datetime) -> _dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, _dt.timedelta):
        return now + value
    if value.tzinfo is None:  # naive datetimes are taken to be UTC, as the contract says
        value = value.replace(tzinfo=_UTC)
    return value.astimezone(_UTC).replace(microsecond=0)


def _validity(
    not_before: TimeSpec, not_after: TimeSpec, lifetime: _dt.timedelta
) -> tuple[_dt.datetime, _dt.datetime]:
    """Resolve the validity period. Give either end (or both); the other follows.

    A ``not_after`` in the past gives an expired certificate; a ``not_before`` in the
    future gives one that is not valid yet. ``timedelta`` values are relative to now.
    """
    now = _now()
    nb, na = _as_time(not_before, now), _as_time(not_after, now)
    if nb is None and na is None:
        nb, na = now - BACKDATE, now + lifetime
    elif nb is None:
        assert na is not None
        nb = min(now - BACKDATE, na - lifetime)
    elif na is None:
        na = nb + lifetime
    assert nb is not None and na is not None
    if na <= nb:
        raise PKIError(
            f"not_after ({na:%Y-%m-%d %H:%M}) is not later than not_before ({nb:%Y-%m-%d %H:%M}).",
            "Swap them, or give only one end and let the other follow.",
        )
    return nb, na


def _dns_ascii(name: str) -> str:
    """A DNS name as it goes into a certificate: ASCII, internationalised labels as
    ``xn--`` A-labels (RFC 5280 §7.2 requires the A-label form in dNSName)."""
    if name.isascii():
        return name
    return ".".join(
        label if label == "*" else label.encode("idna").decode("ascii") for label in name.split(".")
    )


def _general_name(name: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> x509.GeneralName:
    # RFC 5280 §4.2.1.6: an IP address goes in an iPAddress entry (4 or 16 raw bytes),
    # never as text in a dNSName; clients connecting to "127.0.0.1" look only there.
    if isinstance(name, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return x509.IPAddress(name)
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(_dns_ascii(name))


def _subject(common_name: str | None, organization: str | None = None) -> x509.Name:
    attrs = []
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if common_name:
        if len(common_name) > 64:  # ub-common-name, RFC 5280 Appendix A.1
            raise PKIError(
                f"A Common Name is limited to 64 characters; {common_name[:20]!r}... has {len(common_name)}.",
                "Pass a shorter common_name= (the full name belongs in the SAN anyway).",
            )
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _leaf_subject_and_san(
    names: Sequence[str], common_name: str | None, san: bool
) -> tuple[x509.Name, x509.SubjectAlternativeName | None]:
    """Subject and subjectAltName for a leaf.

    SAN vs Common Name: the subject's CN is where names lived in the 1990s. RFC 2818
    (2000) moved them to the subjectAltName extension, typed (DNS name vs IP address),
    and RFC 9525 tells clients to ignore the CN entirely. Browsers stopped reading it in
    2017 (Chrome 58). Python still falls back to the CN when a certificate has no SAN
    (``SSLContext.hostname_checks_common_name``, True by default), which is why the
    course can show a CN-only certificate (``san=False``) working in Python and failing
    in a browser.
    """
    if not names and (san or not common_name):
        raise PKIError(
            "A leaf certificate needs at least one name.",
            'Pass names, e.g. issue("www.lab.localhost", "127.0.0.1").',
        )
    if common_name is None and names:
        first = str(names[0])
        common_name = first if len(first) <= 64 else None  # long names live in the SAN only
    subject = _subject(common_name)
    if not san:
        return subject, None
    return subject, x509.SubjectAlternativeName([_general_name(n) for n in names])


class _Issuer(NamedTuple):
    """What signing needs to know about the issuer."""

    name: x509.Name
    key: CertificateIssuerPrivateKeyTypes
    ski: x509.SubjectKeyIdentifier


def _ski_of(cert: x509.Certificate) -> x509.SubjectKeyIdentifier:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key())


def _build_certificate(
    *,
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    issuer: _Issuer,
    not_before: _dt.datetime,
    not_after: _dt.datetime,
    extensions: Iterable[tuple[x509.ExtensionType, bool]],
    serial: int | None = None,
    signature_hash: str | None = None,
) -> x509.Certificate:
    """Fill in and sign a certificate (RFC 5280 §4.1):

    TBSCertificate  ::=  SEQUENCE  {
         version         [0]  EXPLICIT Version DEFAULT v1,     -- v3: we have extensions
         serialNumber         CertificateSerialNumber,
         signature            AlgorithmIdentifier,
         issuer               Name,
         validity             Validity,                        -- notBefore, notAfter
         subject              Name,
         subjectPublicKeyInfo SubjectPublicKeyInfo,
         extensions      [3]  EXPLICIT Extensions OPTIONAL }
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.name)
        .public_key(public_key)
        # RFC 5280 §4.1.2.2: positive, unique per issuer, at most 20 octets. Random serials
        # (CA/B Forum: >= 64 bits of entropy) made the 2008 MD5 rogue-CA collision attack
        # impossible, because the attacker can no longer predict the signed bytes.
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        # RFC 5280 §4.2.1.2: subjectKeyIdentifier names this certificate's key ...
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        # ... and §4.2.1.1: authorityKeyIdentifier names the key that signed it (MUST be
        # non-critical). Verifiers use the pair to pick the right issuer when several CAs
        # share a name (a root renewed with a new key, say). Python 3.13's
        # VERIFY_X509_STRICT rejects certificates without them.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer.ski),
            critical=False,
        )
    )
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(issuer.key, _hash_by_name(signature_hash, issuer.key))


def _ca_extensions(path_length: int | None) -> list[tuple[x509.ExtensionType, bool]]:
    # BasicConstraints ::= SEQUENCE {
    #      cA                      BOOLEAN DEFAULT FALSE,
    #      pathLenConstraint       INTEGER (0..MAX) OPTIONAL }       -- RFC 5280 §4.2.1.9
    return [
        # RFC 5280 §4.2.1.9: basicConstraints MUST be present and critical in CA
        # certificates. pathLenConstraint is how many *more* intermediate CAs may follow
        # below this one: 0 means "may sign leaves only", so a stolen intermediate key
        # cannot mint further CAs.
        (x509.BasicConstraints(ca=True, path_length=path_length), True),
        # RFC 5280 §4.2.1.3: a CA key signs certificates (keyCertSign) and CRLs (cRLSign);
        # digitalSignature lets it sign OCSP responses itself. Critical, so that a verifier
        # that does not understand keyUsage refuses rather than ignores it.
        (
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        ),
    ]


def _leaf_extensions(
    public_key: CertificatePublicKeyTypes,
    san_ext: x509.SubjectAlternativeName | None,
    subject: x509.Name,
    usages: Sequence[str],
    is_ca: bool,
) -> list[tuple[x509.ExtensionType, bool]]:
    unknown = [u for u in usages if u not in _USAGES]
    if unknown:
        raise PKIError(
            f"Unknown usage {unknown[0]!r}.", 'Use usages=("server",), ("client",) or both.'
        )
    exts: list[tuple[x509.ExtensionType, bool]] = [
        # RFC 5280 §4.2.1.9: critical, cA FALSE: this key must not sign other certificates.
        # (is_ca=True makes a deliberately wrong leaf for "bad issuer" exercises.)
        (x509.BasicConstraints(ca=is_ca, path_length=None), True),
        # RFC 5280 §4.2.1.3: a TLS key signs the handshake (digitalSignature). With RSA it
        # may also decrypt the TLS 1.2 RSA key exchange (keyEncipherment); EC keys never do.
        (
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        ),
    ]
    if usages:
        # RFC 5280 §4.2.1.12: extendedKeyUsage: TLS server and/or client. A server
        # certificate stolen from a web server cannot be used to log in as a client.
        exts.append((x509.ExtendedKeyUsage([_USAGES[u] for u in dict.fromkeys(usages)]), False))
    if san_ext is not None:
        # RFC 5280 §4.2.1.6: critical only when the subject is empty.
        exts.append((san_ext, len(subject) == 0))
    return exts


# --------------------------------------------------------------------------- files


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


# --------------------------------------------------------------------------- CA & Leaf


class Leaf:
    """An end-entity certificate, its private key, and the chain a server sends.

    ``chain`` is ``[leaf, intermediates...]`` and never includes the root: a client
    trusts a root because it is *already* in its trust store, never because a server
    sent it, so sending it only wastes bytes in every handshake (RFC 8446 §4.4.2 lets
    servers omit it; RFC 5246 §7.4.2 says the same for TLS 1.2).
    """

    def __init__(
        self,
        cert: x509.Certificate,
        key: PrivateKeyTypes,
        issuer: CA | Leaf | None,
        chain: Sequence[x509.Certificate] | None = None,
    ) -> None:
        self.cert = cert
        self.key = key
        self.issuer: CA | Leaf | None = issuer
        self.chain: list[x509.Certificate] = list(chain) if chain is not None else [cert]

    @classmethod
    def from_parts(
        cls,
        cert: x509.Certificate,
        key: PrivateKeyTypes,
        intermediates: Sequence[x509.Certificate] = (),
        issuer: CA | None = None,
    ) -> Leaf:
        """Wrap a certificate and key loaded from elsewhere (checks they match)."""
        ensure_key_matches(cert, key)
        return cls(cert, key, issuer, [cert, *intermediates])

    # --- bytes
    @property
    def cert_pem(self) -> bytes:
        return _pem(self.cert)

    @property
    def chain_pem(self) -> bytes:
        return b"".join(_pem(c) for c in self.chain)

    def key_pem(self, password: Password = None) -> bytes:
        """The private key as PEM PKCS#8; with ``password``, encrypted."""
        return private_key_pem(self.key, password)

    def pkcs12(self, password: Password = None, name: str | None = None) -> bytes:
        """A PKCS#12 (.p12/.pfx) bundle: key + certificate + intermediates, as browsers,
        Windows and Java import them. Python's ``ssl`` cannot load it directly; see
        :func:`load_pkcs12`."""
        label = name or (self.names or [_cn(self.cert.subject) or "tls-course"])[0]
        return pkcs12.serialize_key_and_certificates(
            label.encode("utf-8"),
            self.key,  # type: ignore[arg-type]
            self.cert,
            self.chain[1:] or None,
            _encryption(password),
        )

    @property
    def names(self) -> list[str]:
        """The SAN entries as text (DNS names and IP addresses)."""
        return _san_strings(self.cert)

    # --- files and contexts
    def write(
        self, directory: str | os.PathLike[str], name: str = "server", password: Password = None
    ) -> CertFiles:
        """Write ``<name>-cert.pem``, ``<name>-key.pem`` (0600) and ``<name>-chain.pem``
        (leaf + intermediates) into ``directory``."""
        return _write_files(directory, name, self.cert, self.chain, self.key, password)

    def configure_server(self, ctx: ssl.SSLContext) -> None:
        """Load this certificate chain and key into ``ctx`` (a server context, or a client
        context that presents a client certificate).

        ``ssl`` reads keys from files only, so they go to a private temporary directory
        (0700, key 0600) that is removed straight after loading.
        """
        with tempfile.TemporaryDirectory(prefix="tls-course-") as tmp:
            files = self.write(tmp, "leaf")
            ctx.load_cert_chain(files.chain, files.key)

    def configure_trust(self, ctx: ssl.SSLContext) -> None:
        """Trust this certificate itself (for self-signed certificates: "pinning")."""
        ctx.load_verify_locations(cadata=self.cert_pem.decode("ascii"))

    # --- display
    def card(self) -> CertificateCard:
        from .cards import CertificateCard

        return CertificateCard(self.cert)

    def _repr_html_(self) -> str:
        return self.card()._repr_html_()

    def __repr__(self) -> str:
        cn = _cn(self.cert.subject) or ", ".join(self.names) or "?"
        return f"<Leaf {cn!r} issued by {_cn(self.cert.issuer) or '?'!r}>"


class CA:
    """A certificate authority: a root (``parent=None``) or an intermediate.

    ``CA()`` makes a self-signed root; ``root.create_intermediate()`` an intermediate
    signed by it. Each CA keeps its own list of revoked serials for :meth:`crl`.
    """

    def __init__(
        self,
        common_name: str = "TLS Course Root CA",
        key_type: str = "ec",
        key_size: int | None = None,
        not_before: TimeSpec = None,
        not_after: TimeSpec = None,
        *,
        parent: CA | None = None,
        path_length: int | None = None,
        key: PrivateKeyTypes | None = None,
        organization: str | None = "TLS Course",
        signature_hash: str | None = None,
    ) -> None:
        self.key: CertificateIssuerPrivateKeyTypes = key or new_private_key(key_type, key_size)  # type: ignore[assignment]
        self.parent = parent
        subject = _subject(common_name, organization)
        nb, na = _validity(not_before, not_after, DEFAULT_CA_LIFETIME)
        public_key = self.key.public_key()
        if parent is None:
            # A root signs itself: issuer == subject, and its AKI names its own key.
            issuer = _Issuer(
                subject, self.key, x509.SubjectKeyIdentifier.from_public_key(public_key)
            )
        else:
            issuer = parent._issuer
        self.cert = _build_certificate(
            subject=subject,
            public_key=public_key,
            issuer=issuer,
            not_before=nb,
            not_after=na,
            extensions=_ca_extensions(path_length),
            signature_hash=signature_hash,
        )
        self._revoked: dict[int, tuple[_dt.datetime, x509.ReasonFlags | None]] = {}
        self._crl_number = 0

    @classmethod
    def from_parts(
        cls, cert: x509.Certificate, key: PrivateKeyTypes, parent: CA | None = None
    ) -> CA:
        """Wrap an existing certificate and key as a CA (e.g. loaded from a cache, or a
        leaf you want to *misuse* as an issuer in a "bad issuer" exercise).

        Pass ``parent`` for an intermediate, so that ``chain``, ``root`` and
        :meth:`configure_trust` know the way up to the root.
        """
        ensure_key_matches(cert, key)
        self = cls.__new__(cls)
        self.key = key  # type: ignore[assignment]
        self.parent = parent
        self.cert = cert
        self._revoked = {}
        self._crl_number = 0
        return self

    # --- identity
    @property
    def _issuer(self) -> _Issuer:
        return _Issuer(self.cert.subject, self.key, _ski_of(self.cert))

    @property
    def chain(self) -> list[x509.Certificate]:
        """``[this CA, its parents..., root]``."""
        out, ca = [], self
        while ca is not None:
            out.append(ca.cert)
            ca = ca.parent
        return out

    def _sent_chain(self) -> list[x509.Certificate]:
        """What a server sends above its leaf: this CA and its parents, minus the root."""
        chain = self.chain
        if chain[-1].issuer == chain[-1].subject:  # a self-issued root: clients have it
            chain = chain[:-1]
        return chain

    @property
    def root(self) -> CA:
        ca = self
        while ca.parent is not None:
            ca = ca.parent
        return ca

    @property
    def cert_pem(self) -> bytes:
        return _pem(self.cert)

    def key_pem(self, password: Password = None) -> bytes:
        return private_key_pem(self.key, password)

    # --- making things
    def create_intermediate(
        self,
        common_name: str = "TLS Course Intermediate CA",
        key_type: str = "ec",
        key_size: int | None = None,
        not_before: TimeSpec = None,
        not_after: TimeSpec = None,
        *,
        path_length: int | None = 0,
        signature_hash: str | None = None,
    ) -> CA:
        """An intermediate CA signed by this one (``path_length=0``: it may sign leaves
        only). Roots stay offline in real PKIs; intermediates do the daily signing, so a
        compromise can be fixed by revoking one intermediate instead of a root."""
        return CA(
            common_name,
            key_type,
            key_size,
            not_before,
            not_after,
            parent=self,
            path_length=path_length,
            signature_hash=signature_hash,
        )

    def issue(
        self,
        *names: str,
        common_name: str | None = None,
        san: bool = True,
        key_type: str = "ec",
        key_size: int | None = None,
        key: PrivateKeyTypes | None = None,
        not_before: TimeSpec = None,
        not_after: TimeSpec = None,
        usages: Sequence[str] = ("server",),
        is_ca: bool = False,
        serial: int | None = None,
        signature_hash: str | None = None,
        extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    ) -> Leaf:
        """Issue a leaf certificate for ``names`` (DNS names, ``*.`` wildcards or IPs).

        The names go into the subjectAltName extension, which is where clients look;
        the first one is also copied to the Common Name for humans. ``san=False`` leaves
        only the Common Name: the pre-2000 style that browsers now reject.

        ``not_before``/``not_after`` accept UTC datetimes or timedeltas from now; an
        expired certificate is simply one issued with ``not_after`` in the past.
        ``usages``: ``"server"`` and/or ``"client"`` (extendedKeyUsage). ``is_ca=True``
        makes a deliberately wrong leaf that claims CA:TRUE. ``serial``,
        ``signature_hash`` ("sha256", "sha384", "sha512") and extra ``extensions``
        (``(extension, critical)`` pairs) are for lab scenarios.
        """
        leaf_key = key or new_private_key(key_type, key_size)
        subject, san_ext = _leaf_subject_and_san(names, common_name, san)
        nb, na = _validity(not_before, not_after, DEFAULT_LEAF_LIFETIME)
        public_key = leaf_key.public_key()
        cert = _build_certificate(
            subject=subject,
            public_key=public_key,
            issuer=self._issuer,
            not_before=nb,
            not_after=na,
            extensions=[
                *_leaf_extensions(public_key, san_ext, subject, usages, is_ca),
                *extensions,
            ],
            serial=serial,
            signature_hash=signature_hash,
        )
        return Leaf(cert, leaf_key, self, [cert, *self._sent_chain()])

    def sign_csr(
        self,
        csr: x509.CertificateSigningRequest,
        not_before: TimeSpec = None,
        not_after: TimeSpec = None,
        usages: Sequence[str] = ("server",),
    ) -> x509.Certificate:
        """Sign a certificate signing request (PKCS#10, RFC 2986).

        The CSR's signature proves the requester holds the private key. The CA copies
        the subject and the requested subjectAltName and decides every other extension
        itself: a requester must not be able to ask for ``CA:TRUE``. A CSR without SAN
        gets its Common Name copied into the SAN, as public CAs do.
        """
        if not csr.is_signature_valid:
            raise PKIError(
                "The CSR's signature does not verify: it was not signed by the key it contains.",
                "Build it again with make_csr(key, ...), using the same key throughout.",
            )
        try:
            san_ext: x509.SubjectAlternativeName | None = csr.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value
        except x509.ExtensionNotFound:
            cn = _cn(csr.subject)
            san_ext = x509.SubjectAlternativeName([_general_name(cn)]) if cn else None
        if san_ext is None:
            raise PKIError(
                "The CSR names nothing: it has neither a subjectAltName nor a Common Name.",
                "Pass names to make_csr(key, 'host.example').",
            )
        nb, na = _validity(not_before, not_after, DEFAULT_LEAF_LIFETIME)
        public_key = csr.public_key()
        return _build_certificate(
            subject=csr.subject,
            public_key=public_key,
            issuer=self._issuer,
            not_before=nb,
            not_after=na,
            extensions=_leaf_extensions(public_key, san_ext, csr.subject, usages, False),
        )

    # --- revocation (RFC 5280 §5)
    def revoke(
        self,
        cert_or_serial: x509.Certificate | Leaf | int,
        reason: x509.ReasonFlags | str | None = None,
    ) -> None:
        """Put a certificate (or a bare serial number) on this CA's next CRL."""
        if isinstance(cert_or_serial, Leaf):
            cert_or_serial = cert_or_serial.cert
        if isinstance(cert_or_serial, x509.Certificate):
            if cert_or_serial.issuer != self.cert.subject:
                raise PKIError(
                    f"This certificate was issued by {_cn(cert_or_serial.issuer)!r}, "
                    f"not by {_cn(self.cert.subject)!r}.",
                    "Revoke it at the CA that issued it: a CRL only speaks for its own issuer.",
                )
            serial = cert_or_serial.serial_number
        else:
            serial = int(cert_or_serial)
        flag: x509.ReasonFlags | None
        if isinstance(reason, str):
            flag = _REASONS.get(reason.lower().replace(" ", "_").replace("-", "_"))
            if flag is None:
                raise PKIError(
                    f"Unknown revocation reason {reason!r}.",
                    "Use one of: " + ", ".join(sorted(_REASONS)) + ".",
                )
        else:
            flag = reason
        self._revoked[serial] = (_now(), flag)

    @property
    def revoked(self) -> list[int]:
        """Serial numbers revoked so far."""
        return list(self._revoked)

    def crl(self, days: int = 7) -> x509.CertificateRevocationList:
        """A fresh CRL, valid for ``days``, listing every serial revoked so far.

        CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }
        TBSCertList ::= SEQUENCE { version, signature, issuer, thisUpdate, nextUpdate,
                                   revokedCertificates, crlExtensions [0] } (RFC 5280 §5.1)
        """
        now = _now()
        self._crl_number += 1
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            # thisUpdate is backdated like certificates, so a slow clock accepts it.
            .last_update(now - BACKDATE)
            .next_update(now + _dt.timedelta(days=days))
            # RFC 5280 §5.2.1: conforming CRLs MUST carry authorityKeyIdentifier ...
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ski_of(self.cert)),
                critical=False,
            )
            # ... and §5.2.3: a monotonically increasing cRLNumber, so a client can tell
            # a newer CRL from an older one an attacker replays.
            .add_extension(x509.CRLNumber(self._crl_number), critical=False)
        )
        for serial, (when, flag) in self._revoked.items():
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
            if flag is not None and flag is not x509.ReasonFlags.unspecified:
                # RFC 5280 §5.3.1: reasonCode, non-critical (and omitted for "unspecified").
                entry = entry.add_extension(x509.CRLReason(flag), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(self.key, _signature_hash(self.key))

    def crl_pem(self, days: int = 7) -> bytes:
        return self.crl(days).public_bytes(serialization.Encoding.PEM)

    # --- files and contexts
    def configure_trust(self, ctx: ssl.SSLContext) -> None:
        """Make ``ctx`` trust the root this CA chains to (the root only: that is what
        a trust store holds)."""
        ctx.load_verify_locations(cadata=self.root.cert_pem.decode("ascii"))

    def write(
        self, directory: str | os.PathLike[str], name: str = "ca", password: Password = None
    ) -> CertFiles:
        """Write ``<name>-cert.pem``, ``<name>-key.pem`` (0600) and ``<name>-chain.pem``
        (this CA up to the root)."""
        return _write_files(directory, name, self.cert, self.chain, self.key, password)

    # --- display
    def card(self) -> CertificateCard:
        from .cards import CertificateCard

        return CertificateCard(self.cert)

    def _repr_html_(self) -> str:
        return self.card()._repr_html_()

    def __repr__(self) -> str:
        kind = (
            "root"
            if self.parent is None
            else f"intermediate under {_cn(self.parent.cert.subject)!r}"
        )
        return f"<CA {_cn(self.cert.subject)!r} ({kind})>"


def self_signed(
    *names: str,
    common_name: str | None = None,
    san: bool = True,
    key_type: str = "ec",
    key_size: int | None = None,
    key: PrivateKeyTypes | None = None,
    not_before: TimeSpec = None,
    not_after: TimeSpec = None,
    usages: Sequence[str] = ("server",),
    is_ca: bool = False,
    serial: int | None = None,
    signature_hash: str | None = None,
) -> Leaf:
    """A certificate signed by its own key: no CA vouches for it.

    A client can only trust it by trusting *this very certificate*
    (:meth:`Leaf.configure_trust`), which is what "pinning" a self-signed certificate
    means. Anyone else sees X509 error 18, "self-signed certificate". The leaf's
    ``issuer`` is itself and its chain is just ``[leaf]``.
    """
    leaf_key = key or new_private_key(key_type, key_size)
    subject, san_ext = _leaf_subject_and_san(names, common_name, san)
    nb, na = _validity(not_before, not_after, DEFAULT_LEAF_LIFETIME)
    public_key = leaf_key.public_key()
    issuer = _Issuer(subject, leaf_key, x509.SubjectKeyIdentifier.from_public_key(public_key))  # type: ignore[arg-type]
    cert = _build_certificate(
        subject=subject,
        public_key=public_key,
        issuer=issuer,
        not_before=nb,
        not_after=na,
        extensions=_leaf_extensions(public_key, san_ext, subject, usages, is_ca),
        serial=serial,
        signature_hash=signature_hash,
    )
    leaf = Leaf(cert, leaf_key, None, [cert])
    leaf.issuer = leaf
    return leaf


def make_csr(
    key: CertificateIssuerPrivateKeyTypes, *names: str, common_name: str | None = None
) -> x509.CertificateSigningRequest:
    """A certificate signing request for ``names``, signed with ``key``.

    This is how certificates are obtained in real life (certbot, ACME, RFC 8555): the
    key is generated on the server and never leaves it; the CSR carries the public key
    and the names, and its signature proves possession of the private key.
    """
    # CertificationRequestInfo ::= SEQUENCE {
    #      version       INTEGER { v1(0) } (v1,...),
    #      subject       Name,
    #      subjectPKInfo SubjectPublicKeyInfo{{ PKInfoAlgorithms }},
    #      attributes    [0] Attributes{{ CRIAttributes }} }        -- RFC 2986 §4.1
    # The SAN travels as an extensionRequest attribute (RFC 2985 §5.4.2).
    subject, san_ext = _leaf_subject_and_san(names, common_name, True)
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if san_ext is not None:
        builder = builder.add_extension(san_ext, critical=len(subject) == 0)
    return builder.sign(key, _signature_hash(key))


# --------------------------------------------------------------------------- loading


def _cn(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _san_strings(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(g.value) for g in san if isinstance(g, (x509.DNSName, x509.IPAddress))]


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


def ensure_key_matches(cert: x509.Certificate, key: PrivateKeyTypes) -> None:
    """Raise :class:`~helpers.errors.KeyMismatchError` unless ``key`` belongs to ``cert``.

    A certificate holds a *public* key; the pair matches when the private key's public
    half is that same key. Servers fail with "key values mismatch" otherwise.
    """
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if cert.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise KeyMismatchError(
            f"The private key does not belong to the certificate for {_cn(cert.subject) or 'this subject'!r}: their public keys differ.",
            "Pair the certificate with the key it was issued for (compare "
            "cert.public_key() with key.public_key()), or issue a new certificate for this key.",
        )
