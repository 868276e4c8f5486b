"""The course's own ACME client (RFC 8555), one readable step at a time (introduced in notebook 10).

Notebook 10 first writes the ACME steps by hand, signing each JWS with ``cryptography``.
This module is the same client, kept: every method is one step of RFC 8555, with the
section it implements quoted above it, so a learner can read it side by side with the
RFC and with the lab's server (:mod:`helpers.acme.ca`).

Theory of operation
-------------------
One URL starts everything: the **directory** (§7.1.1), a JSON object naming the other
URLs. Then:

==============  =================================================================  =========
step            request                                                            RFC 8555
==============  =================================================================  =========
nonce           ``HEAD newNonce`` -> ``Replay-Nonce`` (then every answer has one)  §7.2
register        ``POST newAccount``, signed with ``jwk``: Location = account URL   §7.3
new_order       ``POST newOrder`` {identifiers, profile?, replaces?}               §7.4
authorization   ``POST-as-GET`` each authorization: its challenges                 §7.5
respond         serve ``token.thumbprint`` (HTTP-01), ``POST {}`` to the challenge  §7.5.1, §8.3
poll            ``POST-as-GET`` until "valid" (or "invalid"), obeying Retry-After  §7.5.1
finalize        ``POST finalize`` {csr} with a *new* certificate key               §7.4
download        ``POST-as-GET`` the certificate URL: a PEM chain                   §7.4.2
renewal_info    unauthenticated ``GET renewalInfo/<CertID>``                       RFC 9773 §4
revoke          ``POST revokeCert`` {certificate, reason}                          §7.6
==============  =================================================================  =========

Every POST is a JWS (:mod:`helpers.acme.jws`) whose protected header carries the URL it
is for and a **nonce** the server handed out; the server accepts each nonce once, so a
captured request cannot be replayed (§6.5). The client keeps the ``Replay-Nonce`` of
every answer for its next request. A server may still refuse a nonce (``badNonce``:
expired, or Pebble rejecting 5 % of good ones on purpose to test clients); then the
answer carries a fresh nonce, and the client signs the same request again with it, as
§6.5 requires (at most :attr:`AcmeClient.bad_nonce_retries` times).

Two keys, never the same one (§11.1): the **account key** signs requests and proves
who you are; the **certificate key** goes into the CSR and the certificate, and is new
for every certificate (EC P-256 by default). "the public key of an account key pair
MUST NOT be included in a certificate."

Errors: an ACME server says "no" with a problem document (§6.7), raised here as
:class:`~helpers.acme.problems.AcmeProblem` (one sentence and a hint); when no ACME
server answers at all (refused, timeout, not TLS, unknown name, untrusted certificate)
the client raises :class:`~helpers.errors.ConnectionProblem` with one sentence saying
which. Every request has a timeout, TLS is always verified (``ca_bundle`` says whom to
trust), and an answer larger than :data:`MAX_ANSWER_BYTES` is refused.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import html
import json
import os
import re
import time
import urllib.parse
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from requests.structures import CaseInsensitiveDict

from ..errors import ConnectionProblem, PKIError, UsageError
from ..names import is_lab_name
from ..pki import ensure_key_matches, make_csr, write_private_key
from ..servers import _is_loopback
from . import ari, jws
from .http01 import Http01Responder
from .problems import AcmeProblem

__all__ = ["MAX_ANSWER_BYTES", "AcmeClient", "Answer", "Issued", "Order"]

#: The largest answer read from an ACME server (a certificate chain is a few kB).
MAX_ANSWER_BYTES = 1 << 20
#: RFC 8555 §6.1: "ACME clients MUST send a User-Agent header field ... [with] the name
#: and version of the ACME software in addition to the name and version of the
#: underlying HTTP client software."
USER_AGENT = f"tls-course-acme/1.0 (helpers/acme/client.py) python-requests/{requests.__version__}"
# §6.5.1: "Clients MUST ignore invalid Replay-Nonce values" (base64url, RFC 7515 §2).
_NONCE = re.compile(r"[A-Za-z0-9_-]+")


# ------------------------------------------------------------------------------ data


@dataclass
class Answer:
    """One HTTP answer from the ACME server, read whole (at most MAX_ANSWER_BYTES)."""

    method: str
    url: str
    status: int
    headers: CaseInsensitiveDict[str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON (an ACME resource), or an AcmeProblem saying it is not."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise AcmeProblem(
                "about:blank",
                f"{self.method} {self.url} answered {self.status} with a body that is not "
                f"JSON ({self.headers.get('Content-Type') or 'no Content-Type'})",
                self.status,
                hint="Check that the directory URL is an ACME server's.",
            ) from None

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")


@dataclass
class Order:
    """An order (RFC 8555 §7.1.3): its URL (from Location) and its latest JSON body."""

    url: str
    body: dict[str, Any]

    @property
    def status(self) -> str:
        """pending -> ready -> processing -> valid, or invalid (§7.1.6)."""
        return str(self.body.get("status"))

    @property
    def authorizations(self) -> list[str]:
        return list(self.body.get("authorizations") or [])

    @property
    def finalize_url(self) -> str:
        return str(self.body.get("finalize"))

    @property
    def certificate_url(self) -> str | None:
        return self.body.get("certificate")

    @property
    def names(self) -> list[str]:
        return [i.get("value") for i in self.body.get("identifiers") or []]

    @property
    def profile(self) -> str | None:
        return self.body.get("profile")


@dataclass
class Issued:
    """What :meth:`AcmeClient.obtain` got: the chain as the CA sent it, and its key.

    ``chain[0]`` is the certificate (:attr:`cert`), then the intermediates: exactly what
    a server sends in its handshake (``load_cert_chain`` reads :meth:`write`'s file).
    """

    chain: list[x509.Certificate]
    key: jws.Key
    order_url: str
    profile: str | None = None
    replaced: str | None = None  #: the ARI CertID of the certificate this one replaces

    @property
    def cert(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def names(self) -> list[str]:
        try:
            san = self.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return []
        return [str(v) for v in san.value.get_values_for_type(x509.DNSName)]

    @property
    def not_after(self) -> _dt.datetime:
        return self.cert.not_valid_after_utc

    @property
    def lifetime(self) -> _dt.timedelta:
        """notAfter - notBefore (RFC 5280 §4.1.2.5 counts notAfter in: +1 s ignored here)."""
        return self.cert.not_valid_after_utc - self.cert.not_valid_before_utc

    @property
    def cert_id(self) -> str:
        """This certificate's ARI CertID (RFC 9773 §4.1), for renewal_info and replaces."""
        return ari.cert_id(self.cert)

    def write(self, directory: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
        """Write ``<name>-chain.pem`` (certificate + intermediates) and ``<name>-key.pem``
        (PKCS#8, created with mode 0600 by :func:`helpers.pki.write_private_key`, never
        readable by others even for a moment); return both paths."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        chain_path = folder / f"{name}-chain.pem"
        chain_path.write_bytes(
            b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)
        )
        key_path = write_private_key(folder / f"{name}-key.pem", self.key)
        return chain_path, key_path

    def _repr_html_(self) -> str:
        days = self.lifetime.total_seconds() / 86400
        span = f"{days:.0f} days" if days >= 10 else f"{days * 24:.0f} hours ({days:.1f} days)"
        rows = [
            ("names", ", ".join(self.names) or "(none)"),
            ("profile", self.profile or "(server default)"),
            ("not after", self.not_after.strftime("%Y-%m-%d %H:%M UTC")),
            ("lifetime", span),
            ("issuer", self.cert.issuer.rfc4514_string()),
            ("chain", f"{len(self.chain)} certificates"),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in rows
        )
        return f"<table><caption>Issued by ACME</caption>{body}</table>"

    def __repr__(self) -> str:
        return (
            f"<Issued {', '.join(self.names)} profile={self.profile!r} "
            f"not_after={self.not_after:%Y-%m-%d %H:%M}Z>"
        )


# ------------------------------------------------------------------------------ the client


class AcmeClient:
    """An ACME client for ``directory`` (RFC 8555), trusting ``ca_bundle`` for HTTPS.

    >>> client = AcmeClient(lab.acme.directory, ca_bundle=lab_json["ca_bundle"])
    >>> with Http01Responder(port=lab.acme.http01_port) as responder:
    ...     issued = client.obtain(["shop.lab.localhost"], responder=responder)

    ``account_key``: EC P-256 by default (new for this client); RSA works too.
    ``timeout``: seconds for each connection and each read. :meth:`obtain` does every
    step; the step methods (:meth:`new_order`, :meth:`authorization`, :meth:`respond`,
    :meth:`poll`, :meth:`finalize`, :meth:`download`) are what it calls, for the notebook.
    """

    #: RFC 8555 §6.5: after badNonce, sign the request again with the error's nonce, at
    #: most this many times. One retry is what the RFC describes; Pebble rejects 5 % of
    #: good nonces at random, so a retry's nonce is refused too once in 400 requests,
    #: and a whole issuance (~15 requests) would fail about once in 25 runs.
    bad_nonce_retries: int = 3
    #: Seconds :meth:`poll` waits for an authorization or order to settle.
    poll_deadline: float = 60.0
    #: Seconds :meth:`respond` waits to *see* the CA's validation request (§7.5.1).
    fetch_wait: float = 10.0

    def __init__(
        self,
        directory: str,
        *,
        account_key: jws.Key | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        parts = urllib.parse.urlsplit(directory)
        if parts.scheme != "https" or not parts.hostname:
            raise UsageError(
                f"{directory!r} is not an https:// URL: RFC 8555 §6.1 requires HTTPS for ACME.",
                "Pass the directory URL the server prints, e.g. https://127.0.0.1:PORT/directory.",
            )
        self.directory_url = directory
        self.account_key: jws.Key = account_key or ec.generate_private_key(ec.SECP256R1())
        self.ca_bundle = Path(ca_bundle) if ca_bundle is not None else None
        self.timeout = timeout
        #: The account URL once registered: the JWS "kid" of every later request (§6.2).
        self.kid: str | None = None
        #: The account object the server returned at registration (§7.1.2).
        self.account: dict[str, Any] | None = None
        #: How many requests were signed again after a badNonce (§6.5).
        self.bad_nonce_count = 0
        #: Seconds the last renewalInfo answer said to wait before asking again (RFC 9773 §4.3).
        self.renewal_retry_after: float | None = None
        #: One line per HTTP exchange: "POST https://.../new-order -> 201" (the last 500).
        self.log: deque[str] = deque(maxlen=500)
        self._nonce: str | None = None
        self._directory: dict[str, Any] | None = None
        self._session = requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT
        self._session.headers["Accept-Language"] = "en"  # §6.1 SHOULD
        # A proxy from the environment cannot reach this machine's loopback or the lab's
        # names, so those go direct; other hosts use the environment's proxy, as requests does.
        host = parts.hostname
        self._proxies: dict[str, str | None] = (
            {"http": None, "https": None} if _is_loopback(host) or is_lab_name(host) else {}
        )

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> AcmeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        who = self.kid or "not registered"
        return f"<AcmeClient {self.directory_url} account={who}>"

    # -- transport ------------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """One HTTPS exchange; keeps the answer's Replay-Nonce; network failures as
        :class:`ConnectionProblem` in one sentence."""
        verify: str | bool = str(self.ca_bundle) if self.ca_bundle is not None else True
        started = time.monotonic()
        try:
            with self._session.request(
                method,
                url,
                data=body,
                headers=dict(headers or {}),
                timeout=self.timeout,
                verify=verify,
                proxies=self._proxies,
                allow_redirects=False,
                stream=True,
            ) as resp:
                data = bytearray()
                for chunk in resp.iter_content(65536):
                    data += chunk
                    if len(data) > MAX_ANSWER_BYTES:
                        raise ConnectionProblem(
                            f"{url} sent more than {MAX_ANSWER_BYTES} bytes: no ACME answer is that big.",
                            "Check that the URL belongs to an ACME server.",
                        )
                    if time.monotonic() - started > 3 * self.timeout:
                        raise ConnectionProblem(
                            f"{url} sent its answer too slowly (over {3 * self.timeout:g} s).",
                            "Try again; if it persists, the server is overloaded.",
                        )
                answer = Answer(method, url, resp.status_code, resp.headers, bytes(data))
        except requests.RequestException as exc:
            raise _connection_problem(exc, url, self.timeout, self.ca_bundle) from None
        nonce = answer.headers.get("Replay-Nonce")
        if nonce and _NONCE.fullmatch(nonce):  # §6.5.1: ignore invalid values
            self._nonce = nonce
        self.log.append(f"{method} {url} -> {answer.status}")
        return answer

    def _problem(self, answer: Answer) -> AcmeProblem:
        """The server's problem document (§6.7) as an exception, or one sentence saying
        the error came without one."""
        try:
            doc = json.loads(answer.body)
        except (ValueError, UnicodeDecodeError):
            doc = None
        if isinstance(doc, dict) and "type" in doc:
            return AcmeProblem.from_document(doc, answer.status)
        kind = answer.headers.get("Content-Type") or "no Content-Type"
        return AcmeProblem(
            "about:blank",
            f"{answer.method} {answer.url} answered HTTP {answer.status} ({kind}) "
            "without a problem document",
            answer.status,
            hint="Check that the URL belongs to an ACME server and that it is running.",
        )

    # -- RFC 8555 §7.1.1 Directory --------------------------------------------------

    # "In order to help clients configure themselves with the right URLs for each ACME
    #  operation, ACME servers provide a directory object. This should be the only URL
    #  needed to configure clients." (§7.1.1)  It is a plain GET: nothing secret in it.
    @property
    def directory(self) -> dict[str, Any]:
        """The directory object (§7.1.1), fetched once."""
        if self._directory is None:
            answer = self._request("GET", self.directory_url)
            if answer.status != 200:
                raise self._problem(answer)
            try:
                doc = json.loads(answer.body)
            except (ValueError, UnicodeDecodeError):
                doc = None
            missing = [
                k
                for k in ("newNonce", "newAccount", "newOrder")
                if not isinstance(doc, dict) or not isinstance(doc.get(k), str)
            ]
            if missing:
                kind = answer.headers.get("Content-Type") or "no Content-Type"
                raise UsageError(
                    f"{self.directory_url} is not an ACME directory: it answered {kind} "
                    f"without {', '.join(missing)}.",
                    "Use the URL of the directory itself (RFC 8555 §7.1.1), as the server prints it.",
                )
            self._directory = doc
        return self._directory

    @property
    def profiles(self) -> dict[str, str]:
        """Profiles the server offers: ``directory["meta"]["profiles"]`` (name -> description)."""
        meta = self.directory.get("meta") or {}
        found = meta.get("profiles") if isinstance(meta, dict) else None
        return dict(found) if isinstance(found, dict) else {}

    # -- RFC 8555 §7.2 Getting a Nonce ----------------------------------------------

    # "To get a fresh nonce, the client sends a HEAD request to the newNonce resource
    #  on the server. The server's response MUST include a Replay-Nonce header field
    #  containing a fresh nonce and SHOULD have status code 200 (OK)." (§7.2)
    def new_nonce(self) -> str:
        """A fresh nonce from ``HEAD newNonce``."""
        self._nonce = None
        answer = self._request("HEAD", self.directory["newNonce"])
        if answer.status >= 400:
            raise self._problem(answer)
        nonce, self._nonce = self._nonce, None
        if nonce is None:
            raise AcmeProblem(
                "about:blank",
                f"HEAD {self.directory['newNonce']} answered without a valid Replay-Nonce",
                answer.status,
                hint="RFC 8555 §7.2 requires one: the server is not a working ACME server.",
            )
        return nonce

    def _take_nonce(self) -> str:
        """The nonce of the last answer (each is used once), else a fresh one."""
        nonce, self._nonce = self._nonce, None
        return nonce or self.new_nonce()

    # -- RFC 8555 §6.2 Request Authentication, §6.5 Replay Protection ----------------

    # "When a server rejects a request because its nonce value was unacceptable (or not
    #  present), it MUST provide HTTP status code 400 (Bad Request), and indicate the
    #  ACME error type "urn:ietf:params:acme:error:badNonce". ... On receiving such a
    #  response, a client SHOULD retry the request using the new nonce. ... when
    #  retrying in response to a "badNonce" error, the client MUST use the nonce
    #  provided in the error response." (§6.5)
    def post(
        self,
        url: str,
        payload: Mapping[str, Any] | None,
        *,
        key: jws.Key | None = None,
        use_jwk: bool = False,
        accept: str | None = None,
    ) -> Answer:
        """Sign ``payload`` for ``url`` and POST it (``payload=None``: POST-as-GET, §6.3).

        Signed with the account key and its ``kid`` (the account URL), or with ``key``
        and/or its ``jwk`` when ``use_jwk`` (newAccount, revocation by certificate key,
        §6.2). A ``badNonce`` answer is retried with the nonce it carried.
        """
        signer = key or self.account_key
        if not use_jwk and self.kid is None:
            raise UsageError(
                "This request must name an account (kid), and this client has none yet.",
                "Call register() first (RFC 8555 §7.3).",
            )
        headers = {"Content-Type": "application/jose+json"}  # §6.2
        if accept:
            headers["Accept"] = accept
        for attempt in range(self.bad_nonce_retries + 1):
            signed = jws.sign(
                signer,
                payload,
                url=url,
                nonce=self._take_nonce(),
                kid=None if use_jwk else self.kid,
            )
            answer = self._request("POST", url, body=json.dumps(signed).encode(), headers=headers)
            if answer.status < 400:
                return answer
            problem = self._problem(answer)
            if problem.type != "badNonce" or attempt == self.bad_nonce_retries:
                raise problem
            self.bad_nonce_count += 1  # _request kept the error's Replay-Nonce: sign again
        raise AssertionError("unreachable")

    # -- RFC 8555 §7.3 Account Management -------------------------------------------

    # "A client creates a new account with the server by sending a POST request to the
    #  server's newAccount URL." The JWS carries the public key ("jwk"), because there is
    #  no account URL yet. "The server returns this account object in a 201 (Created)
    #  response, with the account URL in a Location header field." (§7.3)
    def register(self, contact: Iterable[str] = ()) -> str:
        """Create (or find) the account of :attr:`account_key`; return its URL (the kid).

        ``termsOfServiceAgreed`` is sent as true: read ``directory["meta"]
        ["termsOfService"]`` first, as you would for a real CA. ``contact``: e.g.
        ``["mailto:admin@example.org"]`` (the lab and Pebble send no mail).
        """
        payload: dict[str, Any] = {"termsOfServiceAgreed": True}
        contacts = list(contact)
        if contacts:
            payload["contact"] = contacts
        answer = self.post(self.directory["newAccount"], payload, use_jwk=True)
        if not answer.location:
            raise AcmeProblem(
                "about:blank",
                "newAccount answered without a Location header (the account URL)",
                answer.status,
                hint="RFC 8555 §7.3 requires it: the server is not a working ACME server.",
            )
        self.kid = answer.location
        self.account = answer.json()
        return self.kid

    # -- RFC 8555 §7.4 Applying for Certificate Issuance ----------------------------

    # "The client begins the certificate issuance process by sending a POST request to
    #  the server's newOrder resource. The body of the POST is a JWS object whose JSON
    #  payload is a subset of the order object ... identifiers (required, array of
    #  object)". "replaces" is RFC 9773 §5 (the ARI CertID of the certificate this
    #  order renews); "profile" is Let's Encrypt's profile extension (the directory's
    #  meta.profiles names them).
    def new_order(
        self,
        names: Sequence[str],
        *,
        profile: str | None = None,
        replaces: x509.Certificate | str | None = None,
    ) -> Order:
        """Ask for a certificate for ``names`` (DNS names); the answer is a pending order."""
        if isinstance(names, str):
            names = [names]
        if not names:
            raise UsageError("An order needs at least one name.", "Pass a list of DNS names.")
        payload: dict[str, Any] = {
            "identifiers": [{"type": "dns", "value": name} for name in names]
        }
        if profile is not None:
            if profile not in self.profiles:
                offered = ", ".join(sorted(self.profiles)) or "none"
                raise UsageError(
                    f"This ACME server does not offer the profile {profile!r} (it offers: {offered}).",
                    "Pick one of client.profiles, or pass profile=None for the server's default.",
                )
            payload["profile"] = profile
        if replaces is not None:
            # RFC 9773 §5: "Clients SHOULD NOT include this field if the ACME server has
            # not indicated that it supports this protocol by advertising the
            # renewalInfo resource in its Directory."
            if "renewalInfo" not in self.directory:
                raise UsageError(
                    "This ACME server has no renewalInfo in its directory, so it does not "
                    "understand 'replaces' (RFC 9773 §5).",
                    "Order without replaces=.",
                )
            payload["replaces"] = replaces if isinstance(replaces, str) else ari.cert_id(replaces)
        answer = self.post(self.directory["newOrder"], payload)
        if not answer.location:
            raise AcmeProblem(
                "about:blank",
                "newOrder answered without a Location header (the order URL)",
                answer.status,
            )
        return Order(answer.location, answer.json())

    # -- RFC 8555 §7.5 Identifier Authorization --------------------------------------

    # "When a client receives an order from the server in reply to a newOrder request,
    #  it downloads the authorization resources by sending POST-as-GET requests to the
    #  indicated URLs." (§7.5)
    def authorization(self, url: str) -> dict[str, Any]:
        """The authorization object at ``url``: identifier, status, challenges (§7.1.4)."""
        return self.post(url, None).json()

    # -- RFC 8555 §7.5.1 Responding to Challenges, §8.3 HTTP Challenge ---------------

    # "The client indicates to the server that it is ready for the challenge
    #  validation by sending an empty JSON body ({}) carried in a POST request to the
    #  challenge URL (not the authorization URL)." (§7.5.1)  Before that, the key
    #  authorization is served: "The path at which the resource is provisioned is
    #  comprised of the fixed prefix "/.well-known/acme-challenge/", followed by the
    #  "token" value in the challenge." (§8.3)
    def respond(self, authz: Mapping[str, Any], responder: Http01Responder) -> dict[str, Any]:
        """Serve the http-01 key authorization on ``responder`` and tell the CA it is ready.

        Returns the challenge object the server answered with; the token stays served
        until you call ``responder.remove(challenge["token"])`` (:meth:`obtain` does once
        the authorization is valid or invalid).
        """
        challenge = next(
            (c for c in authz.get("challenges") or [] if c.get("type") == "http-01"), None
        )
        name = (authz.get("identifier") or {}).get("value", "?")
        if challenge is None:
            offered = ", ".join(str(c.get("type")) for c in authz.get("challenges") or [])
            raise UsageError(
                f"The authorization for {name} offers no http-01 challenge (only: {offered or 'none'}).",
                "This client answers HTTP-01 only (RFC 8555 §8.3).",
            )
        token = str(challenge.get("token"))
        responder.add(token, jws.key_authorization(token, self.account_key))  # §8.1
        return self.post(str(challenge["url"]), {}).json()

    # "Usually, the validation process will take some time, so the client will need to
    #  poll the authorization resource to see when it is finalized. ... the server MUST
    #  return a 200 (OK) response and MAY include a Retry-After header field to suggest
    #  a polling interval to the client." (§7.5.1)
    def poll(
        self, url: str, *, until: Iterable[str] = ("valid",), deadline: float | None = None
    ) -> dict[str, Any]:
        """POST-as-GET ``url`` until its status is one of ``until``; return the object.

        Waits what the server's ``Retry-After`` says (seconds or an HTTP date, RFC 9110
        §10.2.3), else 0.25 s doubling to 2 s; gives up after ``deadline`` seconds
        (default :attr:`poll_deadline`) with :class:`ConnectionProblem`. Status
        ``"invalid"`` raises the server's reason as :class:`AcmeProblem`.
        """
        wanted = set(until)
        end = time.monotonic() + (self.poll_deadline if deadline is None else deadline)
        pause = 0.25
        while True:
            answer = self.post(url, None)
            doc = answer.json()
            status = doc.get("status") if isinstance(doc, dict) else None
            if status in wanted:
                return doc
            if status in ("invalid", "deactivated", "expired", "revoked"):
                raise _why_invalid(url, doc, answer.status)
            wait = _retry_after(answer.headers.get("Retry-After"))
            if wait is None:
                wait, pause = pause, min(pause * 2, 2.0)
            left = end - time.monotonic()
            if left <= 0:
                raise ConnectionProblem(
                    f"{url} was still {status!r} after {self.poll_deadline if deadline is None else deadline:g} s.",
                    "The server may be slow or stuck: try poll() again later.",
                )
            time.sleep(min(max(wait, 0.05), left))

    # -- RFC 8555 §7.4 (finalize) ----------------------------------------------------

    # "Once the client believes it has fulfilled the server's requirements, it should
    #  send a POST request to the order resource's finalize URL. The POST body MUST
    #  include a CSR ... The CSR is sent in the base64url-encoded version of the DER
    #  format." And §11.1: "when a server receives a finalize request, it MUST verify
    #  that the public key in a CSR is not the same as the public key of the account
    #  key pair" -- a client checks first.
    def finalize(self, order: Order, csr: x509.CertificateSigningRequest) -> Order:
        """Send the CSR to ``order``'s finalize URL and poll until the order is valid."""
        account_public = jws.public_jwk(self.account_key)
        if jws.public_jwk(csr.public_key()) == account_public:  # type: ignore[arg-type]
            raise UsageError(
                "This CSR holds the account key: RFC 8555 §11.1 forbids putting an account "
                "key in a certificate.",
                "Make a new key for the certificate (helpers.pki.new_private_key()).",
            )
        der = csr.public_bytes(serialization.Encoding.DER)
        answer = self.post(order.finalize_url, {"csr": jws.b64url(der)})
        body = answer.json()
        if body.get("status") != "valid":
            # "processing": "Send a POST-as-GET request after the time given in the
            #  Retry-After header field of the response, if any." (§7.4)
            body = self.poll(order.url, until=("valid",))
        return Order(order.url, body)

    # -- RFC 8555 §7.4.2 Downloading the Certificate -----------------------------------

    # "To download the issued certificate, the client simply sends a POST-as-GET
    #  request to the certificate URL. The default format of the certificate is
    #  application/pem-certificate-chain" (end-entity certificate first).
    def download(self, order: Order) -> list[x509.Certificate]:
        """The certificate chain of a valid order: ``[leaf, intermediates...]``."""
        if not order.certificate_url:
            raise UsageError(
                f"The order {order.url} has no certificate yet (status {order.status!r}).",
                "finalize() it and wait until its status is 'valid'.",
            )
        answer = self.post(order.certificate_url, None, accept="application/pem-certificate-chain")
        try:
            chain = x509.load_pem_x509_certificates(answer.body)
        except ValueError:
            raise AcmeProblem(
                "about:blank",
                f"{order.certificate_url} did not send a PEM certificate chain",
                answer.status,
            ) from None
        return chain

    # -- the whole flow ------------------------------------------------------------

    def obtain(
        self,
        names: Sequence[str],
        *,
        responder: Http01Responder,
        key: jws.Key | None = None,
        profile: str | None = None,
        replaces: x509.Certificate | None = None,
    ) -> Issued:
        """Every step: register (once), order, answer HTTP-01 for each name, finalize
        with a CSR for ``key`` (a new EC P-256 key by default), download; checked.

        ``responder`` must listen where the CA validates (the lab: its ``http01_port``).
        ``replaces``: the certificate this one renews (RFC 9773 §5).
        """
        if isinstance(names, str):
            names = [names]
        if self.kid is None:
            self.register()
        order = self.new_order(names, profile=profile, replaces=replaces)
        for url in order.authorizations:
            authz = self.authorization(url)
            if authz.get("status") == "valid":
                continue  # reused: servers may keep a valid authorization (Pebble: 50 %)
            challenge = self.respond(authz, responder)
            token = str(challenge.get("token"))
            try:
                # §7.5.1: "the client SHOULD NOT begin polling until it has seen the
                # validation request from the server" (bounded: it may never come).
                responder.wait_until_fetched(token, min(self.fetch_wait, self.poll_deadline))
                self.poll(url, until=("valid",))
            finally:
                responder.remove(token)  # §8.3: de-provision once valid or invalid
        order = Order(order.url, self.poll(order.url, until=("ready", "valid")))
        cert_key = key or ec.generate_private_key(ec.SECP256R1())
        order = self.finalize(order, make_csr(cert_key, *names))
        chain = self.download(order)
        if not chain:
            raise AcmeProblem("about:blank", f"{order.certificate_url} sent no certificate", 200)
        ensure_key_matches(chain[0], cert_key)  # the CA certified *our* key
        issued = Issued(
            chain,
            cert_key,
            order.url,
            profile=order.profile or profile,
            replaced=ari.cert_id(replaces) if replaces is not None else None,
        )
        if {n.lower() for n in issued.names} != {n.lower() for n in names}:
            raise PKIError(
                f"The CA issued a certificate for {issued.names}, not for the order's {list(names)}.",
                "RFC 8555 §7.4: the server MUST NOT issue a certificate with contents "
                "other than those requested. Do not use it; report it to the CA.",
            )
        return issued

    # -- RFC 9773 §4 Getting Renewal Information -------------------------------------

    # "To request the suggested renewal information for a certificate, the client sends
    #  an unauthenticated GET request to a path under the server's renewalInfo URL."
    #  url = renewalInfo || '/' || base64url(AKI keyIdentifier) || '.' || base64url(Serial)
    def renewal_info(self, cert: x509.Certificate) -> ari.RenewalWindow | None:
        """The CA's suggested renewal window for ``cert``, or None if the directory has
        no ``renewalInfo`` (then renew at two thirds of the lifetime, :func:`ari.two_thirds`).

        The answer's ``Retry-After`` (when to ask again, RFC 9773 §4.3) is kept in
        :attr:`renewal_retry_after`, clamped to [1 minute, 1 day] as §4.3.2 suggests.
        """
        base = self.directory.get("renewalInfo")
        if not isinstance(base, str):
            return None
        answer = self._request(
            "GET", f"{base.rstrip('/')}/{ari.cert_id(cert)}", headers={"Accept": "application/json"}
        )
        if answer.status != 200:
            raise self._problem(answer)
        wait = _retry_after(answer.headers.get("Retry-After"))
        self.renewal_retry_after = None if wait is None else min(max(wait, 60.0), 86400.0)
        return ari.RenewalWindow.from_json(answer.json())

    # -- RFC 8555 §7.6 Certificate Revocation ----------------------------------------

    # "Revocation requests are different from other ACME requests in that they can be
    #  signed with either an account key pair or the key pair in the certificate."
    #  Payload: certificate (base64url DER) and reason (an RFC 5280 §5.3.1 reasonCode).
    #  "If the revocation succeeds, the server responds with status code 200 (OK)."
    def revoke(
        self, cert: x509.Certificate, *, reason: int = 0, key: jws.Key | None = None
    ) -> None:
        """Revoke ``cert``: signed by the account (default), or by the certificate's own
        ``key`` (a JWS with ``jwk``: works without the account, e.g. after a key leak)."""
        der = cert.public_bytes(serialization.Encoding.DER)
        payload = {"certificate": jws.b64url(der), "reason": int(reason)}
        url = self.directory.get("revokeCert")
        if not isinstance(url, str):
            raise UsageError(
                "This ACME server's directory has no revokeCert URL.",
                "Revocation needs the CA's own way (RFC 8555 §7.6 makes it optional).",
            )
        if key is None:
            self.post(url, payload)
        else:
            ensure_key_matches(cert, key)
            self.post(url, payload, key=key, use_jwk=True)


# ------------------------------------------------------------------------------ helpers


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    return max((when - _dt.datetime.now(_dt.UTC)).total_seconds(), 0.0)


def _why_invalid(url: str, doc: Any, status: int) -> AcmeProblem:
    """An AcmeProblem for an authorization or order that became invalid: the server's
    own reason (a challenge's or the order's "error", §7.1.3/§7.1.4) when it gave one."""
    doc = doc if isinstance(doc, dict) else {}
    errors = [c.get("error") for c in doc.get("challenges") or [] if isinstance(c, dict)]
    errors.append(doc.get("error"))
    for error in errors:
        if isinstance(error, dict) and error.get("type"):
            code = error.get("status")
            return AcmeProblem.from_document(error, code if isinstance(code, int) else 403)
    name = (doc.get("identifier") or {}).get("value")
    what = f"the authorization for {name}" if name else url
    return AcmeProblem(
        "about:blank", f"{what} is {doc.get('status')!r}, and the server gave no reason", status
    )


def _connection_problem(
    exc: requests.RequestException, url: str, timeout: float, ca_bundle: Path | None
) -> ConnectionProblem:
    """One sentence for what went wrong before any ACME answer arrived."""
    parts = urllib.parse.urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 443}"
    text = _causes(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        if "Hostname mismatch" in text or "IP address mismatch" in text:
            return ConnectionProblem(
                f"The ACME server at {where} sent a certificate that is not for the name "
                f"{parts.hostname!r} ({_verify_reason(text)}).",
                "Use the host in the directory URL the server prints: the one its certificate names.",
            )
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            trusted = f"the CA in {ca_bundle}" if ca_bundle else "the system's trusted CAs"
            return ConnectionProblem(
                f"The ACME server at {where} sent a certificate that {trusted} did not "
                f"verify ({_verify_reason(text)}).",
                "Pass ca_bundle= the CA that issued the ACME server's HTTPS certificate "
                "(the lab's JSON calls it ca_bundle); never turn verification off.",
            )
        return ConnectionProblem(
            f"{where} did not answer in TLS ({_ssl_reason(text)}): it is not an HTTPS server.",
            "Check the port: the ACME directory is https://, not the HTTP-01 port or another service.",
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return ConnectionProblem(
            f"The ACME server at {where} did not answer within {timeout:g} s.",
            "Check that the server is running and not stuck; raise timeout= for a slow one.",
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        if (
            "NameResolutionError" in text
            or "Name or service not known" in text
            or "getaddrinfo" in text
        ):
            return ConnectionProblem(
                f"The name {parts.hostname!r} could not be resolved.",
                "Use the directory URL the server prints (127.0.0.1 or a lab name).",
            )
        if "Connection refused" in text or "ConnectionRefusedError" in text:
            return ConnectionProblem(
                f"Nothing listens at {where}: the connection was refused.",
                "Start the ACME server (the lab's, or Pebble) and use the port it prints.",
            )
        if "RemoteDisconnected" in text or "Connection aborted" in text or "reset" in text.lower():
            return ConnectionProblem(
                f"{where} closed the connection without an HTTP answer.",
                "Check the port: is it the ACME server's HTTPS port?",
            )
    return ConnectionProblem(
        f"The request to {url} failed before any answer: {type(exc).__name__}.",
        "Check the URL and that the ACME server is running.",
    )


def _causes(exc: BaseException) -> str:
    """Every message in the exception's chain (requests wraps urllib3 wraps OSError)."""
    texts: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo and len(texts) < 20:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        texts.append(f"{type(item).__name__}: {item}")
        linked = [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]
        todo.extend(x for x in linked if isinstance(x, BaseException))
    return " | ".join(texts)


def _ssl_reason(text: str) -> str:
    for reason in (
        "WRONG_VERSION_NUMBER",
        "RECORD_LAYER_FAILURE",
        "UNEXPECTED_EOF_WHILE_READING",
        "PACKET_LENGTH_TOO_LONG",
        "UNKNOWN_PROTOCOL",
        "EOF occurred",
    ):
        if reason in text:
            return reason
    return "no TLS handshake"


def _verify_reason(text: str) -> str:
    found = re.search(r"certificate verify failed: ([^()\]|]+)", text)
    return found.group(1).strip().rstrip(".") if found else "certificate verify failed"
