"""helpers.acme.server / ca: the lab's ACME CA over real HTTPS on loopback (notebook 10).

A minimal client (requests + helpers.acme.jws) drives the whole RFC 8555 flow, ES256 and
RS256 accounts, and provokes each problem type for real. The issuer is a throw-away
root + intermediate made with helpers.pki in a temporary directory.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from helpers import pki
from helpers.acme import ari, jws
from helpers.acme.ca import MAX_BODY, PROFILES
from helpers.acme.server import AcmeServer
from tests.polling import wait_for

UTC = dt.UTC
DOMAIN = "lab.localhost"


# --------------------------------------------------------------------------- fixtures
class Clock:
    """A clock the tests can move (AcmeServer(clock=...))."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(UTC) + self.offset


class Responder:
    """A tiny HTTP-01 responder (plain HTTP on loopback) for the tests."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.hosts: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hosts.append(self.headers.get("Host", ""))
                token = self.path.rsplit("/", 1)[-1]
                body = outer.tokens.get(token)
                data = (body or "not found").encode()
                if body is not None and body.startswith("REDIRECT "):
                    self.send_response(302)
                    self.send_header("Location", body.split(" ", 1)[1])
                else:
                    self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def pkidir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("acme-pki")
    root = pki.CA("ACME Test Root")
    issuer = root.create_intermediate("ACME Test Issuing CA")
    (tmp / "root.pem").write_bytes(root.cert_pem)
    (tmp / "issuer.pem").write_bytes(issuer.cert_pem)
    return {"dir": tmp, "root": root, "issuer": issuer}


@pytest.fixture(scope="module")
def responder() -> Iterator[Responder]:
    r = Responder()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def server(pkidir, responder, clock) -> Iterator[AcmeServer]:
    issuer = pkidir["issuer"]
    with AcmeServer(
        issuer,
        issuer.chain,
        http01_port=responder.port,
        resolve=lambda name: "127.0.0.1",
        clock=clock,
    ) as acme:
        yield acme


# --------------------------------------------------------------------------- a minimal client
class Client:
    """Just enough RFC 8555 client for the tests: every request signed with helpers.acme.jws."""

    def __init__(self, server: AcmeServer, root: Path, key: jws.Key | None = None) -> None:
        self.http = requests.Session()
        # Per request: a session's verify loses to REQUESTS_CA_BUNDLE in the environment.
        self.verify = str(root)
        self.dir = self.http.get(server.directory, verify=self.verify, timeout=10).json()
        self.key = key or ec.generate_private_key(ec.SECP256R1())
        self.kid: str | None = None
        self.nonce: str | None = None

    def fresh_nonce(self) -> str:
        return self.http.head(self.dir["newNonce"], verify=self.verify, timeout=10).headers[
            "Replay-Nonce"
        ]

    def signed(
        self, url: str, payload: Any, *, key: jws.Key | None = None, jwk: bool = False
    ) -> dict:
        nonce, self.nonce = self.nonce or self.fresh_nonce(), None
        return jws.sign(
            key or self.key, payload, url=url, nonce=nonce, kid=None if jwk else self.kid
        )

    def send(
        self, url: str, body: dict | bytes, content_type: str = "application/jose+json"
    ) -> requests.Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        r = self.http.post(
            url, data=data, headers={"Content-Type": content_type}, verify=self.verify, timeout=10
        )
        assert "Replay-Nonce" in r.headers, "RFC 8555 §6.5: every answer carries a fresh nonce"
        self.nonce = r.headers["Replay-Nonce"]
        return r

    def post(self, url: str, payload: Any, **kw: Any) -> requests.Response:
        return self.send(url, self.signed(url, payload, **kw))

    def register(self) -> requests.Response:
        r = self.post(self.dir["newAccount"], {"termsOfServiceAgreed": True}, jwk=True)
        self.kid = r.headers["Location"]
        return r

    def order(self, *names: str, **extra: Any) -> requests.Response:
        idents = [{"type": "dns", "value": n} for n in names]
        return self.post(self.dir["newOrder"], {"identifiers": idents, **extra})

    def authorize(
        self, order: dict, responder: Responder | None, *, serve: bool = True
    ) -> list[dict]:
        """Answer every http-01 challenge of ``order``; wait until each authz settles."""
        results = []
        for url in order["authorizations"]:
            authz = self.post(url, None).json()
            chall = next(c for c in authz["challenges"] if c["type"] == "http-01")
            if serve and responder is not None:
                responder.tokens[chall["token"]] = (
                    jws.key_authorization(chall["token"], self.key) + "\n"
                )
            r = self.post(chall["url"], {})
            assert r.status_code == 200 and r.json()["status"] in ("processing", "valid", "invalid")
            assert f'<{url}>;rel="up"' in r.headers["Link"]
            state: dict = {}

            def settled(u: str = url, state: dict = state) -> bool:
                state.update(self.post(u, None).json())
                return state["status"] != "pending"

            assert wait_for(settled, 10)
            results.append(state)
        return results

    def finalize(
        self, order_url: str, order: dict, key: Any, names: list[str]
    ) -> requests.Response:
        csr = pki.make_csr(key, *names)
        der = csr.public_bytes(serialization.Encoding.DER)
        return self.post(order["finalize"], {"csr": jws.b64url(der)})

    def issue(self, responder: Responder, *names: str, profile: str | None = None, **extra: Any):
        """The whole flow; returns (order_url, order, chain PEM, certificate key)."""
        if profile:
            extra["profile"] = profile
        r = self.order(*names, **extra)
        assert r.status_code == 201, r.text
        order_url, order = r.headers["Location"], r.json()
        states = self.authorize(order, responder)
        assert [a["status"] for a in states] == ["valid"] * len(names), states
        assert self.post(order_url, None).json()["status"] == "ready"
        key = ec.generate_private_key(ec.SECP256R1())
        r = self.finalize(order_url, order, key, list(names))
        assert r.status_code == 200, r.text
        order = r.json()
        assert order["status"] == "valid"
        chain = self.post(order["certificate"], None)
        assert chain.headers["Content-Type"] == "application/pem-certificate-chain"
        return order_url, order, chain.content, key


def problem(r: requests.Response, kind: str, status: int | None = None) -> dict:
    """Assert ``r`` is an RFC 8555 §6.7 problem document of ``kind``; return it."""
    assert r.headers["Content-Type"] == "application/problem+json", r.text
    doc = r.json()
    assert doc["type"] == "urn:ietf:params:acme:error:" + kind, doc
    assert doc["status"] == r.status_code
    if status is not None:
        assert r.status_code == status
    assert doc["detail"]
    return doc


@pytest.fixture
def client(server, pkidir) -> Client:
    c = Client(server, pkidir["dir"] / "root.pem")
    assert c.register().status_code == 201
    return c


# --------------------------------------------------------------------------- directory, nonces
def test_directory_and_new_nonce(server, pkidir) -> None:
    root = str(pkidir["dir"] / "root.pem")  # its HTTPS certificate chains to the root
    http = requests.Session()
    r = http.get(server.directory, verify=root, timeout=10)
    directory = r.json()
    for member in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange", "renewalInfo"):
        assert directory[member].startswith(server.url.rstrip("/"))
    assert set(directory["meta"]["profiles"]) == {"classic", "shortlived"}
    assert "160 hours" in directory["meta"]["profiles"]["shortlived"]
    head = http.head(directory["newNonce"], verify=root, timeout=10)
    get = http.get(directory["newNonce"], verify=root, timeout=10)
    assert (head.status_code, get.status_code) == (200, 204)  # RFC 8555 §7.2
    for answer in (head, get):
        assert answer.headers["Cache-Control"] == "no-store"
        assert len(answer.headers["Replay-Nonce"]) >= 22
    assert head.headers["Replay-Nonce"] != get.headers["Replay-Nonce"]
    assert problem(http.get(server.url + "nothing-here", verify=root, timeout=10), "malformed", 404)
    assert "acme.lab.localhost" in repr(server) or server.directory in repr(server)
    assert "HTTP-01 port" in server._repr_html_()


# --------------------------------------------------------------------------- the whole flow
@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_full_flow_to_a_certificate_openssl_and_python_accept(
    server, pkidir, responder, alg
) -> None:
    key = (
        ec.generate_private_key(ec.SECP256R1())
        if alg == "ES256"
        else rsa.generate_private_key(65537, 2048)
    )
    c = Client(server, pkidir["dir"] / "root.pem", key)
    r = c.register()
    assert r.status_code == 201 and r.json()["status"] == "valid"
    # The same key again: 200 and the same account (RFC 8555 §7.3.1).
    again = c.post(c.dir["newAccount"], {"termsOfServiceAgreed": True}, jwk=True)
    assert again.status_code == 200 and again.headers["Location"] == c.kid

    names = [f"www-{alg.lower()}.{DOMAIN}", f"api-{alg.lower()}.{DOMAIN}"]
    before = len(responder.hosts)
    _, order, chain_pem, cert_key = c.issue(responder, *names)
    assert f"{names[0]}:{server.http01_port}" in responder.hosts[before:]  # Host: NAME

    certs = x509.load_pem_x509_certificates(chain_pem)
    leaf = certs[0]
    assert [x.subject for x in certs[1:]] == [pkidir["issuer"].cert.subject]  # no root sent
    assert (
        leaf.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.DNSName)
        == names
    )
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    issuer_ski = (
        pkidir["issuer"].cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    )
    assert aki.key_identifier == issuer_ski.digest
    dp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert dp[0].full_name[0].value == server.crl_url
    # Plain HTTP (RFC 5280 §4.2.1.13; the Baseline Requirements allow only http:// there).
    assert server.crl_url.startswith("http://127.0.0.1:")
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert lifetime == PROFILES["classic"][0] and order["profile"] == "classic"
    assert leaf in server.issued

    # openssl: the chain verifies (root as trust anchor, the issuer as untrusted intermediate).
    tmp = pkidir["dir"]
    (tmp / f"leaf-{alg}.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    out = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            tmp / "root.pem",
            "-untrusted",
            tmp / "issuer.pem",
            tmp / f"leaf-{alg}.pem",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0 and ": OK" in out.stdout, out.stdout + out.stderr

    # Python's ssl accepts it when a server sends the downloaded chain.
    (tmp / f"chain-{alg}.pem").write_bytes(chain_pem)
    (tmp / f"key-{alg}.pem").write_bytes(pki.private_key_pem(cert_key))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp / f"chain-{alg}.pem", tmp / f"key-{alg}.pem")
    client_ctx = ssl.create_default_context(cafile=str(tmp / "root.pem"))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"hello")

        thread = threading.Thread(target=serve)
        thread.start()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with client_ctx.wrap_socket(raw, server_hostname=names[1]) as tls:
                assert tls.recv(5) == b"hello"
                assert tls.getpeercert()["subjectAltName"] == tuple(("DNS", n) for n in names)
        thread.join(10)


def test_only_return_existing_and_unknown_account(server, pkidir) -> None:
    c = Client(server, pkidir["dir"] / "root.pem")
    r = c.post(c.dir["newAccount"], {"onlyReturnExisting": True}, jwk=True)
    problem(r, "accountDoesNotExist", 400)
    c.kid = server.url + "acct/no-such-account"
    problem(c.order(f"x.{DOMAIN}"), "accountDoesNotExist")


def test_shortlived_profile_and_unknown_profile(server, client, responder) -> None:
    _, order, chain_pem, _ = client.issue(responder, f"short.{DOMAIN}", profile="shortlived")
    leaf = x509.load_pem_x509_certificates(chain_pem)[0]
    assert order["profile"] == "shortlived"
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(hours=160)
    problem(client.order(f"x.{DOMAIN}", profile="longlived"), "invalidProfile", 400)


def test_the_clock_moves_issuance(server, client, responder, clock) -> None:
    clock.offset = dt.timedelta(days=30)
    try:
        _, _, chain_pem, _ = client.issue(responder, f"later.{DOMAIN}")
    finally:
        clock.offset = dt.timedelta(0)
    leaf = x509.load_pem_x509_certificates(chain_pem)[0]
    expected = dt.datetime.now(UTC) + dt.timedelta(days=30) - dt.timedelta(hours=1)
    assert abs(leaf.not_valid_before_utc - expected) < dt.timedelta(minutes=5)


# --------------------------------------------------------------------------- JWS and nonces
def test_replayed_nonce_is_bad_nonce(server, client) -> None:
    body = client.signed(
        client.dir["newOrder"], {"identifiers": [{"type": "dns", "value": f"r.{DOMAIN}"}]}
    )
    assert client.send(client.dir["newOrder"], body).status_code == 201
    doc = problem(client.send(client.dir["newOrder"], body), "badNonce", 400)
    assert "already used" in doc["detail"]
    made_up = jws.sign(
        client.key, {}, url=client.dir["newOrder"], nonce="bm90LWlzc3VlZA", kid=client.kid
    )
    problem(client.send(client.dir["newOrder"], made_up), "badNonce")


def test_tampered_jws_and_wrong_url(server, client) -> None:
    body = client.signed(
        client.dir["newOrder"], {"identifiers": [{"type": "dns", "value": f"t.{DOMAIN}"}]}
    )
    body["payload"] = jws.b64url(
        json.dumps({"identifiers": [{"type": "dns", "value": f"evil.{DOMAIN}"}]}).encode()
    )
    assert (
        "does not verify"
        in problem(client.send(client.dir["newOrder"], body), "malformed", 400)["detail"]
    )
    # Signed for newOrder, sent to revokeCert: RFC 8555 §6.4 says unauthorized.
    body = client.signed(client.dir["newOrder"], {"identifiers": []})
    problem(client.send(client.dir["revokeCert"], body), "unauthorized", 403)
    # alg none, and a body that is no JWS at all.
    header = jws.b64url(
        json.dumps(
            {
                "alg": "none",
                "nonce": client.fresh_nonce(),
                "url": client.dir["newOrder"],
                "kid": client.kid,
            }
        ).encode()
    )
    problem(
        client.send(client.dir["newOrder"], {"protected": header, "payload": "", "signature": ""}),
        "badSignatureAlgorithm",
    )
    problem(client.send(client.dir["newOrder"], b"not json"), "malformed")
    # RFC 8555 §6.2: application/jose+json or 415.
    r = client.send(
        client.dir["newOrder"], client.signed(client.dir["newOrder"], {}), "application/json"
    )
    problem(r, "malformed", 415)


def test_resources_of_another_account_are_unauthorized(server, client, pkidir) -> None:
    r = client.order(f"mine.{DOMAIN}")
    other = Client(server, pkidir["dir"] / "root.pem")
    other.register()
    problem(other.post(r.headers["Location"], None), "unauthorized", 403)
    problem(other.post(r.json()["authorizations"][0], None), "unauthorized", 403)


def test_request_over_the_size_cap(server, client) -> None:
    r = client.send(client.dir["newOrder"], b"x" * (MAX_BODY + 1))
    doc = problem(r, "malformed", 413)
    assert str(MAX_BODY) in doc["detail"]


# --------------------------------------------------------------------------- identifiers
def test_rejected_identifiers(server, client) -> None:
    doc = problem(client.order("www.example.com"), "rejectedIdentifier", 400)
    assert "lab.localhost" in doc["detail"]
    doc = problem(client.order(f"*.{DOMAIN}"), "rejectedIdentifier")
    assert "DNS-01" in doc["detail"]
    doc = problem(client.order("a.example.com", f"*.b.{DOMAIN}"), "rejectedIdentifier")
    assert len(doc["subproblems"]) == 2  # RFC 8555 §6.7.1
    r = client.post(client.dir["newOrder"], {"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})
    problem(r, "unsupportedIdentifier")
    too_many = [f"n{i}.{DOMAIN}" for i in range(101)]
    assert "100" in problem(client.order(*too_many), "rejectedIdentifier")["detail"]
    problem(client.order(f"bad_name.{DOMAIN}"), "rejectedIdentifier")
    assert server.issued and all(
        n.endswith("." + DOMAIN)
        for cert in server.issued
        for n in cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.DNSName)
    )


# --------------------------------------------------------------------------- finalize
def _ready_order(client: Client, responder: Responder, *names: str) -> tuple[str, dict]:
    r = client.order(*names)
    order_url, order = r.headers["Location"], r.json()
    client.authorize(order, responder)
    return order_url, order


def test_finalize_before_ready_is_order_not_ready(server, client) -> None:
    r = client.order(f"early.{DOMAIN}")
    key = ec.generate_private_key(ec.SECP256R1())
    doc = problem(
        client.finalize(r.headers["Location"], r.json(), key, [f"early.{DOMAIN}"]),
        "orderNotReady",
        403,
    )
    assert "pending" in doc["detail"]


def test_bad_csrs(server, client, responder) -> None:
    names = [f"csr.{DOMAIN}"]
    order_url, order = _ready_order(client, responder, *names)
    key = ec.generate_private_key(ec.SECP256R1())
    doc = problem(
        client.finalize(order_url, order, key, [*names, f"extra.{DOMAIN}"]), "badCSR", 400
    )
    assert f"extra.{DOMAIN}" in doc["detail"]
    doc = problem(client.finalize(order_url, order, client.key, names), "badCSR")
    assert "account key" in doc["detail"] and "11.1" in doc["detail"]
    weak = rsa.generate_private_key(65537, 1024)
    assert "1024" in problem(client.finalize(order_url, order, weak, names), "badCSR")["detail"]
    p521 = ec.generate_private_key(ec.SECP521R1())
    assert "P-256" in problem(client.finalize(order_url, order, p521, names), "badCSR")["detail"]
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Big Bank")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(names[0])]), critical=False)
    )
    csr = builder.sign(key, hashes.SHA256())
    r = client.post(
        order["finalize"], {"csr": jws.b64url(csr.public_bytes(serialization.Encoding.DER))}
    )
    problem(r, "badCSR")
    r = client.post(order["finalize"], {"csr": "not base64!"})
    problem(r, "badCSR")
    # After all that, the order is still ready and a good CSR works.
    assert client.finalize(order_url, order, key, names).json()["status"] == "valid"


# --------------------------------------------------------------------------- HTTP-01 failures
def test_http01_wrong_body_is_invalid_with_a_readable_error(server, client, responder) -> None:
    r = client.order(f"wrong.{DOMAIN}")
    order_url, order = r.headers["Location"], r.json()
    authz = client.post(order["authorizations"][0], None).json()
    token = authz["challenges"][0]["token"]
    responder.tokens[token] = token + ".not-my-thumbprint"
    client.post(authz["challenges"][0]["url"], {})
    state = client.authorize(order, responder, serve=False)[0]
    assert state["status"] == "invalid"
    error = state["challenges"][0]["error"]
    assert error["type"] == "urn:ietf:params:acme:error:incorrectResponse"
    assert "key authorization" in error["detail"]
    doc = client.post(order_url, None).json()
    assert doc["status"] == "invalid" and doc["error"]["type"].endswith("incorrectResponse")


def test_http01_nothing_listening(pkidir) -> None:
    with socket.socket() as s:  # a port with nothing behind it
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    issuer = pkidir["issuer"]
    with AcmeServer(issuer, issuer.chain, http01_port=dead) as acme:
        c = Client(acme, pkidir["dir"] / "root.pem")
        c.register()
        order = c.order(f"nobody.{DOMAIN}").json()
        state = c.authorize(order, None, serve=False)[0]
    assert state["status"] == "invalid"
    error = state["challenges"][0]["error"]
    assert error["type"] == "urn:ietf:params:acme:error:connection"
    assert str(dead) in error["detail"] and "responder" in error["detail"]


# --------------------------------------------------------------------------- revocation and the CRL
def _revoke(c: Client, leaf: x509.Certificate, reason: int = 0, **kw: Any) -> requests.Response:
    der = leaf.public_bytes(serialization.Encoding.DER)
    return c.post(c.dir["revokeCert"], {"certificate": jws.b64url(der), "reason": reason}, **kw)


def test_revoke_twice_crl_and_ari(server, client, responder, pkidir, pytestconfig) -> None:
    _, _, chain_pem, cert_key = client.issue(responder, f"revoke-me.{DOMAIN}")
    leaf = x509.load_pem_x509_certificates(chain_pem)[0]
    stranger = Client(server, pkidir["dir"] / "root.pem")
    stranger.register()
    problem(_revoke(stranger, leaf), "unauthorized", 403)
    problem(_revoke(client, leaf, reason=2), "badRevocationReason")  # cACompromise is the CA's
    assert _revoke(client, leaf, reason=4).status_code == 200
    problem(_revoke(client, leaf), "alreadyRevoked", 400)

    # The CRL lists it, with the reason, and openssl checks its signature.
    crl = x509.load_pem_x509_crl(server.crl_pem)
    entry = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
    assert entry is not None
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        == x509.ReasonFlags.superseded
    )
    got = requests.get(server.crl_url, timeout=10)  # plain HTTP: the CRL is signed
    assert got.headers["Content-Type"] == "application/pkix-crl"
    assert x509.load_der_x509_crl(got.content).get_revoked_certificate_by_serial_number(
        leaf.serial_number
    )
    assert requests.get(server.crl_url.replace("/crl", "/x"), timeout=10).status_code == 404
    crl_file = pkidir["dir"] / "acme.crl"
    crl_file.write_bytes(got.content)
    out = subprocess.run(
        [
            "openssl",
            "crl",
            "-inform",
            "DER",
            "-in",
            crl_file,
            "-CAfile",
            pkidir["dir"] / "issuer.pem",
            "-noout",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0 and "verify OK" in (out.stdout + out.stderr), out.stdout + out.stderr

    # ARI for a revoked certificate: a window in the past, "renew now".
    r = requests.get(
        f"{client.dir['renewalInfo']}/{ari.cert_id(leaf)}",
        verify=str(pkidir["dir"] / "root.pem"),
        timeout=10,
    )
    window = ari.RenewalWindow.from_json(r.json())
    assert window.end < dt.datetime.now(UTC)


def test_revoke_by_the_certificate_key(server, client, responder, pkidir) -> None:
    _, _, chain_pem, cert_key = client.issue(responder, f"stolen-key.{DOMAIN}")
    leaf = x509.load_pem_x509_certificates(chain_pem)[0]
    finder = Client(server, pkidir["dir"] / "root.pem")  # no account: just the key
    wrong = _revoke(finder, leaf, reason=1, key=ec.generate_private_key(ec.SECP256R1()), jwk=True)
    problem(wrong, "unauthorized", 403)
    assert _revoke(finder, leaf, reason=1, key=cert_key, jwk=True).status_code == 200
    crl = x509.load_pem_x509_crl(server.crl_pem)
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None


# --------------------------------------------------------------------------- ARI (RFC 9773)
def test_cert_id_rfc9773_example() -> None:
    """RFC 9773 §4.1's worked example: AKI keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:
    7B:A0:AE:2C:DE:01:C8:D4 and serial 0x87654321 (DER 00 87 65 43 21) give
    aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE (values from the RFC text, found with the search tool)."""
    key_id = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x87654321)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=UTC))
        .not_valid_after(dt.datetime(2025, 4, 1, tzinfo=UTC))
        .add_extension(x509.AuthorityKeyIdentifier(key_id, None, None), critical=False)
        .sign(key, hashes.SHA256())
    )
    assert ari.cert_id(cert) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    assert ari.parse_cert_id("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE") == (key_id, 0x87654321)


def test_renewal_info_window_and_suggest_renewal(server, client, responder, pkidir) -> None:
    _, _, chain_pem, _ = client.issue(responder, f"ari.{DOMAIN}")
    leaf = x509.load_pem_x509_certificates(chain_pem)[0]
    url = f"{client.dir['renewalInfo']}/{ari.cert_id(leaf)}"
    r = requests.get(url, verify=str(pkidir["dir"] / "root.pem"), timeout=10)
    assert r.status_code == 200 and int(r.headers["Retry-After"]) > 0
    window = ari.RenewalWindow.from_json(r.json())
    nb, na = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    assert abs(window.start - (nb + (na - nb) * 2 / 3)) < dt.timedelta(seconds=1)
    assert abs(window.end - (nb + (na - nb) * 3 / 4)) < dt.timedelta(seconds=1)
    assert window.start <= window.pick() < window.end
    moved = ari.RenewalWindow(
        dt.datetime(2026, 12, 7, tzinfo=UTC), dt.datetime(2026, 12, 8, tzinfo=UTC)
    )
    server.suggest_renewal(leaf, moved)
    again = ari.RenewalWindow.from_json(
        requests.get(url, verify=str(pkidir["dir"] / "root.pem"), timeout=10).json()
    )
    assert (again.start, again.end) == (moved.start, moved.end)
    bad = requests.get(
        f"{client.dir['renewalInfo']}/nodot", verify=str(pkidir["dir"] / "root.pem"), timeout=10
    )
    problem(bad, "malformed", 400)
    unknown = requests.get(
        f"{client.dir['renewalInfo']}/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
        verify=str(pkidir["dir"] / "root.pem"),
        timeout=10,
    )
    problem(unknown, "malformed", 404)


def test_replaces(server, client, responder, pkidir) -> None:
    name = f"renew.{DOMAIN}"
    _, _, chain_pem, _ = client.issue(responder, name)
    old = x509.load_pem_x509_certificates(chain_pem)[0]
    old_id = ari.cert_id(old)
    other = Client(server, pkidir["dir"] / "root.pem")
    other.register()
    problem(other.order(name, replaces=old_id), "unauthorized", 403)
    problem(client.order(name, replaces="not-a-cert-id"), "malformed", 400)
    problem(client.order(f"unrelated.{DOMAIN}", replaces=old_id), "malformed", 400)
    _, order, _, _ = client.issue(responder, name, replaces=old_id)
    assert order["replaces"] == old_id
    doc = problem(client.order(name, replaces=old_id), "alreadyReplaced", 409)
    assert "already replaced" in doc["detail"]


def test_key_change_says_it_is_not_offered(server, client) -> None:
    r = client.post(client.dir["keyChange"], {})
    assert "keyChange" in problem(r, "malformed", 501)["detail"]


def test_an_order_left_too_long_expires(server, client, responder, clock) -> None:
    order_url, order = _ready_order(client, responder, f"slow.{DOMAIN}")
    clock.offset = dt.timedelta(days=8)  # orders live 7 days
    try:
        doc = client.post(order_url, None).json()
        assert doc["status"] == "invalid" and "expired" in doc["error"]["detail"]
        key = ec.generate_private_key(ec.SECP256R1())
        problem(client.finalize(order_url, order, key, [f"slow.{DOMAIN}"]), "orderNotReady", 403)
    finally:
        clock.offset = dt.timedelta(0)


def test_links_index_and_up(server, client) -> None:
    order = client.order(f"links.{DOMAIN}").json()
    authz = client.post(order["authorizations"][0], None)
    assert f'<{server.directory}>;rel="index"' in authz.headers["Link"]  # RFC 8555 §7.1
    chall = client.post(authz.json()["challenges"][0]["url"], None)  # POST-as-GET: just read
    assert chall.json()["status"] == "pending"
    assert f'<{order["authorizations"][0]}>;rel="up"' in chall.headers["Link"]
    assert f'<{server.directory}>;rel="index"' in chall.headers["Link"]


@pytest.mark.parametrize(
    ("served", "kind", "words"),
    [
        ("REDIRECT http://elsewhere.lab.localhost/", "unauthorized", "redirect"),
        ("x" * 9000, "unauthorized", "more than 8192 bytes"),
        (None, "unauthorized", "404"),
    ],
)
def test_http01_redirect_oversize_and_missing(
    server, client, responder, served, kind, words
) -> None:
    order = client.order(f"odd-{kind}-{len(served or '')}.{DOMAIN}").json()
    token = client.post(order["authorizations"][0], None).json()["challenges"][0]["token"]
    if served is not None:
        responder.tokens[token] = served
    state = client.authorize(order, responder, serve=False)[0]
    error = state["challenges"][0]["error"]
    assert state["status"] == "invalid" and error["type"].endswith(kind)
    assert words in error["detail"]


def test_http01_silent_responder_times_out(pkidir) -> None:
    """A responder that accepts and never answers holds a validation thread only until
    the deadline (lowered here from 5 s so the test stays fast)."""
    silent = socket.create_server(("127.0.0.1", 0))  # listens, never accepts or answers
    issuer = pkidir["issuer"]
    acme = AcmeServer(issuer, issuer.chain, http01_port=silent.getsockname()[1])
    acme.http01_timeout = 0.5
    with silent, acme:
        c = Client(acme, pkidir["dir"] / "root.pem")
        c.register()
        order = c.order(f"silent.{DOMAIN}").json()
        state = c.authorize(order, None, serve=False)[0]
    error = state["challenges"][0]["error"]
    assert error["type"].endswith("connection") and "longer than 0.5 s" in error["detail"]
