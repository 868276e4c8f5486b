"""helpers.diagnose: real TLS over real sockets on 127.0.0.1, through ssl and requests."""

from __future__ import annotations

import contextlib
import http.server
import re
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization

from helpers import diagnose, names, netguard
from helpers.errors import UsageError
from helpers.lab import SCENARIOS, Lab, get_lab
from helpers.pki import CA, load_certificates

CLIENTS = ("ssl", "requests")

# What each lab scenario *is*, in this module's vocabulary. Whether it fails, and with
# which verify code, comes from the lab's own expectations (Scenario.verdict).
KINDS = {
    "valid": "ok",
    "wildcard": "ok",
    "ip-san": "ok",
    "no-san": "hostname-mismatch",  # only for clients that refuse the CN fallback
    "expired": "expired",
    "not-yet-valid": "not-yet-valid",
    "self-signed": "self-signed",
    "untrusted-root": "untrusted-root",
    "incomplete-chain": "unknown-issuer",
    "wrong-host": "hostname-mismatch",
    "revoked": "revoked",  # only when a CRL is loaded
    "weak-key": "weak-key",
    "sha1": "weak-signature",
    "bad-issuer": "invalid-ca",
    "wrong-eku": "wrong-purpose",
    "client-cert-required": "client-cert-required",
    "tls-1.0-only": "protocol-version",
    "tls-1.1-only": "protocol-version",
    "tls-1.2-only": "ok",
    "dh-1024": "weak-dh",
    # issue 14: strict verification (Python 3.13+ default, VERIFY_X509_STRICT), codes 85-94
    "strict-no-aki": "nonconforming",
    "strict-bc-noncritical": "nonconforming",
    "strict-ca-no-keyusage": "nonconforming",
    "rsa-kx-only": "handshake-failure",  # static-RSA suites only: no shared cipher
    "legacy-renegotiation": "legacy-renegotiation",  # no RFC 5746 renegotiation_info
    "truncation": "closed",  # no close_notify: an error only where ragged EOFs are not suppressed
}

FAILING = [n for n in SCENARIOS if not SCENARIOS[n].expect.ok]


@pytest.fixture(scope="module")
def lab() -> Lab:
    return get_lab()


def _verdict(lab: Lab, name: str, client: str):
    return lab.scenarios[name].verdict("requests" if client == "requests" else "python")


def _fingerprints(certs) -> list[bytes]:
    return [c.fingerprint(hashes.SHA256()) for c in certs]


# --------------------------------------------------------------------------- small servers


@pytest.fixture
def refused_port() -> int:
    """A port nothing listens on: bind one, note it, close it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _loopback_server(handle: Callable[[socket.socket], None], name: str) -> Iterator[int]:
    """A TCP server on 127.0.0.1 (port 0) that gives each connection to ``handle``, in one
    thread, until the ``with`` block ends; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)  # the loop looks at ``done`` ten times a second
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            handle(conn)

    thread = threading.Thread(target=serve, name=name)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        thread.join(timeout=5)
        listener.close()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts TCP connections and never sends a byte."""
    held: list[socket.socket] = []
    try:
        with _loopback_server(held.append, "silent-server") as port:
            yield port
    finally:
        for conn in held:
            conn.close()


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def plain_http_server() -> Iterator[int]:
    """A plain-text HTTP server: what https:// to an http:// port meets."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="plain-http"
    )
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- every scenario


def test_the_kind_table_covers_every_lab_scenario(lab: Lab) -> None:
    assert set(lab.scenarios) == set(KINDS)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_check_gives_the_scenario_verdict(lab: Lab, name: str, client: str) -> None:
    expect = _verdict(lab, name, client)
    d = diagnose.check(lab.url(name), via=client)  # no cafile: lab hosts trust the lab CA
    assert d.ok is expect.ok, d
    assert d.kind == ("ok" if expect.ok else KINDS[name])
    assert d.verify_code == expect.verify_code
    assert expect.matches(d.error), d
    assert d.via == client and d.port == lab.port(name)
    assert d.explanation == diagnose.ADVICE[d.kind].explanation and d.fix
    if d.ok:
        assert d.version in ("TLSv1.2", "TLSv1.3") and d.cipher and d.status == 200
        assert d.chain_source == "the verified connection"
        served = load_certificates(lab.files.chains[name])
        assert _fingerprints(d.chain) == _fingerprints(served)
    else:
        assert d.message and d.exception and d.cause


@pytest.mark.parametrize("client", CLIENTS)
def test_chain_is_captured_when_verification_fails(lab: Lab, client: str) -> None:
    d = diagnose.check(lab.url("expired"), via=client)
    assert d.kind == "expired"
    leaf = d.leaf
    assert leaf is not None and lab.host("expired") in diagnose._san(leaf)
    # Exactly what the server sends: the scenario's chain file, leaf first.
    served = load_certificates(lab.files.chains["expired"])
    assert _fingerprints(d.chain) == _fingerprints(served)
    if sys.version_info >= (3, 13) and client == "ssl":
        assert d.chain_source == "the failed connection"
    else:
        assert "non-verifying probe" in d.chain_source
    assert "expired on" in d.detail
    # probe=False: no second connection, so (before Python 3.13) nothing to show.
    bare = diagnose.check(lab.url("expired"), via=client, probe=False)
    assert bool(bare.chain) is (sys.version_info >= (3, 13) and client == "ssl")


def test_incomplete_chain_detail_names_the_missing_intermediate(lab: Lab) -> None:
    d = diagnose.check(lab.url("incomplete-chain"))
    assert d.kind == "unknown-issuer" and d.verify_code == 20
    assert len(d.chain) == 1 and "incomplete chain" in d.detail


@pytest.mark.parametrize("client", CLIENTS)
def test_revocation_is_checked_only_with_a_crl(lab: Lab, client: str) -> None:
    strict = lab.scenarios["revoked"].strict
    assert strict is not None
    d = diagnose.check(lab.url("revoked"), via=client, crl=lab.crl)
    assert (d.ok, d.kind, d.verify_code) == (False, "revoked", strict.verify_code)
    assert diagnose.check(lab.url("valid"), via=client, crl=lab.crl).ok
    plain = diagnose.check(lab.url("revoked"), via=client)
    assert plain.ok and any("Revocation was not checked" in n for n in plain.notes)


@pytest.mark.parametrize("client", CLIENTS)
def test_client_certificate_satisfies_mutual_tls(lab: Lab, client: str) -> None:
    d = diagnose.check(lab.url("client-cert-required"), via=client, client_cert=lab.client_cert)
    assert d.ok and d.status == 200, d


@pytest.mark.parametrize("client", CLIENTS)
def test_version_limits(lab: Lab, client: str) -> None:
    d = diagnose.check(lab.url("valid"), via=client, max_version="TLSv1.2")
    assert d.ok and d.version == "TLSv1.2"
    d = diagnose.check(lab.url("tls-1.2-only"), via=client, min_version=ssl.TLSVersion.TLSv1_3)
    assert d.kind == "protocol-version"


def test_a_scenario_name_is_enough(lab: Lab) -> None:
    d = diagnose.check("expired")
    assert d.kind == "expired" and d.target == "expired" and d.port == lab.port("expired")


def test_a_scenario_name_with_dots_is_a_scenario_not_a_host(lab: Lab) -> None:
    # "tls-1.0-only" has dots, like a host name; it used to be looked up in DNS ("dns").
    d = diagnose.check("tls-1.0-only")
    assert d.port == lab.port("tls-1.0-only")
    assert d.kind == KINDS["tls-1.0-only"] == "protocol-version"


# --------------------------------------------------------------------------- below TLS


@pytest.mark.parametrize("client", CLIENTS)
def test_refused_port(refused_port: int, client: str) -> None:
    d = diagnose.check(f"127.0.0.1:{refused_port}", via=client)
    assert (d.ok, d.kind, d.verify_code) == (False, "refused", None)
    assert "ConnectionRefusedError" in d.exceptions


@pytest.mark.parametrize("client", CLIENTS)
def test_server_that_never_answers_times_out(silent_server: int, client: str) -> None:
    d = diagnose.check(f"https://127.0.0.1:{silent_server}/", via=client, timeout=0.5)
    assert (d.ok, d.kind) == (False, "timeout")
    assert d.elapsed is not None and 0.4 < d.elapsed < 3


@pytest.mark.parametrize("client", CLIENTS)
def test_plain_http_on_the_port_is_not_tls(plain_http_server: int, client: str) -> None:
    d = diagnose.check(f"https://127.0.0.1:{plain_http_server}/", via=client)
    assert (d.ok, d.kind) == (False, "not-tls")
    assert "WRONG_VERSION_NUMBER" in d.message or "record layer failure" in d.message


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("host", ["no-such-host.invalid", "nobody.lab.localhost"])
def test_names_that_must_never_resolve_are_not_looked_up(
    monkeypatch: pytest.MonkeyPatch, host: str, client: str
) -> None:
    assert netguard.active()  # a lookup would have raised OfflineViolation ("blocked")
    lookups: list[object] = []
    real = socket.getaddrinfo

    def spy(*args: object, **kwargs: object):
        lookups.append(args[0])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    d = diagnose.check(f"https://{host}/", via=client)
    assert (d.ok, d.kind) == (False, "dns")
    assert lookups == []
    assert d.exception == "socket.gaierror"


def test_explain_a_real_gaierror() -> None:
    # helpers.names raises the resolver's own exception for a lab name it does not know.
    with names.resolving({"known.lab.localhost": "127.0.0.1"}):
        with pytest.raises(socket.gaierror) as caught:
            socket.getaddrinfo("unknown.lab.localhost", 443)
    d = diagnose.explain(caught.value)
    assert (d.ok, d.kind, d.exception) == (False, "dns", "socket.gaierror")


def test_offline_guard_is_reported_not_bypassed() -> None:
    with pytest.raises(Exception) as caught:  # noqa: B017 - OfflineViolation, via requests
        requests.get("https://example.com/", timeout=1)
    assert diagnose.explain(caught.value).kind == "blocked"
    assert diagnose.check("https://example.com/").kind == "blocked"


# --------------------------------------------------------------------------- explain()


@pytest.mark.parametrize("name", FAILING)
def test_explain_a_requests_exception_like_check_does(lab: Lab, name: str) -> None:
    with pytest.raises(requests.RequestException) as caught:
        requests.get(lab.url(name), verify=str(lab.ca_bundle), timeout=5)
    mine = diagnose.explain(caught.value)
    seen = diagnose.check(lab.url(name), via="requests", probe=False)
    assert mine.kind == seen.kind == KINDS[name]
    assert mine.verify_code == seen.verify_code
    assert mine.exception == _qualified(caught.value)
    assert mine.target == lab.url(name) and mine.via == "requests"


def _qualified(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


def test_explain_unwraps_the_whole_requests_chain(lab: Lab) -> None:
    with pytest.raises(requests.exceptions.SSLError) as caught:
        requests.get(lab.url("expired"), verify=str(lab.ca_bundle), timeout=5)
    d = diagnose.explain(caught.value)
    assert d.exceptions[:4] == (
        "requests.exceptions.SSLError",
        "urllib3.exceptions.MaxRetryError",
        "urllib3.exceptions.SSLError",
        "ssl.SSLCertVerificationError",
    )
    assert d.cause == "ssl.SSLCertVerificationError" and d.verify_code == 10


def test_explain_an_ssl_exception(lab: Lab) -> None:
    ctx = ssl.create_default_context(cafile=lab.ca_bundle)
    with socket.create_connection(lab.address("wrong-host"), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError) as caught:
            ctx.wrap_socket(raw, server_hostname=lab.host("wrong-host"))
    d = diagnose.explain(caught.value)
    assert (d.kind, d.verify_code, d.via) == ("hostname-mismatch", 62, "ssl")


@pytest.mark.parametrize("direction", ["c2s", "s2c"])
def test_a_flipped_bit_is_a_bad_record_mac(lab: Lab, direction: str) -> None:
    """Notebook 01: one bit flipped by a relay; either side's refusal reads as bad-record-mac."""
    from helpers.capture import Relay, flip_record_byte

    flip = flip_record_byte(direction, content_type=23, occurrence=1)
    with Relay(lab.address("valid"), tamper=flip) as relay:
        url = f"https://{lab.host('valid')}:{relay.port}/"
        with pytest.raises(requests.exceptions.SSLError) as caught:
            requests.get(url, verify=lab.ca_bundle, timeout=5)
    d = diagnose.explain(caught.value)
    assert d.kind == "bad-record-mac", d.message
    assert "RFC 8446 §5.2" in d.explanation
    (ssl_error,) = [e for e in diagnose.exception_chain(caught.value) if type(e) is ssl.SSLError]
    if direction == "c2s":
        # The server refused our record and told us: its alert, on every version. Only
        # the text changed: "sslv3 alert bad record mac" (OpenSSL 3.0), "ssl/tls alert
        # bad record mac" (3.5).
        assert ssl_error.reason == "SSLV3_ALERT_BAD_RECORD_MAC"
        assert "alert bad record mac" in str(ssl_error)
    elif ssl.OPENSSL_VERSION_INFO >= (3, 2):
        # We refused the server's record. OpenSSL 3.2 rewrote the record layer and wraps
        # the precise reason in RECORD_LAYER_FAILURE; Python shows only that last error.
        assert ssl_error.reason == "RECORD_LAYER_FAILURE"
    else:
        assert ssl_error.reason == "DECRYPTION_FAILED_OR_BAD_RECORD_MAC"


def _serve_bytes_once(payload: bytes) -> tuple[socket.socket, threading.Thread]:
    """A TCP server that answers the first thing it receives with ``payload`` and closes."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(payload)

    thread = threading.Thread(target=answer, name="bytes-once")
    thread.start()
    return listener, thread


@pytest.mark.parametrize(
    "payload",
    [b"HTTP/1.1 400 Bad Request\r\n\r\n", b"SSH-2.0-OpenSSH_9.6\r\n", b"\x00" * 64],
    ids=["http", "ssh", "zeros"],
)
def test_a_peer_that_does_not_speak_tls_is_not_a_tampered_record(payload: bytes) -> None:
    """The other half of the record-layer rule: bytes that are no TLS record header read
    WRONG_VERSION_NUMBER on every OpenSSL (no alert is sent), so "not-tls" stays apart
    from "bad-record-mac" even where OpenSSL >= 3.2 says RECORD_LAYER_FAILURE."""
    listener, thread = _serve_bytes_once(payload)
    ctx = ssl.create_default_context()
    try:
        with socket.create_connection(listener.getsockname(), timeout=5) as raw:
            with pytest.raises(ssl.SSLError) as caught:
                ctx.wrap_socket(raw, server_hostname="localhost")
    finally:
        thread.join(5)
        listener.close()
    assert caught.value.reason == "WRONG_VERSION_NUMBER"
    assert diagnose.explain(caught.value).kind == "not-tls"


def test_record_layer_failure_is_read_for_the_running_openssl() -> None:
    """The same words mean different things by version: a refused record on OpenSSL
    >= 3.2, an internal record-layer error (no verdict about the peer) before."""
    err = ssl.SSLError(1, "[SSL: RECORD_LAYER_FAILURE] record layer failure (_ssl.c:1029)")
    err.reason = "RECORD_LAYER_FAILURE"
    text_only = RuntimeError(
        "HTTPSConnectionPool: [SSL: RECORD_LAYER_FAILURE] record layer failure"
    )
    expected = "bad-record-mac" if ssl.OPENSSL_VERSION_INFO >= (3, 2) else "tls-error"
    assert diagnose.explain(err).kind == expected
    assert diagnose.explain(text_only).kind == (
        "bad-record-mac" if expected != "tls-error" else "error"
    )


# --------------------------------------------------------------------------- atlas()


def test_atlas_covers_every_scenario_and_client_and_matches(lab: Lab) -> None:
    a = diagnose.atlas(lab)
    assert {(r.scenario, r.client) for r in a} == {(n, c) for n in lab.scenarios for c in CLIENTS}
    assert len(a) == 2 * len(lab.scenarios)
    assert a.matched, str(a)
    assert a.elapsed < 2.0
    for r in a:
        expect = _verdict(lab, r.scenario, r.client)
        assert r.kind == ("ok" if expect.ok else KINDS[r.scenario])
        assert r.verify_code == expect.verify_code
    html = a._repr_html_()
    for name in lab.scenarios:
        assert f">{name}<" in html
    assert ">unknown-issuer<" in html and ">weak-dh<" in html
    # Messages are escaped: the quotes around the host name come out as entities.
    assert "&#x27;wrong-host.lab.localhost&#x27;" in html
    assert "'wrong-host.lab.localhost'" not in html


def test_strict_atlas_checks_revocation(lab: Lab) -> None:
    a = diagnose.atlas(lab, strict=True, clients=("requests",))
    row = a.row("revoked", "requests")
    assert (row.kind, row.verify_code, row.matched) == ("revoked", 23, True)
    assert a.matched


# --------------------------------------------------------------------------- display


def test_card_shows_kind_and_escapes(refused_port: int, lab: Lab) -> None:
    d = diagnose.check(f"https://127.0.0.1:{refused_port}/<script>alert(1)</script>")
    html = d._repr_html_()
    assert d.kind == "refused" and "refused" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    failed = diagnose.check(lab.url("expired"))._repr_html_()
    assert "expired" in failed and "expired.lab.localhost" in failed
    good = diagnose.check(lab.url("valid"))
    assert "OK" in good._repr_html_() and good.version in good._repr_html_()
    assert good.headline.startswith("OK") and "via ssl" in str(good)


# --------------------------------------------------------------------------- the tables


def test_every_kind_has_advice_and_none_says_switch_verification_off() -> None:
    kinds = (
        set(diagnose._VERIFY_MESSAGES.values())
        | set(diagnose._VERIFY_CODES.values())
        | set(diagnose._REASONS.values())
        | {k for _, k in diagnose._PHRASES}
        | set(KINDS.values())
    )
    assert kinds <= set(diagnose.ADVICE)
    off = re.compile(r"verify\s*=\s*" + "False|CERT_NONE|check_hostname", re.I)
    for kind, advice in diagnose.ADVICE.items():
        assert advice.explanation.strip() and advice.fix.strip(), kind
        assert not off.search(advice.explanation + advice.fix), kind


# --------------------------------------------------------------------------- mistakes


def test_mistakes_in_the_call_raise_usage_errors(tmp_path) -> None:
    with pytest.raises(UsageError):
        diagnose.check("https://valid.lab.localhost/", via="curl")
    with pytest.raises(UsageError):
        diagnose.check("http://valid.lab.localhost/")
    with pytest.raises(UsageError):
        diagnose.check("https://valid.lab.localhost/", cafile=tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(UsageError):
        diagnose.check("https://valid.lab.localhost/", cafile=garbage)
    with pytest.raises(UsageError):
        diagnose.check("https://valid.lab.localhost/", min_version="TLSv9")
    with pytest.raises(UsageError):
        diagnose.explain("not an exception")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- a reset after the handshake


@pytest.mark.parametrize("operation", ["write", "read"])
def test_a_reset_after_the_handshake_by_python_version(operation: str) -> None:
    """The server finishes its handshake, then aborts the connection (TCP RST, as a server
    that closes with unread data does, e.g. after refusing a TLS 1.3 client certificate).
    Python 3.13 reports the reset as ConnectionResetError on the write and on the read;
    Python 3.11/3.12 report SSLEOFError on the write and an empty read (ragged EOFs are
    suppressed). Measured with Python 3.11.7 and 3.13.5; diagnose names each as it is."""
    authority = CA(common_name="Reset Test CA")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue("localhost").configure_server(server_ctx)
    listener = socket.create_server(("127.0.0.1", 0))
    aborted = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        tls = server_ctx.wrap_socket(conn, server_side=True)
        tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        tls.close()  # linger 0: close sends RST instead of FIN
        aborted.set()

    thread = threading.Thread(target=serve, name="rst-server")
    thread.start()
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    authority.configure_trust(client_ctx)
    outcome: BaseException | bytes | None = None
    try:
        with socket.create_connection(listener.getsockname(), timeout=5) as raw:
            with client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                assert aborted.wait(5)
                time.sleep(0.2)  # let the RST arrive
                try:
                    outcome = tls.sendall(b"GET /") if operation == "write" else tls.recv(64)
                except OSError as exc:
                    outcome = exc
    finally:
        thread.join(5)
        listener.close()
    if sys.version_info >= (3, 13):
        assert isinstance(outcome, ConnectionResetError), repr(outcome)
        assert diagnose.explain(outcome).kind == "reset"
    elif operation == "write":
        assert isinstance(outcome, ssl.SSLEOFError), repr(outcome)
        assert diagnose.explain(outcome).kind == "closed"
    else:
        assert outcome == b""  # suppress_ragged_eofs=True: the reset reads as end of data


def test_verify_messages_of_newer_openssls_are_read() -> None:
    """OpenSSL 3.6 words X509_V_ERR_CERT_NOT_YET_VALID as "certificate is not yet valid or
    the system clock is incorrect" (3.0 and 3.5: "certificate is not yet valid"). The text
    decides before the number, so both texts, and a future hint after a known text, give
    the same kind even with a verify code no table knows."""
    for text in (
        "certificate is not yet valid",
        "certificate is not yet valid or the system clock is incorrect",
        "certificate has expired or some future hint",
    ):
        err = ssl.SSLCertVerificationError(1, f"certificate verify failed: {text}")
        err.verify_message, err.verify_code = text, 999
        expected = "expired" if "expired" in text else "not-yet-valid"
        assert diagnose.explain(err).kind == expected, text


# --------------------------------------------------------------------------- issue 13: hostile targets


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("https://" + "a" * 70 + ".example/", "label of 70 characters"),
        ("https://" + "a" * 300 + ".lab.localhost/", "label of 300 characters"),
        ("https://a..b/", "empty label"),
        ("https://.example.com/", "empty label"),
        ("https://[::1/", "Invalid IPv6 URL"),
        ("https://[::1:8443/", "Invalid IPv6 URL"),
    ],
)
def test_malformed_hosts_are_usage_errors(monkeypatch, target: str, words: str) -> None:
    """Audit L8.4: these raised UnicodeError / ValueError from deep inside ssl and urllib."""
    lookups: list[object] = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: lookups.append(a) or [])
    for client in CLIENTS:
        with pytest.raises(UsageError, match=re.escape(words)) as info:
            diagnose.check(target, via=client)
        assert info.value.hint and "\n" not in str(info.value)
    assert lookups == []  # refused before any lookup or connection


def test_unicode_full_stops_reach_the_lab_not_dns(lab: Lab, monkeypatch) -> None:
    """N1: 'valid.lab.localhost。' is the lab's name (the idna codec makes it so), not DNS's."""
    asked: list[object] = []
    real = names._real_getaddrinfo

    def resolver(host, *args, **kwargs):
        asked.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(names, "_real_getaddrinfo", resolver)
    port = lab.port("valid")
    for spelled in (
        "valid.lab.localhost\u3002",
        "ｖａｌｉｄ.lab.localhost",
        "valid\uff0elab.localhost",
    ):
        d = diagnose.check(f"https://{spelled}:{port}/", probe=False)
        # Reached the lab: the TLS handshake ran (the trailing-dot form is a hostname
        # mismatch for Python's ssl, exactly as "valid.lab.localhost." is).
        assert d.kind in ("ok", "hostname-mismatch"), (spelled, d.kind, d.message)
    assert asked and all(h == "127.0.0.1" for h in asked), asked


def test_a_lab_name_without_a_running_lab_says_how_to_start_one(monkeypatch) -> None:
    """No lab, no hosts table: the name is not looked up, and the answer says what to do."""
    from helpers import lab as lab_module

    monkeypatch.setattr(names, "_table", {})
    monkeypatch.setattr(lab_module, "running_lab", lambda: None)
    lookups: list[object] = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: lookups.append(a) or [])
    monkeypatch.setattr(names, "_real_getaddrinfo", lambda *a, **k: lookups.append(a) or [])
    d = diagnose.check("https://expired.lab.localhost\u3002:8443/", probe=False)
    assert (d.ok, d.kind) == (False, "dns")
    assert "no lab is running" in d.message and "get_lab()" in d.message
    assert lookups == []


def test_a_proxy_is_never_asked_for_a_lab_name(lab: Lab) -> None:
    """The proxy would resolve the lab name with real DNS, and cannot reach our loopback."""
    with pytest.raises(UsageError, match="proxy cannot reach it"):
        diagnose.check(lab.url("valid"), proxy="http://127.0.0.1:9/")


def test_a_chain_cryptography_cannot_read_is_skipped_not_raised(lab: Lab, monkeypatch) -> None:
    """The chain a server sent is shown as far as it can be read: a certificate with an
    unknown version field (cryptography raises InvalidVersion, not a ValueError) or one
    that makes cryptography's Rust code panic (a BaseException) is left out."""
    from cryptography import x509

    from helpers.diagnose import server_chain

    good = load_certificates(lab.ca_bundle)[0].public_bytes(serialization.Encoding.DER)
    v4 = good.replace(bytes.fromhex("a003020102"), bytes.fromhex("a003020103"), 1)
    assert v4 != good
    assert server_chain._parse_chain([v4, good]) == load_certificates(lab.ca_bundle)
    fake_panic = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})
    real = x509.load_der_x509_certificate

    def panics_on_v4(der: bytes):
        if der == v4:
            raise fake_panic("assertion failed")
        return real(der)

    monkeypatch.setattr(x509, "load_der_x509_certificate", panics_on_v4)
    assert len(server_chain._parse_chain([v4, good])) == 1


# --------------------------------------------------------------------------- httpx, aiohttp
# explain() reads what every client of notebook 09 raises, sync and async, from real
# failures against the lab: the chain differs per client, the kind must not.

#: Scenarios that fail with a default client for reasons of every rung of the ladder.
_CLIENT_SCENARIOS = (
    "expired",
    "wrong-host",
    "untrusted-root",
    "self-signed",
    "incomplete-chain",
    "bad-issuer",
    "tls-1.0-only",
    "dh-1024",
    "client-cert-required",
)
_ASYNC_CLIENTS = ("httpx", "httpx-async", "aiohttp")


def _fail_with(client: str, url: str, ctx: ssl.SSLContext | None, **kw: object) -> BaseException:
    """Fetch ``url`` with ``client`` and return the exception it raised (the test fails if none)."""
    import asyncio

    import aiohttp
    import httpx

    async def httpx_async() -> None:
        async with httpx.AsyncClient(verify=ctx or True, timeout=5, **kw) as session:
            await session.get(url)

    async def aiohttp_get() -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(url, ssl=ctx or True, **kw) as response:
                await response.read()

    try:
        if client == "requests":
            proxies = {"https": kw["proxy"]} if "proxy" in kw else None
            requests.get(url, verify=ctx_file(ctx), proxies=proxies, timeout=5)
        elif client == "httpx":
            httpx.get(url, verify=ctx or True, timeout=5, **kw)
        elif client == "httpx-async":
            asyncio.run(httpx_async())
        else:
            asyncio.run(aiohttp_get())
    except Exception as exc:  # noqa: BLE001 - the point is to catch what the client raises
        return exc
    raise AssertionError(f"{client} fetched {url} without an error")


_CA_FILES: dict[int, str] = {}


def ctx_file(ctx: ssl.SSLContext | None) -> str | bool:
    """requests takes a file, not a context: the lab bundle the context was made from."""
    return _CA_FILES.get(id(ctx), True) if ctx is not None else True


@pytest.fixture
def lab_ctx(lab: Lab) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(lab.ca_bundle))
    _CA_FILES[id(ctx)] = str(lab.ca_bundle)
    return ctx


@pytest.mark.parametrize("client", _ASYNC_CLIENTS)
@pytest.mark.parametrize("name", [n for n in _CLIENT_SCENARIOS if n in FAILING])
def test_explain_reads_httpx_and_aiohttp_like_check_does(
    lab: Lab, lab_ctx: ssl.SSLContext, name: str, client: str
) -> None:
    """The same context as check(via="ssl"), so the same verdict, whatever wraps it.

    One quirk, measured with httpx 0.28.1/httpcore 1.0.9: the async client lets a TLS
    alert that arrives on the first *read* (TLS 1.3's certificate_required, RFC 8446
    §4.4.2.4) through as a bare ``ssl.SSLError``, not an ``httpx.ReadError`` as the sync
    client does, so ``except httpx.HTTPError`` misses it and only the ssl layer shows."""
    exc = _fail_with(client, lab.url(name), lab_ctx)
    d = diagnose.explain(exc)
    seen = diagnose.check(lab.url(name), probe=False)
    assert (d.kind, d.verify_code) == (seen.kind, seen.verify_code)
    assert d.kind == KINDS[name]
    if client == "httpx-async" and type(exc).__module__ in ("ssl", "_ssl", "builtins"):
        assert name == "client-cert-required" and d.via == "ssl"
    else:
        assert d.via == client.removesuffix("-async")


def test_explain_names_the_chain_and_url_of_each_client(lab: Lab, lab_ctx: ssl.SSLContext) -> None:
    url = lab.url("expired")
    chains = {
        client: diagnose.explain(_fail_with(client, url, lab_ctx)) for client in _ASYNC_CLIENTS
    }
    for client in ("httpx", "httpx-async"):
        assert chains[client].exceptions == (
            "httpx.ConnectError",
            "httpcore.ConnectError",
            "ssl.SSLCertVerificationError",
        )
    # aiohttp's wrapper *is* an SSLCertVerificationError (without verify_code): the one it
    # holds in .args decides.
    assert chains["aiohttp"].exceptions == (
        "aiohttp.client_exceptions.ClientConnectorCertificateError",
        "ssl.SSLCertVerificationError",
    )
    for d in chains.values():
        assert (d.kind, d.verify_code, d.cause) == ("expired", 10, "ssl.SSLCertVerificationError")
        assert d.target == url and (d.host, d.port) == (lab.host("expired"), lab.port("expired"))


@pytest.fixture
def hangs_up_after_handshake(lab: Lab) -> Iterator[str]:
    """A server with the lab's valid certificate that completes the handshake, reads the
    request and closes the TCP connection: no response, no close_notify (RFC 8446 §6.1)."""
    from helpers.lab.build import server_context

    server_ctx = server_context(SCENARIOS["valid"], lab.files)

    def hang_up(conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            tls = server_ctx.wrap_socket(conn, server_side=True)
            tls.recv(4096)
            socket.socket(fileno=tls.detach()).close()  # TCP FIN, no TLS alert
        except OSError:
            conn.close()

    with _loopback_server(hang_up, "hang-up-server") as port:
        yield f"https://{lab.host('valid')}:{port}/"


@pytest.mark.parametrize("client", ("requests", *_ASYNC_CLIENTS))
def test_a_server_that_hangs_up_without_answering_is_closed_for_every_client(
    hangs_up_after_handshake: str, lab_ctx: ssl.SSLContext, client: str
) -> None:
    """requests: RemoteDisconnected (a ConnectionResetError subclass, yet a FIN, not a reset);
    httpx: RemoteProtocolError 'Server disconnected'; aiohttp: ServerDisconnectedError."""
    d = diagnose.explain(_fail_with(client, hangs_up_after_handshake, lab_ctx))
    assert d.kind == "closed", d.exceptions


@pytest.fixture
def refusing_proxy() -> Iterator[int]:
    """A plain-HTTP proxy that answers every CONNECT with 407 (RFC 9110 §15.5.8)."""

    def refuse(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(4096)
                conn.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="corp"\r\nContent-Length: 0\r\n\r\n'
                )
            except OSError:
                pass

    with _loopback_server(refuse, "refusing-proxy") as port:
        yield port


@pytest.mark.parametrize("client", ("requests", *_ASYNC_CLIENTS))
def test_a_proxy_that_wants_a_password_is_a_proxy_failure(
    lab: Lab, lab_ctx: ssl.SSLContext, refusing_proxy: int, client: str
) -> None:
    exc = _fail_with(client, lab.url("valid"), lab_ctx, proxy=f"http://127.0.0.1:{refusing_proxy}")
    d = diagnose.explain(exc)
    assert d.kind == "proxy", d.exceptions
    assert "407" in diagnose.ADVICE["proxy"].explanation


@pytest.mark.parametrize("client", ("requests", *_ASYNC_CLIENTS))
def test_an_https_proxy_url_for_a_plain_http_proxy_is_not_tls(
    lab: Lab, lab_ctx: ssl.SSLContext, refusing_proxy: int, client: str
) -> None:
    """HTTPS_PROXY=https://... makes the client start TLS with the proxy, which answers in
    plain HTTP: WRONG_VERSION_NUMBER, the classic mistake of issue 14 item 5."""
    exc = _fail_with(client, lab.url("valid"), lab_ctx, proxy=f"https://127.0.0.1:{refusing_proxy}")
    d = diagnose.explain(exc)
    assert (d.kind, d.cause) == ("not-tls", "ssl.SSLError")
    assert "http://, not https://" in d.fix


@pytest.mark.parametrize("client", _ASYNC_CLIENTS)
def test_refused_and_unknown_names_through_httpx_and_aiohttp(
    lab: Lab, lab_ctx: ssl.SSLContext, refused_port: int, client: str
) -> None:
    refused = diagnose.explain(_fail_with(client, f"https://127.0.0.1:{refused_port}/", lab_ctx))
    assert (refused.kind, refused.cause) == ("refused", "ConnectionRefusedError")
    # A lab name the lab does not serve: a real gaierror from the hosts table, never DNS.
    unknown = diagnose.explain(_fail_with(client, "https://nope.lab.localhost:8443/", lab_ctx))
    assert (unknown.kind, unknown.cause) == ("dns", "socket.gaierror")


# --------------------------------------------------------------------------- the lab's proxies


@pytest.mark.parametrize("client", CLIENTS)
def test_check_through_the_inspecting_proxy_shows_the_interception_root(
    lab: Lab, client: str, tmp_path
) -> None:
    """Notebook 09's first step: every site fails, and the chain names the culprit. The
    chain is read through the same proxy (on 3.11/3.12 by the probe), so it is the proxy's."""
    d = diagnose.check(lab.url("valid"), via=client, proxy=lab.proxy.inspecting)
    assert (d.ok, d.kind, d.verify_code) == (False, "untrusted-root", 19), d
    assert [c.subject.rfc4514_string() for c in d.chain][-1].startswith(
        "CN=Corporate Inspection CA"
    )
    assert any("Went through the proxy" in n for n in d.notes)
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(lab.proxy.inspection_ca.read_text() + lab.ca_bundle.read_text())
    fixed = diagnose.check(lab.url("valid"), via=client, proxy=lab.proxy.inspecting, cafile=bundle)
    assert fixed.ok and fixed.status == 200, fixed
    assert "Corporate Inspection CA" in fixed.chain[0].issuer.rfc4514_string()


@pytest.mark.parametrize("client", CLIENTS)
def test_check_through_the_plain_tunnel_sees_the_real_server(lab: Lab, client: str) -> None:
    d = diagnose.check(lab.url("expired"), via=client, proxy=lab.proxy.tunnel)
    assert (d.kind, d.verify_code) == ("expired", 10), d
    assert "Lab" in d.chain[-1].issuer.rfc4514_string()  # the lab's own chain, not a proxy's
