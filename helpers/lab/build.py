"""Certificates and server contexts for the lab, with a cache (introduced in notebook 02).

Theory of operation
-------------------
:func:`ensure` returns a :class:`LabFiles`: paths to the lab root CA, the CRL, the
client certificate and one chain + key per scenario. It builds them with
:mod:`helpers.pki`, or reuses the ones it built before:

* **Where**: ``$TLS_COURSE_CACHE`` if set (the tests set it), else
  ``$XDG_CACHE_HOME/tls-course`` or ``~/.cache/tls-course``. Never inside the repository:
  generated keys do not belong in version control.
* **What**: one *generation* directory per build, ``lab-<recipe hash>-<time>-<random>``,
  with ``manifest.json`` written last. A generation is complete or it is ignored, so two
  processes building at once each get a consistent set (the newest wins next time).
* **When it is rebuilt**: when what it would build changes, when a file is missing, or
  when anything that must stay valid (a leaf, the CRL's ``nextUpdate``, a "not yet valid"
  leaf's ``notBefore``) would change within 7 days. "What it would build" is a hash in
  the directory name (:func:`build_fingerprint`) of the scenario recipes, the
  :class:`Timeline` (every date the build uses: how far the CAs are backdated, how long
  everything lives), the defaults of :mod:`helpers.pki` and :data:`FORMAT`. So a course
  update that changes a date gives every learner new certificates at the next start,
  instead of old ones that disagree with the lesson until they happen to expire.
* **The CA keys are never written**: the cache holds only what the servers need (leaf
  keys, mode 0600). A CA key on disk would be a CA anyone who reads the file could use
  to impersonate any site to a browser that trusts the lab root. When the lab needs new
  certificates it simply builds a new CA, so trust the new ``ca.pem`` after a rebuild.
* **The description signer**: a shared lab signs what it serves to students
  (:mod:`helpers.lab.remote.signing`), long after the root key is gone. So while the
  root key is in memory, the build also issues ``signer.pem``, a certificate that can
  sign lab descriptions and nothing else (no TLS, no certificates:
  :func:`_description_signer`), with its key in ``signer-key.pem`` (0600).
* **The ACME CA, the one CA key on disk** (notebook 10): public CAs keep their root
  *offline* (in a safe, used a few times a year to certify intermediates) and sign
  subscribers' certificates with an *online issuing CA*, whose key must be at hand
  because an ACME CA signs on demand, whenever a client finishes an order (RFC 8555
  §7.4). The lab does the same: while the root key is in memory, the build certifies
  "TLS Course Lab ACME CA" (:func:`_acme_issuing_ca`) and stores its key like a leaf key
  (``acme-ca-key.pem``, 0600) for :mod:`helpers.acme.server`, which the lab starts on
  loopback. Whoever reads that file can issue certificates, so the certificate limits
  what they could be: ``pathLenConstraint`` 0 (leaves only, never another CA),
  extendedKeyUsage ``serverAuth`` alone (TLS servers: no client or code-signing
  certificates) and the lab's nameConstraints (``*.lab.localhost`` and loopback
  addresses only, on the ACME CA itself and on the root above it). The root and the
  scenarios' intermediate stay as before: never written.

:func:`server_context` turns a scenario and its files into an :class:`ssl.SSLContext`.
Each scenario listens on its own port because an ``sni_callback`` that swaps contexts
swaps only the certificate: not ``verify_mode`` (mTLS) and not the protocol versions.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import ssl
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .. import pki
from ..errors import PKIError
from ..pki.extensions import _name_constraints, key_usage
from ..pki.validity import BACKDATE, DEFAULT_CA_LIFETIME, DEFAULT_LEAF_LIFETIME
from .legacy import TLS_VERSIONS
from .scenarios import SCENARIOS, CertRecipe, Scenario, recipes_fingerprint

__all__ = [
    "TIMELINE",
    "LabFiles",
    "Timeline",
    "build_fingerprint",
    "cache_dir",
    "ensure",
    "server_context",
    "sha1_resign",
]

#: Bump when the layout of a generation directory, or anything the build code puts into a
#: certificate that the recipes and the timeline do not describe, changes: cached
#: generations of another format are ignored and rebuilt.
#: 3: a generation holds the description signer (signer.pem, signer-key.pem);
#: 4: the lab root carries nameConstraints (:data:`LAB_PERMITTED`);
#: 5: no dNSName "127.0.0.1" in them; an address-only leaf's CN is not a host name;
#: 6: a generation holds the online ACME issuing CA (acme-ca.pem, acme-ca-key.pem).
FORMAT = 6
#: What the lab root may vouch for (its nameConstraints' permitted subtrees): the lab's
#: DNS domain (RFC 6761 §6.3: under localhost) and the loopback blocks, nothing else.
#: Not a *dNSName* "127.0.0.1": rustls (uv's TLS library) rejects a DNS constraint that
#: is an IP address as malformed, and then trusts nothing under the root (measured with
#: uv 0.13.8: ``MalformedNameConstraint``). See :func:`_address_only_cn` for the CN side.
LAB_PERMITTED: tuple[str | x509.GeneralName, ...] = (
    "lab.localhost",
    "127.0.0.0/8",
    "::1/128",
)


def _address_only_cn(names: tuple[str, ...]) -> str | None:
    """A Common Name for a leaf whose subjectAltName holds only IP addresses.

    OpenSSL checks a leaf's CN against the issuer's DNS name constraints when the leaf
    has no DNS name in its subjectAltName, *if* the CN looks like a host name; "127.0.0.1"
    does, and no DNS subtree permits it ("permitted subtree violation"). A CN with a
    space in it is not a host name, so it is not checked; clients that match names read
    the subjectAltName anyway (RFC 9525 §6.3: the CN is ignored when a SAN is present).
    """

    def is_address(name: str) -> bool:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    if names and all(is_address(n) for n in names):
        return f"{names[0]} (lab address)"
    return None


CACHE_ENV = "TLS_COURSE_CACHE"
RENEW_BEFORE = _dt.timedelta(days=7)
CRL_DAYS = 100  # longer than a leaf lives (90 days): the CRL never expires before a rebuild

# RFC 2409 §6.2, "Second Oakley Group": the 1024-bit MODP safe prime, generator 2.
# A fixed, well-known group is exactly what made Logjam's precomputation pay off.
OAKLEY_GROUP_2 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
    16,
)


@dataclass(frozen=True)
class Timeline:
    """Every date the lab builds with, in days relative to the moment of the build.

    The CAs are backdated so that each certificate is issued while its issuer already
    exists, even the expired leaf (issued ``expired_from`` days ago): a 10-year root from
    two years ago, a 5-year intermediate from one. The "not yet valid" leaf starts far
    enough ahead to stay in the future for as long as a generation is reused.
    """

    root_backdate: int = 730
    root_lifetime: int = 3650
    intermediate_backdate: int = 365
    intermediate_lifetime: int = 5 * 365
    expired_from: int = 120  # the expired leaf: notBefore this many days ago ...
    expired_until: int = 30  # ... and notAfter this many days ago
    future_from: int = 730  # the not-yet-valid leaf: notBefore this many days ahead ...
    future_until: int = 820  # ... and notAfter this many days ahead
    crl_days: int = CRL_DAYS
    # The ACME issuing CA (notebook 10) lives a year from the build: longer than the 90
    # days of a "classic" certificate it issues, shorter than the root.
    acme_lifetime: int = 365


#: The dates the lab uses. Part of the cache key: change one and every cache rebuilds.
TIMELINE = Timeline()


def build_fingerprint(
    scenarios: Mapping[str, Scenario] = SCENARIOS, timeline: Timeline = TIMELINE
) -> str:
    """A short hash of everything a generation is built from (its cache key)."""
    blob = json.dumps(
        {
            "format": FORMAT,
            "recipes": recipes_fingerprint(scenarios),
            "timeline": asdict(timeline),
            # Leaves that give no dates get pki's defaults: those are part of the build too.
            "pki": [
                DEFAULT_LEAF_LIFETIME.total_seconds(),
                DEFAULT_CA_LIFETIME.total_seconds(),
                BACKDATE.total_seconds(),
            ],
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)  # noqa: UP017 - Python 3.10 has no datetime.UTC


def cache_dir() -> Path:
    """Where the lab keeps its certificates (outside the repository)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "tls-course"


@dataclass(frozen=True)
class LabFiles:
    """Paths of one complete generation of lab certificates."""

    directory: Path
    ca_bundle: Path
    crl: Path
    client_chain: Path
    client_key: Path
    dh_params: Path
    chains: Mapping[str, Path]
    keys: Mapping[str, Path]
    rebuild_after: _dt.datetime
    built: bool  # True if this call built it, False if it came from the cache
    # The description signer (see _description_signer): certificate and key (mode 0600).
    signer_cert: Path
    signer_key: Path
    # The online ACME issuing CA (see _acme_issuing_ca): certificate and key (mode 0600).
    acme_ca: Path
    acme_ca_key: Path


# --------------------------------------------------------------------------- SHA-1


def _der_header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER TLV at ``pos`` (X.690 §8.1)."""
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:  # long form: the low bits say how many length bytes follow
        n = first & 0x7F
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    else:
        length = first
    return tag, pos, pos + length


def _der(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes([tag, n]) + value
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + value


# AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }
# ecdsa-with-SHA1 (1.2.840.10045.4.1, RFC 3279 §2.2.3): parameters absent.
_ECDSA_SHA1 = bytes.fromhex("300906072a8648ce3d0401")
# sha1WithRSAEncryption (1.2.840.113549.1.1.5, RFC 3279 §2.2.1): parameters NULL.
_RSA_SHA1 = bytes.fromhex("300d06092a864886f70d0101050500")


def sha1_resign(cert: x509.Certificate, issuer_key: pki.PrivateKey) -> x509.Certificate:
    """Return ``cert`` re-signed by ``issuer_key`` with SHA-1 (for the ``sha1`` scenario).

    ``cryptography`` refuses to *build* a SHA-1 certificate, rightly. The lab needs one
    to show that clients refuse it, so it does by hand what a CA does (RFC 5280 §4.1)::

        Certificate ::= SEQUENCE {
            tbsCertificate       TBSCertificate,   -- contains signature AlgorithmIdentifier
            signatureAlgorithm   AlgorithmIdentifier,
            signatureValue       BIT STRING }

    1. take the TBSCertificate ``cryptography`` built (signed with SHA-256);
    2. replace its ``signature`` field (the third element, §4.1.2.3) with the SHA-1
       AlgorithmIdentifier: the algorithm is part of what gets signed;
    3. sign the new TBS bytes with the issuer's key and SHA-1 (the low-level key API
       still allows it) and wrap everything in the outer SEQUENCE.
    """
    if isinstance(issuer_key, ec.EllipticCurvePrivateKey):
        algorithm = _ECDSA_SHA1
    elif isinstance(issuer_key, rsa.RSAPrivateKey):
        algorithm = _RSA_SHA1
    else:
        raise PKIError(
            "Only EC and RSA issuers can make a SHA-1 signature.", "Use an EC or RSA CA."
        )
    tbs = cert.tbs_certificate_bytes
    tag, start, end = _der_header(tbs, 0)
    fields: list[bytes] = []
    pos = start
    while pos < end:
        _t, value_start, value_end = _der_header(tbs, pos)
        fields.append(tbs[pos:value_end])
        pos = value_end
    # fields: [0] version, serialNumber, signature, issuer, validity, subject, spki, ...
    fields[2] = algorithm
    new_tbs = _der(tag, b"".join(fields))
    if isinstance(issuer_key, ec.EllipticCurvePrivateKey):
        signature = issuer_key.sign(new_tbs, ec.ECDSA(hashes.SHA1()))  # noqa: S303
    else:
        from cryptography.hazmat.primitives.asymmetric import padding

        signature = issuer_key.sign(new_tbs, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    bit_string = _der(0x03, b"\x00" + signature)  # 0 unused bits
    return x509.load_der_x509_certificate(_der(0x30, new_tbs + algorithm + bit_string))


def _der_integer(value: int) -> bytes:
    # X.690 §8.3: two's complement, so a leading 0x00 keeps a high-bit number positive.
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def dh_params_pem(prime: int, generator: int) -> bytes:
    """PEM ``DH PARAMETERS``, the file ``SSLContext.load_dh_params`` reads.

    PKCS #3: ``DHParameter ::= SEQUENCE { prime INTEGER, base INTEGER }``. Written by hand
    because ``cryptography`` has deprecated finite-field DH altogether.
    """
    der = _der(0x30, _der_integer(prime) + _der_integer(generator))
    b64 = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return (
        "-----BEGIN DH PARAMETERS-----\n" + "\n".join(lines) + "\n-----END DH PARAMETERS-----\n"
    ).encode()


# --------------------------------------------------------------------------- strict defects

#: What each ``CertRecipe.defect`` does to the certificate: ``(which certificate, the
#: extension, "drop" or "noncritical")``. Each breaks one "MUST" of RFC 5280 that OpenSSL
#: checks only under ``X509_V_FLAG_X509_STRICT`` (Python 3.13's ``VERIFY_X509_STRICT``).
_DEFECTS: dict[str, tuple[str, x509.ObjectIdentifier, str]] = {
    # §4.2.1.1: AKI "MUST be included in all certificates generated by conforming CAs".
    "no-aki": ("leaf", x509.ExtensionOID.AUTHORITY_KEY_IDENTIFIER, "drop"),
    # §4.2.1.9: in a CA certificate basicConstraints "MUST" be critical.
    "bc-noncritical": ("ca", x509.ExtensionOID.BASIC_CONSTRAINTS, "noncritical"),
    # §4.2.1.3: a CA certificate that signs certificates "MUST" carry keyUsage keyCertSign.
    "ca-no-keyusage": ("ca", x509.ExtensionOID.KEY_USAGE, "drop"),
}


def rebuild_without(
    cert: x509.Certificate,
    signer: pki.PrivateKey,
    oid: x509.ObjectIdentifier,
    change: str = "drop",
) -> x509.Certificate:
    """``cert`` re-signed by ``signer`` with extension ``oid`` dropped (``"drop"``) or
    marked non-critical (``"noncritical"``); everything else (names, serial, dates, key,
    the other extensions) is copied. This is how the lab makes the strict-verification
    scenarios: certificates that are fine except for one extension."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())  # type: ignore[arg-type]
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for ext in cert.extensions:
        if ext.oid == oid and change == "drop":
            continue
        critical = False if (ext.oid == oid and change == "noncritical") else ext.critical
        builder = builder.add_extension(ext.value, critical=critical)
    return builder.sign(signer, hashes.SHA256())  # type: ignore[arg-type]


def _defective_ca(defect: str, inter: pki.CA) -> pki.CA:
    """A second lab intermediate, signed by the lab root, with the CA-side ``defect``."""
    root = inter.parent
    assert root is not None, "the lab intermediate has a parent"
    _where, oid, change = _DEFECTS[defect]
    # Without keyUsage, a pathLenConstraint is itself a strict error (81, "Path length
    # given without key usage keyCertSign", checked first): leave it out there, so the
    # chain shows the one fault it is about (92).
    path_length = None if defect == "ca-no-keyusage" else 0
    made = root.create_intermediate(
        f"TLS Course Lab Intermediate CA ({defect})", path_length=path_length
    )
    cert = rebuild_without(made.cert, root.key, oid, change)
    return pki.CA.from_parts(cert, made.key, parent=root)


# --------------------------------------------------------------------------- building


def _leaf_for(
    recipe: CertRecipe,
    inter: pki.CA,
    extra: dict[str, pki.CA],
    now: _dt.datetime,
    timeline: Timeline = TIMELINE,
) -> pki.Leaf:
    """Build one scenario certificate from its recipe."""
    times: dict[str, _dt.datetime | None] = {"not_before": None, "not_after": None}
    days = _dt.timedelta(days=1)
    if recipe.validity == "expired":
        times = {
            "not_before": now - timeline.expired_from * days,
            "not_after": now - timeline.expired_until * days,
        }
    elif recipe.validity == "future":
        # Far enough ahead that it stays "not yet valid" for the whole life of the cache.
        times = {
            "not_before": now + timeline.future_from * days,
            "not_after": now + timeline.future_until * days,
        }
    kwargs = dict(
        san=recipe.san,
        key_type=recipe.key_type,
        key_size=recipe.key_size,
        usages=recipe.usages,
        **times,
    )
    if recipe.san and (cn := _address_only_cn(recipe.names)) is not None:
        kwargs["common_name"] = cn
    if recipe.issuer == "self":
        return pki.self_signed(*recipe.names, **kwargs)  # type: ignore[arg-type]
    if recipe.issuer == "untrusted":
        issuer = extra.setdefault(
            "untrusted", pki.CA("Untrusted Root CA (in no trust store)", organization="Nobody")
        )
    elif recipe.defect and _DEFECTS[recipe.defect][0] == "ca":
        issuer = extra.get(recipe.defect) or extra.setdefault(
            recipe.defect, _defective_ca(recipe.defect, inter)
        )
    elif recipe.issuer == "not-a-ca":
        if "not-a-ca" not in extra:
            # A perfectly ordinary server certificate (CA:FALSE) ...
            impostor = inter.issue(f"impostor.{'lab.localhost'}", common_name="Not a CA")
            # ... misused as an issuer: pki.CA.from_parts wraps any cert + key as a signer.
            extra["not-a-ca"] = pki.CA.from_parts(impostor.cert, impostor.key, parent=inter)
        issuer = extra["not-a-ca"]
    else:
        issuer = inter
    leaf = issuer.issue(*recipe.names, **kwargs)  # type: ignore[arg-type]
    if recipe.signature_hash == "sha1":
        leaf = pki.Leaf(sha1_resign(leaf.cert, issuer.key), leaf.key, issuer, None)
        leaf.chain = [leaf.cert, *issuer.chain[:-1]]
    if recipe.defect and _DEFECTS[recipe.defect][0] == "leaf":
        _where, oid, change = _DEFECTS[recipe.defect]
        cert = rebuild_without(leaf.cert, issuer.key, oid, change)
        leaf = pki.Leaf(cert, leaf.key, issuer, None)
        leaf.chain = [cert, *issuer.chain[:-1]]
    if recipe.chain == "leaf":
        leaf.chain = [leaf.cert]
    elif recipe.chain == "with-root":
        leaf.chain = [leaf.cert, *issuer.chain]
    return leaf


#: Extended key usage of the description signer: "signs a shared lab's description", and
#: nothing else. An OID under 2.25 is a UUID turned into a number (ITU-T X.667), which
#: anyone may mint without registering; OpenSSL and browsers know no such purpose, so a
#: certificate that carries only this one cannot serve or authenticate TLS (RFC 5280 §4.2.1.12).
DESCRIPTION_SIGNING = x509.ObjectIdentifier("2.25.49537438163292830973207628837808454909")


def _description_signer(
    root: pki.CA, now: _dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate, issued by the lab root, that only signs lab descriptions.

    The root key exists only while a generation is built (it is never written), but a
    shared lab must sign what it serves every time a student joins, perhaps days later
    from a cached generation. So the root delegates, as an OCSP responder's certificate
    does (RFC 6960 §4.2.2.2): it certifies a separate key whose certificate says what it
    may do. ``keyUsage`` digitalSignature only, ``CA:FALSE``, no subject alternative name
    and an extended key usage of :data:`DESCRIPTION_SIGNING` alone (no ``serverAuth``,
    no ``clientAuth``): a stolen signer key cannot impersonate a lab server or a student,
    and cannot issue certificates. Its key is stored 0600 like the leaf keys; it lives as
    long as a leaf (the generation is rebuilt before it expires).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COMMON_NAME, "TLS Course Lab description signer"),
            x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "TLS Course"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(root.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + DEFAULT_LEAF_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage("digital_signature"), critical=True)
        .add_extension(x509.ExtendedKeyUsage([DESCRIPTION_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root.cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(root.key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return cert, key


#: The ACME CA's name: what ``openssl x509 -issuer`` shows on a certificate it issued.
ACME_CA_NAME = "TLS Course Lab ACME CA"


def _acme_issuing_ca(
    root: pki.CA, now: _dt.datetime, timeline: Timeline
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The lab's online issuing CA for ACME (notebook 10), certified by the lab root.

    Its key is written to disk (see the module docstring: an ACME CA signs on demand),
    so everything a thief could do with it is fenced in by its certificate, as the
    CA/Browser Forum's TLS Baseline Requirements fence a public issuing CA:

    * basicConstraints ``CA:TRUE, pathlen:0`` (RFC 5280 §4.2.1.9): it signs leaves only;
      a certificate it signed with ``CA:TRUE`` is rejected by every verifier;
    * keyUsage ``keyCertSign, cRLSign`` (+ digitalSignature), critical (§4.2.1.3): it
      signs certificates and the CRL that ``revokeCert`` updates (RFC 8555 §7.6);
    * extendedKeyUsage ``serverAuth`` alone (§4.2.1.12; the Baseline Requirements'
      profile of a subordinate CA certificate, §7.1.2, asks a TLS issuing CA for an
      EKU with id-kp-serverAuth, and Chrome's root program wants hierarchies that
      serve TLS only). OpenSSL reads an EKU in a CA certificate as a limit on the whole
      chain below it, so a client certificate it issued fails ``-purpose sslclient`` ("unsuitable certificate purpose", measured
      with OpenSSL 3.0);
    * nameConstraints :data:`LAB_PERMITTED` (§4.2.1.10), the root's own: a certificate
      for ``www.bank.example`` from this key fails verification at both levels.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COMMON_NAME, ACME_CA_NAME),
            x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "TLS Course"),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(root.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + _dt.timedelta(days=timeline.acme_lifetime))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage("digital_signature", "key_cert_sign", "crl_sign"), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root.cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if LAB_PERMITTED:  # an empty nameConstraints is not allowed (RFC 5280 §4.2.1.10)
        builder = builder.add_extension(_name_constraints(LAB_PERMITTED), critical=True)
    return builder.sign(root.key, hashes.SHA256()), key  # type: ignore[arg-type]


def _write_pem(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _build(
    parent: Path,
    scenarios: Mapping[str, Scenario],
    fingerprint: str,
    timeline: Timeline = TIMELINE,
) -> Path:
    now = _utcnow().replace(microsecond=0)
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    final = parent / f"lab-{fingerprint}-{stamp}-{secrets.token_hex(3)}"
    tmp = parent / f".building-{final.name}"
    tmp.mkdir(parents=True, mode=0o700)
    try:
        # Backdated, so every leaf (even the expired one) is issued while its CAs already
        # existed (see Timeline).
        t, days = timeline, _dt.timedelta(days=1)
        root = pki.CA(
            "TLS Course Lab Root CA",
            not_before=-t.root_backdate * days,
            not_after=(t.root_lifetime - t.root_backdate) * days,
            # A critical nameConstraints (RFC 5280 §4.2.1.10): whoever trusts this root
            # (a teacher's browser, a student who joined a lab) trusts it for lab names
            # and loopback addresses only, never for a real site. Every scenario under
            # this root names *.lab.localhost or 127.0.0.1 (the description signer names
            # no host); "untrusted-root" and "self-signed" have roots of their own.
            permitted=LAB_PERMITTED,
        )
        inter = root.create_intermediate(
            "TLS Course Lab Intermediate CA",
            not_before=-t.intermediate_backdate * days,
            not_after=(t.intermediate_lifetime - t.intermediate_backdate) * days,
        )
        extra: dict[str, pki.CA] = {}
        deadlines = [root.cert.not_valid_after_utc, inter.cert.not_valid_after_utc]
        files: dict[str, dict[str, str]] = {}
        for name, scenario in scenarios.items():
            leaf = _leaf_for(scenario.cert, inter, extra, now, timeline)
            written = leaf.write(tmp, name)
            files[name] = {"chain": written.chain.name, "key": written.key.name}
            if scenario.cert.validity == "future":
                deadlines.append(leaf.cert.not_valid_before_utc)
            elif scenario.cert.validity == "current":
                deadlines.append(leaf.cert.not_valid_after_utc)
            if scenario.strict is not None and "CRL" in " ".join(scenario.check_flags):
                inter.revoke(leaf, reason="key_compromise")
        client = inter.issue(
            f"student.{'lab.localhost'}", common_name="TLS Course Student", usages=("client",)
        )
        client.write(tmp, "client")
        deadlines.append(client.cert.not_valid_after_utc)
        # While the root key is in memory: the certificate that signs shared descriptions.
        signer_cert, signer_key = _description_signer(root, now)
        _write_pem(tmp / "signer.pem", signer_cert.public_bytes(serialization.Encoding.PEM))
        pki.write_private_key(tmp / "signer-key.pem", signer_key)  # mode 0600, like leaf keys
        deadlines.append(signer_cert.not_valid_after_utc)
        # ... and the online ACME issuing CA, whose key the ACME server keeps using.
        acme_cert, acme_key = _acme_issuing_ca(root, now, t)
        _write_pem(tmp / "acme-ca.pem", acme_cert.public_bytes(serialization.Encoding.PEM))
        pki.write_private_key(tmp / "acme-ca-key.pem", acme_key)  # mode 0600, like leaf keys
        deadlines.append(acme_cert.not_valid_after_utc)
        _write_pem(tmp / "ca.pem", root.cert_pem)
        crl = inter.crl(days=t.crl_days)
        _write_pem(tmp / "crl.pem", crl.public_bytes(serialization.Encoding.PEM))
        deadlines.append(crl.next_update_utc or now)
        _write_pem(tmp / "dh1024.pem", dh_params_pem(OAKLEY_GROUP_2, 2))
        manifest = {
            "format": FORMAT,
            "fingerprint": fingerprint,
            "created": now.isoformat(),
            "rebuild_after": (min(deadlines) - RENEW_BEFORE).isoformat(),
            "scenarios": files,
        }
        # The manifest goes in last: a directory without one is an unfinished build.
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _load(directory: Path, scenarios: Mapping[str, Scenario], built: bool) -> LabFiles | None:
    """A :class:`LabFiles` for ``directory``, or None if it is incomplete or stale."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
        if manifest.get("format") != FORMAT:
            return None
        rebuild_after = _dt.datetime.fromisoformat(manifest["rebuild_after"])
        entries = manifest["scenarios"]
        chains = {n: directory / entries[n]["chain"] for n in scenarios}
        keys = {n: directory / entries[n]["key"] for n in scenarios}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not built and _utcnow() >= rebuild_after:
        return None
    files = LabFiles(
        directory=directory,
        ca_bundle=directory / "ca.pem",
        crl=directory / "crl.pem",
        client_chain=directory / "client-chain.pem",
        client_key=directory / "client-key.pem",
        dh_params=directory / "dh1024.pem",
        chains=chains,
        keys=keys,
        rebuild_after=rebuild_after,
        built=built,
        signer_cert=directory / "signer.pem",
        signer_key=directory / "signer-key.pem",
        acme_ca=directory / "acme-ca.pem",
        acme_ca_key=directory / "acme-ca-key.pem",
    )
    needed = [files.ca_bundle, files.crl, files.client_chain, files.client_key, files.dh_params]
    needed += [files.signer_cert, files.signer_key, files.acme_ca, files.acme_ca_key]
    if not all(p.is_file() for p in [*needed, *chains.values(), *keys.values()]):
        return None
    return files


def _cleanup(parent: Path, keep: Path) -> None:
    """Remove older generations (best effort: a lab elsewhere may still be reading one)."""
    for old in parent.glob("lab-*"):
        if old != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    for stale in parent.glob(".building-lab-*"):
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)


def ensure(
    directory: str | os.PathLike[str] | None = None,
    scenarios: Mapping[str, Scenario] = SCENARIOS,
    *,
    timeline: Timeline | None = None,
) -> LabFiles:
    """The lab's certificate files: from the cache when current, else freshly built.

    A cached generation is reused only if it was built from the same recipes, the same
    :class:`Timeline` (default :data:`TIMELINE`) and the same format, and is complete and
    not about to expire.
    """
    timeline = TIMELINE if timeline is None else timeline
    parent = Path(directory) if directory is not None else cache_dir()
    parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fingerprint = build_fingerprint(scenarios, timeline)
    for candidate in sorted(parent.glob(f"lab-{fingerprint}-*"), reverse=True):
        files = _load(candidate, scenarios, built=False)
        if files is not None:
            return files
    built = _build(parent, scenarios, fingerprint, timeline)
    _cleanup(parent, built)
    files = _load(built, scenarios, built=True)
    assert files is not None, "a freshly built lab generation is incomplete"
    return files


# --------------------------------------------------------------------------- contexts

#: Every lab server's lowest TLS version unless its scenario pins one (RFC 8996).
FLOOR = ssl.TLSVersion.TLSv1_2


def server_context(scenario: Scenario, files: LabFiles) -> ssl.SSLContext:
    """The :class:`ssl.SSLContext` a scenario's server uses.

    ``PROTOCOL_TLS_SERVER`` starts from secure server defaults: no compression (CRIME),
    no SSLv2/3, fresh (EC)DH keys per handshake (OP_SINGLE_*_USE: forward secrecy even if
    a server key leaks later). Its *minimum version* is not one of them everywhere: a
    python.org Python sets TLS 1.2, but Debian and Ubuntu build Python with
    ``--with-ssl-default-suites=openssl`` and leave ``MINIMUM_SUPPORTED`` (TLS 1.0). So
    every lab server sets :data:`FLOOR` (TLS 1.2; RFC 8996 retired 1.0 and 1.1: BEAST,
    weak MAC/PRF constructions) itself. That matters most for the ``weak-key`` and
    ``sha1`` servers: they run at security level 0 to load their weak certificates, and
    level 0 would otherwise let them speak TLS 1.0 on a Debian Python. Scenarios that are
    *about* a weakness switch exactly one thing off, and say so.

    The TLS 1.0/1.1 servers run at security level 0 on every OpenSSL: from OpenSSL 3.1 on
    that is the only level that speaks them at all, so a client that lowers its own level
    to 0 (and its minimum) can still connect, as notebook 02 shows. Default clients refuse
    them; which refusal they see is computed in :mod:`helpers.lab.legacy`.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if scenario.weak:
        # Security level 0 lets OpenSSL *load* a 1024-bit key or a SHA-1 signed chain
        # and speak TLS 1.0/1.1. Must come before load_cert_chain, which checks the level.
        # Never do this in a real server: it re-enables everything the levels forbid.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if scenario.tls_version is not None:
        version = TLS_VERSIONS[scenario.tls_version]
        with warnings.catch_warnings():
            # Python warns that TLS 1.0/1.1 are deprecated: that is the lesson here.
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = version
            ctx.maximum_version = version
    else:
        ctx.minimum_version = FLOOR  # explicit: not every Python's default (see above)
    if scenario.dh_bits is not None:
        # Finite-field DHE only (RFC 5246 §7.4.3 ServerDHParams), with the 1024-bit group.
        # Real servers: ECDHE (RFC 8422) or RFC 7919 groups >= 2048 bits (Logjam, 2015).
        ctx.set_ciphers("DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:@SECLEVEL=0")
        ctx.load_dh_params(str(files.dh_params))
    if scenario.ciphers is not None:
        # Only these TLS 1.2 suites (rsa-kx-only: RSA key transport, no forward secrecy).
        ctx.set_ciphers(scenario.ciphers)
    ctx.load_cert_chain(files.chains[scenario.name], files.keys[scenario.name])
    if scenario.needs_client_cert:
        # Mutual TLS (RFC 8446 §4.3.2 CertificateRequest): clients must prove a key
        # certified by the lab CA, so a stolen password alone does not get in.
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=str(files.ca_bundle))
    return ctx
