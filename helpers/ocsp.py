"""OCSP in miniature: a responder on loopback and a client that checks it (introduced in notebook 08).

Theory of operation
-------------------
A certificate revocation list (RFC 5280 §5) is the CA's whole list of revoked serials,
downloaded and cached. The Online Certificate Status Protocol (RFC 6960) asks instead
about *one* certificate, at the moment it is needed:

1. The client builds an ``OCSPRequest`` naming the certificate by a **CertID**: hashes
   of its issuer's name and public key, and its serial number (serials are unique only
   per issuer, RFC 5280 §4.1.2.2, so the issuer is part of the name)::

       OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] ... }
       TBSRequest  ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1,
                                  requestorName [1] EXPLICIT GeneralName OPTIONAL,
                                  requestList SEQUENCE OF Request,
                                  requestExtensions [2] EXPLICIT Extensions OPTIONAL }
       Request     ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] ... }
       CertID      ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier,
                                  issuerNameHash OCTET STRING,
                                  issuerKeyHash OCTET STRING,
                                  serialNumber CertificateSerialNumber }   -- §4.1.1

2. It sends the DER bytes over plain HTTP: ``POST`` with ``Content-Type:
   application/ocsp-request`` (RFC 6960 Appendix A.1). Plain HTTP is fine because the
   *answer* is signed; TLS would need a revocation check of its own.
3. The responder answers with a signed ``BasicOCSPResponse``; for each CertID a
   ``SingleResponse`` with ``certStatus`` good, revoked (with time and reason) or
   unknown, a ``thisUpdate`` and usually a ``nextUpdate`` (§4.2.1)::

       SingleResponse ::= SEQUENCE { certID CertID, certStatus CertStatus,
                                     thisUpdate GeneralizedTime,
                                     nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL, ... }
       CertStatus ::= CHOICE { good [0] IMPLICIT NULL,
                               revoked [1] IMPLICIT RevokedInfo,
                               unknown [2] IMPLICIT UnknownInfo }

4. The client must check that answer before believing it (§3.2), and
   :func:`check_ocsp` does, raising :class:`~helpers.errors.OCSPError` otherwise:
   the signature is the issuer's, or that of the responder certificate the ResponderID
   names, which the issuer signed with extendedKeyUsage id-kp-OCSPSigning (§4.2.2.2)
   and which is in date; RSA signatures may be PKCS#1 v1.5 or PSS; the CertID is the one
   asked about; ``thisUpdate``/``nextUpdate`` bracket the present; the nonce
   (RFC 9654, formerly RFC 8954) comes back unchanged when the responder echoes one.

:class:`Responder` is the CA side: a small HTTP server on 127.0.0.1 (port 0, context
manager, ``stop()``) that answers for one :class:`helpers.pki.CA`, from the same
revocation data the CA publishes in its CRL.

Why browsers moved away from live OCSP: every lookup tells the CA which site you are
visiting (privacy), adds a round trip, and when the responder does not answer, clients
"soft-fail" and accept the certificate anyway, so an attacker who can block the lookup
defeats it. Browsers push compact revocation sets instead (Chrome's CRLSets, a curated
subset; Firefox's CRLite, every revocation of CT-logged certificates, since Firefox 137),
servers can "staple" a fresh OCSP answer into the handshake (RFC 6066 §8), and Let's
Encrypt turned its OCSP responders off on 6 August 2025 in favour of CRLs. Python's
``ssl``, ``urllib3`` and ``requests`` check no revocation at all by default.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
import http.client
import ipaddress
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    SignatureAlgorithmOID,
)

from . import live, names
from .errors import OCSPError, UsageError
from .pki.panics import converts_panics, is_rust_panic
from .servers import HTTPService, QuietHandler

if TYPE_CHECKING:
    from .pki import CA, Leaf

__all__ = ["OCSPResult", "Responder", "build_request", "check_ocsp", "ocsp_url"]

_UTC = _dt.timezone.utc  # noqa: UP017 (datetime.UTC is 3.11+)
#: Clock skew tolerated between client and responder when checking thisUpdate/nextUpdate.
CLOCK_SKEW = _dt.timedelta(minutes=5)
REQUEST_TYPE = "application/ocsp-request"
RESPONSE_TYPE = "application/ocsp-response"


def _now() -> _dt.datetime:
    return _dt.datetime.now(_UTC).replace(microsecond=0)


def _cn(name: x509.Name) -> str:
    from cryptography.x509.oid import NameOID

    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if attrs:
        value = attrs[0].value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return name.rfc4514_string()


# --------------------------------------------------------------------------- requests


def build_request(
    cert: x509.Certificate, issuer: x509.Certificate, *, nonce: bytes | None = None
) -> ocsp.OCSPRequest:
    """An OCSP request for ``cert`` (issued by ``issuer``), optionally with a nonce.

    The CertID hashes use SHA-1: the lightweight profile every public responder
    implements (RFC 5019 §2.1.1) required it, and SHA-1 CertIDs are what responders
    reliably understand (RFC 9919, which replaces RFC 5019, recommends SHA-256). That
    is not a weakness here: the hashes only *name* the issuer, nothing is signed over
    them.
    """
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303
    if nonce is not None:
        # RFC 9654 (was RFC 8954): a fresh random nonce the responder echoes, so an
        # attacker cannot replay an old "good" recorded before the certificate was revoked.
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build()


def ocsp_url(cert: x509.Certificate) -> str | None:
    """The OCSP responder URL in the certificate's Authority Information Access extension
    (RFC 5280 §4.2.2.1), or None."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return None
    for desc in aia:
        if desc.access_method == AuthorityInformationAccessOID.OCSP and isinstance(
            desc.access_location, x509.UniformResourceIdentifier
        ):
            return desc.access_location.value
    return None


# --------------------------------------------------------------------------- the responder


@dataclass
class Served:
    """One answer a :class:`Responder` gave."""

    serial: int | None
    status: str  # "good", "revoked", "unknown", or an error status ("unauthorized", ...)
    nonce: bool


def _hash_for(key: Any) -> hashes.HashAlgorithm | None:
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None  # EdDSA fixes its own hash
    return hashes.SHA256()


class Responder(HTTPService):
    """An OCSP responder for one CA, over HTTP on 127.0.0.1 (see the module docstring).

    ``ca`` is the :class:`helpers.pki.CA` whose certificates it answers for; a serial it
    revoked (``ca.revoke(...)``) is "revoked", anything else "good", unless ``issued``
    lists the certificates the CA really issued, in which case other serials are
    "unknown". ``signer`` is a :class:`helpers.pki.Leaf` that signs the answers instead
    of the CA key: a delegated responder when the CA issued it with extendedKeyUsage
    OCSPSigning, or an impostor otherwise (for the lesson). ``validity`` is how long an
    answer is good for (``nextUpdate - thisUpdate``).

    It listens on 127.0.0.1; another ``host`` needs ``allow_network=True``, which is
    dangerous: anyone on the network could then ask it, and an impostor responder
    (``signer=``) would sign "good" for them. Socket timeouts, the request deadline and
    the refusal of bad ``Content-Length`` values come from :class:`helpers.servers.HTTPService`.

    >>> with Responder(ca) as responder:
    ...     check_ocsp(leaf.cert, ca.cert, responder.url).status
    'good'
    """

    #: The largest request body accepted: an OCSP request is about 100 bytes.
    max_request = 16 * 1024

    def __init__(
        self,
        ca: CA,
        *,
        signer: Leaf | None = None,
        issued: Iterable[x509.Certificate] | None = None,
        validity: _dt.timedelta = _dt.timedelta(hours=1),
        host: str = "127.0.0.1",
        port: int = 0,
        allow_network: bool = False,
    ) -> None:
        # plain HTTP: the answers are signed (RFC 6960 Appendix A.1)
        super().__init__(host=host, port=port, allow_network=allow_network)
        self.ca = ca
        self.signer = signer
        self.issued = None if issued is None else {c.serial_number for c in issued}
        self.validity = validity
        self.served: list[Served] = []
        self._lock = threading.Lock()

    # --- serving (the life cycle is helpers.servers.HTTPService's)
    def handler(self) -> type[BaseHTTPRequestHandler]:
        responder = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                if self.headers.get("Content-Type", "").split(";")[0].strip() != REQUEST_TYPE:
                    self.reply(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, b"", "text/plain")
                    return
                # 400 for a negative, non-numeric or duplicate Content-Length, 411 without
                # one, 413 over the cap: all before reading a byte (QuietHandler.read_body).
                der = self.read_body(responder.max_request)
                if der is None:
                    return
                self.reply(HTTPStatus.OK, responder.answer(der), RESPONSE_TYPE)

            def do_GET(self) -> None:
                # RFC 6960 Appendix A.1: GET {url}/{url-encoding of base64 of the DER request}
                import base64
                import urllib.parse

                encoded = urllib.parse.unquote(self.path.lstrip("/"))
                try:
                    der = base64.b64decode(encoded, validate=True)
                except ValueError:
                    der = b""
                self.reply(HTTPStatus.OK, responder.answer(der), RESPONSE_TYPE)

        return Handler

    def __repr__(self) -> str:
        state = self.url if self.running else "stopped"
        return f"<Responder for {_cn(self.ca.cert.subject)!r} {state}, {len(self.served)} answers>"

    # --- answering
    def answer(self, der: bytes) -> bytes:
        """The DER response to one DER request (what the HTTP handler sends back)."""
        try:
            request = ocsp.load_der_ocsp_request(der)
        except ValueError:
            return self._unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, None, False)
        except BaseException as exc:
            # cryptography parses the request in Rust. A Rust panic is a BaseException
            # (helpers/pki/panics.py) that would kill this handler's thread, leave the
            # client with no answer and print a traceback: the client's bytes caused it,
            # so it is malformedRequest (RFC 6960 §2.3), like any other unreadable request.
            if not is_rust_panic(exc):
                raise
            return self._unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, None, False)
        try:
            return self._answer(request)
        except Exception:  # noqa: BLE001 - RFC 6960 §2.3: say internalError, never crash
            return self._unsuccessful(
                ocsp.OCSPResponseStatus.INTERNAL_ERROR, _serial_or_none(request), False
            )
        except BaseException as exc:
            # Fields such as the extensions are parsed lazily, on first use in _answer:
            # a panic there is the request's fault too.
            if not is_rust_panic(exc):
                raise
            return self._unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, None, False)

    def _answer(self, request: ocsp.OCSPRequest) -> bytes:
        try:
            nonce: bytes | None = request.extensions.get_extension_for_class(
                x509.OCSPNonce
            ).value.nonce
        except x509.ExtensionNotFound:
            nonce = None
        name_hash, key_hash = _issuer_hashes(self.ca.cert, request.hash_algorithm)
        if (request.issuer_name_hash, request.issuer_key_hash) != (name_hash, key_hash):
            # RFC 6960 §2.3: a responder that does not serve this issuer says so.
            return self._unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED, request.serial_number, nonce is not None
            )
        serial = request.serial_number
        revoked = self.ca.crl(days=1).get_revoked_certificate_by_serial_number(serial)
        now = _now()
        status, when, reason = ocsp.OCSPCertStatus.GOOD, None, None
        if revoked is not None:
            status, when = ocsp.OCSPCertStatus.REVOKED, revoked.revocation_date_utc
            try:
                reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
            except x509.ExtensionNotFound:
                reason = None
        elif self.issued is not None and serial not in self.issued:
            status = ocsp.OCSPCertStatus.UNKNOWN
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=name_hash,
            issuer_key_hash=key_hash,
            serial_number=serial,
            algorithm=request.hash_algorithm,
            cert_status=status,
            this_update=now - _dt.timedelta(minutes=1),
            next_update=now + self.validity,
            revocation_time=when,
            revocation_reason=reason,
        )
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        if self.signer is not None:
            key, cert = self.signer.key, self.signer.cert
            builder = builder.certificates([cert])  # the client needs it to check the signature
        else:
            key, cert = self.ca.key, self.ca.cert
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, cert)
        response = builder.sign(key, _hash_for(key))  # type: ignore[arg-type]
        with self._lock:
            self.served.append(Served(serial, status.name.lower(), nonce is not None))
        return response.public_bytes(serialization.Encoding.DER)

    def _unsuccessful(
        self, status: ocsp.OCSPResponseStatus, serial: int | None, nonce: bool
    ) -> bytes:
        with self._lock:
            self.served.append(Served(serial, status.name.lower(), nonce))
        return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
            serialization.Encoding.DER
        )


def _serial_or_none(request: ocsp.OCSPRequest) -> int | None:
    """The request's serial number for the log, or ``None`` if even that cannot be read."""
    try:
        return request.serial_number
    except Exception:  # noqa: BLE001 - only for the log line
        return None


def _issuer_hashes(
    issuer: x509.Certificate, algorithm: hashes.HashAlgorithm
) -> tuple[bytes, bytes]:
    """CertID's issuerNameHash and issuerKeyHash (RFC 6960 §4.1.1).

    issuerKeyHash hashes the *value* of the issuer's subjectPublicKey BIT STRING, not the
    whole SubjectPublicKeyInfo (unlike an HPKP pin).
    """
    name = issuer.subject.public_bytes()
    spki = issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_bits = _bit_string_value(spki)
    digest = hashlib.new(algorithm.name)
    digest.update(name)
    name_hash = digest.digest()
    digest = hashlib.new(algorithm.name)
    digest.update(key_bits)
    return name_hash, digest.digest()


def _bit_string_value(spki: bytes) -> bytes:
    """The subjectPublicKey bytes inside a DER SubjectPublicKeyInfo (X.690 §8.6)."""

    def header(pos: int) -> tuple[int, int]:
        first = spki[pos + 1]
        if first & 0x80:
            n = first & 0x7F
            return pos + 2 + n, int.from_bytes(spki[pos + 2 : pos + 2 + n], "big")
        return pos + 2, first

    start, _ = header(0)  # SEQUENCE
    alg_start, alg_len = header(start)  # AlgorithmIdentifier
    bits_start, bits_len = header(alg_start + alg_len)  # BIT STRING
    return spki[bits_start + 1 : bits_start + bits_len]  # skip the "unused bits" byte


# --------------------------------------------------------------------------- the client


@dataclass
class OCSPResult:
    """A verified OCSP answer for one certificate."""

    status: str  # "good", "revoked" or "unknown"
    serial: int
    subject: str
    url: str
    this_update: _dt.datetime
    next_update: _dt.datetime | None
    produced_at: _dt.datetime
    revocation_time: _dt.datetime | None = None
    revocation_reason: str | None = None
    signed_by: str = ""
    nonce: str = ""  # "echoed", "not echoed" or "not sent"
    elapsed: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def good(self) -> bool:
        return self.status == "good"

    def __repr__(self) -> str:
        extra = (
            f", revoked {self.revocation_time:%Y-%m-%d %H:%M} ({self.revocation_reason})"
            if self.revocation_time
            else ""
        )
        return f"<OCSPResult {self.status} for serial {self.serial:#x}{extra}>"

    def _repr_html_(self) -> str:
        e = html.escape
        colour = {"good": "#1a7f37", "revoked": "#cf222e"}.get(self.status, "#9a6700")
        rows = [
            ("certificate", f"{e(self.subject)} (serial {self.serial:#x})"),
            ("asked", f"POST {e(self.url)} ({self.elapsed * 1000:.0f} ms)"),
            ("signed by", e(self.signed_by) + " ✓ signature verified"),
            ("thisUpdate", f"{self.this_update:%Y-%m-%d %H:%M:%S} UTC"),
            (
                "nextUpdate",
                f"{self.next_update:%Y-%m-%d %H:%M:%S} UTC" if self.next_update else "(none)",
            ),
            ("nonce (RFC 9654)", e(self.nonce)),
        ]
        if self.revocation_time is not None:
            rows.insert(
                1,
                (
                    "revoked",
                    f"{self.revocation_time:%Y-%m-%d %H:%M:%S} UTC, reason: {e(self.revocation_reason or 'unspecified')}",
                ),
            )
        body = "".join(
            f'<tr><th style="text-align:left;padding:2px 10px 2px 0;color:#57606a">{k}</th>'
            f'<td style="text-align:left">{v}</td></tr>'
            for k, v in rows
        )
        notes = "".join(f"<div style='color:#57606a'>{e(n)}</div>" for n in self.notes)
        return (
            f'<div style="font-family:system-ui,sans-serif;font-size:13px;color:#1f2328;'
            f"background:#f6f8fa;border:1px solid #d0d7de;border-left:5px solid {colour};"
            f'padding:8px 12px;margin:4px 0"><div style="font-weight:600;color:{colour};'
            f'font-size:14px">OCSP: {e(self.status.upper())}</div><table>{body}</table>{notes}</div>'
        )


def _verify_signature(
    public_key: Any, signature: bytes, data: bytes, algorithm: Any, *, pss: bool = False
) -> bool:
    """Check a response signature: RSA (PKCS#1 v1.5 or RSASSA-PSS), ECDSA or EdDSA.

    RSASSA-PSS (RFC 4055; RFC 6960 §4.3 says clients SHOULD accept it with SHA-256) is
    verified with MGF1 over the same hash and any salt length, as OpenSSL's responder
    produces it (``openssl ocsp -rsigopt rsa_padding_mode:pss``).
    """
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            scheme: Any = (
                padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO)
                if pss
                else padding.PKCS1v15()
            )
            public_key.verify(signature, data, scheme, algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            public_key.verify(signature, data)
        else:
            return False
    except InvalidSignature:
        return False
    return True


#: DER encodings of the hash OIDs an RSASSA-PSS signature may name (RFC 4055 §2.1).
_PSS_HASH_OIDS: dict[bytes, hashes.HashAlgorithm] = {
    bytes.fromhex("0609608648016503040201"): hashes.SHA256(),
    bytes.fromhex("0609608648016503040202"): hashes.SHA384(),
    bytes.fromhex("0609608648016503040203"): hashes.SHA512(),
}


def _pss_hash(raw: bytes, response: ocsp.OCSPResponse) -> hashes.HashAlgorithm:
    """The hash of an RSASSA-PSS response signature, read from its AlgorithmIdentifier.

    ``cryptography`` does not decode PSS parameters on OCSP responses, so we read them:
    in ``BasicOCSPResponse`` the signatureAlgorithm directly follows tbsResponseData, and
    in ``RSASSA-PSS-params`` the hashAlgorithm ``[0]`` comes first (RFC 4055 §3.1), so the
    first hash OID after tbsResponseData is it. No hash OID there means the default, SHA-1.
    """
    start = raw.find(response.tbs_response_bytes)
    after = raw[start + len(response.tbs_response_bytes) :][:64] if start >= 0 else b""
    found = [(after.find(der), alg) for der, alg in _PSS_HASH_OIDS.items() if der in after]
    return min(found, key=lambda pair: pair[0])[1] if found else hashes.SHA1()  # noqa: S303 - RFC 4055 default


def _key_hash(cert: x509.Certificate) -> bytes:
    """ResponderID's KeyHash: SHA-1 of the subjectPublicKey BIT STRING value (RFC 6960 §4.2.1)."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha1(_bit_string_value(spki)).digest()  # noqa: S324 - the RFC's choice


def _names_responder(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    """Does the response's ResponderID (byName or byKey) name ``cert``?"""
    if response.responder_key_hash is not None:
        return response.responder_key_hash == _key_hash(cert)
    return response.responder_name == cert.subject


def _responder_id_text(response: ocsp.OCSPResponse) -> str:
    if response.responder_key_hash is not None:
        return f"the key with SHA-1 {response.responder_key_hash.hex()[:16]}…"
    name = response.responder_name
    return repr(_cn(name)) if name is not None else "nobody"


def _is_local(host: str) -> bool:
    """Loopback, ``localhost`` or a name under it (RFC 6761 §6.3), however it is spelled.

    The name is compared as the resolver will see it (:mod:`helpers.names`): case, a
    trailing dot and Unicode full stops do not matter, so ``"ocsp.lab.localhost\u3002"``
    is local and ``"LOCALHOST."`` too.
    """
    name = names._normalise(host.strip("[]")) or ""
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name == "localhost" or name.endswith(".localhost")


def _post(url: str, body: bytes, timeout: float) -> bytes:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise UsageError(
            f"{url!r} is not an http:// URL.",
            "OCSP runs over plain HTTP (RFC 6960 Appendix A.1); the answer itself is signed.",
        )
    if not _is_local(parts.hostname):
        live.require()
    # A lab name is answered by the lab running in this process, never by DNS: with no
    # lab running (or a name it does not serve) this is a LabError before any lookup.
    names.refuse_unserved(parts.hostname)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.request(
            "POST",
            parts.path or "/",
            body=body,
            headers={"Content-Type": REQUEST_TYPE, "Accept": RESPONSE_TYPE},
        )
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise OCSPError(
                f"The responder at {url} answered HTTP {response.status} {response.reason}.",
                "Check the URL (the certificate's AIA extension names the responder).",
            )
        return data
    finally:
        conn.close()


@converts_panics(
    OCSPError,
    "The OCSP response could not be checked",
    "cryptography could not read what the responder sent: do not trust it; ask again.",
)
def check_ocsp(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    url: str | None = None,
    *,
    timeout: float = 5.0,
    nonce: bool = True,
) -> OCSPResult:
    """Ask ``url`` (default: the certificate's AIA OCSP URL) whether ``cert`` is revoked.

    Returns an :class:`OCSPResult` only for an answer that passed every check of RFC 6960
    §3.2; raises :class:`~helpers.errors.OCSPError` otherwise (see the module docstring).
    Hosts other than loopback need live mode; a lab name is answered only by a lab running
    in this process (else :class:`~helpers.errors.LabError`, and nothing is looked up).
    cryptography parses the answer in Rust: a panic there (a ``BaseException``,
    :mod:`helpers.pki.panics`) is an :class:`~helpers.errors.OCSPError` like any other
    answer that cannot be trusted.
    """
    if url is None:
        url = ocsp_url(cert)
        if url is None:
            raise OCSPError(
                "This certificate names no OCSP responder (no AIA OCSP entry).",
                "Pass url= explicitly, or check revocation with the issuer's CRL instead.",
            )
    sent = os.urandom(16) if nonce else None
    request = build_request(cert, issuer, nonce=sent)
    start = time.perf_counter()
    raw = _post(url, request.public_bytes(serialization.Encoding.DER), timeout)
    elapsed = time.perf_counter() - start
    try:
        response = ocsp.load_der_ocsp_response(raw)
    except ValueError:
        raise OCSPError(
            f"The responder at {url} did not send a DER OCSPResponse ({len(raw)} bytes).",
            "Check that the URL is an OCSP responder.",
        ) from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise OCSPError(
            f"The responder refused: responseStatus {response.response_status.name.lower()} "
            "(RFC 6960 §4.2.1).",
            "'unauthorized' means it does not answer for this certificate's issuer.",
        )
    # §3.2 (1): the response is about the certificate we asked about. Otherwise a valid,
    # signed "good" for another certificate could be passed off as ours.
    want_name, want_key = _issuer_hashes(issuer, response.hash_algorithm)
    if (
        response.serial_number != cert.serial_number
        or response.issuer_name_hash != want_name
        or response.issuer_key_hash != want_key
    ):
        raise OCSPError(
            "The OCSP response is about another certificate (its CertID does not match).",
            "Do not use it; a responder or attacker sent an answer for a different serial.",
        )
    # §3.2 (2)-(4): signed by the issuer itself, or by a responder certificate that the
    # issuer signed and marked id-kp-OCSPSigning (§4.2.2.2). Anyone else's signature is
    # worthless: an attacker would simply sign "good". The ResponderID (§4.2.1, by name or
    # by the SHA-1 of its key) says who signed; the certificate used must be that one.
    now = _now()
    signer_name = _cn(issuer.subject)
    signer_key = issuer.public_key()
    if not _names_responder(response, issuer):
        named = [c for c in response.certificates if _names_responder(response, c)]
        if not named:
            raise OCSPError(
                f"The OCSP response says it was signed by {_responder_id_text(response)}, which "
                "is neither the issuer nor any certificate included in the response "
                "(ResponderID, RFC 6960 §4.2.1).",
                "Without the signer's certificate the answer cannot be checked: do not trust it.",
            )
        delegate = named[0]
        try:
            delegate.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            raise OCSPError(
                f"The OCSP response is signed by {_cn(delegate.subject)!r}, whose certificate "
                f"was not issued by {_cn(issuer.subject)!r}.",
                "Only the issuer, or a responder it certified, may answer for its certificates.",
            ) from None
        try:
            eku = delegate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            eku = None
        if eku is None or ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            raise OCSPError(
                f"The OCSP response is signed by {_cn(delegate.subject)!r}, which the issuer did "
                "not authorise to sign OCSP answers (no id-kp-OCSPSigning, RFC 6960 §4.2.2.2).",
                "Do not trust this answer.",
            )
        # A delegated responder certificate is checked like any other certificate: in
        # date (RFC 5280 §6.1.3). An expired one says nothing, however valid its signature.
        if not (
            delegate.not_valid_before_utc - CLOCK_SKEW
            <= now
            <= delegate.not_valid_after_utc + CLOCK_SKEW
        ):
            raise OCSPError(
                f"The OCSP response is signed by {_cn(delegate.subject)!r}, whose responder "
                f"certificate is valid only from {delegate.not_valid_before_utc:%Y-%m-%d} to "
                f"{delegate.not_valid_after_utc:%Y-%m-%d}.",
                "An out-of-date responder certificate proves nothing: do not trust this answer.",
            )
        signer_name = f"{_cn(delegate.subject)} (delegated by {_cn(issuer.subject)})"
        signer_key = delegate.public_key()
    pss = response.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS
    if not _verify_signature(
        signer_key,
        response.signature,
        response.tbs_response_bytes,
        _pss_hash(raw, response) if pss else response.signature_hash_algorithm,
        pss=pss,
    ):
        raise OCSPError(
            f"The OCSP response's signature does not verify with {signer_name!r}'s key.",
            "The answer was forged or damaged: do not trust it.",
        )
    # §3.2 (5)-(6): fresh. A replayed old "good" (from before the revocation) is stale.
    this_update = response.this_update_utc
    next_update = response.next_update_utc
    if this_update > now + CLOCK_SKEW:
        raise OCSPError(
            f"The OCSP response claims to be from the future (thisUpdate {this_update:%Y-%m-%d %H:%M} UTC).",
            "Check this machine's clock.",
        )
    if next_update is not None and next_update < now - CLOCK_SKEW:
        raise OCSPError(
            f"The OCSP response is stale: nextUpdate was {next_update:%Y-%m-%d %H:%M} UTC.",
            "Ask again; a stale answer may be an old one replayed by an attacker.",
        )
    notes: list[str] = []
    nonce_state = "not sent"
    if sent is not None:
        try:
            echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            echoed = None
        if echoed is None:
            nonce_state = "not echoed"
            notes.append(
                "The responder did not echo the nonce (common for public CAs, which serve "
                "pre-signed answers, RFC 5019); freshness rests on thisUpdate/nextUpdate."
            )
        elif echoed != sent:
            raise OCSPError(
                "The OCSP response carries another request's nonce.",
                "It may be a replay: do not trust it.",
            )
        else:
            nonce_state = "echoed"
    status = response.certificate_status.name.lower()
    reason = response.revocation_reason
    return OCSPResult(
        status=status,
        serial=cert.serial_number,
        subject=_cn(cert.subject),
        url=url,
        this_update=this_update,
        next_update=next_update,
        produced_at=response.produced_at_utc,
        revocation_time=response.revocation_time_utc,
        revocation_reason=reason.name if reason is not None else None,
        signed_by=signer_name,
        nonce=nonce_state,
        elapsed=elapsed,
        notes=notes,
    )
