"""The lab's ACME certificate authority, as protocol logic without sockets (notebook 10).

Theory of operation
-------------------
This module is the CA's side of RFC 8555 written *sans-IO*, the way ``h11`` writes
HTTP: :meth:`AcmeCA.handle` takes one request (method, path, headers, body) and returns
one :class:`Response` (status, headers, body). It never opens a socket, so a lesson or
a test can drive it with plain function calls, and the transport
(:mod:`helpers.acme.server`) is only "read a request, call handle, write the answer".

The state it keeps, and what each request does to it::

    account ──< order ──< authorization ──< challenge (http-01)
                  │
                  └── certificate (after finalize)

    newAccount   register a public key (JWS with "jwk"); Location = account URL ("kid")
    newOrder     names -> an order (pending) and one authorization per name
    challenge    POST {} -> "processing"; the CA fetches the HTTP-01 response
                 (validate callback) -> challenge and authorization valid or invalid
    order        all authorizations valid -> "ready"
    finalize     CSR with exactly the order's names -> certificate, order "valid"
    certificate  POST-as-GET -> PEM chain (leaf + intermediates, not the root)
    revokeCert   by the ordering account or by the certificate's own key -> the CRL
    renewalInfo  GET -> the suggested renewal window (RFC 9773)

Every POST is a JWS (:mod:`helpers.acme.jws`) checked in this order: size, signature,
``url`` equal to the URL requested (RFC 8555 §6.4), then the single-use ``nonce``
(§6.5). Every answer carries a fresh ``Replay-Nonce``, so a client always has one for
its next request. Errors are problem documents (:mod:`helpers.acme.problems`).

Validation is the one slow step (an HTTP fetch that may time out), so ``handle`` does
not run it: a challenge POST queues a :class:`Validation`, the transport takes it with
:meth:`AcmeCA.take_pending` and calls :meth:`AcmeCA.run_validation` in a worker
thread. Tests and notebooks can call :meth:`AcmeCA.run_pending` instead.

Policy (the lab's choices, each stated where it is enforced): DNS identifiers under
``domain`` only, no wildcards (they need DNS-01, which the lab does not offer), at most
:data:`MAX_NAMES` names per order; profiles ``classic`` (90 days) and ``shortlived``
(160 hours, as Let's Encrypt); certificate keys RSA >= 2048 or EC P-256/P-384, never the
account key. Memory is bounded: :data:`MAX_ACCOUNTS` accounts, :data:`MAX_ORDERS`
orders (:data:`MAX_AUTHZ` authorizations), :data:`MAX_CERTS` certificates and
:data:`MAX_NONCES` outstanding nonces; the oldest are forgotten first.
"""

from __future__ import annotations

import datetime as _dt
import json
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ..errors import ParseError, PKIError
from ..pki import CA
from . import ari, jws
from .problems import AcmeProblem

__all__ = [
    "MAX_ACCOUNTS",
    "MAX_AUTHZ",
    "MAX_BODY",
    "MAX_CERTS",
    "MAX_NAMES",
    "MAX_NONCES",
    "MAX_ORDERS",
    "PROFILES",
    "AcmeCA",
    "Response",
    "Validation",
]

#: Largest request body accepted, in bytes (413 beyond).
MAX_BODY = jws.MAX_JWS_BYTES
#: Accounts kept in memory; the oldest is forgotten first (it can register again).
MAX_ACCOUNTS = 1000
#: Orders kept; the oldest (with its authorizations) is forgotten first.
MAX_ORDERS = 1000
#: Authorizations kept, over all orders.
MAX_AUTHZ = 10_000
#: Issued certificates remembered for download, revocation and ARI.
MAX_CERTS = 5000
#: Nonces handed out and not yet used; the oldest expires first (the client gets
#: badNonce and retries with the fresh nonce of that answer, RFC 8555 §6.5).
MAX_NONCES = 10_000
#: Names in one order (Let's Encrypt's limit too).
MAX_NAMES = 100

#: Certificate profiles (directory meta "profiles"): name -> (lifetime, description).
PROFILES: dict[str, tuple[_dt.timedelta, str]] = {
    "classic": (
        _dt.timedelta(days=90),
        "The default: certificates valid for 90 days, renewed after about 60.",
    ),
    "shortlived": (
        _dt.timedelta(hours=160),
        "Certificates valid for 160 hours (6 2/3 days), as Let's Encrypt's shortlived "
        "profile: no OCSP or CRL needed in practice, renew every few days.",
    ),
}
DEFAULT_PROFILE = "classic"

#: Backdating of notBefore, so a client whose clock is a little slow accepts a new
#: certificate (as Let's Encrypt does).
BACKDATE = _dt.timedelta(hours=1)
ORDER_LIFETIME = _dt.timedelta(days=7)
#: What renewalInfo's Retry-After says (seconds): ask again in six hours.
ARI_RETRY_AFTER = 6 * 3600

# RFC 5280 §5.3.1 CRLReason codes a subscriber may ask for (as Let's Encrypt): 0
# unspecified, 1 keyCompromise, 3 affiliationChanged, 4 superseded, 5
# cessationOfOperation. 2 (cACompromise), 6 (certificateHold), 8 (removeFromCRL),
# 9 (privilegeWithdrawn) and 10 (aACompromise) are the CA's to use; 7 is unused.
_REASONS = {
    0: x509.ReasonFlags.unspecified,
    1: x509.ReasonFlags.key_compromise,
    3: x509.ReasonFlags.affiliation_changed,
    4: x509.ReasonFlags.superseded,
    5: x509.ReasonFlags.cessation_of_operation,
}

_JOSE = "application/jose+json"
_PROBLEM = "application/problem+json"
_UTC = _dt.UTC


@dataclass
class Response:
    """One HTTP answer: ``status``, ``headers`` and ``body`` bytes."""

    status: int
    headers: dict[str, str]
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class Validation:
    """A challenge waiting to be checked: fetch ``http://name/.well-known/acme-challenge/token``
    and compare it with ``key_authorization`` (RFC 8555 §8.3)."""

    challenge_id: str
    name: str
    token: str
    key_authorization: str
    authz_id: str = ""


# --- the state
@dataclass
class _Account:
    id: str
    key: jws.PublicKey
    thumbprint: str
    contact: list[str]
    tos: bool
    created: _dt.datetime
    status: str = "valid"
    orders: list[str] = field(default_factory=list)


@dataclass
class _Challenge:
    id: str
    authz_id: str
    token: str
    status: str = "pending"
    validated: _dt.datetime | None = None
    error: dict[str, Any] | None = None


class _HasOwner(Protocol):
    account_id: str


_Owned = TypeVar("_Owned", bound=_HasOwner)


@dataclass
class _Authz:
    id: str
    order_id: str
    account_id: str
    name: str
    expires: _dt.datetime
    challenge: _Challenge
    status: str = "pending"


@dataclass
class _Order:
    id: str
    account_id: str
    names: list[str]
    authz_ids: list[str]
    profile: str
    expires: _dt.datetime
    replaces: str | None = None
    status: str = "pending"
    error: dict[str, Any] | None = None
    cert_id: str | None = None


@dataclass
class _Issued:
    id: str
    cert: x509.Certificate
    account_id: str
    order_id: str
    profile: str
    revoked: _dt.datetime | None = None
    replaced_by: str | None = None
    window: ari.RenewalWindow | None = None


def _fmt(when: _dt.datetime) -> str:
    return ari.format_time(when)


class AcmeCA:
    """The ACME CA's protocol logic. ``issuer`` signs; ``chain`` is what downloads send
    above the leaf (the issuer's certificate and intermediates; a self-signed root in it is
    left out). ``base_url`` is where clients reach it (``https://127.0.0.1:PORT``).
    ``validate(name, token, expected_key_authorization)`` returns None when the HTTP-01
    response was right, else the problem. ``clock`` returns the current UTC time.
    """

    def __init__(
        self,
        issuer: CA,
        chain: Sequence[x509.Certificate],
        *,
        base_url: str,
        domain: str = "lab.localhost",
        validate: Callable[[str, str, str], AcmeProblem | None],
        clock: Callable[[], _dt.datetime] | None = None,
        crl_url: str | None = None,
    ) -> None:
        self.issuer = issuer
        # Where issued certificates say the CRL is (their CRL Distribution Point); by
        # default this server's own GET /crl. The lab passes a plain http:// URL (see
        # helpers/acme/server.py CrlPublisher).
        self._crl_url = crl_url
        self.chain = [c for c in chain if c.issuer != c.subject]  # never send the root
        self.base_url = base_url.rstrip("/")
        self.domain = domain.strip(".").lower()
        self.validate = validate
        self.clock = clock or (lambda: _dt.datetime.now(_UTC))
        self._lock = threading.RLock()
        self._nonces: OrderedDict[str, None] = OrderedDict()
        self._accounts: OrderedDict[str, _Account] = OrderedDict()
        self._by_thumbprint: dict[str, str] = {}
        self._orders: OrderedDict[str, _Order] = OrderedDict()
        self._authz: dict[str, _Authz] = {}
        self._challenges: dict[str, _Challenge] = {}
        self._certs: OrderedDict[str, _Issued] = OrderedDict()
        self._by_serial: dict[int, str] = {}
        self._pending: deque[Validation] = deque()
        self._crl: bytes | None = None
        # What the AKI of every certificate it issues says, and so the first half of an
        # ARI CertID (RFC 9773 §4.1): the issuer's subjectKeyIdentifier.
        try:
            ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        except x509.ExtensionNotFound:
            ski = x509.SubjectKeyIdentifier.from_public_key(issuer.cert.public_key())
        self._issuer_key_id = ski.digest

    # ------------------------------------------------------------------ public API
    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def crl_url(self) -> str:
        return self._crl_url or self.url("/crl")

    @property
    def directory_url(self) -> str:
        return self.url("/directory")

    @property
    def issued(self) -> list[x509.Certificate]:
        """Certificates issued (and still remembered), oldest first."""
        with self._lock:
            return [rec.cert for rec in self._certs.values()]

    def crl_der(self) -> bytes:
        """The issuer's current CRL (RFC 5280 §5), DER; made again after each revocation."""
        with self._lock:
            if self._crl is None:
                self._crl = self.issuer.crl().public_bytes(serialization.Encoding.DER)
            return self._crl

    def suggest_renewal(self, cert: x509.Certificate, window: ari.RenewalWindow) -> None:
        """Make renewalInfo suggest ``window`` for ``cert`` (a teacher moving the window)."""
        with self._lock:
            rec = self._record_for(cert.serial_number)
            if rec is None:
                raise PKIError(
                    f"Serial {cert.serial_number:x} was not issued by this ACME CA.",
                    "Pass a certificate from AcmeServer.issued.",
                )
            rec.window = window

    def take_pending(self) -> list[Validation]:
        """The challenges waiting for validation, removed from the queue."""
        with self._lock:
            out = list(self._pending)
            self._pending.clear()
            return out

    def run_validation(self, job: Validation) -> None:
        """Run the ``validate`` callback for ``job`` (outside the lock) and record the result."""
        try:
            problem = self.validate(job.name, job.token, job.key_authorization)
        except AcmeProblem as exc:
            problem = exc
        except Exception as exc:  # the callback must not take the CA down
            problem = AcmeProblem("serverInternal", f"validation failed: {exc}", 500)
        self.complete(job, problem)

    def run_pending(self) -> int:
        """Validate every queued challenge now, in this thread; returns how many."""
        jobs = self.take_pending()
        for job in jobs:
            self.run_validation(job)
        return len(jobs)

    def complete(self, job: Validation, problem: AcmeProblem | None) -> None:
        """Record a validation result: challenge, authorization and order move on."""
        with self._lock:
            chall = self._challenges.get(job.challenge_id)
            if chall is None or chall.status != "processing":
                return  # forgotten meanwhile (bounded state)
            authz = self._authz.get(chall.authz_id)
            if problem is None:
                chall.status, chall.validated = "valid", self.clock()
                if authz is not None:
                    authz.status = "valid"
            else:
                chall.status = "invalid"
                chall.error = problem.document()
                if authz is not None:
                    authz.status = "invalid"
            if authz is not None:
                self._update_order(authz.order_id)

    # ------------------------------------------------------------------ dispatch
    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one request. Never raises for anything a client sends."""
        method = method.upper()
        path = path.split("?", 1)[0]
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            try:
                if len(body) > MAX_BODY:
                    raise AcmeProblem("malformed", f"The body is over {MAX_BODY} bytes.", 413)
                response = self._route(method, path, lowered, body)
            except AcmeProblem as problem:
                response = self._problem(problem)
            except Exception as exc:  # a bug here must answer, not kill the connection
                response = self._problem(
                    AcmeProblem("serverInternal", f"{type(exc).__name__}: {exc}", 500)
                )
            return self._finish(response)

    def problem_response(self, problem: AcmeProblem) -> Response:
        """A problem document as a complete answer (for a transport that refuses a request
        before ``handle``, e.g. a body over :data:`MAX_BODY`)."""
        with self._lock:
            return self._finish(self._problem(problem))

    def _finish(self, response: Response) -> Response:
        """What every answer carries: a fresh Replay-Nonce (RFC 8555 §6.5: so the client
        has one for its next request), no caching, a link to the directory (§7.1)."""
        response.headers.setdefault("Replay-Nonce", self._new_nonce())
        response.headers.setdefault("Cache-Control", "no-store")
        index = f'<{self.directory_url}>;rel="index"'
        link = response.headers.get("Link")
        response.headers["Link"] = f"{link}, {index}" if link else index
        response.headers.setdefault("Content-Length", str(len(response.body)))
        return response

    def _route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        parts = path.strip("/").split("/")
        if path == "/directory" and method in ("GET", "HEAD"):
            return self._directory()
        if path == "/new-nonce" and method in ("GET", "HEAD"):
            return self._new_nonce_response(method)
        if path == "/crl" and method in ("GET", "HEAD"):
            return Response(200, {"Content-Type": "application/pkix-crl"}, self.crl_der())
        if parts[0] == "renewal-info" and len(parts) == 2 and method in ("GET", "HEAD"):
            return self._renewal_info(parts[1])
        posts: dict[str, Callable[..., Response]] = {
            "new-account": self._new_account,
            "new-order": self._new_order,
            "revoke-cert": self._revoke_cert,
            "key-change": self._key_change,
            "acct": self._account,
            "order": self._order,
            "authz": self._authorization,
            "chall": self._challenge,
            "cert": self._certificate,
        }
        handler = posts.get(parts[0])
        # How many path segments follow each resource name: /acct/ID[/orders], /order/ID[/finalize].
        arity = {"acct": (1, 2), "order": (1, 2), "authz": (1, 1), "chall": (1, 1), "cert": (1, 1)}
        low, high = arity.get(parts[0], (0, 0))
        if handler is None or not low <= len(parts) - 1 <= high:
            raise AcmeProblem("malformed", f"Nothing is at {path!r:.100} on this ACME server.", 404)
        if method != "POST":
            raise AcmeProblem(
                "malformed",
                f"{path} takes POST (a signed JWS; POST-as-GET to read, RFC 8555 §6.3), not {method}.",
                405,
            )
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != _JOSE:
            # RFC 8555 §6.2: ... MUST have the Content-Type header field set to
            # "application/jose+json". If a request does not meet this requirement,
            # then the server MUST return a response with status code 415.
            raise AcmeProblem(
                "malformed", f"An ACME POST must be sent as {_JOSE}, not {content_type!r}.", 415
            )
        request = self._verify(body, self.url(path))
        return handler(request, *parts[1:])

    # ------------------------------------------------------------------ JWS + nonce
    def _key_for_kid(self, kid: str) -> jws.PublicKey | None:
        prefix = self.url("/acct/")
        account = self._accounts.get(kid[len(prefix) :]) if kid.startswith(prefix) else None
        return account.key if account is not None else None

    def _verify(self, body: bytes, url: str) -> jws.Verified:
        """RFC 8555 §6.4 and §6.5, after the signature (jws.verify):

        The "url" header parameter ... MUST be set to the URL to which the request is
        directed. ... If the two do not match, then the server MUST reject the request
        as unauthorized.

        The precise method used to generate and track nonces is up to the server. ...
        If the value of the "nonce" header parameter is not valid according to this
        encoding, then the server MUST reject the request as malformed. [badNonce when
        it was not issued or already used.]
        """
        request = jws.verify(body, self._key_for_kid)
        if request.protected["url"] != url:
            raise AcmeProblem(
                "unauthorized",
                f"The JWS was signed for {request.protected['url']!r:.200}, but sent to {url!r}: "
                "a request signed for one URL cannot be replayed at another (RFC 8555 §6.4).",
                403,
            )
        nonce = request.protected.get("nonce")
        if not isinstance(nonce, str) or not nonce:
            raise AcmeProblem("badNonce", "The protected header has no nonce (RFC 8555 §6.5).")
        if nonce not in self._nonces:
            raise AcmeProblem(
                "badNonce",
                "This nonce was not issued by this server or was already used: each nonce "
                "works once, which is what stops a captured request being replayed.",
            )
        del self._nonces[nonce]
        if request.kid is not None:
            account = self._accounts[request.kid.rsplit("/", 1)[1]]
            if account.status != "valid":
                raise AcmeProblem("unauthorized", f"The account is {account.status}.", 403)
        return request

    def _new_nonce(self) -> str:
        nonce = secrets.token_urlsafe(16)  # 128 bits, base64url (RFC 8555 §6.5.1)
        self._nonces[nonce] = None
        while len(self._nonces) > MAX_NONCES:
            self._nonces.popitem(last=False)
        return nonce

    def _account_of(self, request: jws.Verified) -> _Account:
        if request.kid is None:
            raise AcmeProblem(
                "malformed",
                'This request must name its account with "kid" (the account URL), not "jwk" '
                "(RFC 8555 §6.2).",
            )
        return self._accounts[request.kid.rsplit("/", 1)[1]]

    # ------------------------------------------------------------------ responses
    def _json(self, status: int, doc: Any, headers: Mapping[str, str] | None = None) -> Response:
        body = json.dumps(doc, indent=2).encode()
        return Response(status, {"Content-Type": "application/json", **(headers or {})}, body)

    def _problem(self, problem: AcmeProblem) -> Response:
        """RFC 8555 §6.7: problem documents, media type application/problem+json."""
        body = json.dumps(problem.document(), indent=2).encode()
        return Response(problem.status, {"Content-Type": _PROBLEM}, body)

    # ------------------------------------------------------------------ handlers
    def _directory(self) -> Response:
        """RFC 8555 §7.1.1:

        directory = { "newNonce": url, "newAccount": url, "newOrder": url,
                      "newAuthz": url (optional: pre-authorization), "revokeCert": url,
                      "keyChange": url, "meta": {termsOfService, website,
                      caaIdentities, externalAccountRequired} }

        plus "renewalInfo" (RFC 9773 §3) and meta "profiles" (name -> description, the
        ACME profiles draft, as Let's Encrypt serves since 2025).
        """
        return self._json(
            200,
            {
                "newNonce": self.url("/new-nonce"),
                "newAccount": self.url("/new-account"),
                "newOrder": self.url("/new-order"),
                "revokeCert": self.url("/revoke-cert"),
                "keyChange": self.url("/key-change"),
                "renewalInfo": self.url("/renewal-info"),
                "meta": {
                    "profiles": {name: text for name, (_, text) in PROFILES.items()},
                    "caaIdentities": ["acme." + self.domain],
                    "externalAccountRequired": False,
                },
            },
        )

    def _new_nonce_response(self, method: str) -> Response:
        """RFC 8555 §7.2:

        HEAD /acme/new-nonce HTTP/1.1      ->  HTTP/1.1 200 OK, Replay-Nonce: ...,
                                               Cache-Control: no-store
        The server MUST include a Cache-Control header field with the "no-store"
        directive ... [GET] ... with status code 204 (No Content).
        """
        return Response(200 if method == "HEAD" else 204, {"Cache-Control": "no-store"})

    def _account_doc(self, account: _Account) -> dict[str, Any]:
        """RFC 8555 §7.1.2: status, contact, termsOfServiceAgreed, orders."""
        return {
            "status": account.status,
            "contact": account.contact,
            "termsOfServiceAgreed": account.tos,
            "orders": self.url(f"/acct/{account.id}/orders"),
            "createdAt": _fmt(account.created),
        }

    def _contacts(self, payload: Mapping[str, Any]) -> list[str]:
        contact = payload.get("contact", [])
        if not isinstance(contact, list) or not all(isinstance(c, str) for c in contact):
            raise AcmeProblem(
                "malformed", '"contact" must be a list of URLs such as "mailto:ada@lab.localhost".'
            )
        for c in contact:
            if not c.startswith("mailto:"):
                raise AcmeProblem(
                    "unsupportedContact", f"Only mailto: contacts are accepted, not {c!r:.80}."
                )
        return list(contact[:10])

    def _new_account(self, request: jws.Verified) -> Response:
        """RFC 8555 §7.3:

        POST /acme/new-account   (JWS with "jwk": the new account's public key)
        { "termsOfServiceAgreed": true, "contact": ["mailto:..."],
          "onlyReturnExisting": false (optional) }

        201 Created + Location: account URL for a new key. If the key is already
        registered: 200 OK, the existing account's Location. With onlyReturnExisting and
        no such account: accountDoesNotExist.
        """
        if request.jwk is None:
            raise AcmeProblem(
                "malformed", 'newAccount must be signed with "jwk", not "kid" (RFC 8555 §6.2).'
            )
        payload = request.json()
        if not isinstance(payload, dict):
            raise AcmeProblem("malformed", "newAccount's payload must be a JSON object.")
        jkt = jws.thumbprint(request.jwk)
        existing = self._by_thumbprint.get(jkt)
        if existing is not None and existing in self._accounts:
            account = self._accounts[existing]
            return self._json(
                200, self._account_doc(account), {"Location": self.url(f"/acct/{account.id}")}
            )
        if payload.get("onlyReturnExisting") is True:
            raise AcmeProblem("accountDoesNotExist", "No account is registered for this key.")
        tos = payload.get("termsOfServiceAgreed", False)
        if not isinstance(tos, bool):
            raise AcmeProblem("malformed", '"termsOfServiceAgreed" must be true or false.')
        account = _Account(
            secrets.token_urlsafe(9),
            request.key,
            jkt,
            self._contacts(payload),
            tos,
            self.clock(),
        )
        self._accounts[account.id] = account
        self._by_thumbprint[jkt] = account.id
        while len(self._accounts) > MAX_ACCOUNTS:
            _, old = self._accounts.popitem(last=False)
            self._by_thumbprint.pop(old.thumbprint, None)
        return self._json(
            201, self._account_doc(account), {"Location": self.url(f"/acct/{account.id}")}
        )

    def _account(self, request: jws.Verified, account_id: str = "", sub: str = "") -> Response:
        """RFC 8555 §7.3.2 (update: "contact", or "status": "deactivated", §7.3.6) and
        §7.1.2.1 (the orders list); POST-as-GET reads the account."""
        account = self._account_of(request)
        if account.id != account_id:
            raise AcmeProblem("unauthorized", "The JWS was signed by another account.", 403)
        if sub == "orders":
            urls = [self.url(f"/order/{o}") for o in account.orders if o in self._orders]
            return self._json(200, {"orders": urls})
        payload = request.json()
        if isinstance(payload, dict):
            if "contact" in payload:
                account.contact = self._contacts(payload)
            if payload.get("status") == "deactivated":
                account.status = "deactivated"
        return self._json(200, self._account_doc(account))

    def _key_change(self, request: jws.Verified) -> Response:
        """RFC 8555 §7.3.5 (keyChange): not offered by the lab CA."""
        raise AcmeProblem(
            "malformed",
            "The lab CA does not implement keyChange (RFC 8555 §7.3.5): register a new "
            "account with the new key instead.",
            501,
        )

    # --- orders
    def _check_name(self, ident: Any) -> tuple[str | None, AcmeProblem | None]:
        if not isinstance(ident, dict) or not isinstance(ident.get("value"), str):
            return None, AcmeProblem(
                "malformed", 'Each identifier is {"type": "dns", "value": NAME}.'
            )
        kind, value = ident.get("type"), ident["value"]
        if kind != "dns":
            return None, AcmeProblem(
                "unsupportedIdentifier",
                f"Identifier type {kind!r} is not offered; the lab CA issues for DNS names only.",
                extra={"identifier": ident},
            )
        name = value.strip().lower()
        if name.startswith("*."):
            return None, AcmeProblem(
                "rejectedIdentifier",
                f"{value!r} is a wildcard: wildcard names need the DNS-01 challenge (RFC 8555 "
                "§7.1.3, §8.4), which the lab CA does not offer. List each name instead.",
                extra={"identifier": ident},
            )
        if not (name == self.domain or name.endswith("." + self.domain)):
            return None, AcmeProblem(
                "rejectedIdentifier",
                f"The lab CA issues only for names under {self.domain}, and {value!r:.100} is "
                "not one (its name constraints would make such a certificate fail anyway).",
                extra={"identifier": ident},
            )
        labels = name.split(".")
        if len(name) > 253 or not all(
            0 < len(label) <= 63
            and label.isascii()
            and all(ch.isalnum() or ch == "-" for ch in label)
            and not label.startswith("-")
            and not label.endswith("-")
            for label in labels
        ):
            return None, AcmeProblem(
                "rejectedIdentifier",
                f"{value!r:.100} is not a valid host name (letters, digits, hyphens; labels of "
                "1-63 characters; IDNs as xn-- A-labels).",
                extra={"identifier": ident},
            )
        return name, None

    def _new_order(self, request: jws.Verified) -> Response:
        """RFC 8555 §7.4:

        POST /acme/new-order
        { "identifiers": [ { "type": "dns", "value": "www.example.org" } ],
          "notBefore": ..., "notAfter": ... (optional; not accepted here),
          "profile": "shortlived" (profiles draft), "replaces": CertID (RFC 9773 §5) }

        201 Created, Location: the order URL; the order object (§7.1.3) lists one
        authorization URL per identifier and its "finalize" URL.
        """
        account = self._account_of(request)
        payload = request.json()
        if not isinstance(payload, dict):
            raise AcmeProblem("malformed", "newOrder's payload must be a JSON object.")
        idents = payload.get("identifiers")
        if not isinstance(idents, list) or not idents:
            raise AcmeProblem("malformed", 'newOrder needs "identifiers": a non-empty list.')
        if len(idents) > MAX_NAMES:
            raise AcmeProblem(
                "rejectedIdentifier",
                f"An order may name at most {MAX_NAMES} identifiers, not {len(idents)}.",
            )
        if "notBefore" in payload or "notAfter" in payload:
            raise AcmeProblem(
                "malformed",
                "The lab CA sets validity by profile: leave out notBefore/notAfter and pick a "
                '"profile" instead.',
            )
        names: list[str] = []
        problems: list[AcmeProblem] = []
        for ident in idents:
            name, problem = self._check_name(ident)
            if problem is not None:
                problems.append(problem)
            elif name not in names:
                names.append(name)  # type: ignore[arg-type]
        if problems:
            first = problems[0]
            if len(problems) > 1:  # RFC 8555 §6.7.1: one subproblem per identifier
                first.extra["subproblems"] = [p.document() for p in problems]
            raise first
        profile = payload.get("profile", DEFAULT_PROFILE)
        if profile not in PROFILES:
            raise AcmeProblem(
                "invalidProfile",
                f"Profile {profile!r:.50} is not offered; choose one of {', '.join(PROFILES)}.",
            )
        replaces = payload.get("replaces")
        if replaces is not None:
            self._check_replaces(account, names, replaces)
        now = self.clock()
        order = _Order(
            secrets.token_urlsafe(12),
            account.id,
            names,
            [],
            profile,
            now + ORDER_LIFETIME,
            replaces,
        )
        for name in names:
            chall = _Challenge(secrets.token_urlsafe(12), "", secrets.token_urlsafe(32))
            authz = _Authz(
                secrets.token_urlsafe(12), order.id, account.id, name, order.expires, chall
            )
            chall.authz_id = authz.id
            self._authz[authz.id] = authz
            self._challenges[chall.id] = chall
            order.authz_ids.append(authz.id)
        self._orders[order.id] = order
        account.orders.append(order.id)
        self._evict_orders()
        return self._json(201, self._order_doc(order), {"Location": self.url(f"/order/{order.id}")})

    def _check_replaces(self, account: _Account, names: list[str], replaces: Any) -> None:
        """RFC 9773 §5: "replaces" names the certificate this order renews, by CertID.
        The server SHOULD check that it belongs to the same account and shares an
        identifier with the order; one already replaced by another order is refused with
        alreadyReplaced (409)."""
        if not isinstance(replaces, str):
            raise AcmeProblem("malformed", '"replaces" must be an ARI CertID string.')
        try:
            key_id, serial = ari.parse_cert_id(replaces)
        except ParseError as exc:
            raise AcmeProblem("malformed", f'"replaces" is not a CertID: {exc.what}') from None
        rec = self._record_for(serial) if key_id == self._issuer_key_id else None
        if rec is None:
            raise AcmeProblem(
                "malformed", f'"replaces" names no certificate this CA issued ({replaces}).'
            )
        # RFC 9773 §5 asks the server to check that the accounts match and names no problem
        # type; RFC 8555 §6.7 forbids ACME URNs outside the IANA registry (it has no
        # "conflict"), so the registered types: unauthorized (not yours), malformed (no shared
        # name).
        if rec.account_id != account.id:
            raise AcmeProblem(
                "unauthorized", 'The certificate in "replaces" was issued to another account.', 403
            )
        if not set(_cert_names(rec.cert)) & set(names):
            raise AcmeProblem(
                "malformed", 'The certificate in "replaces" shares no name with this order.', 400
            )
        if rec.replaced_by is not None:
            raise AcmeProblem(
                "alreadyReplaced",
                f"That certificate was already replaced by order {self.url('/order/' + rec.replaced_by)}.",
                409,
            )

    def _evict_orders(self) -> None:
        while len(self._orders) > MAX_ORDERS or len(self._authz) > MAX_AUTHZ:
            _, old = self._orders.popitem(last=False)
            for authz_id in old.authz_ids:
                authz = self._authz.pop(authz_id, None)
                if authz is not None:
                    self._challenges.pop(authz.challenge.id, None)

    def _order_doc(self, order: _Order) -> dict[str, Any]:
        """RFC 8555 §7.1.3: the order object."""
        doc: dict[str, Any] = {
            "status": order.status,
            "expires": _fmt(order.expires),
            "identifiers": [{"type": "dns", "value": n} for n in order.names],
            "authorizations": [self.url(f"/authz/{a}") for a in order.authz_ids],
            "finalize": self.url(f"/order/{order.id}/finalize"),
            "profile": order.profile,
        }
        if order.replaces:
            doc["replaces"] = order.replaces
        if order.error:
            doc["error"] = order.error
        if order.cert_id:
            doc["certificate"] = self.url(f"/cert/{order.cert_id}")
        return doc

    def _update_order(self, order_id: str) -> None:
        """§7.1.6: pending -> ready when every authorization is valid; invalid if one is,
        or when the order expired before it was finalized."""
        order = self._orders.get(order_id)
        if order is None:
            return
        if order.status in ("pending", "ready") and self.clock() >= order.expires:
            order.status = "invalid"
            order.error = AcmeProblem(
                "malformed", "The order expired before it was finalized."
            ).document()
            return
        if order.status != "pending":
            return
        states = [self._authz[a].status for a in order.authz_ids if a in self._authz]
        if "invalid" in states:
            order.status = "invalid"
            bad = next(
                self._authz[a] for a in order.authz_ids if self._authz[a].status == "invalid"
            )
            order.error = bad.challenge.error
        elif states and len(states) == len(order.authz_ids) and all(s == "valid" for s in states):
            order.status = "ready"

    def _owned(
        self, request: jws.Verified, table: Mapping[str, _Owned], key: str, what: str
    ) -> _Owned:
        """``table[key]`` if the account that signed ``request`` owns it (RFC 8555 §7.1: an
        account's orders, authorizations and certificates are its own); else 404 or 403."""
        account = self._account_of(request)
        item = table.get(key)
        if item is None:
            raise AcmeProblem("malformed", f"No such {what} (or it was forgotten).", 404)
        if item.account_id != account.id:
            raise AcmeProblem("unauthorized", f"This {what} belongs to another account.", 403)
        return item

    def _owned_order(self, request: jws.Verified, order_id: str) -> _Order:
        return self._owned(request, self._orders, order_id, "order")

    def _order(self, request: jws.Verified, order_id: str = "", sub: str = "") -> Response:
        """POST-as-GET the order (§7.4); ``/order/ID/finalize`` finalizes it."""
        order = self._owned_order(request, order_id)
        self._update_order(order.id)  # it may have expired meanwhile
        if sub == "finalize":
            return self._finalize(request, order)
        if sub:
            raise AcmeProblem("malformed", "Nothing is at that order path.", 404)
        # Retry-After only where waiting helps (§7.4: "processing"). A pending order waits
        # for the client; a validation on loopback takes milliseconds, and a 1 s minimum
        # (Retry-After counts whole seconds) would make every client sleep for nothing.
        headers = {"Retry-After": "1"} if order.status == "processing" else {}
        return self._json(200, self._order_doc(order), headers)

    # --- authorizations and challenges
    def _authz_doc(self, authz: _Authz) -> dict[str, Any]:
        """RFC 8555 §7.1.4: identifier, status, expires, challenges (one http-01, §8.3)."""
        return {
            "identifier": {"type": "dns", "value": authz.name},
            "status": authz.status,
            "expires": _fmt(authz.expires),
            "challenges": [self._challenge_doc(authz.challenge)],
        }

    def _challenge_doc(self, chall: _Challenge) -> dict[str, Any]:
        """RFC 8555 §8.3: {"type": "http-01", "url", "status", "token", "validated"?, "error"?}."""
        doc: dict[str, Any] = {
            "type": "http-01",
            "url": self.url(f"/chall/{chall.id}"),
            "status": chall.status,
            "token": chall.token,
        }
        if chall.validated is not None:
            doc["validated"] = _fmt(chall.validated)
        if chall.error is not None:
            doc["error"] = chall.error
        return doc

    def _owned_authz(self, request: jws.Verified, authz_id: str) -> _Authz:
        return self._owned(request, self._authz, authz_id, "authorization")

    def _authorization(self, request: jws.Verified, authz_id: str = "") -> Response:
        """RFC 8555 §7.5: POST-as-GET the authorization; {"status": "deactivated"} (§7.5.2)."""
        authz = self._owned_authz(request, authz_id)
        payload = request.json()
        if isinstance(payload, dict) and payload.get("status") == "deactivated":
            if authz.status in ("pending", "valid"):
                authz.status = "deactivated"
                order = self._orders.get(authz.order_id)
                if order is not None and order.status in ("pending", "ready"):
                    order.status = "invalid"
        return self._json(200, self._authz_doc(authz))

    def _challenge(self, request: jws.Verified, chall_id: str = "") -> Response:
        """RFC 8555 §7.5.1:

        POST /acme/chall/prV_B7yEyA4   payload: {}
        -> 200 OK, Link: <authz URL>;rel="up", the challenge with status "processing"

        The client says "I am ready, validate now". The server then fetches (§8.3)
            http://{domain}/.well-known/acme-challenge/{token}
        and compares the body with the key authorization. A POST-as-GET (empty payload)
        only reads the challenge.
        """
        chall = self._challenges.get(chall_id)
        if chall is None:
            raise AcmeProblem("malformed", "No such challenge (or it was forgotten).", 404)
        authz = self._owned_authz(request, chall.authz_id)
        payload = request.json()
        if payload is not None:
            if payload != {}:
                raise AcmeProblem(
                    "malformed", "A challenge response is the empty object {} (RFC 8555 §8.3)."
                )
            if chall.status == "pending" and authz.status == "pending":
                account = self._accounts[authz.account_id]
                chall.status = "processing"
                self._pending.append(
                    Validation(
                        chall.id,
                        authz.name,
                        chall.token,
                        f"{chall.token}.{account.thumbprint}",
                        authz.id,
                    )
                )
        headers = {"Link": f'<{self.url("/authz/" + authz.id)}>;rel="up"'}
        return self._json(200, self._challenge_doc(chall), headers)

    # --- finalize and certificates
    def _finalize(self, request: jws.Verified, order: _Order) -> Response:
        """RFC 8555 §7.4:

        POST /acme/order/TOlocE8rfgo/finalize
        { "csr": base64url(DER of a PKCS#10 CSR) }

        The CSR MUST name exactly the order's identifiers (badCSR otherwise); the order
        MUST be "ready" (orderNotReady, 403). §11.1: the certificate key MUST NOT be the
        account key. Answer: the order, "valid" with a "certificate" URL (this CA signs
        at once; a slower one answers "processing" and the client polls).
        """
        if order.status != "ready":
            raise AcmeProblem(
                "orderNotReady",
                f'The order is "{order.status}", not "ready": every authorization must be valid '
                "before finalize (poll the order).",
                403,
            )
        payload = request.json()
        if not isinstance(payload, dict) or not isinstance(payload.get("csr"), str):
            raise AcmeProblem("malformed", 'finalize takes {"csr": base64url(DER)}.')
        try:
            der = jws.b64url_decode(payload["csr"])
        except ParseError as exc:
            raise AcmeProblem("badCSR", f"The CSR is not base64url: {exc.what}") from None
        try:
            csr = x509.load_der_x509_csr(der)
        except ValueError:
            raise AcmeProblem(
                "badCSR", "The CSR is not a DER PKCS#10 request (RFC 2986); was it sent as PEM?"
            ) from None
        account = self._accounts[order.account_id]
        self._check_csr(csr, order, account)
        lifetime = PROFILES[order.profile][0]
        not_before = self.clock().astimezone(_UTC).replace(microsecond=0) - BACKDATE
        dp = x509.CRLDistributionPoints(
            [
                x509.DistributionPoint(
                    [x509.UniformResourceIdentifier(self.crl_url)], None, None, None
                )
            ]
        )
        cert = self.issuer.sign_csr(
            csr, not_before=not_before, not_after=not_before + lifetime, extensions=[(dp, False)]
        )
        rec = _Issued(secrets.token_urlsafe(12), cert, account.id, order.id, order.profile)
        self._certs[rec.id] = rec
        self._by_serial[cert.serial_number] = rec.id
        while len(self._certs) > MAX_CERTS:
            _, old = self._certs.popitem(last=False)
            self._by_serial.pop(old.cert.serial_number, None)
        if order.replaces:
            _, serial = ari.parse_cert_id(order.replaces)
            old_rec = self._record_for(serial)
            if old_rec is not None and old_rec.replaced_by is None:
                old_rec.replaced_by = order.id
        order.status, order.cert_id = "valid", rec.id
        return self._json(200, self._order_doc(order), {"Location": self.url(f"/order/{order.id}")})

    def _check_csr(
        self, csr: x509.CertificateSigningRequest, order: _Order, account: _Account
    ) -> None:
        if not csr.is_signature_valid:
            raise AcmeProblem(
                "badCSR", "The CSR's signature does not verify with the key it contains."
            )
        key = csr.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < 2048:
                raise AcmeProblem(
                    "badCSR",
                    f"An RSA key of {key.key_size} bits is too weak: use 2048 bits or more.",
                )
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if key.curve.name not in ("secp256r1", "secp384r1"):
                raise AcmeProblem(
                    "badCSR",
                    f"EC curve {key.curve.name} is not accepted: use P-256 or P-384 (CA/B Forum "
                    "Baseline Requirements §6.1.5).",
                )
        else:
            raise AcmeProblem(
                "badCSR",
                f"A {type(key).__name__} is not accepted for a server certificate: use EC P-256 "
                "or RSA 2048+.",
            )
        if jws.public_jwk(key) == jws.public_jwk(account.key):
            raise AcmeProblem(
                "badCSR",
                "The CSR uses the account key. RFC 8555 §11.1: the certificate key must be a "
                "different key, so that a stolen web server key cannot take over the account.",
            )
        names: list[str] = []
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            san = None
        if san is not None:
            other = [g for g in san if not isinstance(g, x509.DNSName)]
            if other:
                raise AcmeProblem(
                    "badCSR", f"The CSR asks for a non-DNS name ({other[0].value!r:.80})."
                )
            names += [g.value.lower() for g in san]
        for attr in csr.subject:
            if attr.oid != NameOID.COMMON_NAME:
                raise AcmeProblem(
                    "badCSR",
                    f"The CSR's subject has {attr.oid._name}={attr.value!r:.60}; ACME validates "
                    "names only, so leave other subject fields out.",
                )
            names.append(str(attr.value).lower())
        wanted = set(order.names)
        if set(names) != wanted:
            extra = sorted(set(names) - wanted)
            missing = sorted(wanted - set(names))
            raise AcmeProblem(
                "badCSR",
                "The CSR's names must equal the order's"
                + (f"; it adds {', '.join(extra)}" if extra else "")
                + (f"; it lacks {', '.join(missing)}" if missing else "")
                + ".",
            )

    def _certificate(self, request: jws.Verified, cert_id: str = "") -> Response:
        """RFC 8555 §7.4.2:

        POST-as-GET /acme/cert/mAt3xBGaobw
        -> 200 OK, Content-Type: application/pem-certificate-chain (RFC 8555 §9.1):
           the end-entity certificate first, then the certificates that certify it,
           without the root (the client's trust store has it).
        """
        rec = self._owned(request, self._certs, cert_id, "certificate")
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [rec.cert, *self.chain])
        return Response(200, {"Content-Type": "application/pem-certificate-chain"}, pem)

    def _record_for(self, serial: int) -> _Issued | None:
        rec_id = self._by_serial.get(serial)
        return self._certs.get(rec_id) if rec_id is not None else None

    def _revoke_cert(self, request: jws.Verified) -> Response:
        """RFC 8555 §7.6:

        POST /acme/revoke-cert
        { "certificate": base64url(DER), "reason": 4 (optional, RFC 5280 §5.3.1) }

        Signed either with "kid" by an account that ordered the certificate or holds
        valid authorizations for all its names, or with "jwk" by the certificate's own
        key (someone who found a stolen key can revoke the certificate). Already revoked:
        alreadyRevoked. Then the CRL lists the serial.
        """
        payload = request.json()
        if not isinstance(payload, dict) or not isinstance(payload.get("certificate"), str):
            raise AcmeProblem("malformed", 'revokeCert takes {"certificate": base64url(DER)}.')
        try:
            cert = x509.load_der_x509_certificate(jws.b64url_decode(payload["certificate"]))
        except (ParseError, ValueError):
            raise AcmeProblem("malformed", "The certificate is not base64url DER.") from None
        reason = payload.get("reason", 0)
        if not isinstance(reason, int) or isinstance(reason, bool):
            raise AcmeProblem(
                "malformed", '"reason" is an integer CRLReason code (RFC 5280 §5.3.1).'
            )
        if reason not in _REASONS:
            raise AcmeProblem(
                "badRevocationReason",
                f"Reason {reason} is not one a subscriber may give; use one of "
                f"{', '.join(map(str, _REASONS))} (RFC 5280 §5.3.1).",
            )
        rec = self._record_for(cert.serial_number)
        if rec is None or rec.cert != cert:
            raise AcmeProblem("malformed", "This CA did not issue that certificate.", 404)
        if request.kid is not None:
            account = self._account_of(request)
            if rec.account_id != account.id and not self._holds_authz(account, _cert_names(cert)):
                raise AcmeProblem(
                    "unauthorized",
                    "This account neither ordered the certificate nor holds valid "
                    "authorizations for all its names.",
                    403,
                )
        elif jws.public_jwk(request.key) != jws.public_jwk(cert.public_key()):  # type: ignore[arg-type]
            raise AcmeProblem(
                "unauthorized",
                "The jwk that signed this request is not the certificate's key.",
                403,
            )
        if rec.revoked is not None:
            raise AcmeProblem(
                "alreadyRevoked",
                f"Serial {cert.serial_number:x} was revoked at {_fmt(rec.revoked)}.",
            )
        rec.revoked = self.clock()
        self.issuer.revoke(cert, _REASONS[reason])
        self._crl = None  # the next GET /crl signs a fresh one
        return Response(200, {})

    def _holds_authz(self, account: _Account, names: list[str]) -> bool:
        valid = {
            self._authz[a].name
            for o in account.orders
            if o in self._orders
            for a in self._orders[o].authz_ids
            if a in self._authz and self._authz[a].status == "valid"
        }
        return bool(names) and set(names) <= valid

    def _renewal_info(self, text: str) -> Response:
        """RFC 9773 §4:

        GET /renewal-info/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE
        -> 200 OK, Retry-After: 21600
           {"suggestedWindow": {"start": "...", "end": "..."}, "explanationURL"?: "..."}

        A revoked certificate gets a window in the past: "renew now".
        """
        try:
            key_id, serial = ari.parse_cert_id(text)
        except ParseError as exc:
            raise AcmeProblem("malformed", f"Not an ARI CertID: {exc.what}") from None
        rec = self._record_for(serial) if key_id == self._issuer_key_id else None
        if rec is None:
            raise AcmeProblem("malformed", "This CA knows no certificate with that CertID.", 404)
        if rec.revoked is not None:
            now = self.clock()
            window = ari.RenewalWindow(
                now - _dt.timedelta(hours=2),
                now - _dt.timedelta(hours=1),
                explanation_url=None,
            )
        else:
            window = rec.window or ari.suggested_window(rec.cert)
        return self._json(200, window.as_json(), {"Retry-After": str(ARI_RETRY_AFTER)})

    def __repr__(self) -> str:
        return f"<AcmeCA {self.directory_url} issued={len(self._certs)}>"


def _cert_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [n.lower() for n in san.get_values_for_type(x509.DNSName)]
