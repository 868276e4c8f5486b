"""The course's ACME client (helpers/acme/client.py) and HTTP-01 responder (http01.py).

Real HTTPS on loopback throughout: the lab's ACME server (:mod:`helpers.acme.server`)
with an issuer made by :mod:`helpers.pki` in a temporary directory; a small scripted
ACME server for what a well-behaved server never does on demand (badNonce after
badNonce, "pending" forever); and the failures before any ACME answer (refused,
not TLS, silent, untrusted, unknown name), each as one sentence.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests
from cryptography import x509

from helpers import pki
from helpers.acme import ari, jws
from helpers.acme.client import AcmeClient, Issued
from helpers.acme.http01 import CHALLENGE_PREFIX, Http01Responder
from helpers.acme.problems import AcmeProblem
from helpers.acme.server import AcmeServer
from helpers.errors import ConnectionProblem, UsageError
from helpers.servers import HTTPService, LoginServer, QuietHandler
from tests.polling import wait_for

NO_PROXY = {"http": None, "https": None}
TOKEN = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"  # RFC 8555 §8.3's example token


@pytest.fixture(scope="module")
def tls_ca() -> pki.CA:
    """The CA of the test servers' HTTPS certificates."""
    return pki.CA("ACME client tests HTTPS CA")


@pytest.fixture
def bundle(tls_ca: pki.CA, tmp_path: Path) -> Path:
    path = tmp_path / "https-ca.pem"
    path.write_bytes(tls_ca.cert_pem)
    return path


def _server_context(ca: pki.CA, *names: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ca.issue(*(names or ("127.0.0.1",))).configure_server(ctx)
    return ctx


# ------------------------------------------------------------------------------ a scripted server


class ScriptedAcme(HTTPService):
    """Just enough ACME to test the client's nonce and polling rules, over HTTPS.

    Every JWS is verified (:func:`helpers.acme.jws.verify`) and its nonce recorded. The
    first ``reject`` POSTs get badNonce (400) with a fresh Replay-Nonce, as RFC 8555
    §6.5 says; the authorization at ``/authz`` stays "pending" with ``Retry-After``.
    """

    def __init__(self, tls: ssl.SSLContext, *, reject: int = 0, retry_after: str = "1") -> None:
        super().__init__(tls=tls)
        self.reject = reject
        self.retry_after = retry_after
        self.counter = 0
        self.issued: list[str] = []
        #: (nonce the request was signed with, nonce the previous error answer carried)
        self.posts: list[tuple[str, str | None]] = []
        self.last_error_nonce: str | None = None
        self.polls: list[float] = []
        self.account_key: jws.PublicKey | None = None
        self.lock = threading.Lock()

    def fresh(self) -> str:
        with self.lock:
            self.counter += 1
            nonce = jws.b64url(f"nonce-{self.counter:04d}".encode())
            self.issued.append(nonce)
            return nonce

    def handler(self) -> type[BaseHTTPRequestHandler]:
        acme = self

        class Handler(QuietHandler):
            def _json(self, status: int, doc: object, ctype: str = "application/json") -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if self.command == "POST":  # RFC 8555 §6.5: every answer to a POST
                    self.send_header("Replay-Nonce", acme.fresh())
                if status == 201:
                    self.send_header("Location", acme.url + "acct/1")
                if self.path == "/authz":
                    self.send_header("Retry-After", acme.retry_after)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                base = acme.url
                self._json(
                    200,
                    {
                        "newNonce": base + "nonce",
                        "newAccount": base + "acct",
                        "newOrder": base + "order",
                    },
                )

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Replay-Nonce", acme.fresh())
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                body = self.read_body(64 * 1024)
                if body is None:
                    return
                verified = jws.verify(body, lambda kid: acme.account_key)
                if verified.jwk is not None:  # newAccount: remember the account's key
                    acme.account_key = verified.key
                nonce = str(verified.protected["nonce"])
                acme.posts.append((nonce, acme.last_error_nonce))
                if nonce not in acme.issued or acme.reject > 0:
                    acme.reject -= 1
                    self._json(
                        400,
                        {
                            "type": "urn:ietf:params:acme:error:badNonce",
                            "detail": "nonce refused (scripted)",
                            "status": 400,
                        },
                        "application/problem+json",
                    )
                    acme.last_error_nonce = acme.issued[-1]
                    return
                acme.issued.remove(nonce)  # each nonce works once
                if self.path == "/authz":
                    acme.polls.append(time.monotonic())
                    self._json(200, {"status": "pending"})
                else:
                    self._json(201, {"status": "valid"})

        return Handler


@pytest.fixture
def scripted(tls_ca: pki.CA) -> Iterator[ScriptedAcme]:
    with ScriptedAcme(_server_context(tls_ca)) as server:
        yield server


def test_bad_nonce_is_retried_with_the_nonce_of_the_error(
    scripted: ScriptedAcme, bundle: Path
) -> None:
    """RFC 8555 §6.5: "when retrying in response to a "badNonce" error, the client MUST
    use the nonce provided in the error response"."""
    scripted.reject = 2
    client = AcmeClient(scripted.url + "dir", ca_bundle=bundle)
    assert client.register() == scripted.url + "acct/1"
    assert client.bad_nonce_count == 2
    assert len(scripted.posts) == 3
    for used, offered in scripted.posts[1:]:
        assert used == offered  # each retry signed with the error's fresh nonce
    # Exactly one HEAD newNonce: every later nonce came from an answer.
    assert sum(line.startswith("HEAD ") for line in client.log) == 1


def test_bad_nonce_retries_are_bounded(scripted: ScriptedAcme, bundle: Path) -> None:
    scripted.reject = 100
    client = AcmeClient(scripted.url + "dir", ca_bundle=bundle)
    with pytest.raises(AcmeProblem) as refused:
        client.register()
    assert (refused.value.type, refused.value.status) == ("badNonce", 400)
    assert len(scripted.posts) == 1 + AcmeClient.bad_nonce_retries
    assert "fresh nonce" in str(refused.value)  # the hint says what to try


def test_poll_obeys_retry_after_and_its_deadline(scripted: ScriptedAcme, bundle: Path) -> None:
    """§7.5.1: the server "MAY include a Retry-After header field to suggest a polling
    interval"; the client waits that long, and gives up at its deadline in one sentence."""
    client = AcmeClient(scripted.url + "dir", ca_bundle=bundle)
    client.register()
    started = time.monotonic()
    with pytest.raises(ConnectionProblem, match="still 'pending' after 2.5 s"):
        client.poll(scripted.url + "authz", deadline=2.5)
    took = time.monotonic() - started
    # Polls at 0, 1 and 2 s (Retry-After: 1), and a last one at the deadline (2.5 s).
    gaps = [b - a for a, b in zip(scripted.polls, scripted.polls[1:], strict=False)]
    assert len(scripted.polls) == 4, gaps
    assert all(0.9 <= gap <= 1.6 for gap in gaps[:2]) and 0.3 <= gaps[2] <= 1.0, gaps
    assert 2.4 <= took <= 4.5


# ------------------------------------------------------------------------------ no ACME answer


def test_refused_port_is_one_sentence() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionProblem) as failed:
        _ = AcmeClient(f"https://127.0.0.1:{port}/dir", timeout=2).directory
    assert str(failed.value).startswith(
        f"Nothing listens at 127.0.0.1:{port}: the connection was refused."
    )
    assert failed.value.__cause__ is None and failed.value.__suppress_context__


def test_a_plain_http_server_is_not_tls() -> None:
    with Http01Responder() as plain:
        port = plain.port
        with pytest.raises(ConnectionProblem) as failed:
            _ = AcmeClient(f"https://127.0.0.1:{port}/dir", timeout=3).directory
    assert f"127.0.0.1:{port} did not answer in TLS" in str(failed.value)
    assert "not an HTTPS server" in str(failed.value)


def test_a_silent_server_times_out() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nobody speaks
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ConnectionProblem) as failed:
            _ = AcmeClient(f"https://127.0.0.1:{port}/dir", timeout=0.5).directory
    assert time.monotonic() - started < 3
    assert str(failed.value).startswith(
        f"The ACME server at 127.0.0.1:{port} did not answer within 0.5 s."
    )


def test_an_untrusted_or_misnamed_certificate(tls_ca: pki.CA, bundle: Path) -> None:
    with LoginServer(tls=_server_context(tls_ca, "127.0.0.1")) as site:
        with pytest.raises(ConnectionProblem) as untrusted:  # no ca_bundle: system CAs
            _ = AcmeClient(f"https://127.0.0.1:{site.port}/dir", timeout=3).directory
        with pytest.raises(ConnectionProblem) as misnamed:  # trusted CA, wrong name
            _ = AcmeClient(
                f"https://localhost:{site.port}/dir", ca_bundle=bundle, timeout=3
            ).directory
        with pytest.raises(UsageError, match="is not an ACME directory"):  # HTML, not ACME
            _ = AcmeClient(
                f"https://127.0.0.1:{site.port}/dir", ca_bundle=bundle, timeout=3
            ).directory
    assert "did not verify (unable to get local issuer certificate)" in str(untrusted.value)
    assert "never turn verification off" in str(untrusted.value)
    assert "is not for the name 'localhost'" in str(misnamed.value)


def test_an_unknown_name(no_lab_spy: list[str]) -> None:
    with pytest.raises(ConnectionProblem) as failed:
        _ = AcmeClient("https://acme.invalid/dir", timeout=2).directory
    assert str(failed.value).startswith("The name 'acme.invalid' could not be resolved.")
    assert "acme.invalid" in no_lab_spy


def test_only_https_directories() -> None:
    with pytest.raises(UsageError, match="RFC 8555 §6.1 requires HTTPS"):
        AcmeClient("http://127.0.0.1:1/dir")


# ------------------------------------------------------------------------------ Http01Responder


def _get(responder: Http01Responder, path: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{responder.port}{path}", timeout=5, proxies=NO_PROXY)


def _served(responder: Http01Responder) -> bool:
    try:
        return _get(responder, "/").status_code == 404
    except requests.ConnectionError:  # closed on arrival: still at the cap
        return False


def test_responder_serves_only_added_tokens() -> None:
    key_authz = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
    with Http01Responder() as responder:
        assert responder.address[0] == "127.0.0.1"
        assert _get(responder, CHALLENGE_PREFIX + TOKEN).status_code == 404
        responder.add(TOKEN, key_authz)
        ok = _get(responder, CHALLENGE_PREFIX + TOKEN)
        assert (ok.status_code, ok.text) == (200, key_authz)
        assert ok.headers["Content-Type"] == "application/octet-stream"  # RFC 8555 §8.3 example
        assert responder.wait_until_fetched(TOKEN, 0)
        for path in (
            "/",
            "/.well-known/acme-challenge/",
            CHALLENGE_PREFIX + TOKEN + "/x",
            CHALLENGE_PREFIX + "other",
            "/" + TOKEN,
            CHALLENGE_PREFIX + TOKEN + "?x=1",
        ):
            assert _get(responder, path).status_code == 404, path
        post = requests.post(
            f"http://127.0.0.1:{responder.port}{CHALLENGE_PREFIX}{TOKEN}",
            timeout=5,
            proxies=NO_PROXY,
        )
        assert post.status_code == 501  # only GET
        responder.remove(TOKEN)
        assert _get(responder, CHALLENGE_PREFIX + TOKEN).status_code == 404
        assert not responder.wait_until_fetched(TOKEN, 0)
    assert sum(line.endswith("-> 200") for line in responder.log) == 1


def test_responder_refuses_bad_tokens_and_mismatched_key_authorizations() -> None:
    with Http01Responder() as responder:
        for token in ("", "a/b", "../x", "a b", "pad=", "x" * 129):
            with pytest.raises(UsageError):
                responder.add(token, token + ".abc")
        with pytest.raises(UsageError, match="does not belong to this token"):
            responder.add(TOKEN, "other.9jg46WB3rR_AHD")
        with pytest.raises(UsageError, match="does not belong to this token"):
            responder.add(TOKEN, TOKEN)
        assert responder.tokens == []


def test_responder_caps_tokens_and_connections() -> None:
    with Http01Responder() as responder:
        responder.max_tokens = 3
        for n in range(3):
            responder.add(f"t{n}", f"t{n}.abc")
        with pytest.raises(UsageError, match="already holds 3 tokens"):
            responder.add("t3", "t3.abc")
        responder.add("t0", "t0.abc")  # replacing one is fine

    small = Http01Responder()
    small.max_connections = 2
    small.idle_timeout = 0.5
    with small:
        idle = [socket.create_connection(("127.0.0.1", small.port)) for _ in range(2)]
        try:
            # At the cap, a third connection is closed at once, without a thread.
            assert wait_for(lambda: len(small._server._open) == 2, 5)  # type: ignore[union-attr]
            third = socket.create_connection(("127.0.0.1", small.port))
            third.settimeout(3)
            assert third.recv(1) == b""
            third.close()
            # The idle ones are hung up after idle_timeout; then a client is served again.
            assert wait_for(lambda: _served(small), 5)
        finally:
            for sock in idle:
                sock.close()


def test_responder_stop_hangs_up_and_binds_loopback_only() -> None:
    responder = Http01Responder().start()
    port = responder.port
    stuck = socket.create_connection(("127.0.0.1", port))
    stuck.sendall(b"GET /.well-known/acme-challenge/x HTTP/1.1\r\n")  # never finishes
    started = time.monotonic()
    responder.stop()
    assert time.monotonic() - started < 3
    stuck.settimeout(3)
    try:
        left = stuck.recv(100)  # hung up: end of file ...
    except ConnectionResetError:
        left = b""  # ... or a reset
    stuck.close()
    assert left == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    with pytest.raises(UsageError, match="other machines on the network can reach"):
        Http01Responder("0.0.0.0")


# ------------------------------------------------------------------------------ Issued


def test_issued_writes_its_key_0600_and_shows_itself(tmp_path: Path) -> None:
    ca = pki.CA().create_intermediate()
    leaf = ca.issue(
        "shop.lab.localhost",
        "api.lab.localhost",
        not_before=timedelta(0),
        not_after=timedelta(hours=160),
    )
    issued = Issued([leaf.cert, ca.cert], leaf.key, "https://acme/order/1", profile="shortlived")
    chain_path, key_path = issued.write(tmp_path / "certs", "shop")
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert pki.load_private_key(key_path.read_bytes()).public_key() == leaf.key.public_key()
    assert [c.serial_number for c in pki.load_certificates(chain_path.read_bytes())] == [
        leaf.cert.serial_number,
        ca.cert.serial_number,
    ]
    html = issued._repr_html_()
    hours = issued.lifetime.total_seconds() / 3600
    assert hours == 160
    for text in ("shop.lab.localhost, api.lab.localhost", "shortlived", f"{hours:.0f} hours"):
        assert text in html
    assert issued.names == ["shop.lab.localhost", "api.lab.localhost"]


# ------------------------------------------------------------------------------ the lab's server


@pytest.fixture(scope="module")
def lab_pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[pki.CA, pki.CA, Path]:
    """The lab's CA model in miniature: an offline root and an online issuing CA (made
    here, in a temporary directory); the root is what a client trusts."""
    root = pki.CA("ACME client tests root")
    issuer = root.create_intermediate("TLS Course Lab ACME CA")
    bundle = tmp_path_factory.mktemp("lab-pki") / "root.pem"
    bundle.write_bytes(root.cert_pem)
    return root, issuer, bundle


@pytest.fixture(scope="module")
def lab_acme(lab_pki: tuple[pki.CA, pki.CA, Path]) -> Iterator[AcmeServer]:
    _, issuer, _ = lab_pki
    with AcmeServer(issuer, issuer.chain) as server:
        yield server


@pytest.fixture(scope="module")
def lab_responder(lab_acme: AcmeServer) -> Iterator[Http01Responder]:
    with Http01Responder(port=lab_acme.http01_port) as responder:
        yield responder


@pytest.fixture
def lab_client(lab_acme: AcmeServer, lab_pki: tuple[pki.CA, pki.CA, Path]) -> Iterator[AcmeClient]:
    with AcmeClient(lab_acme.directory, ca_bundle=lab_pki[2]) as client:
        yield client


def _serve_and_connect(issued: Issued, root: pki.CA, name: str, tmp_path: Path) -> str:
    """Serve the issued chain and key with ssl, connect to it as ``name`` trusting only
    the root: the handshake is the real test of a certificate."""
    chain_path, key_path = issued.write(tmp_path, "served")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(chain_path), str(key_path))
    client_ctx = ssl.create_default_context()
    client_ctx.load_verify_locations(cadata=root.cert_pem.decode())
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        result: list[str] = []

        def accept() -> None:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with client_ctx.wrap_socket(raw, server_hostname=name) as tls:
                result.append(tls.recv(2).decode())
                result.append(str(tls.version()))
        thread.join(5)
    return " ".join(result)


def test_lab_obtain_two_names_and_revoke(
    lab_client: AcmeClient,
    lab_acme: AcmeServer,
    lab_responder: Http01Responder,
    lab_pki: tuple[pki.CA, pki.CA, Path],
    tmp_path: Path,
) -> None:
    root, issuer, bundle = lab_pki
    names = ["shop.lab.localhost", "api.lab.localhost"]
    issued = lab_client.obtain(names, responder=lab_responder)
    # Each name was validated by a real HTTP-01 fetch from the lab's server.
    for name in names:
        assert any(
            f"(Host: {name}:{lab_responder.port}) -> 200" in line for line in lab_responder.log
        )
    assert sorted(issued.names) == sorted(names)
    assert issued.profile == "classic" and issued.lifetime >= timedelta(days=90)
    assert issued.chain[1:] == [issuer.cert]  # the issuing CA, never the root
    assert issued.cert in lab_acme.issued
    assert _serve_and_connect(issued, root, "api.lab.localhost", tmp_path).startswith("ok TLSv1.")
    chain_file, _ = issued.write(tmp_path, "verify")  # leaf first: openssl verifies it
    verify = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(bundle),
            "-untrusted",
            str(chain_file),
            str(chain_file),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    # Revoked by the account: the lab's CRL (signed by the issuer) lists the serial.
    lab_client.revoke(issued.cert, reason=4)
    crl = x509.load_pem_x509_crl(lab_acme.crl_pem)
    assert crl.is_signature_valid(issuer.cert.public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(issued.cert.serial_number) is not None
    with pytest.raises(AcmeProblem) as again:
        lab_client.revoke(issued.cert)
    assert (again.value.type, again.value.status) == ("alreadyRevoked", 400)


def test_lab_shortlived_profile(lab_client: AcmeClient, lab_responder: Http01Responder) -> None:
    assert set(lab_client.profiles) == {"classic", "shortlived"}
    issued = lab_client.obtain(
        ["short.lab.localhost"], responder=lab_responder, profile="shortlived"
    )
    assert issued.profile == "shortlived"
    # Let's Encrypt's shortlived profile: 160 hours (the lab backdates notBefore an hour).
    assert timedelta(hours=160) <= issued.lifetime <= timedelta(hours=161)
    assert "160 hours" in issued._repr_html_() or "161 hours" in issued._repr_html_()
    with pytest.raises(UsageError, match="does not offer the profile 'tiny'"):
        lab_client.obtain(["short.lab.localhost"], responder=lab_responder, profile="tiny")


def test_lab_renewal_info_and_replaces(
    lab_client: AcmeClient, lab_acme: AcmeServer, lab_responder: Http01Responder
) -> None:
    first = lab_client.obtain(["renew.lab.localhost"], responder=lab_responder)
    window = lab_client.renewal_info(first.cert)
    assert window == ari.suggested_window(first.cert)  # the lab's policy: [2/3, 3/4]
    assert lab_client.renewal_retry_after == 21600
    # The CA moves the window into the past ("renew now", RFC 9773 §4.2): the client sees it.
    now = datetime.now(UTC).replace(microsecond=0)
    urgent = ari.RenewalWindow(now - timedelta(hours=2), now - timedelta(hours=1))
    lab_acme.suggest_renewal(first.cert, urgent)
    assert lab_client.renewal_info(first.cert) == urgent
    second = lab_client.obtain(
        ["renew.lab.localhost"], responder=lab_responder, replaces=first.cert
    )
    order = lab_client.post(second.order_url, None).json()
    assert order["replaces"] == ari.cert_id(first.cert) == second.replaced
    # RFC 9773 §5: a certificate already replaced by another order: 409 alreadyReplaced.
    with pytest.raises(AcmeProblem) as twice:
        lab_client.new_order(["renew.lab.localhost"], replaces=first.cert)
    assert (twice.value.type, twice.value.status) == ("alreadyReplaced", 409)


def _first_authorization(client: AcmeClient, issued: Issued) -> str:
    """The first authorization URL of the order that produced ``issued``."""
    return str(client.post(issued.order_url, None).json()["authorizations"][0])


def test_lab_stale_nonce_and_certificate_key_revocation(
    lab_acme: AcmeServer, lab_responder: Http01Responder, lab_pki: tuple[pki.CA, pki.CA, Path]
) -> None:
    with AcmeClient(lab_acme.directory, ca_bundle=lab_pki[2]) as owner:
        issued = owner.obtain(["key.lab.localhost"], responder=lab_responder)
        owner._nonce = "AAAAAAAAAAAAAAAAAAAAAA"  # never issued by this server
        owner.authorization(_first_authorization(owner, issued))
        assert owner.bad_nonce_count == 1
    with AcmeClient(lab_acme.directory, ca_bundle=lab_pki[2]) as stranger:
        stranger.revoke(issued.cert, key=issued.key, reason=1)  # signed with the cert's own key
    crl = x509.load_pem_x509_crl(lab_acme.crl_pem)
    entry = crl.get_revoked_certificate_by_serial_number(issued.cert.serial_number)
    assert entry is not None
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        == x509.ReasonFlags.key_compromise
    )
